"""The genesis file: what every node of one chain must agree on before the first block.

A genesis file is JSON (bytes as lowercase hex; docs/operations.md, "Genesis file"):

    {
      "format": "consortium-ledger-genesis/1",
      "chain_id": "testnet-demo",                 ledger chain id (transactions name it)
      "genesis_time": 1764000000,                 seconds; the time of height 0
      "members":    [{"id": "bank-a", "name": "Bank A"}, ...],
      "validators": [{"id": "node-0", "member": "bank-a", "identity_key": hex32, "bls_key": hex48,
                      "bls_pop": hex96, "address": "127.0.0.1:7100", "power": 1}, ...],
      "accounts":   [{"id": "admin@bank-a", "keys": [hex32, ...], "threshold": 1, "roles": ["admin"],
                      "custodian": null}, ...],
      "operations": [<operation in the JSON form of docs/protocol.md>, ...],   e.g. define_asset, issue
      "params":     {"max_block_txs": 2000, "max_block_bytes": 2000000, "base_timeout_ms": 2000,
                     "max_backoff_exponent": 6, "max_clock_drift_ms": 10000, "empty_block_interval_ms": 500},
      "governance": {"voters": ["bank-a", ...], "threshold": 3}      optional; default: every member votes,
                                                                     threshold floor(2N/3) + 1
    }

The validators, params and governance become ledger state at height 0 (the EpochRecord of epoch 0, start height 1,
and the GovernanceRecord); later changes are governance proposals (docs/protocol.md, "Governance and epochs").

The genesis hash is SHA-256("LEDGER-GENESIS-V1" || canonical JSON of the document: sorted keys, no spaces, UTF-8).
It is the consensus chain id: every block id, vote, QC and commit certificate is bound to it, so a node started with
a different genesis can neither sign for nor accept anything of this chain. The node gives it to its peer transport,
whose handshake signs it and refuses a peer of another genesis with `wrong_genesis` before any message flows
(docs/transport.md); nodes also exchange it in their STATUS message and log a clear `genesis_mismatch` when a peer
differs.

`operations` run at height 0 with the authority of their actor (no signatures): the way to define the first assets
and issue the first units. They must all succeed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from consensus import bls
from consensus.messages import Block, QuorumCert, genesis_block, genesis_qc
from consensus.validators import Validator, ValidatorSet, ValidatorSetError
from ledger.codec import DecodeError
from ledger.context import BlockContext, TxContext
from ledger.errors import Refused
from ledger.genesis import GenesisAccount, GenesisSpec, genesis_changes
from ledger.governance_state import current_epoch, validator_set_entries
from ledger.jsonform import from_json, kind_name
from ledger.protocol import Protocol
from ledger.records import ValidatorInfo
from ledger.schema import (
    CHAIN_ID,
    DEFAULT_CHAIN_PARAMS,
    MAX_ADDRESS_BYTES,
    MAX_TIMEOUT_MS,
    MAX_VALIDATOR_POWER,
    MAX_VALIDATORS,
    MIN_TIMEOUT_MS,
    NODE_ID_PATTERN,
    chain_params_error,
)
from ledger.smt import MemoryNodes, SparseMerkleTree
from ledger.state import MemoryState, Overlay
from ledger.state_keys import EPOCH_KEY, tree_changes
from node.chain.files import write_file_atomically
from node.chain.protocol import OPERATIONS, node_protocol
from node.errors import NodeError
from node.net.handshake import Peer, PeerSet

GENESIS_FORMAT: Final = "consortium-ledger-genesis/1"
GENESIS_DOMAIN: Final = b"LEDGER-GENESIS-V1"
MAX_GENESIS_BYTES: Final = 64 << 20
# The chain param bounds live in ledger.schema (CHAIN_PARAM_BOUNDS), shared with governance's SetChainParams.
__all__ = ["MAX_TIMEOUT_MS", "MIN_TIMEOUT_MS"]


class GenesisError(NodeError, ValueError):
    """A genesis file that cannot be used. `code` is stable, `message` says what to fix."""


@dataclass(frozen=True, slots=True)
class ChainParams:
    """Block limits and consensus timers: the genesis values (epoch 0); governance changes them per epoch.
    Defaults and bounds: ledger.schema (DEFAULT_CHAIN_PARAMS, CHAIN_PARAM_BOUNDS)."""

    # A full block executes in well under the round timeout on a loaded 2-core machine (about 0.3 ms per transfer).
    max_block_txs: int = DEFAULT_CHAIN_PARAMS["max_block_txs"]
    max_block_bytes: int = DEFAULT_CHAIN_PARAMS["max_block_bytes"]
    base_timeout_ms: int = DEFAULT_CHAIN_PARAMS["base_timeout_ms"]
    max_backoff_exponent: int = DEFAULT_CHAIN_PARAMS["max_backoff_exponent"]
    # A proposal whose time is further than this ahead of the voter's clock gets no vote.
    max_clock_drift_ms: int = DEFAULT_CHAIN_PARAMS["max_clock_drift_ms"]
    # A leader with nothing to propose waits at most this long before proposing an empty block.
    empty_block_interval_ms: int = DEFAULT_CHAIN_PARAMS["empty_block_interval_ms"]

    def check(self) -> None:
        error = chain_params_error({name: getattr(self, name) for name in ChainParams.__dataclass_fields__})
        if error is not None:
            raise GenesisError("genesis_bad_params", error)

    def items(self) -> tuple[tuple[str, int], ...]:
        return tuple((name, getattr(self, name)) for name in ChainParams.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class GenesisValidator:
    id: str
    member: str
    identity_key: bytes
    bls_key: bytes
    bls_pop: bytes
    address: tuple[str, int] | None
    power: int = 1


@dataclass(frozen=True, slots=True)
class Genesis:
    chain_id: str
    genesis_time: int
    members: tuple[tuple[str, str], ...]
    validators: tuple[GenesisValidator, ...]
    accounts: tuple[GenesisAccount, ...]
    operations: tuple[Any, ...]
    params: ChainParams
    hash: bytes
    document: Mapping[str, Any] = field(repr=False, compare=False)
    voters: tuple[str, ...] | None = None  # governance voters (None: every member)
    threshold: int | None = None  # approval threshold (None: floor(2N/3) + 1)

    @property
    def consensus_chain_id(self) -> bytes:
        """The chain id of consensus messages and blocks: the genesis hash."""
        return self.hash

    def validator_set(self, backend: bls.BlsBackend | None = None) -> ValidatorSet:
        """Epoch 0's set: the same entries as the ledger's epoch-0 record (validator_set_entries)."""
        return ValidatorSet(0, [Validator(v.id.encode(), v.bls_key, v.bls_pop, v.power) for v in self.validators],
                            backend=backend)

    def validator_infos(self) -> tuple[ValidatorInfo, ...]:
        """The validators as the ledger's epoch-0 record holds them (address "host:port" or "")."""
        return tuple(ValidatorInfo(v.id, v.member, v.identity_key, v.bls_key, v.bls_pop,
                                   "" if v.address is None else format_address(v.address), v.power)
                     for v in self.validators)

    def peer_set(self, addresses: Mapping[str, tuple[str, int]] | None = None) -> PeerSet:
        """The transport's peer set; `addresses` (from the node config) override the genesis addresses."""
        addresses = addresses or {}
        return PeerSet.of(Peer(v.id, v.identity_key, addresses.get(v.id, v.address)) for v in self.validators)

    def validator(self, node_id: str) -> GenesisValidator | None:
        return next((v for v in self.validators if v.id == node_id), None)

    def block(self) -> Block:
        return genesis_block(self.consensus_chain_id, 0)

    def spec(self) -> GenesisSpec:
        return GenesisSpec(self.chain_id, self.genesis_time, self.members, self.accounts, self.validator_infos(),
                           self.params.items(), self.voters, self.threshold)


@dataclass(frozen=True, slots=True)
class GenesisState:
    """The height-0 state: changes, tree nodes, root, and the genesis block with its certificate."""

    changes: Mapping[bytes, bytes | None]
    smt_nodes: Mapping[bytes, bytes]
    state_root: bytes
    block: Block
    qc: QuorumCert


# --------------------------------------------------------------------------------------------------------------
# Parsing


def _hex(value: Any, what: str, size: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise GenesisError("genesis_bad_field", f"{what} must be a hex string")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise GenesisError("genesis_bad_field", f"{what} is not valid hex") from None
    if raw.hex() != value or (size is not None and len(raw) != size):
        raise GenesisError("genesis_bad_field", f"{what} must be {size} bytes of lowercase hex")
    return raw


def _int(value: Any, what: str, lo: int = 0, hi: int = (1 << 63) - 1) -> int:
    if type(value) is not int or not lo <= value <= hi:
        raise GenesisError("genesis_bad_field", f"{what} must be an integer in {lo}..{hi}")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise GenesisError("genesis_bad_field", f"{what} must be a non-empty string")
    return value


def _keys(obj: Any, what: str, required: set[str], optional: set[str] | None = None) -> dict[str, Any]:
    optional = optional or set()
    if not isinstance(obj, dict):
        raise GenesisError("genesis_bad_field", f"{what} must be an object")
    missing = required - obj.keys()
    unknown = obj.keys() - required - optional
    if missing or unknown:
        raise GenesisError("genesis_bad_field",
                           f"{what}: missing {sorted(missing)}, unknown {sorted(unknown)}")
    return obj


def parse_address(text: Any, what: str = "address") -> tuple[str, int]:
    text = _str(text, what)
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise GenesisError("genesis_bad_field", f"{what} must be host:port, got {text!r}")
    if host.startswith("[") and host.endswith("]"):  # [IPv6]:port; sockets take the bare address
        host = host[1:-1]
        if not host:
            raise GenesisError("genesis_bad_field", f"{what} must be host:port, got {text!r}")
    return host, int(port)


def format_address(address: tuple[str, int]) -> str:
    """(host, port) -> "host:port", with an IPv6 host in brackets (the inverse of parse_address)."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def canonical_json(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def genesis_hash(document: Mapping[str, Any]) -> bytes:
    return hashlib.sha256(GENESIS_DOMAIN + canonical_json(document)).digest()


def parse_genesis(document: Any, *, check_keys: bool = True) -> Genesis:
    """Validate a decoded genesis document; GenesisError says what is wrong. With check_keys the BLS proofs of
    possession are verified (the validator set is built)."""
    doc = _keys(document, "genesis", {"format", "chain_id", "genesis_time", "members", "validators", "accounts"},
                {"operations", "params", "governance"})
    if doc["format"] != GENESIS_FORMAT:
        raise GenesisError("genesis_bad_format", f"format must be {GENESIS_FORMAT!r}, got {doc['format']!r}")
    chain_id = _str(doc["chain_id"], "chain_id")
    try:
        CHAIN_ID.load(chain_id)  # the chain id every transaction names: the same wire type as TxBody.chain_id
    except DecodeError as exc:
        raise GenesisError("genesis_bad_field", f"chain_id {chain_id[:80]!r}: {exc.message}") from None
    genesis_time = _int(doc["genesis_time"], "genesis_time", 0, 1 << 40)
    if not isinstance(doc["members"], list) or not doc["members"]:
        raise GenesisError("genesis_bad_field", "members must be a non-empty list")
    members = []
    for i, m in enumerate(doc["members"]):
        m = _keys(m, f"members[{i}]", {"id", "name"})
        members.append((_str(m["id"], f"members[{i}].id"), _str(m["name"], f"members[{i}].name")))
    member_ids = {m for m, _ in members}
    if not isinstance(doc["validators"], list) or not doc["validators"]:
        raise GenesisError("genesis_no_validators", "validators must be a non-empty list")
    validators = []
    for i, v in enumerate(doc["validators"]):
        what = f"validators[{i}]"
        v = _keys(v, what, {"id", "member", "identity_key", "bls_key", "bls_pop"}, {"address", "power"})
        address = None if v.get("address") is None else parse_address(v["address"], f"{what}.address")
        gv = GenesisValidator(_str(v["id"], f"{what}.id"), _str(v["member"], f"{what}.member"),
                              _hex(v["identity_key"], f"{what}.identity_key", 32),
                              _hex(v["bls_key"], f"{what}.bls_key", bls.PUBLIC_KEY_SIZE),
                              _hex(v["bls_pop"], f"{what}.bls_pop", bls.SIGNATURE_SIZE), address,
                              _int(v.get("power", 1), f"{what}.power", 1, MAX_VALIDATOR_POWER))
        if gv.member not in member_ids:
            raise GenesisError("genesis_unknown_member", f"{what} names unknown member {gv.member!r}")
        if re.fullmatch(NODE_ID_PATTERN, gv.id, re.ASCII) is None:
            raise GenesisError("genesis_bad_field", f"{what}.id must match {NODE_ID_PATTERN}")
        if gv.address is not None and len(f"{gv.address[0]}:{gv.address[1]}") > MAX_ADDRESS_BYTES:
            raise GenesisError("genesis_bad_field", f"{what}.address is longer than {MAX_ADDRESS_BYTES} bytes")
        validators.append(gv)
    if len(validators) > MAX_VALIDATORS:
        raise GenesisError("genesis_bad_validator_set", f"more than {MAX_VALIDATORS} validators")
    for label, values in (("id", [v.id for v in validators]), ("identity_key", [v.identity_key for v in validators]),
                          ("bls_key", [v.bls_key for v in validators]),
                          ("address", [v.address for v in validators if v.address is not None])):
        if len(set(values)) != len(values):
            raise GenesisError("genesis_duplicate_validator", f"two validators share the same {label}")
    accounts = []
    if not isinstance(doc["accounts"], list):
        raise GenesisError("genesis_bad_field", "accounts must be a list")
    for i, a in enumerate(doc["accounts"]):
        what = f"accounts[{i}]"
        a = _keys(a, what, {"id", "keys", "threshold"}, {"roles", "custodian"})
        if not isinstance(a["keys"], list) or not a["keys"]:
            raise GenesisError("genesis_bad_field", f"{what}.keys must be a non-empty list")
        roles = a.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise GenesisError("genesis_bad_field", f"{what}.roles must be a list of role names")
        custodian = a.get("custodian")
        accounts.append(GenesisAccount(_str(a["id"], f"{what}.id"),
                                       tuple(_hex(k, f"{what}.keys[]", 32) for k in a["keys"]),
                                       _int(a["threshold"], f"{what}.threshold", 1, 64), tuple(roles),
                                       None if custodian is None else _str(custodian, f"{what}.custodian")))
    operations = []
    raw_ops = doc.get("operations", [])
    if not isinstance(raw_ops, list):
        raise GenesisError("genesis_bad_field", "operations must be a list")
    for i, op in enumerate(raw_ops):
        try:
            operations.append(from_json(OPERATIONS.variant, op))
        except DecodeError as exc:
            raise GenesisError("genesis_bad_operation", f"operations[{i}]: {exc}") from None
    raw_params = doc.get("params", {})
    names = set(ChainParams.__dataclass_fields__)
    raw_params = _keys(raw_params, "params", set(), names)
    params = ChainParams(**{k: _int(v, f"params.{k}") for k, v in raw_params.items()})
    params.check()
    voters, threshold = _governance(doc.get("governance"))
    genesis = Genesis(chain_id, genesis_time, tuple(members), tuple(validators), tuple(accounts), tuple(operations),
                      params, genesis_hash(doc), doc, voters, threshold)
    total = sum(v.power for v in validators)
    faulty = (total - 1) // 3
    assert 3 * (total - faulty) > 2 * total  # quorum arithmetic of ValidatorSet
    if check_keys:
        try:
            genesis.validator_set()
        except ValidatorSetError as exc:
            raise GenesisError("genesis_bad_validator_set", exc.message) from None
    # The state must build: members, accounts and operations are consistent.
    genesis_state(genesis)
    return genesis


def _governance(raw: Any) -> tuple[tuple[str, ...] | None, int | None]:
    if raw is None:
        return None, None
    gov = _keys(raw, "governance", set(), {"voters", "threshold"})
    voters = gov.get("voters")
    if voters is not None:
        if not isinstance(voters, list) or not voters:
            raise GenesisError("genesis_bad_governance", "governance.voters must be a non-empty list of member ids")
        voters = tuple(_str(m, "governance.voters[]") for m in voters)
    threshold = gov.get("threshold")
    if threshold is not None:
        threshold = _int(threshold, "governance.threshold", 1, 1 << 16)
    return voters, threshold


def load_genesis(path: str | os.PathLike[str], *, check_keys: bool = True) -> Genesis:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_GENESIS_BYTES + 1)
    except OSError as exc:
        raise GenesisError("genesis_unreadable", f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_GENESIS_BYTES:
        raise GenesisError("genesis_too_large", f"{path} is larger than {MAX_GENESIS_BYTES} bytes")
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise GenesisError("genesis_bad_json", f"{path} is not valid JSON: {exc}") from None
    return parse_genesis(document, check_keys=check_keys)


def write_genesis(path: str | os.PathLike[str], document: Mapping[str, Any], *, exclusive: bool = False) -> None:
    """Write the genesis file atomically; `exclusive`: never replace an existing file (FileExistsError)."""
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    write_file_atomically(path, text.encode("utf-8"), exclusive=exclusive)


# --------------------------------------------------------------------------------------------------------------
# State


def genesis_state(genesis: Genesis, protocol: Protocol | None = None) -> GenesisState:
    """Build the height-0 state (members, accounts, then the genesis operations under `protocol`, by default the
    node's, node/chain/protocol.py) and its tree."""
    try:
        changes = genesis_changes(genesis.spec())
    except ValueError as exc:
        code = "genesis_bad_governance" if str(exc).startswith("governance") else "genesis_bad_state"
        raise GenesisError(code, str(exc)) from None
    protocol = protocol or node_protocol()
    if genesis.operations:
        base = MemoryState({k: v for k, v in changes.items() if v is not None})
        overlay = Overlay(base)
        block = BlockContext(genesis.chain_id, 0, genesis.genesis_time)
        for i, op in enumerate(genesis.operations):
            tx_id = hashlib.sha256(b"genesis operation %d" % i).digest()
            ctx = TxContext(overlay, block, tx_id, frozenset({op.actor}), protocol)
            try:
                protocol.operations.dispatch[type(op)](ctx, op)
            except Refused as exc:
                raise GenesisError("genesis_operation_refused",
                                   f"operations[{i}] ({kind_name(type(op))}) refused: {exc.code} {exc.message}") from None
        if EPOCH_KEY in overlay.changes():
            raise GenesisError("genesis_operation_refused",
                               "genesis operations may not change the validator set or the chain params")
        changes = dict(changes)
        changes.update(overlay.changes())
        changes = dict(sorted(changes.items()))
    epoch0 = current_epoch(MemoryState({k: v for k, v in changes.items() if v is not None}))
    assert validator_set_entries(epoch0) == tuple(
        (v.id.encode(), v.bls_key, v.bls_pop, v.power) for v in genesis.validators), "epoch 0 is the genesis set"
    update = SparseMerkleTree(MemoryNodes()).update(tree_changes(changes))
    block = genesis.block()
    return GenesisState(changes, update.nodes, update.root, block, genesis_qc(block, update.root))


# --------------------------------------------------------------------------------------------------------------
# Building genesis documents


def validator_entry(node_id: str, member: str, identity_key: bytes, bls_key: bytes, bls_pop: bytes,
                    address: tuple[str, int] | None, power: int = 1) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": node_id, "member": member, "identity_key": identity_key.hex(),
                             "bls_key": bls_key.hex(), "bls_pop": bls_pop.hex(), "power": power}
    if address is not None:
        entry["address"] = format_address(address)
    return entry


def make_document(chain_id: str, genesis_time: int, members: Sequence[tuple[str, str]],
                  validators: Sequence[dict[str, Any]], accounts: Sequence[dict[str, Any]],
                  operations: Sequence[dict[str, Any]] = (), params: ChainParams | None = None,
                  governance: Mapping[str, Any] | None = None) -> dict[str, Any]:
    params = params or ChainParams()
    extra: dict[str, Any] = {} if governance is None else {"governance": dict(governance)}
    return {**extra,
        "format": GENESIS_FORMAT,
        "chain_id": chain_id,
        "genesis_time": genesis_time,
        "members": [{"id": m, "name": n} for m, n in members],
        "validators": list(validators),
        "accounts": list(accounts),
        "operations": list(operations),
        "params": {name: getattr(params, name) for name in ChainParams.__dataclass_fields__},
    }
