"""The node configuration file (TOML). Paths are relative to the directory of the config file.

    node_id = "node-0"
    data_dir = "data"                    # LevelDB stores (ledger/ and consensus/)
    keys_file = "node_keys.json"         # written by `ledger init`, mode 0600
    genesis_file = "genesis.json"
    role = "validator"                   # optional: "full" never signs, even where the validator set names its keys

    [p2p]
    listen = "127.0.0.1:7100"
    fault_injection = false              # testnet chain ids only (testnet-...)
    [p2p.peers]                          # optional: override the addresses of peers (genesis validators and
    node-1 = "127.0.0.1:7101"            #   validators added later by governance alike); "<identity key hex>@host:port"
                                         #   also admits that key for the peer (a node far behind, or joining, that
                                         #   has not yet applied the peer's key rotation or addition)
    [p2p.full_nodes]                     # optional: full nodes this node admits (this member's own), by identity key;
    full-a = "<identity key hex>"        #   re-read while the node runs (admin op reload_full_nodes)

    [api]
    listen = "127.0.0.1:8100"            # the HTTP API (docs/api.md); omit to run without it
    open_reads = false                   # testnets: every read without a signed request
    allow_plain_http = false             # non-local chains: serve plain HTTP on a non-loopback address anyway
    [api.tls]                            # HTTPS (node/api/tls.py; docs/operations.md, "TLS on the API")
    cert = "tls/node.pem"                #   certificate chain, PEM
    key = "tls/node.key"                 #   private key, PEM, mode 0600
    client_ca = "tls/clients-ca.pem"     #   optional: mutual TLS, client certificates from these CAs
    client_auth = "required"             #   or "optional"
    [api.tls.clients]                    #   client certificate -> member: "sha256:<hex>", "dns:<name>", "cn:<name>"
    bank-a = ["sha256:3f5e…"]

    [mempool]
    max_txs = 50000
    max_bytes = 67108864

    [log]
    level = "info"
    json = false

    [bls]
    backend = "blspy"                    # optional: "blspy" or "py_ecc"; default: $LEDGER_BLS_BACKEND, else blspy
                                         #   when installed, else py_ecc (node/chain/protocol.py, bls_backend)

    [sync]
    state_sync = false                   # an empty data directory joins from a certified snapshot (not genesis)
    snapshot_interval = 1000             # take a snapshot every N heights and serve it to peers (0: none)
    snapshot_keep = 2                    # snapshots kept on disk (the newest)
    snapshot_chunk_bytes = 1048576       # chunk size target (1024 .. 1048576)

    [pruning]
    keep_blocks = 0                      # keep only the last K blocks and their receipts (0: archive, the default)

    [testing]
    byzantine = "equivocate"             # testnet chains with fault_injection only: equivocating proposals/votes
                                         #   or "corrupt_chunks": serve snapshot chunks with a flipped byte

docs/operations.md describes every field.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from typing import Any, Final

import tomli_w

from consensus.bls import BACKEND_NAMES
from ledger.snapshot import CHUNK_TARGET_BYTES
from node.api.tls import ApiTls, TlsConfigError, parse_tls_table
from node.chain.files import write_file_atomically
from node.chain.genesis import GenesisError, format_address, parse_address
from node.chain.pruning import MIN_KEEP_BLOCKS
from node.chain.snapshots import MAX_SNAPSHOT_KEEP
from node.errors import NodeError

ROLES: Final = ("validator", "full")
# Full nodes one config may list in [p2p.full_nodes].
MAX_CONFIGURED_FULL_NODES: Final = 64


class ConfigError(NodeError, ValueError):
    """A node config file that cannot be used: `message` says what to fix."""


@dataclass(frozen=True, slots=True)
class NodeConfig:
    node_id: str
    data_dir: str
    keys_file: str
    genesis_file: str
    p2p_listen: tuple[str, int]
    peer_addresses: dict[str, tuple[str, int]] = field(default_factory=dict)
    # Identity keys given as "<hex>@host:port" in [p2p.peers]: admitted for that peer beside the ledger's keys.
    peer_keys: dict[str, bytes] = field(default_factory=dict)
    fault_injection: bool = False
    api_listen: tuple[str, int] | None = None
    api_open_reads: bool = False
    mempool_max_txs: int = 20_000
    mempool_max_bytes: int = 64 << 20
    log_level: str = "info"
    log_json: bool = False
    # Testnet-only Byzantine behaviour of this node (tests of the acceptance criteria): None or "equivocate".
    byzantine: str | None = None
    # The BLS backend ("blspy" or "py_ecc"); None: $LEDGER_BLS_BACKEND, else the default (node.chain.protocol).
    bls_backend: str | None = None
    # "validator" (signs when the validator set names its keys) or "full" (never signs: a full node).
    role: str = "validator"
    # [p2p.full_nodes]: node id -> identity key of the full nodes this node admits.
    full_nodes: dict[str, bytes] = field(default_factory=dict)
    path: str | None = None
    # State sync, snapshots, pruning (docs/operations.md, "State sync, snapshots and pruning").
    state_sync: bool = False
    snapshot_interval: int = 1000
    snapshot_keep: int = 2
    snapshot_chunk_bytes: int = 1 << 20
    keep_blocks: int = 0

    # [api.tls]: HTTPS and optional mutual TLS (node/api/tls.py); None: plain HTTP.
    api_tls: ApiTls | None = None
    # [api] allow_plain_http: plain HTTP on a non-loopback address of a non-local chain (TLS terminated elsewhere).
    api_allow_plain_http: bool = False

    def to_toml(self, base_dir: str | None = None) -> dict[str, Any]:
        def rel(p: str) -> str:
            return os.path.relpath(p, base_dir) if base_dir else p

        doc: dict[str, Any] = {
            "node_id": self.node_id,
            "data_dir": rel(self.data_dir),
            "keys_file": rel(self.keys_file),
            "genesis_file": rel(self.genesis_file),
            "p2p": {"listen": format_address(self.p2p_listen), "fault_injection": self.fault_injection,
                    "peers": {k: (f"{self.peer_keys[k].hex()}@" if k in self.peer_keys else "") + format_address(a)
                              for k, a in sorted(self.peer_addresses.items())}},
            "mempool": {"max_txs": self.mempool_max_txs, "max_bytes": self.mempool_max_bytes},
            "log": {"level": self.log_level, "json": self.log_json},
        }
        if self.api_listen is not None:
            doc["api"] = {"listen": f"{self.api_listen[0]}:{self.api_listen[1]}", "open_reads": self.api_open_reads}
            if self.api_allow_plain_http:
                doc["api"]["allow_plain_http"] = True
            if self.api_tls is not None:
                doc["api"]["tls"] = self.api_tls.to_toml(rel)
        if self.byzantine is not None:
            doc["testing"] = {"byzantine": self.byzantine}
        if self.bls_backend is not None:
            doc["bls"] = {"backend": self.bls_backend}
        doc["sync"] = {"state_sync": self.state_sync, "snapshot_interval": self.snapshot_interval,
                       "snapshot_keep": self.snapshot_keep, "snapshot_chunk_bytes": self.snapshot_chunk_bytes}
        doc["pruning"] = {"keep_blocks": self.keep_blocks}
        if self.role != "validator":
            doc["role"] = self.role
        if self.full_nodes:
            doc["p2p"]["full_nodes"] = {k: v.hex() for k, v in sorted(self.full_nodes.items())}
        return doc


def write_config(path: str, config: NodeConfig, *, exclusive: bool = False) -> None:
    """Write the config atomically; `exclusive`: never replace an existing file (FileExistsError)."""
    base = os.path.dirname(os.path.abspath(path))
    write_file_atomically(path, tomli_w.dumps(config.to_toml(base)).encode("utf-8"), exclusive=exclusive)


def _table(doc: dict[str, Any], name: str, allowed: set[str]) -> dict[str, Any]:
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError("config_bad_field", f"[{name}] must be a table")
    unknown = set(value) - allowed
    if unknown:
        raise ConfigError("config_unknown_field", f"[{name}] has unknown keys {sorted(unknown)}")
    return value


def _address(value: Any, what: str) -> tuple[str, int]:
    try:
        return parse_address(value, what)
    except GenesisError as exc:
        raise ConfigError("config_bad_field", exc.message) from None


def _peer_entry(value: Any, node_id: str) -> tuple[bytes | None, Any]:
    """("<identity key hex>@host:port" | "host:port") -> (key or None, address text)."""
    if not isinstance(value, str) or "@" not in value:
        return None, value
    key_hex, _, address = value.partition("@")
    try:
        key = bytes.fromhex(key_hex)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigError("config_bad_field", f"p2p.peers.{node_id}: the identity key before '@' must be 64 hex digits")
    return key, address


def _full_nodes(table: Any) -> dict[str, bytes]:
    if not isinstance(table, dict):
        raise ConfigError("config_bad_field", "[p2p.full_nodes] must be a table of node id = \"<identity key hex>\"")
    if len(table) > MAX_CONFIGURED_FULL_NODES:
        raise ConfigError("config_bad_field", f"[p2p.full_nodes] lists at most {MAX_CONFIGURED_FULL_NODES} nodes")
    out: dict[str, bytes] = {}
    for node_id, value in table.items():
        try:
            key = bytes.fromhex(value) if isinstance(value, str) else b""
        except ValueError:
            key = b""
        if not 0 < len(str(node_id).encode()) <= 64 or len(key) != 32:
            raise ConfigError("config_bad_field", f"p2p.full_nodes.{node_id}: a node id of 1..64 bytes = the "
                                                  "identity key as 64 hex digits")
        if key in out.values():
            raise ConfigError("config_bad_field", f"p2p.full_nodes.{node_id}: this key is listed twice")
        out[str(node_id)] = key
    return out


def load_config(path: str) -> NodeConfig:
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise ConfigError("config_unreadable", f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config_bad_toml", f"{path}: {exc}") from None
    unknown = set(doc) - {"node_id", "data_dir", "keys_file", "genesis_file", "p2p", "api", "mempool", "log",
                          "testing", "bls", "sync", "pruning", "role"}
    if unknown:
        raise ConfigError("config_unknown_field", f"{path}: unknown keys {sorted(unknown)}")
    base = os.path.dirname(os.path.abspath(path))

    def path_of(name: str, default: str) -> str:
        value = doc.get(name, default)
        if not isinstance(value, str) or not value:
            raise ConfigError("config_bad_field", f"{name} must be a path")
        return os.path.normpath(os.path.join(base, value))

    node_id = doc.get("node_id")
    if not isinstance(node_id, str) or not 0 < len(node_id.encode()) <= 64:
        raise ConfigError("config_bad_field", "node_id must be a string of 1..64 bytes")
    p2p = _table(doc, "p2p", {"listen", "fault_injection", "peers", "full_nodes"})
    role = doc.get("role", "validator")
    if role not in ROLES:
        raise ConfigError("config_bad_field", f"role must be one of {', '.join(ROLES)}")
    api = _table(doc, "api", {"listen", "open_reads", "allow_plain_http", "tls"})
    if type(api.get("open_reads", False)) is not bool:
        raise ConfigError("config_bad_field", "api.open_reads must be true or false")
    if type(api.get("allow_plain_http", False)) is not bool:
        raise ConfigError("config_bad_field", "api.allow_plain_http must be true or false")
    try:
        api_tls = parse_tls_table(api["tls"], base) if "tls" in api else None
    except TlsConfigError as exc:
        raise ConfigError(exc.code, f"{path}: {exc.message}") from None
    mempool = _table(doc, "mempool", {"max_txs", "max_bytes"})
    log = _table(doc, "log", {"level", "json"})
    testing = _table(doc, "testing", {"byzantine"})
    byzantine = testing.get("byzantine")
    if byzantine not in (None, "equivocate", "corrupt_chunks"):
        raise ConfigError("config_bad_field", "testing.byzantine must be \"equivocate\" or \"corrupt_chunks\" when set")
    sync = _table(doc, "sync", {"state_sync", "snapshot_interval", "snapshot_keep", "snapshot_chunk_bytes"})
    pruning = _table(doc, "pruning", {"keep_blocks"})
    state_sync = sync.get("state_sync", False)
    interval, keep = sync.get("snapshot_interval", 1000), sync.get("snapshot_keep", 2)
    keep_blocks = pruning.get("keep_blocks", 0)
    chunk_bytes = sync.get("snapshot_chunk_bytes", CHUNK_TARGET_BYTES)
    if type(chunk_bytes) is not int or not 1024 <= chunk_bytes <= CHUNK_TARGET_BYTES:
        raise ConfigError("config_bad_field", f"sync.snapshot_chunk_bytes is an integer in 1024..{CHUNK_TARGET_BYTES}")
    if type(state_sync) is not bool:
        raise ConfigError("config_bad_field", "sync.state_sync must be true or false")
    if type(interval) is not int or interval < 0 or type(keep) is not int or not 1 <= keep <= MAX_SNAPSHOT_KEEP:
        raise ConfigError("config_bad_field", f"sync.snapshot_interval >= 0 and sync.snapshot_keep in "
                                              f"1..{MAX_SNAPSHOT_KEEP} (integers)")
    if type(keep_blocks) is not int or not (keep_blocks == 0 or keep_blocks >= MIN_KEEP_BLOCKS):
        raise ConfigError("config_bad_field", f"pruning.keep_blocks is 0 (archive) or at least {MIN_KEEP_BLOCKS}")
    bls_backend = _table(doc, "bls", {"backend"}).get("backend")
    if bls_backend is not None and bls_backend not in BACKEND_NAMES:
        raise ConfigError("config_bad_field", f"bls.backend must be one of {', '.join(BACKEND_NAMES)} when set")
    peers = p2p.get("peers", {})
    if not isinstance(peers, dict):
        raise ConfigError("config_bad_field", "[p2p.peers] must be a table of node id = \"host:port\"")
    fault = p2p.get("fault_injection", False)
    if type(fault) is not bool:
        raise ConfigError("config_bad_field", "p2p.fault_injection must be true or false")
    max_txs, max_bytes = mempool.get("max_txs", 20_000), mempool.get("max_bytes", 64 << 20)
    if type(max_txs) is not int or type(max_bytes) is not int or max_txs < 1 or max_bytes < 1 << 16:
        raise ConfigError("config_bad_field", "mempool.max_txs >= 1 and mempool.max_bytes >= 65536 (integers)")
    level = log.get("level", "info")
    if level not in ("debug", "info", "warning", "error"):
        raise ConfigError("config_bad_field", "log.level must be debug, info, warning or error")
    if type(log.get("json", False)) is not bool:
        raise ConfigError("config_bad_field", "log.json must be true or false")
    return NodeConfig(
        node_id=node_id,
        data_dir=path_of("data_dir", "data"),
        keys_file=path_of("keys_file", "node_keys.json"),
        genesis_file=path_of("genesis_file", "genesis.json"),
        p2p_listen=_address(p2p.get("listen", "127.0.0.1:7100"), "p2p.listen"),
        peer_addresses={str(k): _address(_peer_entry(v, str(k))[1], f"p2p.peers.{k}") for k, v in peers.items()},
        peer_keys={str(k): key for k, v in peers.items() if (key := _peer_entry(v, str(k))[0]) is not None},
        fault_injection=fault,
        api_listen=None if "listen" not in api else _address(api["listen"], "api.listen"),
        api_open_reads=api.get("open_reads", False),
        mempool_max_txs=max_txs,
        mempool_max_bytes=max_bytes,
        log_level=level,
        log_json=log.get("json", False),
        byzantine=byzantine,
        bls_backend=bls_backend,
        role=role,
        full_nodes=_full_nodes(p2p.get("full_nodes", {})),
        path=os.path.abspath(path),
        state_sync=state_sync,
        snapshot_interval=interval,
        snapshot_keep=keep,
        snapshot_chunk_bytes=chunk_bytes,
        keep_blocks=keep_blocks,

        api_tls=api_tls,
        api_allow_plain_http=api.get("allow_plain_http", False),
    )
