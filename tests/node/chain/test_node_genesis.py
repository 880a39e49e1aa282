"""Genesis, keys, config and `ledger init`: validation with stable codes, refusal of mismatched genesis."""

from __future__ import annotations

import asyncio
import json
import os
import stat

import pytest

from node.chain.genesis import GenesisError, load_genesis, parse_genesis, write_genesis
from node.chain.payload import PayloadError, decode_payload, encode_payload
from node.cli import main as cli_main
from node.errors import NodeError
from node.tools.localnet import generate_network
from node.validator.config import ConfigError, load_config, write_config
from node.validator.keyfile import KeyFileError, NodeKeys, load_keys, write_keys


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory):
    return generate_network(str(tmp_path_factory.mktemp("g")), 4, seed=b"genesis-tests", genesis_time=1_700_000_000)


def _doc(net) -> dict:
    with open(net.genesis_path, encoding="utf-8") as f:
        return json.load(f)


def test_generated_genesis_is_valid_and_its_hash_is_the_consensus_chain_id(net) -> None:
    g = load_genesis(net.genesis_path)
    assert len(g.validators) == 4 and g.chain_id == "testnet-local"
    assert g.consensus_chain_id == g.hash and len(g.hash) == 32
    assert load_genesis(net.genesis_path).hash == g.hash
    vs = g.validator_set()
    assert vs.quorum_power == 3 and vs.max_faulty_power == 1
    assert g.block().header.chain_id == g.hash
    # Any change of any field changes the hash.
    doc = _doc(net)
    doc["genesis_time"] += 1
    assert parse_genesis(doc).hash != g.hash


@pytest.mark.parametrize("mutate, code", [
    (lambda d: d["validators"][1].update(bls_pop=d["validators"][0]["bls_pop"]), "genesis_bad_validator_set"),
    (lambda d: d["validators"][1].update(id=d["validators"][0]["id"]), "genesis_duplicate_validator"),
    (lambda d: d["validators"][1].update(bls_key=d["validators"][0]["bls_key"]), "genesis_duplicate_validator"),
    (lambda d: d["validators"][1].update(member="nobody"), "genesis_unknown_member"),
    (lambda d: d["validators"].clear(), "genesis_no_validators"),
    (lambda d: d["params"].update(max_block_txs=0), "genesis_bad_params"),
    (lambda d: d["params"].update(empty_block_interval_ms=5000), "genesis_bad_params"),
    (lambda d: d.update(format="other/1"), "genesis_bad_format"),
    (lambda d: d.update(surprise=1), "genesis_bad_field"),
    (lambda d: d["validators"][0].update(bls_key="zz"), "genesis_bad_field"),
    (lambda d: d["accounts"][0].update(roles=["emperor"]), "genesis_bad_state"),
    (lambda d: d["operations"].append(dict(d["operations"][0])), "genesis_operation_refused"),
    (lambda d: d["operations"].append({"kind": "define_asset"}), "genesis_bad_operation"),
    (lambda d: d["validators"][0].update(id="node 0"), "genesis_bad_field"),
    (lambda d: d["validators"][0].update(power=1 << 33), "genesis_bad_field"),
    (lambda d: d.update(governance={"threshold": 1}), "genesis_bad_governance"),
    (lambda d: d.update(governance={"voters": ["nobody"]}), "genesis_bad_governance"),
    (lambda d: d.update(governance={"voters": []}), "genesis_bad_governance"),
    (lambda d: d.update(governance={"quorum": 2}), "genesis_bad_field"),
    # the chain id every transaction names (TxBody.chain_id's wire type): a genesis no transaction could name is refused
    (lambda d: d.update(chain_id="x" * 33), "genesis_bad_field"),
    (lambda d: d.update(chain_id="Testnet-Upper"), "genesis_bad_field"),
    (lambda d: d.update(chain_id="testnet local"), "genesis_bad_field"),
])
def test_invalid_genesis_is_refused_with_a_code(net, mutate, code: str) -> None:
    doc = _doc(net)
    mutate(doc)
    with pytest.raises(GenesisError) as info:
        parse_genesis(doc)
    assert info.value.code == code


def test_genesis_validators_params_and_governance_are_ledger_state(net) -> None:
    from consensus.validators import ValidatorSet
    from ledger.governance_state import chain_params_values, current_epoch, current_governance, validator_set_entries
    from ledger.state import MemoryState
    from node.chain.genesis import genesis_state

    g = load_genesis(net.genesis_path)
    state = MemoryState({k: v for k, v in genesis_state(g).changes.items() if v is not None})
    epoch = current_epoch(state)
    assert (epoch.epoch, epoch.start_height) == (0, 1)
    assert validator_set_entries(epoch) == g.validator_set().entries()
    assert ValidatorSet(epoch.epoch, validator_set_entries(epoch)).digest == g.validator_set().digest
    assert [v.identity_key for v in epoch.validators] == [v.identity_key for v in g.validators]
    assert chain_params_values(epoch.params) == dict(g.params.items())
    gov = current_governance(state)
    members = sorted(m for m, _ in g.members)
    assert gov.voters == tuple(members) and gov.threshold == 2 * len(members) // 3 + 1
    # An explicit governance section: its own voters and threshold, and another genesis hash.
    doc = _doc(net)
    doc["governance"] = {"voters": members[:1], "threshold": 1}
    g2 = parse_genesis(doc)
    state2 = MemoryState({k: v for k, v in genesis_state(g2).changes.items() if v is not None})
    assert current_governance(state2).voters == tuple(members[:1]) and g2.hash != g.hash


def test_unreadable_and_non_json_genesis(tmp_path) -> None:
    with pytest.raises(GenesisError) as info:
        load_genesis(str(tmp_path / "missing.json"))
    assert info.value.code == "genesis_unreadable"
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(GenesisError) as info:
        load_genesis(str(tmp_path / "bad.json"))
    assert info.value.code == "genesis_bad_json"


def test_key_files_are_private_and_never_overwritten(tmp_path) -> None:
    path = str(tmp_path / "k.json")
    keys = NodeKeys.generate("node-x")
    write_keys(path, keys)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_keys(path) == keys
    with pytest.raises(KeyFileError) as info:
        write_keys(path, NodeKeys.generate("node-x"))
    assert info.value.code == "keys_exist"
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError) as info:
        load_keys(path)
    assert info.value.code == "keys_permissions"


def test_config_round_trip_and_refusals(net, tmp_path) -> None:
    cfg = load_config(net.config_paths[0])
    assert cfg.node_id == "node-0" and cfg.fault_injection and cfg.genesis_file == os.path.abspath(net.genesis_path)
    path = str(tmp_path / "c.toml")
    write_config(path, cfg)
    again = load_config(path)
    assert (again.p2p_listen, again.api_listen, again.genesis_file) == (cfg.p2p_listen, cfg.api_listen,
                                                                        cfg.genesis_file)
    (tmp_path / "bad.toml").write_text('node_id = "a"\nsurprise = 1\n')
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path / "bad.toml"))
    assert info.value.code == "config_unknown_field"
    (tmp_path / "bad2.toml").write_text('node_id = "a"\n[p2p]\nlisten = "nowhere"\n')
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path / "bad2.toml"))
    assert info.value.code == "config_bad_field"


def test_ledger_init_commands(tmp_path, capsys) -> None:
    out = tmp_path / "net"
    assert cli_main(["init", "network", "--nodes", "4", "--dir", str(out), "--users", "2"]) == 0
    assert cli_main(["init", "check-genesis", str(out / "genesis.json")]) == 0
    node_dir = tmp_path / "solo"
    assert cli_main(["init", "node", "--node-id", "bank-a-1", "--dir", str(node_dir), "--plaintext-keys"]) == 0
    assert stat.S_IMODE(os.stat(node_dir / "node_keys.json").st_mode) == 0o600
    assert cli_main(["init", "node", "--node-id", "bank-a-1", "--dir", str(node_dir), "--plaintext-keys"]) == 1  # keys exist
    keys = [cli_main(["init", "node", "--node-id", f"v{i}", "--dir", str(tmp_path / f"v{i}"),
                      "--listen", f"127.0.0.1:{7200 + i}", "--plaintext-keys"]) for i in range(4)]
    assert keys == [0, 0, 0, 0]
    admin = "11" * 32
    args = ["init", "genesis", "--chain-id", "bank-net", "--admin-key", admin, "--out", str(tmp_path / "g.json")]
    for i in range(4):
        args += ["--validator", str(tmp_path / f"v{i}" / "validator.json")]
    assert cli_main(args) == 0
    g = load_genesis(str(tmp_path / "g.json"))
    assert [v.id for v in g.validators] == ["v0", "v1", "v2", "v3"]
    (tmp_path / "broken.json").write_text("[]")
    capsys.readouterr()
    assert cli_main(["init", "check-genesis", str(tmp_path / "broken.json")]) == 1
    assert "genesis_bad_field" in capsys.readouterr().err


def test_payload_codec_is_strict() -> None:
    data = encode_payload(1234, [b"a", b"bc"])
    assert decode_payload(data, 10, 1000).txs == (b"a", b"bc")
    for bad, code in [(b"", "payload_empty"), (b"\xc1", "payload_malformed"),
                      (encode_payload(1, [b"x"] * 11), "payload_bad_txs"),
                      (data + b"\x00", "payload_malformed")]:
        with pytest.raises(PayloadError) as info:
            decode_payload(bad, 10, 1000)
        assert info.value.code == code
    with pytest.raises(PayloadError) as info:
        decode_payload(data, 10, 5)
    assert info.value.code == "payload_too_large"


def test_a_data_directory_refuses_another_genesis(net, tmp_path) -> None:
    from node.validator.node import ValidatorNode

    g = load_genesis(net.genesis_path)
    keys = load_keys(os.path.join(os.path.dirname(net.config_paths[0]), "node_keys.json"))
    data = str(tmp_path / "data")

    async def open_close(genesis) -> None:
        node = ValidatorNode(genesis, keys, data, never_signed=True)
        await node.stop()

    asyncio.run(open_close(g))
    doc = _doc(net)
    doc["genesis_time"] += 60
    other = tmp_path / "other.json"
    write_genesis(str(other), doc)
    with pytest.raises(NodeError) as info:
        asyncio.run(open_close(load_genesis(str(other))))
    assert info.value.code == "genesis_mismatch"
    assert "genesis" in info.value.message


def test_addresses_round_trip_including_bracketed_ipv6() -> None:
    from node.chain.genesis import format_address, parse_address

    assert parse_address("[::1]:7100") == ("::1", 7100)
    assert parse_address("10.0.0.6:7100") == ("10.0.0.6", 7100)
    for address in (("::1", 7100), ("fe80::2", 1), ("node-1.example", 65535)):
        assert parse_address(format_address(address)) == address
    assert format_address(("::1", 7100)) == "[::1]:7100"
    with pytest.raises(GenesisError):
        parse_address("[]:7100")
