"""`ledger init` never overwrites a key, config, genesis or accounts file (issue 16 part 1): each command refuses
with `init_file_exists` naming the file, before writing anything, and leaves every existing file as it was."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from node.cli import main


def snapshot(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def refused(capsys: pytest.CaptureFixture[str], argv: list[str], path: Path) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "init_file_exists" in err and str(path) in err, err


def test_init_network_twice_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    net = tmp_path / "net"
    argv = ["init", "network", "--nodes", "2", "--dir", str(net), "--users", "1"]
    assert main(argv) == 0
    before = snapshot(net)
    refused(capsys, argv, net / "genesis.json")
    assert snapshot(net) == before
    (net / "genesis.json").unlink()  # any one file is enough to refuse: here the accounts
    refused(capsys, argv, net / "accounts.json")
    (net / "accounts.json").unlink()
    refused(capsys, argv, net / "node-0" / "node_keys.json")
    assert not (net / "genesis.json").exists() and not (net / "accounts.json").exists()


def test_init_node_refuses_each_existing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "bank-a"
    argv = ["init", "node", "--node-id", "bank-a-1", "--dir", str(d), "--plaintext-keys"]
    assert main(argv) == 0
    before = snapshot(d)
    refused(capsys, argv, d / "node_keys.json")
    assert snapshot(d) == before
    for name in ("config.toml", "validator.json"):  # no key file yet, but a config or validator.json from before
        other = tmp_path / f"only-{name}"
        other.mkdir()
        (other / name).write_text("mine\n")
        refused(capsys, ["init", "node", "--node-id", "x", "--dir", str(other), "--plaintext-keys"], other / name)
        assert snapshot(other) == {name: hashlib.sha256(b"mine\n").hexdigest()}  # no keys were written


def test_init_genesis_refuses_an_existing_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(2):
        assert (
            main(
                [
                    "init",
                    "node",
                    "--node-id",
                    f"v{i}",
                    "--dir",
                    str(tmp_path / f"v{i}"),
                    "--plaintext-keys",
                    "--listen",
                    f"127.0.0.1:{7300 + i}",
                ]
            )
            == 0
        )
    out = tmp_path / "genesis.json"
    argv = [
        "init",
        "genesis",
        "--chain-id",
        "bank-net",
        "--admin-key",
        "22" * 32,
        "--out",
        str(out),
        "--validator",
        str(tmp_path / "v0" / "validator.json"),
        "--validator",
        str(tmp_path / "v1" / "validator.json"),
    ]
    assert main(argv) == 0
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    refused(capsys, argv, out)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
