"""The simulated institutions: clients that sign transactions with the genesis accounts and submit them to a running
node, as the SDK does through the API (the simulation admits them through Application.admit_now and gossips them).

    clients = Workload(world, rng, reconfig=True)
    raw = clients.next_transaction(height, time_s, validators)     one signed transaction to submit now, or None
    clients.committed(tx_id, code)                                 a node committed it (what the client waits for)

Kinds: CASH-T transfers between users, issuances by the issuer, holds (a user places a hold for the admin as notary,
who later executes or releases it), and, with `reconfig`, governance proposals driven to execution one after the
other: add member m4 with its validator (a spare node that has been following as an observer), rotate a
validator's identity and BLS keys to its next keys, remove a validator. Each proposal is proposed by gov@m0 and
approved by gov@m1 and gov@m2 (3 of 4), one step after the previous one committed; a step whose transaction was
lost (a crashed node's mempool) is submitted again after RESUBMIT_MS. The last proposal leaves at least 4 validators.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

from ledger.operations import (
    AddMember,
    AddValidator,
    Approve,
    CreateHold,
    ExecuteHold,
    Issue,
    Propose,
    ReleaseHold,
    RemoveValidator,
    RotateValidatorKeys,
    Transfer,
    TransferLeg,
)
from ledger.transaction import TxBody, sign_transaction
from node.chain.protocol import OPERATIONS
from node.tools.simulation.world import ADMIN_ACCOUNT, CASH_ASSET, World

__all__ = ["RESUBMIT_MS", "Workload"]

RESUBMIT_MS: Final = 3_000
TX_LIFETIME: Final = 300  # blocks
PROPOSAL_LIFETIME: Final = 2_000  # blocks
MAX_OPEN_HOLDS: Final = 16


@dataclass(slots=True)
class _Step:
    """One governance transaction: submitted (and resubmitted) until a node commits it."""

    raw: bytes
    tx_id: bytes
    sent_ms: int = -RESUBMIT_MS


class Workload:
    def __init__(self, world: World, rng: random.Random, *, reconfig: bool) -> None:
        self._world = world
        self._rng = rng
        self._nonce = 0
        self._users = world.users
        self._open_holds: list[str] = []
        self._hold_seq = 0
        self.proposals: list[tuple[str, tuple]] = self._draw_proposals(rng) if reconfig else []
        self.executed_proposals = 0
        self._steps: list[tuple[str, object]] = []  # (actor, operation) of the proposal in progress
        self._current: tuple = ()  # the actions of the proposal in progress
        self._step: _Step | None = None
        self._committed: dict[bytes, int] = {}
        self.submitted_by_kind: dict[str, int] = {}

    # -- governance ---------------------------------------------------------------------------------------------

    def _draw_proposals(self, rng: random.Random) -> list[tuple[str, tuple]]:
        world = self._world
        validators = list(range(world.nodes))
        out: list[tuple[str, tuple]] = []
        if world.spare:
            k = world.keys[world.nodes]
            out.append(("add-m4", (AddMember(f"m{world.nodes}", "Spare member", False),
                                   AddValidator(k.node_id, f"m{world.nodes}", k.identity_key, k.bls_public_key,
                                                k.bls_pop(), f"127.0.0.1:{7000 + world.nodes}", 1))))
            validators.append(world.nodes)
        if len(validators) > 4 and rng.random() < 0.7:
            gone = rng.choice(validators)
            validators.remove(gone)
            out.append((f"remove-{gone}", (RemoveValidator(world.keys[gone].node_id),)))
        if rng.random() < 0.5:
            i = rng.choice(validators)
            n = world.next_keys[i]
            out.append((f"rotate-{i}", (RotateValidatorKeys(n.node_id, n.identity_key, n.bls_public_key,
                                                             n.bls_pop()),)))
        if len(out) > 1 and rng.random() < 0.5:
            out[1], out[-1] = out[-1], out[1]
        return out

    def _governance_step(self, height: int, now_ms: int) -> bytes | None:
        step = self._step
        if step is not None:
            if step.tx_id not in self._committed:
                if now_ms - step.sent_ms < RESUBMIT_MS:
                    return None
                step.sent_ms = now_ms
                return step.raw
            self._step = None
            if not self._steps:
                self.executed_proposals += 1  # its last approval committed
                self._current = ()
        if not self._steps:
            if not self.proposals:
                return None
            pid, actions = self.proposals.pop(0)
            self._current = actions
            gov = self._world.governors
            self._steps = [(gov[0], Propose(gov[0], pid, actions, height + PROPOSAL_LIFETIME)),
                           (gov[1], Approve(gov[1], pid)), (gov[2], Approve(gov[2], pid))]
        actor, op = self._steps.pop(0)
        raw, tx_id = self._sign(actor, op, height, PROPOSAL_LIFETIME)
        self._step = _Step(raw, tx_id, now_ms)
        self._count("governance")
        return raw

    def joining(self) -> set[str]:
        """Node ids that proposals not yet executed would add as validators."""
        pending = [actions for _, actions in self.proposals] + ([self._current] if self._current else [])
        return {a.node_id for actions in pending for a in actions if isinstance(a, AddValidator)}

    @property
    def governance_idle(self) -> bool:
        """Every drawn proposal was submitted to the end and its last approval committed."""
        return not self.proposals and not self._steps and self._step is None

    # -- traffic ------------------------------------------------------------------------------------------------

    def next_transaction(self, height: int, now_ms: int, time_s: int) -> bytes | None:
        """A transaction to submit now (None: nothing this time)."""
        raw = self._governance_step(height, now_ms)
        if raw is not None:
            return raw
        rng, users = self._rng, self._users
        roll = rng.random()
        if roll < 0.6:
            s, r = rng.sample(users, 2)
            kind, actor, op = "transfer", s, Transfer(s, CASH_ASSET, (TransferLeg(r, rng.randint(1, 500)),))
        elif roll < 0.7:
            kind, actor, op = "issue", ADMIN_ACCOUNT, Issue(ADMIN_ACCOUNT, CASH_ASSET, rng.choice(users),
                                                           rng.randint(1, 10_000))
        elif roll < 0.85 or not self._open_holds:
            if len(self._open_holds) >= MAX_OPEN_HOLDS:
                return None
            s, r = rng.sample(users, 2)
            self._hold_seq += 1
            hold = f"h{self._hold_seq}"
            self._open_holds.append(hold)
            kind, actor, op = "hold", s, CreateHold(s, hold, CASH_ASSET, s, r, ADMIN_ACCOUNT, rng.randint(1, 200),
                                                    time_s + 3_600)
        else:
            hold = self._open_holds.pop(rng.randrange(len(self._open_holds)))
            if rng.random() < 0.5:
                kind, actor, op = "hold_execute", ADMIN_ACCOUNT, ExecuteHold(ADMIN_ACCOUNT, hold)
            else:
                kind, actor, op = "hold_release", ADMIN_ACCOUNT, ReleaseHold(ADMIN_ACCOUNT, hold)
        raw, _ = self._sign(actor, op, height, TX_LIFETIME)
        self._count(kind)
        return raw

    def committed(self, tx_id: bytes, code: int) -> None:
        self._committed.setdefault(tx_id, code)

    def _sign(self, actor: str, op: object, height: int, lifetime: int) -> tuple[bytes, bytes]:
        self._nonce += 1
        body = TxBody(1, self._world.genesis.chain_id, (actor,), self._nonce, height + lifetime, (op,))
        tx = sign_transaction(body, [(actor, self._world.accounts[actor])], operations=OPERATIONS)
        return tx.to_bytes(), tx.tx_id

    def _count(self, kind: str) -> None:
        self.submitted_by_kind[kind] = self.submitted_by_kind.get(kind, 0) + 1

