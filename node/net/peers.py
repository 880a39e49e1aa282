"""Who a node talks to in an epoch: the peer set built from the epoch records (pure: no I/O).

    peers = epoch_peer_set(record, previous, before_previous, own_id=..., configured={...}, prospective={...},
                           address_of=...)

The set holds the validators of the current epoch and of the one just ended (a removed validator can finish that
epoch and follow the next one as an observer; it is disconnected at the following change). A validator whose
identity key rotated at this epoch change is admitted with its previous key too: a node switches identity one block
into the epoch that names its new key, so it may not have switched yet (and when that epoch lasted a single block,
the key of the epoch before it may still be in use). Keys the operator configured (`[p2p.peers] id = "key@host:port"`)
are admitted as well, so a node far behind or joining reaches peers whose rotation or addition it has not applied.
Prospective validators -- nodes that open add_validator proposals name -- are admitted without being dialed (they
dial us) and without voting power, so a joining node can sync before its epoch begins.
Full nodes (`full_nodes`: the operator's `[p2p.full_nodes]` and the validators of older epochs, removed since) are
admitted last, flagged `full`, never dialed: they follow by block sync, get no consensus message nor gossip, and
what they send on the consensus channel is refused (docs/operations.md, "Node roles").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ledger.records import EpochRecord
from node.net.handshake import Peer, PeerSet

__all__ = ["epoch_peer_set"]


def epoch_peer_set(record: EpochRecord, previous: EpochRecord | None, before_previous: EpochRecord | None, *,
                   own_id: str, configured: Mapping[str, bytes], prospective: Mapping[str, bytes],
                   address_of: Callable[[str, str], tuple[str, int] | None],
                   full_nodes: Mapping[str, bytes] | None = None) -> PeerSet:
    """`address_of(node_id, ledger_address)`: where to dial a peer (None: never dial it). `full_nodes`: node id ->
    identity key of the full nodes to admit (an id or a key already in the set is skipped: a validator is never
    demoted by a full-node entry)."""
    old = {} if previous is None else {v.node_id: v for v in previous.validators}
    older = {} if before_previous is None else {v.node_id: v for v in before_previous.validators}
    peers: dict[str, Peer] = {}
    keys_seen: set[bytes] = set()
    current_keys = {v.identity_key for v in record.validators}
    for v in record.validators:
        # A previous key that another validator now holds (one proposal moved it) is not admitted twice.
        candidates = [r.identity_key for r in (old.get(v.node_id), older.get(v.node_id)) if r is not None]
        previous_key = next((k for k in candidates if k not in current_keys), None)
        peers[v.node_id] = Peer(v.node_id, v.identity_key, address_of(v.node_id, v.address), previous_key)
    for peer in peers.values():
        keys_seen.update(peer.identity_keys())
    for v in old.values():
        if v.node_id not in peers and v.identity_key not in keys_seen:
            peers[v.node_id] = Peer(v.node_id, v.identity_key, address_of(v.node_id, v.address))
            keys_seen.add(v.identity_key)
    for node_id, key in sorted(configured.items()):
        if node_id == own_id or key in keys_seen:
            continue
        known = peers.get(node_id)
        if known is None:
            peers[node_id] = Peer(node_id, key, address_of(node_id, ""))
        else:
            if known.previous_key is not None:
                keys_seen.discard(known.previous_key)
            peers[node_id] = Peer(node_id, key, known.address, known.public_key)
        keys_seen.add(key)
    for node_id, key in sorted(prospective.items()):
        if node_id != own_id and node_id not in peers and key not in keys_seen:
            peers[node_id] = Peer(node_id, key, None)  # it dials us; we never dial it
            keys_seen.add(key)
    for node_id, key in sorted((full_nodes or {}).items()):
        if node_id != own_id and node_id not in peers and key not in keys_seen:
            peers[node_id] = Peer(node_id, key, None, full=True)  # it dials us; we never dial it
            keys_seen.add(key)
    return PeerSet.of(peers.values())
