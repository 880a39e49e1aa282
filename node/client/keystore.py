"""Secret keys at rest under a passphrase: the sealed envelope that account key files (node/client/keys.py) and node
key files (node/validator/keyfile.py) carry when they are encrypted (docs/operations.md, "Keys at rest").

    sealed = seal(secret, passphrase, header, KdfCost.MODERATE)   # -> the JSON object stored under "sealed"
    secret = unseal(sealed, passphrase, header)                   # KeystoreError on any problem

Key derivation: Argon2id (libsodium's crypto_pwhash, through pynacl) from the passphrase and a random 16-byte salt to
64 bytes; the first 32 are the encryption key, the last 32 the passphrase-check key. Encryption: XChaCha20-Poly1305
(IETF AEAD) with a random 24-byte nonce; the associated data binds the file's header (format, owner, public keys)
and the envelope's parameters, so no field of the file can be changed without detection.

The check value (keyed BLAKE2b of a fixed label under the check key) tells the two failures apart: when it does not
match, the passphrase is wrong (`keystore_passphrase_wrong`); when it matches and the AEAD still fails, the file was
modified (`keystore_tampered`). Changing the salt or the cost makes every passphrase look wrong -- either way no key
is released. The check value gives an attacker nothing the ciphertext does not: both cost one Argon2id run per guess.

Costs: production writes use `KdfCost.MODERATE` (libsodium's "moderate": 3 passes over 256 MiB) unless the operator
picks another named level. A file may carry any cost inside [MIN_OPSLIMIT..MAX_OPSLIMIT] x [MIN_MEMLIMIT..MAX_MEMLIMIT]
(docs/limits.md); anything outside is refused before any work (a file cannot make the reader allocate 100 GiB).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import nacl.bindings
import nacl.exceptions
from nacl.pwhash import argon2id

from node.client.errors import ClientError

__all__ = [
    "CIPHER_NAME",
    "KDF_NAME",
    "MAX_PASSPHRASE_BYTES",
    "MIN_PASSPHRASE_BYTES",
    "PROTECTION_PASSPHRASE",
    "PROTECTION_PLAINTEXT",
    "KdfCost",
    "KeystoreError",
    "seal",
    "unseal",
]

KDF_NAME: Final = "argon2id13"
CIPHER_NAME: Final = "xchacha20poly1305-ietf"
PROTECTION_PLAINTEXT: Final = "plaintext"
PROTECTION_PASSPHRASE: Final = "passphrase"

MIN_PASSPHRASE_BYTES: Final = 8
MAX_PASSPHRASE_BYTES: Final = 1024
# Bounds on the cost a file may name (libsodium's own minimum; its "sensitive" level as the maximum).
MIN_OPSLIMIT: Final = argon2id.OPSLIMIT_MIN
MAX_OPSLIMIT: Final = argon2id.OPSLIMIT_SENSITIVE
MIN_MEMLIMIT: Final = argon2id.MEMLIMIT_MIN
MAX_MEMLIMIT: Final = argon2id.MEMLIMIT_SENSITIVE
MAX_SEALED_SECRET_BYTES: Final = 256

_SALT_BYTES: Final = argon2id.SALTBYTES  # 16
_NONCE_BYTES: Final = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES  # 24
_CHECK_LABEL: Final = b"consortium-ledger keystore passphrase check v1"
_SEALED_FIELDS: Final = frozenset({"kdf", "opslimit", "memlimit", "salt", "check", "cipher", "nonce", "ciphertext"})


class KeystoreError(ClientError):
    """A sealed key that cannot be opened or written, or a passphrase that cannot be had. Codes (stable;
    docs/operations.md, "Keys at rest"): keystore_passphrase_wrong, keystore_tampered, keystore_passphrase_required,
    keystore_passphrase_too_short, keystore_passphrase_too_long, keystore_malformed, and from the passphrase sources
    of the `ledger` commands (node/cli/passphrase.py) passphrase_file_unreadable, passphrase_env_unset,
    passphrase_mismatch, passphrase_no_terminal. (A key file open to others is refused by its reader with its own
    code: keys_permissions for node keys, key_file_permissions for account keys.)"""


@dataclass(frozen=True, slots=True)
class KdfCost:
    """Argon2id cost: passes (opslimit) and memory in bytes (memlimit)."""

    opslimit: int
    memlimit: int

    INTERACTIVE: ClassVar[KdfCost]
    MODERATE: ClassVar[KdfCost]
    SENSITIVE: ClassVar[KdfCost]

    def __post_init__(self) -> None:
        if not (MIN_OPSLIMIT <= self.opslimit <= MAX_OPSLIMIT and MIN_MEMLIMIT <= self.memlimit <= MAX_MEMLIMIT):
            raise KeystoreError(
                "keystore_malformed",
                f"Argon2id cost outside the accepted range: opslimit "
                f"{self.opslimit} (allowed {MIN_OPSLIMIT}..{MAX_OPSLIMIT}), memlimit {self.memlimit} "
                f"(allowed {MIN_MEMLIMIT}..{MAX_MEMLIMIT})",
            )

    @staticmethod
    def named(name: str) -> KdfCost:
        """One of the named levels `ledger` offers: interactive, moderate (the default), sensitive."""
        levels = {"interactive": KdfCost.INTERACTIVE, "moderate": KdfCost.MODERATE, "sensitive": KdfCost.SENSITIVE}
        if name not in levels:
            raise KeystoreError("keystore_malformed", f"unknown cost level {name!r}; use {', '.join(levels)}")
        return levels[name]


KdfCost.INTERACTIVE = KdfCost(argon2id.OPSLIMIT_INTERACTIVE, argon2id.MEMLIMIT_INTERACTIVE)
KdfCost.MODERATE = KdfCost(argon2id.OPSLIMIT_MODERATE, argon2id.MEMLIMIT_MODERATE)
KdfCost.SENSITIVE = KdfCost(argon2id.OPSLIMIT_SENSITIVE, argon2id.MEMLIMIT_SENSITIVE)
COST_LEVELS: Final = ("interactive", "moderate", "sensitive")
DEFAULT_COST_LEVEL: Final = "moderate"


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _associated_data(header: dict[str, Any], sealed: dict[str, Any]) -> bytes:
    return _canonical({"header": header, "sealed": {k: v for k, v in sealed.items() if k != "ciphertext"}})


def _derive(passphrase: bytes, salt: bytes, cost: KdfCost) -> tuple[bytes, bytes]:
    master = argon2id.kdf(64, passphrase, salt, opslimit=cost.opslimit, memlimit=cost.memlimit)
    check = hashlib.blake2b(_CHECK_LABEL, key=master[32:], digest_size=32).digest()
    return master[:32], check


def _check_passphrase(passphrase: bytes) -> None:
    if len(passphrase) < MIN_PASSPHRASE_BYTES:
        raise KeystoreError("keystore_passphrase_too_short", f"a passphrase has at least {MIN_PASSPHRASE_BYTES} bytes")
    if len(passphrase) > MAX_PASSPHRASE_BYTES:
        raise KeystoreError("keystore_passphrase_too_long", f"a passphrase has at most {MAX_PASSPHRASE_BYTES} bytes")


def seal(secret: bytes, passphrase: bytes, header: dict[str, Any], cost: KdfCost) -> dict[str, Any]:
    """The sealed envelope of `secret` under `passphrase`, bound to `header` (the file's other fields)."""
    _check_passphrase(passphrase)
    assert 0 < len(secret) <= MAX_SEALED_SECRET_BYTES
    salt, nonce = os.urandom(_SALT_BYTES), os.urandom(_NONCE_BYTES)
    key, check = _derive(passphrase, salt, cost)
    sealed: dict[str, Any] = {
        "kdf": KDF_NAME,
        "opslimit": cost.opslimit,
        "memlimit": cost.memlimit,
        "salt": salt.hex(),
        "check": check.hex(),
        "cipher": CIPHER_NAME,
        "nonce": nonce.hex(),
    }
    ciphertext = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        secret, _associated_data(header, sealed), nonce, key
    )
    sealed["ciphertext"] = ciphertext.hex()
    return sealed


def _hex_field(sealed: dict[str, Any], name: str, length: int | None) -> bytes:
    value = sealed[name]
    try:
        if type(value) is not str or value != value.lower():
            raise ValueError
        raw = bytes.fromhex(value)
    except ValueError:
        raise KeystoreError("keystore_malformed", f"sealed.{name} must be lowercase hex") from None
    if length is not None and len(raw) != length:
        raise KeystoreError("keystore_malformed", f"sealed.{name} must be {length} bytes")
    return raw


def unseal(sealed: Any, passphrase: bytes, header: dict[str, Any]) -> bytes:
    """The secret in `sealed`. KeystoreError: keystore_malformed (not an envelope this version reads, or a cost out of
    bounds), keystore_passphrase_wrong, keystore_tampered."""
    if type(sealed) is not dict or set(sealed) != _SEALED_FIELDS:
        raise KeystoreError("keystore_malformed", f"sealed has exactly: {', '.join(sorted(_SEALED_FIELDS))}")
    if sealed["kdf"] != KDF_NAME or sealed["cipher"] != CIPHER_NAME:
        raise KeystoreError(
            "keystore_malformed",
            f"unsupported kdf/cipher {sealed['kdf']!r}/{sealed['cipher']!r}; "
            f"this version reads {KDF_NAME}/{CIPHER_NAME}",
        )
    if type(sealed["opslimit"]) is not int or type(sealed["memlimit"]) is not int:
        raise KeystoreError("keystore_malformed", "sealed.opslimit and sealed.memlimit must be integers")
    cost = KdfCost(sealed["opslimit"], sealed["memlimit"])
    salt = _hex_field(sealed, "salt", _SALT_BYTES)
    check = _hex_field(sealed, "check", 32)
    nonce = _hex_field(sealed, "nonce", _NONCE_BYTES)
    ciphertext = _hex_field(sealed, "ciphertext", None)
    if not 16 < len(ciphertext) <= MAX_SEALED_SECRET_BYTES + 16:
        raise KeystoreError("keystore_malformed", "sealed.ciphertext has an impossible length")
    if not 0 < len(passphrase) <= MAX_PASSPHRASE_BYTES:
        raise KeystoreError("keystore_passphrase_wrong", "the passphrase does not open this key")
    key, expected = _derive(passphrase, salt, cost)
    if not hmac.compare_digest(check, expected):
        raise KeystoreError("keystore_passphrase_wrong", "the passphrase does not open this key")
    try:
        return nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            ciphertext, _associated_data(header, sealed), nonce, key
        )
    except nacl.exceptions.CryptoError:
        raise KeystoreError(
            "keystore_tampered",
            "the key file was modified: its sealed key fails authentication (the passphrase is right)",
        ) from None
