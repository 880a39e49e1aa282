"""Transaction envelope: ids, signing messages, signatures, thresholds, chain, expiry, replay, rejection codes."""

from __future__ import annotations

import hashlib

from ledger import codes
from ledger import operations as o
from ledger.schema import MAX_TX_LIFETIME
from ledger.state_keys import replay_index_key, tx_seen_key
from ledger.transaction import TX_DOMAIN, Signature, SignedTransaction, decode_transaction
from tests.ledger.world import CHAIN, OPS, World, key_for, standard_world

ISSUER = "treasury@issuer-co"
A, B = "alice@bank-a", "bob@bank-b"


def funded() -> World:
    w = standard_world()
    w.ok(ISSUER, o.Issue(ISSUER, "BOND-A", A, 1_000))
    return w


def pay(w: World, amount: int = 1, **kw: object) -> SignedTransaction:
    return w.tx([A], o.Transfer(A, "BOND-A", (o.TransferLeg(B, amount),)), **kw)  # type: ignore[arg-type]


def test_id_and_signing_message() -> None:
    w = funded()
    t = pay(w)
    assert t.tx_id == hashlib.sha256(t.body_bytes).digest()
    assert t.signing_message == TX_DOMAIN + bytes([len(CHAIN)]) + CHAIN.encode() + t.body_bytes
    assert decode_transaction(t.to_bytes(), operations=OPS) == t
    # different signatures (another signer set) do not change the id
    t2 = SignedTransaction(t.body, t.body_bytes, (Signature(A, b"\x01" * 32, b"\x02" * 64),), t.tx_id)
    assert decode_transaction(t2.to_bytes(), operations=OPS).tx_id == t.tx_id


def test_rejections_are_not_executed() -> None:
    w = funded()
    root = w.ledger.root
    cases: list[tuple[SignedTransaction | bytes, int]] = [
        (pay(w, chain="other-chain"), codes.WRONG_CHAIN),
        (pay(w, expiry=w.ledger.height), codes.TX_EXPIRED),
        (pay(w, expiry=w.ledger.height + 2 + MAX_TX_LIFETIME), codes.TX_EXPIRY_TOO_FAR),
        (pay(w, sign_with=[(A, key_for("someone-else"))]), codes.UNKNOWN_SIGNING_KEY),
        (pay(w, sign_with=[(B, key_for(B))]), codes.SIGNATURE_NOT_FOR_SIGNER),
        (w.tx(["ghost@bank-a"], o.Redeem("ghost@bank-a", "BOND-A", 1), sign_with=[]), codes.SIGNER_NOT_FOUND),
        (b"\x92\xc4\x01\x00\x90", codes.INVALID_VALUE),  # no signatures
        (b"\x91\xc4\x01\x00", codes.MISSING_FIELD),
        (b"\xff", codes.WRONG_TYPE),
        (b"\x00" * (65 * 1024), codes.TX_TOO_LARGE),
    ]
    good = pay(w)
    sig = good.signatures[0]
    bad = SignedTransaction(good.body, good.body_bytes, (Signature(A, sig.public_key, bytes(64)),), good.tx_id)
    cases.append((bad.to_bytes(), codes.BAD_SIGNATURE))
    no_sig = w.tx([A, B], o.Transfer(A, "BOND-A", (o.TransferLeg(B, 1),)), sign_with=[(A, key_for(A))])
    cases.append((no_sig, codes.THRESHOLD_NOT_MET))
    outcome = w.ledger.apply([c for c, _ in cases], time=w.time + 1)
    got = [r.code for r in outcome.receipts]
    assert got == [code for _, code in cases]
    assert all(not r.executed for r in outcome.receipts)
    assert outcome.executed == () and outcome.history == ()
    # only the chain meta changed (plus the pruning of replay entries that expired at the previous height)
    assert all(k == b"M" or (v is None and k[:1] in b"TEe") for k, v in outcome.changes.items())
    assert root != w.ledger.root
    # the corrupted copy did not consume the id: the genuine transaction still applies
    assert w.submit(good)[0].code == codes.OK


def test_replay_and_pruning() -> None:
    w = funded()
    t = pay(w, expiry=w.ledger.height + 3)
    assert w.submit(t)[0].code == codes.OK
    assert w.submit(t)[0].code == codes.TX_REPLAYED
    expiry = t.body.expiry_height
    assert w.ledger.get(tx_seen_key(t.tx_id)).expiry_height == expiry
    assert w.ledger.get(replay_index_key(expiry)).count >= 1
    while w.ledger.height <= expiry:
        w.submit()
    # pruned one block after its expiry; now refused as expired
    assert w.ledger.get(tx_seen_key(t.tx_id)) is None
    assert w.ledger.get(replay_index_key(expiry)) is None
    assert w.submit(t)[0].code == codes.TX_EXPIRED
    assert w.balance("BOND-A", B).available == 1


def test_failed_execution_consumes_the_id() -> None:
    w = funded()
    t = pay(w, amount=5_000)
    out = w.ledger.apply([t, t], time=w.time + 1)
    assert [r.code for r in out.receipts] == [codes.INSUFFICIENT_ACTIVE_BALANCE, codes.TX_REPLAYED]
    assert out.receipts[0].executed and not out.receipts[1].executed
    assert [e[0] for e in out.executed] == [t.tx_id]
    assert out.history == ((A, t.tx_id),)


def test_many_in_flight_from_one_account() -> None:
    w = funded()
    txs = [pay(w, nonce=n) for n in range(20)]
    assert len({t.tx_id for t in txs}) == 20
    assert all(r.code == 0 for r in w.submit(*reversed(txs)))
    assert w.balance("BOND-A", B).available == 20


def test_dry_run_matches_execution_and_changes_nothing() -> None:
    w = funded()
    txs = [pay(w, amount=10), pay(w, amount=5_000), pay(w, chain="x"), w.tx([A], o.Issue(A, "BOND-A", A, 1))]
    root = w.ledger.root
    dry = [w.dry(t).code for t in txs]
    assert w.ledger.root == root and w.balance("BOND-A", B).available == 0
    real = [w.submit(t)[0].code for t in txs]
    assert dry == real == [0, codes.INSUFFICIENT_ACTIVE_BALANCE, codes.WRONG_CHAIN, codes.NOT_ASSET_CONTROLLER]


def test_dry_run_without_signatures() -> None:
    w = funded()
    t = pay(w, amount=10)
    unsigned = SignedTransaction(t.body, t.body_bytes, (Signature(A, t.signatures[0].public_key, bytes(64)),), t.tx_id)
    assert w.ledger.dry_run(unsigned).code == codes.BAD_SIGNATURE
    assert w.ledger.dry_run(unsigned, verify_signatures=False).code == codes.OK


def test_block_history_names_touched_accounts() -> None:
    w = funded()
    t = pay(w)
    out = w.ledger.apply([t], time=w.time + 1)
    assert out.history == ((A, t.tx_id), (B, t.tx_id))
    assert out.executed[0][1] == t.to_bytes()
