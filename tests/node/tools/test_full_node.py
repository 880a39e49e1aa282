"""A full node on a running 4-validator testnet of real node processes (docs/operations.md, "Node roles").

`ledger testnet add-node --full` admits the new node's identity key in every validator's config ([p2p.full_nodes],
re-read by the running validators with no restart) and starts it. It catches up from genesis, follows under load
(its state root equals the validators' at every height), serves balances, proofs and a custody statement that
`ledger verify-statement` accepts, forwards a transaction submitted to its API to the validators (and streams its events), and killing it
changes nothing for them. A node whose identity key no validator admits reaches no one and refuses submissions
with NO_VALIDATOR_REACHABLE.

The minutes-long version of "follows under load" is behind the soak marker. Every wait is bounded; the fixture kills
every node process even when a test fails.
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.state_keys import balance_key
from node.chain.genesis import load_genesis
from node.chain.mempool import NO_VALIDATOR_REACHABLE
from node.cli import main
from node.client import LedgerClient, verify_certificate, verify_state_proof
from node.tools.load import TransferLoad, signed_transfer
from node.tools.localnet import CASH_ASSET, load_accounts
from node.tools.testnet import Testnet
from node.validator.keyfile import NodeKeys, write_keys

VALIDATORS = [0, 1, 2, 3]


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testnet]:
    directory = str(tmp_path_factory.mktemp("full-node"))
    network = Testnet.create(directory, 4, seed=b"full-node")
    try:
        network.up(60)
        yield network
    finally:
        network.kill_all()


@pytest.fixture(scope="module")
def full(net: Testnet) -> int:
    """The full node, added and started with the CLI once the chain has a few blocks."""
    assert net.wait_height(VALIDATORS, 5, 60)
    assert main(["testnet", "add-node", "--full", "--dir", net.directory, "--timeout", "60"]) == 0
    net.refresh()  # the CLI added the node to the state file
    assert net.full_nodes == [4]
    return 4


def _follow_under_load(net: Testnet, full: int, seconds: float) -> None:
    load = TransferLoad(net, 30, random.Random(11))
    load.start()
    try:
        time.sleep(seconds)
    finally:
        load.finish()
    assert load.accepted > 0, (load.submitted, load.accepted)
    top = max(net.height(i) for i in VALIDATORS)
    # node-2, whose roots are compared, may be a block behind the highest validator at this instant
    assert net.wait_height([full, 2], top, 60), (net.height(full), net.height(2), top)
    lo = 1
    while lo <= top:  # the full node's state root is the validators' at every height
        hi = min(top, lo + 999)
        assert net.roots(full, lo, hi) == net.roots(2, lo, hi)
        lo = hi + 1


def test_a_full_node_catches_up_and_follows_under_load(net: Testnet, full: int) -> None:
    status = net.node_status(full)
    assert status is not None and status["role"] == "full" and status["round"] is None, status
    assert status["mode"] in ("following", "syncing")
    _follow_under_load(net, full, 6)
    # The validators count it as a peer but never as a voter: quorums are unchanged (4 validators in the set).
    with LedgerClient(net.api_url(full)) as client:
        validators = client.validators()
    assert sorted(v["name"] for v in validators["validators"]) == [f"node-{i}" for i in VALIDATORS]
    st = net.status()
    roles = {n.node_id: n.role for n in st.nodes}
    assert roles == {
        "node-0": "validator",
        "node-1": "validator",
        "node-2": "validator",
        "node-3": "validator",
        f"node-{full}": "full",
    }
    assert st.roots_agree


@pytest.mark.soak
def test_a_full_node_follows_for_minutes_under_load(net: Testnet, full: int) -> None:
    _follow_under_load(net, full, 180)


def test_a_full_node_serves_balances_proofs_and_a_verifiable_statement(
    net: Testnet, full: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user = "user-0@m0"
    with LedgerClient(net.api_url(full)) as client:
        height = client.head_height()
        balances = client.balances(user, height=height)
        key = balance_key(CASH_ASSET, user).hex()
        proof = client.proof(key, height)
        block = client.block(height)
        statement = client.statement(user, height)
    assert net.wait_height([2], height, 30)
    with LedgerClient(net.api_url(2)) as validator:
        assert validator.balances(user, height=height) == balances
    genesis = load_genesis(net.genesis_path)
    h, block_id, root = verify_certificate(block["certificate"], genesis)
    assert (h, root.hex(), block_id.hex()) == (height, proof["state_root"], block["block_hash"])
    assert verify_state_proof(root, key, proof["value"], proof["proof"])
    path = tmp_path / "statement.json"
    from node.client import statement_bytes

    path.write_bytes(statement_bytes(statement))
    capsys.readouterr()
    assert main(["verify-statement", str(path), "--genesis", net.genesis_path]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True


def _post(url: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=40) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _transfer(net: Testnet, nonce: int) -> str:
    accounts = load_accounts(net.accounts_path)
    status = net.node_status(2)
    assert status is not None
    raw = signed_transfer(net.chain_id, "user-3@m3", accounts["user-3@m3"], "user-4@m0", nonce, status["height"] + 200)
    return raw.hex()


def test_a_transaction_submitted_to_a_full_node_is_forwarded_and_commits(net: Testnet, full: int) -> None:
    code, answer = _post(net.api_url(full) + "/v1/tx?wait=commit&timeout=25", {"tx": _transfer(net, 77_001)})
    assert code == 200 and answer["status"] == "committed", answer
    tx_id, height = answer["tx_id"], answer["receipt"]["height"]
    with LedgerClient(net.api_url(1)) as validator:
        assert validator.tx(tx_id)["status"] == "committed"
    # The full node's event stream carries the transfer's events, from its own copy of the chain.
    with LedgerClient(net.api_url(full)) as client:
        stream = client.events(accounts=["user-4@m0"], from_height=height)
        first = next(stream)
        stream.close()
    assert first.type == "event" and first.height == height, first


def _assert_connected_to_nothing(net: Testnet, i: int) -> dict:
    """Node i follows nothing and never holds a connection: height 0 and no peer at every sample. It keeps dialing,
    and every validator refuses it in the handshake's verdict frame, so its side never counts the link as up (before
    the verdict frame, its side completed a moment before the validator hung up, and a sample could catch it)."""
    status: dict | None = None
    for _ in range(8):
        status = net.node_status(i)
        assert status is not None and status["height"] == 0 and status["peers_connected"] == 0, status
        time.sleep(0.25)
    assert status is not None
    return status


def test_an_unadmitted_node_reaches_no_validator_and_refuses_submissions(net: Testnet, full: int) -> None:
    """A second full node whose key file was replaced after the validators admitted the first key: every validator
    refuses its handshake (unknown_key), so it follows nothing and refuses what clients submit to it."""
    info = net.add_node(full=True)
    i = int(info["index"])
    keys_path = str(Path(net.node_dir(i)) / "node_keys.json")
    write_keys(keys_path, NodeKeys.generate(info["node"], b"not-admitted"), overwrite=True)
    net.start(i)
    try:
        deadline = time.monotonic() + 60
        refused = False
        while time.monotonic() < deadline and not refused:  # its dial attempts reach node-0 and are refused
            refused = "unknown_key" in Path(net.log_path(0)).read_text()
            time.sleep(0.2)
        assert refused
        _assert_connected_to_nothing(net, i)
        own_log = Path(net.log_path(i)).read_text()  # the refused node's operator reads why in its own log
        assert "refused_by_peer" in own_log and "unknown_key" in own_log
        code, answer = _post(net.api_url(i) + "/v1/tx", {"tx": _transfer(net, 77_002)})
        assert code == 503 and answer["code"] == NO_VALIDATOR_REACHABLE, answer
        after = _assert_connected_to_nothing(net, i)
        assert after["mempool"] == 0  # nothing kept
    finally:
        net.kill(i)


def test_killing_the_full_node_changes_nothing_for_the_validators(net: Testnet, full: int) -> None:
    assert net.kill(full)
    h = max(net.height(i) for i in VALIDATORS)
    assert net.wait_height(VALIDATORS, h + 3, 60)
    st = net.status()
    assert st.roots_agree and all(n.role == "validator" for n in st.nodes if n.running), st
    for i in VALIDATORS:
        s = net.node_status(i)
        assert s is not None and s["fatal"] is None and s["mode"] == "consensus"
