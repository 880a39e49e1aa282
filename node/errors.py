"""The node layer's error shape: every error a node raises on purpose carries a stable code and a message.

    raise NodeError("state_root_mismatch", "height 12: this node computed ..., the validators certified ...")

Codes are snake_case and never change meaning; logs, the admin socket and `ledger` commands print them, and the HTTP
API maps them to `{code, message, details}` in one place (node/api/errors.py). Inside the validator, a NodeError
raised while executing or committing a certified block means this node's state contradicts the certified chain (a
wrong binary, a corrupt store): the node halts rather than continue on a diverged state.

The thin subclasses (no state of their own) exist where callers catch one kind: FrameError, HandshakeError,
MessageRefused and TransportError (node/net), PayloadError, SyncRefused, GenesisError and StatementError
(node/chain), ConfigError, KeyFileError and SafetyStoreError (node/validator), TestnetError and DemoError
(node/tools). Those that always meant bad input are ValueErrors too. The client SDK has its own base,
node.client.errors.LedgerClientError (it runs in other processes and speaks the API's numeric codes).
"""

from __future__ import annotations

__all__ = ["NodeError"]


class NodeError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
