"""Custody statements: an account's holdings at a height, as one self-contained JSON document that anyone holding
only the genesis file can verify offline (docs/custody-statements.md).

    build_statement(store, account_id, height, chain_id=..., certificate=..., validator_set=...,
                    epoch_proofs=...) -> dict
    verify_statement(doc, genesis) -> StatementVerdict            (pure: no I/O, no clock)
    statement_bytes(doc) -> bytes                                 (the canonical file form)
    verify_statement_bytes(data, genesis) -> StatementVerdict     (also refuses any non-canonical byte)

The document carries the holdings (per asset: available, held, frozen, and every active hold on the account's
units), a state proof for every record they are derived from, the commit certificate that makes the block at that
height final with that state root, and a reference to the validator set that signed it. The verifier recomputes the
holdings from the proven records and requires them to equal the listed ones exactly, so no listed value can differ
from what the proofs show.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from consensus.certificates import (
    CommitCertificateError,
    EpochChainError,
    SignatureVerifier,
    check_commit_certificate,
    verify_epoch_chain,
)
from consensus.codec import CodecError
from consensus.messages import CommitCertificate, EpochChangeProof
from consensus.validators import ValidatorSet
from ledger import codes
from ledger.codec import DecodeError, decode, record_type
from ledger.records import HOLD_STATUS_NAMES, Account, Balance, ChainMeta, Hold, HoldStatus, Positions
from ledger.schema import ACCOUNT_PATTERN, MAX_ACCOUNT_ID_BYTES, MAX_POSITIONS, MAX_STATE_VALUE_BYTES
from ledger.smt import StateProof, StateProofError, verify_proof
from ledger.state_keys import META_KEY, account_key, balance_key, hold_key, positions_key
from ledger.store import StoreError
from node.errors import NodeError

__all__ = [
    "FORMAT",
    "MAX_STATEMENT_BYTES",
    "MAX_STATEMENT_EPOCH_CHANGES",
    "MAX_STATEMENT_HOLDS",
    "StatementCode",
    "StatementError",
    "StatementVerdict",
    "TrustAnchor",
    "build_statement",
    "load_trust_anchor",
    "statement_bytes",
    "statement_from_store",
    "verify_statement",
    "verify_statement_bytes",
]

FORMAT: Final = "ledger-custody-statement/1"
MAX_STATEMENT_HOLDS: Final = 4096  # active holds listed in one statement
MAX_STATEMENT_BYTES: Final = 64 << 20  # a statement file; a full one (1024 assets, 4096 holds) is ~30 MB
MAX_CERTIFICATE_HEX: Final = 2 * (1 << 20)  # certificates are ~700 bytes for n = 4; 1 MiB leaves room for n = 1024
# An epoch-change proof is a commit certificate plus the next set (208 bytes per validator): ~1.6 KB for n = 5.
MAX_EPOCH_PROOF_HEX: Final = 2 * (2 << 20)
# Epoch changes a statement may carry (each costs two aggregate BLS checks and one PoP check per next validator);
# a chain that changes its set every day reaches this after 44 years. The 64 MiB file limit holds about as many.
MAX_STATEMENT_EPOCH_CHANGES: Final = 16_384

_ACCOUNT = record_type(Account)
_BALANCE = record_type(Balance)
_META = record_type(ChainMeta)
_HOLD = record_type(Hold)
_POSITIONS = record_type(Positions)

_TOP_FIELDS: Final = frozenset(
    {
        "format",
        "chain_id",
        "genesis",
        "account",
        "height",
        "time",
        "state_root",
        "block",
        "account_status",
        "holdings",
        "proofs",
        "commit_certificate",
        "validator_set",
    }
)


class StatementError(NodeError):
    """A statement cannot be built (unknown height, pruned state, certificate for another block, ...)."""


class StatementCode:
    """The stable codes of a verdict."""

    OK = "ok"
    MALFORMED = "statement_malformed"
    NOT_CANONICAL = "statement_not_canonical"
    WRONG_CHAIN = "statement_wrong_chain"
    VALIDATOR_SET_MISMATCH = "statement_validator_set_mismatch"
    # The chain of epoch changes from the genesis set to the certificate's epoch (docs/custody-statements.md):
    EPOCH_PROOF_MALFORMED = "statement_epoch_proof_malformed"  # does not decode, or not canonical bytes
    EPOCH_PROOF_ORDER = "statement_epoch_proof_out_of_order"  # proofs not consecutive from the genesis epoch
    EPOCH_PROOF_BAD_CERTIFICATE = "statement_epoch_proof_bad_certificate"  # not final under the set of its epoch
    EPOCH_PROOF_NOT_EPOCH_ENDING = "statement_epoch_proof_not_epoch_ending"  # does not certify this next set
    EPOCH_PROOF_BAD_NEXT_SET = "statement_epoch_proof_bad_next_set"  # next set inadmissible (PoP, duplicates)
    EPOCH_CHAIN_TOO_LONG = "statement_epoch_chain_too_long"
    EPOCH_MISMATCH = "statement_epoch_mismatch"  # the chain ends in another epoch than the certificate's
    BAD_CERTIFICATE = "statement_bad_certificate"
    BLOCK_MISMATCH = "statement_block_mismatch"
    BAD_PROOF = "statement_bad_proof"
    PROOF_SET_MISMATCH = "statement_proof_set_mismatch"
    VALUE_MISMATCH = "statement_value_mismatch"


@dataclass(frozen=True, slots=True)
class StatementVerdict:
    """The outcome of verifying a statement. `code` is "ok" or a stable failure code; `reason` is for people."""

    ok: bool
    code: str
    reason: str
    account: str | None = None
    height: int | None = None


@dataclass(frozen=True, slots=True)
class TrustAnchor:
    """What a verifier trusts, all from the genesis file: the ledger chain id, the consensus chain id (the genesis
    hash, which every block header, vote and certificate is bound to) and the genesis validator set."""

    chain_id: str
    consensus_chain_id: bytes
    validator_set: ValidatorSet

    @staticmethod
    def from_genesis(genesis: Any) -> TrustAnchor:
        """From a node.chain.genesis.Genesis (or anything with chain_id, consensus_chain_id and validator_set())."""
        if isinstance(genesis, TrustAnchor):
            return genesis
        vs = genesis.validator_set()
        assert isinstance(vs, ValidatorSet) and isinstance(genesis.chain_id, str)
        return TrustAnchor(genesis.chain_id, bytes(genesis.consensus_chain_id), vs)


def load_trust_anchor(path: str) -> TrustAnchor:
    """Read a genesis file (node.chain.genesis format) and return its trust anchor. Raises node.chain.genesis.GenesisError."""
    from node.chain.genesis import load_genesis

    return TrustAnchor.from_genesis(load_genesis(path))


class _Reject(NodeError):
    """Internal: why a statement does not verify (a StatementCode); the verifier turns it into the verdict."""


# --------------------------------------------------------------------------------------------------------------
# Shared: the holdings derived from records (the builder and the verifier use the same function)


def _hold_json(hold_id: str, h: Hold) -> dict[str, Any]:
    return {
        "hold": hold_id,
        "recipient": h.recipient,
        "notary": h.notary,
        "amount": h.amount,
        "expires_at": h.expires_at,
        "created_height": h.created_height,
        "status": HOLD_STATUS_NAMES[h.status],
    }


def _account_status(acct: Account) -> dict[str, Any]:
    return {"frozen": acct.frozen, "custodian": acct.custodian, "closed_to": acct.closed_to}


def _holdings(
    positions: Positions | None, balances: Mapping[str, Balance], holds: Mapping[str, Hold]
) -> list[dict[str, Any]]:
    assets = () if positions is None else positions.assets
    by_asset: dict[str, list[dict[str, Any]]] = {a: [] for a in assets}
    for hold_id in sorted(holds):
        h = holds[hold_id]
        by_asset[h.asset].append(_hold_json(hold_id, h))
    out = []
    for asset in assets:
        b = balances[asset]
        out.append(
            {"asset": asset, "available": b.available, "held": b.held, "frozen": b.frozen, "holds": by_asset[asset]}
        )
    return out


def _check_holds(account_id: str, positions: Positions | None, balances: Mapping[str, Balance],
                 holds: Mapping[str, Hold]) -> None:
    """The listed holds are active holds on the account's units, and per asset they add up to the held balance
    (so none is missing: every unit in `held` sits in exactly one active hold, an invariant of the ledger)."""
    assets = set(() if positions is None else positions.assets)
    total: dict[str, int] = {}
    for hold_id, h in holds.items():
        if h.sender != account_id or h.status != HoldStatus.ORDERED or h.asset not in assets:
            raise _Reject(StatementCode.VALUE_MISMATCH, f"hold {hold_id} is not an active hold on this account")
        total[h.asset] = total.get(h.asset, 0) + h.amount
    for asset in assets:
        if total.get(asset, 0) != balances[asset].held:
            raise _Reject(
                StatementCode.VALUE_MISMATCH,
                f"{asset}: listed holds add up to {total.get(asset, 0)}, held balance is {balances[asset].held}",
            )


# --------------------------------------------------------------------------------------------------------------
# Building


def _proof_entry(key: bytes, value: bytes | None, proof: StateProof) -> dict[str, Any]:
    return {"key": key.hex(), "value": None if value is None else value.hex(), "proof": proof.to_json()}


def build_statement(
    store: Any,
    account_id: str,
    height: int,
    *,
    chain_id: str,
    certificate: CommitCertificate,
    validator_set: ValidatorSet,
    epoch_proofs: Sequence[EpochChangeProof] = (),
    hold_ids: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The custody statement of `account_id` at `height` (a JSON-ready dict).

    `store` is a ledger.store.LedgerStore (prove, state_root_at, iter_state); `certificate` the commit
    certificate of the block at `height`, signed by `validator_set` (the set of the certificate's epoch).
    `epoch_proofs` are the epoch-change proofs ending epochs 0, 1, ... (at least up to the certificate's epoch;
    later ones are left out, so a node may pass all it has). `hold_ids`, when the caller has an index of the
    account's holds, saves scanning the hold records. Raises StatementError (with a code) when the statement cannot
    be built; it never signs or verifies anything itself."""
    if type(height) is not int or height < 1:
        raise StatementError("statement_bad_height", "statements start at height 1 (the genesis has no certificate)")
    root = store.state_root_at(height)
    if root is None:
        raise StatementError("unknown_height", f"no block at height {height}")
    if certificate.height != height or certificate.state_root != root:
        raise StatementError(
            "statement_certificate_mismatch",
            f"the certificate proves height {certificate.height}, root {certificate.state_root.hex()[:16]}; "
            f"the store has root {root.hex()[:16]} at height {height}",
        )
    if certificate.epoch != validator_set.epoch:
        raise StatementError("statement_certificate_mismatch", "the certificate is of another epoch")
    changes = _epoch_changes(certificate.epoch, validator_set, epoch_proofs)
    proofs: dict[bytes, dict[str, Any]] = {}

    def prove(key: bytes) -> bytes | None:
        try:
            value, proof = store.prove(key, height)
        except StoreError as exc:
            # The node's code of a store error is its ledger code's name: unknown_height, height_pruned, ...
            raise StatementError(codes.REASONS[exc.code].name.lower(), exc.message) from exc
        proofs[key] = _proof_entry(key, value, proof)
        return value

    raw_meta = prove(META_KEY)
    assert raw_meta is not None, "state without chain meta"
    meta: ChainMeta = decode(_META, raw_meta, MAX_STATE_VALUE_BYTES)
    if meta.chain_id != chain_id or meta.height != height:
        raise StatementError(
            "statement_chain_mismatch",
            f"state at height {height} records chain {meta.chain_id} height {meta.height}",
        )
    raw_acct = prove(account_key(account_id))
    if raw_acct is None:
        raise StatementError("account_not_found", f"account {account_id} does not exist at height {height}")
    acct: Account = decode(_ACCOUNT, raw_acct, MAX_STATE_VALUE_BYTES)
    raw_pos = prove(positions_key(account_id))
    positions: Positions | None = None if raw_pos is None else decode(_POSITIONS, raw_pos, MAX_STATE_VALUE_BYTES)
    balances: dict[str, Balance] = {}
    for asset in () if positions is None else positions.assets:
        raw_bal = prove(balance_key(asset, account_id))
        assert raw_bal is not None, "a position without a balance"
        balances[asset] = decode(_BALANCE, raw_bal, MAX_STATE_VALUE_BYTES)
    holds = _find_holds(store, account_id, height, balances, hold_ids)
    for hold_id in holds:
        prove(hold_key(hold_id))
    _check_holds_or_fail(account_id, positions, balances, holds)
    header = certificate.headers[0]
    return {
        "format": FORMAT,
        "chain_id": chain_id,
        "genesis": header.chain_id.hex(),
        "account": account_id,
        "height": height,
        "time": meta.time,
        "state_root": root.hex(),
        "block": _block_json(certificate),
        "account_status": _account_status(acct),
        "holdings": _holdings(positions, balances, holds),
        "proofs": [proofs[k] for k in sorted(proofs)],
        "commit_certificate": certificate.encode().hex(),
        "validator_set": {"epoch": header.epoch, "digest": validator_set.digest.hex(), "epoch_changes": changes},
    }


def _epoch_changes(epoch: int, validator_set: ValidatorSet, proofs: Sequence[EpochChangeProof]) -> list[str]:
    """The hex proofs ending epochs 0..epoch-1; checks their order and that the last names `validator_set`."""
    if len(proofs) < epoch:
        raise StatementError("statement_epoch_proofs_missing",
                             f"the certificate is of epoch {epoch}; only {len(proofs)} epoch-change proofs given")
    if epoch > MAX_STATEMENT_EPOCH_CHANGES:
        raise StatementError("statement_too_large", f"more than {MAX_STATEMENT_EPOCH_CHANGES} epoch changes")
    used = list(proofs[:epoch])
    for i, proof in enumerate(used):
        if proof.epoch != i:
            raise StatementError("statement_epoch_proofs_missing", f"proof {i} ends epoch {proof.epoch}, not {i}")
    if used and tuple(used[-1].next_validators) != validator_set.entries():
        raise StatementError("statement_certificate_mismatch",
                             f"the proof ending epoch {epoch - 1} names another set than the certificate's")
    return [p.encode().hex() for p in used]


def statement_from_store(
    store: Any,
    account_id: str,
    height: int,
    *,
    chain_id: str,
    genesis_set: ValidatorSet,
    hold_ids: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The custody statement of `account_id` at `height` from a node's store alone: the commit certificate stored
    with the block (node.chain.certified.cert_key), the epoch-change proofs up to its epoch (node.chain.certified
    .load_epoch_proofs) and the set of that epoch (the genesis set, or the next set named by the last proof).
    Raises StatementError like build_statement, and `statement_no_certificate` / `statement_epoch_proofs_missing`
    when the store lacks them (a block sync in progress)."""
    from node.chain.certified import cert_key, load_epoch_proofs
    from node.chain.protocol import bls_backend

    if type(height) is not int or height < 1:
        raise StatementError("statement_bad_height", "statements start at height 1 (the genesis has no certificate)")
    raw = store.get_extra(cert_key(height))
    if raw is None:
        if store.state_root_at(height) is None:
            raise StatementError("unknown_height", f"no block at height {height}")
        raise StatementError("statement_no_certificate", f"no commit certificate stored for height {height}")
    certificate = CommitCertificate.decode(raw)
    try:
        proofs = load_epoch_proofs(store, certificate.epoch)
    except NodeError as exc:
        raise StatementError("statement_epoch_proofs_missing", exc.message) from None
    if certificate.epoch == genesis_set.epoch:
        validator_set = genesis_set
    else:
        validator_set = ValidatorSet(certificate.epoch, proofs[-1].next_validators, backend=bls_backend())
    return build_statement(store, account_id, height, chain_id=chain_id, certificate=certificate,
                           validator_set=validator_set, epoch_proofs=proofs, hold_ids=hold_ids)


def _check_holds_or_fail(account_id: str, positions: Positions | None, balances: Mapping[str, Balance],
                         holds: Mapping[str, Hold]) -> None:
    try:
        _check_holds(account_id, positions, balances, holds)
    except _Reject as exc:
        raise StatementError("statement_holds_incomplete", exc.message) from None


def _find_holds(
    store: Any, account_id: str, height: int, balances: Mapping[str, Balance], hold_ids: Iterable[str] | None
) -> dict[str, Hold]:
    """The active holds on the account's units at `height`. Hold records are never deleted and their sender never
    changes, so every hold of that height is among today's hold records."""
    needed = {asset: b.held for asset, b in balances.items() if b.held}
    found: dict[str, Hold] = {}
    if not needed:
        return found

    def consider(hold_id: str) -> None:
        raw = store.get_state_at(hold_key(hold_id), height)
        if raw is None:
            return
        h: Hold = decode(_HOLD, raw, MAX_STATE_VALUE_BYTES)
        if h.sender == account_id and h.status == HoldStatus.ORDERED and h.asset in needed:
            if len(found) >= MAX_STATEMENT_HOLDS:
                raise StatementError("statement_too_large", f"more than {MAX_STATEMENT_HOLDS} active holds")
            found[hold_id] = h
            needed[h.asset] -= h.amount

    if hold_ids is not None:
        for hold_id in sorted(set(hold_ids)):
            consider(hold_id)
        return found
    scan = store.iter_state(b"H")
    try:
        for key, raw in scan:
            h = decode(_HOLD, raw, MAX_STATE_VALUE_BYTES)
            if h.sender == account_id and h.asset in needed:
                consider(key[1:].decode("ascii"))
                if not any(needed.values()):
                    break
    finally:
        scan.close()
    return found


def _block_json(cert: CommitCertificate) -> dict[str, Any]:
    h = cert.headers[0]
    return {"id": cert.block_id.hex(), "height": h.height, "epoch": h.epoch, "round": h.round}


def statement_bytes(doc: Mapping[str, Any]) -> bytes:
    """The canonical file form: sorted keys, two-space indent, ASCII only, one trailing newline."""
    return (json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode("ascii")


# --------------------------------------------------------------------------------------------------------------
# Verifying


def _fields(obj: Any, names: frozenset[str] | set[str], what: str) -> Mapping[str, Any]:
    if type(obj) is not dict or set(obj) != set(names):
        raise _Reject(StatementCode.MALFORMED, f"{what} must be an object with exactly {sorted(names)}")
    return obj


def _int(v: Any, what: str) -> int:
    if type(v) is not int or not 0 <= v < 1 << 64:
        raise _Reject(StatementCode.MALFORMED, f"{what} must be an unsigned 64-bit integer")
    return v


def _str(v: Any, what: str, limit: int = 256) -> str:
    if type(v) is not str or not 0 < len(v) <= limit:
        raise _Reject(StatementCode.MALFORMED, f"{what} must be a non-empty string")
    return v


def _hex(v: Any, what: str, size: int | None = None, limit: int = 2 * MAX_STATE_VALUE_BYTES) -> bytes:
    if type(v) is not str or len(v) > limit or len(v) % 2 or v != v.lower():
        raise _Reject(StatementCode.MALFORMED, f"{what} must be lowercase hex")
    try:
        data = bytes.fromhex(v)
    except ValueError:
        raise _Reject(StatementCode.MALFORMED, f"{what} must be lowercase hex") from None
    if data.hex() != v or (size is not None and len(data) != size):
        raise _Reject(StatementCode.MALFORMED, f"{what} must be {size} bytes of lowercase hex")
    return data


def _record(rt: Any, raw: bytes | None, what: str) -> Any:
    if raw is None:
        return None
    try:
        return decode(rt, raw, MAX_STATE_VALUE_BYTES)
    except DecodeError as exc:
        raise _Reject(StatementCode.VALUE_MISMATCH, f"proven {what} does not decode: {exc}") from None


def verify_statement(
    doc: Any, genesis: Any, *, verifier: SignatureVerifier | None = None
) -> StatementVerdict:
    """Check a statement against the genesis (a TrustAnchor or a node.chain.genesis.Genesis). Pure and total: every
    malformed or tampered input gives a failed verdict, never an exception."""
    anchor = TrustAnchor.from_genesis(genesis)
    account = doc.get("account") if type(doc) is dict else None
    height = doc.get("height") if type(doc) is dict else None
    account = account if type(account) is str else None
    height = height if type(height) is int else None
    try:
        _verify(doc, anchor, verifier)
    except _Reject as exc:
        return StatementVerdict(False, exc.code, exc.message, account, height)
    except RecursionError:
        return StatementVerdict(False, StatementCode.MALFORMED, "nested too deeply", account, height)
    return StatementVerdict(True, StatementCode.OK, "statement verified", account, height)


def verify_statement_bytes(
    data: bytes, genesis: Any, *, verifier: SignatureVerifier | None = None
) -> StatementVerdict:
    """Verify a statement file: it must be the canonical form (statement_bytes) of a valid statement, so changing
    any single byte of a valid file fails."""
    if len(data) > MAX_STATEMENT_BYTES:
        return StatementVerdict(False, StatementCode.MALFORMED, f"larger than {MAX_STATEMENT_BYTES} bytes")
    try:
        doc = json.loads(data.decode("ascii"), parse_float=_no_float, parse_constant=_no_float)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return StatementVerdict(False, StatementCode.MALFORMED, f"not a JSON document: {exc}")
    verdict = verify_statement(doc, genesis, verifier=verifier)
    if not verdict.ok:
        return verdict
    if statement_bytes(doc) != data:
        return StatementVerdict(
            False, StatementCode.NOT_CANONICAL, "the file is not in canonical form (it was edited or reformatted)",
            verdict.account, verdict.height,
        )
    return verdict


def _same(listed: Any, derived: Any) -> bool:
    """Equal as JSON (type-strict: 1, 1.0 and true differ; so do key orders of lists)."""
    try:
        return json.dumps(listed, sort_keys=True) == json.dumps(derived, sort_keys=True)
    except (TypeError, ValueError):
        return False


def _no_float(text: str) -> Any:
    raise ValueError(f"non-integer number {text!r}")


def _verify(doc: Any, anchor: TrustAnchor, verifier: SignatureVerifier | None) -> None:
    R = StatementCode
    d = _fields(doc, _TOP_FIELDS, "statement")
    if d["format"] != FORMAT:
        raise _Reject(R.MALFORMED, f"unknown format {d['format']!r} (expected {FORMAT})")
    chain_id = _str(d["chain_id"], "chain_id", 32)
    account = _str(d["account"], "account", MAX_ACCOUNT_ID_BYTES)
    height = _int(d["height"], "height")
    time = _int(d["time"], "time")
    root = _hex(d["state_root"], "state_root", 32)
    genesis_id = _hex(d["genesis"], "genesis", limit=128)
    if chain_id != anchor.chain_id or genesis_id != anchor.consensus_chain_id:
        raise _Reject(R.WRONG_CHAIN, f"statement of chain {chain_id!r}, genesis is {anchor.chain_id!r}")
    if re.fullmatch(ACCOUNT_PATTERN, account) is None:
        raise _Reject(R.MALFORMED, "account is not a valid account id")

    # 1. Validator set: follow the epoch changes from the genesis set to the statement's epoch.
    vsr = _fields(d["validator_set"], {"epoch", "digest", "epoch_changes"}, "validator_set")
    epoch = _int(vsr["epoch"], "validator_set.epoch")
    digest = _hex(vsr["digest"], "validator_set.digest", 32)
    vs = _follow_epochs(vsr["epoch_changes"], anchor, verifier)
    if epoch != vs.epoch:
        raise _Reject(R.EPOCH_MISMATCH, f"statement of epoch {epoch}; its epoch changes lead to epoch {vs.epoch}")
    if digest != vs.digest:
        raise _Reject(R.VALIDATOR_SET_MISMATCH, f"validator set digest differs from the set of epoch {epoch}")

    # 2. The commit certificate: the block at `height` is final with state root `root`.
    cert_bytes = _hex(d["commit_certificate"], "commit_certificate", limit=MAX_CERTIFICATE_HEX)
    try:
        cert = CommitCertificate.decode(cert_bytes)
    except CodecError as exc:
        raise _Reject(R.BAD_CERTIFICATE, f"commit certificate does not decode: {exc.code}") from None
    if cert.encode() != cert_bytes:
        raise _Reject(R.BAD_CERTIFICATE, "commit certificate is not canonical")
    if cert.epoch != vs.epoch:
        raise _Reject(R.EPOCH_MISMATCH, f"certificate of epoch {cert.epoch}, statement of epoch {vs.epoch}")
    try:
        check_commit_certificate(vs, cert, chain_id=anchor.consensus_chain_id, verifier=verifier)
    except CommitCertificateError as exc:
        raise _Reject(R.BAD_CERTIFICATE, f"{exc.code}: {exc.message}") from None
    if cert.height != height or cert.state_root != root:
        raise _Reject(R.BLOCK_MISMATCH, "the certificate proves another height or state root")
    if not _same(d["block"], _block_json(cert)):
        raise _Reject(R.BLOCK_MISMATCH, "block summary differs from the certified header")

    # 3. Every proof against the certified root.
    if type(d["proofs"]) is not list or len(d["proofs"]) > 3 + MAX_POSITIONS + MAX_STATEMENT_HOLDS:
        raise _Reject(R.MALFORMED, "proofs must be a list of bounded length")
    proven: dict[bytes, bytes | None] = {}
    last: bytes | None = None
    for i, entry in enumerate(d["proofs"]):
        e = _fields(entry, {"key", "value", "proof"}, f"proofs[{i}]")
        key = _hex(e["key"], f"proofs[{i}].key", limit=2048)
        value = None if e["value"] is None else _hex(e["value"], f"proofs[{i}].value")
        if last is not None and key <= last:
            raise _Reject(R.MALFORMED, "proof keys must be strictly ascending")
        last = key
        try:
            proof = StateProof.from_json(e["proof"])
        except StateProofError as exc:
            raise _Reject(R.BAD_PROOF, f"proofs[{i}]: {exc}") from None
        if not verify_proof(root, key, value, proof):
            raise _Reject(R.BAD_PROOF, f"proofs[{i}] does not verify against the state root")
        proven[key] = value

    # 4. Recompute everything listed from the proven records.
    def get(key: bytes, what: str) -> bytes | None:
        if key not in proven:
            raise _Reject(R.PROOF_SET_MISMATCH, f"no proof for {what}")
        return proven[key]

    meta: ChainMeta | None = _record(_META, get(META_KEY, "the chain meta"), "chain meta")
    if meta is None or meta.chain_id != chain_id or meta.height != height or meta.time != time:
        raise _Reject(R.VALUE_MISMATCH, "proven chain meta differs from chain id, height or time")
    acct: Account | None = _record(_ACCOUNT, get(account_key(account), "the account"), "account")
    if acct is None:
        raise _Reject(R.VALUE_MISMATCH, "the account does not exist at this height")
    positions: Positions | None = _record(_POSITIONS, get(positions_key(account), "the positions"), "positions")
    balances: dict[str, Balance] = {}
    for asset in () if positions is None else positions.assets:
        bal = _record(_BALANCE, get(balance_key(asset, account), f"the {asset} balance"), "balance")
        if bal is None:
            raise _Reject(R.VALUE_MISMATCH, f"no {asset} balance behind a listed position")
        balances[asset] = bal
    holds: dict[str, Hold] = {}
    holdings = d["holdings"]
    if type(holdings) is not list:
        raise _Reject(R.MALFORMED, "holdings must be a list")
    for item in holdings:
        listed = item.get("holds") if type(item) is dict else None
        if type(listed) is not list:
            raise _Reject(R.MALFORMED, "each holding needs a list of holds")
        for entry in listed:
            hold_id = entry.get("hold") if type(entry) is dict else None
            if type(hold_id) is not str or not hold_id.isascii() or not 0 < len(hold_id) <= 64 or hold_id in holds:
                raise _Reject(R.MALFORMED, "each hold needs a distinct hold id")
            h = _record(_HOLD, get(hold_key(hold_id), f"hold {hold_id}"), "hold")
            if h is None:
                raise _Reject(R.VALUE_MISMATCH, f"hold {hold_id} does not exist at this height")
            holds[hold_id] = h
    expected = {META_KEY, account_key(account), positions_key(account)}
    expected.update(balance_key(a, account) for a in balances)
    expected.update(hold_key(h) for h in holds)
    if set(proven) != expected:
        raise _Reject(R.PROOF_SET_MISMATCH, "the proofs are not exactly those of the listed values")
    _check_holds(account, positions, balances, holds)
    if not _same(d["account_status"], _account_status(acct)):
        raise _Reject(R.VALUE_MISMATCH, "account status differs from the proven account record")
    if not _same(holdings, _holdings(positions, balances, holds)):
        raise _Reject(R.VALUE_MISMATCH, "listed holdings differ from the proven balances and holds")


_EPOCH_CHAIN_CODES: Final = {
    EpochChainError.WRONG_EPOCH: StatementCode.EPOCH_PROOF_ORDER,
    EpochChainError.BAD_CERT: StatementCode.EPOCH_PROOF_BAD_CERTIFICATE,
    EpochChainError.NOT_EPOCH_ENDING: StatementCode.EPOCH_PROOF_NOT_EPOCH_ENDING,
    EpochChainError.BAD_NEXT_SET: StatementCode.EPOCH_PROOF_BAD_NEXT_SET,
    EpochChainError.TOO_LONG: StatementCode.EPOCH_CHAIN_TOO_LONG,
}


def _follow_epochs(changes: Any, anchor: TrustAnchor, verifier: SignatureVerifier | None) -> ValidatorSet:
    """The validator set reached from the genesis set by the listed epoch-change proofs (hex, oldest first)."""
    R = StatementCode
    if type(changes) is not list:
        raise _Reject(R.MALFORMED, "validator_set.epoch_changes must be a list")
    if len(changes) > MAX_STATEMENT_EPOCH_CHANGES:
        raise _Reject(R.EPOCH_CHAIN_TOO_LONG, f"more than {MAX_STATEMENT_EPOCH_CHANGES} epoch changes")
    proofs = []
    first = anchor.validator_set.epoch
    for i, item in enumerate(changes):
        raw = _hex(item, f"validator_set.epoch_changes[{i}]", limit=MAX_EPOCH_PROOF_HEX)
        try:
            proof = EpochChangeProof.decode(raw)
        except CodecError as exc:
            raise _Reject(R.EPOCH_PROOF_MALFORMED, f"epoch change {i} does not decode: {exc.code}") from None
        if proof.encode() != raw:
            raise _Reject(R.EPOCH_PROOF_MALFORMED, f"epoch change {i} is not canonical")
        if proof.epoch != first + i:
            raise _Reject(R.EPOCH_PROOF_ORDER, f"epoch change {i} ends epoch {proof.epoch}, expected {first + i}")
        proofs.append(proof)
    try:
        reached = verify_epoch_chain(anchor.validator_set, proofs, chain_id=anchor.consensus_chain_id,
                                     verifier=verifier)
    except EpochChainError as exc:
        raise _Reject(_EPOCH_CHAIN_CODES.get(exc.code, R.EPOCH_PROOF_BAD_CERTIFICATE), exc.message) from None
    assert reached.epoch == first + len(proofs)
    return reached
