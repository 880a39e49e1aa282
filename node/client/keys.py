"""Account keys for clients: an Ed25519 signing key bound to the account it signs for, and its key file.

Key file (JSON, written with mode 0600, never overwritten silently):

    {"format": "ledger-key/1", "account": "alice@bank-a", "public_key": "<64 hex>", "seed": "<64 hex>"}

The seed is the 32-byte Ed25519 secret seed (RFC 8032); `public_key` is checked against it when the file is read.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any, Final

from nacl.signing import SigningKey

from ledger.schema import ACCOUNT_PATTERN
from node.client.errors import ClientError

__all__ = ["KEY_FORMAT", "AccountKey", "load_key", "save_key"]

KEY_FORMAT: Final = "ledger-key/1"
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

    def to_json(self) -> dict[str, Any]:
        return {
            "format": KEY_FORMAT,
            "account": self.account,
            "public_key": self.public_key.hex(),
            "seed": bytes(self.signing_key).hex(),
        }

    @staticmethod
    def from_json(obj: Any) -> AccountKey:
        if type(obj) is not dict or set(obj) != {"format", "account", "public_key", "seed"}:
            raise ClientError("key_file_malformed", "a key file has exactly: format, account, public_key, seed")
        if obj["format"] != KEY_FORMAT:
            raise ClientError("key_file_malformed", f"unknown key file format {obj['format']!r}")
        seed, pub = obj["seed"], obj["public_key"]
        if type(seed) is not str or _HEX64.fullmatch(seed) is None or type(pub) is not str:
            raise ClientError("key_file_malformed", "seed must be 64 lowercase hex digits")
        if type(obj["account"]) is not str:
            raise ClientError("key_file_malformed", "account must be a string")
        key = AccountKey.from_seed(obj["account"], bytes.fromhex(seed))
        if key.public_key.hex() != pub:
            raise ClientError("key_file_malformed", "public_key does not belong to the seed")
        return key

    def __repr__(self) -> str:  # never print the seed
        return f"AccountKey({self.account!r}, public_key={self.public_key.hex()})"


def save_key(key: AccountKey, path: str, *, overwrite: bool = False) -> None:
    """Write a key file readable by its owner only. Refuses to replace an existing file unless `overwrite`."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise ClientError("key_file_exists", f"{path} exists; refusing to overwrite a key") from None
    except OSError as exc:
        raise ClientError("key_file_unwritable", f"cannot write {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        json.dump(key.to_json(), f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def load_key(path: str) -> AccountKey:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise ClientError("key_file_unreadable", f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise ClientError("key_file_malformed", f"{path} is too large to be a key file")
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ClientError("key_file_malformed", f"{path} is not JSON") from None
    return AccountKey.from_json(obj)
