"""`ledger bench state-sync`: the time for a new node to join a chain of N accounts by state sync, over the real
transport, with every chunk verified against a certified state root (docs/benchmarks.md, "State sync").

    ledger bench state-sync --accounts 1000000 [--dir DIR] [--servers 2]

Setup (timed separately, reported): a 4-validator testnet layout (keys, genesis; node/tools/localnet.py) with one
spare node, the joiner. The source store gets the genesis block, then block 1, whose state changes open N accounts
(written directly into the store as that block's changes -- no transactions, as a bench fixture) and whose commit
certificate is made the normal way: a header, its child carrying a QC on it, and a QC on the child, each QC
BLS-signed by 3 of the 4 genesis validators with their real keys from the layout's key files. The joiner verifies
that certificate against the genesis file like any other. A snapshot of height 1 is taken with the node's
SnapshotTaker (timed: `snapshot_s`).

Timed (`join_s`): `join_by_state_sync` (node/validator/joining.py, what `ledger node run --state-sync` runs) in this
process against `--servers` serving validators (their real transports and SnapshotServer, in the same process and
event loop): discover, fetch and verify the certificate and manifest, fetch, verify and write every chunk, finish the
store. Then the joined store is checked: same head, same state root as the source.

Replay, for comparison (`--replay-sample`, default 20000): a chain that holds N accounts took at least N account
openings to build, and a node replaying it from genesis executes every one. Measured: the first `--replay-sample`
openings (one RegisterAccount per transaction, signed by the admin, blocks of 1000) applied through `apply_block`
exactly as a node executes blocks (decode, Ed25519 verification, execution, state root) on one core, in CPU time;
`replay_estimate_s` = N x the per-opening cost. A lower bound for a node's replay: it leaves out certificate
checks, LevelDB commits and the network, and the tree gets deeper as it grows. `join_cpu_s` is this process's
CPU time over the join (the joiner and the serving validators together: an upper bound of the joiner's own), less
distorted than wall time on a loaded machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
from typing import Any

from consensus import bls
from consensus.messages import (
    Block,
    BlockHeader,
    CommitCertificate,
    QuorumCert,
    encode_block,
    payload_hash,
    vote_message,
)
from ledger.protocol import PROTOCOL_VERSION
from ledger.records import Account
from ledger.smt import SparseMerkleTree
from ledger.state import encode_value
from ledger.state_keys import account_key
from ledger.store import BlockCommit, LedgerStore
from node.chain.certified import bootstrap_store, cert_key
from node.chain.genesis import genesis_state, load_genesis
from node.chain.payload import encode_payload
from node.chain.protocol import bls_backend, node_protocol
from node.chain.snapshots import SnapshotServer, SnapshotStore, SnapshotTaker
from node.net.handshake import Peer, PeerSet
from node.net.messages import MessageRefused
from node.net.snapshot_messages import CH_SNAPSHOTS, decode_snapshot_message, encode_snapshot_message
from node.net.transport import Transport, TransportConfig
from node.tools.localnet import generate_network
from node.validator.config import load_config
from node.validator.joining import join_by_state_sync
from node.validator.keyfile import NodeKeys, load_keys

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--accounts", type=int, default=100_000, help="accounts in the state (default 100000)")
    parser.add_argument("--servers", type=int, default=2, help="validators serving the snapshot (1..4, default 2)")
    parser.add_argument("--dir", default=None, help="work directory (default: a temporary one, removed)")
    parser.add_argument(
        "--replay-sample",
        type=int,
        default=20_000,
        help="account openings replayed to estimate a replay from genesis (0: skip; default 20000)",
    )


def _sign_qc(keys: list[NodeKeys], vs: Any, chain: bytes, round_: int, block_id: bytes, root: bytes) -> QuorumCert:
    backend = bls_backend()
    msg = vote_message(chain, 0, round_, block_id, root)
    signers = (0, 1, 2)
    sigs = [backend.sign(keys[i].bls_secret, msg) for i in signers]
    return QuorumCert(0, round_, block_id, root, vs.bitmap(signers), backend.aggregate(sigs))


def build_source(directory: str, accounts: int) -> dict[str, Any]:
    """The layout, and a source store at height 1 holding `accounts` accounts under a real certificate."""
    layout = generate_network(
        directory, 4, chain_id="testnet-bench-sync", spare_nodes=1, users=2, seed=b"bench-state-sync"
    )
    genesis = load_genesis(layout.genesis_path)
    keys = [load_keys(load_config(p).keys_file) for p in layout.config_paths]
    # Validators sign in the genesis set's bitmap order.
    order = {v.id.decode(): i for i, v in enumerate(genesis.validator_set(bls_backend()).validators)}
    keys.sort(key=lambda k: order[k.node_id])
    store = LedgerStore.open(os.path.join(directory, "source", "ledger"))
    state = genesis_state(genesis, node_protocol())
    bootstrap_store(store, genesis, state)
    started = time.perf_counter()
    member = genesis.validators[0].member
    owner = keys[0].identity_key
    changes: dict[bytes, bytes | None] = {}
    for i in range(accounts):
        key = account_key(f"acct-{i}@{member}")
        changes[key] = encode_value(key, Account(member, (owner,), 1, 0, None, False, None))
    update = SparseMerkleTree(store, state.state_root).update(changes)
    chain = genesis.consensus_chain_id
    vs = genesis.validator_set(bls_backend())
    g = genesis.block()
    payload = encode_payload(genesis.genesis_time + 1000, [])
    header = BlockHeader(chain, 0, 1, 1, g.id, 1, payload_hash(payload), state.qc)
    block = Block(header, payload)
    qc = _sign_qc(keys, vs, chain, 1, block.id, update.root)
    child_payload = encode_payload(genesis.genesis_time + 2000, [])
    child = BlockHeader(chain, 0, 2, 2, block.id, 2, payload_hash(child_payload), qc)
    child_root = SparseMerkleTree(store, update.root).root  # any root: the child is never committed here
    cert = CommitCertificate((header, child), _sign_qc(keys, vs, chain, 2, child.id, child_root))
    store.commit_block(
        BlockCommit(
            1,
            block.id,
            encode_block(block),
            update.root,
            (),
            (),
            changes,
            update.nodes,
            (),
            {cert_key(1): cert.encode()},
        )
    )
    build_s = time.perf_counter() - started
    return {"layout": layout, "genesis": genesis, "keys": keys, "store": store, "build_s": build_s, "root": update.root}


def measure_replay(sample: int) -> float:
    """CPU seconds per account opening, replayed through apply_block in blocks of 1000 transactions."""
    from nacl.signing import SigningKey

    from ledger import operations as o
    from ledger.genesis import GenesisAccount, GenesisSpec
    from ledger.memory import InMemoryLedger
    from ledger.rules import CoreRuleEngine
    from ledger.transaction import TxBody, sign_transaction
    from node.chain.protocol import OPERATIONS

    chain, admin, t0 = "bench-replay", "admin@bench", 1_800_000_000
    admin_key = SigningKey(b"\x01" * 32)
    owner = bytes(SigningKey(b"\x02" * 32).verify_key)
    spec = GenesisSpec(
        chain, t0, (("bench", "Bench"),), (GenesisAccount(admin, (bytes(admin_key.verify_key),), 1, ("admin",)),)
    )
    ledger = InMemoryLedger(spec, node_protocol(CoreRuleEngine()))
    txs = []
    for i in range(sample):
        body = TxBody(1, chain, (admin,), i, 10_000, (o.RegisterAccount(admin, f"acct-{i}@bench", (owner,), 1, None),))
        txs.append(sign_transaction(body, [(admin, admin_key)], operations=OPERATIONS).to_bytes())
    started = time.process_time()
    for lo in range(0, sample, 1000):
        out = ledger.apply(txs[lo : lo + 1000], time=t0 + 1 + lo)
        assert all(r.code == 0 for r in out.receipts), "replay sample refused"
    return (time.process_time() - started) / sample


async def _serve(transport: Transport, server: SnapshotServer) -> None:
    while True:
        peer, data = await transport.receive()
        if not data or data[0] != CH_SNAPSHOTS:
            continue
        try:
            msg = decode_snapshot_message(data[1:])
        except MessageRefused:
            continue
        reply = server.answer(peer, msg, int(time.monotonic() * 1000))
        if reply is not None:
            transport.send(peer, encode_snapshot_message(reply))


async def join(src: dict[str, Any], directory: str, servers: int) -> dict[str, Any]:
    layout, genesis, keys = src["layout"], src["genesis"], src["keys"]
    joiner_cfg = load_config(layout.spare_config_paths[0])
    joiner_keys = load_keys(joiner_cfg.keys_file)
    server = SnapshotServer(SnapshotStore(os.path.join(directory, "source", "snapshots"), keep=1))
    transports = []
    addresses: dict[str, tuple[str, int]] = {}
    for k in keys[:servers]:
        peers = PeerSet.of([k.identity().as_peer(), Peer(joiner_keys.node_id, joiner_keys.identity_key, None)])
        t = Transport(k.identity(), genesis.chain_id, peers, TransportConfig(listen_host="127.0.0.1", listen_port=0),
                      protocol_version=PROTOCOL_VERSION, genesis_hash=genesis.hash)
        await t.start()
        transports.append(t)
        addresses[k.node_id] = t.listen_address
    for k in keys[servers:]:
        addresses[k.node_id] = ("127.0.0.1", 9)  # not serving: the joiner's dials fail and it uses the others
    tasks = [asyncio.get_running_loop().create_task(_serve(t, server)) for t in transports]
    try:
        started, cpu = time.perf_counter(), time.process_time()
        height = await join_by_state_sync(
            genesis,
            joiner_keys,
            os.path.join(directory, "joiner"),
            listen=("127.0.0.1", 0),
            peer_addresses=addresses,
            peer_keys={},
            bls_backend=bls_backend(),
            discovery_s=60,
        )
        join_s, join_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for t in transports:
            await t.close()
    return {"height": height, "join_s": join_s, "join_cpu_s": join_cpu_s}


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.servers <= 4 or args.accounts < 1:
        print("error: --servers 1..4 and --accounts >= 1")
        return 2
    directory = args.dir or tempfile.mkdtemp(prefix="bench-state-sync-")
    try:
        src = build_source(directory, args.accounts)
        store = src["store"]
        snapshots = SnapshotStore(os.path.join(directory, "source", "snapshots"), keep=1)
        taker = SnapshotTaker(store, snapshots, interval=1, epoch_of=lambda: 0)
        started = time.perf_counter()
        view = store.state_view()
        manifest = taker.build(view, 0)
        view.close()
        snapshot_s = time.perf_counter() - started
        size = sum(
            os.path.getsize(os.path.join(snapshots.directory, f"{1:020d}", n))
            for n in os.listdir(os.path.join(snapshots.directory, f"{1:020d}"))
        )
        head = store.head()
        store.close()
        joined = asyncio.run(join(src, directory, args.servers))
        check = LedgerStore.open(os.path.join(directory, "joiner", "ledger"))
        ok = check.head() == head and check.get_node(head.state_root) is not None if head else False
        check.close()
        out = {
            "bench": "state-sync",
            "accounts": args.accounts,
            "keys": manifest.keys,
            "chunks": len(manifest.chunks),
            "snapshot_bytes": size,
            "servers": args.servers,
            "fixture_build_s": round(src["build_s"], 1),
            "snapshot_s": round(snapshot_s, 1),
            "join_s": round(joined["join_s"], 1),
            "join_cpu_s": round(joined["join_cpu_s"], 1),
            "joined_height": joined["height"],
            "same_head": ok,
            "backend": bls.get_backend().__class__.__name__,
        }
        if args.replay_sample > 0:
            per = measure_replay(args.replay_sample)
            out["replay_sample"] = args.replay_sample
            out["replay_us_per_account"] = round(per * 1e6, 1)
            out["replay_estimate_s"] = round(per * args.accounts, 1)
        print(json.dumps(out))
        return 0 if ok and joined["height"] == 1 else 1
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)
