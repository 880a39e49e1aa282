"""Where a replica starts: from the committed head, with the safety state the consensus directory allows.

    replica, lost = start_replica(app, safety_store, keys, config, node_id, entropy=os.urandom)

The replica of the head's epoch is anchored at the committed head block and the QC that certifies it, knows the
last REPLICA_HISTORY certified blocks (to answer its peers' consensus-level sync requests) and every epoch-change
proof. A signing replica (keys given) resumes from the stored safety state of its epoch, or starts fresh when the
directory shows nothing was signed in that epoch, or starts with its safety state LOST when the directory was lost
after the node had committed blocks: it then recovers the state within the epoch from a quorum's signed statements,
bound to a nonce drawn here from `entropy` (consensus/recovery.py; docs/consensus.md §10 "Lost safety state", §13;
node/validator/safety_store.py, `safety_decision`). Sound because every signature is preceded by a synced
PersistSafety of the replica's epoch, and the store is marked for an epoch before the block that starts it commits.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Final

from consensus.messages import NONCE_SIZE
from consensus.replica import Replica, ReplicaConfig
from node.chain.application import Application
from node.validator.keyfile import NodeKeys
from node.validator.safety_store import LOST, RESUME, SafetyStore, safety_decision

__all__ = ["REPLICA_HISTORY", "start_replica"]

# Committed blocks handed to a new replica so it can answer its peers' consensus-level sync requests.
REPLICA_HISTORY: Final = 64


def start_replica(app: Application, safety_store: SafetyStore, keys: NodeKeys | None, config: ReplicaConfig,
                  node_id: str, *, entropy: Callable[[int], bytes] = os.urandom) -> tuple[Replica, bool]:
    """A new replica of the head's epoch (an observer when `keys` is None), and whether its safety state is lost
    (then it recovers it: `entropy(32)` is its fresh nonce, never drawn before the loss)."""
    app.forget_speculation()
    head = app.head
    anchor, anchor_qc = app.anchor()
    vs = app.epochs.validator_set
    epoch = vs.epoch
    assert head.height + 1 >= app.epochs.record.start_height
    safety, blocks, lost = None, [], False
    if keys is not None:
        safety, blocks = safety_store.load()
        decision = safety_decision(None if safety is None else safety.epoch, safety_store.epoch_mark(), epoch)
        if decision != RESUME:
            if safety is not None:
                safety_store.begin_epoch(epoch)  # drop the older epoch's state before this replica persists
            safety, blocks, lost = None, [], decision == LOST
    history = [c for h in range(max(1, head.height - REPLICA_HISTORY), head.height)
               if (c := app.certified(h)) is not None]
    replica = Replica(config, vs, me=None if keys is None else node_id.encode(),
                      secret_key=None if keys is None else keys.bls_secret,
                      anchor=anchor, anchor_qc=anchor_qc, safety=safety,
                      stored_blocks=[b for b in blocks if b.header.height > head.height and b.header.epoch == epoch],
                      history=history, verifier=app.bls, epoch_proofs=app.epochs.proofs(),
                      # This node may have signed in this epoch before its safety state was lost (wiped or damaged
                      # consensus directory): it signs nothing until it has recovered a bound from a quorum.
                      safety_lost=lost, recovery_nonce=entropy(NONCE_SIZE) if lost else None)
    return replica, lost
