"""AsyncLedgerClient: the SDK over aiohttp (HTTP and the WebSocket event stream). LedgerClient (node/client/sync.py)
wraps it for blocking code.

    async with AsyncLedgerClient("http://127.0.0.1:8080", key=load_key("alice.key")) as client:
        receipt = await client.execute(operation("transfer", actor=..., asset=..., legs=[...]))
        balances = await client.balances("alice@bank-a")          # a signed read
        async for event in client.events(accounts=["alice@bank-a"], from_height=1):
            ...

HTTPS: an https:// URL verifies the node's certificate against `tls=TlsOptions(ca_file=...)` (node/client/tls.py;
cert_file/key_file add a client certificate for mutual TLS), or LEDGER_TLS_CA / LEDGER_TLS_CERT / LEDGER_TLS_KEY when
`tls` is not given, or the system's trust store.

Errors: ApiError (the node's {code, message, details}), TransactionFailed (non-zero receipt), ClientError
(connection, tls_failed / tls_config, timeout, malformed answer, bad input). Endpoints and their JSON: docs/api.md and /openapi.json.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Self

import aiohttp

from ledger.operations import Operation
from ledger.transaction import SignedTransaction
from node.chain.statement import StatementVerdict, statement_bytes, verify_statement
from node.client import builder
from node.client.errors import ApiError, ClientError, TransactionFailed
from node.client.keys import AccountKey
from node.client.tls import TlsOptions
from node.client.wire import NodeName, Request, decode_response, path_of, query_of

__all__ = ["AsyncLedgerClient", "StreamItem", "SubmitResult"]

MAX_SERVER_WAIT: Final = 25  # seconds one `wait=commit` request may wait (the API's limit)
POLL_INTERVAL: Final = 0.25
MAX_RESUMES: Final = 1000  # reconnections of one event subscription before giving up
TX_NOT_FOUND: Final = 3110


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """The node's answer to a submission. status: pending | committed | rejected; receipt: JSON or None."""

    tx_id: str
    status: str
    duplicate: bool
    receipt: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return self.receipt is not None and self.receipt.get("code") == 0

    @staticmethod
    def from_json(obj: Any) -> SubmitResult:
        if not isinstance(obj, dict) or not isinstance(obj.get("tx_id"), str):
            raise ClientError("bad_response", "submission answer without a tx_id")
        return SubmitResult(obj["tx_id"], str(obj.get("status")), bool(obj.get("duplicate")), obj.get("receipt"))


@dataclass(frozen=True, slots=True)
class StreamItem:
    """One message of the event stream: type "event" (an event of block `height`) or "block" (checkpoint: every
    matching event up to `height` was delivered)."""

    type: str
    height: int
    message: dict[str, Any]


class AsyncLedgerClient:
    """One node's API. `key` signs private reads (and is the default signer of `execute`)."""

    def __init__(self, base_url: str, key: AccountKey | None = None, *, timeout: float = 30.0,
                 chain_id: str | None = None, node_id: str | None = None,
                 session: aiohttp.ClientSession | None = None,
                 tls: TlsOptions | ssl.SSLContext | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        https = self.base_url.startswith("https://")
        if tls is not None and not https:
            raise ClientError("bad_input", f"TLS options given for {self.base_url}: use an https:// URL")
        self._ssl: ssl.SSLContext | None = None
        if https:
            options = TlsOptions.from_env() if tls is None else tls
            self._ssl = options if isinstance(options, ssl.SSLContext) else options.ssl_context()
        self.key = key
        self.timeout = timeout
        self._chain_id = chain_id
        self._node_id = node_id
        self._session = session
        self._own_session = session is None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._ssl) if self._ssl is not None else None
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout),
                                                  connector=connector)
            self._own_session = True
        return self._session

    # -- transport ---------------------------------------------------------------------------------------------

    async def call(self, req: Request, *, timeout: float | None = None) -> tuple[int, Any]:
        """Send one request; (HTTP status, JSON value) of a 2xx answer, or raise ApiError / ClientError."""
        node = await self.node_name() if req.signed and self.key is not None else None
        headers = req.headers(self.key, node, int(time.time()))
        url = self.base_url + req.target
        kw: dict[str, Any] = {}
        if timeout is not None:
            kw["timeout"] = aiohttp.ClientTimeout(total=timeout)
        try:
            async with self._http().request(req.method, url, data=req.body or None, headers=headers,
                                             allow_redirects=False, **kw) as resp:
                body = await resp.read()
                return resp.status, decode_response(resp.status, resp.headers.get("Content-Type", ""), body)
        except (ApiError, ClientError):
            raise
        except TimeoutError:
            raise ClientError("timeout", f"{req.method} {req.path}: no answer within the timeout") from None
        except (aiohttp.ClientSSLError, ssl.SSLError) as exc:
            raise ClientError("tls_failed", f"{req.method} {url}: TLS: {exc}") from None
        except aiohttp.ClientError as exc:
            hint = ""
            dropped = isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError))
            if self._ssl is not None and dropped and not isinstance(exc, aiohttp.ClientConnectorError):
                hint = " (a node that requires a client certificate drops connections without an accepted one)"
            raise ClientError("connection_failed", f"{req.method} {url}: {exc}{hint}") from None

    async def get(self, *segments: str | int, signed: bool = False, **query: Any) -> Any:
        """GET /v1/<segments>?<query> (signed when `signed` and the client has a key)."""
        return (await self.call(Request.get(path_of(*segments), query_of(query), signed=signed)))[1]

    async def chain_id(self) -> str:
        return (await self.node_name()).chain_id

    async def node_id(self) -> str:
        """The id of the node this client talks to: signed reads are addressed to it (docs/api.md 1.2)."""
        return (await self.node_name()).node_id

    async def node_name(self) -> NodeName:
        """The node's chain id and node id, from `GET /v1/status` once (or as given to the constructor)."""
        if self._chain_id is None or self._node_id is None:
            status = await self.status()
            for field in ("chain_id", "node_id"):
                if not isinstance(status, dict) or not isinstance(status.get(field), str):
                    raise ClientError("bad_response", f"status without a {field}")
            self._chain_id = self._chain_id or status["chain_id"]
            self._node_id = self._node_id or status["node_id"]
        assert self._chain_id is not None and self._node_id is not None
        return NodeName(self._chain_id, self._node_id)

    # -- public reads ------------------------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        return (await self.call(Request.get(path_of("status"))))[1]

    async def health(self) -> dict[str, Any]:
        return (await self.call(Request.get(path_of("health"))))[1]

    async def head_height(self) -> int:
        status = await self.status()
        height = status.get("height") if isinstance(status, dict) else None
        if type(height) is not int:
            head = status.get("head") if isinstance(status, dict) else None
            height = head.get("height") if isinstance(head, dict) else None
        if type(height) is not int:
            raise ClientError("bad_response", "status without a head height")
        return height

    async def tx(self, tx_id: str) -> dict[str, Any]:
        return await self.get("tx", tx_id)

    async def block(self, height: int) -> dict[str, Any]:
        return await self.get("blocks", height)

    async def block_changes(self, height: int) -> dict[str, Any]:
        """GET /v1/blocks/{height}/changes (signed: full visibility): block bytes, certificate, receipts, events and
        balance changes of one block, for indexers (docs/indexer.md)."""
        return await self.get("blocks", height, "changes", signed=True)

    async def validators(self) -> dict[str, Any]:
        return await self.get("validators")

    async def peers(self) -> dict[str, Any]:
        return await self.get("peers")

    async def asset(self, asset_id: str, height: int | None = None) -> dict[str, Any]:
        return await self.get("assets", asset_id, height=height)

    async def governance(self, height: int | None = None) -> dict[str, Any]:
        """The governance state: {height, epoch, start_height, voters, threshold, params}."""
        return await self.get("governance", height=height)

    async def proposal(self, proposal_id: str, height: int | None = None) -> dict[str, Any]:
        """A proposal: status (open, executed, cancelled, expired), approvals, actions (JSON form), expiry."""
        return await self.get("governance", "proposals", proposal_id, height=height)

    async def epochs(self, after: int | None = None, limit: int | None = None) -> dict[str, Any]:
        """The epoch changes so far (a page: {current_epoch, start_height, items: [...], next}); each carries the
        hex EpochChangeProof a light client follows from the genesis set."""
        return await self.get("epochs", after=after, limit=limit)

    async def epoch_proofs(self) -> list[Any]:
        """Every epoch-change proof so far, decoded (consensus.messages.EpochChangeProof), oldest first: verify them
        with consensus.certificates.verify_epoch_chain(genesis.validator_set(), proofs, chain_id=genesis.hash)."""
        from consensus.codec import CodecError
        from consensus.messages import EpochChangeProof

        out: list[Any] = []
        after: int | None = None
        for _ in range(1 << 16):
            page = await self.epochs(after=after, limit=100)
            for item in page.get("items", page.get("epochs", [])):
                try:
                    out.append(EpochChangeProof.decode(bytes.fromhex(item["proof"])))
                except (CodecError, KeyError, TypeError, ValueError):
                    raise ClientError("bad_response", "an epoch change without a decodable proof") from None
            nxt = page.get("next")
            if nxt is None:
                return out
            after = int(nxt)
        raise ClientError("bad_response", "the epoch list does not end")

    # -- private reads (signed) --------------------------------------------------------------------------------

    async def blocks(self, from_height: int | None = None, limit: int | None = None) -> dict[str, Any]:
        return await self.get("blocks", from_height=from_height, limit=limit)

    async def account(self, account_id: str, height: int | None = None) -> dict[str, Any]:
        return await self.get("accounts", account_id, height=height)

    async def balances(self, account_id: str, asset: str | None = None, height: int | None = None) -> Any:
        return await self.get("accounts", account_id, "balances", signed=True, asset=asset, height=height)

    async def holds(self, account_id: str, limit: int | None = None, after: str | None = None) -> Any:
        """Holds in which the account is sender, recipient or notary (a page: items, next)."""
        return await self.get("accounts", account_id, "holds", signed=True, limit=limit, after=after)

    async def history(self, account_id: str, limit: int | None = None, after: str | None = None) -> Any:
        return await self.get("accounts", account_id, "history", signed=True, limit=limit, after=after)

    async def hold(self, hold_id: str) -> Any:
        return await self.get("holds", hold_id, signed=True)

    async def holders(self, asset_id: str, limit: int | None = None, after: str | None = None) -> Any:
        return await self.get("assets", asset_id, "holders", signed=True, limit=limit, after=after)

    async def proof(self, key_hex: str, height: int | None = None) -> Any:
        """{key, height, state_root, value, record, proof}: check it with verify_state_proof, and the root with
        verify_certificate(block(height)["certificate"], genesis)."""
        return await self.get("proofs", signed=True, key=key_hex, height=height)

    async def statement(self, account_id: str, height: int | None = None) -> dict[str, Any]:
        """The custody statement of an account at a height (default: the latest certified one). Verify it with
        `verify_statement(doc, genesis)`: nothing here trusts the node."""
        return await self.get("accounts", account_id, "statement", signed=True, height=height)

    # -- transactions ------------------------------------------------------------------------------------------

    async def body(self, ops: Sequence[Operation], *, signers: Iterable[str] | None = None,
                   nonce: int | None = None, expiry_height: int | None = None, lifetime: int = 100) -> Any:
        """A body for `ops` on this node's chain; expiry defaults to `lifetime` blocks after the head."""
        expiry = builder.default_expiry(await self.head_height(), lifetime) if expiry_height is None else expiry_height
        return builder.make_body(ops, chain_id=await self.chain_id(), expiry_height=expiry, signers=signers,
                                 nonce=nonce)

    async def submit(self, tx: SignedTransaction | bytes, *, wait: str = "commit", timeout: float = 30.0,
                     check: bool = True) -> SubmitResult:
        """Submit signed bytes. wait="commit" waits (up to `timeout` seconds) for the receipt; "none" returns once
        admitted. With `check`, a non-zero receipt raises TransactionFailed. A refusal at admission raises ApiError
        (its code says why: a decoding code, a mempool refusal)."""
        if wait not in ("commit", "none"):
            raise ClientError("bad_input", "wait is 'commit' or 'none'")
        raw = tx.to_bytes() if isinstance(tx, SignedTransaction) else bytes(tx)
        deadline = time.monotonic() + timeout
        server_wait = max(1, min(MAX_SERVER_WAIT, int(timeout)))
        query = query_of({"wait": wait, "timeout": server_wait if wait == "commit" else None})
        _, obj = await self.call(Request.post_bytes(path_of("tx"), raw, query), timeout=server_wait + self.timeout)
        result = SubmitResult.from_json(obj)
        while wait == "commit" and result.receipt is None and time.monotonic() < deadline:
            await asyncio.sleep(POLL_INTERVAL)
            try:
                st = await self.tx(result.tx_id)
            except ApiError as exc:
                if exc.code == TX_NOT_FOUND:
                    continue  # between the mempool and the store, or dropped: keep asking until the deadline
                raise
            if st.get("receipt") is not None:
                result = SubmitResult(result.tx_id, str(st.get("status")), result.duplicate, st["receipt"])
        if wait == "commit" and result.receipt is None:
            raise ClientError("timeout", f"transaction {result.tx_id} not committed within {timeout} s",
                              {"tx_id": result.tx_id})
        if check and result.receipt is not None and result.receipt.get("code") != 0:
            r = result.receipt
            raise TransactionFailed(result.tx_id, int(r.get("code", -1)), str(r.get("detail", "")), r)
        return result

    async def submit_batch(self, txs: Sequence[SignedTransaction | bytes]) -> list[dict[str, Any]]:
        raws = [t.to_bytes().hex() if isinstance(t, SignedTransaction) else bytes(t).hex() for t in txs]
        _, obj = await self.call(Request.post_json(path_of("tx", "batch"), {"txs": raws}))
        return obj["results"]

    async def execute(self, *ops: Operation, keys: Sequence[AccountKey] | None = None, wait: str = "commit",
                      timeout: float = 30.0, check: bool = True, **body_args: Any) -> SubmitResult:
        """Build, sign (with `keys`, default the client's key) and submit a transaction of `ops`."""
        keys = list(keys) if keys is not None else ([self.key] if self.key is not None else [])
        if not keys:
            raise ClientError("bad_input", "no key to sign with")
        body = await self.body(list(ops), **body_args)
        return await self.submit(builder.sign(body, keys), wait=wait, timeout=timeout, check=check)

    async def encode(self, body_json: dict[str, Any], signatures: list[dict[str, Any]] | None = None) -> Any:
        payload: dict[str, Any] = {"body": body_json}
        if signatures is not None:
            payload["signatures"] = signatures
        return (await self.call(Request.post_json(path_of("tx", "encode"), payload)))[1]

    async def dry_run(self, tx: SignedTransaction | None = None, *, signers: Sequence[str] | None = None,
                      ops: Sequence[Operation] | None = None) -> dict[str, Any]:
        """The reason code a transaction would get now: a signed `tx` (public), or unsigned `ops` as if `signers`
        had signed (a signed read: the client's key must see every signer)."""
        if tx is not None:
            req = Request.post_json(path_of("tx", "dry-run"), {"tx": tx.to_bytes().hex()})
        else:
            if not ops:
                raise ClientError("bad_input", "dry_run needs a transaction or operations")
            signer_list = sorted(set(builder.required_signers(ops) if signers is None else signers))
            req = Request.post_json(path_of("tx", "dry-run"),
                                    {"signers": signer_list, "operations": [builder.operation_to_json(o) for o in ops]},
                                    signed=True)
        return (await self.call(req))[1]

    # -- events ------------------------------------------------------------------------------------------------

    async def events(self, *, accounts: Sequence[str] = (), assets: Sequence[str] = (), kinds: Sequence[str] = (),
                     from_height: int | None = None, checkpoints: bool = False) -> AsyncIterator[StreamItem]:
        """The event stream (WebSocket), resumed automatically: when the node disconnects a slow consumer (or the
        connection drops) the client reconnects from the first height it has not fully received and skips the
        events of that height it already yielded, so the sequence it yields has no gaps and no repeats.
        With `checkpoints`, "block" messages are yielded too."""
        next_height = from_height
        partial_height: int | None = None
        partial_seen = 0
        resumes = 0
        while True:
            query = [("from_height", next_height), ("account", ",".join(accounts) or None),
                     ("asset", ",".join(assets) or None), ("kind", ",".join(kinds) or None)]
            req = Request.get(path_of("events"), query_of(query), signed=True)
            node = await self.node_name() if self.key is not None else None
            headers = req.headers(self.key, node, int(time.time()))
            url = self.base_url.replace("http", "ws", 1) + req.target
            closing: dict[str, Any] | None = None
            skip = partial_seen if partial_height is not None and partial_height == next_height else 0
            try:
                async with self._http().ws_connect(url, headers=headers, heartbeat=30.0) as ws:
                    async for msg in ws:
                        if msg.type != aiohttp.WSMsgType.TEXT:
                            break
                        m = msg.json()
                        kind = m.get("type")
                        if kind == "heartbeat":
                            continue
                        if kind == "error":
                            closing = m
                            break
                        height = m.get("height")
                        if type(height) is not int:
                            raise ClientError("bad_response", "stream message without a height")
                        if kind == "block":
                            next_height = height + 1
                            partial_height, partial_seen = None, 0
                            if checkpoints:
                                yield StreamItem("block", height, m)
                            continue
                        if partial_height != height:
                            partial_height, partial_seen = height, 0
                        partial_seen += 1
                        if skip:
                            skip -= 1
                            continue
                        yield StreamItem(str(kind), height, m)
            except aiohttp.WSServerHandshakeError as exc:
                raise ApiError(exc.status, 0, f"event stream refused: {exc.message}") from None
            except aiohttp.ClientError as exc:
                closing = {"code": "connection_lost", "message": str(exc)}
            if closing is not None and type(closing.get("resume_from")) is int:
                next_height = closing["resume_from"]
            elif closing is not None and type(closing.get("code")) is int and closing.get("code") not in (3130, 3132):
                raise ApiError(400, int(closing["code"]), str(closing.get("message", "")),
                               {k: v for k, v in closing.items() if k not in ("code", "message", "type")})
            resumes += 1
            if resumes > MAX_RESUMES:
                raise ClientError("stream_failed", f"event stream dropped {MAX_RESUMES} times")
            await asyncio.sleep(min(2.0, 0.05 * resumes))

    # -- offline verification ----------------------------------------------------------------------------------

    @staticmethod
    def verify_statement(doc: dict[str, Any], genesis: Any) -> StatementVerdict:
        """Verify a custody statement offline against the genesis (node.chain.genesis.Genesis or TrustAnchor)."""
        return verify_statement(doc, genesis)

    @staticmethod
    def statement_bytes(doc: dict[str, Any]) -> bytes:
        return statement_bytes(doc)
