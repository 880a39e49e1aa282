"""Byzantine replicas for the simulators: an honest replica's outgoing messages in, what a faulty one sends out.

    liar = ByzantineSender("equivocate", rng, sign=..., chain_id=..., max_payload=...)
    for target, data in liar.send(message, targets, everyone):  ...   # deliver `data` to `target`
    liar.heard(data)                                                      # what it received (for "stale")

Behaviours (a Byzantine replica runs the honest code; only its traffic is rewritten):
    equivocate   a second, conflicting proposal for each of its rounds, validly signed, sent to half the targets
    double_vote  besides each vote, a second vote for the same block with another state root
    silent       sends nothing
    garbage      random bytes, bit flips, truncations, oversized payloads, badly signed votes
    stale        replays messages it received earlier and votes again in rounds already passed
Safety must hold against all of them; liveness as long as Byzantine replicas and other faults are at most f.
Nothing here reads a clock or an unseeded random source.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

from consensus.messages import (
    Block,
    Message,
    Proposal,
    Timeout,
    Vote,
    encode_message,
    payload_hash,
    proposal_message,
    vote_message,
)

__all__ = ["BEHAVIOURS", "ByzantineSender"]

BEHAVIOURS: Final = ("equivocate", "double_vote", "silent", "garbage", "stale")
# Received messages a "stale" replica keeps to replay.
MAX_HISTORY: Final = 200

T = TypeVar("T")


class ByzantineSender:
    def __init__(self, behaviour: str, rng: random.Random, *, sign: Callable[[bytes], bytes], chain_id: bytes,
                 max_payload: int, on_payload: Callable[[bytes], None] | None = None) -> None:
        """`sign(message)`: a BLS signature with the replica's key. `on_payload(hash)`: told of every payload this
        replica invents (a simulator checks that committed payloads were proposed by someone)."""
        assert behaviour in BEHAVIOURS
        self.behaviour = behaviour
        self._rng = rng
        self._sign = sign
        self._chain_id = chain_id
        self._max_payload = max_payload
        self._on_payload = on_payload
        self.history: list[bytes] = []

    def heard(self, data: bytes) -> None:
        if self.behaviour == "stale" and len(self.history) < MAX_HISTORY:
            self.history.append(data)

    def send(self, message: Message, targets: Sequence[T], everyone: Sequence[T]) -> list[tuple[T, bytes]]:
        """What the replica sends instead of `message` to `targets` (`everyone`: all replicas it knows)."""
        return getattr(self, f"_{self.behaviour}")(message, list(targets), list(everyone))

    def _invented(self, payload: bytes) -> None:
        if self._on_payload is not None:
            self._on_payload(payload_hash(payload))

    def _silent(self, message: Message, targets: list[T], everyone: list[T]) -> list[tuple[T, bytes]]:
        return []

    def _equivocate(self, message: Message, targets: list[T], everyone: list[T]) -> list[tuple[T, bytes]]:
        if not isinstance(message, Proposal):
            data = encode_message(message)
            return [(t, data) for t in targets]
        h = message.block.header
        payload = self._rng.randbytes(16)
        self._invented(payload)
        other_header = type(h)(h.chain_id, h.epoch, h.round, h.height, h.parent_id, h.proposer, payload_hash(payload),
                               h.qc)
        other_block = Block(other_header, payload)
        sig = self._sign(proposal_message(self._chain_id, h.epoch, h.round, other_block.id))
        a, b = encode_message(message), encode_message(Proposal(other_block, message.tc, sig))
        out = []
        for k, t in enumerate(targets):
            out.append((t, a if k % 2 == 0 else b))
            if k == 0:
                out.append((t, b))
        return out

    def _double_vote(self, message: Message, targets: list[T], everyone: list[T]) -> list[tuple[T, bytes]]:
        data = encode_message(message)
        out = [(t, data) for t in targets]
        if isinstance(message, Vote):
            fake_root = self._rng.randbytes(32)
            sig = self._sign(vote_message(self._chain_id, message.epoch, message.round, message.block_id, fake_root))
            other = encode_message(Vote(message.epoch, message.round, message.block_id, fake_root, message.voter,
                                        sig))
            out.extend((t, other) for t in targets)
        return out

    def _garbage(self, message: Message, targets: list[T], everyone: list[T]) -> list[tuple[T, bytes]]:
        rng = self._rng
        data = bytearray(encode_message(message))
        out = []
        for t in targets:
            kind = rng.randrange(5)
            if kind == 0:
                sent = rng.randbytes(rng.randint(0, 200))
            elif kind == 1 and data:
                mutated = bytearray(data)
                for _ in range(rng.randint(1, 4)):
                    pos = rng.randrange(len(mutated))
                    mutated[pos] ^= 1 << rng.randrange(8)
                sent = bytes(mutated)
            elif kind == 2:
                sent = bytes(data[: rng.randrange(len(data) + 1)])
            elif kind == 3 and isinstance(message, Proposal):
                # Properly signed, but with a payload above the limit.
                h = message.block.header
                payload = bytes(self._max_payload + 1)
                big_header = type(h)(h.chain_id, h.epoch, h.round, h.height, h.parent_id, h.proposer,
                                     payload_hash(payload), h.qc)
                big = Block(big_header, payload)
                sig = self._sign(proposal_message(self._chain_id, h.epoch, h.round, big.id))
                sent = encode_message(Proposal(big, message.tc, sig))
            elif kind == 3 and isinstance(message, (Vote, Timeout)):
                # Right shape, wrong signature.
                bad = rng.randbytes(96)
                me = message.voter if isinstance(message, Vote) else message.author
                sent = encode_message(Vote(0, message.round, rng.randbytes(32), rng.randbytes(32), me, bad))
            else:
                sent = bytes(data) + b"\x00" * rng.randint(1, 8)
            out.append((t, sent))
        return out

    def _stale(self, message: Message, targets: list[T], everyone: list[T]) -> list[tuple[T, bytes]]:
        rng = self._rng
        data = encode_message(message)
        out = [(t, data) for t in targets]
        if self.history and rng.random() < 0.5:
            old = self.history[rng.randrange(len(self.history))]
            out.extend((t, old) for t in targets)
        if isinstance(message, Vote) and message.round > 3:
            r = message.round - rng.randint(2, 3)
            sig = self._sign(vote_message(self._chain_id, message.epoch, r, message.block_id, message.state_root))
            stale = encode_message(Vote(message.epoch, r, message.block_id, message.state_root, message.voter, sig))
            out.extend((t, stale) for t in everyone)
        return out
