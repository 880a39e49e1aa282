"""apply_block as a pure function: block checks, speculative execution on uncommitted parents, trusted codecs."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import pytest

from ledger import codes
from ledger import operations as o
from ledger.codec import DecodeError, decode, decode_trusted, encode, encode_trusted, wire
from ledger.context import BlockContext, TxContext
from ledger.errors import Refused
from ledger.events import decode_receipt, encode_receipt
from ledger.jsonform import body_from_json, body_to_json
from ledger.ops import CORE_OPERATIONS
from ledger.schema import ACCOUNT_ID, TEXT
from ledger.smt import SparseMerkleTree
from ledger.state import MemoryState, Overlay, PendingNodes
from ledger.state_keys import RECORD_BY_TAG, contracts_key, tx_seen_key
from ledger.transaction import decode_transaction
from ledger.transition import apply_block
from tests.ledger.world import ADMIN, CHAIN, OPS, World, key_for, standard_world

ISSUER = "treasury@issuer-co"
A, B = "alice@bank-a", "bob@bank-b"


def test_block_context_is_checked() -> None:
    w = standard_world()
    led = w.ledger
    p = led.protocol
    with pytest.raises(AssertionError):
        apply_block(led.state, BlockContext(CHAIN, led.height + 2, led.time), [], tree=led.tree, protocol=p)
    with pytest.raises(AssertionError):
        apply_block(led.state, BlockContext("other", led.height + 1, led.time), [], tree=led.tree, protocol=p)
    with pytest.raises(AssertionError):
        apply_block(led.state, BlockContext(CHAIN, led.height + 1, led.time - 1), [], tree=led.tree, protocol=p)
    with pytest.raises(AssertionError):
        apply_block(MemoryState(), BlockContext(CHAIN, 1, 0), [], tree=led.tree, protocol=p)


def test_apply_block_is_pure() -> None:
    w = standard_world()
    led = w.ledger
    before = dict(led.state.items())
    t = w.tx([ISSUER], o.Issue(ISSUER, "BOND-A", A, 5))
    out1 = led.execute([t], time=w.time + 1)
    out2 = led.execute([t], time=w.time + 1)
    assert out1.state_root == out2.state_root and out1.changes == out2.changes
    assert dict(led.state.items()) == before


def test_speculative_chain_then_commit() -> None:
    """Execute block h+1 on top of the uncommitted block h, then commit both: same roots as one by one."""
    w1, w2 = standard_world(), standard_world()
    t1 = w1.tx([ISSUER], o.Issue(ISSUER, "BOND-A", A, 100))
    t2 = w1.tx([A], o.Transfer(A, "BOND-A", (o.TransferLeg(B, 40),)))
    led = w1.ledger
    ctx1 = BlockContext(CHAIN, led.height + 1, led.time + 1)
    ctx2 = BlockContext(CHAIN, led.height + 2, led.time + 2)
    out1 = apply_block(led.state, ctx1, [t1], tree=led.tree, protocol=led.protocol)
    tree1 = SparseMerkleTree(PendingNodes(led.nodes, out1.smt_nodes), out1.state_root)
    out2 = apply_block(out1.overlay, ctx2, [t2], tree=tree1, protocol=led.protocol)
    assert [r.code for r in out2.receipts] == [0]
    # a losing branch on top of out1 is simply dropped
    loser = apply_block(
        out1.overlay, ctx2, [w1.tx([A], o.Redeem(A, "BOND-A", 100))], tree=tree1, protocol=led.protocol
    )
    assert loser.state_root != out2.state_root
    led.commit(out1)
    led.commit(out2)
    assert led.audit() == {"BOND-A": 100, "CASH-T": 0}
    # the same blocks applied one after the other on a fresh world give the same roots
    r1 = w2.ledger.apply([t1], time=ctx1.time)
    r2 = w2.ledger.apply([t2], time=ctx2.time)
    assert (r1.state_root, r2.state_root) == (out1.state_root, out2.state_root)


def test_overlay_reads_through_layers() -> None:
    base = MemoryState({b"M": b"\x93\xa1x\x00\x00"})
    block = Overlay(base)
    tx = Overlay(block)
    assert tx.get(b"M").chain_id == "x"
    tx.put(b"P" + b"a@b", None)
    assert block.get(b"Pa@b") is None and block.get_state(b"Pa@b") is None
    tx.commit()
    assert list(block.written_keys()) == [b"Pa@b"]
    assert block.changes() == {b"Pa@b": None}


def test_trusted_codecs_match_strict_ones(tmp_path: object) -> None:
    w = standard_world()
    w.ok(ISSUER, o.Issue(ISSUER, "BOND-A", A, 7))
    out = w.ledger.apply([w.tx([A], o.Transfer(A, "BOND-A", (o.TransferLeg(B, 1),)))], time=w.time + 2)
    for receipt in out.receipts:
        data = encode_receipt(receipt, operations=OPS)
        assert data == encode(OPS.receipt, receipt) and decode_receipt(data, operations=OPS) == receipt
    seen = 0
    for key, raw in w.ledger.state.items():
        rt = RECORD_BY_TAG[key[0]]
        if rt is None:
            continue
        strict = decode(rt, raw)
        assert decode_trusted(rt, raw) == strict
        assert encode_trusted(rt, strict) == encode(rt, strict) == raw
        seen += 1
    assert seen > 20


def test_world_helper_sanity() -> None:
    w = World()
    assert w.ledger.height == 0 and w.ledger.audit() == {}


@dataclass(frozen=True, slots=True)
class AttestClaim:
    KIND: ClassVar[int] = 127
    actor: str = wire(ACCOUNT_ID)
    subject: str = wire(ACCOUNT_ID)
    claim: str = wire(TEXT)


def attest(ctx: TxContext, op: AttestClaim) -> None:
    actor = ctx.actor(op.actor)
    if not ctx.has_role(actor, "kyc_provider"):
        raise Refused(codes.UNAUTHORIZED, "not a KYC provider")
    ctx.account(op.subject)
    ctx.state.put(contracts_key(b"claim/" + op.subject.encode()), op.claim.encode())
    ctx.emit("test_claim_attested", actor=op.actor, account=op.subject, claim=op.claim)


@dataclass(frozen=True, slots=True)
class NoActorFirst:
    KIND: ClassVar[int] = 100
    subject: str = wire(ACCOUNT_ID)
    actor: str = wire(ACCOUNT_ID)


def test_extension_operation_plugs_in() -> None:
    """Another layer adds an operation kind with its processor and event kind by extending the operation set: a new
    value, decoded, encoded and executed by whoever is given it; the core set is unchanged and does not know it."""
    with pytest.raises(ValueError):
        CORE_OPERATIONS.extend([(type("Bad", (), {"KIND": 3}), attest)])  # a core kind number
    with pytest.raises(ValueError):
        CORE_OPERATIONS.extend([(NoActorFirst, attest)])
    ext = CORE_OPERATIONS.extend([(AttestClaim, attest)], ["test_claim_attested"])
    with pytest.raises(ValueError):
        ext.extend([(AttestClaim, attest)])  # kind 127 is taken
    assert AttestClaim not in CORE_OPERATIONS.dispatch and 127 not in CORE_OPERATIONS.variant.by_kind
    assert "test_claim_attested" not in CORE_OPERATIONS.event_names
    assert ext.types == (*CORE_OPERATIONS.types, AttestClaim) and ext.dispatch[AttestClaim] is attest
    w = standard_world()
    core = w.ledger.protocol
    kyc = w.account("kyc@bank-b", roles=("kyc_provider",))
    w.ledger.protocol = replace(core, operations=ext)
    tx = w.tx([kyc], AttestClaim(kyc, A, "verified:CN"))
    # a ledger under the core set: rejected (not executed), id not consumed
    w.ledger.protocol = core
    assert w.submit(tx)[0].code == codes.UNKNOWN_VARIANT
    assert w.submit(tx.to_bytes())[0].code == codes.UNKNOWN_VARIANT
    with pytest.raises(DecodeError):
        decode_transaction(tx.to_bytes(), operations=OPS)
    assert decode_transaction(tx.to_bytes(), operations=ext) == tx
    assert body_from_json(body_to_json(tx.body, operations=ext), operations=ext) == tx.body
    w.ledger.protocol = replace(core, operations=ext)
    r = w.submit(tx)[0]
    assert r.code == 0 and r.events[0].kind == "test_claim_attested"
    assert decode_receipt(encode_receipt(r, operations=ext), operations=ext) == r
    with pytest.raises(DecodeError):
        decode_receipt(encode_receipt(r, operations=ext), operations=OPS)
    assert w.ledger.get(contracts_key(b"claim/" + A.encode())) == b"verified:CN"
    assert w.run(A, AttestClaim(A, B, "x")).code == codes.UNAUTHORIZED


class ExplodingEngine:
    """A rule engine with a bug: its failures deny the movement with RULE_ENGINE_ERROR, they do not halt blocks."""

    def validate_rules(self, asset_id: str, rules: tuple) -> tuple[int, str]:
        if rules:
            raise KeyError("bad rule")
        return 0, ""

    def check(self, movement: object, state: object) -> tuple[int, str]:
        if movement.amount == 13:  # type: ignore[attr-defined]
            raise ZeroDivisionError
        if movement.amount == 14:  # type: ignore[attr-defined]
            return 4242, "unregistered"
        return 0, ""

    def on_success(self, movement: object, state: object) -> None:
        if movement.amount == 15:  # type: ignore[attr-defined]
            raise ValueError("state update bug")

    def check_transaction(self, movements: tuple, state: object) -> tuple[int, str, int]:
        if movements[0].amount == 16:
            raise LookupError("end-state rule bug")
        return 0, "", 0


def test_failing_rule_engine_denies() -> None:
    w = standard_world()
    w.ok(ISSUER, o.Issue(ISSUER, "BOND-A", A, 100))
    w.ledger.protocol = replace(w.ledger.protocol, engine=ExplodingEngine())
    before = w.ledger.audit()
    for amount in (13, 14, 15, 16):
        r = w.run(A, o.Transfer(A, "BOND-A", (o.TransferLeg(B, amount),)))
        assert r.code == codes.RULE_ENGINE_ERROR, r.detail
    r = w.run(ISSUER, o.SetAssetRules(ISSUER, "BOND-A", (o.RuleSpec("x", ()),)))
    assert r.code == codes.RULE_ENGINE_ERROR
    assert w.ledger.audit() == before
    assert w.run(A, o.Transfer(A, "BOND-A", (o.TransferLeg(B, 1),))).code == 0




class MachineFailureEngine:
    """A rule engine that runs out of memory / stack: machine-dependent failures that must not become refusals."""

    def __init__(self, exc: type[BaseException]) -> None:
        self.exc = exc

    def validate_rules(self, asset_id: str, rules: tuple) -> tuple[int, str]:
        if rules:
            raise self.exc
        return 0, ""

    def check(self, movement: object, state: object) -> tuple[int, str]:
        if movement.amount == 13:  # type: ignore[attr-defined]
            raise self.exc
        return 0, ""

    def on_success(self, movement: object, state: object) -> None:
        if movement.amount == 15:  # type: ignore[attr-defined]
            raise self.exc

    def check_transaction(self, movements: tuple, state: object) -> tuple[int, str, int]:
        return 0, "", 0


@pytest.mark.parametrize("exc", [MemoryError, RecursionError])
def test_machine_dependent_engine_failures_propagate(exc: type[BaseException]) -> None:
    """Running out of memory or stack depends on the machine: turning it into a refusal would let validators with
    different resources decide differently (a fork), so it propagates out of the state transition instead."""
    w = standard_world()
    w.ok(ISSUER, o.Issue(ISSUER, "BOND-A", A, 100))
    w.ledger.protocol = replace(w.ledger.protocol, engine=MachineFailureEngine(exc))
    before = w.ledger.audit()
    for amount in (13, 15):
        with pytest.raises(exc):
            w.run(A, o.Transfer(A, "BOND-A", (o.TransferLeg(B, amount),)))
    with pytest.raises(exc):
        w.run(ISSUER, o.SetAssetRules(ISSUER, "BOND-A", (o.RuleSpec("x", ()),)))
    assert w.ledger.audit() == before


def test_signatures_verified_predicate_skips_only_reverification(monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller that already verified a transaction's signatures can skip re-verification and gets the identical
    outcome; transactions the predicate does not vouch for are still fully verified (a forgery is rejected)."""
    from ledger import transition

    w = standard_world()
    led = w.ledger
    good = w.tx([ISSUER], o.Issue(ISSUER, "BOND-A", A, 5))
    other = w.tx([ISSUER], o.Issue(ISSUER, "BOND-A", B, 7))
    assert other.tx_id != good.tx_id
    forged_sig = bytearray(other.to_bytes())  # the last byte belongs to the last signature
    forged_sig[-1] ^= 1
    forged = bytes(forged_sig)
    ctx = BlockContext(CHAIN, led.height + 1, led.time + 1)
    plain = apply_block(led.state, ctx, [good, forged], tree=led.tree, protocol=led.protocol)

    calls: list[int] = []
    real = transition.verify_signature

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(transition, "verify_signature", counting)
    vouched = {good.tx_id}

    def verified(item: object) -> bool:
        return not isinstance(item, bytes) and item.tx_id in vouched

    fast = apply_block(
        led.state, ctx, [good, forged], tree=led.tree, protocol=led.protocol, signatures_verified=verified
    )
    assert fast.state_root == plain.state_root
    assert [r.code for r in fast.receipts] == [r.code for r in plain.receipts]
    assert fast.receipts[0].code == codes.OK and fast.receipts[1].code != codes.OK
    assert len(calls) == 1  # only the forged copy was verified


def test_receipts_with_events_have_a_json_form() -> None:
    """Receipts and their events (whose kind is a registered name) round-trip through the strict JSON form; an
    unregistered event kind is refused with a typed error."""
    from ledger.codec import DecodeError
    from ledger.jsonform import from_json, to_json

    w = standard_world()
    receipt = w.ok(ISSUER, o.Issue(ISSUER, "BOND-A", A, 5))
    assert receipt.events
    doc = to_json(OPS.receipt, receipt)
    assert doc["events"][0]["kind"] in {e.kind for e in receipt.events}
    assert from_json(OPS.receipt, doc) == receipt
    doc["events"][0]["kind"] = "no_such_event"
    with pytest.raises(DecodeError):
        from_json(OPS.receipt, doc)


def test_final_rejections_in_a_block_are_reported_for_storage_and_others_are_not() -> None:
    """A transaction that reaches a block and is rejected there for good (expired, another chain, a closed signer)
    is reported with its receipt so the node stores it; a rejection that depends on its signature bytes (anyone can
    alter them without changing the id) or on state that may change is not, and no rejected id is consumed."""
    w = standard_world()
    w.ok(ISSUER, o.Issue(ISSUER, "CASH-T", A, 1_000))
    w.account("alice-2@bank-a")
    expired = w.tx([A], o.Transfer(A, "CASH-T", (o.TransferLeg(B, 1),)), expiry=w.ledger.height)
    other_chain = w.tx([A], o.Transfer(A, "CASH-T", (o.TransferLeg(B, 2),)), chain="other-chain")
    good = w.tx([A], o.Transfer(A, "CASH-T", (o.TransferLeg(B, 3),)))
    forged = w.tx([A], o.Transfer(A, "CASH-T", (o.TransferLeg(B, 3),)), nonce=good.body.nonce,
                  sign_with=[(A, key_for(B))])
    assert forged.tx_id == good.tx_id
    migrate = w.tx([ADMIN], o.MigrateAccount(ADMIN, A, "alice-2@bank-a", "lost keys"))
    after_migration = w.tx([A], o.Transfer(A, "CASH-T", (o.TransferLeg(B, 4),)))
    outcome = w.ledger.apply([expired, expired, other_chain, forged, migrate, after_migration], time=w.time + 1)
    got = [(r.code, r.failed_op) for r in outcome.receipts]
    assert got == [(codes.TX_EXPIRED, None), (codes.TX_EXPIRED, None), (codes.WRONG_CHAIN, None),
                   (codes.UNKNOWN_SIGNING_KEY, None), (codes.OK, None), (codes.SIGNER_CLOSED, None)]
    assert [tx_id for tx_id, _, _ in outcome.rejected] == [expired.tx_id, other_chain.tx_id, after_migration.tx_id]
    for (tx_id, tx_bytes, receipt_bytes), receipt in zip(outcome.rejected, (outcome.receipts[0], outcome.receipts[2],
                                                                            outcome.receipts[5]), strict=True):
        assert decode_receipt(receipt_bytes, operations=OPS) == receipt and not receipt.executed
        assert decode_transaction(tx_bytes, operations=OPS).tx_id == tx_id
    # No rejected id is consumed: the genuine copy of the forged one still executes.
    assert w.ledger.get(tx_seen_key(expired.tx_id)) is None and w.ledger.get(tx_seen_key(forged.tx_id)) is None
    assert w.submit(good)[0].code == codes.SIGNER_CLOSED  # (A was migrated meanwhile: rejected for good now)
