"""State sync against a store whose blocks carry real BLS commit certificates (tests/node/chain/test_statement.py's
StoreChain): a node's snapshot (node/chain/snapshots.py) is accepted by a joining session only with a valid
certificate, and every bad answer is refused with its code, its sender backed off, and nothing of it written."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgpack
import pytest

from consensus import bls
from consensus.certificates import SignatureVerifier
from consensus.simulator import simulated_validator_set
from ledger.codec import encode_trusted, record_type
from ledger.records import REPLAY_CHUNK, ReplayBucket
from ledger.snapshot import MAX_CHUNK_BYTES
from ledger.state_keys import replay_bucket_key
from ledger.store import LedgerStore
from node.chain import state_sync as state_sync_module
from node.chain.snapshots import SnapshotServer, SnapshotStore, SnapshotTaker
from node.chain.state_sync import StateSync, StateSyncAnchor, StateSyncRefused, verify_snapshot_head
from node.net.snapshot_messages import (
    Chunk,
    GetChunk,
    GetSnapshot,
    ListSnapshots,
    SnapshotHead,
    decode_snapshot_message,
    encode_snapshot_message,
)
from tests.node.chain.test_statement import CHAIN_B, N_VALIDATORS, build_custody_chain


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    base = tmp_path_factory.mktemp("ssync")
    w, _ = build_custody_chain(str(base / "db"))
    snapshots = SnapshotStore(str(base / "snapshots"), keep=1)
    taker = SnapshotTaker(w.store, snapshots, interval=1, epoch_of=lambda: 0, target_bytes=512)
    view = w.store.state_view()
    manifest = taker.build(view, 0)
    view.close()
    yield w, snapshots, manifest
    w.store.close()


def anchor(store: LedgerStore) -> StateSyncAnchor:
    root = store.state_root_at(0)
    assert root is not None
    return StateSyncAnchor(
        b"g" * 32, simulated_validator_set(N_VALIDATORS), CHAIN_B, root, SignatureVerifier(bls.get_backend())
    )


def roundtrip(msg: Any) -> Any:
    return decode_snapshot_message(encode_snapshot_message(msg)[1:])


def chosen(served: Any, tmp_path: Any, peers: list[str]) -> tuple[Any, ...]:
    """A joining session whose `peers` all offered the served snapshot, its head chosen and verified (from an honest
    server); (chain, honest server, corrupt server, the offers, the joiner's store, the session)."""
    w, snapshots, _ = served
    honest, corrupt = SnapshotServer(snapshots), SnapshotServer(snapshots, corrupt=True)
    offers = honest.answer("x", ListSnapshots(1), 0).offers
    target = LedgerStore.open(str(tmp_path / "joiner"))
    sync = StateSync(anchor(w.store), target)
    for peer in peers:
        sync.on_offers(peer, offers)
    [(peer, ask)] = sync.next_requests(sorted(peers), 0)
    assert sync.on_head(peer, honest.answer(peer, ask, 0), 0) is not None
    return w, honest, corrupt, offers, target, sync


def test_served_snapshot_is_certified_and_every_chunk_installs(served: Any, tmp_path: Any) -> None:
    w, snapshots, manifest = served
    server = SnapshotServer(snapshots)
    offers = roundtrip(server.answer("p", ListSnapshots(1), 0))
    height = w.store.head().height
    assert [o[0] for o in offers.offers] == [height] and len(manifest.chunks) > 3
    target = LedgerStore.open(str(tmp_path / "joiner"))
    sync = StateSync(anchor(w.store), target)
    for peer in ("a", "b"):
        sync.on_offers(peer, offers.offers)
    [(peer, ask)] = sync.next_requests(["a", "b"], 0)
    assert isinstance(ask, GetSnapshot) and ask.height == height
    snap = sync.on_head(peer, roundtrip(server.answer(peer, ask, 0)), 0)
    assert snap is not None and snap.cert.state_root == w.store.head().state_root
    while not sync.done:
        for peer, ask in sync.next_requests(["a", "b"], 0):
            assert isinstance(ask, GetChunk)
            assert sync.on_chunk(peer, roundtrip(server.answer(peer, ask, 0)), 0)
    assert sync.chunks_done == len(manifest.chunks)
    # The chunks carry the tree's entries only; the joiner derived the replay index T from the replay buckets, so
    # its state equals the producer's entry for entry, T included.
    produced = dict(w.store.iter_state())
    assert any(k[:1] == b"T" for k in produced)
    assert sum(e.leaves for e in manifest.chunks) == sum(1 for k in produced if k[:1] != b"T")
    assert dict(target.iter_state()) == produced
    assert target.recompute_state_root() == w.store.head().state_root
    target.close()


def test_a_snapshot_without_a_valid_certificate_is_refused(served: Any) -> None:
    w, snapshots, _ = served
    height = w.store.head().height
    good = SnapshotServer(snapshots).answer("p", GetSnapshot(1, height), 0)
    assert isinstance(good, SnapshotHead)
    a = anchor(w.store)
    verify_snapshot_head(a, good)
    cert = w.certificate(height)
    other = w.certificate(height - 1)
    forged = [
        dataclasses.replace(good, cert=other.encode()),  # a real certificate of another height
        dataclasses.replace(good, cert=good.cert[:-5] + bytes(5)),  # a broken aggregate signature
        dataclasses.replace(good, block=w.store.get_block(height - 1)),  # another block
        dataclasses.replace(good, height=height + 1),
    ]
    for head in forged:
        with pytest.raises(StateSyncRefused) as err:
            verify_snapshot_head(a, head)
        assert err.value.code == "snapshot_uncertified"
    # A manifest for another state under a valid certificate: refused too.
    m = msgpack.unpackb(good.manifest)
    m[3] = m[3][1:] + m[3][:1]
    with pytest.raises(StateSyncRefused) as err:
        verify_snapshot_head(a, dataclasses.replace(good, manifest=msgpack.packb(m, use_bin_type=True)))
    assert err.value.code in ("snapshot_manifest_invalid", "snapshot_uncertified")
    # Another chain's validators (trust anchor) do not certify it.
    stranger = dataclasses.replace(a, genesis_set=simulated_validator_set(N_VALIDATORS + 1))
    with pytest.raises(StateSyncRefused):
        verify_snapshot_head(stranger, good)
    assert cert.height == height


def test_bad_and_oversized_chunks_are_refused_backed_off_and_fetched_elsewhere(served: Any, tmp_path: Any) -> None:
    w, honest, corrupt, _offers, target, sync = chosen(served, tmp_path, ["good", "evil", "huge"])
    now = 0
    refused_chunks: set[int] = set()
    while not sync.done:
        for peer, ask in sync.next_requests(["evil", "good", "huge"], now):
            if peer == "evil":
                reply = corrupt.answer(peer, ask, now)
            elif peer == "huge":
                reply = Chunk(ask.request_id, ask.height, ask.index, b"\x00" * (MAX_CHUNK_BYTES + 1))
            else:
                reply = honest.answer(peer, ask, now)
            before = dict(target.iter_state())
            ok = sync.on_chunk(peer, reply, now)
            assert ok == (peer == "good")
            if not ok:
                refused_chunks.add(ask.index)
                assert dict(target.iter_state()) == before  # nothing of a refused chunk is written
        now += 100
    assert refused_chunks and sync.refusals["snapshot_chunk_invalid"] >= 1
    assert sync.refusals["snapshot_chunk_too_large"] >= 1
    # Backed off: after their first refusal the bad peers were not asked again within the backoff.
    assert sync.refusals["snapshot_chunk_invalid"] + sync.refusals["snapshot_chunk_too_large"] == 2
    assert dict(target.iter_state()) == dict(w.store.iter_state())
    target.close()


def test_snapshot_messages_are_strict() -> None:
    from node.net.messages import MessageRefused
    from node.net.snapshot_messages import MAX_OFFERS, Snapshots

    for msg in (
        ListSnapshots(3),
        GetSnapshot(4, 10),
        GetChunk(5, 10, 2),
        Chunk(6, 10, 2, b"x"),
        Snapshots(7, ((10, b"d" * 32, 3),)),
        SnapshotHead(8, 10, b"m", b"b", b"c", (b"p",)),
    ):
        assert roundtrip(msg) == msg
    bad = [
        b"\xc1",
        msgpack.packb([9, 1]),
        msgpack.packb([5, 1, 10]),
        msgpack.packb([5, 1, -1, 2]),
        msgpack.packb([2, 1, [[10, b"short", 3]]]),
        msgpack.packb([2, 1, [[10, b"d" * 32, 3]] * (MAX_OFFERS + 1)]),
        msgpack.packb([6, 1, 10, 2, "text"]),
    ]
    for body in bad:
        with pytest.raises(MessageRefused):
            decode_snapshot_message(body)


def test_sync_and_pruning_config(tmp_path: Any) -> None:
    from node.validator.config import ConfigError, load_config

    def config(extra: str) -> Any:
        path = tmp_path / "c.toml"
        path.write_text('node_id = "n"\n' + extra)
        return load_config(str(path))

    c = config("")
    assert (c.state_sync, c.snapshot_interval, c.snapshot_keep, c.keep_blocks) == (False, 1000, 2, 0)
    c = config("[sync]\nstate_sync = true\nsnapshot_interval = 0\n[pruning]\nkeep_blocks = 100\n")
    assert (c.state_sync, c.snapshot_interval, c.keep_blocks) == (True, 0, 100)
    for extra in (
        "[pruning]\nkeep_blocks = 3\n",
        "[sync]\nsnapshot_keep = 0\n",
        "[sync]\nsnapshot_interval = -1\n",
        "[sync]\nstate_sync = 1\n",
        "[sync]\nsnapshot_chunk_bytes = 10\n",
        "[sync]\nfast = true\n",
    ):
        with pytest.raises(ConfigError):
            config(extra)


def test_no_snapshot_offered_leaves_the_store_empty_for_a_replay(tmp_path: Any) -> None:
    """No peer answers within the discovery time: nothing is written, the node replays from genesis instead."""
    import asyncio

    from node.chain.genesis import load_genesis
    from node.chain.protocol import bls_backend
    from node.tools.localnet import generate_network
    from node.validator.config import load_config
    from node.validator.joining import join_by_state_sync
    from node.validator.keyfile import load_keys

    layout = generate_network(str(tmp_path / "net"), 4, chain_id="testnet-nosnap", spare_nodes=1, seed=b"nosnap")
    cfg = load_config(layout.spare_config_paths[0])
    unreachable = {f"node-{i}": ("127.0.0.1", 9) for i in range(4)}
    height = asyncio.run(
        join_by_state_sync(
            load_genesis(layout.genesis_path),
            load_keys(cfg.keys_file),
            cfg.data_dir,
            listen=("127.0.0.1", 0),
            peer_addresses=unreachable,
            peer_keys={},
            bls_backend=bls_backend(),
            discovery_s=1.0,
        )
    )
    assert height is None
    store = LedgerStore.open(f"{cfg.data_dir}/ledger")
    assert store.head() is None and not list(store.iter_state())
    store.close()


def test_a_snapshot_no_peer_serves_any_more_is_abandoned_and_chosen_again(served: Any, tmp_path: Any) -> None:
    """The chosen snapshot's only servers are a corrupt peer and one that pruned it: without abandoning it the
    session would wait for them forever (what the state-sync process test hit when the corrupt peer's manifest was
    chosen and the others had moved on). Abandoned, it is chosen again once a peer offers one; the partial install
    is deleted when that one begins."""
    w, honest, corrupt, offers, target, sync = chosen(served, tmp_path, ["evil", "gone"])
    written = 0
    for now in range(0, 200_000, 1_000):
        requests = sync.next_requests(["evil", "gone"], now)
        if sync.snapshot is None:
            break
        for peer, ask in requests:
            reply = corrupt.answer(peer, ask, now) if peer == "evil" else Chunk(ask.request_id, ask.height, ask.index, b"")
            written += sync.on_chunk(peer, reply, now)
    assert sync.snapshot is None and sync.abandoned == 1 and written == 0
    assert sync.refusals == {"snapshot_chunk_invalid": 1, "snapshot_not_served": 1}
    sync.on_offers("good", offers)  # a fresh offer (the host asks again while none is chosen)
    now = 200_000
    while not sync.done:
        for peer, ask in sync.next_requests(["evil", "gone", "good"], now):
            assert peer == "good"
            reply = honest.answer(peer, ask, now)
            if isinstance(ask, GetSnapshot):
                assert sync.on_head(peer, reply, now) is not None
            else:
                assert sync.on_chunk(peer, reply, now)
        now += 100
    assert sync.abandoned == 1 and dict(target.iter_state()) == dict(w.store.iter_state())
    target.close()


def test_a_chunk_whose_replay_bucket_does_not_decode_is_refused_and_writes_nothing(
    served: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A snapshot of another protocol version verifies against its own root but holds buckets of more ids than
    REPLAY_CHUNK: the chunk is refused like a corrupt one (the joiner derives `T` from the buckets), nothing of it
    is written, and the chunk goes back to be fetched from another peer."""
    _w, honest, _corrupt, _offers, target, sync = chosen(served, tmp_path, ["old"])
    [(peer, ask)] = sync.next_requests(["old"], 0)
    too_long = encode_trusted(record_type(ReplayBucket),
                              ReplayBucket(tuple(i.to_bytes(32, "big") for i in range(REPLAY_CHUNK + 1))))
    monkeypatch.setattr(state_sync_module, "verify_chunk",
                        lambda *_: [(b"M", b"\x93"), (replay_bucket_key(5, 0), too_long)])
    assert not sync.on_chunk(peer, honest.answer(peer, ask, 0), 0)
    assert sync.refusals["snapshot_chunk_invalid"] == 1 and list(target.iter_state()) == []
    assert not sync.done and sync.chunks_done == 0
    target.close()
