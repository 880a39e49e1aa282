"""The client commands of the `ledger` CLI (keys, tx, query, statement, verify-statement) against the in-process API
of tests/node/client/test_client.py: outputs, effects and exit codes."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.chain.genesis import write_genesis
from node.cli import main
from node.client import load_key, operation, operation_to_json, save_key
from tests.ledger.world import CHAIN
from tests.node.cli_output import assert_no_python_repr
from tests.node.client.test_client import AGENT, BOB, CUSTODIAN, DAVE, EVE, ISSUER, OP_SAMPLES, ClientWorld, account_key


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClientWorld]:
    w = ClientWorld(str(tmp_path_factory.mktemp("cli") / "db"))
    yield w
    w.close()


@pytest.fixture(scope="module")
def files(world: ClientWorld, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("cli-files")
    out = {}
    for account in (ISSUER, AGENT, CUSTODIAN, DAVE, BOB, EVE):
        path = str(d / f"{account.split('@')[0]}.key")
        save_key(account_key(account), path)
        out[account] = path
    out["genesis"] = str(d / "genesis.json")
    write_genesis(out["genesis"], world.document)
    out["dir"] = str(d)
    return out


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    if argv[0] in ("tx", "query", "governance"):
        argv = (*argv, "--json")  # these tests read the JSON answer; tests/node/test_cli_usability.py the text
    code = main(list(argv))
    captured = capsys.readouterr()
    try:
        out = json.loads(captured.out) if captured.out.strip() else None
    except ValueError:
        out = captured.out
    return code, out, captured.err


def test_keys_new_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / "k.key")
    code, out, _ = run(capsys, "keys", "new", "--account", "zed@bank-a", "--out", path, "--plaintext-keys")
    assert code == 0 and out["account"] == "zed@bank-a" and len(out["public_key"]) == 64
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert load_key(path).public_key.hex() == out["public_key"]
    code, shown, _ = run(capsys, "keys", "show", path)
    assert code == 0 and shown == {"account": "zed@bank-a", "public_key": out["public_key"]}
    code, _, err = run(capsys, "keys", "new", "--account", "zed@bank-a", "--out", path, "--plaintext-keys")
    assert code == 2 and json.loads(err)["error"] == "key_file_exists"
    code, _, err = run(capsys, "keys", "new", "--account", "not an account", "--out", str(tmp_path / "x"), "--plaintext-keys")
    assert code == 2 and json.loads(err)["error"] == "key_bad_account"


def test_tx_from_flags_and_query(world: ClientWorld, files: dict[str, str],
                                 capsys: pytest.CaptureFixture[str]) -> None:
    node = ["--node", world.url]
    # --amount is in the asset's units (BOND-A has 2 decimals): 12.34 is 1234 base units, exactly
    code, out, err = run(capsys, "tx", "issue", "--asset", "BOND-A", "--recipient", EVE, "--amount", "12.34",
                         "--key", files[ISSUER], *node)
    assert code == 0, err
    assert out["status"] == "committed" and out["receipt"]["code"] == 0
    code, bal, _ = run(capsys, "query", "balances", EVE, "--asset", "BOND-A", "--key", files[EVE], *node)
    assert code == 0 and '"available": 1234' in json.dumps(bal)
    code, _, err = run(capsys, "tx", "issue", "--asset", "BOND-A", "--recipient", EVE, "--amount", "1.005",
                       "--key", files[ISSUER], *node)
    assert code == 2 and json.loads(err)["error"] == "amount_precision" and "2" in json.loads(err)["message"]
    code, out, _ = run(capsys, "tx", "transfer", "--asset", "BOND-A", "--legs",
                       json.dumps({"recipient": BOB, "amount": 10**12}), "--key", files[EVE], *node)
    assert code == 1 and out["receipt"]["code"] >= 200  # refused: insufficient balance
    code, out, err = run(capsys, "query", "balances", EVE, *node)
    assert code == 3 and json.loads(err)["error"] == 3200
    code, status, _ = run(capsys, "query", "status", *node)
    assert code == 0 and status["chain_id"] == CHAIN
    code, _, err = run(capsys, "tx", "issue", "--asset", "BOND-A", "--recipient", EVE, "--amount", "0",
                       "--key", files[ISSUER], *node)
    assert code == 2 and "amount" in json.loads(err)["message"]


def test_offline_signing_cosigning_and_submit(world: ClientWorld, files: dict[str, str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    node = ["--node", world.url]
    code, status, _ = run(capsys, "query", "status", *node)
    expiry = str(status["height"] + 50)
    tx_file = os.path.join(files["dir"], "dvp.json")
    legs = [{"asset": "BOND-A", "sender": DAVE, "recipient": BOB, "amount": 10},
            {"asset": "CASH-T", "sender": BOB, "recipient": DAVE, "amount": 20}]
    # Delivery versus payment: the seller signs offline, the buyer co-signs and submits.
    code, signed, _ = run(capsys, "tx", "settle", "--reference", "dvp-7", "--expiry-height", expiry, "--legs",
                          json.dumps(legs), "--key", files[DAVE], "--offline", "--chain-id", CHAIN,
                          "--tx-expiry-height", expiry, "--out", tx_file)
    assert code == 0 and signed["body"]["signers"] == [BOB, DAVE] and len(signed["signatures"]) == 1
    code, out, _ = run(capsys, "tx", "submit", tx_file, *node)
    assert code == 1 and out["receipt"]["code"] < 200  # one signer missing: rejected, nothing moved
    code, out, err = run(capsys, "tx", "cosign", tx_file, "--key", files[BOB], "--submit", *node)
    assert code == 0, err
    assert out["tx_id"] == signed["tx_id"] and out["receipt"]["code"] == 0
    code, bal, _ = run(capsys, "query", "balances", DAVE, "--asset", "CASH-T", "--key", files[DAVE], *node)
    assert code == 0 and "20" in json.dumps(bal)
    code, _, err = run(capsys, "tx", "cosign", tx_file, "--key", files[EVE])
    assert code == 2 and "not declared signers" in json.loads(err)["message"]


def test_tx_from_a_json_file(world: ClientWorld, files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    ops = {"operations": [
        {"kind": "issue", "actor": ISSUER, "asset": "CASH-T", "recipient": EVE, "amount": 5},
        {"kind": "issue", "actor": ISSUER, "asset": "CASH-T", "recipient": BOB, "amount": 6},
    ]}
    path = os.path.join(files["dir"], "ops.json")
    with open(path, "w") as f:
        json.dump(ops, f)
    code, out, err = run(capsys, "tx", "json", path, "--key", files[ISSUER], "--node", world.url)
    assert code == 0, err
    kinds = [e["kind"] for e in out["receipt"]["events"]]
    assert kinds == ["issued", "issued"]


def test_statement_fetch_and_offline_verification(world: ClientWorld, files: dict[str, str],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = os.path.join(files["dir"], "statement.json")
    code, out, err = run(capsys, "statement", DAVE, "--key", files[CUSTODIAN], "--out", path,
                         "--genesis", files["genesis"], "--node", world.url)
    assert code == 0, err
    assert out["verified"] is True and out["account"] == DAVE
    # no network from here on
    code, verdict, _ = run(capsys, "verify-statement", path, "--genesis", files["genesis"])
    assert code == 0 and verdict["valid"] is True and verdict["holdings"][0]["asset"] == "BOND-A"
    data = Path(path).read_bytes()
    at = data.index(b'"available": ') + len(b'"available": ')
    tampered = data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]
    bad = os.path.join(files["dir"], "tampered.json")
    Path(bad).write_bytes(tampered)
    code, verdict, _ = run(capsys, "verify-statement", bad, "--genesis", files["genesis"])
    assert code == 1 and verdict["valid"] is False and verdict["code"] == "statement_value_mismatch"
    code, _, err = run(capsys, "verify-statement", path, "--genesis", os.path.join(files["dir"], "missing.json"))
    assert code == 2 and json.loads(err)["error"] == "genesis_unreadable"
    code, printed, _ = run(capsys, "statement", DAVE, "--key", files[DAVE], "--node", world.url)
    assert code == 0 and printed["account"] == DAVE and printed["format"] == "ledger-custody-statement/1"
    code, _, err = run(capsys, "statement", DAVE, "--key", files[EVE], "--node", world.url)
    assert code == 3 and json.loads(err)["error"] == 3206


def test_unreachable_node(files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "query", "status", "--node", "http://127.0.0.1:9", "--timeout", "2")
    assert code == 3 and json.loads(err)["error"] == "connection_failed"


def _flags(fields: dict[str, Any]) -> list[str]:
    argv: list[str] = []
    for name, value in fields.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            argv += [flag, "true" if value else "false"]
        elif value is None:
            argv += [flag, "none"]
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            argv += [flag, json.dumps(value)]
        elif isinstance(value, list):
            for item in value:
                argv += [flag, str(item)]
        elif isinstance(value, dict):
            argv += [flag, json.dumps(value)]
        else:
            argv += [flag, str(value)]
    return argv


# Every kind, `propose` included (its actions, a variant, are JSON flags; `ledger governance propose` is the
# friendlier command, test_governance_commands below).
FLAG_KINDS = list(OP_SAMPLES)


def test_every_operation_kind_from_flags(files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    for kind in FLAG_KINDS:
        fields = OP_SAMPLES[kind]
        amounts = ["--base-units"] if "amount" in fields or kind in ("transfer", "settle") else []
        code, out, err = run(capsys, "tx", kind.replace("_", "-"), *_flags(fields), *amounts, "--key", files[AGENT],
                             "--offline", "--chain-id", CHAIN, "--tx-expiry-height", "77", "--nonce", "5")
        assert code == 0, (kind, err)
        expected = operation_to_json(operation(kind, actor=AGENT, **fields))
        assert out["body"]["operations"] == [expected], kind
        assert out["body"]["nonce"] == 5 and out["body"]["expiry_height"] == 77


# ---------------------------------------------------------------------------------------------------------------
# Governance commands (against a chain whose genesis names validators and governors)


def test_governance_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from node.api import ApiConfig
    from node.client import AccountKey
    from tests.ledger.world import key_for
    from tests.node.api.test_api_governance import (
        MEMBERS,
        USER,
        GovChain,
        GovFacade,
        _keys,
        genesis_document,
        gov,
    )
    from tests.node.client.test_client import ServerThread

    chain = GovChain(str(tmp_path / "db"))
    server = ServerThread(GovFacade(chain), ApiConfig(open_reads=True))
    url = server.start()
    try:
        keys = {}
        for m in MEMBERS:
            keys[m] = str(tmp_path / f"gov-{m}.key")
            save_key(AccountKey(gov(m), key_for(gov(m))), keys[m])
        user_key = str(tmp_path / "user.key")
        save_key(AccountKey(USER, key_for(USER)), user_key)
        node = ["--node", url]
        k = _keys(4, 0)
        add = {"kind": "add_validator", "node_id": "v4", "member": "m4", "identity_key": k.identity_key.hex(),
               "bls_key": k.bls_public_key.hex(), "bls_pop": k.bls_pop().hex(), "address": "127.0.0.1:7004",
               "power": 1}
        member = {"kind": "add_member", "member": "m4", "name": "Member 4", "voter": True}
        code, out, err = run(capsys, "governance", "propose", "--id", "onboard", "--action", json.dumps(member),
                             "--action", json.dumps(add), "--key", keys["m0"], *node)
        assert code == 0, err
        assert out["receipt"]["code"] == 0 and out["proposal"]["status"] == "open"
        assert out["proposal"]["approvals"] == ["m0"] and out["proposal"]["approvals_missing"] == 2
        code, out, _ = run(capsys, "governance", "approve", "onboard", "--key", keys["m1"], *node)
        assert code == 0 and out["proposal"]["approvals_missing"] == 1
        code, out, _ = run(capsys, "governance", "approve", "onboard", "--key", keys["m2"], *node)
        assert code == 0 and out["proposal"]["status"] == "executed"
        end_height = out["receipt"]["height"]
        code, out, _ = run(capsys, "governance", "approve", "onboard", "--key", keys["m3"], *node)
        assert code == 1 and out["receipt"]["code"] == 605  # PROPOSAL_NOT_OPEN
        code, out, _ = run(capsys, "governance", "show", "onboard", *node)
        assert code == 0 and out["status"] == "executed" and out["closed_height"] == end_height
        code, out, _ = run(capsys, "governance", "show", *node)
        assert code == 0 and out["epoch"] == 1 and out["voters"] == [*MEMBERS, "m4"] and out["validators"] == 5
        code, out, _ = run(capsys, "governance", "epochs", *node)
        assert code == 0 and [e["end_height"] for e in out["items"]] == [end_height]
        # the same commands as people read them: text, no Python reprs, the epoch list once
        for argv in (["governance", "epochs"], ["governance", "show"], ["governance", "show", "onboard"]):
            assert main([*argv, *node]) == 0
            text = capsys.readouterr().out
            assert_no_python_repr(text)
            assert not text.lstrip().startswith("{"), text[:200]
            if argv[-1] == "onboard":
                assert "status: executed" in text
        assert main(["governance", "epochs", *node]) == 0
        text = capsys.readouterr().out
        assert f"end_height: {end_height}" in text and text.count("end_height:") == 1
        # a proposal from a file of actions, then withdrawn
        actions = tmp_path / "actions.json"
        actions.write_text(json.dumps([{"kind": "set_approval_threshold", "threshold": 4}]))
        code, out, _ = run(capsys, "governance", "propose", "--id", "stricter", "--actions-file", str(actions),
                           "--expires-in", "5", "--key", keys["m3"], *node)
        assert code == 0 and out["proposal"]["expiry_height"] == out["receipt"]["height"] - 1 + 5
        code, out, _ = run(capsys, "governance", "cancel", "stricter", "--key", keys["m3"], *node)
        assert code == 0 and out["proposal"]["status"] == "cancelled"
        # refusals: not a governor (1, with the ledger's code), bad action JSON (2), unknown proposal (3: 404)
        code, out, _ = run(capsys, "governance", "approve", "onboard", "--key", user_key, *node)
        assert code == 1 and out["receipt"]["code"] == 600  # NOT_GOVERNOR
        code, _, err = run(capsys, "governance", "propose", "--id", "x", "--action", "{nope", "--key", keys["m0"],
                           *node)
        assert code == 2 and json.loads(err)["error"] == "bad_input"
        code, _, err = run(capsys, "governance", "propose", "--id", "x", "--action",
                           json.dumps({"kind": "add_validator", "node_id": "v9"}), "--key", keys["m0"], *node)
        assert code == 2 and json.loads(err)["details"]["ledger_code"] > 0
        code, _, err = run(capsys, "governance", "show", "nope", *node)
        assert code == 3 and json.loads(err)["error"] == 603
        # a custody statement taken after the epoch change verifies offline from the genesis file alone
        genesis = tmp_path / "genesis.json"
        write_genesis(str(genesis), genesis_document())
        code, out, _ = run(capsys, "tx", "transfer", "--asset", "CASH-T", "--legs",
                           json.dumps({"recipient": "bob@m1", "amount": 1}), "--key", user_key, *node)
        assert code == 1 and out["receipt"]["code"] > 0  # no CASH-T defined on this chain: refused, still a block
        statement = str(tmp_path / "statement.json")
        code, out, err = run(capsys, "statement", USER, "--out", statement, "--genesis", str(genesis), *node)
        assert code == 0 and out["verified"] is True, err
        code, out, _ = run(capsys, "verify-statement", statement, "--genesis", str(genesis))
        assert code == 0 and out["valid"] is True and out["epoch"] == 1 and out["epoch_changes"] == 1
    finally:
        server.stop()
        chain.store.close()
