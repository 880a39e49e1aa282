"""ledger.transition.apply_certified_block: a block whose state root a certificate proved is applied without Ed25519
checks when, and only when, that provably gives the outcome of the checked `apply_block` (receipts, events, stored
bytes and changes, not only the root). These tests make the checked execution the reference and try to make the
unchecked one differ: corrupt signatures, a corrupt copy ahead of the valid one (same id), multi-signature
accounts, and random blocks of all of these."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import codes, transition
from ledger import operations as o
from ledger.transaction import SignedTransaction
from ledger.transition import BlockOutcome, apply_block, apply_certified_block
from tests.ledger.world import World, corrupt_signature, count_verifications

ASSET = "CASH-T"
PEOPLE = ("alice@bank-a", "bob@bank-b", "carol@bank-a", "dave@bank-b")


@pytest.fixture(scope="module")
def world() -> World:
    w = World()
    w.account("treasury@issuer-co", roles=("issuer",))
    for p in PEOPLE:
        w.account(p)
    w.account("joint@bank-a", n_keys=3, threshold=2)
    w.asset(ASSET, "treasury@issuer-co", cap=10**15)
    for p in (*PEOPLE, "joint@bank-a"):
        w.ok("treasury@issuer-co", o.Issue("treasury@issuer-co", ASSET, p, 1_000_000))
    return w


def transfer(w: World, sender: str, recipient: str, amount: int, nonce: int) -> SignedTransaction:
    return w.tx([sender], o.Transfer(sender, ASSET, (o.TransferLeg(recipient, amount),)), nonce=nonce)


corrupt = corrupt_signature


def as_bytes(item: SignedTransaction | bytes) -> bytes:
    return item if isinstance(item, bytes) else item.to_bytes()


def run(w: World, txs: list[bytes], certified_root: bytes | None = None) -> tuple[BlockOutcome, BlockOutcome, bool]:
    """(checked outcome, certified outcome, signatures skipped) of one block on the world's head (not committed);
    the certified root defaults to the checked one, as a verified certificate gives it."""
    led = w.ledger
    block = led.next_block(w.time + 1)
    checked = apply_block(led.state, block, txs, tree=led.tree, protocol=led.protocol)
    root = checked.state_root if certified_root is None else certified_root
    got = apply_certified_block(led.state, block, txs, tree=led.tree, protocol=led.protocol, certified_root=root)
    assert checked.signatures_checked
    return checked, got, not got.signatures_checked


def same(a: BlockOutcome, b: BlockOutcome) -> None:
    assert a.state_root == b.state_root
    assert a.receipts == b.receipts
    assert a.events == b.events
    assert a.executed == b.executed
    assert a.rejected == b.rejected
    assert a.history == b.history
    assert dict(a.changes) == dict(b.changes)
    assert dict(a.smt_nodes) == dict(b.smt_nodes)
    assert a.balance_changes == b.balance_changes


def test_valid_signatures_are_not_checked_and_the_outcome_is_the_checked_one(world, monkeypatch):
    txs = [as_bytes(transfer(world, PEOPLE[k % 4], PEOPLE[(k + 1) % 4], 10 + k, 1_000 + k)) for k in range(12)]
    led = world.ledger
    block = led.next_block(world.time + 1)
    checked = apply_block(led.state, block, txs, tree=led.tree, protocol=led.protocol)
    assert all(r.code == codes.OK for r in checked.receipts)
    calls = count_verifications(monkeypatch)
    got = apply_certified_block(led.state, block, txs, tree=led.tree, protocol=led.protocol,
                                certified_root=checked.state_root)
    assert not got.signatures_checked and calls[0] == 0
    same(checked, got)


def test_a_corrupt_signature_makes_the_root_differ_so_the_block_is_checked(world, monkeypatch):
    good = [transfer(world, PEOPLE[k % 4], PEOPLE[(k + 2) % 4], 5, 2_000 + k) for k in range(6)]
    txs = [as_bytes(t) for t in good]
    txs[3] = corrupt(good[3])
    led = world.ledger
    block = led.next_block(world.time + 1)
    checked = apply_block(led.state, block, txs, tree=led.tree, protocol=led.protocol)
    assert [r.code for r in checked.receipts] == [0, 0, 0, codes.BAD_SIGNATURE, 0, 0]
    unchecked = apply_block(led.state, block, txs, tree=led.tree, protocol=led.protocol,
                            signatures_verified=lambda _: True)
    assert unchecked.state_root != checked.state_root  # what the proof relies on
    calls = count_verifications(monkeypatch)
    got = apply_certified_block(led.state, block, txs, tree=led.tree, protocol=led.protocol,
                                certified_root=checked.state_root)
    assert got.signatures_checked and calls[0] == len(txs)
    same(checked, got)


def test_a_corrupt_copy_ahead_of_the_valid_one_gives_the_same_root_but_is_still_checked(world):
    tx = transfer(world, "alice@bank-a", "bob@bank-b", 77, 3_000)
    txs = [corrupt(tx), tx.to_bytes()]
    led = world.ledger
    block = led.next_block(world.time + 1)
    checked = apply_block(led.state, block, txs, tree=led.tree, protocol=led.protocol)
    unchecked = apply_block(led.state, block, txs, tree=led.tree, protocol=led.protocol,
                            signatures_verified=lambda _: True)
    # The case the id rule exists for: the same state either way, but the unchecked execution would store the
    # corrupt bytes as the committed transaction and give the valid copy a TX_REPLAYED receipt.
    assert unchecked.state_root == checked.state_root
    assert [r.code for r in checked.receipts] == [codes.BAD_SIGNATURE, codes.OK]
    assert [r.code for r in unchecked.receipts] == [codes.OK, codes.TX_REPLAYED]
    assert unchecked.executed != checked.executed
    _, got, skipped = run(world, txs)
    assert not skipped
    same(checked, got)


def test_a_multisignature_transaction_with_one_corrupt_signature_is_checked(world):
    joint = "joint@bank-a"
    tx = world.tx([joint], o.Transfer(joint, ASSET, (o.TransferLeg("carol@bank-a", 9),)), nonce=4_000)
    assert len(tx.signatures) == 2
    txs = [transfer(world, "bob@bank-b", "dave@bank-b", 1, 4_001).to_bytes(), corrupt(tx, 1)]
    checked, got, skipped = run(world, txs)
    assert [r.code for r in checked.receipts] == [codes.OK, codes.BAD_SIGNATURE]
    assert not skipped
    same(checked, got)


def test_a_root_that_is_not_the_checked_one_gives_the_checked_outcome(world):
    txs = [as_bytes(transfer(world, PEOPLE[k], PEOPLE[(k + 1) % 4], 3, 5_000 + k)) for k in range(4)]
    checked, got, skipped = run(world, txs, certified_root=bytes(32))
    assert not skipped
    same(checked, got)


def test_undecodable_expired_and_replayed_transactions_do_not_stop_the_skip(world):
    ok = transfer(world, "carol@bank-a", "alice@bank-a", 4, 6_000)
    expired = world.tx(["bob@bank-b"], o.Transfer("bob@bank-b", ASSET, (o.TransferLeg("dave@bank-b", 1),)),
                       nonce=6_001, expiry=world.ledger.height)
    committed = transfer(world, "dave@bank-b", "bob@bank-b", 2, 6_002)
    world.submit(committed)
    txs = [b"\x92\xc4\x01\x00\x90", ok.to_bytes(), expired.to_bytes(), committed.to_bytes()]
    checked, got, skipped = run(world, txs)
    assert [r.code for r in checked.receipts][1:] == [codes.OK, codes.TX_EXPIRED, codes.TX_REPLAYED]
    assert checked.receipts[0].code != codes.OK
    assert skipped
    same(checked, got)


def _block_from(world: World, seed: int, n: int) -> list[bytes]:
    """A random block: valid transfers, corrupt ones, corrupt copies before and after valid copies, copies of one
    transaction, multi-signature transfers with a corrupt signature, overdrafts (refused by the operation)."""
    rng = random.Random(seed)
    out: list[bytes] = []
    for k in range(n):
        sender, recipient = rng.sample(PEOPLE, 2)
        amount = rng.choice([1, 7, 5_000_000])  # the last one overdraws: code >= 200, id recorded
        tx = transfer(world, sender, recipient, amount, 100_000 + seed * 1_000 + k)
        kind = rng.randrange(6)
        if kind == 0:
            out.append(corrupt(tx))
        elif kind == 1:
            out += [corrupt(tx), tx.to_bytes()]
        elif kind == 2:
            out += [tx.to_bytes(), corrupt(tx)]
        elif kind == 3:
            out += [tx.to_bytes(), tx.to_bytes()]
        elif kind == 4:
            joint = world.tx(["joint@bank-a"], o.Transfer("joint@bank-a", ASSET, (o.TransferLeg(recipient, amount),)),
                             nonce=200_000 + seed * 1_000 + k)
            out.append(corrupt(joint, rng.randrange(2)) if rng.random() < 0.5 else joint.to_bytes())
        else:
            out.append(tx.to_bytes())
    rng.shuffle(out)
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), n=st.integers(1, 8))
def test_random_blocks_give_the_checked_outcome(world, seed, n):
    txs = _block_from(world, seed, n)
    checked, got, skipped = run(world, txs)
    same(checked, got)
    # Skipped exactly when nothing could have differed: no corrupt signature reached the check and no id repeats.
    ids = [r.tx_id for r in checked.receipts]
    if skipped:
        assert len(set(ids)) == len(ids)
        assert all(r.code != codes.BAD_SIGNATURE for r in checked.receipts)
    elif len(set(ids)) == len(ids):
        assert any(r.code == codes.BAD_SIGNATURE for r in checked.receipts)



def test_an_unchecked_execution_that_raises_falls_back_to_the_checked_one(world, monkeypatch):
    """A faulty proposer's transaction with a bad signature reaches operations only in the unchecked execution;
    whatever goes wrong there, the checked execution decides."""
    good = transfer(world, "alice@bank-a", "bob@bank-b", 3, 7_000)
    bad = transfer(world, "carol@bank-a", "dave@bank-b", 4, 7_001)
    txs = [good.to_bytes(), corrupt(bad)]
    checked, _, _ = run(world, txs)
    real = transition.apply_transaction
    calls = {"unchecked": 0}

    def exploding(state, block, tx, index=0, *, protocol, verify_signatures=True, bad_signature=None):
        if not verify_signatures and index == 1:
            calls["unchecked"] += 1
            raise RuntimeError("an operation's bug reached only through a transaction nobody signed")
        return real(state, block, tx, index, protocol=protocol, verify_signatures=verify_signatures,
                    bad_signature=bad_signature)

    monkeypatch.setattr(transition, "apply_transaction", exploding)
    led = world.ledger
    got = apply_certified_block(led.state, led.next_block(world.time + 1), txs, tree=led.tree, protocol=led.protocol,
                                certified_root=checked.state_root)
    assert calls["unchecked"] == 1 and got.signatures_checked
    same(checked, got)


def test_apply_block_verifying_ahead_in_runs_gives_the_one_by_one_outcome(world, monkeypatch):
    """apply_block decodes and verifies in runs of PREPARE_RUN before executing; the receipts must be those of
    executing each transaction in turn with its own checks (the order in which execution refuses), across run
    boundaries: a bad signature is BAD_SIGNATURE naming its signer, an expired or foreign transaction with a bad
    signature is refused for its envelope and never verified, undecodable bytes and replays keep their codes."""
    led = world.ledger
    height = led.height + 1
    joint_keys = world.keys["joint@bank-a"]
    txs: list[bytes] = []
    checks: list[int] = []  # Ed25519 checks verifying ahead makes for each item (up to its first bad signature)
    rng = random.Random(7)
    for k in range(transition.PREPARE_RUN * 2 + 40):
        sender, recipient = PEOPLE[k % 4], PEOPLE[(k + 1) % 4]
        leg = (o.TransferLeg(recipient, 1),)
        roll = rng.random()
        if roll < 0.08:
            txs.append(corrupt(transfer(world, sender, recipient, 1, 50_000 + k)))
            checks.append(1)
        elif roll < 0.14:  # expired and badly signed: refused by its expiry, never verified
            tx = world.tx([sender], o.Transfer(sender, ASSET, leg), nonce=50_000 + k, expiry=height - 1)
            txs.append(corrupt(tx))
            checks.append(0)
        elif roll < 0.18:  # another chain, badly signed: refused by its chain id, never verified
            tx = world.tx([sender], o.Transfer(sender, ASSET, leg), nonce=50_000 + k, chain="other-chain")
            txs.append(corrupt(tx))
            checks.append(0)
        elif roll < 0.24:  # 2-of-3, the second signature bad: BAD_SIGNATURE after one good verification
            tx = world.tx(["joint@bank-a"], o.Transfer("joint@bank-a", ASSET, leg), nonce=50_000 + k,
                          sign_with=[("joint@bank-a", joint_keys[0]), ("joint@bank-a", joint_keys[1])])
            txs.append(corrupt(tx, which=1))
            checks.append(2)
        elif roll < 0.27:
            txs.append(b"\x93\x01\x02")  # not an envelope
            checks.append(0)
        elif roll < 0.30 and txs:
            j = rng.randrange(len(txs))  # a copy of an earlier one: replayed, or refused again
            txs.append(txs[j])
            checks.append(checks[j])
        else:
            txs.append(as_bytes(transfer(world, sender, recipient, 1 + k % 5, 50_000 + k)))
            checks.append(1)
    block = led.next_block(world.time + 1)
    calls = count_verifications(monkeypatch)
    got = apply_block(led.state, block, txs, tree=led.tree, protocol=led.protocol)
    assert calls[0] == sum(checks)
    # The reference: the same block executed transaction by transaction, each verifying its own signatures.
    overlay = transition.Overlay(led.state)
    transition._prune_replay(overlay, block.height)
    transition.start_block(overlay, block, led.protocol)
    want = [transition.apply_transaction(overlay, block, item, i, protocol=led.protocol).receipt
            for i, item in enumerate(txs)]
    assert list(got.receipts) == want
    seen = {r.code for r in want}
    assert {codes.OK, codes.BAD_SIGNATURE, codes.TX_EXPIRED, codes.WRONG_CHAIN, codes.TX_REPLAYED} <= seen
    assert any(r.code == codes.BAD_SIGNATURE and "joint@bank-a" in r.detail for r in want)
