"""The state transition: apply_block -> apply_transaction -> one processor per operation.

    apply_block(state, block, transactions, tree=..., protocol=...) -> BlockOutcome

`protocol` (ledger.protocol.Protocol) names what the block is executed under: the operation set (which kinds decode
and which processor runs each), the rule engine and the BLS proof-of-possession check of governance.

1. Check the block against the last applied one (chain id, height + 1, time not decreasing).
2. Prune replay entries whose expiry height has passed (the bucket of height - 1), and release the holds whose
   expiry the block time has reached (`start_block`: the block's own events, tx id BLOCK_EVENTS_TX_ID).
3. For each transaction, in order: decode (with the protocol's operation set), check chain, expiry, replay, signatures and thresholds (failing any of
   these rejects it: receipt code 1..199, nothing recorded). Otherwise run its operations on a fresh overlay: on
   success merge the overlay, on refusal drop it (receipt code >= 200); either way record the id until its expiry
   height, so one transaction id has at most one receipt. A rejection that no later block can undo (FINAL_REJECTIONS:
   wrong chain, expired, closed signer) is reported in `rejected` so its receipt can be stored; its id is not
   recorded (it can never execute anyway).
4. Record the new replay ids and the chain meta; assert the supply invariant for every asset touched.
   If the block's governance actions changed the validator set or the chain params, the EpochRecord now holds the
   next epoch (start_height = height + 1): `next_epoch` reports it (at most one epoch change per block).
5. Encode the changed records and update the sparse Merkle tree once: the new state root.

Nothing here reads a clock, a random source or a file: height and time come from the block.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from ledger import codes
from ledger.codec import DecodeError, constructor, trusted_encoder
from ledger.context import BlockContext, TxContext
from ledger.errors import Refused
from ledger.events import Event, Receipt, encode_receipt
from ledger.invariants import assert_block_supply
from ledger.ops.holds import release_expired
from ledger.protocol import Protocol
from ledger.records import REPLAY_CHUNK, Account, ChainMeta, EpochRecord, ReplayBucket, ReplayIndex, TxSeen
from ledger.schema import MAX_BLOCK_TXS, MAX_TEXT_BYTES, MAX_TX_BYTES, MAX_TX_LIFETIME
from ledger.smt import SparseMerkleTree
from ledger.state import Overlay, StateReader
from ledger.state_keys import (
    EPOCH_KEY,
    META_KEY,
    account_key,
    replay_bucket_key,
    replay_index_key,
    tree_changes,
    tx_seen_key,
)
from ledger.transaction import SignedTransaction, TxBody, decode_transaction, verify_signature

__all__ = [
    "BLOCK_EVENTS_TX_ID",
    "FINAL_REJECTIONS",
    "BlockOutcome",
    "TxOutcome",
    "apply_block",
    "apply_certified_block",
    "apply_transaction",
    "authorize",
    "dry_run",
    "first_bad_signature",
    "start_block",
]

_make_receipt = constructor(Receipt)
_make_tx_seen = constructor(TxSeen)

# The transaction id of the events a block emits itself, before its transactions (holds released on expiry).
BLOCK_EVENTS_TX_ID = bytes(32)

# Rejections decided by the transaction's body, the height and state that never comes back — never by its signature
# bytes, which anyone can alter without changing the id: no later block can execute such a transaction (heights only
# grow, the chain id is part of the id, a migrated account is never reopened), so its receipt is final and stored.
FINAL_REJECTIONS: frozenset[int] = frozenset({codes.WRONG_CHAIN, codes.TX_EXPIRED, codes.SIGNER_CLOSED})


@dataclass(frozen=True, slots=True)
class TxOutcome:
    """`executed` is True when the transaction passed decoding, chain, expiry, replay and signature checks: its
    id is then consumed (kept until its expiry height) whether its operations succeeded or were refused, so a
    transaction id has at most one receipt in the chain. A rejected transaction (receipt code 1..199) was not
    executed and may still be included later (e.g. a copy with a corrupted signature cannot censor the original)."""

    receipt: Receipt
    tx: SignedTransaction | None  # None when the bytes did not decode
    accounts: tuple[str, ...]  # accounts whose history this transaction enters (sorted)
    executed: bool
    # (asset, account, Δavailable, Δheld, Δfrozen) of every balance write of a transaction that succeeded
    balance_changes: tuple[tuple[str, str, int, int, int], ...] = ()


_make_outcome = constructor(TxOutcome)


@dataclass(frozen=True, slots=True)
class BlockOutcome:
    """Everything a block produced; `changes`, `smt_nodes`, receipts and history are what the store commits.
    `overlay` is the block's state on top of its parent, usable as the parent of a speculative next block."""

    height: int
    state_root: bytes
    receipts: tuple[Receipt, ...]  # one per transaction of the block, in block order (rejected ones included)
    events: tuple[Event, ...]  # the block's own events (block_events), then those of its transactions in order
    executed: tuple[tuple[bytes, bytes, bytes], ...]  # (tx_id, tx bytes, receipt bytes) of executed transactions
    history: tuple[tuple[str, bytes], ...]  # (account_id, tx_id) of executed transactions
    # (tx_id, tx bytes, receipt bytes) of the first transaction of each id rejected for good (FINAL_REJECTIONS), in
    # block order: a store keeps its receipt unless it already holds one for that id (docs/protocol.md §4.2).
    rejected: tuple[tuple[bytes, bytes, bytes], ...]
    changes: Mapping[bytes, bytes | None]
    smt_nodes: Mapping[bytes, bytes]
    overlay: Overlay
    # The next epoch's record when this block scheduled an epoch change (its start_height == height + 1): this
    # block ends its epoch. None otherwise.
    next_epoch: EpochRecord | None = None
    # Events of the block itself, before its transactions (tx_id BLOCK_EVENTS_TX_ID): holds released on expiry.
    block_events: tuple[Event, ...] = ()
    # Every balance movement of the block, in execution order, as (tx_id, asset, account, Δavailable, Δheld,
    # Δfrozen): the block's own step first (tx_id BLOCK_EVENTS_TX_ID), then each transaction that succeeded. Their
    # sum per (asset, account) is the block's balance change; nothing here is hashed (docs/indexer.md).
    balance_changes: tuple[tuple[bytes, str, str, int, int, int], ...] = ()
    # False when apply_certified_block kept the execution that skipped every Ed25519 check (the certified root
    # proves it equal to the checked one); True for apply_block, which checks every signature not vouched for.
    signatures_checked: bool = True


def _clip(text: str, limit: int = MAX_TEXT_BYTES) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


def _signer_account(state: Overlay, signer: str) -> Account:
    acct = state.get(account_key(signer))
    if acct is None:
        raise Refused(codes.SIGNER_NOT_FOUND, f"signer {signer} does not exist")
    if acct.closed_to is not None:
        raise Refused(codes.SIGNER_CLOSED, f"signer {signer} was migrated to {acct.closed_to}")
    return acct


def first_bad_signature(tx: SignedTransaction) -> int:
    """The index of the first of `tx`'s signatures that does not verify, or -1 when all do (pure: a function of the
    bytes only)."""
    message = tx.signing_message
    for i, sig in enumerate(tx.signatures):
        if not verify_signature(sig.public_key, message, sig.signature):
            return i
    return -1


def _verify_all(tx: SignedTransaction, bad: int | None) -> None:
    """Refuse `tx` unless all its signatures verify. `bad`: first_bad_signature(tx) when the caller computed it
    already (apply_block verifies a run of transactions in one tight loop), None to verify now."""
    if bad is None:
        bad = first_bad_signature(tx)
    if bad >= 0:
        raise Refused(codes.BAD_SIGNATURE, f"signature by {tx.signatures[bad].account} does not verify")


def authorize(
    state: Overlay, tx: SignedTransaction, verify: bool = True, bad_signature: int | None = None
) -> tuple[str, ...]:
    """The signers of `tx` once every signature names a declared signer, belongs to its open account's key set,
    verifies, and each signer's M-of-N threshold is met. Refuses otherwise. `bad_signature`: first_bad_signature(tx)
    when already computed (only read when `verify`)."""
    body = tx.body
    declared = body.signers
    if len(declared) == 1:  # the common case, without the bookkeeping of several signers
        signer = declared[0]
        for sig in tx.signatures:
            if sig.account != signer:
                raise Refused(codes.SIGNATURE_NOT_FOR_SIGNER, f"signature by {sig.account}, not a declared signer")
        acct = _signer_account(state, signer)
        keys = acct.keys
        for sig in tx.signatures:
            if sig.public_key not in keys:
                raise Refused(codes.UNKNOWN_SIGNING_KEY, f"key {sig.public_key.hex()[:16]}… is not a key of {signer}")
        if len(tx.signatures) < acct.threshold:
            n = len(tx.signatures)
            raise Refused(codes.THRESHOLD_NOT_MET, f"{signer} needs {acct.threshold} signatures, has {n}")
        if verify:
            _verify_all(tx, bad_signature)
        return declared
    per_account: dict[str, int] = {}
    for sig in tx.signatures:
        if sig.account not in declared:
            raise Refused(codes.SIGNATURE_NOT_FOR_SIGNER, f"signature by {sig.account}, not a declared signer")
        per_account[sig.account] = per_account.get(sig.account, 0) + 1
    accounts = {signer: _signer_account(state, signer) for signer in declared}
    for sig in tx.signatures:
        if sig.public_key not in accounts[sig.account].keys:
            raise Refused(codes.UNKNOWN_SIGNING_KEY, f"key {sig.public_key.hex()[:16]}… is not a key of {sig.account}")
    for signer, acct in accounts.items():
        n = per_account.get(signer, 0)
        if n < acct.threshold:
            raise Refused(codes.THRESHOLD_NOT_MET, f"{signer} needs {acct.threshold} signatures, has {n}")
    if verify:
        _verify_all(tx, bad_signature)
    return declared


def _stateless_refusal(body: TxBody, block: BlockContext) -> Refused | None:
    """The envelope checks that read no state: the chain, and the expiry window of `block`."""
    if body.chain_id != block.chain_id:
        return Refused(codes.WRONG_CHAIN, f"transaction for chain {body.chain_id}, this is {block.chain_id}")
    if block.height > body.expiry_height:
        return Refused(codes.TX_EXPIRED, f"expired at height {body.expiry_height}, block is {block.height}")
    if body.expiry_height > block.height + MAX_TX_LIFETIME:
        return Refused(
            codes.TX_EXPIRY_TOO_FAR, f"expiry {body.expiry_height} is beyond {block.height + MAX_TX_LIFETIME}"
        )
    return None


def _check_envelope(state: Overlay, block: BlockContext, tx: SignedTransaction) -> None:
    refusal = _stateless_refusal(tx.body, block)
    if refusal is not None:
        raise refusal
    if state.get(tx_seen_key(tx.tx_id)) is not None:
        raise Refused(codes.TX_REPLAYED, f"transaction {tx.tx_id.hex()} was already committed")


def _decoded(item: SignedTransaction | bytes, block: BlockContext, index: int, protocol: Protocol) -> SignedTransaction | TxOutcome:
    """`item` decoded under `protocol`'s operation set, or the rejected outcome of bytes that are too large or do
    not decode."""
    if isinstance(item, SignedTransaction):
        return item
    raw = item if type(item) is bytes else bytes(item) if isinstance(item, bytearray | memoryview) else item
    assert type(raw) is bytes, "transactions are SignedTransaction objects or bytes"
    if len(raw) > MAX_TX_BYTES:
        code, detail = codes.TX_TOO_LARGE, f"{len(raw)} bytes > {MAX_TX_BYTES}"
        receipt = Receipt(hashlib.sha256(raw).digest(), block.height, index, code, None, detail, ())
        return TxOutcome(receipt, None, (), False)
    try:
        return decode_transaction(raw, operations=protocol.operations)
    except DecodeError as exc:
        receipt = Receipt(hashlib.sha256(raw).digest(), block.height, index, exc.code, None, _clip(str(exc)), ())
        return TxOutcome(receipt, None, (), False)


def apply_transaction(
    state: Overlay,
    block: BlockContext,
    tx: SignedTransaction | bytes,
    index: int = 0,
    *,
    protocol: Protocol,
    verify_signatures: bool = True,
    bad_signature: int | None = None,
) -> TxOutcome:
    """Execute one transaction on `state` (the block overlay) under `protocol`: all its writes, or none of them.
    `bad_signature`: first_bad_signature(tx) when the caller has computed it (read only with verify_signatures)."""
    dispatch = protocol.operations.dispatch
    if not isinstance(tx, SignedTransaction):
        decoded = _decoded(tx, block, index, protocol)
        if not isinstance(decoded, SignedTransaction):
            return decoded
        tx = decoded
    body = tx.body
    try:
        for op in body.operations:
            if type(op) not in dispatch:
                raise Refused(codes.UNKNOWN_VARIANT, f"no processor for operation {type(op).__name__}")
        _check_envelope(state, block, tx)
        signers = authorize(state, tx, verify_signatures, bad_signature)
    except Refused as refusal:
        assert refusal.code < 200, "envelope refusals use rejection codes"
        receipt = Receipt(tx.tx_id, block.height, index, refusal.code, None, _clip(refusal.message), ())
        return TxOutcome(receipt, tx, (), False)
    overlay = Overlay(state)
    ctx = TxContext(overlay, block, tx.tx_id, signers, protocol)
    try:
        for i, op in enumerate(body.operations):
            ctx.op_index = i
            dispatch[type(op)](ctx, op)
        ctx.check_transaction_rules()
    except Refused as refusal:
        assert refusal.code >= 200, "operation refusals never use rejection codes"
        state.put(tx_seen_key(tx.tx_id), TxSeen(body.expiry_height))
        receipt = Receipt(tx.tx_id, block.height, index, refusal.code, ctx.op_index, _clip(refusal.message), ())
        return TxOutcome(receipt, tx, body.signers, True)
    overlay.commit()
    tx_id = tx.tx_id
    state.put(tx_seen_key(tx_id), _make_tx_seen(body.expiry_height))
    events = tuple(ctx.events)
    touched = set(body.signers)
    for ev in events:
        touched.update(ev.accounts())
    receipt = _make_receipt(tx_id, block.height, index, codes.OK, None, "", events)
    return _make_outcome(receipt, tx, tuple(sorted(touched)), True, tuple(ctx.balance_changes))


def start_block(state: Overlay, block: BlockContext, protocol: Protocol) -> tuple[Event, ...]:
    """What a block does before its first transaction, with no signer: release the holds whose expiry its time has
    reached (ledger.ops.holds.release_expired). Returns the events, tx id BLOCK_EVENTS_TX_ID."""
    return tuple(_start_block(state, block, protocol).events)


def _start_block(state: Overlay, block: BlockContext, protocol: Protocol) -> TxContext:
    ctx = TxContext(state, block, BLOCK_EVENTS_TX_ID, (), protocol)
    release_expired(ctx)
    return ctx


def dry_run(
    state: StateReader | Overlay,
    block: BlockContext,
    tx: SignedTransaction | bytes,
    *,
    protocol: Protocol,
    verify_signatures: bool = True,
) -> Receipt:
    """The receipt `tx` would get if executed in `block` on top of `state`, without changing anything.
    With verify_signatures=False the declared signers are taken as signed (a "could this happen if signed" check);
    key membership and thresholds are still checked against the signatures present. The block's own step comes
    first (holds due at the block's time are released), as in apply_block."""
    overlay = Overlay(state)
    start_block(overlay, block, protocol)
    return apply_transaction(overlay, block, tx, 0, protocol=protocol, verify_signatures=verify_signatures).receipt


def _prune_replay(state: Overlay, height: int) -> None:
    """Forget the ids of transactions whose expiry height is `height` - 1: they can no longer be included."""
    if height == 0:
        return
    ikey = replay_index_key(height - 1)
    index: ReplayIndex | None = state.get(ikey)
    if index is None:
        return
    chunks = (index.count + REPLAY_CHUNK - 1) // REPLAY_CHUNK
    for chunk in range(chunks):
        bkey = replay_bucket_key(height - 1, chunk)
        bucket: ReplayBucket | None = state.get(bkey)
        assert bucket is not None, "replay bucket missing"
        for tx_id in bucket.tx_ids:
            state.put(tx_seen_key(tx_id), None)
        state.put(bkey, None)
    state.put(ikey, None)


def _record_replay(state: Overlay, new_ids: dict[int, list[bytes]]) -> None:
    for expiry in sorted(new_ids):
        ids = new_ids[expiry]
        ikey = replay_index_key(expiry)
        index: ReplayIndex | None = state.get(ikey)
        count = 0 if index is None else index.count
        pos = 0
        while pos < len(ids):
            chunk = count // REPLAY_CHUNK
            bkey = replay_bucket_key(expiry, chunk)
            bucket: ReplayBucket | None = state.get(bkey)
            existing = () if bucket is None else bucket.tx_ids
            room = REPLAY_CHUNK - len(existing)
            take = ids[pos : pos + room]
            state.put(bkey, ReplayBucket(existing + tuple(take)))
            pos += len(take)
            count += len(take)
        state.put(ikey, ReplayIndex(count))


# apply_block decodes and verifies the transactions of a block in runs of this many before executing them: each phase
# then runs in a tight loop (libsodium's tables and the decoder stay in the CPU caches, ~10 µs less per transfer than
# interleaving them), and only one run's decoded transactions are held beyond what execution keeps.
PREPARE_RUN = 256


def _prepared(
    transactions: Sequence[SignedTransaction | bytes],
    block: BlockContext,
    protocol: Protocol,
    signatures_verified: Callable[[SignedTransaction | bytes], bool] | None,
) -> Iterator[tuple[int, SignedTransaction | bytes, SignedTransaction | TxOutcome, bool, int | None]]:
    """(index, item, decoded transaction or rejected outcome, whether its signatures are to be checked, the first
    bad signature's index when computed here) for each transaction, in block order. Signatures are verified ahead
    only for transactions that the state-free envelope checks (chain, expiry window) do not already refuse; for the
    others `bad` is None and execution refuses them before any signature check. Verifying ahead never changes an
    outcome: a signature's validity is a function of the bytes alone, and execution reads it only where it would
    have verified it itself."""
    for lo in range(0, len(transactions), PREPARE_RUN):
        run = transactions[lo : lo + PREPARE_RUN]
        decoded = [_decoded(item, block, lo + i, protocol) for i, item in enumerate(run)]
        prepared = []
        for i, (item, tx) in enumerate(zip(run, decoded, strict=True)):
            verify = signatures_verified is None or not signatures_verified(item)
            bad = None
            if verify and isinstance(tx, SignedTransaction) and _stateless_refusal(tx.body, block) is None:
                bad = first_bad_signature(tx)
            prepared.append((lo + i, item, tx, verify, bad))
        yield from prepared


def apply_block(
    state: StateReader | Overlay,
    block: BlockContext,
    transactions: Sequence[SignedTransaction | bytes],
    *,
    tree: SparseMerkleTree,
    protocol: Protocol,
    signatures_verified: Callable[[SignedTransaction | bytes], bool] | None = None,
) -> BlockOutcome:
    """Apply a block's transactions on top of `state` (whose authenticated form is `tree`) under `protocol`. Pure:
    returns the outcome; nothing is written to `state` or to the tree's node store.

    `signatures_verified(item)` may answer True for a transaction whose Ed25519 signatures the caller has already
    checked (the node's mempool verifies them once, in parallel, off the event loop); its signatures are then not
    verified again. Signature validity is a pure function of the bytes, so this never changes the outcome — only
    a caller that answers True for bytes it did not verify could, and the node never does."""
    assert len(transactions) <= MAX_BLOCK_TXS, "block has too many transactions"
    overlay = Overlay(state)
    meta: ChainMeta | None = overlay.get(META_KEY)
    assert meta is not None, "state has no chain meta: apply the genesis first"
    assert meta.chain_id == block.chain_id, f"block for chain {block.chain_id}, state is {meta.chain_id}"
    assert block.height == meta.height + 1, f"block height {block.height} does not follow {meta.height}"
    assert block.time >= meta.time, "block time went backwards"
    _prune_replay(overlay, block.height)
    start = _start_block(overlay, block, protocol)
    block_events = tuple(start.events)
    balance_changes = [(BLOCK_EVENTS_TX_ID, *change) for change in start.balance_changes]
    receipts: list[Receipt] = []
    events: list[Event] = list(block_events)
    executed: list[tuple[bytes, bytes, bytes]] = []
    history: list[tuple[str, bytes]] = []
    rejected: dict[bytes, tuple[bytes, bytes, bytes]] = {}
    new_ids: dict[int, list[bytes]] = {}
    receipt_bytes = trusted_encoder(protocol.operations.receipt)  # encode_receipt(·, operations=...), bound once
    for index, item, decoded, verify, bad in _prepared(transactions, block, protocol, signatures_verified):
        if isinstance(decoded, SignedTransaction):
            outcome = apply_transaction(overlay, block, decoded, index, protocol=protocol, verify_signatures=verify,
                                        bad_signature=bad)
        else:
            outcome = decoded
        receipt = outcome.receipt
        receipts.append(receipt)
        if not outcome.executed:
            if outcome.tx is not None and receipt.code in FINAL_REJECTIONS and receipt.tx_id not in rejected:
                tx_bytes = item if isinstance(item, bytes) else item.to_bytes()
                encoded = encode_receipt(receipt, operations=protocol.operations)
                rejected[receipt.tx_id] = (receipt.tx_id, tx_bytes, encoded)
            continue
        assert outcome.tx is not None
        events.extend(receipt.events)
        tx_id = receipt.tx_id
        for change in outcome.balance_changes:
            balance_changes.append((tx_id, *change))
        tx_bytes = item if isinstance(item, bytes) else item.to_bytes()
        executed.append((tx_id, tx_bytes, receipt_bytes(receipt)))
        for account in outcome.accounts:
            history.append((account, tx_id))
        new_ids.setdefault(outcome.tx.body.expiry_height, []).append(tx_id)
    _record_replay(overlay, new_ids)
    overlay.put(META_KEY, ChainMeta(block.chain_id, block.height, block.time))
    assert_block_supply(overlay)
    changes = overlay.changes()
    epoch: EpochRecord | None = overlay.get(EPOCH_KEY)
    next_epoch = epoch if epoch is not None and epoch.start_height == block.height + 1 else None
    assert next_epoch is None or EPOCH_KEY in changes, "only this block writes an epoch starting at height + 1"
    update = tree.update(tree_changes(changes))  # the derived replay index `T` is not in the tree
    return BlockOutcome(
        height=block.height,
        state_root=update.root,
        receipts=tuple(receipts),
        events=tuple(events),
        executed=tuple(executed),
        history=tuple(history),
        rejected=tuple(rejected.values()),
        changes=changes,
        smt_nodes=update.nodes,
        overlay=overlay,
        next_epoch=next_epoch,
        block_events=block_events,
        balance_changes=tuple(balance_changes),
    )


def _all_verified(_item: SignedTransaction | bytes) -> bool:
    return True


def apply_certified_block(
    state: StateReader | Overlay,
    block: BlockContext,
    transactions: Sequence[SignedTransaction | bytes],
    *,
    tree: SparseMerkleTree,
    protocol: Protocol,
    certified_root: bytes,
    signatures_verified: Callable[[SignedTransaction | bytes], bool] | None = None,
) -> BlockOutcome:
    """`apply_block` for a block whose resulting state root a commit certificate has already proved
    (`certified_root`): first with no Ed25519 check at all; that outcome is kept when it gives the certified root
    and no transaction id occurs twice in the block. Otherwise the block is applied again exactly as `apply_block`
    does (with `signatures_verified`); `signatures_checked` tells which outcome was kept. The outcome is
    in every case the one `apply_block` gives, receipts and events included -- provided `certified_root` is the
    root the checked execution gives, i.e. the certificate verified; with any other root the result is the checked
    outcome, which does not match it (the caller's root comparison then fails as it would have).

    Why skipping cannot change anything once the root matches: consider the first transaction whose processing
    differs between the two executions. Up to it the states are equal, so it passed the same envelope checks,
    replay check included, and the only step that can differ is the signature check, which the checked execution
    failed: a rejection (code 1..199) that writes nothing. The unchecked execution went on and, whatever its
    operations did, recorded the transaction's id in the replay bucket of its expiry height (and under T||id, which
    the tree does not hold). Nothing in a block removes an id from a bucket after the block's first step
    (_prune_replay, which only drops the heights already passed), and in the checked execution only a later
    transaction with the same id could add it -- excluded here. So the two final states differ in that bucket, which
    the state tree holds, and their roots differ. Hence equal roots mean no transaction was processed differently. The same id twice must be excluded:
    a copy with a corrupt signature followed by the valid copy gives the same state either way but different
    receipts and stored bytes (tests/ledger/test_certified_apply.py shows both).

    The unchecked execution runs transactions whose signatures may not verify (a faulty proposer's block), which the
    checked one would have refused before their operations: if it raises, the block is simply executed with the
    checks (whose outcome, or exception, is the one `apply_block` gives)."""
    try:
        outcome = apply_block(state, block, transactions, tree=tree, protocol=protocol,
                              signatures_verified=_all_verified)
    except Exception:  # noqa: BLE001 - whatever it was, the checked execution below decides
        outcome = None
    if outcome is not None and outcome.state_root == certified_root:
        receipts = outcome.receipts
        if len({r.tx_id for r in receipts}) == len(receipts):
            return replace(outcome, signatures_checked=False)
    return apply_block(state, block, transactions, tree=tree, protocol=protocol,
                       signatures_verified=signatures_verified)
