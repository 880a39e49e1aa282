"""Governance through the API and the SDK: the governance state, proposals (open, executed, cancelled, expired),
the ledger's current validator set, the epoch changes with their proofs, and custody statements across epochs.

The chain: a LevelDB store whose genesis names 4 validators (the simulator's BLS keys) and 4 voting members with a
governor each; blocks are executed by the real ledger and certified by real BLS quorums of the epoch's set. An
epoch-ending block (one whose execution scheduled a new EpochRecord) gets a certificate whose QC carries the epoch
commitment of the next set, and its EpochChangeProof is stored under node.chain.certified.epoch_proof_key, as the node
does."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from consensus import bls
from consensus.certificates import verify_epoch_chain
from consensus.messages import (
    Block,
    BlockHeader,
    CommitCertificate,
    EpochChangeProof,
    QuorumCert,
    encode_block,
    epoch_commitment,
    genesis_block,
    genesis_qc,
    payload_hash,
    vote_message,
)
from consensus.simulator import _secret_key, _validator, simulated_validator_set
from consensus.validators import ValidatorSet
from ledger import codes
from ledger import operations as o
from ledger.context import BlockContext
from ledger.genesis import GenesisAccount, GenesisSpec, genesis_changes
from ledger.governance_state import current_epoch, validator_set_entries
from ledger.records import ValidatorInfo
from ledger.rules import DEFAULT_ENGINE
from ledger.smt import SparseMerkleTree
from ledger.store import BlockCommit, LedgerStore
from ledger.transaction import SignedTransaction, TxBody, sign_transaction
from ledger.transition import apply_block
from node.api import ApiConfig, create_app
from node.api.facade import AdmissionView, BlockView, CommitNotice, HeadInfo, PeerView, ValidatorView
from node.chain.certified import cert_key, epoch_proof_key
from node.chain.genesis import genesis_hash, make_document, parse_genesis, validator_entry
from node.chain.protocol import OPERATIONS, node_protocol
from node.chain.statement import TrustAnchor, statement_from_store, verify_statement
from node.client import AsyncLedgerClient, proposals
from tests.ledger.world import key_for, pub

CHAIN = "gov-chain"
T0 = 1_700_000_000
MEMBERS = ("m0", "m1", "m2", "m3")
ADMIN = "admin@m0"
USER = "user@m0"
BOB = "bob@m1"


def gov(member: str) -> str:
    return f"gov@{member}"


def genesis_document() -> dict[str, Any]:
    """The genesis file of this chain (node/chain/genesis.py format): its hash is the consensus chain id, its validator
    set the trust anchor of custody statements."""
    validators = [validator_entry(v.node_id, v.member, v.identity_key, v.bls_key, v.bls_pop, ("127.0.0.1", 7000 + i))
                  for i, v in enumerate(validator_info(i) for i in range(4))]
    accounts = [{"id": a.account_id, "keys": [k.hex() for k in a.keys], "threshold": a.threshold,
                 "roles": list(a.roles), "custodian": a.custodian} for a in spec().accounts]
    return make_document(CHAIN, T0, [(m, f"Member {m}") for m in MEMBERS], validators, accounts)


def validator_info(index: int, version: int = 0, member: str | None = None) -> ValidatorInfo:
    v = _validator(index, version)
    return ValidatorInfo(v.id.decode(), member or f"m{index}", pub(f"identity-{index}-{version}"), v.public_key, v.pop,
                         f"127.0.0.1:{7000 + index}", 1)


def spec() -> GenesisSpec:
    accounts = [GenesisAccount(ADMIN, (pub(ADMIN),), 1, ("admin", "issuer")),
                GenesisAccount(USER, (pub(USER),), 1), GenesisAccount(BOB, (pub(BOB),), 1)]
    accounts += [GenesisAccount(gov(m), (pub(gov(m)),), 1, ("governor",)) for m in MEMBERS]
    return GenesisSpec(CHAIN, T0, tuple((m, f"Member {m}") for m in MEMBERS), tuple(accounts),
                       validators=tuple(validator_info(i) for i in range(4)))


class GovChain:
    """The store, blocks committed one by one with real certificates, epoch proofs stored like the node does."""

    def __init__(self, path: str) -> None:
        self.store = LedgerStore.open(path)
        changes = genesis_changes(spec())
        update = SparseMerkleTree(self.store).update(changes)
        g = genesis_block(CHAIN_B, 0)
        self.last: Block = g
        self.last_qc: QuorumCert = genesis_qc(g, update.root)
        self.time = T0
        self.nonce = 0
        self.secrets: dict[bytes, bytes] = {}
        for i in range(6):
            for version in range(2):
                self.secrets[_validator(i, version).public_key] = _secret_key(i, version)
        self.store.commit_block(BlockCommit(0, g.id, encode_block(g), update.root, [], [], changes, update.nodes, []))
        self.listeners: list[Callable[[CommitNotice], None]] = []

    def tx(self, signer: str, *ops: Any) -> SignedTransaction:
        self.nonce += 1
        head = self.store.head()
        assert head is not None
        body = TxBody(1, CHAIN, (signer,), self.nonce, head.height + 20, tuple(ops))
        return sign_transaction(body, [(signer, key_for(signer))], operations=OPERATIONS)

    def _qc(self, vs: ValidatorSet, round_: int, block_id: bytes, root: bytes) -> QuorumCert:
        backend = bls.get_backend()
        signers = tuple(range(len(vs.validators) - 1))
        msg = vote_message(CHAIN_B, vs.epoch, round_, block_id, root)
        sigs = [backend.sign(self.secrets[vs.validators[i].public_key], msg) for i in signers]
        return QuorumCert(vs.epoch, round_, block_id, root, vs.bitmap(signers), backend.aggregate(sigs))

    def commit(self, *txs: SignedTransaction) -> list[Any]:
        head = self.store.head()
        assert head is not None
        epoch = current_epoch(self.store)
        vs = ValidatorSet(epoch.epoch, validator_set_entries(epoch))
        self.time += 1
        h = head.height + 1
        tree = SparseMerkleTree(self.store, head.state_root)
        # The node's operation set and PoP check (consensus.bls.pop_verify), the core rule engine.
        out = apply_block(self.store, BlockContext(CHAIN, h, self.time), list(txs), tree=tree,
                          protocol=node_protocol(DEFAULT_ENGINE))
        payload = b"".join(t.to_bytes() for t in txs) + self.time.to_bytes(8, "big")
        n = len(vs.validators)
        header = BlockHeader(CHAIN_B, vs.epoch, 2 * h, h, self.last.id, h % n, payload_hash(payload), self.last_qc)
        block = Block(header, payload)
        qc = self._qc(vs, 2 * h, block.id, out.state_root)
        child = BlockHeader(CHAIN_B, vs.epoch, 2 * h + 1, h + 1, block.id, (h + 1) % n, payload_hash(b""), qc)
        extra: dict[bytes, bytes] = {}
        child_root = hashlib.sha256(child.id).digest()
        next_set = None
        if out.next_epoch is not None:
            next_set = ValidatorSet(out.next_epoch.epoch, validator_set_entries(out.next_epoch))
            child_root = epoch_commitment(block.id, out.state_root, next_set.digest)
        cert = CommitCertificate((header, child), self._qc(vs, 2 * h + 1, child.id, child_root))
        extra[cert_key(h)] = cert.encode()
        if next_set is not None:
            extra[epoch_proof_key(vs.epoch)] = EpochChangeProof(cert, next_set.entries()).encode()
        self.store.commit_block(BlockCommit(
            h, block.id, encode_block(block), out.state_root, [(i, t) for i, t, _ in out.executed],
            [(i, r) for i, _, r in out.executed], out.changes, out.smt_nodes, list(out.history), extra))
        self.last, self.last_qc = block, qc
        committed = CommitNotice(h, block.id, self.time, out.state_root, tuple(out.receipts))
        for listener in list(self.listeners):
            listener(committed)
        return [r.code for r in out.receipts]

    def ok(self, signer: str, *ops: Any) -> None:
        got = self.commit(self.tx(signer, *ops))
        assert got == [codes.OK], (ops, got)

    def height(self) -> int:
        head = self.store.head()
        assert head is not None
        return head.height


class GovFacade:
    """The NodeFacade the API needs, over a GovChain (submissions commit at once)."""

    def __init__(self, chain: GovChain) -> None:
        self.chain = chain

    @property
    def chain_id(self) -> str:
        return CHAIN

    @property
    def node_id(self) -> str:
        return "node-0"

    @property
    def store(self) -> LedgerStore:
        return self.chain.store

    @property
    def engine(self) -> Any:
        from ledger.rules import DEFAULT_ENGINE

        return DEFAULT_ENGINE

    def head(self) -> HeadInfo:
        h = self.chain.store.head()
        assert h is not None
        return HeadInfo(h.height, h.block_hash, h.state_root, self.chain.time)

    async def submit(self, tx: SignedTransaction) -> AdmissionView:
        self.chain.commit(tx)
        return AdmissionView(tx.tx_id, 0)

    def tx_pending(self, tx_id: bytes) -> bool:
        return False

    def block(self, height: int) -> BlockView | None:
        return None

    def validators(self) -> tuple[int, tuple[ValidatorView, ...]]:
        vs = simulated_validator_set(4)
        return 0, tuple(ValidatorView(i, v.id.decode(), v.public_key, v.power) for i, v in enumerate(vs.validators))

    def peers(self) -> tuple[PeerView, ...]:
        return ()

    def status(self) -> Mapping[str, Any]:
        return {"mode": "test"}

    def add_commit_listener(self, listener: Callable[[CommitNotice], None]) -> Callable[[], None]:
        self.chain.listeners.append(listener)
        return lambda: self.chain.listeners.remove(listener)

    def metrics_text(self) -> str:
        return ""

    def statement(self, account_id: str, height: int) -> Mapping[str, Any]:
        return statement_from_store(self.chain.store, account_id, height, chain_id=CHAIN,
                                    genesis_set=simulated_validator_set(4))


CHAIN_B = genesis_hash(genesis_document())


def anchor() -> TrustAnchor:
    return TrustAnchor(CHAIN, CHAIN_B, simulated_validator_set(4))


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> tuple[GovChain, dict[str, int]]:
    """Onboard m4 with validator v4 (3 of 4 approve); then remove v0 and rotate v1's keys in one proposal;
    a cancelled and an expiring proposal; transfers in between."""
    c = GovChain(str(tmp_path_factory.mktemp("gov") / "db"))
    marks: dict[str, int] = {}
    c.ok(ADMIN, o.DefineAsset(ADMIN, "CASH-T", 2, 10**12, "Cash", "", (), (), ()))
    c.ok(ADMIN, o.Issue(ADMIN, "CASH-T", USER, 100_000))
    onboard = [proposals.action("add_member", member="m4", name="Member 4", voter=True),
               proposals.validator_action("v4", "m4", _keys(4, 0), address="127.0.0.1:7004")]
    c.ok(gov("m0"), proposals.propose(gov("m0"), "onboard-m4", onboard, c.height() + 50))
    marks["proposed"] = c.height()
    c.ok(gov("m1"), proposals.approve(gov("m1"), "onboard-m4"))
    marks["approved_once"] = c.height()
    c.ok(USER, o.Transfer(USER, "CASH-T", (o.TransferLeg(BOB, 100),)))
    c.ok(gov("m2"), proposals.approve(gov("m2"), "onboard-m4"))
    marks["end0"] = c.height()
    c.ok(USER, o.Transfer(USER, "CASH-T", (o.TransferLeg(BOB, 10),)))
    marks["epoch1"] = c.height()
    rotate = proposals.validator_action("v1", "m1", _keys(1, 1), rotate=True)
    change = [proposals.action("remove_validator", node_id="v0"), rotate]
    c.ok(gov("m3"), proposals.propose(gov("m3"), "replace-v0", change, c.height() + 50))
    for m in ("m1", "m2"):
        c.ok(gov(m), proposals.approve(gov(m), "replace-v0"))
    marks["end1"] = c.height()
    c.ok(USER, o.Transfer(USER, "CASH-T", (o.TransferLeg(BOB, 1),)))
    c.ok(gov("m1"), proposals.propose(gov("m1"), "withdrawn", [proposals.action(
        "set_approval_threshold", threshold=4)], c.height() + 50))
    c.ok(gov("m1"), proposals.cancel_proposal(gov("m1"), "withdrawn"))
    c.ok(gov("m2"), proposals.propose(gov("m2"), "lapsing", [proposals.action(
        "set_approval_threshold", threshold=4)], c.height() + 2))
    c.ok(USER, o.Transfer(USER, "CASH-T", (o.TransferLeg(BOB, 2),)))
    c.ok(USER, o.Transfer(USER, "CASH-T", (o.TransferLeg(BOB, 3),)))
    marks["final"] = c.height()
    yield c, marks
    c.store.close()


class _Keys:
    def __init__(self, index: int, version: int) -> None:
        v = _validator(index, version)
        self.identity_key = pub(f"identity-{index}-{version}")
        self.bls_public_key = v.public_key
        self._pop = v.pop

    def bls_pop(self) -> bytes:
        return self._pop


def _keys(index: int, version: int) -> _Keys:
    return _Keys(index, version)


def run(story: tuple[GovChain, dict[str, int]], body: Callable[[TestClient], Any]) -> Any:
    async def go() -> Any:
        app = create_app(GovFacade(story[0]), ApiConfig(open_reads=True))
        async with TestClient(TestServer(app)) as client:
            return await body(client)

    return asyncio.run(go())


def test_governance_state_and_validators_follow_the_epochs(story) -> None:
    _c, marks = story

    async def body(client: TestClient) -> None:
        r = await client.get("/v1/governance", params={"height": str(marks["proposed"])})
        g = await r.json()
        assert r.status == 200
        assert (g["epoch"], g["start_height"], g["voters"], g["threshold"], g["validators"]) == (
            0, 1, list(MEMBERS), 3, 4)
        assert g["params"]["base_timeout_ms"] == 2000 and set(g["params"]) == {
            "max_block_txs", "max_block_bytes", "base_timeout_ms", "max_backoff_exponent", "max_clock_drift_ms",
            "empty_block_interval_ms"}
        r = await client.get("/v1/governance")
        g = await r.json()
        assert (g["epoch"], g["voters"], g["threshold"]) == (2, [*MEMBERS, "m4"], 3)
        assert g["start_height"] == marks["end1"] + 1 and g["validators"] == 4
        r = await client.get("/v1/validators")
        v = await r.json()
        assert (v["epoch"], v["start_height"]) == (2, marks["end1"] + 1)
        assert [x["name"] for x in v["validators"]] == ["v1", "v2", "v3", "v4"]
        assert v["validators"][0]["public_key"] == _validator(1, 1).public_key.hex()
        assert v["validators"][3] == {"index": 3, "name": "v4", "member": "m4",
                                      "public_key": _validator(4, 0).public_key.hex(),
                                      "identity_key": pub("identity-4-0").hex(), "address": "127.0.0.1:7004",
                                      "power": 1}
        r = await client.get("/v1/governance", params={"height": str(10**6)})
        assert r.status == 404 and (await r.json())["name"] == "API_HEIGHT_UNKNOWN"

    run(story, body)


def test_proposal_lifecycle_as_the_api_shows_it(story) -> None:
    _c, marks = story

    async def body(client: TestClient) -> None:
        r = await client.get("/v1/governance/proposals/onboard-m4", params={"height": str(marks["proposed"])})
        p = await r.json()
        assert r.status == 200
        assert (p["status"], p["proposer"], p["proposer_member"], p["approvals"], p["approvals_missing"]) == (
            "open", gov("m0"), "m0", ["m0"], 2)
        assert [a["kind"] for a in p["actions"]] == ["add_member", "add_validator"]
        assert p["actions"][1]["bls_key"] == _validator(4, 0).public_key.hex()
        assert p["expiry_height"] == marks["proposed"] - 1 + 50 and p["closed_height"] is None
        r = await client.get("/v1/governance/proposals/onboard-m4", params={"height": str(marks["approved_once"])})
        assert (await r.json())["approvals_missing"] == 1
        p = await (await client.get("/v1/governance/proposals/onboard-m4")).json()
        assert (p["status"], p["approvals"], p["closed_height"], p["approvals_missing"]) == (
            "executed", ["m0", "m1", "m2"], marks["end0"], 0)
        p = await (await client.get("/v1/governance/proposals/withdrawn")).json()
        assert p["status"] == "cancelled"
        p = await (await client.get("/v1/governance/proposals/lapsing")).json()
        assert p["status"] == "expired" and p["height"] >= p["expiry_height"]
        r = await client.get("/v1/governance/proposals/nope")
        err = await r.json()
        assert r.status == 404 and err["code"] == codes.PROPOSAL_NOT_FOUND and err["name"] == "PROPOSAL_NOT_FOUND"
        r = await client.get("/v1/governance/proposals/bad%20id")
        assert r.status == 400
        page = await (await client.get("/v1/governance/proposals", params={"limit": "2"})).json()
        assert [x["proposal_id"] for x in page["items"]] == ["lapsing", "onboard-m4"] and page["next"] == "onboard-m4"
        page = await (await client.get("/v1/governance/proposals", params={"after": "onboard-m4"})).json()
        assert [x["proposal_id"] for x in page["items"]] == ["replace-v0", "withdrawn"] and page["next"] is None

    run(story, body)


def test_epochs_list_the_proofs_a_light_client_follows(story) -> None:
    _c, marks = story

    async def body(client: TestClient) -> None:
        r = await client.get("/v1/epochs")
        doc = await r.json()
        assert r.status == 200 and doc["current_epoch"] == 2 and doc["next"] is None
        e0, e1 = doc["items"]
        assert doc["epochs"] == doc["items"]  # the older key, kept for compatibility
        assert (e0["epoch"], e0["end_height"], e0["next_start_height"]) == (0, marks["end0"], marks["end0"] + 1)
        assert [v["name"] for v in e0["next_validators"]] == ["v0", "v1", "v2", "v3", "v4"]
        assert (e1["epoch"], e1["end_height"]) == (1, marks["end1"])
        proofs = [EpochChangeProof.decode(bytes.fromhex(e["proof"])) for e in (e0, e1)]
        reached = verify_epoch_chain(simulated_validator_set(4), proofs, chain_id=CHAIN_B)
        assert reached.epoch == 2 and [v.id for v in reached.validators] == [b"v1", b"v2", b"v3", b"v4"]
        page = await (await client.get("/v1/epochs", params={"limit": "1"})).json()
        assert [e["epoch"] for e in page["items"]] == [0] and page["next"] == 0
        page = await (await client.get("/v1/epochs", params={"after": "0"})).json()
        assert [e["epoch"] for e in page["items"]] == [1] and page["next"] is None
        page = await (await client.get("/v1/epochs", params={"after": "5"})).json()
        assert page["items"] == [] and page["next"] is None

    run(story, body)


def test_sdk_reads_governance_and_follows_the_epoch_chain(story) -> None:
    c, marks = story

    async def go() -> None:
        app = create_app(GovFacade(c), ApiConfig(open_reads=True))
        async with TestServer(app) as server, AsyncLedgerClient(str(server.make_url("")).rstrip("/")) as client:
            g = await client.governance()
            assert g["threshold"] == 3 and g["voters"] == [*MEMBERS, "m4"]
            p = await client.proposal("replace-v0")
            assert p["status"] == "executed" and p["approvals"] == ["m1", "m2", "m3"]
            proofs = await client.epoch_proofs()
            assert [p.epoch for p in proofs] == [0, 1]
            assert verify_epoch_chain(simulated_validator_set(4), proofs, chain_id=CHAIN_B).epoch == 2
            doc = await client.statement(USER, marks["final"])
            assert verify_statement(doc, anchor()).ok

    asyncio.run(go())


def test_statements_from_the_store_in_every_epoch_verify_from_the_genesis(story) -> None:
    c, marks = story
    for name, epoch in (("proposed", 0), ("end0", 0), ("epoch1", 1), ("end1", 1), ("final", 2)):
        doc = statement_from_store(c.store, USER, marks[name], chain_id=CHAIN, genesis_set=simulated_validator_set(4))
        assert doc["validator_set"]["epoch"] == epoch and len(doc["validator_set"]["epoch_changes"]) == epoch
        verdict = verify_statement(doc, anchor())
        assert verdict.ok, (name, verdict)
    # The same, trusting only the genesis file (node.chain.genesis format) of this chain.
    genesis = parse_genesis(genesis_document())
    assert genesis.hash == CHAIN_B
    doc = statement_from_store(c.store, USER, marks["final"], chain_id=CHAIN, genesis_set=genesis.validator_set())
    assert verify_statement(doc, genesis).ok
    final = statement_from_store(c.store, USER, marks["final"], chain_id=CHAIN, genesis_set=simulated_validator_set(4))
    assert final["holdings"][0]["available"] == 100_000 - 116


def test_client_verifies_a_later_epochs_certificate_through_the_proof_chain(story) -> None:
    from node.chain.certified import load_epoch_proofs
    from node.client import ClientError, verify_certificate

    c, marks = story
    genesis = anchor()
    final = c.store.get_extra(cert_key(marks["final"]))
    proofs = load_epoch_proofs(c.store, 2)
    height, _block_id, root = verify_certificate(final.hex(), genesis, [p.encode().hex() for p in proofs])
    assert height == marks["final"] and root == c.store.state_root_at(height)
    # An epoch-0 certificate needs no proof; extra proofs are ignored.
    early = c.store.get_extra(cert_key(marks["proposed"]))
    assert verify_certificate(early, genesis)[0] == marks["proposed"]
    assert verify_certificate(early, genesis, proofs)[0] == marks["proposed"]
    for given, reason in (((), "commit_wrong_epoch"), (proofs[1:], "epoch_proof_wrong_epoch"),
                          (proofs[:1], "commit_wrong_epoch")):
        with pytest.raises(ClientError) as err:
            verify_certificate(final, genesis, given)
        assert err.value.code == "certificate_invalid" and err.value.details["reason"] == reason
    # A proof whose next set was swapped for another one breaks the chain.
    forged = EpochChangeProof(proofs[0].cert, proofs[1].next_validators)
    with pytest.raises(ClientError) as err:
        verify_certificate(final, genesis, [forged, proofs[1]])
    assert err.value.details["reason"].startswith("epoch_proof_")
