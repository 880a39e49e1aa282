"""Custody statements: built from a real LevelDB store whose blocks carry real BLS commit certificates, verified
offline against the genesis validator set; any tampering (a byte of the file, any field of the document) fails."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consensus import bls
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
from consensus.simulator import _epoch_set, _secret_key, simulated_validator_set
from consensus.validators import ValidatorSet
from ledger import operations as o
from ledger.context import BlockContext
from ledger.genesis import GenesisAccount, GenesisSpec, genesis_changes
from ledger.smt import SparseMerkleTree
from ledger.store import BlockCommit, LedgerStore
from ledger.transition import apply_block
from node.chain.certified import cert_key
from node.chain.statement import (
    MAX_STATEMENT_EPOCH_CHANGES,
    StatementCode,
    StatementError,
    StatementVerdict,
    TrustAnchor,
    build_statement,
    statement_bytes,
    verify_statement,
    verify_statement_bytes,
)
from tests.ledger.world import ADMIN, CHAIN, T0, World, pub

CHAIN_B = CHAIN.encode()
N_VALIDATORS = 4
CUSTODIAN = "custodian@custody-c"
DAVE = "dave@bank-a"
ISSUER = "treasury@issuer-co"
AGENT = "agent@issuer-co"


def world_spec() -> GenesisSpec:
    return GenesisSpec(
        chain_id=CHAIN,
        time=T0,
        members=(("consortium", "Consortium"),)
        + tuple((m, m.upper()) for m in ("bank-a", "bank-b", "issuer-co", "custody-c")),
        accounts=(GenesisAccount(ADMIN, (pub(ADMIN),), 1, ("admin",)),),
    )


GENESIS_MEMBERS: tuple[tuple[int, int], ...] = tuple((i, 0) for i in range(N_VALIDATORS))


def sign_qc(round_: int, block_id: bytes, state_root: bytes, signers: tuple[int, ...] = (0, 1, 2),
            chain: bytes = CHAIN_B, epoch: int = 0,
            members: tuple[tuple[int, int], ...] = GENESIS_MEMBERS) -> QuorumCert:
    """A QC of `epoch`, whose set is the simulator validators `members` ((index, key version), bitmap order),
    signed by the members at positions `signers`."""
    backend = bls.get_backend()
    vs = _epoch_set(epoch, members)
    msg = vote_message(chain, epoch, round_, block_id, state_root)
    sigs = [backend.sign(_secret_key(*members[i]), msg) for i in signers]
    return QuorumCert(epoch, round_, block_id, state_root, vs.bitmap(signers), backend.aggregate(sigs))


class StoreChain(World):
    """The test World, mirrored block by block into a LevelDB store. Block h is a consensus header in round 2h
    whose QC (3 of 4 real BLS signatures) certifies its parent and the parent's state root. When block h commits,
    its commit certificate is made the way Jolteon makes it: a child header in round 2h+1 carrying the QC of h,
    and a QC on that child (the next real block extends h again, in round 2h+2). The certificate is stored with
    the block (store extra, node.chain.certified.cert_key).

    Epochs: `end_epoch(members)` makes the next block epoch-ending (its certificate's QC, on the empty suffix
    child, carries the epoch commitment of the next set, as in docs/consensus.md section 10) and switches the
    signers to `members` from the block after it; `proofs` collects the EpochChangeProofs."""

    def __init__(self, path: str, consensus_chain_id: bytes = CHAIN_B) -> None:
        super().__init__()
        self.chain = consensus_chain_id
        self.epoch = 0
        self.members = GENESIS_MEMBERS
        self.next_members: tuple[tuple[int, int], ...] | None = None
        self.proofs: list[EpochChangeProof] = []
        self.sets: dict[int, ValidatorSet] = {}
        self.store = LedgerStore.open(path)
        changes = genesis_changes(world_spec())
        update = SparseMerkleTree(self.store).update(changes)
        assert update.root == self.ledger.root
        g = genesis_block(self.chain, 0)
        self.blocks: list[Block] = [g]
        self.qcs: list[QuorumCert] = [genesis_qc(g, update.root)]
        self.certificates: dict[int, CommitCertificate] = {}
        self.tx_ids: dict[int, tuple[bytes, ...]] = {}
        self.store.commit_block(
            BlockCommit(0, g.id, encode_block(g), update.root, [], [], changes, update.nodes, [])
        )

    def submit(self, *txs: Any, advance: int = 1) -> list:
        return list(self.apply_block(list(txs), advance).receipts)

    def apply_block(self, txs: list, advance: int = 1) -> Any:
        super().submit(*txs, advance=advance)
        head = self.store.head()
        assert head is not None
        tree = SparseMerkleTree(self.store, head.state_root)
        out = apply_block(self.store, BlockContext(CHAIN, head.height + 1, self.time), txs, tree=tree,
                          protocol=self.ledger.protocol)
        assert out.state_root == self.ledger.root
        payload = b"".join(tx if isinstance(tx, bytes) else tx.to_bytes() for tx in txs)
        payload += self.time.to_bytes(8, "big")
        parent = self.blocks[-1]
        h = out.height
        e, members = self.epoch, self.members
        n = len(members)
        signers = tuple(range(n - 1))  # n - 1 of n: a quorum for n = 4 and n = 5
        header = BlockHeader(self.chain, e, 2 * h, h, parent.id, h % n, payload_hash(payload), self.qcs[-1])
        block = Block(header, payload)
        qc = sign_qc(2 * h, block.id, out.state_root, signers, self.chain, e, members)
        child = BlockHeader(self.chain, e, 2 * h + 1, h + 1, block.id, (h + 1) % n, payload_hash(b""), qc)
        child_root = hashlib.sha256(child.id).digest()
        next_set = None
        if self.next_members is not None:
            next_set = _epoch_set(e + 1, self.next_members)
            child_root = epoch_commitment(block.id, out.state_root, next_set.digest)
        cert = CommitCertificate((header, child), sign_qc(2 * h + 1, child.id, child_root, signers, self.chain, e,
                                                          members))
        self.sets[h] = _epoch_set(e, members)
        if next_set is not None:
            assert self.next_members is not None
            self.proofs.append(EpochChangeProof(cert, next_set.entries()))
            self.epoch, self.members, self.next_members = e + 1, self.next_members, None
        self.store.commit_block(
            BlockCommit(
                height=h,
                block_hash=block.id,
                block_bytes=encode_block(block),
                state_root=out.state_root,
                txs=[(tx_id, tx) for tx_id, tx, _ in out.executed],
                receipts=[(tx_id, r) for tx_id, _, r in out.executed],
                state_changes=out.changes,
                smt_nodes=out.smt_nodes,
                history=list(out.history),
                extra={cert_key(h): cert.encode()},
            )
        )
        self.blocks.append(block)
        self.qcs.append(qc)
        self.certificates[h] = cert
        self.tx_ids[h] = tuple(tx_id for tx_id, _, _ in out.executed)
        return out

    def end_epoch(self, members: tuple[tuple[int, int], ...]) -> None:
        """The next block ends the current epoch; `members` sign from the block after it."""
        self.next_members = members

    def certificate(self, height: int) -> CommitCertificate:
        return self.certificates[height]

    def statement(self, account: str, height: int, **kw: Any) -> dict[str, Any]:
        return build_statement(
            self.store,
            account,
            height,
            chain_id=CHAIN,
            certificate=self.certificate(height),
            validator_set=self.sets[height],
            epoch_proofs=self.proofs,
            **kw,
        )


def anchor() -> TrustAnchor:
    return TrustAnchor(CHAIN, CHAIN_B, simulated_validator_set(N_VALIDATORS))


def build_custody_chain(path: str) -> tuple[StoreChain, dict[str, int]]:
    """Scenario 6: the custodian places a hold on client D's 1,000 units, releases it, places another; an agent
    freezes part of D's position. Returns the chain and the heights of interest."""
    w = StoreChain(path)
    w.account(ISSUER, roles=("issuer",))
    w.account(AGENT, roles=("agent",))
    w.account(CUSTODIAN, roles=("custodian",))
    w.account(DAVE, custodian=CUSTODIAN)
    w.account("bob@bank-b")
    w.asset("BOND-A", ISSUER, cap=100_000_000, agents=(AGENT,))
    w.asset("CASH-T", ISSUER, cap=10**15, agents=(AGENT,))
    w.ok(ISSUER, o.Issue(ISSUER, "BOND-A", DAVE, 5_000), o.Issue(ISSUER, "CASH-T", DAVE, 77))
    heights = {"issued": w.ledger.height}
    w.ok(CUSTODIAN, o.CreateHold(CUSTODIAN, "trade-1", "BOND-A", DAVE, "bob@bank-b", CUSTODIAN, 1_000, T0 + 10**6))
    heights["held"] = w.ledger.height
    w.ok(CUSTODIAN, o.ReleaseHold(CUSTODIAN, "trade-1"))
    w.ok(CUSTODIAN, o.CreateHold(CUSTODIAN, "trade-2", "BOND-A", DAVE, "bob@bank-b", CUSTODIAN, 400, T0 + 10**6))
    w.ok(CUSTODIAN, o.CreateHold(CUSTODIAN, "trade-3", "BOND-A", DAVE, "bob@bank-b", CUSTODIAN, 100, T0 + 10**6))
    w.ok(AGENT, o.FreezeAmount(AGENT, "BOND-A", DAVE, 300, "court order 17"))
    heights["final"] = w.ledger.height
    return w, heights


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[StoreChain, dict[str, int]]:
    w, heights = build_custody_chain(str(tmp_path_factory.mktemp("statement") / "db"))
    yield w, heights
    w.store.close()


@pytest.fixture(scope="module")
def good(chain: tuple[StoreChain, dict[str, int]]) -> dict[str, Any]:
    w, heights = chain
    return w.statement(DAVE, heights["final"])


def test_statement_lists_the_holdings_and_verifies(good: dict[str, Any], chain) -> None:
    _, heights = chain
    verdict = verify_statement(good, anchor())
    assert verdict == StatementVerdict(True, "ok", "statement verified", DAVE, heights["final"])
    bond, cash = good["holdings"]
    assert (bond["asset"], bond["available"], bond["held"], bond["frozen"]) == ("BOND-A", 4_200, 500, 300)
    assert [h["hold"] for h in bond["holds"]] == ["trade-2", "trade-3"]
    assert bond["holds"][0]["amount"] == 400 and bond["holds"][0]["status"] == "ordered"
    assert (cash["asset"], cash["available"], cash["held"], cash["frozen"], cash["holds"]) == ("CASH-T", 77, 0, 0, [])
    assert good["account_status"] == {"frozen": False, "custodian": CUSTODIAN, "closed_to": None}
    assert good["validator_set"]["epoch_changes"] == []
    data = statement_bytes(good)
    assert verify_statement_bytes(data, anchor()).ok


def test_historical_statement_shows_the_state_of_that_height(chain) -> None:
    w, heights = chain
    doc = w.statement(DAVE, heights["held"])
    assert verify_statement(doc, anchor()).ok
    bond = doc["holdings"][0]
    assert (bond["available"], bond["held"], bond["frozen"]) == (4_000, 1_000, 0)
    assert [h["hold"] for h in bond["holds"]] == ["trade-1"]
    # a caller-supplied hold index gives the same document
    assert w.statement(DAVE, heights["held"], hold_ids=["trade-1", "trade-2", "nope"]) == doc


def test_account_without_holdings(chain) -> None:
    w, heights = chain
    doc = w.statement("bob@bank-b", heights["final"])
    assert doc["holdings"] == [] and verify_statement(doc, anchor()).ok
    assert len(doc["proofs"]) == 3  # chain meta, account, (absent) positions


def test_builder_refuses_what_it_cannot_prove(chain) -> None:
    w, heights = chain
    vs = simulated_validator_set(N_VALIDATORS)
    h = heights["final"]
    with pytest.raises(StatementError) as e:
        build_statement(w.store, DAVE, h, chain_id=CHAIN, certificate=w.certificate(h - 1), validator_set=vs)
    assert e.value.code == "statement_certificate_mismatch"
    with pytest.raises(StatementError) as e:
        build_statement(w.store, "ghost@bank-a", h, chain_id=CHAIN, certificate=w.certificate(h), validator_set=vs)
    assert e.value.code == "account_not_found"
    with pytest.raises(StatementError) as e:
        build_statement(w.store, DAVE, 10**6, chain_id=CHAIN, certificate=w.certificate(h), validator_set=vs)
    assert e.value.code == "unknown_height"
    with pytest.raises(StatementError) as e:
        w.statement(DAVE, h, hold_ids=["trade-2"])  # an incomplete hold index is caught, not silently used
    assert e.value.code == "statement_holds_incomplete"


# ---------------------------------------------------------------------------------------------------------------
# Targeted tampering


def _tampered(doc: dict[str, Any], edit) -> StatementVerdict:
    d = copy.deepcopy(doc)
    edit(d)
    return verify_statement(d, anchor())


def _flip_hex(s: str, at: int = -1) -> str:
    i = at % len(s)
    return s[:i] + ("0" if s[i] != "0" else "1") + s[i + 1 :]


def test_each_kind_of_tampering_fails_with_its_code(good: dict[str, Any]) -> None:
    R = StatementCode

    def value(d):
        d["holdings"][0]["available"] += 1

    def hold_amount(d):
        d["holdings"][0]["holds"][0]["amount"] -= 1

    def drop_hold(d):
        d["holdings"][0]["holds"].pop()

    def proof_node(d):
        p = d["proofs"][2]["proof"]
        p["siblings"][0] = _flip_hex(p["siblings"][0])

    def proven_value(d):
        d["proofs"][1]["value"] = _flip_hex(d["proofs"][1]["value"], 10)

    def certificate(d):
        d["commit_certificate"] = _flip_hex(d["commit_certificate"], -5)

    def height(d):
        d["height"] -= 1

    def root(d):
        d["state_root"] = _flip_hex(d["state_root"])

    def digest(d):
        d["validator_set"]["digest"] = _flip_hex(d["validator_set"]["digest"])

    def epoch_changes(d):
        d["validator_set"]["epoch_changes"].append({"epoch": 1})

    def epoch(d):
        d["validator_set"]["epoch"] = 1

    def extra_proof(d):
        d["proofs"].append(copy.deepcopy(d["proofs"][-1]))

    def status(d):
        d["account_status"]["frozen"] = True

    def bool_for_int(d):
        d["holdings"][1]["frozen"] = False

    cases = {
        value: R.VALUE_MISMATCH,
        hold_amount: R.VALUE_MISMATCH,
        drop_hold: R.PROOF_SET_MISMATCH,
        proof_node: R.BAD_PROOF,
        proven_value: R.BAD_PROOF,
        certificate: R.BAD_CERTIFICATE,
        height: R.BLOCK_MISMATCH,
        root: R.BLOCK_MISMATCH,
        digest: R.VALIDATOR_SET_MISMATCH,
        epoch_changes: R.MALFORMED,
        epoch: R.EPOCH_MISMATCH,
        extra_proof: R.MALFORMED,
        status: R.VALUE_MISMATCH,
        bool_for_int: R.VALUE_MISMATCH,
    }
    for edit, code in cases.items():
        verdict = _tampered(good, edit)
        assert (verdict.ok, verdict.code) == (False, code), (edit.__name__, verdict)


def test_other_genesis_or_forged_quorum_fails(good: dict[str, Any], chain) -> None:
    w, heights = chain
    vs = simulated_validator_set(N_VALIDATORS)
    assert verify_statement(good, TrustAnchor("other-chain", CHAIN_B, vs)).code == "statement_wrong_chain"
    assert verify_statement(good, TrustAnchor(CHAIN, b"other genesis", vs)).code == "statement_wrong_chain"
    assert not verify_statement(good, TrustAnchor(CHAIN, CHAIN_B, simulated_validator_set(5))).ok
    # a certificate signed by only 2 of 4 validators (no quorum) does not prove finality
    h = heights["final"]
    cert = w.certificate(h)
    child = cert.headers[1]
    weak = CommitCertificate(cert.headers, sign_qc(child.round, child.id, cert.qc.state_root, (0, 1)))
    assert verify_statement(dict(good, commit_certificate=CommitCertificate(cert.headers, sign_qc(
        child.round, child.id, cert.qc.state_root, (1, 2, 3))).encode().hex()), anchor()).ok
    doc = dict(good, commit_certificate=weak.encode().hex())
    verdict = verify_statement(doc, anchor())
    assert verdict.code == "statement_bad_certificate" and "commit_bad_qc" in verdict.reason


def test_reformatted_file_is_refused(good: dict[str, Any]) -> None:
    loose = json.dumps(good).encode()
    verdict = verify_statement_bytes(loose, anchor())
    assert (verdict.ok, verdict.code) == (False, "statement_not_canonical")
    assert verify_statement_bytes(b"\xff{", anchor()).code == "statement_malformed"
    assert verify_statement_bytes(b'{"height": 1.5}', anchor()).code == "statement_malformed"
    assert verify_statement([1, 2], anchor()).code == "statement_malformed"


# ---------------------------------------------------------------------------------------------------------------
# Random tampering


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_byte_change_fails(good: dict[str, Any], data: st.DataObject) -> None:
    original = statement_bytes(good)
    pos = data.draw(st.integers(0, len(original) - 1), label="position")
    delta = data.draw(st.integers(1, 255), label="delta")
    mutated = bytearray(original)
    mutated[pos] = (mutated[pos] + delta) % 256
    assert not verify_statement_bytes(bytes(mutated), anchor()).ok


def _leaves(obj: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(obj, dict):
        return [leaf for k in sorted(obj) for leaf in _leaves(obj[k], (*path, k))]
    if isinstance(obj, list):
        return [leaf for i, x in enumerate(obj) for leaf in _leaves(x, (*path, i))]
    return [path]


def _changed(value: Any, pick: int) -> Any:
    """A different JSON value of a plausible kind."""
    if isinstance(value, bool):
        return [not value, int(value), None][pick % 3]
    if isinstance(value, int):
        return [value + 1, value - 1, str(value), value + 2**64, float(value)][pick % 5]
    if isinstance(value, str):
        if not value:
            return "0"
        i = pick % len(value)
        c = value[i]
        return (
            value[:i]
            + ("1" if c == "0" else "0" if c.isdigit() or c in "abcdef" else c.swapcase() if c.isalpha() else "x")
            + value[i + 1 :]
        )
    return [0, "", False, {}][pick % 4]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_field_change_fails(good: dict[str, Any], data: st.DataObject) -> None:
    leaves = _leaves(good)
    path = data.draw(st.sampled_from(leaves), label="field")
    pick = data.draw(st.integers(0, 60), label="pick")
    doc = copy.deepcopy(good)
    target = doc
    for k in path[:-1]:
        target = target[k]
    new = _changed(target[path[-1]], pick)
    if json.dumps(new) == json.dumps(target[path[-1]]):
        return
    target[path[-1]] = new
    assert not verify_statement(doc, anchor()).ok, path


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_dropping_or_adding_a_field_fails(good: dict[str, Any], data: st.DataObject) -> None:
    leaves = [p for p in _leaves(good) if p and isinstance(p[-1], str)]
    path = data.draw(st.sampled_from(leaves), label="field")
    doc = copy.deepcopy(good)
    target = doc
    for k in path[:-1]:
        target = target[k]
    if data.draw(st.booleans(), label="drop"):
        del target[path[-1]]
    else:
        target["extra"] = 1
    assert not verify_statement(doc, anchor()).ok, path


def test_statement_is_deterministic_and_small(good: dict[str, Any], chain) -> None:
    w, heights = chain
    again = statement_bytes(w.statement(DAVE, heights["final"]))
    assert again == statement_bytes(good)
    assert len(again) < 64 * 1024, len(again)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_change_to_the_certificate_or_a_proof_fails(good: dict[str, Any], data: st.DataObject) -> None:
    """Byte-level changes inside the binary parts (decoded from hex): the certificate and every proof node."""
    doc = copy.deepcopy(good)
    targets = [("cert",)] + [("proof", i, j) for i, e in enumerate(doc["proofs"])
                             for j in range(len(e["proof"]["siblings"]))]
    target = data.draw(st.sampled_from(targets), label="target")
    if target[0] == "cert":
        raw = bytearray(bytes.fromhex(doc["commit_certificate"]))
    else:
        raw = bytearray(bytes.fromhex(doc["proofs"][target[1]]["proof"]["siblings"][target[2]]))
    pos = data.draw(st.integers(0, len(raw) - 1), label="position")
    raw[pos] ^= data.draw(st.integers(1, 255), label="xor")
    if target[0] == "cert":
        doc["commit_certificate"] = raw.hex()
    else:
        doc["proofs"][target[1]]["proof"]["siblings"][target[2]] = raw.hex()
    verdict = verify_statement(doc, anchor())
    assert not verdict.ok
    assert verdict.code in ("statement_bad_certificate", "statement_bad_proof", "statement_block_mismatch")


def test_pruned_height_is_refused_with_its_code(tmp_path) -> None:
    w, heights = build_custody_chain(str(tmp_path / "db"))
    try:
        w.store.prune_state_history(heights["final"])
        with pytest.raises(StatementError) as e:
            w.statement(DAVE, heights["held"])
        assert e.value.code == "height_pruned"
        assert verify_statement(w.statement(DAVE, heights["final"]), anchor()).ok
    finally:
        w.store.close()


# ---------------------------------------------------------------------------------------------------------------
# Statements across epochs: the verifier follows the epoch-change proofs from the genesis set alone

EPOCH1_MEMBERS = GENESIS_MEMBERS + ((4, 0),)  # a fifth validator joins
EPOCH2_MEMBERS = ((1, 1), (2, 0), (3, 0), (4, 0))  # validator 0 leaves, validator 1 rotates its key


def build_epoch_chain(path: str) -> tuple[StoreChain, dict[str, int]]:
    """Two epoch changes (4 -> 5 validators, then one removed and one key rotated) with transfers in every epoch."""
    w = StoreChain(path)
    w.account(ISSUER, roles=("issuer",))
    w.account(DAVE)
    w.account("bob@bank-b")
    w.asset("BOND-A", ISSUER, cap=100_000_000)
    w.ok(ISSUER, o.Issue(ISSUER, "BOND-A", DAVE, 5_000))
    heights = {"epoch0": w.ledger.height}
    w.end_epoch(EPOCH1_MEMBERS)
    w.ok(DAVE, o.Transfer(DAVE, "BOND-A", (o.TransferLeg("bob@bank-b", 100),)))
    heights["end0"] = w.ledger.height
    w.ok(DAVE, o.Transfer(DAVE, "BOND-A", (o.TransferLeg("bob@bank-b", 10),)))
    heights["epoch1"] = w.ledger.height
    w.end_epoch(EPOCH2_MEMBERS)
    w.ok(DAVE, o.Transfer(DAVE, "BOND-A", (o.TransferLeg("bob@bank-b", 1),)))
    w.ok(DAVE, o.Transfer(DAVE, "BOND-A", (o.TransferLeg("bob@bank-b", 2),)))
    heights["epoch2"] = w.ledger.height
    assert w.epoch == 2 and [p.epoch for p in w.proofs] == [0, 1]
    return w, heights


@pytest.fixture(scope="module")
def epochs(tmp_path_factory: pytest.TempPathFactory) -> tuple[StoreChain, dict[str, int]]:
    w, heights = build_epoch_chain(str(tmp_path_factory.mktemp("epochs") / "db"))
    yield w, heights
    w.store.close()


@pytest.fixture(scope="module")
def late(epochs) -> dict[str, Any]:
    """A statement of epoch 2, taken after two epoch changes."""
    w, heights = epochs
    return w.statement(DAVE, heights["epoch2"])


def test_statement_after_two_epoch_changes_verifies_from_the_genesis_alone(late, epochs) -> None:
    w, heights = epochs
    assert late["block"]["epoch"] == 2 and late["validator_set"]["epoch"] == 2
    assert late["validator_set"]["epoch_changes"] == [p.encode().hex() for p in w.proofs]
    assert late["validator_set"]["digest"] == _epoch_set(2, EPOCH2_MEMBERS).digest.hex()
    verdict = verify_statement_bytes(statement_bytes(late), anchor())
    assert verdict == StatementVerdict(True, "ok", "statement verified", DAVE, heights["epoch2"])
    assert late["holdings"][0]["available"] == 5_000 - 113


def test_statements_of_each_epoch_carry_exactly_the_proofs_up_to_it(epochs) -> None:
    w, heights = epochs
    for name, n_proofs in (("epoch0", 0), ("end0", 0), ("epoch1", 1), ("epoch2", 2)):
        doc = w.statement(DAVE, heights[name])
        assert len(doc["validator_set"]["epoch_changes"]) == n_proofs, name
        assert doc["validator_set"]["epoch"] == n_proofs
        assert verify_statement(doc, anchor()).ok, name
    # The epoch-ending block itself is certified by its own epoch (its certificate is the proof's).
    assert w.certificate(heights["end0"]) == w.proofs[0].cert


def test_builder_needs_the_proofs_up_to_the_certificate_epoch(epochs) -> None:
    w, heights = epochs
    h = heights["epoch2"]
    kw = {"chain_id": CHAIN, "certificate": w.certificate(h), "validator_set": w.sets[h]}
    with pytest.raises(StatementError) as e:
        build_statement(w.store, DAVE, h, epoch_proofs=w.proofs[:1], **kw)
    assert e.value.code == "statement_epoch_proofs_missing"
    with pytest.raises(StatementError) as e:
        build_statement(w.store, DAVE, h, epoch_proofs=w.proofs[::-1], **kw)
    assert e.value.code == "statement_epoch_proofs_missing"
    with pytest.raises(StatementError) as e:
        build_statement(w.store, DAVE, h, chain_id=CHAIN, certificate=w.certificate(h),
                        validator_set=_epoch_set(2, EPOCH1_MEMBERS), epoch_proofs=w.proofs)
    assert e.value.code == "statement_certificate_mismatch"


def _with_changes(doc: dict[str, Any], changes: list[str], epoch: int | None = None) -> StatementVerdict:
    d = copy.deepcopy(doc)
    d["validator_set"]["epoch_changes"] = changes
    if epoch is not None:
        d["validator_set"]["epoch"] = epoch
    return verify_statement(d, anchor())


def test_broken_epoch_chains_fail_with_their_codes(late, epochs) -> None:
    w, heights = epochs
    R = StatementCode
    p0, p1 = w.proofs
    vs1 = _epoch_set(1, EPOCH1_MEMBERS)
    cases: dict[str, tuple[list[str], str]] = {}
    cases["none"] = ([], R.EPOCH_MISMATCH)
    cases["only the first"] = ([p0.encode().hex()], R.EPOCH_MISMATCH)
    cases["only the second"] = ([p1.encode().hex()], R.EPOCH_PROOF_ORDER)
    cases["swapped"] = ([p1.encode().hex(), p0.encode().hex()], R.EPOCH_PROOF_ORDER)
    cases["repeated"] = ([p0.encode().hex(), p0.encode().hex()], R.EPOCH_PROOF_ORDER)
    cases["not hex"] = (["zz", p1.encode().hex()], R.MALFORMED)
    cases["truncated"] = ([p0.encode().hex()[:-4], p1.encode().hex()], R.EPOCH_PROOF_MALFORMED)
    cases["non-canonical"] = ([p0.encode().hex() + "00", p1.encode().hex()], R.EPOCH_PROOF_MALFORMED)
    # a different next set than the one the old quorum certified
    other = dataclasses.replace(p0, next_validators=_epoch_set(1, GENESIS_MEMBERS + ((5, 0),)).entries())
    cases["other next set"] = ([other.encode().hex(), p1.encode().hex()], R.EPOCH_PROOF_NOT_EPOCH_ENDING)
    # an ordinary commit certificate (no epoch commitment) passed off as the end of epoch 0
    plain = EpochChangeProof(w.certificate(heights["epoch0"]), vs1.entries())
    cases["ordinary certificate"] = ([plain.encode().hex(), p1.encode().hex()], R.EPOCH_PROOF_NOT_EPOCH_ENDING)
    # a next set with a proof of possession that does not verify
    e = vs1.entries()
    bad_pop = dataclasses.replace(p0, next_validators=((e[0][0], e[0][1], e[1][2], e[0][3]),) + e[1:])
    cases["bad pop"] = ([bad_pop.encode().hex(), p1.encode().hex()], R.EPOCH_PROOF_BAD_NEXT_SET)
    # epoch 1 "ended" by a quorum of validators that are not the epoch-1 set (a forged history)
    c = p1.cert
    forged_members = ((5, 0), (6, 0), (7, 0), (8, 0), (9, 0))
    forged_qc = sign_qc(c.qc.round, c.qc.block_id, c.qc.state_root, (0, 1, 2, 3), CHAIN_B, 1, forged_members)
    forged = dataclasses.replace(p1, cert=CommitCertificate(c.headers, forged_qc))
    cases["forged quorum"] = ([p0.encode().hex(), forged.encode().hex()], R.EPOCH_PROOF_BAD_CERTIFICATE)
    cases["too long"] = (["00"] * (MAX_STATEMENT_EPOCH_CHANGES + 1), R.EPOCH_CHAIN_TOO_LONG)
    for name, (changes, code) in cases.items():
        verdict = _with_changes(late, changes)
        assert (verdict.ok, verdict.code) == (False, code), (name, verdict)
    # Claiming the epoch (and set) the shortened chain reaches still fails: the certificate is of epoch 2.
    d = copy.deepcopy(late)
    d["validator_set"] = {"epoch": 1, "digest": vs1.digest.hex(), "epoch_changes": [p0.encode().hex()]}
    assert verify_statement(d, anchor()).code == R.EPOCH_MISMATCH
    # Claiming the digest of the genesis set for epoch 2 fails.
    d = copy.deepcopy(late)
    d["validator_set"]["digest"] = simulated_validator_set(N_VALIDATORS).digest.hex()
    assert verify_statement(d, anchor()).code == R.VALIDATOR_SET_MISMATCH


def test_an_epoch_zero_certificate_with_epoch_changes_is_refused(epochs) -> None:
    w, heights = epochs
    doc = w.statement(DAVE, heights["epoch0"])
    verdict = _with_changes(doc, [p.encode().hex() for p in w.proofs], epoch=2)
    assert (verdict.ok, verdict.code) == (False, StatementCode.VALIDATOR_SET_MISMATCH)
    d = copy.deepcopy(doc)
    d["validator_set"] = copy.deepcopy(w.statement(DAVE, heights["epoch2"])["validator_set"])
    assert verify_statement(d, anchor()).code == StatementCode.EPOCH_MISMATCH


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_change_to_an_epoch_proof_fails(late: dict[str, Any], data: st.DataObject) -> None:
    doc = copy.deepcopy(late)
    changes = doc["validator_set"]["epoch_changes"]
    i = data.draw(st.integers(0, len(changes) - 1), label="proof")
    raw = bytearray(bytes.fromhex(changes[i]))
    pos = data.draw(st.integers(0, len(raw) - 1), label="position")
    raw[pos] ^= data.draw(st.integers(1, 255), label="xor")
    changes[i] = raw.hex()
    verdict = verify_statement(doc, anchor())
    assert not verdict.ok
    assert verdict.code.startswith("statement_epoch_") or verdict.code == StatementCode.VALIDATOR_SET_MISMATCH, \
        verdict


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_byte_change_of_a_multi_epoch_file_fails(late: dict[str, Any], data: st.DataObject) -> None:
    original = statement_bytes(late)
    pos = data.draw(st.integers(0, len(original) - 1), label="position")
    mutated = bytearray(original)
    mutated[pos] = (mutated[pos] + data.draw(st.integers(1, 255), label="delta")) % 256
    assert not verify_statement_bytes(bytes(mutated), anchor()).ok
