"""LedgerClient: the blocking SDK. Every method of AsyncLedgerClient, run on a private event loop owned by the
client (so it must not be called from inside a running event loop: use AsyncLedgerClient there).

    with LedgerClient("http://127.0.0.1:8080", key=load_key("alice.key")) as client:
        client.execute(operation("issue", actor=..., asset="BOND-A", recipient=..., amount=1000))
        for item in client.events(accounts=["alice@bank-a"], from_height=1):
            ...

HTTPS and client certificates: `tls=TlsOptions(...)` as for AsyncLedgerClient (node/client/tls.py).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator, Sequence
from typing import Any, Self

from ledger.operations import Operation
from ledger.transaction import SignedTransaction
from node.chain.statement import StatementVerdict, statement_bytes, verify_statement
from node.client.aio import AsyncLedgerClient, StreamItem, SubmitResult
from node.client.errors import ClientError
from node.client.keys import AccountKey
from node.client.tls import TlsOptions
from node.client.wire import Request

__all__ = ["LedgerClient"]


class LedgerClient:
    def __init__(self, base_url: str, key: AccountKey | None = None, *, timeout: float = 30.0,
                 chain_id: str | None = None, node_id: str | None = None,
                 tls: TlsOptions | ssl.SSLContext | None = None) -> None:
        self._aio = AsyncLedgerClient(base_url, key, timeout=timeout, chain_id=chain_id, node_id=node_id, tls=tls)
        self._loop = asyncio.new_event_loop()

    @property
    def base_url(self) -> str:
        return self._aio.base_url

    @property
    def key(self) -> AccountKey | None:
        return self._aio.key

    def _run(self, coro: Any) -> Any:
        if self._loop.is_closed():
            coro.close()
            raise ClientError("client_closed", "this client was closed")
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._loop.run_until_complete(coro)
        coro.close()
        raise ClientError("bad_input", "LedgerClient called inside a running event loop; use AsyncLedgerClient")

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._aio.close())
            self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport and reads -----------------------------------------------------------------------------------

    def call(self, req: Request, *, timeout: float | None = None) -> tuple[int, Any]:
        return self._run(self._aio.call(req, timeout=timeout))

    def get(self, *segments: str | int, signed: bool = False, **query: Any) -> Any:
        return self._run(self._aio.get(*segments, signed=signed, **query))

    def chain_id(self) -> str:
        return self._run(self._aio.chain_id())

    def node_id(self) -> str:
        return self._run(self._aio.node_id())

    def status(self) -> dict[str, Any]:
        return self._run(self._aio.status())

    def health(self) -> dict[str, Any]:
        return self._run(self._aio.health())

    def head_height(self) -> int:
        return self._run(self._aio.head_height())

    def tx(self, tx_id: str) -> dict[str, Any]:
        return self._run(self._aio.tx(tx_id))

    def block(self, height: int) -> dict[str, Any]:
        return self._run(self._aio.block(height))

    def block_changes(self, height: int) -> dict[str, Any]:
        return self._run(self._aio.block_changes(height))

    def validators(self) -> dict[str, Any]:
        return self._run(self._aio.validators())

    def peers(self) -> dict[str, Any]:
        return self._run(self._aio.peers())

    def asset(self, asset_id: str, height: int | None = None) -> dict[str, Any]:
        return self._run(self._aio.asset(asset_id, height))

    def governance(self, height: int | None = None) -> dict[str, Any]:
        return self._run(self._aio.governance(height))

    def proposal(self, proposal_id: str, height: int | None = None) -> dict[str, Any]:
        return self._run(self._aio.proposal(proposal_id, height))

    def epochs(self, after: int | None = None, limit: int | None = None) -> dict[str, Any]:
        return self._run(self._aio.epochs(after, limit))

    def epoch_proofs(self) -> list[Any]:
        return self._run(self._aio.epoch_proofs())

    def account(self, account_id: str, height: int | None = None) -> dict[str, Any]:
        return self._run(self._aio.account(account_id, height))

    def balances(self, account_id: str, asset: str | None = None, height: int | None = None) -> Any:
        return self._run(self._aio.balances(account_id, asset, height))

    def holds(self, account_id: str, limit: int | None = None, after: str | None = None) -> Any:
        return self._run(self._aio.holds(account_id, limit, after))

    def blocks(self, from_height: int | None = None, limit: int | None = None) -> dict[str, Any]:
        return self._run(self._aio.blocks(from_height, limit))

    def history(self, account_id: str, limit: int | None = None, after: str | None = None) -> Any:
        return self._run(self._aio.history(account_id, limit, after))

    def hold(self, hold_id: str) -> Any:
        return self._run(self._aio.hold(hold_id))

    def holders(self, asset_id: str, limit: int | None = None, after: str | None = None) -> Any:
        return self._run(self._aio.holders(asset_id, limit, after))

    def proof(self, key_hex: str, height: int | None = None) -> Any:
        return self._run(self._aio.proof(key_hex, height))

    def statement(self, account_id: str, height: int | None = None) -> dict[str, Any]:
        return self._run(self._aio.statement(account_id, height))

    # -- transactions ------------------------------------------------------------------------------------------

    def body(self, ops: Sequence[Operation], **body_args: Any) -> Any:
        return self._run(self._aio.body(ops, **body_args))

    def submit(self, tx: SignedTransaction | bytes, *, wait: str = "commit", timeout: float = 30.0,
               check: bool = True) -> SubmitResult:
        return self._run(self._aio.submit(tx, wait=wait, timeout=timeout, check=check))

    def submit_batch(self, txs: Sequence[SignedTransaction | bytes]) -> list[dict[str, Any]]:
        return self._run(self._aio.submit_batch(txs))

    def execute(self, *ops: Operation, keys: Sequence[AccountKey] | None = None, wait: str = "commit",
                timeout: float = 30.0, check: bool = True, **body_args: Any) -> SubmitResult:
        return self._run(self._aio.execute(*ops, keys=keys, wait=wait, timeout=timeout, check=check, **body_args))

    def encode(self, body_json: dict[str, Any], signatures: list[dict[str, Any]] | None = None) -> Any:
        return self._run(self._aio.encode(body_json, signatures))

    def dry_run(self, tx: SignedTransaction | None = None, *, signers: Sequence[str] | None = None,
                ops: Sequence[Operation] | None = None) -> dict[str, Any]:
        return self._run(self._aio.dry_run(tx, signers=signers, ops=ops))

    # -- events ------------------------------------------------------------------------------------------------

    def events(self, *, accounts: Sequence[str] = (), assets: Sequence[str] = (), kinds: Sequence[str] = (),
               from_height: int | None = None, checkpoints: bool = False) -> Iterator[StreamItem]:
        """A blocking iterator over the (auto-resumed, gap-free) event stream; close it to disconnect."""
        agen = self._aio.events(accounts=accounts, assets=assets, kinds=kinds, from_height=from_height,
                                checkpoints=checkpoints)
        try:
            while True:
                try:
                    item = self._run(agen.__anext__())
                except StopAsyncIteration:
                    return
                yield item
        finally:
            if not self._loop.is_closed():
                self._loop.run_until_complete(agen.aclose())

    # -- offline verification ----------------------------------------------------------------------------------

    @staticmethod
    def verify_statement(doc: dict[str, Any], genesis: Any) -> StatementVerdict:
        return verify_statement(doc, genesis)

    @staticmethod
    def statement_bytes(doc: dict[str, Any]) -> bytes:
        return statement_bytes(doc)
