"""Node key files at rest (issue 16 part 4): sealed under a passphrase, version 2 with an explicit protection field,
version 1 still loading; wrong passphrase, tampering and permissions each refused with their own code."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from nacl.pwhash import argon2id

from node.cli import main
from node.client.keystore import KdfCost
from node.validator.keyfile import (
    KeyFileError,
    NodeKeys,
    load_keys,
    load_next_keys,
    next_keys_path,
    read_key_file_info,
    write_keys,
)

# TEST-ONLY Argon2id cost (libsodium's minimum), named only here; production writes "moderate" by default.
TEST_COST = KdfCost(argon2id.OPSLIMIT_MIN, argon2id.MEMLIMIT_MIN)
PASS = b"node passphrase 1"


def code_of(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(KeyFileError) as info:
        call()
    return info.value.code


def edit(path: str, change) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(Path(path).read_text())
    change(doc)
    Path(path).write_text(json.dumps(doc))
    os.chmod(path, 0o600)


def test_sealed_node_keys_round_trip(tmp_path: Path) -> None:
    keys = NodeKeys.generate("bank-a-1")
    path = str(tmp_path / "node_keys.json")
    write_keys(path, keys, passphrase=PASS, cost=TEST_COST)
    text = Path(path).read_text()
    assert keys.identity_seed.hex() not in text and keys.bls_secret.hex() not in text
    doc = json.loads(text)
    assert doc["format"] == "consortium-ledger-node-keys/2" and doc["protection"] == "passphrase"
    assert load_keys(path, PASS) == keys
    info = read_key_file_info(path)
    assert info.encrypted and info.identity_key == keys.identity_key and info.bls_key == keys.bls_public_key
    assert info.cost == TEST_COST
    assert code_of(lambda: load_keys(path)) == "keystore_passphrase_required"


def test_wrong_passphrase_tampering_and_permissions(tmp_path: Path) -> None:
    keys = NodeKeys.generate("bank-a-1")
    path = str(tmp_path / "node_keys.json")
    write_keys(path, keys, passphrase=PASS, cost=TEST_COST)
    assert code_of(lambda: load_keys(path, b"another passphrase")) == "keystore_passphrase_wrong"
    os.chmod(path, 0o640)
    assert code_of(lambda: load_keys(path, PASS)) == "keys_permissions"
    os.chmod(path, 0o600)

    def flip(doc: dict) -> None:
        ct = bytearray(bytes.fromhex(doc["sealed"]["ciphertext"]))
        ct[-1] ^= 0x80
        doc["sealed"]["ciphertext"] = ct.hex()

    edit(path, flip)
    assert code_of(lambda: load_keys(path, PASS)) == "keystore_tampered"
    path2 = str(tmp_path / "k2.json")
    write_keys(path2, keys, passphrase=PASS, cost=TEST_COST)
    edit(path2, lambda doc: doc.update(node_id="bank-z-9"))  # the header is authenticated
    assert code_of(lambda: load_keys(path2, PASS)) == "keystore_tampered"


def test_plaintext_is_explicit_and_version_1_loads(tmp_path: Path) -> None:
    keys = NodeKeys.generate("node-0")
    path = str(tmp_path / "plain.json")
    write_keys(path, keys)
    doc = json.loads(Path(path).read_text())
    assert doc["protection"] == "plaintext" and doc["identity_seed"] == keys.identity_seed.hex()
    assert load_keys(path) == keys and load_keys(path, PASS) == keys  # a passphrase is not needed, nor harmful
    edit(path, lambda d: d.update(identity_key="00" * 32))  # public keys must belong to the secrets
    assert code_of(lambda: load_keys(path)) == "keys_bad_format"
    old = str(tmp_path / "v1.json")
    fd = os.open(old, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(
            {
                "format": "consortium-ledger-node-keys/1",
                "node_id": "node-0",
                "identity_seed": keys.identity_seed.hex(),
                "bls_secret": keys.bls_secret.hex(),
            },
            f,
        )
    assert load_keys(old) == keys
    info = read_key_file_info(old)
    assert not info.encrypted and info.identity_key is None


def test_rotation_keeps_the_protection(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = NodeKeys.generate("bank-a-1")
    path = str(tmp_path / "node_keys.json")
    write_keys(path, keys, passphrase=PASS, cost=TEST_COST)
    pass_file = tmp_path / "pass"
    pass_file.write_bytes(PASS)
    assert main(["keys", "rotate", "--keys", path]) == 2  # sealed, no passphrase, no terminal
    assert json.loads(capsys.readouterr().err)["error"] == "keystore_passphrase_required"
    assert main(["keys", "rotate", "--keys", path, "--passphrase-file", str(pass_file)]) == 0
    out = json.loads(capsys.readouterr().out)
    nxt = read_key_file_info(next_keys_path(path))
    assert nxt.encrypted and nxt.cost == TEST_COST and nxt.identity_key.hex() == out["identity_key"]
    assert [k.identity_key for k in load_next_keys(path, PASS)] == [nxt.identity_key]
    # `keys show` prints public keys of a sealed file without its passphrase; --pop needs the secret.
    assert main(["keys", "show", path]) == 0
    assert json.loads(capsys.readouterr().out)["identity_key"] == keys.identity_key.hex()
    assert main(["keys", "show", path, "--pop", "--passphrase-file", str(pass_file)]) == 0
    assert json.loads(capsys.readouterr().out)["bls_pop"] == keys.bls_pop().hex()


def test_keys_seal_encrypts_existing_plaintext_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A validator already in a genesis keeps its keys: `ledger keys seal` writes a sealed copy of them."""
    from node.client.keys import AccountKey, load_key, save_key

    keys = NodeKeys.generate("bank-a-1")
    old = str(tmp_path / "v1.json")
    fd = os.open(old, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(
            {
                "format": "consortium-ledger-node-keys/1",
                "node_id": "bank-a-1",
                "identity_seed": keys.identity_seed.hex(),
                "bls_secret": keys.bls_secret.hex(),
            },
            f,
        )
    pass_file = tmp_path / "pass"
    pass_file.write_bytes(PASS + b"\n")
    sealed = str(tmp_path / "sealed.json")
    argv = ["keys", "seal", old, "--out", sealed, "--passphrase-file", str(pass_file), "--kdf-cost", "interactive"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["identity_key"] == keys.identity_key.hex()
    assert read_key_file_info(sealed).encrypted and load_keys(sealed, PASS) == keys
    assert main(argv) == 2  # never overwrites
    assert json.loads(capsys.readouterr().err)["error"] == "keys_exist"
    assert main(["keys", "seal", sealed, "--out", str(tmp_path / "x.json"), "--passphrase-file", str(pass_file)]) == 2
    assert json.loads(capsys.readouterr().err)["error"] == "key_file_already_sealed"
    account = AccountKey.generate("erin@bank-b")
    plain = str(tmp_path / "erin.key")
    save_key(account, plain)
    out = str(tmp_path / "erin.sealed.key")
    assert (
        main(["keys", "seal", plain, "--out", out, "--passphrase-file", str(pass_file), "--kdf-cost", "interactive"])
        == 0
    )
    capsys.readouterr()
    assert load_key(out, PASS).public_key == account.public_key
