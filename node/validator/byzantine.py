"""Testnet fault injection: a validator that equivocates (`byzantine = "equivocate"` in a testnet node's config).

    twin(message, bls_secret, chain_id, backend, wall_ms) -> a conflicting message of the same round, signed

Beside each proposal the node also broadcasts a second, conflicting proposal for the same round, and beside each
vote a second vote for another block. Honest validators must detect both as equivocation (evidence) and keep
agreement. Only testnet chains with fault injection enabled accept the mode (node/validator/node.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging

from consensus.bls import BlsBackend
from consensus.messages import Block, Proposal, Vote, payload_hash, proposal_message, vote_message
from node.chain.payload import encode_payload

__all__ = ["BYZANTINE_MODES", "twin"]

log = logging.getLogger("node.validator.byzantine")

# "corrupt_chunks": the snapshot chunks this node serves carry a flipped byte (node/chain/snapshots.py).
BYZANTINE_MODES = frozenset({"equivocate", "corrupt_chunks"})


def twin(message: Proposal | Vote, bls_secret: bytes, chain_id: bytes, backend: BlsBackend,
         wall_ms: int) -> Proposal | Vote:
    if isinstance(message, Proposal):
        payload = encode_payload(wall_ms + 1, [])
        header = dataclasses.replace(message.block.header, payload_hash=payload_hash(payload))
        block = Block(header, payload)
        signature = backend.sign(bls_secret, proposal_message(chain_id, header.epoch, header.round, block.id))
        log.warning("byzantine_equivocation round=%d kind=proposal", header.round)
        return Proposal(block, message.tc, signature)
    other = hashlib.sha256(b"twin" + message.block_id).digest()
    signature = backend.sign(bls_secret, vote_message(chain_id, message.epoch, message.round, other,
                                                      message.state_root))
    log.warning("byzantine_equivocation round=%d kind=vote", message.round)
    return Vote(message.epoch, message.round, other, message.state_root, message.voter, signature)
