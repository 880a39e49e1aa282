"""This validator's place among its peers: its keys and peers in the current epoch, and what the peers report.

    members = Membership(epochs, keyring, peer_addresses=..., peer_keys=..., prospective=...)
    members.signing_keys / members.peers / members.peer_ids / members.power / members.identity_key
    effects = members.enter_epoch(switch, prospective)      after an epoch-ending block committed
    effect = members.refresh_prospective(fresh)             after governance opened or closed a proposal
    effect = members.committed(height)                      a pending identity switch may be due

    reports = PeerReports(genesis_hash)
    reports.status(peer, status, now_ms) -> bool            False: the peer runs another chain
    reports.target_height(power, weak_power, now_ms)        the height f+1 voting power reports

Keys (node/validator/keyring.py): in each epoch the node signs with the BLS key and connects with the identity key
that the EpochRecord names for it. A rotated identity is adopted one block into the epoch that names it (peers
still in the old epoch admit only the old key), or at once when that epoch ended with its first block. Peers
(node/net/peers.py): the validators of this epoch and the previous one, configured keys, and the prospective
validators that open add_validator proposals name (admitted, not dialed, no voting power), and full nodes: the
ones the operator lists (`[p2p.full_nodes]`, reloadable while the node runs: `set_full_nodes`) and the validators of
older epochs that were removed since (so a removed validator keeps following with no restart). A full node is
admitted, never dialed, gets no consensus message and its consensus messages are refused.

Roles (`role`): "validator" signs in the current epoch; "removed" does not but did in an earlier one; "full" never
did, or is configured `role = "full"` (it never signs, even where the validator set names its keys).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from ledger.records import EpochRecord
from node.chain.epochs import Epochs, EpochSwitch
from node.chain.genesis import GenesisError, parse_address
from node.net.handshake import PeerSet
from node.net.messages import Status
from node.net.peers import epoch_peer_set
from node.validator.effects import PeersChanged
from node.validator.keyfile import NodeKeys
from node.validator.keyring import KeyRing

__all__ = ["MAX_BAD_GENESIS_PEERS", "MAX_FORMER_EPOCHS", "MAX_FULL_NODE_PEERS", "STATUS_FRESH_MS", "Membership",
           "PeerReports"]

log = logging.getLogger("node.validator.membership")

# A peer's reported height counts while its last STATUS is younger than this.
STATUS_FRESH_MS: Final = 10_000
# Full nodes admitted at most (configured ones first, then validators removed in earlier epochs, newest first).
MAX_FULL_NODE_PEERS: Final = 64
# How many ended epochs back the removed validators admitted as full nodes (and this node's own past) are looked for.
MAX_FORMER_EPOCHS: Final = 256
# Peers whose STATUS named another genesis, remembered at most.
MAX_BAD_GENESIS_PEERS: Final = 1024


class Membership:
    def __init__(self, epochs: Epochs, keyring: KeyRing, *, head_height: int,
                 peer_addresses: Mapping[str, tuple[str, int]], peer_keys: Mapping[str, bytes],
                 prospective: Mapping[str, bytes], full_nodes: Mapping[str, bytes] | None = None,
                 full_only: bool = False) -> None:
        """`head_height`: the committed head (a restart inside a rotation's first block keeps the old identity).
        `full_nodes`: node id -> identity key of the full nodes the operator admits. `full_only`: this node is
        configured as a full node: it never signs."""
        self._epochs = epochs
        self.full_only = full_only
        self._configured_full = dict(full_nodes or {})
        self.keyring = keyring
        self.node_id = keyring.node_id
        self._peer_addresses = dict(peer_addresses)
        self._peer_keys = dict(peer_keys)
        self._prospective = dict(prospective)
        record = epochs.record
        self._former, self._was_validator = self._scan_past()
        self.signing_keys: NodeKeys | None = None if full_only else keyring.for_epoch(record)
        if not full_only and keyring.entry(record) is not None and self.signing_keys is None:
            raise ValueError(f"the keys of {self.node_id!r} do not match its entry in the validator set of epoch "
                             f"{record.epoch} (key file and next keys)")
        self.peers: PeerSet = self._peer_set()
        self.peer_ids: list[str] = self._voting_peer_ids()
        self.power = self._power_of(record)
        # (identity, height): a rotated transport identity to adopt once that height commits.
        self._pending_identity: tuple[Any, int] | None = None
        # The identity the transport uses (the host creates it with `identity()`).
        self._identity = self._initial_identity(head_height)
        self.identity_key: bytes = self._identity.public_key

    @property
    def role(self) -> str:
        """"validator" when this node signs in the current epoch; "removed" when it did in an earlier one (and
        follows now); "full" otherwise (a full node, or a validator-to-be before its epoch)."""
        if self.signing_keys is not None:
            return "validator"
        return "removed" if self._was_validator and not self.full_only else "full"

    @property
    def full_peer_ids(self) -> frozenset[str]:
        """The peers admitted as full nodes (they never vote; their consensus messages are refused)."""
        return frozenset(p.node_id for p in self.peers.peers if p.full)

    def followers(self) -> list[str]:
        """The peers that are neither full nodes nor validators of the current epoch: prospective validators and
        validators of the epoch just ended (they follow by block sync too, but get consensus messages and gossip)."""
        current = {v.node_id for v in self._epochs.record.validators}
        return sorted(p.node_id for p in self.peers.peers
                      if not p.full and p.node_id not in current and p.node_id != self.node_id)

    def set_full_nodes(self, full_nodes: Mapping[str, bytes]) -> PeersChanged | None:
        """The operator's full nodes changed (config reloaded): the new peer set, or None when nothing changed."""
        fresh = dict(full_nodes)
        if fresh == self._configured_full:
            return None
        self._configured_full = fresh
        self.peers = self._peer_set()
        self.peer_ids = self._voting_peer_ids()
        log.info("full_nodes_admitted node=%s full_nodes=%s", self.node_id, ",".join(sorted(fresh)) or "-")
        return PeersChanged(self.peers)

    def _scan_past(self) -> tuple[dict[str, bytes], bool]:
        """The validators of ended epochs (older than the previous one) that the current and previous epochs no
        longer name, with their last identity key, newest first (at most MAX_FULL_NODE_PEERS); and whether this
        node was a validator in an ended epoch (at most MAX_FORMER_EPOCHS back)."""
        epochs = self._epochs
        named = {v.node_id for v in epochs.record.validators}
        former: dict[str, bytes] = {}
        was = False
        for epoch in range(epochs.epoch - 1, max(-1, epochs.epoch - 1 - MAX_FORMER_EPOCHS), -1):
            rec = epochs.ended_record(epoch)
            if rec is None:
                break
            if epoch == epochs.epoch - 1:
                named |= {v.node_id for v in rec.validators}
            was = was or self.keyring.entry(rec) is not None
            for v in rec.validators:
                if v.node_id not in named and v.node_id not in former and len(former) < MAX_FULL_NODE_PEERS:
                    former[v.node_id] = v.identity_key
        return former, was

    def identity(self) -> Any:
        """The transport identity this node uses now."""
        return self._identity

    def _initial_identity(self, head_height: int) -> Any:
        """The identity to start with: the one the record names, except in the first block of an epoch that rotated
        it (peers still in the previous epoch admit only the old key: switch once that block commits, as a running
        node would); an observer keeps the identity of the last epoch that named it."""
        record, previous = self._epochs.record, self._epochs.previous
        old = None if previous is None else self.keyring.for_epoch(previous)
        current = self.signing_keys
        if current is None:
            return (old or self.keyring.keys).identity()
        own = self.peers.get(self.node_id)
        if (old is not None and old.identity_key != current.identity_key and head_height < record.start_height + 1
                and own is not None and own.accepts(old.identity_key)):
            self._pending_identity = (current.identity(), record.start_height + 1)
            return old.identity()
        return current.identity()

    def is_member(self, record: EpochRecord) -> bool:
        return self.keyring.entry(record) is not None

    def enter_epoch(self, switch: EpochSwitch, prospective: Mapping[str, bytes]) -> list[PeersChanged]:
        """The epoch `switch.started` began: this node's keys, peers and identity in it."""
        rec = switch.started
        was = self.signing_keys
        self._prospective = dict(prospective)
        self._former, self._was_validator = self._scan_past()
        self.signing_keys = None if self.full_only else self.keyring.for_epoch(rec)
        if not self.full_only and self.keyring.entry(rec) is not None and self.signing_keys is None:
            self.keyring.refresh()
            self.signing_keys = self.keyring.for_epoch(rec)
        if not self.full_only and self.keyring.entry(rec) is not None and self.signing_keys is None:
            log.error("epoch_keys_missing node=%s epoch=%d: the validator set names keys for this node that neither "
                      "the key file nor the next keys hold; it follows as an observer", self.node_id, rec.epoch)
        self.power = self._power_of(rec)
        self.peers = self._peer_set()
        self.peer_ids = self._voting_peer_ids()
        joined = [v.node_id for v in rec.validators if v.node_id not in {w.node_id for w in switch.ended.validators}]
        left = [v.node_id for v in switch.ended.validators if v.node_id not in {w.node_id for w in rec.validators}]
        log.info("epoch_started node=%s epoch=%d start_height=%d validators=%d joined=%s left=%s role=%s%s",
                 self.node_id, rec.epoch, rec.start_height, len(rec.validators), ",".join(joined) or "-",
                 ",".join(left) or "-", self.role,
                 " keys_rotated" if was is not None and self.signing_keys is not None and was != self.signing_keys
                 else "")
        if self.signing_keys is None and was is not None:
            log.warning("validator_removed node=%s epoch=%d: not in the new validator set; following as a full node "
                        "(signs nothing)", self.node_id, rec.epoch)
        return [self._switch_identity(rec)]

    def _switch_identity(self, rec: EpochRecord) -> PeersChanged:
        # An observer (removed, or holding no keys the set names) keeps the identity it has: after a rotation that
        # is the rotated key its peers know, not the one of the original key file.
        identity = None if self.signing_keys is None else self.signing_keys.identity()
        self._pending_identity = None
        own = self.peers.get(self.node_id)
        if identity is None or identity.public_key == self.identity_key:
            return PeersChanged(self.peers)
        if own is not None and own.accepts(self.identity_key):
            # Peers admit both our keys during this epoch, but peers still in the old one only the old key: keep it
            # until a quorum of the new epoch has certified a block (then enough peers have switched to tell the
            # others about the epoch change), then reconnect with the new one.
            self._pending_identity = (identity, rec.start_height + 1)
            return PeersChanged(self.peers)
        # The epoch that rotated our key ended before we switched (it lasted one block): peers of this epoch no
        # longer admit the old key, while peers still in the previous one admit both. Switch now.
        log.info("identity_rotated node=%s epoch=%d: reconnecting with the new identity key at once",
                 self.node_id, rec.epoch)
        self._identity = identity
        self.identity_key = identity.public_key
        return PeersChanged(self.peers, identity)

    def committed(self, height: int) -> PeersChanged | None:
        """A block committed: reconnect under a rotated identity once its height is reached."""
        if self._pending_identity is None or height < self._pending_identity[1]:
            return None
        identity = self._pending_identity[0]
        self._pending_identity = None
        log.info("identity_rotated node=%s epoch=%d height=%d: reconnecting with the new identity key",
                 self.node_id, self._epochs.epoch, height)
        self._identity = identity
        self.identity_key = identity.public_key
        return PeersChanged(self.peers, identity)

    def refresh_prospective(self, fresh: Mapping[str, bytes]) -> PeersChanged | None:
        """The prospective validators now; the new peer set if they changed."""
        if dict(fresh) == self._prospective:
            return None
        self._prospective = dict(fresh)
        self.peers = self._peer_set()
        log.info("prospective_peers node=%s peers=%s", self.node_id, ",".join(sorted(fresh)) or "-")
        return PeersChanged(self.peers)

    def _power_of(self, record: EpochRecord) -> dict[str, int]:
        return {v.node_id: v.power for v in record.validators if v.node_id != self.node_id}

    def _peer_set(self) -> PeerSet:
        epochs = self._epochs
        return epoch_peer_set(epochs.record, epochs.previous, epochs.before_previous(), own_id=self.node_id,
                              configured=self._peer_keys, prospective=self._prospective,
                              address_of=self._address_of, full_nodes=self._full_nodes())

    def _full_nodes(self) -> dict[str, bytes]:
        full = dict(list(self._configured_full.items())[:MAX_FULL_NODE_PEERS])
        for node_id, key in self._former.items():
            if len(full) >= MAX_FULL_NODE_PEERS:
                break
            full.setdefault(node_id, key)
        return full

    def _voting_peer_ids(self) -> list[str]:
        return sorted(p.node_id for p in self.peers.peers
                      if p.node_id != self.node_id and p.node_id not in self._prospective and not p.full)

    def _address_of(self, node_id: str, address: str) -> tuple[str, int] | None:
        override = self._peer_addresses.get(node_id)
        if override is not None:
            return override
        if not address:
            return None
        try:
            return parse_address(address)
        except GenesisError:
            log.warning("peer_address_invalid peer=%s address=%r", node_id, address)
            return None


class PeerReports:
    """The heights peers report in STATUS, and the peers that run another chain."""

    def __init__(self, genesis_hash: bytes) -> None:
        self._genesis_hash = genesis_hash
        self.heights: dict[str, tuple[int, int]] = {}  # peer -> (height, monotonic ms when reported)
        self.mismatched: set[str] = set()

    def status(self, peer: str, status: Status, now_ms: int) -> bool:
        """Record a STATUS; False (and remembered) when it names another genesis."""
        if status.genesis_hash != self._genesis_hash:
            if peer not in self.mismatched:
                log.error("genesis_mismatch peer=%s peer_genesis=%s our_genesis=%s: the peer runs another chain; "
                          "its messages are ignored", peer, status.genesis_hash.hex(), self._genesis_hash.hex())
                if len(self.mismatched) < MAX_BAD_GENESIS_PEERS:
                    self.mismatched.add(peer)
            return False
        self.mismatched.discard(peer)
        self.heights[peer] = (status.height, now_ms)
        return True

    def keep_only(self, peers: PeerSet) -> None:
        for peer in [p for p in self.heights if p not in peers]:
            del self.heights[peer]

    def fresh(self, now_ms: int) -> list[tuple[int, str]]:
        return [(h, p) for p, (h, seen) in self.heights.items()
                if now_ms - seen < STATUS_FRESH_MS and p not in self.mismatched]

    def best_height(self, now_ms: int) -> int:
        """The highest height any peer claims (one peer's word: informational, never a reason to act)."""
        return max((h for h, _ in self.fresh(now_ms)), default=0)

    def target_height(self, power: Mapping[str, int], weak_power: int, now_ms: int) -> int:
        """The highest height reported by peers holding at least f + 1 voting power together (with equal powers:
        the (f+1)-th highest report). At most f power lies, so some honest validator has reached this height."""
        total = 0
        for height, peer in sorted(self.fresh(now_ms), reverse=True):
            total += power.get(peer, 0)
            if total >= weak_power:
                return height
        return 0
