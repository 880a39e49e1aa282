"""node/validator/membership.py: the identity a node connects with across a key rotation, also after a restart.

A node switches its transport identity one block into the epoch that rotated its keys (peers still in the previous
epoch admit only the old key). A node restarted before that block committed must start with the old identity and
switch then, as a running node would -- otherwise peers still in the previous epoch refuse it and, when its vote is
needed there, the chain stalls (the node simulator found it: seed 297 of `ledger simulate --app`)."""

from __future__ import annotations

from types import SimpleNamespace

from ledger.records import ChainParamsRecord, EpochRecord, ValidatorInfo
from node.validator.effects import PeersChanged
from node.validator.keyfile import NodeKeys, rotate_keys
from node.validator.keyring import KeyRing
from node.validator.membership import Membership

PARAMS = ChainParamsRecord(2000, 2_000_000, 2000, 6, 10_000, 500)
OTHERS = [NodeKeys.generate(f"node-{i}", b"membership|%d" % i) for i in (1, 2, 3)]
ME = NodeKeys.generate("node-0", b"membership|0")
ROTATED = rotate_keys(ME, b"membership|rotated")


def _info(keys: NodeKeys) -> ValidatorInfo:
    return ValidatorInfo(keys.node_id, "m", keys.identity_key, keys.bls_public_key, keys.bls_pop(), "", 1)


EPOCH_1 = EpochRecord(1, 10, tuple(_info(k) for k in (ME, *OTHERS)), PARAMS)
EPOCH_2 = EpochRecord(2, 20, tuple(_info(k) for k in (ROTATED, *OTHERS)), PARAMS)  # rotates node-0's keys


def _members(head_height: int, record: EpochRecord = EPOCH_2, previous: EpochRecord = EPOCH_1, *,
             older: tuple[EpochRecord, ...] = (), me: NodeKeys = ME, **kwargs: object) -> Membership:
    ended = {r.epoch: r for r in (*older, previous)}
    epochs = SimpleNamespace(record=record, previous=previous, epoch=record.epoch, before_previous=lambda: None,
                             ended_record=ended.get)
    return Membership(epochs, KeyRing(me, (ROTATED,) if me is ME else ()),  # type: ignore[arg-type]
                      head_height=head_height, peer_addresses={}, peer_keys={}, prospective={},
                      **kwargs)  # type: ignore[arg-type]


def test_a_restart_before_the_rotation_block_keeps_the_old_identity_until_it_commits() -> None:
    members = _members(head_height=19)  # the block ending epoch 1 committed; epoch 2 starts at 20
    assert members.signing_keys is not None and members.signing_keys.bls_secret == ROTATED.bls_secret
    assert members.identity_key == ME.identity_key == members.identity().public_key
    assert members.peers.get("node-0").accepts(ME.identity_key)  # peers of epoch 2 admit both keys
    assert members.committed(20) is None  # start height: peers in epoch 1 may still only admit the old key
    switch = members.committed(21)
    assert isinstance(switch, PeersChanged) and switch.identity is not None
    assert switch.identity.public_key == members.identity_key == ROTATED.identity_key


def test_a_restart_after_the_rotation_block_uses_the_new_identity() -> None:
    members = _members(head_height=21)
    assert members.identity_key == ROTATED.identity_key and members.committed(22) is None


def test_without_a_rotation_the_identity_is_the_records() -> None:
    members = _members(head_height=12, record=EPOCH_1, previous=EpochRecord(0, 1, EPOCH_1.validators, PARAMS))
    assert members.identity_key == ME.identity_key and members.committed(13) is None


def test_a_removed_validator_keeps_the_identity_of_the_last_epoch_that_named_it() -> None:
    removed = EpochRecord(3, 30, tuple(_info(k) for k in OTHERS), PARAMS)
    members = _members(head_height=35, record=removed, previous=EPOCH_2, older=(EPOCH_1,))
    assert members.signing_keys is None and members.role == "removed"
    assert members.identity_key == ROTATED.identity_key  # not the key file's original key


# ---------------------------------------------------------------------------------------------------- full nodes

FULL = NodeKeys.generate("full-a", b"membership|full")
EPOCH_3 = EpochRecord(3, 30, tuple(_info(k) for k in OTHERS), PARAMS)  # node-0 removed
EPOCH_4 = EpochRecord(4, 40, tuple(_info(k) for k in OTHERS), PARAMS)


def test_validators_admit_a_removed_validator_as_a_full_node_after_the_next_epoch_change() -> None:
    me = OTHERS[0]
    # Epoch 3 removed node-0: it is still a peer of the previous epoch (it may finish epoch 2), not a full node.
    in_3 = _members(35, record=EPOCH_3, previous=EPOCH_2, older=(EPOCH_1,), me=me)
    assert in_3.peers.get("node-0") is not None and "node-0" not in in_3.full_peer_ids
    # Epoch 4: node-0 is admitted as a full node with its last identity key, never dialed, never a voting peer.
    in_4 = _members(45, record=EPOCH_4, previous=EPOCH_3, older=(EPOCH_1, EPOCH_2), me=me)
    peer = in_4.peers.get("node-0")
    assert peer is not None and peer.full and peer.address is None and peer.public_key == ROTATED.identity_key
    assert in_4.full_peer_ids == {"node-0"} and "node-0" not in in_4.peer_ids and in_4.role == "validator"


def test_configured_full_nodes_are_admitted_and_reloaded_without_a_restart() -> None:
    me = OTHERS[0]
    members = _members(25, me=me, full_nodes={"full-a": FULL.identity_key})
    assert members.full_peer_ids == {"full-a"} and "full-a" not in members.peer_ids
    assert members.set_full_nodes({"full-a": FULL.identity_key}) is None  # unchanged: no new peer set
    changed = members.set_full_nodes({})
    assert isinstance(changed, PeersChanged) and changed.peers.get("full-a") is None and not members.full_peer_ids


def test_a_full_node_entry_never_demotes_a_validator() -> None:
    me = OTHERS[0]
    members = _members(25, me=me, full_nodes={"node-2": FULL.identity_key, "x": OTHERS[2].identity_key})
    assert not members.full_peer_ids and members.peers.get("node-2").public_key == OTHERS[1].identity_key


def test_a_node_configured_full_never_signs_and_one_never_named_is_full() -> None:
    configured = _members(25, full_only=True)
    assert configured.signing_keys is None and configured.role == "full"
    never = _members(25, me=FULL)
    assert never.signing_keys is None and never.role == "full" and never.identity_key == FULL.identity_key
