"""Wire types of the consensus: blocks, certificates, messages, safety state; their canonical encodings.

Byte formats are documented in docs/consensus.md. Each top-level message is a msgpack array whose first item is a
tag (PROPOSAL=1, VOTE=2, TIMEOUT=3, SYNC_REQUEST=4, SYNC_RESPONSE=5, EPOCH_CHANGE=6, RECOVERY_REQUEST=7,
RECOVERY_STATEMENT=8: consensus/recovery.py); certificates, headers and the safety state are
untagged arrays nested in them. `decode_message` never raises anything but CodecError.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from dataclasses import dataclass
from typing import Final

from consensus.codec import CodecError, Fields, pack, uint_bytes, unpack

HASH_SIZE: Final = 32
SIGNATURE_SIZE: Final = 96
MAX_CHAIN_ID_BYTES: Final = 64
MAX_VALIDATOR_INDEX: Final = 1023
MAX_BITMAP_BYTES: Final = 128
MAX_TC_GROUPS: Final = 1024
MAX_PAYLOAD_BYTES: Final = 4 * 1024 * 1024
MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024
MAX_SYNC_BLOCKS: Final = 256
MAX_COMMIT_HEADERS: Final = 1024
MAX_ROUND: Final = (1 << 63) - 1

TAG_PROPOSAL: Final = 1
TAG_VOTE: Final = 2
TAG_TIMEOUT: Final = 3
TAG_SYNC_REQUEST: Final = 4
TAG_SYNC_RESPONSE: Final = 5
TAG_EPOCH_CHANGE: Final = 6
TAG_RECOVERY_REQUEST: Final = 7
TAG_RECOVERY_STATEMENT: Final = 8
# Bytes of one recovery request or statement (a statement carries a QC and a TC: ~120 bytes per TC group, and a TC
# has at most one group per validator); larger ones are dropped undecoded (`dropped_recovery_oversized`).
MAX_RECOVERY_MESSAGE_BYTES: Final = 256 * 1024
NONCE_SIZE: Final = 32
MAX_EPOCH_PROOFS: Final = 64
MAX_EPOCH: Final = (1 << 63) - 1
MAX_VALIDATORS_WIRE: Final = MAX_VALIDATOR_INDEX + 1

# Domain separation of everything that is hashed or signed.
DOMAIN_BLOCK: Final = b"LEDGER-JOLTEON-V1/BLOCK"
DOMAIN_PAYLOAD: Final = b"LEDGER-JOLTEON-V1/PAYLOAD"
DOMAIN_VOTE: Final = b"LEDGER-JOLTEON-V1/VOTE"
DOMAIN_PROPOSAL: Final = b"LEDGER-JOLTEON-V1/PROPOSAL"
DOMAIN_TIMEOUT: Final = b"LEDGER-JOLTEON-V1/TIMEOUT"
DOMAIN_EPOCH_END: Final = b"LEDGER-JOLTEON-V1/EPOCH-END"
DOMAIN_RECOVERY: Final = b"LEDGER-JOLTEON-V1/RECOVERY"

ZERO_HASH: Final = bytes(HASH_SIZE)


def _prefix(domain: bytes, chain_id: bytes) -> bytes:
    return domain + bytes([len(domain), len(chain_id)]) + chain_id


def vote_message(chain_id: bytes, epoch: int, round_: int, block_id: bytes, state_root: bytes) -> bytes:
    """The bytes a validator signs to vote for `block_id` whose execution gives `state_root`."""
    return _prefix(DOMAIN_VOTE, chain_id) + uint_bytes(epoch) + uint_bytes(round_) + block_id + state_root


def proposal_message(chain_id: bytes, epoch: int, round_: int, block_id: bytes) -> bytes:
    return _prefix(DOMAIN_PROPOSAL, chain_id) + uint_bytes(epoch) + uint_bytes(round_) + block_id


def timeout_message(chain_id: bytes, epoch: int, round_: int, high_qc_round: int) -> bytes:
    return _prefix(DOMAIN_TIMEOUT, chain_id) + uint_bytes(epoch) + uint_bytes(round_) + uint_bytes(high_qc_round)


def recovery_message(chain_id: bytes, epoch: int, requester: int, nonce: bytes, responder: int,
                     highest_vote_round: int, high_qc_round: int, high_tc_round: int) -> bytes:
    """The bytes a validator signs to tell `requester` (recovering its lost safety state, consensus/recovery.py)
    the highest round it has itself signed in this epoch and the rounds of the certificates it holds, bound to the
    requester's fresh nonce."""
    assert len(nonce) == NONCE_SIZE
    return (_prefix(DOMAIN_RECOVERY, chain_id) + uint_bytes(epoch) + uint_bytes(requester) + nonce
            + uint_bytes(responder) + uint_bytes(highest_vote_round) + uint_bytes(high_qc_round)
            + uint_bytes(high_tc_round))


def epoch_commitment(block_id: bytes, state_root: bytes, next_set_digest: bytes) -> bytes:
    """The root that replicas vote for on every descendant of an epoch-ending block in its epoch (the
    reconfiguration suffix): it binds the epoch-ending block (id and state root) to the digest of the next validator
    set, so the QC that commits the epoch-ending block also certifies the next set."""
    assert len(block_id) == HASH_SIZE and len(state_root) == HASH_SIZE and len(next_set_digest) == HASH_SIZE
    return hashlib.sha256(DOMAIN_EPOCH_END + block_id + state_root + next_set_digest).digest()


def payload_hash(payload: bytes) -> bytes:
    return hashlib.sha256(DOMAIN_PAYLOAD + payload).digest()


# --------------------------------------------------------------------------------------------------------------
# Certificates


@dataclass(frozen=True, slots=True)
class QuorumCert:
    """A quorum of votes for (epoch, round, block_id, state_root): aggregate BLS signature + signer bitmap.

    The genesis QC (round 0) has an empty bitmap and an empty signature; it is valid only for the configured
    genesis block."""

    epoch: int
    round: int
    block_id: bytes
    state_root: bytes
    signers: bytes
    signature: bytes

    def to_list(self) -> list:
        return [self.epoch, self.round, self.block_id, self.state_root, self.signers, self.signature]

    @staticmethod
    def from_list(items: object) -> QuorumCert:
        f = Fields(items, 6, "QuorumCert")
        qc = QuorumCert(f.uint(MAX_ROUND), f.uint(MAX_ROUND), f.raw(HASH_SIZE), f.raw(HASH_SIZE),
                        f.raw(max_size=MAX_BITMAP_BYTES), f.raw(max_size=SIGNATURE_SIZE))
        if qc.round == 0:
            if qc.signers or qc.signature:
                raise CodecError(CodecError.BAD_FIELD, "a round-0 QC carries no signers and no signature")
        elif len(qc.signature) != SIGNATURE_SIZE or not qc.signers:
            raise CodecError(CodecError.BAD_FIELD, "QC needs a 96-byte signature and a signer bitmap")
        return qc


@dataclass(frozen=True, slots=True)
class TimeoutGroup:
    """Signers of a TC that reported the same highest QC round, with their aggregate signature."""

    high_qc_round: int
    signers: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class TimeoutCert:
    """A quorum of timeouts for `round`. Groups are sorted by high_qc_round, strictly increasing, disjoint."""

    epoch: int
    round: int
    groups: tuple[TimeoutGroup, ...]

    @property
    def max_high_qc_round(self) -> int:
        return self.groups[-1].high_qc_round

    def to_list(self) -> list:
        return [self.epoch, self.round, [[g.high_qc_round, g.signers, g.signature] for g in self.groups]]

    @staticmethod
    def from_list(items: object) -> TimeoutCert:
        f = Fields(items, 3, "TimeoutCert")
        epoch, round_ = f.uint(MAX_ROUND), f.uint(MAX_ROUND)
        groups = []
        for g in f.array(MAX_TC_GROUPS):
            gf = Fields(g, 3, "TimeoutGroup")
            groups.append(TimeoutGroup(gf.uint(MAX_ROUND), gf.raw(max_size=MAX_BITMAP_BYTES),
                                       gf.raw(SIGNATURE_SIZE)))
        if not groups:
            raise CodecError(CodecError.BAD_FIELD, "TimeoutCert without groups")
        for a, b in itertools.pairwise(groups):
            if a.high_qc_round >= b.high_qc_round:
                raise CodecError(CodecError.BAD_FIELD, "TimeoutCert groups must be sorted and distinct")
        if groups[-1].high_qc_round >= round_:
            raise CodecError(CodecError.BAD_FIELD, "TimeoutCert high QC round must be below its round")
        return TimeoutCert(epoch, round_, tuple(groups))


# --------------------------------------------------------------------------------------------------------------
# Blocks


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """What a block id commits to. `qc` certifies the parent (parent_id == qc.block_id)."""

    chain_id: bytes
    epoch: int
    round: int
    height: int
    parent_id: bytes
    proposer: int
    payload_hash: bytes
    qc: QuorumCert

    def to_list(self) -> list:
        return [self.chain_id, self.epoch, self.round, self.height, self.parent_id, self.proposer,
                self.payload_hash, self.qc.to_list()]

    @staticmethod
    def from_list(items: object) -> BlockHeader:
        f = Fields(items, 8, "BlockHeader")
        header = BlockHeader(f.raw(max_size=MAX_CHAIN_ID_BYTES), f.uint(MAX_ROUND), f.uint(MAX_ROUND),
                             f.uint(MAX_ROUND), f.raw(HASH_SIZE), f.uint(MAX_VALIDATOR_INDEX), f.raw(HASH_SIZE),
                             QuorumCert.from_list(f.value()))
        if header.height > 0 and (header.parent_id != header.qc.block_id or header.qc.round >= header.round):
            raise CodecError(CodecError.BAD_FIELD, "header must extend the block its QC certifies, in a later round")
        return header

    @property
    def id(self) -> bytes:
        return block_id(self)


@functools.lru_cache(maxsize=1 << 15)
def block_id(header: BlockHeader) -> bytes:
    """sha256(DOMAIN_BLOCK || canonical header encoding)."""
    return hashlib.sha256(DOMAIN_BLOCK + pack(header.to_list())).digest()


@dataclass(frozen=True, slots=True)
class Block:
    header: BlockHeader
    payload: bytes

    @property
    def id(self) -> bytes:
        return block_id(self.header)

    def to_list(self) -> list:
        return [self.header.to_list(), self.payload]

    @staticmethod
    def from_list(items: object) -> Block:
        f = Fields(items, 2, "Block")
        header = BlockHeader.from_list(f.value())
        payload = f.raw(max_size=MAX_PAYLOAD_BYTES)
        if payload_hash(payload) != header.payload_hash:
            raise CodecError(CodecError.BAD_FIELD, "payload does not match the header's payload hash")
        return Block(header, payload)


def genesis_block(chain_id: bytes, epoch: int) -> Block:
    """Height 0, round 0: the root every chain of one chain id starts from."""
    assert 1 <= len(chain_id) <= MAX_CHAIN_ID_BYTES
    qc = QuorumCert(epoch, 0, ZERO_HASH, ZERO_HASH, b"", b"")
    header = BlockHeader(chain_id, epoch, 0, 0, ZERO_HASH, 0, payload_hash(b""), qc)
    return Block(header, b"")


def genesis_qc(genesis: Block, state_root: bytes) -> QuorumCert:
    """The certificate of the genesis block: round 0, no signers, the application's genesis state root."""
    return QuorumCert(genesis.header.epoch, 0, genesis.id, state_root, b"", b"")


# --------------------------------------------------------------------------------------------------------------
# Messages


@dataclass(frozen=True, slots=True)
class Proposal:
    block: Block
    tc: TimeoutCert | None
    signature: bytes

    def to_list(self) -> list:
        return [TAG_PROPOSAL, self.block.to_list(), None if self.tc is None else self.tc.to_list(), self.signature]


@dataclass(frozen=True, slots=True)
class Vote:
    epoch: int
    round: int
    block_id: bytes
    state_root: bytes
    voter: int
    signature: bytes

    def to_list(self) -> list:
        return [TAG_VOTE, self.epoch, self.round, self.block_id, self.state_root, self.voter, self.signature]


@dataclass(frozen=True, slots=True)
class Timeout:
    epoch: int
    round: int
    high_qc: QuorumCert
    last_tc: TimeoutCert | None
    author: int
    signature: bytes

    def to_list(self) -> list:
        return [TAG_TIMEOUT, self.epoch, self.round, self.high_qc.to_list(),
                None if self.last_tc is None else self.last_tc.to_list(), self.author, self.signature]


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """By id (target_id set): the target and its ancestors with height >= start_height, lowest first.
    By height (target_id empty): committed blocks with start_height <= height <= end_height."""

    target_id: bytes
    start_height: int
    end_height: int

    def to_list(self) -> list:
        return [TAG_SYNC_REQUEST, self.target_id, self.start_height, self.end_height]


@dataclass(frozen=True, slots=True)
class SyncResponse:
    """Consecutive blocks, lowest first; `qc` certifies the last one (optional); `tc` helps round sync."""

    blocks: tuple[Block, ...]
    qc: QuorumCert | None
    tc: TimeoutCert | None

    def to_list(self) -> list:
        return [TAG_SYNC_RESPONSE, [b.to_list() for b in self.blocks],
                None if self.qc is None else self.qc.to_list(), None if self.tc is None else self.tc.to_list()]


@dataclass(frozen=True, slots=True)
class EpochChangeProof:
    """The end of epoch `cert.epoch`: the commit certificate of its epoch-ending block, and the next validator set
    (epoch `cert.epoch + 1`) as `(id, public_key, pop, power)` entries in bitmap order. Verified by
    `certificates.verify_epoch_change`: the certificate verifies under the old set, and its QC's state root is
    `epoch_commitment(cert.block_id, cert.state_root, digest of the next set)`."""

    cert: CommitCertificate
    next_validators: tuple[tuple[bytes, bytes, bytes, int], ...]

    @property
    def epoch(self) -> int:
        """The epoch this proof ends."""
        return self.cert.epoch

    def to_list(self) -> list:
        return [self.cert.to_list(), [list(v) for v in self.next_validators]]

    def encode(self) -> bytes:
        return pack(self.to_list())

    @staticmethod
    def from_list(items: object) -> EpochChangeProof:
        f = Fields(items, 2, "EpochChangeProof")
        cf = Fields(f.value(), 2, "CommitCertificate")
        headers = tuple(BlockHeader.from_list(h) for h in cf.array(MAX_COMMIT_HEADERS))
        if len(headers) < 2:
            raise CodecError(CodecError.BAD_FIELD, "a commit certificate needs at least two headers")
        cert = CommitCertificate(headers, QuorumCert.from_list(cf.value()))
        entries = []
        for item in f.array(MAX_VALIDATORS_WIRE):
            vf = Fields(item, 4, "Validator")
            entries.append((vf.raw(max_size=64), vf.raw(48), vf.raw(96), vf.uint(1 << 32)))
        if not entries:
            raise CodecError(CodecError.BAD_FIELD, "the next validator set is empty")
        return EpochChangeProof(cert, tuple(entries))

    @staticmethod
    def decode(data: bytes) -> EpochChangeProof:
        return EpochChangeProof.from_list(unpack(data, MAX_MESSAGE_BYTES))


@dataclass(frozen=True, slots=True)
class EpochChange:
    """Consecutive epoch-change proofs, oldest first: sent to a peer still in an ended epoch."""

    proofs: tuple[EpochChangeProof, ...]

    def to_list(self) -> list:
        return [TAG_EPOCH_CHANGE, [p.to_list() for p in self.proofs]]


@dataclass(frozen=True, slots=True)
class RecoveryRequest:
    """A validator that lost its safety state asks for recovery statements (consensus/recovery.py): `requester` is
    its index, `nonce` fresh random bytes drawn after the loss (every statement must echo it)."""

    epoch: int
    requester: int
    nonce: bytes

    def to_list(self) -> list:
        return [TAG_RECOVERY_REQUEST, self.epoch, self.requester, self.nonce]


@dataclass(frozen=True, slots=True)
class RecoveryStatement:
    """A validator's signed answer to a RecoveryRequest: the highest round it has signed a vote or timeout in
    (`highest_vote_round`, its own persisted bound) and its highest QC and TC, which cap what the statement may claim
    and may lift the requester's lock. Signed over `recovery_message` with the rounds of `high_qc` and `high_tc`."""

    epoch: int
    requester: int
    nonce: bytes
    responder: int
    highest_vote_round: int
    high_qc: QuorumCert
    high_tc: TimeoutCert | None
    signature: bytes

    @property
    def high_tc_round(self) -> int:
        return 0 if self.high_tc is None else self.high_tc.round

    def to_list(self) -> list:
        return [TAG_RECOVERY_STATEMENT, self.epoch, self.requester, self.nonce, self.responder,
                self.highest_vote_round, self.high_qc.to_list(), None if self.high_tc is None else self.high_tc.to_list(),
                self.signature]


Message = Proposal | Vote | Timeout | SyncRequest | SyncResponse | EpochChange | RecoveryRequest | RecoveryStatement


def encode_message(message: Message) -> bytes:
    return pack(message.to_list())


def _opt_tc(f: Fields) -> TimeoutCert | None:
    return None if f.is_nil() else TimeoutCert.from_list(f.value())


def decode_message(data: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> Message:
    """Strictly decode one message; CodecError on anything malformed, non-canonical or oversized."""
    items = unpack(data, max_bytes)
    if not items or type(items[0]) is not int:
        raise CodecError(CodecError.UNKNOWN_TAG, "message must start with an integer tag")
    tag = items[0]
    if tag == TAG_PROPOSAL:
        f = Fields(items, 4, "Proposal")
        f.uint()
        block = Block.from_list(f.value())
        tc = _opt_tc(f)
        return Proposal(block, tc, f.raw(SIGNATURE_SIZE))
    if tag == TAG_VOTE:
        f = Fields(items, 7, "Vote")
        f.uint()
        return Vote(f.uint(MAX_ROUND), f.uint(MAX_ROUND), f.raw(HASH_SIZE), f.raw(HASH_SIZE),
                    f.uint(MAX_VALIDATOR_INDEX), f.raw(SIGNATURE_SIZE))
    if tag == TAG_TIMEOUT:
        f = Fields(items, 7, "Timeout")
        f.uint()
        epoch, round_ = f.uint(MAX_ROUND), f.uint(MAX_ROUND)
        high_qc = QuorumCert.from_list(f.value())
        last_tc = _opt_tc(f)
        timeout = Timeout(epoch, round_, high_qc, last_tc, f.uint(MAX_VALIDATOR_INDEX), f.raw(SIGNATURE_SIZE))
        if high_qc.round >= round_:
            raise CodecError(CodecError.BAD_FIELD, "timeout's high QC must be from an earlier round")
        return timeout
    if tag == TAG_SYNC_REQUEST:
        f = Fields(items, 4, "SyncRequest")
        f.uint()
        target = f.raw(max_size=HASH_SIZE)
        if target and len(target) != HASH_SIZE:
            raise CodecError(CodecError.BAD_FIELD, "sync target must be empty or a 32-byte id")
        request = SyncRequest(target, f.uint(MAX_ROUND), f.uint(MAX_ROUND))
        if request.end_height < request.start_height:
            raise CodecError(CodecError.BAD_FIELD, "sync height range is empty")
        return request
    if tag == TAG_SYNC_RESPONSE:
        f = Fields(items, 4, "SyncResponse")
        f.uint()
        blocks = tuple(Block.from_list(b) for b in f.array(MAX_SYNC_BLOCKS))
        qc = None if f.is_nil() else QuorumCert.from_list(f.value())
        return SyncResponse(blocks, qc, _opt_tc(f))
    if tag == TAG_EPOCH_CHANGE:
        f = Fields(items, 2, "EpochChange")
        f.uint()
        proofs = tuple(EpochChangeProof.from_list(p) for p in f.array(MAX_EPOCH_PROOFS))
        if not proofs:
            raise CodecError(CodecError.BAD_FIELD, "an epoch change needs at least one proof")
        for a, b in itertools.pairwise(proofs):
            if b.epoch != a.epoch + 1:
                raise CodecError(CodecError.BAD_FIELD, "epoch-change proofs must be consecutive")
        return EpochChange(proofs)
    if tag in (TAG_RECOVERY_REQUEST, TAG_RECOVERY_STATEMENT) and len(data) > MAX_RECOVERY_MESSAGE_BYTES:
        raise CodecError(CodecError.TOO_LARGE, f"a recovery message of {len(data)} bytes exceeds "
                                               f"{MAX_RECOVERY_MESSAGE_BYTES}")
    if tag == TAG_RECOVERY_REQUEST:
        f = Fields(items, 4, "RecoveryRequest")
        f.uint()
        return RecoveryRequest(f.uint(MAX_EPOCH), f.uint(MAX_VALIDATOR_INDEX), f.raw(NONCE_SIZE))
    if tag == TAG_RECOVERY_STATEMENT:
        f = Fields(items, 9, "RecoveryStatement")
        f.uint()
        epoch, requester, nonce = f.uint(MAX_EPOCH), f.uint(MAX_VALIDATOR_INDEX), f.raw(NONCE_SIZE)
        responder, hvr = f.uint(MAX_VALIDATOR_INDEX), f.uint(MAX_ROUND)
        high_qc = QuorumCert.from_list(f.value())
        return RecoveryStatement(epoch, requester, nonce, responder, hvr, high_qc, _opt_tc(f), f.raw(SIGNATURE_SIZE))
    raise CodecError(CodecError.UNKNOWN_TAG, f"unknown message tag {tag}")


# --------------------------------------------------------------------------------------------------------------
# Commit certificate and safety state


@dataclass(frozen=True, slots=True)
class CommitCertificate:
    """Proof that the block with header `headers[0]` is final, with the state root `headers[1].qc.state_root`.

    headers[i+1] extends headers[i] (parent_id is the id of headers[i], height + 1); the last two headers are in
    consecutive rounds; `qc` certifies the last header. Under the two-chain rule that makes headers[-2] committed,
    hence all its ancestors, headers[0] included. See docs/consensus.md for the exact checks."""

    headers: tuple[BlockHeader, ...]
    qc: QuorumCert

    @property
    def block_id(self) -> bytes:
        return self.headers[0].id

    @property
    def height(self) -> int:
        return self.headers[0].height

    @property
    def state_root(self) -> bytes:
        return self.headers[1].qc.state_root

    @property
    def epoch(self) -> int:
        return self.qc.epoch

    def to_list(self) -> list:
        return [[h.to_list() for h in self.headers], self.qc.to_list()]

    def encode(self) -> bytes:
        return pack(self.to_list())

    @staticmethod
    def decode(data: bytes) -> CommitCertificate:
        f = Fields(unpack(data, MAX_MESSAGE_BYTES), 2, "CommitCertificate")
        headers = tuple(BlockHeader.from_list(h) for h in f.array(MAX_COMMIT_HEADERS))
        if len(headers) < 2:
            raise CodecError(CodecError.BAD_FIELD, "a commit certificate needs at least two headers")
        return CommitCertificate(headers, QuorumCert.from_list(f.value()))


@dataclass(frozen=True, slots=True)
class SafetyState:
    """What must be on disk before a vote or timeout leaves the replica.

    highest_vote_round: no vote or timeout is ever signed for a round <= this (votes) or < this (timeouts).
    highest_qc_round:   the lock; a timeout never reports a QC below it.
    last_proposed_round: a leader never proposes twice in one round.
    high_qc / high_tc:  the best certificates seen (liveness after restart)."""

    epoch: int
    highest_vote_round: int
    highest_qc_round: int
    last_proposed_round: int
    high_qc: QuorumCert
    high_tc: TimeoutCert | None

    def encode(self) -> bytes:
        return pack([self.epoch, self.highest_vote_round, self.highest_qc_round, self.last_proposed_round,
                     self.high_qc.to_list(), None if self.high_tc is None else self.high_tc.to_list()])

    @staticmethod
    def decode(data: bytes) -> SafetyState:
        f = Fields(unpack(data, 1 << 20), 6, "SafetyState")
        state = SafetyState(f.uint(MAX_ROUND), f.uint(MAX_ROUND), f.uint(MAX_ROUND), f.uint(MAX_ROUND),
                            QuorumCert.from_list(f.value()), _opt_tc(f))
        if state.highest_qc_round > state.high_qc.round:
            raise CodecError(CodecError.BAD_FIELD, "highest_qc_round above the high QC")
        return state


def encode_block(block: Block) -> bytes:
    return pack(block.to_list())


def decode_block(data: bytes) -> Block:
    return Block.from_list(unpack(data, MAX_MESSAGE_BYTES))
