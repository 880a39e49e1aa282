"""Governance as ledger operations: M-of-N proposals, every refusal code (with nothing changed), epoch changes once
per block, the epoch record as consensus admits it, and determinism."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consensus import bls
from consensus.validators import ValidatorSet
from ledger import codes
from ledger import operations as o
from ledger.codec import decode, encode
from ledger.genesis import GenesisAccount, GenesisSpec
from ledger.governance_state import (
    chain_params_values,
    current_epoch,
    current_governance,
    proposal,
    validator_set_entries,
)
from ledger.jsonform import from_json, to_json
from ledger.memory import InMemoryLedger
from ledger.records import EpochRecord, ProposalStatus, ValidatorInfo
from ledger.schema import DEFAULT_CHAIN_PARAMS, MAX_PROPOSAL_LIFETIME, ROLE_BITS
from ledger.state_keys import EPOCH_KEY, GOVERNANCE_KEY, account_key, member_key
from ledger.transition import BlockOutcome
from tests.ledger.world import ADMIN, CHAIN, OPS, PROTOCOL, T0, World, key_for, pub

BANKS = ("bank-a", "bank-b", "bank-c", "bank-d")
GOV = {m: f"gov@{m}" for m in (*BANKS, "bank-e")}
GA, GB, GC, GD, GE = (GOV[m] for m in (*BANKS, "bank-e"))
PARAMS = o.SetChainParams(*DEFAULT_CHAIN_PARAMS.values())


@cache
def bls_keys(name: str) -> tuple[bytes, bytes]:
    sk = bls.keygen(hashlib.sha256(b"bls/" + name.encode()).digest())
    return bls.public_key(sk), bls.pop_prove(sk)


def info(node_id: str, member: str, power: int = 1, address: str = "") -> ValidatorInfo:
    pk, pop = bls_keys(node_id)
    return ValidatorInfo(node_id, member, pub("id/" + node_id), pk, pop, address, power)


def add_validator(node_id: str, member: str, power: int = 1, address: str = "") -> o.AddValidator:
    v = info(node_id, member, power, address)
    return o.AddValidator(v.node_id, v.member, v.identity_key, v.bls_key, v.bls_pop, v.address, v.power)


def rotate(node_id: str, new_name: str) -> o.RotateValidatorKeys:
    pk, pop = bls_keys(new_name)
    return o.RotateValidatorKeys(node_id, pub("id/" + new_name), pk, pop)


class GovWorld(World):
    """Members bank-a..bank-e and the consortium; the four banks a..d run node-0..node-3 and vote (3 of 4);
    bank-e is a member without a vote. gov@<bank> is each bank's governor account."""

    def __init__(self, threshold: int | None = 3, voters: tuple[str, ...] | None = BANKS) -> None:
        self.keys = {ADMIN: [key_for(ADMIN)]}
        accounts = [GenesisAccount(ADMIN, (pub(ADMIN),), 1, ("admin",))]
        for acct in GOV.values():
            self.keys[acct] = [key_for(acct)]
            accounts.append(GenesisAccount(acct, (pub(acct),), 1, ("governor",)))
        members = (("consortium", "Consortium"),) + tuple((m, m.upper()) for m in (*BANKS, "bank-e"))
        validators = tuple(info(f"node-{i}", m, address=f"127.0.0.1:{7100 + i}") for i, m in enumerate(BANKS))
        self.spec = GenesisSpec(CHAIN, T0, members, tuple(accounts), validators, (), voters, threshold)
        self.ledger = InMemoryLedger(self.spec, PROTOCOL)  # PoP checks: consensus.bls.pop_verify
        self.nonce = 0
        self.time = T0
        self.outcomes: list[BlockOutcome] = []
        self.blocks: list[tuple[list[bytes], int]] = []

    def submit(self, *txs: object, advance: int = 1) -> list:  # type: ignore[override]
        self.time += advance
        raw = [t if isinstance(t, bytes) else t.to_bytes() for t in txs]  # type: ignore[attr-defined]
        outcome = self.ledger.apply(raw, time=self.time)
        self.outcomes.append(outcome)
        self.blocks.append((raw, self.time))
        return list(outcome.receipts)

    @property
    def epoch(self) -> EpochRecord:
        return current_epoch(self.ledger.state)

    def propose(self, actor: str, pid: str, *actions: object, expiry: int | None = None) -> o.Propose:
        return o.Propose(actor, pid, tuple(actions), self.ledger.height + 100 if expiry is None else expiry)

    def governance_state(self) -> dict[bytes, bytes]:
        """Everything but the per-block bookkeeping (chain meta, replay records): what an operation may change."""
        return {k: v for k, v in self.ledger.state.items() if k[:1] not in (b"M", b"T", b"E", b"e")}


def refused(w: GovWorld, signer: str, op: object, code: int) -> codes.ReasonCode:
    """The op is refused with `code` and nothing but the block bookkeeping changes."""
    before = w.governance_state()
    r = w.run(signer, op)
    assert r.code == code, (codes.REASONS.get(r.code), r.detail)
    assert r.failed_op == 0 and r.events == ()
    assert w.governance_state() == before
    assert w.outcomes[-1].next_epoch is None
    return r


def kinds(r: object) -> list[str]:
    return [e.kind for e in r.events]  # type: ignore[attr-defined]


@pytest.fixture
def w() -> GovWorld:
    return GovWorld()


# -- genesis -----------------------------------------------------------------------------------------------------


def test_genesis_epoch_and_governance(w: GovWorld) -> None:
    epoch = w.epoch
    assert (epoch.epoch, epoch.start_height) == (0, 1)
    assert [v.node_id for v in epoch.validators] == ["node-0", "node-1", "node-2", "node-3"]
    assert chain_params_values(epoch.params) == DEFAULT_CHAIN_PARAMS
    assert epoch.validators == w.spec.validators
    gov = current_governance(w.ledger.state)
    assert gov.voters == BANKS and gov.threshold == 3
    vs = ValidatorSet(epoch.epoch, validator_set_entries(epoch))
    assert vs.total_power == 4 and vs.quorum_power == 3


def test_genesis_default_voters_and_threshold() -> None:
    w = GovWorld(threshold=None, voters=None)
    gov = current_governance(w.ledger.state)
    assert gov.voters == ("bank-a", "bank-b", "bank-c", "bank-d", "bank-e", "consortium")
    assert gov.threshold == 2 * 6 // 3 + 1 == 5


@pytest.mark.parametrize(("voters", "threshold"), [(BANKS, 2), (BANKS, 5), (("bank-x",), 1), ((), 1),
                                                    (("bank-a", "bank-a"), 2)])
def test_genesis_refuses_bad_governance(voters: tuple[str, ...], threshold: int) -> None:
    with pytest.raises(ValueError):
        GovWorld(threshold=threshold, voters=voters)


# -- M of N --------------------------------------------------------------------------------------------------------


def test_three_of_four_executes_on_the_third_approval(w: GovWorld) -> None:
    r = w.ok(GA, w.propose(GA, "p1", o.AddMember("bank-f", "Bank F", True), o.SetApprovalThreshold(4)))
    assert kinds(r) == ["proposal_created", "proposal_approved"]
    assert w.ledger.get(member_key("bank-f")) is None
    r = w.ok(GB, o.Approve(GB, "p1"))
    assert kinds(r) == ["proposal_approved"] and r.events[0].attr("approvals") == 2
    r = w.ok(GC, o.Approve(GC, "p1"))
    assert kinds(r) == ["proposal_approved", "member_added", "threshold_set", "proposal_executed"]
    assert w.ledger.get(member_key("bank-f")).name == "Bank F"
    gov = current_governance(w.ledger.state)
    assert gov.voters == (*BANKS, "bank-f") and gov.threshold == 4
    rec = proposal(w.ledger.state, "p1")
    assert rec.status == ProposalStatus.EXECUTED and rec.approvals == ("bank-a", "bank-b", "bank-c")
    assert rec.closed_height == w.ledger.height
    assert w.outcomes[-1].next_epoch is None  # no validator or params change: no epoch change
    refused(w, GD, o.Approve(GD, "p1"), codes.PROPOSAL_NOT_OPEN)


def test_add_validator_schedules_the_next_epoch(w: GovWorld) -> None:
    w.ok(GA, w.propose(GA, "join-e", o.SetVoter("bank-e", True), add_validator("node-4", "bank-e", 1, "10.0.0.5:7100")))
    w.ok(GB, o.Approve(GB, "join-e"))
    r = w.ok(GC, o.Approve(GC, "join-e"))
    assert "validator_added" in kinds(r) and "epoch_scheduled" in kinds(r)
    h = w.ledger.height
    nxt = w.outcomes[-1].next_epoch
    assert nxt is not None and nxt == w.epoch
    assert (nxt.epoch, nxt.start_height) == (1, h + 1)
    assert [v.node_id for v in nxt.validators] == ["node-0", "node-1", "node-2", "node-3", "node-4"]
    assert nxt.validators[4].address == "10.0.0.5:7100"
    vs = ValidatorSet(nxt.epoch, validator_set_entries(nxt))
    assert len(vs) == 5 and vs.index_of[b"node-4"] == 4
    # the following block changes nothing about epochs
    w.ok(GA, o.Propose(GA, "noop", (o.SetApprovalThreshold(3),), h + 50))
    assert w.outcomes[-1].next_epoch is None and w.epoch == nxt


def test_remove_rotate_and_address(w: GovWorld) -> None:
    w.ok(GA, w.propose(GA, "grow", add_validator("node-4", "bank-e"), add_validator("node-5", "bank-e")))
    w.ok(GB, o.Approve(GB, "grow"))
    w.ok(GC, o.Approve(GC, "grow"))
    assert w.epoch.epoch == 1
    w.ok(GA, w.propose(GA, "shrink", o.RemoveValidator("node-1"), rotate("node-2", "node-2b"),
                       o.SetValidatorAddress("node-3", "node3.example:9000")))
    w.ok(GB, o.Approve(GB, "shrink"))
    r = w.ok(GD, o.Approve(GD, "shrink"))
    assert kinds(r)[1:4] == ["validator_removed", "validator_keys_rotated", "validator_address_set"]
    epoch = w.epoch
    assert epoch.epoch == 2
    assert [v.node_id for v in epoch.validators] == ["node-0", "node-2", "node-3", "node-4", "node-5"]
    assert epoch.validators[1].bls_key == bls_keys("node-2b")[0]
    assert epoch.validators[2].address == "node3.example:9000"
    ValidatorSet(epoch.epoch, validator_set_entries(epoch))


def test_threshold_one_executes_at_once_and_params_bump_epoch() -> None:
    w = GovWorld(threshold=None, voters=("bank-a",))
    assert current_governance(w.ledger.state).threshold == 1
    params = o.SetChainParams(500, 1_000_000, 3000, 5, 8000, 400)
    r = w.ok(GA, w.propose(GA, "p", params))
    assert kinds(r) == ["proposal_created", "proposal_approved", "chain_params_set", "epoch_scheduled",
                        "proposal_executed"]
    assert w.epoch.params.base_timeout_ms == 3000 and w.epoch.epoch == 1
    assert w.outcomes[-1].next_epoch == w.epoch


def test_set_role_grants_governor(w: GovWorld) -> None:
    w.ok(ADMIN, o.RegisterAccount(ADMIN, "ops@bank-a", (pub("ops@bank-a"),), 1, None))
    w.keys["ops@bank-a"] = [key_for("ops@bank-a")]
    refused(w, ADMIN, o.GrantRole(ADMIN, "ops@bank-a", "governor"), codes.GOVERNOR_ROLE_BY_PROPOSAL)
    refused(w, ADMIN, o.RevokeRole(ADMIN, GA, "governor"), codes.GOVERNOR_ROLE_BY_PROPOSAL)
    w.ok(GA, w.propose(GA, "gov", o.SetRole("ops@bank-a", "governor", True), o.SetRole(GB, "governor", False)))
    w.ok(GC, o.Approve(GC, "gov"))
    r = w.ok(GD, o.Approve(GD, "gov"))
    assert kinds(r).count("role_set") == 2
    assert w.acct("ops@bank-a").roles & ROLE_BITS["governor"]
    assert not w.acct(GB).roles & ROLE_BITS["governor"]
    refused(w, GB, w.propose(GB, "x", o.SetApprovalThreshold(3)), codes.NOT_GOVERNOR)
    # ops@bank-a now acts for bank-a, which already approved "gov"-like proposals through gov@bank-a
    w.ok("ops@bank-a", w.propose("ops@bank-a", "y", o.SetApprovalThreshold(4)))


def test_cancel(w: GovWorld) -> None:
    w.ok(GA, w.propose(GA, "p", o.SetApprovalThreshold(4)))
    refused(w, GB, o.CancelProposal(GB, "p"), codes.NOT_PROPOSER)
    r = w.ok(GA, o.CancelProposal(GA, "p"))
    assert kinds(r) == ["proposal_cancelled"]
    assert proposal(w.ledger.state, "p").status == ProposalStatus.CANCELLED
    refused(w, GB, o.Approve(GB, "p"), codes.PROPOSAL_NOT_OPEN)
    refused(w, GA, o.CancelProposal(GA, "p"), codes.PROPOSAL_NOT_OPEN)
    refused(w, GA, w.propose(GA, "p", o.SetApprovalThreshold(4)), codes.PROPOSAL_EXISTS)


def test_expiry(w: GovWorld) -> None:
    h = w.ledger.height
    w.ok(GA, o.Propose(GA, "p", (o.SetApprovalThreshold(4),), h + 2))
    w.ok(GB, o.Approve(GB, "p"))  # height h + 2: still open
    refused(w, GC, o.Approve(GC, "p"), codes.PROPOSAL_EXPIRED)
    refused(w, GA, o.CancelProposal(GA, "p"), codes.PROPOSAL_EXPIRED)
    assert current_governance(w.ledger.state).threshold == 3


# -- refusals ------------------------------------------------------------------------------------------------------


def test_authority_refusals(w: GovWorld) -> None:
    refused(w, GE, w.propose(GE, "p", o.SetApprovalThreshold(4)), codes.NOT_VOTER)
    refused(w, ADMIN, w.propose(ADMIN, "p", o.SetApprovalThreshold(4)), codes.NOT_GOVERNOR)
    refused(w, GA, o.Approve(GA, "nope"), codes.PROPOSAL_NOT_FOUND)
    refused(w, GA, o.CancelProposal(GA, "nope"), codes.PROPOSAL_NOT_FOUND)
    h = w.ledger.height  # the next block has height h + 1
    refused(w, GA, o.Propose(GA, "p", (o.SetApprovalThreshold(4),), h), codes.INVALID_PROPOSAL_EXPIRY)
    h = w.ledger.height
    refused(w, GA, o.Propose(GA, "p", (o.SetApprovalThreshold(4),), h + 2 + MAX_PROPOSAL_LIFETIME),
            codes.INVALID_PROPOSAL_EXPIRY)
    h = w.ledger.height
    w.ok(GA, o.Propose(GA, "p0", (o.SetApprovalThreshold(4),), h + 1 + MAX_PROPOSAL_LIFETIME))
    w.ok(GA, w.propose(GA, "p", o.SetApprovalThreshold(4)))
    refused(w, GA, o.Approve(GA, "p"), codes.ALREADY_APPROVED)
    refused(w, GE, o.Approve(GE, "p"), codes.NOT_VOTER)
    tx = w.tx([GA], o.Approve(GB, "p"))
    assert w.submit(tx)[0].code == codes.ACTOR_NOT_SIGNER


@pytest.mark.parametrize(
    ("actions", "code"),
    [
        ((o.AddMember("bank-a", "again", False),), codes.MEMBER_EXISTS),
        ((o.RemoveMember("bank-z"),), codes.MEMBER_NOT_FOUND),
        ((o.RemoveMember("bank-a"),), codes.MEMBER_RUNS_VALIDATOR),
        ((o.SetVoter("bank-z", True),), codes.MEMBER_NOT_FOUND),
        ((o.SetVoter("bank-a", True),), codes.VOTER_UNCHANGED),
        ((o.SetVoter("bank-a", False), o.SetVoter("bank-b", False)), codes.THRESHOLD_UNREACHABLE),
        ((add_validator("node-4", "bank-z"),), codes.MEMBER_NOT_FOUND),
        ((add_validator("node-0", "bank-e"),), codes.VALIDATOR_EXISTS),
        ((o.AddValidator("node-4", "bank-e", pub("id/node-0"), *bls_keys("node-4"), "", 1),),
         codes.DUPLICATE_IDENTITY_KEY),
        ((o.AddValidator("node-4", "bank-e", pub("id/node-4"), *bls_keys("node-0"), "", 1),),
         codes.DUPLICATE_BLS_KEY),
        ((o.AddValidator("node-4", "bank-e", pub("id/node-4"), bls_keys("node-4")[0], bls_keys("node-5")[1], "", 1),),
         codes.BAD_BLS_POP),
        ((o.AddValidator("node-4", "bank-e", pub("id/node-4"), bytes(48), bytes(96), "", 1),), codes.BAD_BLS_POP),
        ((add_validator("node-4", "bank-e", address="h:0"),), codes.INVALID_VALIDATOR_ADDRESS),
        ((add_validator("node-4", "bank-e", address="127.0.0.1:7100"),), codes.INVALID_VALIDATOR_ADDRESS),
        ((o.SetValidatorAddress("node-1", "127.0.0.1:7100"),), codes.INVALID_VALIDATOR_ADDRESS),
        ((o.RemoveValidator("node-9"),), codes.VALIDATOR_NOT_FOUND),
        ((rotate("node-9", "x"),), codes.VALIDATOR_NOT_FOUND),
        ((rotate("node-1", "node-2"),), codes.DUPLICATE_IDENTITY_KEY),
        ((o.RemoveValidator("node-3"),), codes.TOO_FEW_VALIDATORS),
        ((add_validator("node-4", "bank-e", power=2),), codes.VALIDATOR_POWER_TOO_HIGH),
        ((o.SetRole("ghost@bank-a", "admin", True),), codes.ACCOUNT_NOT_FOUND),
        ((o.SetRole(GA, "governor", True),), codes.ROLE_ALREADY_GRANTED),
        ((o.SetRole(GA, "admin", False),), codes.ROLE_NOT_GRANTED),
        ((o.SetApprovalThreshold(2),), codes.INVALID_APPROVAL_THRESHOLD),
        ((o.SetApprovalThreshold(5),), codes.INVALID_APPROVAL_THRESHOLD),
        ((o.AddMember("bank-f", "F", True), o.AddMember("bank-g", "G", True)), codes.INVALID_APPROVAL_THRESHOLD),
        ((o.SetChainParams(0, 1_000_000, 2000, 6, 10_000, 500),), codes.INVALID_CHAIN_PARAMS),
        ((o.SetChainParams(2000, 1_000_000, 2000, 6, 10_000, 2000),), codes.INVALID_CHAIN_PARAMS),
        ((o.SetChainParams(2000, 1_000_000, 2000, 21, 10_000, 500),), codes.INVALID_CHAIN_PARAMS),
    ],
    ids=lambda x: codes.REASONS[x].name if isinstance(x, int) else None,
)
def test_bad_proposals_are_refused_at_propose_time(w: GovWorld, actions: tuple, code: int) -> None:
    r = refused(w, GA, w.propose(GA, "bad", *actions), code)
    assert f"action {len(actions) - 1}" in r.detail or "after" in r.detail


def test_refused_at_execution_leaves_everything_unchanged(w: GovWorld) -> None:
    """Valid when proposed, invalid when the last approval arrives: the approving transaction is refused."""
    w.ok(GA, w.propose(GA, "add", add_validator("node-4", "bank-e")))
    w.ok(GA, w.propose(GA, "add-too", add_validator("node-4", "bank-e")))
    for p in ("add", "add-too"):
        w.ok(GB, o.Approve(GB, p))
    w.ok(GC, o.Approve(GC, "add"))
    r = refused(w, GC, o.Approve(GC, "add-too"), codes.VALIDATOR_EXISTS)
    assert r.detail.startswith("action 0 (add_validator)")
    assert proposal(w.ledger.state, "add-too").status == ProposalStatus.OPEN


def test_key_changes_use_the_protocols_pop_verifier(w: GovWorld) -> None:
    """The PoP check is the one passed in the protocol (nothing registered): key changes ask it, other actions do
    not; a check that refuses, or fails on its input, refuses the key change with BAD_BLS_POP."""
    asked: list[tuple[bytes, bytes]] = []

    def refusing(pk: bytes, pop: bytes) -> bool:
        asked.append((pk, pop))
        return False

    def failing(pk: bytes, pop: bytes) -> bool:
        raise ValueError("not a point")

    w.ledger.protocol = replace(PROTOCOL, pop_verifier=refusing)
    refused(w, GA, w.propose(GA, "p", add_validator("node-4", "bank-e")), codes.BAD_BLS_POP)
    assert asked == [bls_keys("node-4")]
    refused(w, GA, w.propose(GA, "r", rotate("node-1", "n1b")), codes.BAD_BLS_POP)
    assert asked[-1] == bls_keys("n1b")
    w.ledger.protocol = replace(PROTOCOL, pop_verifier=failing)
    refused(w, GA, w.propose(GA, "p", add_validator("node-4", "bank-e")), codes.BAD_BLS_POP)
    asked.clear()
    w.ledger.protocol = replace(PROTOCOL, pop_verifier=refusing)
    w.ok(GA, w.propose(GA, "q", o.SetApprovalThreshold(4)))  # other actions do not ask
    assert asked == []
    w.ledger.protocol = PROTOCOL
    w.ok(GA, w.propose(GA, "p", add_validator("node-4", "bank-e")))  # consensus.bls.pop_verify accepts


def test_removing_a_member_after_its_validator(w: GovWorld) -> None:
    w.ok(GA, w.propose(GA, "e", add_validator("node-4", "bank-e"), add_validator("node-5", "bank-e")))
    w.ok(GB, o.Approve(GB, "e"))
    w.ok(GC, o.Approve(GC, "e"))
    w.ok(GA, w.propose(GA, "d", o.RemoveValidator("node-3"), o.RemoveMember("bank-d")))
    w.ok(GB, o.Approve(GB, "d"))
    r = w.ok(GC, o.Approve(GC, "d"))
    assert "member_removed" in kinds(r)
    assert w.ledger.get(member_key("bank-d")) is None
    assert current_governance(w.ledger.state).voters == ("bank-a", "bank-b", "bank-c")
    refused(w, GD, w.propose(GD, "x", o.SetApprovalThreshold(2)), codes.NOT_VOTER)


# -- epochs --------------------------------------------------------------------------------------------------------


def test_one_epoch_change_per_block(w: GovWorld) -> None:
    w.ok(GA, w.propose(GA, "p1", add_validator("node-4", "bank-e")))
    w.ok(GA, w.propose(GA, "p2", o.SetChainParams(1000, 1_000_000, 2000, 6, 10_000, 500)))
    for p in ("p1", "p2"):
        w.ok(GB, o.Approve(GB, p))
    receipts = w.submit(w.tx([GC], o.Approve(GC, "p1")), w.tx([GD], o.Approve(GD, "p2")))
    assert [r.code for r in receipts] == [0, 0]
    h = w.ledger.height
    nxt = w.outcomes[-1].next_epoch
    assert nxt is not None and (nxt.epoch, nxt.start_height) == (1, h + 1)
    assert len(nxt.validators) == 5 and nxt.params.max_block_txs == 1000
    assert [e.attr("epoch") for r in receipts for e in r.events if e.kind == "epoch_scheduled"] == [1, 1]
    w.ok(GA, w.propose(GA, "p3", o.RemoveValidator("node-4")))
    w.ok(GB, o.Approve(GB, "p3"))
    w.ok(GC, o.Approve(GC, "p3"))
    nxt2 = w.outcomes[-1].next_epoch
    assert nxt2 is not None and (nxt2.epoch, nxt2.start_height) == (2, w.ledger.height + 1)
    assert validator_set_entries(nxt2) == validator_set_entries(current_epoch(GovWorld().ledger.state))


def test_replay_gives_the_same_roots(w: GovWorld) -> None:
    test_remove_rotate_and_address(w)
    test_set_role_grants_governor(w)
    replay = GovWorld()
    for (raw, time), outcome in zip(w.blocks, w.outcomes, strict=True):
        again = replay.ledger.apply(raw, time=time)
        assert again.state_root == outcome.state_root
        assert again.receipts == outcome.receipts
        assert again.next_epoch == outcome.next_epoch
    assert replay.ledger.root == w.ledger.root


def test_epoch_and_governance_keys_are_committed(w: GovWorld) -> None:
    tree = w.ledger.tree
    for key in (EPOCH_KEY, GOVERNANCE_KEY):
        assert tree.get(key) == w.ledger.state.get_state(key)


# -- wire and JSON -------------------------------------------------------------------------------------------------


def test_json_and_wire_round_trip(w: GovWorld) -> None:
    op = w.propose(GA, "join-e", o.AddMember("bank-f", "Bank F", True), add_validator("node-4", "bank-f", 1, "h:1"),
                   o.RemoveValidator("node-0"), rotate("node-1", "n1b"), o.SetValidatorAddress("node-2", ""),
                   o.SetRole(GA, "admin", True), o.SetApprovalThreshold(3), PARAMS, o.SetVoter("bank-e", True),
                   o.RemoveMember("bank-e"))
    body = w.tx([GA], op, o.Approve(GA, "x"), o.CancelProposal(GA, "y")).body
    obj = to_json(OPS.body, body)
    assert obj["operations"][0]["kind"] == "propose"
    assert obj["operations"][0]["actions"][1]["kind"] == "add_validator"
    assert [x["kind"] for x in obj["operations"][1:]] == ["approve", "cancel_proposal"]
    assert from_json(OPS.body, obj) == body
    assert decode(OPS.body, encode(OPS.body, body)) == body


# -- property: random reconfigurations keep the set admissible ----------------------------------------------------

NODE_POOL = tuple(f"node-{i}" for i in range(4, 10))


@st.composite
def reconfigurations(draw: st.DrawFn) -> list[tuple[str, str, int]]:
    steps = draw(st.lists(st.tuples(st.sampled_from(("add", "remove", "rotate")),
                                    st.sampled_from(("node-0", "node-1", "node-2", "node-3", *NODE_POOL)),
                                    st.integers(1, 3)), min_size=1, max_size=6))
    return steps


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reconfigurations())
def test_random_reconfigurations(steps: list[tuple[str, str, int]]) -> None:
    w = GovWorld(threshold=None, voters=("bank-a",))
    epoch_no = 0
    for i, (what, node, power) in enumerate(steps):
        if what == "add":
            action: object = add_validator(node, "bank-e", power)
        elif what == "remove":
            action = o.RemoveValidator(node)
        else:
            action = rotate(node, f"{node}-r{i}")
        before = w.epoch
        r = w.run(GA, w.propose(GA, f"p{i}", action))
        after = w.epoch
        if r.code == 0:
            epoch_no += 1
            assert after.epoch == epoch_no and after.start_height == w.ledger.height + 1
            assert w.outcomes[-1].next_epoch == after
        else:
            assert after == before and w.outcomes[-1].next_epoch is None
        ValidatorSet(after.epoch, validator_set_entries(after))
        total = sum(v.power for v in after.validators)
        assert len(after.validators) >= 4 and all(v.power <= (total - 1) // 3 for v in after.validators)
    assert w.ledger.get(account_key(GA)) is not None


def test_too_many_validators(w: GovWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    from ledger.ops import governance as governance_ops

    monkeypatch.setattr(governance_ops, "MAX_VALIDATORS", 5)
    r = refused(w, GA, w.propose(GA, "p", add_validator("node-4", "bank-e"), add_validator("node-5", "bank-e")),
                codes.TOO_MANY_VALIDATORS)
    assert r.detail.startswith("action 1 (add_validator)")


def test_every_governance_code_is_tested() -> None:
    source = Path(__file__).read_text(encoding="utf-8")
    for c in codes.REASONS.values():
        if 600 <= c.code < 700:
            assert f"codes.{c.name}" in source, c.name
