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


def _members(head_height: int, record: EpochRecord = EPOCH_2, previous: EpochRecord = EPOCH_1) -> Membership:
    epochs = SimpleNamespace(record=record, previous=previous, epoch=record.epoch, before_previous=lambda: None)
    return Membership(epochs, KeyRing(ME, (ROTATED,)), head_height=head_height,  # type: ignore[arg-type]
                      peer_addresses={}, peer_keys={}, prospective={})


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


def test_an_observer_keeps_the_identity_of_the_last_epoch_that_named_it() -> None:
    removed = EpochRecord(3, 30, tuple(_info(k) for k in OTHERS), PARAMS)
    members = _members(head_height=35, record=removed, previous=EPOCH_2)
    assert members.signing_keys is None and members.role == "observer"
    assert members.identity_key == ROTATED.identity_key  # not the key file's original key
