"""node.tools.loadgen.presign: the load's transfers are signed like a client population's (expiry heights advancing
through the run, unique nonces), and `expiry_group=0` reproduces the single-expiry workload of earlier runs."""

from __future__ import annotations

from nacl.signing import SigningKey

from ledger.transaction import decode_transaction
from node.chain.protocol import OPERATIONS
from node.tools.loadgen import LoadJob, presign


def _job(count: int, expiry_group: int) -> LoadJob:
    senders = tuple((f"user-{i}@bank", SigningKey(bytes([i + 1]) * 32).encode().hex()) for i in range(3))
    return LoadJob(1, "bench-chain", senders, ("user-0@bank", "user-1@bank", "user-2@bank", "user-3@bank"), (), count, 10_500, None,
                   1.0, 1, 64, 7, (), "msgpack", expiry_group)


def test_expiry_heights_advance_one_per_group_and_nonces_stay_unique() -> None:
    txs = [decode_transaction(raw, operations=OPERATIONS) for raw in presign(_job(1_100, 512))]
    expiries = [tx.body.expiry_height for tx in txs]
    assert expiries[:512] == [10_500] * 512
    assert expiries[512:1_024] == [10_501] * 512
    assert expiries[1_024:] == [10_502] * 76
    assert len({(tx.body.signers, tx.body.nonce) for tx in txs}) == 1_100
    assert all(tx.body.chain_id == "bench-chain" for tx in txs)


def test_group_zero_signs_every_transfer_with_one_expiry() -> None:
    txs = [decode_transaction(raw, operations=OPERATIONS) for raw in presign(_job(600, 0))]
    assert {tx.body.expiry_height for tx in txs} == {10_500}
