"""`ledger node`: run a validator, or a single-validator development chain.

    ledger node run --config FILE        a validator of a consortium network (config from `ledger init`);
                                         a sealed key file opens with --passphrase-file/-env/-prompt
    ledger node dev --data DIR           a one-validator chain in DIR (created on first run), LevelDB inside
    ledger node status --data DIR        ask a running node (through DATA/admin.sock) for its status

SIGTERM and SIGINT stop the node gracefully (consensus stops, the transport says goodbye, stores close).
With $LEDGER_NODE_CPROFILE=DIR, `node run` profiles its event-loop thread with cProfile on the thread's CPU clock
(waits for I/O or for the interpreter lock do not count; the execution thread and the verifier processes are not in
it) and writes DIR/<node id>.prof when it stops, with DIR/<node id>.threads: the CPU seconds of every thread of the
process (Python threads by name, others as "native": LevelDB's compaction thread is one) (read it with `python -m pstats`;
docs/testnet.md, "Profiling a node").
Exit codes: 0 stopped, 1 refused to start (config/genesis/keys problem, message on stderr), 3 halted on a fatal
inconsistency (e.g. state root mismatch; the log says which), 4 stopped after a disk read or write failed (the node
kept serving reads and reporting the failure until stopped; docs/operations.md, "A failing disk").
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import signal
import sys
import threading
import time
from typing import Any

from ledger.store import StoreError
from node.api.server import start_api
from node.chain.genesis import ChainParams, GenesisError
from node.cli.passphrase import add_passphrase_options, passphrase_from_args
from node.client.errors import ClientError
from node.errors import NodeError
from node.net.transport import TransportError
from node.tools.admin_client import AdminConnection
from node.validator.admin_socket import AdminServer
from node.validator.allocator import tune_allocator
from node.validator.api_listen import api_serving
from node.validator.collector import freeze_startup_heap, tune_collector
from node.validator.config import ConfigError, load_config
from node.validator.keyfile import KeyFileError, read_key_file_info
from node.validator.logs import setup_logging
from node.validator.safety_store import SafetyStoreError

EXIT_HALTED = 3
EXIT_STORAGE_FAILED = 4
CPROFILE_ENV = "LEDGER_NODE_CPROFILE"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("node", help="run a validator node")
    sub = parser.add_subparsers(dest="node_command", metavar="WHAT")
    run = sub.add_parser("run", help="run a validator from its config file")
    run.add_argument("--config", required=True, help="the node's config file (config.toml from `ledger init`)")
    run.add_argument("--state-sync", action="store_true",
                     help="an empty data directory joins from a certified snapshot peers serve ([sync] state_sync)")
    add_passphrase_options(run, creating=False)
    run.set_defaults(func=run_command)
    dev = sub.add_parser("dev", help="run a single-validator development chain in a data directory")
    dev.add_argument("--data", required=True, help="the chain's directory (created on first run)")
    dev.add_argument("--chain-id", default="dev-local", help="chain id of a new chain (default dev-local)")
    dev.add_argument("--users", type=int, default=8, help="test accounts of a new chain (default 8)")
    dev.set_defaults(func=dev_command)
    status = sub.add_parser("status", help="print a running node's status")
    status.add_argument("--data", required=True, help="the node's data directory (holds admin.sock)")
    status.set_defaults(func=status_command)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


async def serve(config_path: str, state_sync: bool = False, passphrase: bytes | None = None) -> int:
    """Run the node of `config_path` until SIGTERM/SIGINT; `passphrase` opens sealed key files."""
    from node.validator.joining import join_from_config
    from node.validator.node import ValidatorNode

    config = load_config(config_path)
    setup_logging(config.log_level, "json" if config.log_json else "text", node_id=config.node_id)
    tune_allocator()  # before the node's threads start (docs/operations.md, "Memory")
    tune_collector()  # CPython's cyclic collector (docs/operations.md, "Memory"); a bad LEDGER_GC_THRESHOLDS stops here
    if state_sync or config.state_sync:
        await join_from_config(config, passphrase)
    node = ValidatorNode.from_config(config, passphrase=passphrase)
    api_config, api_ssl = api_serving(config, node.genesis.chain_id)
    admin = AdminServer(node, os.path.join(config.data_dir, "admin.sock"))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: loop.create_task(node.stop()))
    await node.start()
    await admin.start()
    freeze_startup_heap()  # modules, genesis, opened state: never walked by a later full collection
    api = None
    if config.api_listen is not None:
        api = await start_api(node.view, config.api_listen[0], config.api_listen[1], api_config, api_ssl)
    print_addresses(config, api is not None)
    fatal = await node.wait_stopped()
    if api is not None:
        await api.stop()
    await admin.close()
    await node.stop()
    if node.storage_failure is not None:
        return EXIT_STORAGE_FAILED
    return EXIT_HALTED if fatal else 0


def node_passphrase(args: argparse.Namespace) -> bytes | None:
    """The passphrase of the config's key file when it is sealed (from the options, or a terminal prompt)."""
    keys_file = load_config(args.config).keys_file
    return passphrase_from_args(args, keys_file, creating=False, needed=read_key_file_info(keys_file).encrypted)


def print_addresses(config: Any, api: bool) -> None:
    """Where the started node listens, on stdout (the log goes to stderr): its API, its peer address, its peers."""
    host, port = config.p2p_listen
    lines = [f"node {config.node_id} running (data {config.data_dir})"]
    if api:
        api_host, api_port = config.api_listen
        shown = "127.0.0.1" if api_host in ("0.0.0.0", "") else api_host
        url = f"{'https' if getattr(config, 'api_tls', None) is not None else 'http'}://{shown}:{api_port}"
        lines.append(f"  api   {url}   (for clients: --node {url}, or ledger profile add NAME --url {url})")
    else:
        lines.append("  api   off (no [api] listen in the config)")
    lines.append(f"  p2p   {host}:{port}")
    for peer, (peer_host, peer_port) in sorted(config.peer_addresses.items()):
        lines.append(f"  peer  {peer} at {peer_host}:{peer_port}")
    lines.append(f"  admin {os.path.join(config.data_dir, 'admin.sock')}")
    try:
        print("\n".join(lines), flush=True)
    except (BrokenPipeError, OSError):
        pass  # a node whose stdout is gone keeps running


def run_command(args: argparse.Namespace) -> int:
    profile_dir = os.environ.get(CPROFILE_ENV)
    if not profile_dir:
        return _run(args)
    seen: dict[int, tuple[str, float]] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(1.0):
            seen.update(thread_cpu_seconds())

    threading.Thread(target=sample, name="cprofile-threads", daemon=True).start()
    profiler = cProfile.Profile(time.thread_time)
    profiler.enable()
    try:
        return _run(args)
    finally:
        profiler.disable()
        stop.set()
        seen.update(thread_cpu_seconds())
        node_id = load_config(args.config).node_id
        os.makedirs(profile_dir, exist_ok=True)
        profiler.dump_stats(os.path.join(profile_dir, f"{node_id}.prof"))
        with open(os.path.join(profile_dir, f"{node_id}.threads"), "w", encoding="utf-8") as out:
            ranked = sorted(seen.items(), key=lambda kv: -kv[1][1])
            out.writelines(f"{cpu:10.3f} s  {name} ({tid})\n" for tid, (name, cpu) in ranked)


def thread_cpu_seconds() -> dict[int, tuple[str, float]]:
    """{native thread id: (name, CPU seconds)} for every thread of this process (Linux /proc): Python threads by
    their names, the others (LevelDB's compaction thread, libraries' own threads) as "native"."""
    names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[str, float]] = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return out
    for entry in tids:
        try:
            with open(f"/proc/self/task/{entry}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        tid = int(entry)
        out[tid] = (names.get(tid, "native"), (int(fields[11]) + int(fields[12])) / ticks)
    return out


def _run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(serve(args.config, getattr(args, "state_sync", False), node_passphrase(args)))
    except ClientError as exc:  # the passphrase: keystore_* and passphrase_* codes
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except (ConfigError, GenesisError, KeyFileError, SafetyStoreError, NodeError, StoreError, TransportError,
            ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def dev_command(args: argparse.Namespace) -> int:
    from node.tools.localnet import generate_network

    data = os.path.abspath(args.data)
    config_path = os.path.join(data, "node-0", "config.toml")
    if not os.path.exists(config_path):
        if os.path.exists(os.path.join(data, "genesis.json")):
            print(f"error: {data} holds a genesis but no node-0/config.toml", file=sys.stderr)
            return 1
        params = ChainParams(base_timeout_ms=1000, empty_block_interval_ms=200)
        layout = generate_network(data, 1, chain_id=args.chain_id, users=args.users, params=params,
                                  api_base_port=8100)
        print(f"created a development chain in {data}; test account keys in {layout.accounts_path}")
        _record_dev_profile(layout, args.chain_id)
    return run_command(argparse.Namespace(config=config_path))


def _record_dev_profile(layout: Any, chain_id: str) -> None:
    """A new dev chain becomes the client profile `dev` (current), so `ledger query status` finds it."""
    from node.cli.profile import record_testnet_profile
    from node.client.errors import ClientError

    try:
        profile, path, _ = record_testnet_profile([f"http://127.0.0.1:{layout.api_ports[0]}"], layout.genesis_path,
                                                  layout.accounts_path, chain_id, layout.directory, name="dev")
    except (ClientError, OSError) as exc:
        print(f"note: no client profile recorded ({exc})", file=sys.stderr)
        return
    print(f"client profile {profile.name!r} recorded in {path} and made current (ledger keys import: its test keys)")


def status_command(args: argparse.Namespace) -> int:
    path = os.path.join(args.data, "admin.sock")
    if not os.path.exists(path):
        path = os.path.join(args.data, "node-0", "data", "admin.sock")
    try:
        with AdminConnection(path) as conn:
            print(json.dumps(conn.request({"op": "status"}), indent=2))
    except OSError as exc:
        print(f"error: cannot reach the node at {path}: {exc}", file=sys.stderr)
        return 1
    return 0


def wait_for_socket(path: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.05)
    return False
