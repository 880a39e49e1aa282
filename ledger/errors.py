"""The ledger's error shape: every error the ledger raises on purpose is a LedgerError with a reason code and a message.

    raise Refused(codes.INSUFFICIENT_ACTIVE_BALANCE, f"{account} holds {have} of {asset}, needs {amount}")

`code` is a number of the reason-code table (ledger/codes.py, docs/reason-codes.md): the same number a receipt, a
dry run or the HTTP API reports, so a caller can tell errors apart by code without knowing the class. `message` is
for humans (the code's own message when none is given); `path` names the offending field of a value being encoded or
decoded (e.g. `body.ops[0].amount`), empty otherwise. The subclasses exist only where callers catch one kind
specifically: Refused (an operation refuses a transaction: it becomes the receipt), the codec's DecodeError and
EncodeError, the store's and the state tree's errors. None adds state. Broken invariants are bugs, not
LedgerErrors: ledger.invariants.InvariantViolation is an AssertionError.
"""

from __future__ import annotations

from typing import Self

from ledger import codes

__all__ = ["LedgerError", "Refused"]


class LedgerError(Exception):
    """A ledger error: a registered, non-zero reason code, a message and (codec errors) a field path."""

    def __init__(self, code: int, message: str = "", path: str = "") -> None:
        assert code != codes.OK and codes.describe(code) is not None, f"error with unregistered code {code}"
        message = message or codes.message_for(code)
        super().__init__(code, message, path)
        self.code = code
        self.message = message
        self.path = path

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"[{self.code} {codes.REASONS[self.code].name}] {where}{self.message}"

    def at(self, name: str) -> Self:
        """The same error with `name` prepended to its field path."""
        if not self.path:
            path = name
        elif self.path.startswith("["):
            path = name + self.path
        else:
            path = f"{name}.{self.path}"
        return type(self)(self.code, self.message, path)


class Refused(LedgerError):
    """Raised inside operation processors to refuse a transaction. It never escapes `apply_transaction`: the code
    and message become the receipt's code and detail."""
