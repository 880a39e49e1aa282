"""Keys at rest (issue 16 part 4): sealed account key files -- round trip, wrong passphrase, tampering, permissions,
format versions -- and the passphrase sources of the `ledger` commands."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from nacl.pwhash import argon2id

from node.cli import main
from node.cli.passphrase import load_account_key
from node.client.errors import ClientError
from node.client.keys import AccountKey, key_file_info, load_key, save_key
from node.client.keystore import KdfCost, KeystoreError, seal, unseal

# A TEST-ONLY Argon2id cost (libsodium's minimum: one pass over 8 KiB) so these tests run in milliseconds. Production
# code never names it: `ledger` offers only interactive/moderate/sensitive and writes moderate by default.
TEST_COST = KdfCost(argon2id.OPSLIMIT_MIN, argon2id.MEMLIMIT_MIN)
PASS = b"correct horse battery staple"


def sealed_key(tmp_path: Path, name: str = "k.key") -> tuple[AccountKey, str]:
    key = AccountKey.generate("alice@bank-a")
    path = str(tmp_path / name)
    save_key(key, path, passphrase=PASS, cost=TEST_COST)
    return key, path


def code_of(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as info:
        call()
    return str(info.value.code)


def rewrite(path: str, change) -> None:  # type: ignore[no-untyped-def]
    with open(path, encoding="ascii") as f:
        doc = json.load(f)
    change(doc)
    with open(path, "w", encoding="ascii") as f:
        json.dump(doc, f)
    os.chmod(path, 0o600)


def test_sealed_round_trip_and_file_shape(tmp_path: Path) -> None:
    key, path = sealed_key(tmp_path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    doc = json.loads(Path(path).read_text())
    assert doc["format"] == "ledger-key/2" and doc["protection"] == "passphrase" and "seed" not in doc
    assert bytes(key.signing_key).hex() not in Path(path).read_text()
    assert doc["sealed"]["kdf"] == "argon2id13" and doc["sealed"]["cipher"] == "xchacha20poly1305-ietf"
    assert load_key(path, PASS).public_key == key.public_key
    info = key_file_info(path)  # public parts without the passphrase
    assert (info.account, info.public_key, info.protection) == ("alice@bank-a", key.public_key, "passphrase")
    assert code_of(lambda: load_key(path)) == "keystore_passphrase_required"


def test_wrong_passphrase_and_tampering_have_distinct_codes(tmp_path: Path) -> None:
    _, path = sealed_key(tmp_path)
    assert code_of(lambda: load_key(path, b"not the passphrase")) == "keystore_passphrase_wrong"

    def flip_ciphertext(doc: dict) -> None:
        ct = bytearray(bytes.fromhex(doc["sealed"]["ciphertext"]))
        ct[3] ^= 1
        doc["sealed"]["ciphertext"] = ct.hex()

    rewrite(path, flip_ciphertext)
    assert code_of(lambda: load_key(path, PASS)) == "keystore_tampered"
    # The header is bound too: another public key (or account) in a sealed file is detected.
    other = AccountKey.generate("alice@bank-a")
    _, path2 = sealed_key(tmp_path, "k2.key")
    rewrite(path2, lambda doc: doc.update(public_key=other.public_key.hex()))
    assert code_of(lambda: load_key(path2, PASS)) == "keystore_tampered"
    _, path3 = sealed_key(tmp_path, "k3.key")
    rewrite(path3, lambda doc: doc.update(account="mallory@bank-a"))
    assert code_of(lambda: load_key(path3, PASS)) == "keystore_tampered"
    # A cost out of bounds is refused before any work (a file cannot make the reader allocate 100 GiB).
    _, path4 = sealed_key(tmp_path, "k4.key")
    rewrite(path4, lambda doc: doc["sealed"].update(memlimit=100 << 30))
    assert code_of(lambda: load_key(path4, PASS)) == "keystore_malformed"


def test_permissions_are_checked_for_every_protection(tmp_path: Path) -> None:
    _, sealed = sealed_key(tmp_path)
    plain = str(tmp_path / "plain.key")
    save_key(AccountKey.generate("bob@bank-a"), plain)
    for path in (sealed, plain):
        for mode in (0o640, 0o604, 0o660):
            os.chmod(path, mode)
            assert code_of(lambda p=path: load_key(p, PASS)) == "key_file_permissions"
        os.chmod(path, 0o600)
        load_key(path, PASS)


def test_plaintext_is_explicit_and_version_1_still_loads(tmp_path: Path) -> None:
    key = AccountKey.generate("carol@bank-b")
    plain = str(tmp_path / "plain.key")
    save_key(key, plain)
    doc = json.loads(Path(plain).read_text())
    assert doc["format"] == "ledger-key/2" and doc["protection"] == "plaintext"
    assert load_key(plain).public_key == key.public_key
    old = str(tmp_path / "old.key")
    fd = os.open(old, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(
            {
                "format": "ledger-key/1",
                "account": "carol@bank-b",
                "public_key": key.public_key.hex(),
                "seed": bytes(key.signing_key).hex(),
            },
            f,
        )
    assert load_key(old).public_key == key.public_key
    assert key_file_info(old).protection == "plaintext"
    rewrite(old, lambda d: d.update(protection="plaintext"))  # a v1 file has no protection field
    assert code_of(lambda: load_key(old)) == "key_file_malformed"


def test_envelope_rules() -> None:
    header = {"format": "x", "owner": "y"}
    sealed = seal(b"s" * 32, PASS, header, TEST_COST)
    assert unseal(sealed, PASS, header) == b"s" * 32
    with pytest.raises(KeystoreError) as info:
        unseal(sealed, PASS, {**header, "owner": "z"})
    assert info.value.code == "keystore_tampered"
    with pytest.raises(KeystoreError) as info:
        seal(b"s" * 32, b"short", header, TEST_COST)
    assert info.value.code == "keystore_passphrase_too_short"
    for bad in (
        {**sealed, "extra": 1},
        {**sealed, "kdf": "scrypt"},
        {**sealed, "salt": "00"},
        {**sealed, "opslimit": "3"},
    ):
        with pytest.raises(KeystoreError) as info:
            unseal(bad, PASS, header)
        assert info.value.code == "keystore_malformed"
    with pytest.raises(KeystoreError) as info:
        KdfCost.named("fast")
    assert info.value.code == "keystore_malformed"
    # The levels `ledger` offers are libsodium's; the default is "moderate" (256 MiB, 3 passes).
    assert KdfCost.named("moderate") == KdfCost(argon2id.OPSLIMIT_MODERATE, argon2id.MEMLIMIT_MODERATE)
    assert KdfCost.named("interactive").memlimit == 64 << 20


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else {}), captured.err


def test_cli_keys_new_sources_and_signing_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = str(tmp_path / "a.key")
    # Unattended and no choice made: refused, nothing written.
    code, _, err = run(capsys, "keys", "new", "--account", "alice@bank-a", "--out", out)
    assert code == 2 and json.loads(err)["error"] == "keystore_passphrase_required" and not os.path.exists(out)
    code, _, err = run(capsys, "keys", "new", "--account", "alice@bank-a", "--out", out, "--passphrase-env", "NOPE_X")
    assert code == 2 and json.loads(err)["error"] == "passphrase_env_unset"
    monkeypatch.setenv("ALICE_PASS", PASS.decode())
    code, made, _ = run(
        capsys,
        "keys",
        "new",
        "--account",
        "alice@bank-a",
        "--out",
        out,
        "--passphrase-env",
        "ALICE_PASS",
        "--kdf-cost",
        "interactive",
    )
    assert code == 0 and made["protection"] == "passphrase"
    assert load_key(out, PASS).public_key.hex() == made["public_key"]
    code, shown, _ = run(capsys, "keys", "show", out)  # public parts: no passphrase needed
    assert code == 0 and shown == {"account": "alice@bank-a", "public_key": made["public_key"]}
    # A file source: one trailing newline is not part of the passphrase.
    pass_file = tmp_path / "pass"
    pass_file.write_bytes(PASS + b"\n")
    out_b = str(tmp_path / "b.key")
    code, made_b, _ = run(
        capsys,
        "keys",
        "new",
        "--account",
        "bob@bank-a",
        "--out",
        out_b,
        "--passphrase-file",
        str(pass_file),
        "--kdf-cost",
        "interactive",
    )
    assert code == 0 and load_key(out_b, PASS).public_key.hex() == made_b["public_key"]
    # Signing commands: $LEDGER_PASSPHRASE_FILE, then $LEDGER_PASSPHRASE; without either (no terminal): refused.
    with pytest.raises(ClientError) as info:
        load_account_key(out)
    assert info.value.code == "keystore_passphrase_required"
    monkeypatch.setenv("LEDGER_PASSPHRASE_FILE", str(pass_file))
    assert load_account_key(out).public_key.hex() == made["public_key"]
    monkeypatch.delenv("LEDGER_PASSPHRASE_FILE")
    monkeypatch.setenv("LEDGER_PASSPHRASE", "wrong passphrase")
    with pytest.raises(ClientError) as info:
        load_account_key(out)
    assert info.value.code == "keystore_passphrase_wrong"
    code, _, err = run(
        capsys,
        "tx",
        "issue",
        "--asset",
        "X",
        "--recipient",
        "bob@bank-a",
        "--amount",
        "1",
        "--key",
        out,
        "--node",
        "http://127.0.0.1:9",
    )
    assert code == 2 and json.loads(err)["error"] == "keystore_passphrase_wrong"


def _on_terminal(argv: list[str], answers: list[bytes]) -> tuple[int, str]:
    """Run `ledger argv` on a pseudo-terminal, answering each passphrase prompt in turn; (exit code, output)."""
    import pty
    import select
    import sys
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: `ledger` on the terminal
        os.execv(sys.executable, [sys.executable, "-m", "node.cli", *argv])
    output, pending = b"", list(answers)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
        # One answer per prompt seen (counted, so a prompt split across reads is answered once: getpass discards
        # input typed ahead of its prompt).
        prompts = output.count(b"Passphrase for ") + output.count(b"Repeat the passphrase: ")
        if pending and prompts > len(answers) - len(pending):
            os.write(fd, pending.pop(0) + b"\n")
    else:  # never hang the suite on a prompt the test did not recognise
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def test_passphrase_prompt_on_a_terminal(tmp_path: Path) -> None:
    out = str(tmp_path / "p.key")
    base = ["keys", "new", "--account", "dora@bank-a", "--out", out, "--kdf-cost", "interactive"]
    code, text = _on_terminal(base, [PASS, b"something else entirely"])  # asked twice; they differ
    assert code == 2 and "passphrase_mismatch" in text and not os.path.exists(out)
    code, text = _on_terminal(base, [PASS, PASS])  # no source given, stdin is a terminal: it prompts
    assert code == 0 and "Repeat the passphrase" in text, text
    assert load_key(out, PASS).account == "dora@bank-a"
