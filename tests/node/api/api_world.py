"""An in-process single-chain node for API tests: the ledger test World mirrored block by block into a LevelDB
store (real consensus headers and 3-of-4 BLS commit certificates, so custody statements verify), behind a
`NodeFacade` implementation. No consensus runs: `produce()` commits the pending transactions as the next block."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any, Self

from aiohttp.test_utils import TestClient, TestServer
from nacl.signing import SigningKey

from consensus import bls
from consensus.messages import (
    Block,
    BlockHeader,
    CommitCertificate,
    QuorumCert,
    encode_block,
    genesis_block,
    genesis_qc,
    payload_hash,
    vote_message,
)
from consensus.simulator import _secret_key, simulated_validator_set
from ledger import codes
from ledger import operations as o
from ledger.context import BlockContext
from ledger.genesis import GenesisAccount, GenesisSpec, genesis_changes
from ledger.protocol import Protocol
from ledger.rules import RuleEngine
from ledger.smt import SparseMerkleTree
from ledger.store import BlockCommit, LedgerStore
from ledger.transaction import SignedTransaction, TxBody, sign_transaction, verify_signature
from ledger.transition import apply_block
from node.api import ApiConfig, create_app
from node.api.auth import sign_request_headers
from node.api.facade import AdmissionView, BlockView, CommitNotice, HeadInfo, PeerView, ValidatorView
from tests.ledger.world import ADMIN, CHAIN, OPS, PROTOCOL, T0, World, pub

CHAIN_B = CHAIN.encode()
NODE = "node-0"  # the id of the API's node: signed reads are addressed to it
N_VALIDATORS = 4
ISSUER = "treasury@issuer-co"
AGENT = "agent@issuer-co"
CUSTODIAN = "custodian@custody-c"
AUDITOR = "auditor@bank-b"
ALICE = "alice@bank-a"
BOB = "bob@bank-b"
DAVE = "dave@bank-a"  # custodied by CUSTODIAN
OUTSIDER = "eve@bank-b"


def world_spec() -> GenesisSpec:
    return GenesisSpec(
        chain_id=CHAIN,
        time=T0,
        members=(("consortium", "Consortium"),)
        + tuple((m, m.upper()) for m in ("bank-a", "bank-b", "issuer-co", "custody-c")),
        accounts=(GenesisAccount(ADMIN, (pub(ADMIN),), 1, ("admin",)),),
    )


def sign_qc(round_: int, block_id: bytes, state_root: bytes) -> QuorumCert:
    backend = bls.get_backend()
    vs = simulated_validator_set(N_VALIDATORS)
    msg = vote_message(CHAIN_B, 0, round_, block_id, state_root)
    signers = (0, 1, 2)
    sigs = [backend.sign(_secret_key(i), msg) for i in signers]
    return QuorumCert(0, round_, block_id, state_root, vs.bitmap(signers), backend.aggregate(sigs))


class MirrorWorld(World):
    """World whose every block is also committed to a LedgerStore, then announced to commit listeners."""

    def __init__(self, path: str, protocol: Protocol = PROTOCOL) -> None:
        super().__init__(protocol=protocol)
        self.store = LedgerStore.open(path)
        changes = genesis_changes(world_spec())
        update = SparseMerkleTree(self.store).update(changes)
        assert update.root == self.ledger.root
        g = genesis_block(CHAIN_B, 0)
        self.blocks: list[Block] = [g]
        self.qcs: list[QuorumCert] = [genesis_qc(g, update.root)]
        self.times: list[int] = [T0]
        self.tx_ids: list[tuple[bytes, ...]] = [()]
        self.listeners: list[Callable[[CommitNotice], None]] = []
        self.store.commit_block(BlockCommit(0, g.id, encode_block(g), update.root, [], [], changes, update.nodes, []))

    def submit(self, *txs: Any, advance: int = 1) -> list:
        receipts = super().submit(*txs, advance=advance)
        head = self.store.head()
        assert head is not None
        tree = SparseMerkleTree(self.store, head.state_root)
        out = apply_block(self.store, BlockContext(CHAIN, head.height + 1, self.time), list(txs), tree=tree,
                          protocol=self.ledger.protocol)
        assert out.state_root == self.ledger.root
        payload = b"".join(tx.to_bytes() for tx in txs) + self.time.to_bytes(8, "big")
        parent = self.blocks[-1]
        h = out.height
        header = BlockHeader(CHAIN_B, 0, h, h, parent.id, h % N_VALIDATORS, payload_hash(payload), self.qcs[-1])
        block = Block(header, payload)
        self.blocks.append(block)
        self.qcs.append(sign_qc(h, block.id, out.state_root))
        # The certificate of block h-1 exists now (its child carries the QC of its root): store it with block h.
        extra = {} if h < 2 else {b"cert/" + (h - 1).to_bytes(8, "big"): self.certificate(h - 1).encode()}
        self.store.commit_block(BlockCommit(
            h, block.id, encode_block(block), out.state_root,
            [(tx_id, tx) for tx_id, tx, _ in out.executed], [(tx_id, r) for tx_id, _, r in out.executed],
            out.changes, out.smt_nodes, list(out.history), extra))
        self.times.append(self.time)
        self.tx_ids.append(tuple(r.tx_id for r in out.receipts))
        committed = CommitNotice(h, block.id, self.time, out.state_root, tuple(out.receipts))
        for listener in list(self.listeners):
            listener(committed)
        return receipts

    def certificate(self, height: int) -> CommitCertificate:
        return CommitCertificate((self.blocks[height].header, self.blocks[height + 1].header), self.qcs[height + 1])

    def sign_tx(self, signer: str, *ops: object) -> SignedTransaction:
        return self.tx([signer], *ops)


class ChainFacade:
    """NodeFacade over a MirrorWorld. With `auto_commit`, every admitted transaction is committed in the next
    loop iteration (one block per batch of pending transactions)."""

    def __init__(self, world: MirrorWorld, auto_commit: bool = True) -> None:
        self.world = world
        self.auto_commit = auto_commit
        self.pending: dict[bytes, SignedTransaction] = {}
        self._scheduled = False

    @property
    def chain_id(self) -> str:
        return CHAIN

    @property
    def node_id(self) -> str:
        return NODE

    @property
    def store(self) -> LedgerStore:
        return self.world.store

    @property
    def engine(self) -> RuleEngine:
        return self.world.ledger.protocol.engine

    def head(self) -> HeadInfo:
        h = self.world.store.head()
        assert h is not None
        return HeadInfo(h.height, h.block_hash, h.state_root, self.world.times[h.height])

    async def submit(self, tx: SignedTransaction) -> AdmissionView:
        if tx.body.chain_id != CHAIN:
            return AdmissionView(tx.tx_id, codes.WRONG_CHAIN, "wrong chain")
        if self.world.store.get_tx(tx.tx_id) is not None:
            return AdmissionView(tx.tx_id, codes.TX_REPLAYED, "already committed")
        if tx.tx_id in self.pending:
            return AdmissionView(tx.tx_id, 0, "", duplicate=True)
        message = tx.signing_message
        if not all(verify_signature(s.public_key, message, s.signature) for s in tx.signatures):
            return AdmissionView(tx.tx_id, codes.BAD_SIGNATURE, "a signature does not verify")
        self.pending[tx.tx_id] = tx
        if self.auto_commit and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.produce)
        return AdmissionView(tx.tx_id, 0)

    def produce(self) -> None:
        self._scheduled = False
        txs = list(self.pending.values())
        self.pending.clear()
        if txs:
            self.world.submit(*txs)

    def tx_pending(self, tx_id: bytes) -> bool:
        return tx_id in self.pending

    def block(self, height: int) -> BlockView | None:
        w = self.world
        if not 0 <= height < len(w.blocks):
            return None
        b = w.blocks[height]
        h = b.header
        header = {"chain_id": h.chain_id.hex(), "epoch": h.epoch, "round": h.round, "height": h.height,
                  "parent_id": h.parent_id.hex(), "proposer": h.proposer, "payload_hash": h.payload_hash.hex()}
        cert = None if height + 1 >= len(w.blocks) or height == 0 else w.certificate(height).encode()
        root = w.store.state_root_at(height)
        assert root is not None
        return BlockView(height, b.id, w.times[height], root, w.tx_ids[height], header, cert)

    def validators(self) -> tuple[int, tuple[ValidatorView, ...]]:
        vs = simulated_validator_set(N_VALIDATORS)
        return vs.epoch, tuple(ValidatorView(i, v.id.decode(), v.public_key, v.power)
                               for i, v in enumerate(vs.validators))

    def peers(self) -> tuple[PeerView, ...]:
        return (PeerView("v1", "127.0.0.1:7001", True, self.head().height),)

    def status(self) -> Mapping[str, Any]:
        return {"mode": "test", "mempool": len(self.pending)}

    def add_commit_listener(self, listener: Callable[[CommitNotice], None]) -> Callable[[], None]:
        self.world.listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self.world.listeners.remove(listener)

        return remove

    def metrics_text(self) -> str:
        return f"# TYPE ledger_height gauge\nledger_height {self.head().height}\n"

    def statement(self, account_id: str, height: int) -> Mapping[str, Any]:
        from node.chain.statement import build_statement

        if height + 1 >= len(self.world.blocks):
            raise KeyError(height)
        return build_statement(self.world.store, account_id, height, chain_id=CHAIN,
                               certificate=self.world.certificate(height),
                               validator_set=simulated_validator_set(N_VALIDATORS))


def populated_world(path: str, protocol: Protocol = PROTOCOL) -> MirrorWorld:
    """Accounts with every visibility relation, two assets, balances, a hold, a frozen amount."""
    w = MirrorWorld(path, protocol)
    w.account(ISSUER, roles=("issuer",))
    w.account(AGENT, roles=("agent",))
    w.account(CUSTODIAN, roles=("custodian",))
    w.account(AUDITOR, roles=("auditor",))
    w.account(ALICE)
    w.account(BOB)
    w.account(DAVE, custodian=CUSTODIAN)
    w.account(OUTSIDER)
    w.asset("BOND-A", ISSUER, cap=100_000_000, agents=(AGENT,))
    w.asset("CASH-T", ISSUER, cap=10**15, agents=(AGENT,))
    w.ok(ISSUER, o.Issue(ISSUER, "BOND-A", ALICE, 50_000))
    w.ok(ISSUER, o.Issue(ISSUER, "BOND-A", DAVE, 100_000))
    w.ok(ISSUER, o.Issue(ISSUER, "CASH-T", BOB, 7_000))
    w.ok(ALICE, o.Transfer(ALICE, "BOND-A", (o.TransferLeg(BOB, 1_000),)))
    return w


def signed_headers(account: str, method: str, path: str, query: str = "", body: bytes = b"", *,
                   key: SigningKey | None = None, timestamp: int | None = None, nonce: str | None = None,
                   chain_id: str = CHAIN, node_id: str = NODE) -> dict[str, str]:
    from tests.ledger.world import key_for

    sk = key or key_for(account)
    if nonce is None:
        signed_headers.counter += 1  # type: ignore[attr-defined]
        nonce = f"nonce{signed_headers.counter:08d}"  # type: ignore[attr-defined]
    return sign_request_headers(
        lambda m: sk.sign(m).signature, bytes(sk.verify_key), chain_id=chain_id, node_id=node_id, account=account,
        method=method, path=path, raw_query=query, body=body,
        timestamp=int(time.time()) if timestamp is None else timestamp,
        nonce=nonce,
    )


signed_headers.counter = 0  # type: ignore[attr-defined]


class ApiHarness:
    """An app over a ChainFacade with an aiohttp TestClient; use inside `asyncio.run`."""

    def __init__(self, world: MirrorWorld, config: ApiConfig | None = None, auto_commit: bool = True) -> None:
        self.world = world
        self.facade = ChainFacade(world, auto_commit)
        self.app = create_app(self.facade, config or ApiConfig())
        self.client = TestClient(TestServer(self.app))

    async def __aenter__(self) -> Self:
        await self.client.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()

    async def get(self, path: str, *, signer: str | None = None, query: str = "", **kw: Any) -> tuple[int, Any]:
        headers = dict(kw.pop("headers", {}))
        if signer is not None:
            headers.update(signed_headers(signer, "GET", path, query))
        url = path + ("?" + query if query else "")
        async with self.client.get(url, headers=headers, **kw) as r:
            if r.content_type == "application/json":
                return r.status, await r.json()
            return r.status, await r.text()

    async def post(self, path: str, body: Any = None, *, raw: bytes | None = None,
                   content_type: str = "application/json", signer: str | None = None, query: str = "",
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
        import json

        data = raw if raw is not None else json.dumps(body).encode()
        hdrs = {"Content-Type": content_type, **(headers or {})}
        if signer is not None:
            hdrs.update(signed_headers(signer, "POST", path, query, data))
        url = path + ("?" + query if query else "")
        async with self.client.post(url, data=data, headers=hdrs) as r:
            if r.content_type == "application/json":
                return r.status, await r.json()
            return r.status, await r.text()


def new_tx(world: MirrorWorld, signer: str, *ops: object, nonce: int | None = None) -> SignedTransaction:
    """A signed transaction that is not applied (for submission through the API)."""
    if nonce is None:
        world.nonce += 1
        nonce = world.nonce
    body = TxBody(1, CHAIN, (signer,), nonce, world.ledger.height + 50, tuple(ops))
    from tests.ledger.world import key_for

    return sign_transaction(body, [(signer, key_for(signer))], operations=OPS)
