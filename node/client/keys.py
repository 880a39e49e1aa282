"""Account keys for clients: an Ed25519 signing key bound to the account it signs for, and its key file.

Key file (JSON, written with mode 0600, never overwritten silently; a file group or others may access is refused
with `key_file_permissions`). Version 2, plaintext (testnets; the `protection` field says so) or sealed under a
passphrase (node/client/keystore.py; docs/operations.md, "Keys at rest"):

    {"format": "ledger-key/2", "account": "alice@bank-a", "public_key": "<64 hex>", "protection": "plaintext",
     "seed": "<64 hex>"}
    {"format": "ledger-key/2", "account": "alice@bank-a", "public_key": "<64 hex>", "protection": "passphrase",
     "sealed": {"kdf": "argon2id13", "opslimit", "memlimit", "salt", "check", "cipher", "nonce", "ciphertext"}}

Version 1 files (`{"format": "ledger-key/1", "account", "public_key", "seed"}`, plaintext) still load.
The seed is the 32-byte Ed25519 secret seed (RFC 8032); `public_key` is checked against it when the file is read.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from typing import Any, Final

from nacl.signing import SigningKey

from ledger.schema import ACCOUNT_PATTERN
from node.client.errors import ClientError
from node.client.keystore import PROTECTION_PASSPHRASE, PROTECTION_PLAINTEXT, KdfCost, KeystoreError, seal, unseal

__all__ = ["KEY_FORMAT", "AccountKey", "KeyFileInfo", "key_file_info", "load_key", "save_key"]

KEY_FORMAT: Final = "ledger-key/2"
KEY_FORMAT_V1: Final = "ledger-key/1"
MAX_KEY_FILE_BYTES: Final = 4096
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class AccountKey:
    """One Ed25519 key of one account. An M-of-N account is signed for with M of these (same account)."""

    account: str
    signing_key: SigningKey

    def __post_init__(self) -> None:
        if re.fullmatch(ACCOUNT_PATTERN, self.account, re.ASCII) is None:
            raise ClientError("key_bad_account", f"{self.account!r} is not an account id (name@member)")

    @staticmethod
    def generate(account: str) -> AccountKey:
        return AccountKey(account, SigningKey.generate())

    @staticmethod
    def from_seed(account: str, seed: bytes) -> AccountKey:
        if len(seed) != 32:
            raise ClientError("key_bad_seed", "an Ed25519 seed is 32 bytes")
        return AccountKey(account, SigningKey(seed))

    @property
    def public_key(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    def sign(self, message: bytes) -> bytes:
        return self.signing_key.sign(message).signature

    def to_json(self, passphrase: bytes | None = None, cost: KdfCost = KdfCost.MODERATE) -> dict[str, Any]:
        """The key file's JSON: plaintext, or sealed under `passphrase` at Argon2id `cost`."""
        header = {
            "format": KEY_FORMAT,
            "account": self.account,
            "public_key": self.public_key.hex(),
            "protection": PROTECTION_PLAINTEXT if passphrase is None else PROTECTION_PASSPHRASE,
        }
        if passphrase is None:
            return {**header, "seed": bytes(self.signing_key).hex()}
        return {**header, "sealed": seal(bytes(self.signing_key), passphrase, header, cost)}

    @staticmethod
    def from_json(obj: Any, passphrase: bytes | None = None) -> AccountKey:
        """A key from its file's JSON (version 1, or version 2 plaintext or sealed: then `passphrase` opens it)."""
        info = _info(obj)
        if info.protection == PROTECTION_PASSPHRASE:
            if passphrase is None:
                raise KeystoreError(
                    "keystore_passphrase_required", f"the key of {info.account} is encrypted: give its passphrase"
                )
            header = {k: obj[k] for k in ("format", "account", "public_key", "protection")}
            seed = unseal(obj["sealed"], passphrase, header)
        else:
            if type(obj["seed"]) is not str or _HEX64.fullmatch(obj["seed"]) is None:
                raise ClientError("key_file_malformed", "seed must be 64 lowercase hex digits")
            seed = bytes.fromhex(obj["seed"])
        if len(seed) != 32:
            raise KeystoreError("keystore_tampered", "the sealed seed is not 32 bytes")
        key = AccountKey.from_seed(info.account, seed)
        if key.public_key != info.public_key:
            raise ClientError("key_file_malformed", "public_key does not belong to the seed")
        return key

    def __repr__(self) -> str:  # never print the seed
        return f"AccountKey({self.account!r}, public_key={self.public_key.hex()})"


@dataclass(frozen=True, slots=True)
class KeyFileInfo:
    """The public parts of an account key file, readable without its passphrase."""

    account: str
    public_key: bytes
    protection: str  # "plaintext" or "passphrase"
    format: str


_FIELDS_V1: Final = frozenset({"format", "account", "public_key", "seed"})
_FIELDS_V2: Final = {
    PROTECTION_PLAINTEXT: frozenset({"format", "account", "public_key", "protection", "seed"}),
    PROTECTION_PASSPHRASE: frozenset({"format", "account", "public_key", "protection", "sealed"}),
}


def _info(obj: Any) -> KeyFileInfo:
    if type(obj) is not dict:
        raise ClientError("key_file_malformed", "a key file is a JSON object")
    fmt = obj.get("format")
    if fmt == KEY_FORMAT_V1:
        fields, protection = _FIELDS_V1, PROTECTION_PLAINTEXT
    elif fmt == KEY_FORMAT:
        protection = obj.get("protection")
        if protection not in _FIELDS_V2:
            raise ClientError("key_file_malformed", 'protection must be "plaintext" or "passphrase"')
        fields = _FIELDS_V2[protection]
    else:
        raise ClientError("key_file_malformed", f"unknown key file format {fmt!r}")
    if set(obj) != fields:
        raise ClientError("key_file_malformed", f"a {fmt} key file has exactly: {', '.join(sorted(fields))}")
    if type(obj["account"]) is not str:
        raise ClientError("key_file_malformed", "account must be a string")
    if type(obj["public_key"]) is not str or _HEX64.fullmatch(obj["public_key"]) is None:
        raise ClientError("key_file_malformed", "public_key must be 64 lowercase hex digits")
    return KeyFileInfo(obj["account"], bytes.fromhex(obj["public_key"]), protection, fmt)


def save_key(
    key: AccountKey,
    path: str,
    *,
    overwrite: bool = False,
    passphrase: bytes | None = None,
    cost: KdfCost = KdfCost.MODERATE,
) -> None:
    """Write a key file readable by its owner only: sealed under `passphrase` (Argon2id at `cost`), or plaintext
    when it is None. Refuses to replace an existing file unless `overwrite`."""
    document = key.to_json(passphrase, cost)  # seal before creating the file: a refused passphrase leaves nothing
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise ClientError("key_file_exists", f"{path} exists; refusing to overwrite a key") from None
    except OSError as exc:
        raise ClientError("key_file_unwritable", f"cannot write {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        os.fchmod(f.fileno(), 0o600)
        json.dump(document, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def _read(path: str) -> Any:
    try:
        with open(path, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            raw = f.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise ClientError("key_file_unreadable", f"cannot read {path}: {exc.strerror}") from None
    if stat.S_IMODE(mode) & 0o077:
        raise ClientError(
            "key_file_permissions",
            f"{path} is accessible by group or others (mode {oct(stat.S_IMODE(mode))}); run chmod 600 on it",
        )
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise ClientError("key_file_malformed", f"{path} is too large to be a key file")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ClientError("key_file_malformed", f"{path} is not JSON") from None


def key_file_info(path: str) -> KeyFileInfo:
    """The account and public key of a key file (no passphrase needed; nothing secret is read)."""
    return _info(_read(path))


def load_key(path: str, passphrase: bytes | None = None) -> AccountKey:
    """The key in the file at `path`; `passphrase` opens a sealed one (KeystoreError codes: keystore_*)."""
    try:
        return AccountKey.from_json(_read(path), passphrase)
    except KeystoreError as exc:
        raise KeystoreError(exc.code, f"{path}: {exc.message}") from None
