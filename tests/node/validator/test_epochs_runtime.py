"""Epoch changes in running nodes (issue 8, docs/consensus.md §10), in one process over loopback TCP.

Four genesis validators with one governor account per member (3 of 4 approvals) and a fifth node that is not in the
genesis file. While transfers keep committing: (a) a proposal adds member m4 and its validator node-4, which had
started from genesis as an observer, caught up, and then signs (its bit appears in QCs); (b) a proposal removes
node-3, which then follows as an observer and signs nothing; (c) a proposal rotates node-1's identity and BLS keys,
prepared with `rotate_keys` and handed to the node as next keys; (d) a validator restarted after the changes
resumes in the current epoch and keeps signing; all nodes end with the same state roots, and the stored epoch
proofs lead from the genesis set to the current one. (e) A node that was never online applies the chain by block
sync across the three boundaries, each certificate checked with the set of the state below it, and refuses a
certificate for a block of the rotation epoch signed with the rotated-away key.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import random
import shutil
from collections.abc import AsyncIterator

import pytest

from consensus.certificates import verify_epoch_chain
from consensus.messages import CommitCertificate, QuorumCert, decode_block, vote_message
from consensus.validators import bitmap_indexes
from ledger.events import decode_receipt
from ledger.operations import (
    AddMember,
    AddValidator,
    Approve,
    Propose,
    RemoveValidator,
    RotateValidatorKeys,
    Transfer,
    TransferLeg,
)
from ledger.records import ChainParamsRecord, EpochRecord, ValidatorInfo
from ledger.transaction import TxBody, sign_transaction
from node.chain.certified import cert_key, epoch_proof_key
from node.chain.execution import Executor
from node.chain.genesis import ChainParams, load_genesis, write_genesis
from node.chain.protocol import OPERATIONS
from node.chain.sigverify import Ed25519Verifier
from node.tools.localnet import CASH_ASSET, generate_network, load_accounts
from node.validator.keyfile import NodeKeys, load_keys, load_next_keys, next_keys_path, rotate_keys, write_keys
from node.validator.node import ValidatorNode
from tests.node.tools.cluster import free_ports

PARAMS = ChainParams(base_timeout_ms=1000, empty_block_interval_ms=50, max_backoff_exponent=2)
SEED = b"epochs"


@pytest.fixture(scope="module")
def sig_verifier():
    v = Ed25519Verifier(workers=0)
    yield v
    v.close()


class _GovernedNet:
    """A 4-validator genesis (loopback ports) with governor accounts gov@m0..gov@m3 and a spare fifth node."""

    def __init__(self, tmp_path, chain_id: str) -> None:
        self.tmp_path = tmp_path
        self.ports = free_ports(6)
        layout = generate_network(str(tmp_path / "net"), 4, chain_id=chain_id, seed=SEED, base_port=self.ports[0],
                                  params=PARAMS, genesis_time=1_700_000_000, users=8, governors=True,
                                  spare_nodes=1)
        with open(layout.genesis_path, encoding="utf-8") as f:
            doc = json.load(f)
        for i, v in enumerate(doc["validators"]):
            v["address"] = f"127.0.0.1:{self.ports[i]}"
        write_genesis(layout.genesis_path, doc)
        self.accounts = load_accounts(layout.accounts_path)
        assert {f"gov@m{i}" for i in range(4)} <= set(self.accounts)
        self.genesis = load_genesis(layout.genesis_path)
        assert self.genesis.validator("node-4") is None
        self.chain_id = self.genesis.chain_id
        self.key_files = [os.path.join(os.path.dirname(p), "node_keys.json")
                          for p in layout.config_paths + layout.spare_config_paths]
        self.keys = [load_keys(path) for path in self.key_files]
        assert [k.node_id for k in self.keys] == [f"node-{i}" for i in range(5)]
        self.rotated = rotate_keys(self.keys[1], SEED + b"|node-1|rotated")
        self.users = sorted(a for a in self.accounts if a.startswith("user-"))
        self.nonce = 0

    def validator(self, i: int, sig_verifier, data: str | None = None, never_signed: bool = True) -> ValidatorNode:
        """Validator i as `ledger node run` builds it: next keys from beside its key file, now and at epoch changes.
        `never_signed=False`: its data directory was wiped (the marker beside its key file is gone)."""
        return ValidatorNode(self.genesis, self.keys[i], str(self.tmp_path / (data or f"d{i}")),
                             listen=("127.0.0.1", self.ports[i]), sig_verifier=sig_verifier,
                             next_keys=load_next_keys(self.key_files[i]),
                             load_next_keys=functools.partial(load_next_keys, self.key_files[i]),
                             never_signed=never_signed)

    def _tx(self, actor: str, op: object, expiry: int = 5_000) -> bytes:
        self.nonce += 1
        body = TxBody(1, self.chain_id, (actor,), self.nonce, expiry, (op,))
        return sign_transaction(body, [(actor, self.accounts[actor])], operations=OPERATIONS).to_bytes()

    def transfer(self) -> bytes:
        k = self.nonce % len(self.users)
        s, r = self.users[k], self.users[(k + 1) % len(self.users)]
        return self._tx(s, Transfer(s, CASH_ASSET, (TransferLeg(r, 1),)))

    async def govern(self, node: ValidatorNode, proposal_id: str, actions: tuple, before_last=None) -> int:
        """Propose (gov@m0) and approve (gov@m1, gov@m2) through `node`; the height the proposal executed at.
        `before_last()` runs before the approval that executes it."""
        height = 0
        for actor, op in (("gov@m0", Propose("gov@m0", proposal_id, actions, 5_000)),
                          ("gov@m1", Approve("gov@m1", proposal_id)), ("gov@m2", Approve("gov@m2", proposal_id))):
            if actor == "gov@m2" and before_last is not None:
                before_last()
            tx_id, code, message = await _admit(node, self._tx(actor, op))
            assert code == 0, message
            height = await _committed(node, tx_id)
        return height


async def _committed(node: ValidatorNode, tx_id: bytes, timeout: float = 60.0) -> int:
    for _ in range(int(timeout / 0.05)):
        found = node.app.store.get_tx(tx_id)
        if found is not None:
            receipt = decode_receipt(node.app.store.get_receipt(tx_id), operations=OPERATIONS)
            assert receipt.code == 0, receipt
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"transaction {tx_id.hex()[:16]} not committed at {node.node_id}: {node.view.status()}")


_NODES: list = []


async def _admit(node: ValidatorNode, raw: bytes) -> tuple[bytes, int, str]:
    """Submit one transaction as a client would: (tx_id, code, message)."""
    (result,) = await node.submit_many([raw])
    return result.tx_id, result.code, result.message


def _import(node: ValidatorNode, items: list[list[bytes]]) -> None:
    """Commit certified blocks through the node's one commit path, as block sync does; raise on a refusal."""
    for block_raw, cert_raw in items:
        refused = node.driver.import_certified(decode_block(block_raw), CommitCertificate.decode(cert_raw))
        if refused is not None:
            raise ValueError(refused)


async def _until(predicate, what: str, timeout: float = 60.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    states = [{k: n.view.status()[k] for k in ("node_id", "mode", "height", "epoch", "role", "round", "peers_connected")}
              | {"replica_epoch": None if n.driver.replica is None else n.driver.replica.vs.epoch,
                 "retired": n.driver.replica is not None and n.driver.replica.retired,
                 "learned": n.driver.replica is not None and bool(n.driver.replica.learned_epoch_change),
                 "counters": None if n.driver.replica is None else {k: v for k, v in n.driver.replica.counters.items()
                                                             if "epoch" in k or "retired" in k}}
              for n in _NODES if n is not None]
    raise AssertionError(f"timed out waiting for {what}: {states}")


def _qc_signers(node: ValidatorNode, lo: int, hi: int, index: int) -> int:
    """How many commit certificates of heights lo..hi carry a QC signed by validator `index` of their epoch."""
    count = 0
    for h in range(lo, hi + 1):
        raw = node.app.store.get_extra(cert_key(h))
        if raw is None:
            continue
        cert = CommitCertificate.decode(raw)
        for qc in (cert.headers[1].qc, cert.qc):
            if qc.signers and index in bitmap_indexes(qc.signers):
                count += 1
    return count


def _proposed_by(node: ValidatorNode, lo: int, hi: int, index: int) -> int:
    return sum(1 for h in range(lo, hi + 1)
               if (raw := node.app.store.get_block(h)) is not None and decode_block(raw).header.proposer == index)


def test_add_remove_rotate_restart_and_sync_across_epochs(tmp_path, sig_verifier) -> None:
    net = _GovernedNet(tmp_path, "testnet-epochs")

    async def run() -> None:
        nodes: list[ValidatorNode | None] = [net.validator(i, sig_verifier) for i in range(4)]
        # node-4 is in no genesis record: it starts from genesis, dials the genesis validators and follows.
        joiner = ValidatorNode(net.genesis, net.keys[4], str(tmp_path / "d4"), listen=("127.0.0.1", net.ports[4]),
                               sig_verifier=sig_verifier, never_signed=True)
        assert joiner.driver.role == "full" and joiner.app.epochs.validator_set.epoch == 0
        nodes.append(joiner)
        _NODES[:] = nodes
        for node in nodes:
            await node.start()
        submitted: list[bytes] = []
        stop_load = asyncio.Event()

        async def load() -> None:
            rng = random.Random(7)
            while not stop_load.is_set():
                node = nodes[rng.choice((0, 1))]
                if node is not None:
                    tx_id, code, _ = await _admit(node, net.transfer())
                    if code == 0:
                        submitted.append(tx_id)
                await asyncio.sleep(0.1)

        load_task = asyncio.create_task(load())
        try:
            n0 = nodes[0]
            assert all([await node.wait_for_height(3, 60) for node in nodes[:4]])

            # (a) add member m4 and its validator node-4 (it has been following from genesis as an observer)
            k4 = net.keys[4]
            end0 = await net.govern(n0, "add-m4", (
                AddMember("m4", "Member 4", False),
                AddValidator("node-4", "m4", k4.identity_key, k4.bls_public_key, k4.bls_pop(),
                             f"127.0.0.1:{net.ports[4]}", 1)))
            await _until(lambda: all(n.app.epochs.validator_set.epoch == 1 for n in nodes), "epoch 1 everywhere")
            assert n0.app.store.get_extra(epoch_proof_key(0)) is not None
            assert joiner.driver.role == "validator" and len(joiner.app.epochs.validator_set) == 5
            start1 = end0 + 1
            await _until(lambda: joiner.app.head.height > start1 + 8
                         and (_qc_signers(n0, start1, n0.app.head.height, 4) > 0
                              or _proposed_by(n0, start1, n0.app.head.height, 4) > 0),
                         "node-4 signing in epoch 1")
            assert joiner.fatal is None and not joiner.view.status()["safety_lost"]

            # (b) remove node-3: the others continue, node-3 follows as an observer
            end1 = await net.govern(n0, "remove-node-3", (RemoveValidator("node-3"),))
            await _until(lambda: all(n.app.epochs.validator_set.epoch == 2 for n in nodes), "epoch 2 everywhere")
            assert nodes[3].driver.role == "removed" and len(n0.app.epochs.validator_set) == 4
            assert b"node-3" not in n0.app.epochs.validator_set.index_of
            await _until(lambda: nodes[3].app.head.height > end1 + 5, "node-3 following in epoch 2")

            # (c) rotate node-1's keys: next keys written beside its key file while it runs (`ledger keys rotate`)
            r = net.rotated
            write_keys(next_keys_path(net.key_files[1]), r)
            end2 = await net.govern(n0, "rotate-node-1", (
                RotateValidatorKeys("node-1", r.identity_key, r.bls_public_key, r.bls_pop()),))
            await _until(lambda: all(n.app.epochs.validator_set.epoch == 3 for n in nodes if n is not nodes[3]), "epoch 3")
            n1 = nodes[1]
            assert n1.driver.members.signing_keys is not None and n1.driver.members.signing_keys.bls_secret == r.bls_secret
            # Its transport identity switches once a quorum of epoch 3 has certified a block; it reconnects.
            await _until(lambda: n1.transport.identity_key == r.identity_key
                         and len(n1.transport.connected_peers()) >= 3, "node-1 reconnected with its new identity")
            idx1 = n0.app.epochs.validator_set.index_of[b"node-1"]
            assert n0.app.epochs.validator_set.validators[idx1].public_key == r.bls_public_key
            start3 = end2 + 1
            await _until(lambda: _qc_signers(n0, start3, n0.app.head.height, idx1) > 0
                         or _proposed_by(n0, start3, n0.app.head.height, idx1) > 0,
                         "node-1 signing with its rotated key")

            # (d) restart node-2 in epoch 3: it resumes in that epoch with its stored safety state and signs
            idx2 = n0.app.epochs.validator_set.index_of[b"node-2"]
            await nodes[2].stop()
            nodes[2] = None
            restarted = net.validator(2, sig_verifier)
            assert restarted.app.epochs.validator_set.epoch == 3 and restarted.driver.role == "validator"
            await restarted.start()
            nodes[2] = restarted
            _NODES[:] = nodes
            back = n0.app.head.height
            await _until(lambda: restarted.driver.replica is not None and restarted.app.head.height > back + 3,
                         "restarted node-2 following")
            assert restarted.driver.replica.vs.epoch == 3 and not restarted.driver.replica.safety_lost
            await _until(lambda: _qc_signers(n0, back + 1, n0.app.head.height, idx2) > 0
                         or _proposed_by(n0, back + 1, n0.app.head.height, idx2) > 0,
                         "restarted node-2 signing")

            # Transactions committed throughout: in every epoch, and every one submitted.
            stop_load.set()
            await load_task
            for tx_id in submitted:
                await _committed(n0, tx_id)
            heights = sorted(n0.app.store.get_tx(t)[0] for t in submitted)
            for lo, hi in ((1, end0), (end0 + 1, end1), (end1 + 1, end2), (end2 + 1, heights[-1])):
                assert any(lo <= h <= hi for h in heights), (lo, hi)

            # Same chain everywhere; the proofs lead from the genesis set to the current one.
            live = [n for n in nodes if n is not None]
            common = min(n.app.head.height for n in live)
            for h in range(common + 1):
                roots = {n.app.store.state_root_at(h) for n in live}
                assert len(roots) == 1, h
            proofs = n0.app.epochs.proofs()
            assert [p.epoch for p in proofs] == [0, 1, 2]
            reached = verify_epoch_chain(net.genesis.validator_set(), proofs, chain_id=net.genesis.consensus_chain_id)
            assert reached.digest == n0.app.epochs.validator_set.digest
            assert all(n.fatal is None for n in live)
            top = n0.app.head.height
        finally:
            stop_load.set()
            load_task.cancel()
            for node in nodes:
                if node is not None:
                    await node.stop()

        # (e) a node never online applies the chain by block sync, switching sets at the epoch-ending blocks.
        source = net.validator(0, sig_verifier)
        follower = ValidatorNode(net.genesis, NodeKeys.generate("auditor-0", SEED + b"|auditor"),
                             str(tmp_path / "fresh"), sig_verifier=sig_verifier)
        try:
            def items(lo: int, hi: int) -> list[list[bytes]]:
                return [[source.app.store.get_block(h), source.app.store.get_extra(cert_key(h))] for h in range(lo, hi + 1)]

            _import(follower, items(1, start3 + 1))
            assert follower.app.epochs.validator_set.epoch == 3 and follower.app.head.height == start3 + 1
            # A certificate for the next block signed with node-1's rotated-away key does not verify in epoch 3.
            block_raw, cert_raw = items(start3 + 2, start3 + 2)[0]
            cert = CommitCertificate.decode(cert_raw)
            q = cert.qc
            backend = follower.app.bls.backend
            msg = vote_message(net.genesis.consensus_chain_id, q.epoch, q.round, q.block_id, q.state_root)
            signers = [n0.app.epochs.validator_set.index_of[b"node-0"], idx1, idx2]
            secrets = [net.keys[0].bls_secret, net.keys[1].bls_secret, net.keys[2].bls_secret]
            forged = QuorumCert(q.epoch, q.round, q.block_id, q.state_root, follower.app.epochs.validator_set.bitmap(signers),
                                backend.aggregate([backend.sign(sk, msg) for sk in secrets]))
            bad = CommitCertificate(cert.headers, forged)
            with pytest.raises(ValueError, match="certificate at"):
                _import(follower, [[block_raw, bad.encode()]])
            assert follower.app.head.height == start3 + 1
            _import(follower, items(start3 + 2, top))
            assert follower.app.head.height == top
            assert follower.app.store.state_root_at(top) == source.app.store.state_root_at(top)
            assert [p.encode() for p in follower.app.epochs.proofs()] == [p.encode() for p in source.app.epochs.proofs()]
            assert follower.driver.role == "full" and follower.app.epochs.validator_set.digest == source.app.epochs.validator_set.digest
            # A custody statement from every epoch, served by the follower, verifies from the genesis file alone.
            from node.chain.statement import verify_statement

            heights = [p.cert.headers[0].height for p in follower.app.epochs.proofs()] + [top]
            for epoch, height in enumerate(heights):
                doc = follower.view.statement(net.users[0], height)
                assert doc["validator_set"]["epoch"] == epoch == len(doc["validator_set"]["epoch_changes"])
                assert verify_statement(doc, net.genesis).ok, (epoch, height)
                assert follower.app.epochs.set_at(epoch).digest == source.app.epochs.set_at(epoch).digest
        finally:
            follower.app.store.close()
            follower.safety_store.close()
            source.app.store.close()
            source.safety_store.close()

    asyncio.run(run())


@contextlib.asynccontextmanager
async def _four_validators(net: _GovernedNet, sig_verifier: Ed25519Verifier) -> AsyncIterator[list[ValidatorNode]]:
    """The 4 genesis validators of `net`, started and past height 3; every node in the yielded list (a test may
    replace one) is stopped at the end."""
    nodes = [net.validator(i, sig_verifier) for i in range(4)]
    _NODES[:] = nodes
    for n in nodes:
        await n.start()
    try:
        assert all([await n.wait_for_height(3, 60) for n in nodes])
        yield nodes
    finally:
        for n in nodes:
            await n.stop()


def _validator_info(node: str, identity: bytes) -> ValidatorInfo:
    return ValidatorInfo(node, "m0", identity, bytes(48), bytes(96), "127.0.0.1:1", 1)


_PARAMS = ChainParamsRecord(2000, 2_000_000, 2000, 6, 10_000, 500)


def test_safety_decision_at_epoch_boundaries(tmp_path) -> None:
    """The restart rule (docs/consensus.md §10): resume a state of the epoch; fresh when an older epoch's state is
    stored or the store is marked for the epoch; lost only without state and mark once blocks are committed."""
    from consensus.messages import SafetyState, genesis_block, genesis_qc
    from node.validator.safety_store import FRESH, LOST, RESUME, SafetyStore, SafetyStoreError, safety_decision

    assert safety_decision(2, None, 2) == RESUME
    assert safety_decision(1, None, 2) == FRESH  # intact directory: a signature in 2 would have replaced it
    assert safety_decision(None, 2, 2) == FRESH  # marked before the block that started epoch 2 committed
    assert safety_decision(None, 0, 0) == FRESH  # first start: marked at creation by keys that never signed
    assert safety_decision(None, None, 0) == LOST  # created without that marker (wiped at genesis): maybe signed
    assert safety_decision(None, None, 2) == LOST  # directory lost: may have signed in epoch 2
    assert safety_decision(None, 3, 2) == LOST  # marked for the next epoch, still in this one: lost here
    with pytest.raises(SafetyStoreError):
        safety_decision(3, None, 2)

    fresh = SafetyStore(str(tmp_path / "never-signed"))
    try:
        assert fresh.bind_genesis(b"g" * 32, never_signed_epoch=0) and fresh.epoch_mark() == 0
        assert not fresh.bind_genesis(b"g" * 32, never_signed_epoch=5) and fresh.epoch_mark() == 0  # only at creation
    finally:
        fresh.close()
    store = SafetyStore(str(tmp_path / "consensus"))
    try:
        assert store.bind_genesis(b"g" * 32) and store.epoch_mark() is None
        block = genesis_block(b"c" * 32, 0)
        qc = genesis_qc(block, b"r" * 32)
        store.persist(SafetyState(1, 7, 0, 0, qc, None), [], 0)
        assert store.epoch_mark() is None
        store.mark_epoch(2)  # before the epoch-ending block commits: the state of epoch 1 stays
        assert store.load()[0].epoch == 1 and store.epoch_mark() == 2
        store.begin_epoch(2)
        assert store.load() == (None, []) and store.epoch_mark() == 2
        store.persist(SafetyState(2, 3, 0, 0, qc, None), [], 0)
        with pytest.raises(AssertionError):
            store.begin_epoch(2)  # a replica of epoch 2 already signed: never reset
    finally:
        store.close()


def test_keys_rotate_and_show_print_the_governance_actions(tmp_path, capsys) -> None:
    from node.cli import main

    path = str(tmp_path / "node_keys.json")
    keys = NodeKeys.generate("node-9", b"cli")
    write_keys(path, keys)
    assert main(["keys", "show", path, "--member", "m9", "--address", "10.0.0.9:7100"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["bls_pop"] == keys.bls_pop().hex() and shown["action"]["kind"] == "add_validator"
    assert shown["action"]["identity_key"] == keys.identity_key.hex() and shown["action"]["member"] == "m9"
    assert main(["keys", "rotate", "--keys", path]) == 0
    rotated = json.loads(capsys.readouterr().out)
    assert rotated["next_keys_file"] == next_keys_path(path) == str(tmp_path / "node_keys.next.json")
    [nxt] = load_next_keys(path)
    assert nxt.node_id == "node-9" and nxt.bls_public_key.hex() == rotated["bls_key"] != shown["bls_key"]
    assert rotated["action"] == {"kind": "rotate_validator_keys", "node_id": "node-9",
                                 "identity_key": nxt.identity_key.hex(), "bls_key": nxt.bls_public_key.hex(),
                                 "bls_pop": nxt.bls_pop().hex()}
    assert main(["keys", "rotate", "--keys", path]) != 0  # never overwrites next keys silently
    assert json.loads(capsys.readouterr().err)["error"] == "keys_exist"


def test_a_validator_cut_off_during_a_params_change_catches_up_into_the_new_epoch(tmp_path, sig_verifier) -> None:
    """node-3 is partitioned away while a SetChainParams proposal ends epoch 0; the other three switch (new timeouts
    and block limits). Healed, node-3 learns of the change (EpochChange from a peer, or block sync when far
    behind), commits the epoch-ending block itself, switches with the same params and signs in epoch 1."""
    from ledger.operations import SetChainParams

    net = _GovernedNet(tmp_path, "testnet-lag")

    async def run() -> None:
        nodes = [ValidatorNode(net.genesis, net.keys[i], str(tmp_path / f"d{i}"), listen=("127.0.0.1", net.ports[i]),
                               sig_verifier=sig_verifier, fault_injection=True, never_signed=True) for i in range(4)]
        _NODES[:] = nodes
        for node in nodes:
            await node.start()
        try:
            assert all([await node.wait_for_height(2, 60) for node in nodes])
            def cut_off_node_3() -> None:
                nodes[3].transport.block(["node-0", "node-1", "node-2"])
                for node in nodes[:3]:
                    node.transport.block(["node-3"])

            new = SetChainParams(1000, 1_000_000, 800, 4, 10_000, 40)
            end0 = await net.govern(nodes[0], "params", (new,), before_last=cut_off_node_3)
            await _until(lambda: all(n.app.epochs.validator_set.epoch == 1 for n in nodes[:3]), "epoch 1 on the connected three")
            assert nodes[3].app.epochs.validator_set.epoch == 0
            assert await nodes[0].wait_for_height(end0 + 3, 60)
            for node in nodes:
                node.transport.unblock()
            await _until(lambda: nodes[3].app.epochs.validator_set.epoch == 1 and nodes[3].driver.replica is not None
                         and nodes[3].driver.replica.vs.epoch == 1, "node-3 in epoch 1")
            for node in nodes:
                assert node.app.epochs.params.base_timeout_ms == 800 and node.app.epochs.params.max_block_txs == 1000
                assert node.driver.replica_config.base_timeout_ms == 800
                assert node.app.store.get_extra(epoch_proof_key(0)) == nodes[0].app.store.get_extra(epoch_proof_key(0))
            back = nodes[0].app.head.height
            await _until(lambda: _qc_signers(nodes[0], back, nodes[0].app.head.height, 3) > 0
                         or _proposed_by(nodes[0], back, nodes[0].app.head.height, 3) > 0, "node-3 signing")
            assert not nodes[3].driver.replica.safety_lost and all(n.fatal is None for n in nodes)
        finally:
            for node in nodes:
                await node.stop()

    asyncio.run(run())


def test_a_wiped_validator_catching_up_across_an_epoch_boundary_recovers_in_that_epoch(tmp_path,
                                                                                     sig_verifier) -> None:
    """node-2 signs in epoch 1, loses its whole data directory and rejoins: block sync takes it across the end of
    epoch 0, but its recreated consensus directory cannot show it signed nothing in epoch 1, so it starts epoch 1
    with its safety state lost and recovers it from the others' statements (docs/consensus.md §13): it signs again
    in epoch 1, above every round it signed in before the wipe."""
    from ledger.operations import SetChainParams

    net = _GovernedNet(tmp_path, "testnet-wipe")

    async def run() -> None:
        async with _four_validators(net, sig_verifier) as nodes:
            n0 = nodes[0]
            end0 = await net.govern(n0, "params", (SetChainParams(2000, 2_000_000, 1000, 2, 10_000, 60),))
            await _until(lambda: all(n.app.epochs.validator_set.epoch == 1 for n in nodes), "epoch 1 everywhere")
            idx2 = n0.app.epochs.validator_set.index_of[b"node-2"]
            await _until(lambda: _qc_signers(n0, end0 + 1, n0.app.head.height, idx2) > 0,
                         "node-2 signing in epoch 1")
            await nodes[2].stop()
            shutil.rmtree(str(tmp_path / "d2"))
            for _ in range(5):
                tx_id, code, _ = await _admit(n0, net.transfer())
                assert code == 0
                await _committed(n0, tx_id)
            fresh = net.validator(2, sig_verifier, never_signed=False)
            nodes[2] = fresh
            _NODES[:] = nodes
            await fresh.start()
            await _until(lambda: fresh.driver.replica is not None and fresh.app.head.height > end0 + 3, "resynced")
            assert fresh.app.epochs.validator_set.epoch == 1
            assert fresh.safety_store.epoch_mark() is None  # no continuity shown: lost, not fresh
            await _until(lambda: fresh.driver.replica is not None and fresh.driver.replica.recovered_bound is not None,
                         "node-2 recovered its safety state")
            assert not fresh.view.status()["safety_lost"] and fresh.driver.replica.vs.epoch == 1
            rejoined = fresh.app.head.height
            for _ in range(3):
                tx_id, code, _ = await _admit(n0, net.transfer())
                assert code == 0
                await _committed(n0, tx_id)
            await _until(lambda: _qc_signers(n0, rejoined + 1, n0.app.head.height, idx2) > 0,
                         "node-2 signing again in epoch 1")
            assert n0.app.epochs.validator_set.epoch == 1

    asyncio.run(run())


def test_a_validator_wiped_within_an_epoch_recovers_and_signs_again_in_it(tmp_path, sig_verifier) -> None:
    """docs/operations.md, "A wiped data directory", as docs/consensus.md §13 says: node-2 signs in epoch 0, loses
    its data directory and catches up within epoch 0. It recovers its safety state from the others' statements and
    signs again in epoch 0 (QCs above its rejoin carry its vote), crosses the boundary with its replica live, so its
    store is marked for epoch 1, and signs in epoch 1."""
    from ledger.operations import SetChainParams

    net = _GovernedNet(tmp_path, "testnet-wipe0")

    async def run() -> None:
        async with _four_validators(net, sig_verifier) as nodes:
            n0 = nodes[0]
            idx2 = n0.app.epochs.validator_set.index_of[b"node-2"]
            await _until(lambda: _qc_signers(n0, 1, n0.app.head.height, idx2) > 0, "node-2 signing in epoch 0")
            await nodes[2].stop()
            shutil.rmtree(str(tmp_path / "d2"))
            fresh = net.validator(2, sig_verifier, never_signed=False)
            nodes[2] = fresh
            _NODES[:] = nodes
            await fresh.start()
            await _until(lambda: fresh.driver.replica is not None and fresh.app.head.height >= n0.app.head.height,
                         "caught up in epoch 0")
            await _until(lambda: fresh.driver.replica is not None and fresh.driver.replica.recovered_bound is not None,
                         "node-2 recovered its safety state")
            assert fresh.app.epochs.epoch == 0 and not fresh.view.status()["safety_lost"]
            rejoined = fresh.app.head.height
            end0 = await net.govern(n0, "params", (SetChainParams(2000, 2_000_000, 1000, 2, 10_000, 60),))
            # Certificates of the heights it rejoined at may carry votes it cast before the wipe (a commit at h
            # carries QCs of h + 1 and h + 2): from rejoined + 3 on, its votes are ones it cast after recovering.
            assert _qc_signers(n0, rejoined + 3, end0, idx2) > 0
            await _until(lambda: fresh.app.epochs.epoch == 1 and fresh.driver.replica is not None
                         and fresh.driver.replica.vs.epoch == 1, "node-2 in epoch 1")
            assert fresh.safety_store.epoch_mark() == 1 and not fresh.driver.replica.safety_lost
            assert not fresh.view.status()["safety_lost"]
            for _ in range(3):
                tx_id, code, _ = await _admit(n0, net.transfer())
                assert code == 0
                await _committed(n0, tx_id)
            await _until(lambda: _qc_signers(n0, end0 + 3, n0.app.head.height, idx2) > 0, "node-2 signing in epoch 1")

    asyncio.run(run())


def test_the_peer_set_never_admits_one_identity_key_twice() -> None:
    """One proposal moves node-1 off identity key K1 and gives K1 to node-2: the peer set of the new epoch admits K1
    for node-2 only (building it must not fail: that would stop every node at the epoch change)."""
    from node.net.peers import epoch_peer_set

    info, params = _validator_info, _PARAMS
    k = [bytes([i]) * 32 for i in range(6)]
    before = EpochRecord(1, 10, (info("node-0", k[0]), info("node-1", k[1]), info("node-2", k[2])), params)
    after = EpochRecord(2, 20, (info("node-0", k[0]), info("node-1", k[4]), info("node-2", k[1])), params)
    peers = epoch_peer_set(after, before, None, own_id="node-0", configured={}, prospective={},
                           address_of=lambda node_id, address: None)
    assert sorted(peers.ids()) == ["node-0", "node-1", "node-2"]
    assert peers.get("node-1").identity_keys() == (k[4],)
    assert set(peers.get("node-2").identity_keys()) == {k[1], k[2]}


def test_an_identity_rotation_whose_epoch_ends_with_its_first_block(tmp_path, sig_verifier, monkeypatch) -> None:
    """Epoch 1 rotates node-1's identity key and ends with its first block (a second proposal executes there), so
    node-1, which switches one block into the epoch, may still hold its old key while its peers are in epoch 2:
    they must still admit it, and it must switch when it enters epoch 2 (the reviewer's stall)."""
    from consensus.messages import EpochChangeProof
    from ledger.operations import Approve, Propose, RotateValidatorKeys, SetChainParams
    from ledger.transaction import decode_transaction

    net = _GovernedNet(tmp_path, "testnet-consec")

    async def run() -> None:
        async with _four_validators(net, sig_verifier) as nodes:
            n0 = nodes[0]
            # The moment node-0 keeps the execution of the epoch-ending block (not a poll, which a busy loop can let
            # slip past the short window before that block commits).
            rotation_executed = asyncio.Event()
            record = Executor.record

            def record_and_notice(executor: Executor, job, outcome):
                executed = record(executor, job, outcome)
                if executor is n0.app.executor and executed is not None and executed.next_epoch is not None:
                    rotation_executed.set()
                return executed

            monkeypatch.setattr(Executor, "record", record_and_notice)
            r = net.rotated
            write_keys(next_keys_path(net.key_files[1]), r)
            actions = {"rotate": (RotateValidatorKeys("node-1", r.identity_key, r.bls_public_key, r.bls_pop()),),
                       "params": (SetChainParams(2000, 2_000_000, 1000, 2, 10_000, 60),)}
            for pid, acts in actions.items():
                for actor, op in (("gov@m0", Propose("gov@m0", pid, acts, 5000)), ("gov@m1", Approve("gov@m1", pid))):
                    tx_id, code, msg = await _admit(n0, net._tx(actor, op))
                    assert code == 0, msg
                    await _committed(n0, tx_id)
            first = net._tx("gov@m2", Approve("gov@m2", "rotate"))
            second = net._tx("gov@m2", Approve("gov@m2", "params"))
            assert (await _admit(n0, first))[1] == 0
            # The second approval waits in the pool while the epoch-ending block is executed but not committed: the
            # suffix blocks carry no payload, so it lands in the first block of epoch 1 and ends that epoch too.
            await asyncio.wait_for(rotation_executed.wait(), 30)
            assert n0.app.epochs.epoch == 0, "the epoch-ending block is executed, not yet committed"
            assert (await _admit(n0, second))[1] == 0
            await _committed(n0, decode_transaction(second, operations=OPERATIONS).tx_id)
            await _until(lambda: all(n.app.epochs.validator_set.epoch == 2 for n in nodes), "epoch 2 everywhere")
            ends = [EpochChangeProof.decode(n0.app.store.get_extra(epoch_proof_key(e))).cert.headers[0].height
                    for e in (0, 1)]
            assert ends[1] == ends[0] + 1, ends
            for _ in range(3):
                tx_id, code, _ = await _admit(nodes[2], net.transfer())
                assert code == 0
                await _committed(nodes[2], tx_id)
            top = max(n.app.head.height for n in nodes)
            await _until(lambda: all(n.app.head.height >= top for n in nodes), "every node following")
            assert nodes[1].transport.identity_key == r.identity_key
            await _until(lambda: len(nodes[1].transport.connected_peers()) == 3, "node-1 connected with its new key")

    asyncio.run(run())


def test_configured_peer_keys_reach_peers_the_ledger_has_not_shown_yet(tmp_path) -> None:
    """[p2p.peers] node-1 = "<key>@host:port": a node that has not applied node-1's rotation (far behind, or joining
    from genesis) admits node-1's new key, keeps the ledger's, and learns a validator added since."""
    from node.net.peers import epoch_peer_set
    from node.validator.config import NodeConfig, load_config, write_config

    info = _validator_info
    k = [bytes([i]) * 32 for i in range(8)]
    path = str(tmp_path / "node.toml")
    write_config(path, NodeConfig("node-0", "/tmp/d", "/tmp/k", "/tmp/g", ("127.0.0.1", 7000),
                                  peer_addresses={"node-1": ("127.0.0.1", 7001), "node-5": ("127.0.0.1", 7005)},
                                  peer_keys={"node-1": k[6], "node-5": k[7]}))
    config = load_config(path)
    assert config.peer_keys == {"node-1": k[6], "node-5": k[7]}
    record = EpochRecord(0, 1, (info("node-0", k[0]), info("node-1", k[1]), info("node-2", k[2])), _PARAMS)
    peers = epoch_peer_set(record, None, None, own_id="node-0", configured=config.peer_keys,
                           prospective={"node-6": k[5]},
                           address_of=lambda node_id, address: config.peer_addresses.get(node_id))
    assert sorted(peers.ids()) == ["node-0", "node-1", "node-2", "node-5", "node-6"]
    assert peers.get("node-6").identity_keys() == (k[5],) and peers.get("node-6").address is None
    assert peers.get("node-1").identity_keys() == (k[6], k[1])
    assert peers.get("node-5").identity_keys() == (k[7],) and peers.get("node-5").address == ("127.0.0.1", 7005)
    assert peers.get("node-2").identity_keys() == (k[2],)
