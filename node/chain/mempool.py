"""The mempool: admission of signed transactions, bounded storage with per-account fairness, proposals, gossip.

    pool = Mempool(chain_id, state, height, verifier, limits, on_admitted=broadcast)
    result = await pool.submit(tx_bytes, origin=None)          # Admission(code, message, tx_id)
    results = await pool.submit_many([tx_bytes, ...], origin=peer_id)
    pool.evict_expired(height_of_the_proposal)                  # before reaping: never propose an expired one
    txs = pool.reap(max_txs, max_bytes, exclude=ids_in_uncommitted_ancestors)
    ages = pool.remove_committed(tx_ids_of_the_committed_block)  # every id of the block, rejected ones too
    pool.prune_expired(committed_height)

Admission, in order (the first failure answers; codes are from ledger.codes, node codes 3300-3399 defined here):

1. size (TX_TOO_LARGE) and strict canonical decoding (the DecodeError's code, 1-99);
2. chain id (WRONG_CHAIN); expiry against the next block, committed height + 1 (TX_EXPIRED, TX_EXPIRY_TOO_FAR);
3. replay: already committed (TX_REPLAYED, from the committed state), already pooled or being verified
   (TX_ALREADY_PENDING);
4. room: the pool's count, byte and memory limits (MEMPOOL_FULL; the memory is estimated from the size,
   pool_memory) and the signer lane's cap (MEMPOOL_ACCOUNT_FULL). Both mean
   "busy, retry": nothing was stored, nothing was dropped, and the pool never grows past its limits. Room is
   reserved here, before the expensive checks, and released if the transaction fails them;
5. the signers: every signature names a declared signer, every signer is an open account, every key is in its key
   set, every threshold is met (ledger.transition.authorize on the committed state: SIGNER_NOT_FOUND,
   SIGNER_CLOSED, UNKNOWN_SIGNING_KEY, THRESHOLD_NOT_MET, SIGNATURE_NOT_FOR_SIGNER);
6. the signatures, in the process pool of node.chain.sigverify (BAD_SIGNATURE); then steps 2-3 again, because blocks may
   have committed while the signatures were checked.

Fairness: each transaction belongs to the lane of its first declared signer. A lane holds at most
`max_txs_per_account` transactions (pooled or being verified). `reap` takes one transaction per lane per round,
lanes in a rotating order, each lane in submission order; a lane whose next transaction does not fit the byte
budget is closed for that proposal, so a block never reorders one account's transactions.

Gossip: `on_admitted(tx_id, tx_bytes, origin)` is called once for each newly admitted transaction (origin = the peer
it came from, None for a client), never for a duplicate. Bytes that failed a check that can never succeed later
(malformed, wrong chain, expired, replayed, bad signature) are remembered by hash in a bounded cache and answered
from it, so a transaction echoed by many peers costs one decode and at most one verification. A full pool (count or
bytes) refuses gossiped bytes right after those hash lookups, before decoding them: under a sustained maximum load
every pool is full, and nobody reads the answers to gossip (a client's submission gets the order above).

Every structure is bounded (MempoolLimits; docs/mempool.md lists the limits and why).
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

from ledger import codes
from ledger.codec import DecodeError
from ledger.codes import define
from ledger.errors import Refused
from ledger.operation_set import OperationSet
from ledger.schema import MAX_TX_BYTES, MAX_TX_LIFETIME
from ledger.state import Overlay, StateReader
from ledger.state_keys import tx_seen_key
from ledger.transaction import SignedTransaction, decode_transaction
from ledger.transition import authorize
from node.chain.protocol import OPERATIONS
from node.chain.sigverify import Ed25519Verifier, VerifyItem

__all__ = [
    "MEMPOOL_ACCOUNT_FULL",
    "MEMPOOL_FULL",
    "NODE_HALTED",
    "RETRY_CODES",
    "TX_ALREADY_PENDING",
    "Admission",
    "Mempool",
    "MempoolLimits",
    "MempoolStats",
]

log = logging.getLogger("node.chain.mempool")

MEMPOOL_FULL = define(3300, "MEMPOOL_FULL", "the mempool is full: busy, retry later", layer="node")
MEMPOOL_ACCOUNT_FULL = define(
    3301, "MEMPOOL_ACCOUNT_FULL", "the account has too many pending transactions: busy, retry later", layer="node"
)
TX_ALREADY_PENDING = define(3302, "TX_ALREADY_PENDING", "the transaction is already in the mempool", layer="node")
# Answered by the node for every submission once it has stopped on a fatal error (a failed disk: GET /health says
# which); the mempool itself never answers it.
NODE_HALTED = define(
    3303, "NODE_HALTED", "this node has stopped on a fatal error and admits no transactions: submit to another node",
    layer="node"
)
# Answered by a node that signs nothing (a full node, a removed validator) when none of the validators it forwards to
# is connected: the transaction was not kept (docs/operations.md, "Node roles").
NO_VALIDATOR_REACHABLE = define(
    3310, "NO_VALIDATOR_REACHABLE", "this node does not validate and reaches no validator to forward the transaction "
    "to: retry later or submit to another node", layer="node"
)

RETRY_CODES = frozenset({MEMPOOL_FULL, MEMPOOL_ACCOUNT_FULL})

# Rejections of these bytes can never turn into admissions (heights only grow, signatures do not change).
_FINAL_CODES = frozenset(
    {
        codes.TX_TOO_LARGE,
        codes.WRONG_CHAIN,
        codes.TX_EXPIRED,
        codes.TX_REPLAYED,
        codes.BAD_SIGNATURE,
        codes.SIGNATURE_NOT_FOR_SIGNER,
    }
)


# The memory a pooled transaction holds, estimated from its size: its entry and index slots, plus its bytes and the
# decoded objects, which take up to ~20x the encoded size (measured with tracemalloc: a 184-byte transfer 1.8 KB, 9.8x;
# 32 transfers of 64 legs 10.8x; legs to 3-character accounts 19.5x). An over-estimate, so `max_memory_bytes` bounds
# the pool's real memory whatever the transactions look like, which a bound on encoded bytes alone does not.
ENTRY_BYTES = 512
MEMORY_PER_TX_BYTE = 24


def pool_memory(txs: int, tx_bytes: int) -> int:
    """The estimated memory of `txs` pooled transactions of `tx_bytes` encoded bytes in all."""
    return ENTRY_BYTES * txs + MEMORY_PER_TX_BYTE * tx_bytes


@dataclass(frozen=True, slots=True)
class MempoolLimits:
    """Every bound of the mempool (docs/limits.md)."""

    max_txs: int = 20_000  # pooled + being verified
    max_bytes: int = 64 * 1024 * 1024  # encoded bytes, pooled + being verified
    max_memory_bytes: int = 128 * 1024 * 1024  # estimated memory (pool_memory), pooled + being verified
    max_txs_per_account: int = 2_000  # one lane (first declared signer)
    max_batch: int = 1_024  # transactions per submit_many call
    rejected_cache: int = 65_536  # hashes of bytes with a final rejection
    verified_cache: int = 65_536  # hashes of bytes whose signatures verified (is_verified)

    def __post_init__(self) -> None:
        assert self.max_txs >= 1 and self.max_bytes >= MAX_TX_BYTES, "the pool must hold at least one transaction"
        assert self.max_memory_bytes >= pool_memory(1, MAX_TX_BYTES), "the pool must hold at least one transaction"
        assert 1 <= self.max_txs_per_account <= self.max_txs
        assert 1 <= self.max_batch
        assert self.rejected_cache >= 1 and self.verified_cache >= 1


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to one submitted transaction: code 0 = admitted; `retry` = busy, submit again later."""

    code: int
    message: str
    tx_id: bytes | None = None

    @property
    def ok(self) -> bool:
        return self.code == codes.OK

    @property
    def retry(self) -> bool:
        return self.code in RETRY_CODES


@dataclass(frozen=True, slots=True)
class MempoolStats:
    txs: int  # pooled
    bytes: int  # pooled
    verifying: int  # admissions waiting for their signature checks
    lanes: int  # accounts with pooled or verifying transactions
    height: int  # the committed height the pool checks against


@dataclass(slots=True)
class _Entry:
    tx_id: bytes
    tx: SignedTransaction
    raw: bytes
    raw_hash: bytes
    lane: str
    expiry_height: int
    admitted_at: float


@dataclass(slots=True)
class _Candidate:
    """A transaction between its cheap checks and its signature check (room reserved)."""

    raw: bytes
    raw_hash: bytes
    tx: SignedTransaction
    lane: str
    first: int  # index of its first item in the verification batch


class Mempool:
    """Admission and storage of pending transactions for one node. Use from one event loop."""

    def __init__(
        self,
        chain_id: str,
        state: StateReader,
        height: int,
        verifier: Ed25519Verifier,
        limits: MempoolLimits | None = None,
        on_admitted: Callable[[bytes, bytes, str | None], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        operations: OperationSet = OPERATIONS,
    ) -> None:
        """`operations`: the operation set transactions are decoded with (the node's, node/chain/protocol.py)."""
        self.chain_id = chain_id
        self._operations = operations
        self.limits = limits or MempoolLimits()
        self._state = state
        self._height = height
        self._verifier = verifier
        self._on_admitted = on_admitted
        self._clock = clock
        self._entries: dict[bytes, _Entry] = {}  # tx_id -> entry
        self._by_raw: dict[bytes, bytes] = {}  # raw hash -> tx_id (pooled)
        self._lanes: dict[str, dict[bytes, _Entry]] = {}  # lane -> entries in submission order
        self._bytes = 0
        # raw hash -> size, reserved while its signatures are checked. Keyed by the bytes, not the tx id: copies of
        # one transaction with different signature bytes are checked independently, so a copy with a corrupted
        # signature that arrives first cannot make the valid one be answered "already pending" and then be lost.
        self._verifying: dict[bytes, int] = {}
        self._verifying_bytes = 0
        self._lane_reserved: dict[str, int] = {}  # lane -> verifying count
        self._by_expiry: dict[int, set[bytes]] = {}  # expiry height -> pooled tx ids
        self._expiry_heap: list[int] = []
        self._rejected: OrderedDict[bytes, int] = OrderedDict()  # raw hash -> final code (LRU)
        self._verified: OrderedDict[bytes, None] = OrderedDict()  # raw hash (LRU)
        self._reap_round = 0

    # -- reading -------------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, tx_id: object) -> bool:
        return tx_id in self._entries

    def contains(self, tx_id: bytes) -> bool:
        return tx_id in self._entries

    @property
    def bytes_used(self) -> int:
        return self._bytes

    @property
    def memory_used(self) -> int:
        """The estimated memory of the pooled and verifying transactions (pool_memory): at most
        `limits.max_memory_bytes`."""
        return pool_memory(len(self._entries) + len(self._verifying), self._bytes + self._verifying_bytes)

    @property
    def height(self) -> int:
        return self._height

    def stats(self) -> MempoolStats:
        lanes = len(self._lanes.keys() | self._lane_reserved.keys())
        return MempoolStats(len(self._entries), self._bytes, len(self._verifying), lanes, self._height)

    def get(self, tx_id: bytes) -> bytes | None:
        """The pooled bytes of `tx_id`, or None."""
        entry = self._entries.get(tx_id)
        return None if entry is None else entry.raw

    def is_verified(self, raw: bytes) -> bool:
        """True if every signature of these exact bytes verified here (pooled now, or among the last
        `verified_cache` admitted): block execution may skip the cryptographic check of their
        signatures (key membership and thresholds are still checked against the block's state)."""
        h = hashlib.sha256(raw).digest()
        return h in self._by_raw or h in self._verified

    def lookup(self, raw: bytes) -> SignedTransaction | None:
        """The decoded transaction if these exact bytes are pooled (saves decoding them again to execute them); its
        signatures all verified here."""
        tx_id = self._by_raw.get(hashlib.sha256(raw).digest())
        return None if tx_id is None else self._entries[tx_id].tx

    # -- admission -----------------------------------------------------------------------------------------------

    async def submit(self, raw: bytes, origin: str | None = None) -> Admission:
        """Admit one transaction (from a client when origin is None, else from the peer `origin`)."""
        return (await self.submit_many((raw,), origin))[0]

    async def submit_many(self, raws: Sequence[bytes | SignedTransaction],
                          origin: str | None = None) -> list[Admission]:
        """Admit several transactions with one signature-verification round on the verifier's worker processes;
        one Admission each, in order. At most `limits.max_batch` per call (a longer batch is a programming error)."""
        out, candidates, items = self._begin(raws, origin is not None)
        try:
            verdicts = await self._verifier.verify_batch(items) if candidates else []
        except BaseException:
            self._abandon(candidates)
            raise
        return self._complete(out, candidates, verdicts, origin)

    def submit_many_now(self, raws: Sequence[bytes | SignedTransaction],
                        origin: str | None = None) -> list[Admission]:
        """`submit_many` with the signatures checked in the calling thread (same answers): for a caller without an
        event loop, such as the deterministic simulator."""
        out, candidates, items = self._begin(raws, origin is not None)
        try:
            verdicts = self._verifier.verify_sync(items) if candidates else []
        except BaseException:
            self._abandon(candidates)
            raise
        return self._complete(out, candidates, verdicts, origin)

    def _begin(self, raws: Sequence[bytes | SignedTransaction], from_peer: bool = False) -> tuple[
            list[Admission | None], list[tuple[int, _Candidate]], list[VerifyItem]]:
        assert len(raws) <= self.limits.max_batch, f"submit_many takes at most {self.limits.max_batch} transactions"
        out: list[Admission | None] = [None] * len(raws)
        candidates: list[tuple[int, _Candidate]] = []
        items: list[VerifyItem] = []
        try:
            for i, raw in enumerate(raws):
                result = self._precheck(raw, len(items), from_peer)
                if isinstance(result, Admission):
                    out[i] = result
                    continue
                candidates.append((i, result))
                message = result.tx.signing_message
                items.extend((sig.public_key, message, sig.signature) for sig in result.tx.signatures)
        except BaseException:
            self._abandon(candidates)
            raise
        return out, candidates, items

    def _abandon(self, candidates: list[tuple[int, _Candidate]]) -> None:
        """A failed state read in a later precheck, a failed verifier or a cancelled caller: the room reserved for
        the candidates is given back, or it would stay taken for good (a shrinking pool)."""
        for _, cand in candidates:
            self._release(cand)

    def _complete(self, out: list[Admission | None], candidates: list[tuple[int, _Candidate]], verdicts: list[bool],
                  origin: str | None) -> list[Admission]:
        for i, cand in candidates:
            out[i] = self._finish(cand, verdicts, origin)
        assert all(a is not None for a in out)
        return out  # type: ignore[return-value]

    def _precheck(self, item: bytes | SignedTransaction, first_item: int, from_peer: bool = False) -> Admission | _Candidate:
        """`item`: signed transaction bytes, or a transaction the caller already decoded (the API's routes), whose
        wire bytes it keeps: it is not decoded again. `from_peer`: gossip, refused as MEMPOOL_FULL before it is decoded
        when the pool has no room for its bytes (nobody reads the other answers of gossip, and under load a full pool
        would otherwise decode every gossiped transaction only to refuse it; a client still gets the first failing
        check's answer)."""
        decoded = item if isinstance(item, SignedTransaction) else None
        raw = item.to_bytes() if decoded is not None else item
        if type(raw) is not bytes:
            raw = bytes(raw)
        if len(raw) > MAX_TX_BYTES:
            return Admission(codes.TX_TOO_LARGE, f"{len(raw)} bytes > {MAX_TX_BYTES}")
        raw_hash = hashlib.sha256(raw).digest()
        known = self._rejected.get(raw_hash)
        if known is not None:
            self._rejected.move_to_end(raw_hash)
            return Admission(known, codes.message_for(known))
        pooled = self._by_raw.get(raw_hash)
        if pooled is not None:
            return Admission(TX_ALREADY_PENDING, codes.message_for(TX_ALREADY_PENDING), pooled)
        if from_peer and self._full_for_gossip(len(raw)):
            return Admission(MEMPOOL_FULL, codes.message_for(MEMPOOL_FULL))
        try:
            tx = decoded if decoded is not None else decode_transaction(raw, operations=self._operations)
        except DecodeError as exc:
            return self._reject(raw_hash, exc.code, str(exc))
        refusal = self._check_envelope(tx)
        if refusal is not None:
            return self._reject(raw_hash, refusal.code, refusal.message, tx.tx_id)
        if tx.tx_id in self._entries or raw_hash in self._verifying:
            return Admission(TX_ALREADY_PENDING, codes.message_for(TX_ALREADY_PENDING), tx.tx_id)
        lane = tx.body.signers[0]
        limits = self.limits
        if (
            len(self._entries) + len(self._verifying) >= limits.max_txs
            or self._bytes + self._verifying_bytes + len(raw) > limits.max_bytes
            or self.memory_used + pool_memory(1, len(raw)) > limits.max_memory_bytes
        ):
            return Admission(MEMPOOL_FULL, codes.message_for(MEMPOOL_FULL), tx.tx_id)
        lane_count = len(self._lanes.get(lane, ())) + self._lane_reserved.get(lane, 0)
        if lane_count >= limits.max_txs_per_account:
            detail = f"{lane} has {lane_count} pending transactions (limit {limits.max_txs_per_account}); retry later"
            return Admission(MEMPOOL_ACCOUNT_FULL, detail, tx.tx_id)
        try:
            authorize(Overlay(self._state), tx, verify=False)
        except Refused as refusal:
            return self._reject(raw_hash, refusal.code, refusal.message, tx.tx_id)
        cand = _Candidate(raw, raw_hash, tx, lane, first_item)
        self._verifying[raw_hash] = len(raw)
        self._verifying_bytes += len(raw)
        self._lane_reserved[lane] = self._lane_reserved.get(lane, 0) + 1
        return cand

    def _full_for_gossip(self, size: int) -> bool:
        """A peer's transaction of `size` bytes cannot fit the pool's count or byte limits (step 4, asked before
        decoding; the full step 4 still runs on whatever passes)."""
        limits = self.limits
        return (len(self._entries) + len(self._verifying) >= limits.max_txs
                or self._bytes + self._verifying_bytes + size > limits.max_bytes)

    def _check_envelope(self, tx: SignedTransaction) -> Refused | None:
        """Chain, expiry against the next block, and replay against the committed state."""
        body = tx.body
        next_height = self._height + 1
        if body.chain_id != self.chain_id:
            return Refused(codes.WRONG_CHAIN, f"transaction for chain {body.chain_id}, this is {self.chain_id}")
        if body.expiry_height < next_height:
            return Refused(codes.TX_EXPIRED, f"expired at height {body.expiry_height}, next block is {next_height}")
        if body.expiry_height > next_height + MAX_TX_LIFETIME:
            return Refused(
                codes.TX_EXPIRY_TOO_FAR, f"expiry {body.expiry_height} is beyond {next_height + MAX_TX_LIFETIME}"
            )
        if self._state.get_state(tx_seen_key(tx.tx_id)) is not None:
            return Refused(codes.TX_REPLAYED, f"transaction {tx.tx_id.hex()} was already committed")
        return None

    def _release(self, cand: _Candidate) -> None:
        size = self._verifying.pop(cand.raw_hash)
        self._verifying_bytes -= size
        left = self._lane_reserved[cand.lane] - 1
        if left:
            self._lane_reserved[cand.lane] = left
        else:
            del self._lane_reserved[cand.lane]
        assert self._verifying_bytes >= 0

    def _finish(self, cand: _Candidate, verdicts: list[bool], origin: str | None) -> Admission:
        self._release(cand)
        tx = cand.tx
        for k, sig in enumerate(tx.signatures):
            if not verdicts[cand.first + k]:
                return self._reject(
                    cand.raw_hash, codes.BAD_SIGNATURE, f"signature by {sig.account} does not verify", tx.tx_id
                )
        refusal = self._check_envelope(tx)  # blocks may have committed meanwhile
        if refusal is not None:
            return self._reject(cand.raw_hash, refusal.code, refusal.message, tx.tx_id)
        if tx.tx_id in self._entries:  # another copy (other signature bytes) was verified and pooled first
            return Admission(TX_ALREADY_PENDING, codes.message_for(TX_ALREADY_PENDING), tx.tx_id)
        entry = _Entry(tx.tx_id, tx, cand.raw, cand.raw_hash, cand.lane, tx.body.expiry_height, self._clock())
        self._insert(entry)
        self._remember(self._verified, cand.raw_hash, None, self.limits.verified_cache)
        if self._on_admitted is not None:
            try:
                self._on_admitted(tx.tx_id, cand.raw, origin)
            except Exception:
                log.exception("mempool_gossip_hook_failed tx=%s", tx.tx_id.hex())
        return Admission(codes.OK, codes.message_for(codes.OK), tx.tx_id)

    def _reject(self, raw_hash: bytes, code: int, detail: str, tx_id: bytes | None = None) -> Admission:
        if code in _FINAL_CODES or code < 100:
            self._remember(self._rejected, raw_hash, code, self.limits.rejected_cache)
        return Admission(code, detail, tx_id)

    @staticmethod
    def _remember(cache: OrderedDict, key: bytes, value: object, limit: int) -> None:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > limit:
            cache.popitem(last=False)

    # -- storage -------------------------------------------------------------------------------------------------

    def _insert(self, entry: _Entry) -> None:
        limits = self.limits
        self._entries[entry.tx_id] = entry
        self._by_raw[entry.raw_hash] = entry.tx_id
        self._lanes.setdefault(entry.lane, {})[entry.tx_id] = entry
        self._bytes += len(entry.raw)
        bucket = self._by_expiry.get(entry.expiry_height)
        if bucket is None:
            bucket = self._by_expiry[entry.expiry_height] = set()
            heapq.heappush(self._expiry_heap, entry.expiry_height)
            if len(self._expiry_heap) > 2 * len(self._by_expiry) + 64:
                self._expiry_heap = sorted(self._by_expiry)
        bucket.add(entry.tx_id)
        assert len(self._entries) + len(self._verifying) <= limits.max_txs, "mempool count limit exceeded"
        assert self._bytes + self._verifying_bytes <= limits.max_bytes, "mempool byte limit exceeded"
        assert self.memory_used <= limits.max_memory_bytes, "mempool memory limit exceeded"
        assert len(self._lanes[entry.lane]) <= limits.max_txs_per_account, "mempool lane limit exceeded"

    def _remove(self, tx_id: bytes) -> _Entry | None:
        entry = self._entries.pop(tx_id, None)
        if entry is None:
            return None
        del self._by_raw[entry.raw_hash]
        lane = self._lanes[entry.lane]
        del lane[tx_id]
        if not lane:
            del self._lanes[entry.lane]
        bucket = self._by_expiry[entry.expiry_height]
        bucket.discard(tx_id)
        if not bucket:
            del self._by_expiry[entry.expiry_height]
        self._bytes -= len(entry.raw)
        assert self._bytes >= 0
        return entry

    def remove_committed(self, tx_ids: Iterable[bytes]) -> list[float]:
        """Drop the transactions of a committed block (pass every id of the block, rejected ones too: a rejected
        transaction would otherwise be proposed again). Returns the seconds each removed one spent in the pool."""
        now = self._clock()
        ages: list[float] = []
        for tx_id in tx_ids:
            entry = self._remove(tx_id)
            if entry is not None:
                ages.append(now - entry.admitted_at)
        return ages

    def prune_expired(self, height: int) -> int:
        """Record the new committed height and drop every transaction that can no longer be included (expiry
        height below height + 1). Returns how many were dropped."""
        assert height >= self._height, f"committed height went back from {self._height} to {height}"
        self._height = height
        return self.evict_expired(height + 1)

    def set_state(self, state: StateReader) -> None:
        """Check against another committed-state reader from now on (e.g. after a state sync replaced the store)."""
        self._state = state

    # -- proposals -----------------------------------------------------------------------------------------------

    def evict_expired(self, height: int) -> int:
        """Drop every transaction already expired at `height` (expiry height below it): the proposal for `height`
        must not carry them, and neither can any later block on the same branch. Returns how many were dropped."""
        dropped = 0
        heap = self._expiry_heap
        while heap and heap[0] < height:
            bucket = self._by_expiry.get(heapq.heappop(heap))
            for tx_id in list(bucket or ()):
                self._remove(tx_id)
                dropped += 1
        return dropped

    def reap(
        self, max_txs: int, max_bytes: int, exclude: Collection[bytes] = (), overhead_per_tx: int = 0
    ) -> list[bytes]:
        """Transactions for a proposal: at most `max_txs`, and at most `max_bytes` counting each transaction as
        its length + `overhead_per_tx` (the payload's framing), round-robin across accounts (lanes in a rotating
        order, one transaction per lane per round), each account in submission order. `exclude`: ids already in
        uncommitted ancestor blocks. Reaping does not remove anything (a proposer calls evict_expired first)."""
        assert max_txs >= 0 and max_bytes >= 0 and overhead_per_tx >= 0
        out: list[bytes] = []
        if not self._entries or max_txs == 0:
            return out
        names = list(self._lanes)
        start = self._reap_round % len(names)
        self._reap_round += 1
        lanes = [iter(self._lanes[name].values()) for name in names[start:] + names[:start]]
        budget = max_bytes
        while lanes and len(out) < max_txs:
            still_open = []
            for lane in lanes:
                entry = next(lane, None)
                while entry is not None and entry.tx_id in exclude:
                    entry = next(lane, None)
                if entry is None:
                    continue
                cost = len(entry.raw) + overhead_per_tx
                if cost > budget:
                    continue  # the lane is closed for this proposal: its order is kept
                out.append(entry.raw)
                budget -= cost
                still_open.append(lane)
                if len(out) == max_txs:
                    break
            lanes = still_open
        assert len(out) <= max_txs and 0 <= budget <= max_bytes
        return out
