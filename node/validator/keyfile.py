"""A node's secret keys: the Ed25519 identity key (peer transport) and the BLS consensus key (votes, proposals).

Stored as one JSON file with mode 0600 (docs/operations.md, "Keys" and "Keys at rest"); version 2 says whether the
secrets are plaintext (testnets) or sealed under a passphrase (node/client/keystore.py):

    {"format": "consortium-ledger-node-keys/2", "node_id": "node-0", "identity_key": hex32, "bls_key": hex48,
     "protection": "plaintext", "identity_seed": hex32, "bls_secret": hex32}
    {"format": "consortium-ledger-node-keys/2", "node_id": "node-0", "identity_key": hex32, "bls_key": hex48,
     "protection": "passphrase", "sealed": {...}}          # the sealed secret: identity_seed || bls_secret

Version 1 files (`{"format": "consortium-ledger-node-keys/1", "node_id", "identity_seed", "bls_secret"}`) still load.

The public parts (identity key, BLS key and its proof of possession) go into the genesis file, or into the
AddValidator action of a governance proposal for a validator added later.

Key rotation: `rotate_keys` makes fresh keys for the same node id, written beside the key file as
`next_keys_path(keys_file)` (node_keys.next.json); their public parts go into a RotateValidatorKeys action. The node
loads both files and, in every epoch, signs and connects with the keys that epoch's validator record names.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from typing import Any, Final

import nacl.signing

from consensus import bls
from node.chain.protocol import bls_backend
from node.client.keystore import PROTECTION_PASSPHRASE, PROTECTION_PLAINTEXT, KdfCost, KeystoreError, seal, unseal
from node.errors import NodeError
from node.net.handshake import Identity

KEYS_FORMAT: Final = "consortium-ledger-node-keys/2"
KEYS_FORMAT_V1: Final = "consortium-ledger-node-keys/1"
KEYS_FORMATS: Final = (KEYS_FORMAT, KEYS_FORMAT_V1)
MAX_KEYS_FILE_BYTES: Final = 8192
_HEADER_FIELDS: Final = ("format", "node_id", "identity_key", "bls_key", "protection")
_FIELDS: Final = {
    KEYS_FORMAT_V1: frozenset({"format", "node_id", "identity_seed", "bls_secret"}),
    PROTECTION_PLAINTEXT: frozenset({*_HEADER_FIELDS, "identity_seed", "bls_secret"}),
    PROTECTION_PASSPHRASE: frozenset({*_HEADER_FIELDS, "sealed"}),
}


class KeyFileError(NodeError, ValueError):
    """A key file that cannot be read, parsed or written."""


@dataclass(frozen=True, slots=True)
class NodeKeys:
    node_id: str
    identity_seed: bytes
    bls_secret: bytes

    @staticmethod
    def generate(node_id: str, seed: bytes | None = None) -> NodeKeys:
        """Fresh keys from the OS random source, or deterministic ones from `seed` (tests, testnets)."""
        if seed is None:
            identity_seed, bls_seed = os.urandom(32), os.urandom(32)
        else:
            import hashlib

            identity_seed = hashlib.sha256(b"identity|" + seed).digest()
            bls_seed = hashlib.sha256(b"bls|" + seed).digest()
        return NodeKeys(node_id, identity_seed, bls_backend().keygen(bls_seed))

    @property
    def signing_key(self) -> nacl.signing.SigningKey:
        return nacl.signing.SigningKey(self.identity_seed)

    @property
    def identity_key(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    def identity(self) -> Identity:
        return Identity(self.node_id, self.signing_key)

    @property
    def bls_public_key(self) -> bytes:
        return bls_backend().public_key(self.bls_secret)

    def bls_pop(self) -> bytes:
        return bls_backend().pop_prove(self.bls_secret)

    def to_json(self, passphrase: bytes | None = None, cost: KdfCost = KdfCost.MODERATE) -> dict[str, Any]:
        """The key file's JSON: plaintext, or the secrets sealed under `passphrase` at Argon2id `cost`."""
        header = {"format": KEYS_FORMAT, "node_id": self.node_id, "identity_key": self.identity_key.hex(),
                  "bls_key": self.bls_public_key.hex(),
                  "protection": PROTECTION_PLAINTEXT if passphrase is None else PROTECTION_PASSPHRASE}
        if passphrase is None:
            return {**header, "identity_seed": self.identity_seed.hex(), "bls_secret": self.bls_secret.hex()}
        try:
            sealed = seal(self.identity_seed + self.bls_secret, passphrase, header, cost)
        except KeystoreError as exc:
            raise KeyFileError(exc.code, exc.message) from None
        return {**header, "sealed": sealed}


@dataclass(frozen=True, slots=True)
class KeyFileInfo:
    """What a node key file says without its passphrase: owner, public keys (None in a version 1 file) and
    protection ("plaintext" or "passphrase")."""

    node_id: str
    identity_key: bytes | None
    bls_key: bytes | None
    protection: str
    format: str
    cost: KdfCost | None = None  # the Argon2id cost of a sealed file

    @property
    def encrypted(self) -> bool:
        return self.protection == PROTECTION_PASSPHRASE


def rotate_keys(keys: NodeKeys, seed: bytes | None = None) -> NodeKeys:
    """Fresh identity and BLS keys for the same node (deterministic from `seed` in tests)."""
    fresh = NodeKeys.generate(keys.node_id, seed)
    assert fresh.identity_seed != keys.identity_seed and fresh.bls_secret != keys.bls_secret
    return fresh


def next_keys_path(path: str | os.PathLike[str]) -> str:
    """Where `ledger keys rotate` writes the next keys of the key file at `path`: beside it, `<stem>.next.json`."""
    text = os.fspath(path)
    stem = text.removesuffix(".json")
    return stem + ".next.json"


def load_next_keys(path: str | os.PathLike[str], passphrase: bytes | None = None) -> list[NodeKeys]:
    """The next keys written beside the key file at `path` ([] when there are none); KeyFileError when the file
    exists but is unreadable, or belongs to another node. A sealed next-keys file opens with the same passphrase
    as the key file (`ledger keys rotate` writes it so)."""
    nxt = next_keys_path(path)
    if not os.path.exists(nxt):
        return []
    keys = load_keys(nxt, passphrase)
    current = read_key_file_info(path)
    if keys.node_id != current.node_id:
        raise KeyFileError("keys_bad_format", f"{nxt} is for {keys.node_id!r}, {path} for {current.node_id!r}")
    return [keys]


def never_signed_path(path: str | os.PathLike[str]) -> str:
    """The marker beside the key file at `path` (`<stem>.never-signed`): these keys have never signed anything.

    Written with a new node's keys; the node deletes it once it has created its consensus directory (and marked it:
    node/validator/safety_store.py). A consensus directory created later -- the data directory was wiped -- finds no
    marker, so the node cannot claim it never signed in the current epoch and signs again only from the next."""
    return os.fspath(path).removesuffix(".json") + ".never-signed"


def write_new_node_keys(path: str | os.PathLike[str], keys: NodeKeys, *, overwrite: bool = False,
                        passphrase: bytes | None = None, cost: KdfCost = KdfCost.MODERATE) -> None:
    """The key file of a new node (sealed under `passphrase` when given), and its never-signed marker."""
    write_keys(path, keys, overwrite=overwrite, passphrase=passphrase, cost=cost)
    with open(never_signed_path(path), "w", encoding="utf-8") as f:
        f.write("these node keys have never signed; the node deletes this file when it first creates its consensus "
                "directory (a later, wiped directory must not look like a first start)\n")
        f.flush()
        os.fsync(f.fileno())


def write_keys(path: str | os.PathLike[str], keys: NodeKeys, *, overwrite: bool = False,
               passphrase: bytes | None = None, cost: KdfCost = KdfCost.MODERATE) -> None:
    """Create the key file with mode 0600 (refuses to overwrite unless asked): plaintext when `passphrase` is None,
    else the secrets sealed under it (Argon2id at `cost`)."""
    document = keys.to_json(passphrase, cost)  # seal first: a refused passphrase leaves no file behind
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise KeyFileError("keys_exist", f"{path} already exists; refusing to overwrite node keys") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)
        json.dump(document, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def _read(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            raw = f.read(MAX_KEYS_FILE_BYTES + 1)
    except OSError as exc:
        raise KeyFileError("keys_unreadable", f"cannot read {path}: {exc.strerror}") from None
    if stat.S_IMODE(mode) & 0o077:
        raise KeyFileError("keys_permissions", f"{path} is accessible by group or others (mode "
                                               f"{oct(stat.S_IMODE(mode))}); run chmod 600 on it")
    if len(raw) > MAX_KEYS_FILE_BYTES:
        raise KeyFileError("keys_bad_format", f"{path} is too large to be a node key file")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise KeyFileError("keys_bad_json", f"{path} is not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("format") not in KEYS_FORMATS:
        raise KeyFileError("keys_bad_format", f"{path} is not a {KEYS_FORMAT} (or /1) file")
    kind = KEYS_FORMAT_V1 if doc["format"] == KEYS_FORMAT_V1 else doc.get("protection")
    if kind not in _FIELDS or set(doc) != _FIELDS[kind]:
        raise KeyFileError("keys_bad_format", f"{path}: a {doc['format']} file has exactly "
                                              f"{', '.join(sorted(_FIELDS.get(kind, _FIELDS[PROTECTION_PLAINTEXT])))}"
                                              " (protection: plaintext or passphrase)")
    if not isinstance(doc["node_id"], str):
        raise KeyFileError("keys_bad_format", f"{path}: node_id must be a string")
    return doc


def _hex(doc: dict[str, Any], name: str, length: int, path: str | os.PathLike[str]) -> bytes:
    try:
        raw = bytes.fromhex(doc[name])
    except (TypeError, ValueError):
        raw = b""
    if len(raw) != length:
        raise KeyFileError("keys_bad_format", f"{path}: {name} must be {length} bytes of hex")
    return raw


def read_key_file_info(path: str | os.PathLike[str]) -> KeyFileInfo:
    """The public parts of the key file at `path` (no passphrase needed)."""
    doc = _read(path)
    if doc["format"] == KEYS_FORMAT_V1:
        return KeyFileInfo(doc["node_id"], None, None, PROTECTION_PLAINTEXT, KEYS_FORMAT_V1)
    cost = None
    if doc["protection"] == PROTECTION_PASSPHRASE:
        sealed = doc["sealed"]
        try:
            if type(sealed) is not dict or type(sealed.get("opslimit")) is not int or \
                    type(sealed.get("memlimit")) is not int:
                raise KeystoreError("keystore_malformed", "sealed.opslimit and sealed.memlimit must be integers")
            cost = KdfCost(sealed["opslimit"], sealed["memlimit"])
        except KeystoreError as exc:
            raise KeyFileError(exc.code, f"{path}: {exc.message}") from None
    return KeyFileInfo(doc["node_id"], _hex(doc, "identity_key", 32, path), _hex(doc, "bls_key", 48, path),
                       doc["protection"], doc["format"], cost)


def load_keys(path: str | os.PathLike[str], passphrase: bytes | None = None) -> NodeKeys:
    """The keys in the file at `path`; `passphrase` opens a sealed file (ignored for a plaintext one).
    KeyFileError codes: keys_unreadable, keys_permissions, keys_bad_json, keys_bad_format, and for a sealed file
    keystore_passphrase_required, keystore_passphrase_wrong, keystore_tampered, keystore_malformed."""
    doc = _read(path)
    if doc.get("protection") == PROTECTION_PASSPHRASE:
        if passphrase is None:
            raise KeyFileError("keystore_passphrase_required", f"{path} is encrypted: give its passphrase "
                                                               "(--passphrase-file, --passphrase-env or a prompt)")
        header = {k: doc[k] for k in _HEADER_FIELDS}
        try:
            secret = unseal(doc["sealed"], passphrase, header)
        except KeystoreError as exc:
            raise KeyFileError(exc.code, f"{path}: {exc.message}") from None
        if len(secret) != 64:
            raise KeyFileError("keystore_tampered", f"{path}: the sealed secret is not 64 bytes")
        identity_seed, bls_secret = secret[:32], secret[32:]
    else:
        identity_seed, bls_secret = _hex(doc, "identity_seed", 32, path), _hex(doc, "bls_secret", 32, path)
    keys = NodeKeys(doc["node_id"], identity_seed, bls_secret)
    try:
        bls_key = keys.bls_public_key
    except bls.BlsError:
        raise KeyFileError("keys_bad_format", f"{path}: the BLS secret is not a valid key") from None
    if doc["format"] == KEYS_FORMAT and (_hex(doc, "identity_key", 32, path) != keys.identity_key
                                         or _hex(doc, "bls_key", 48, path) != bls_key):
        raise KeyFileError("keys_bad_format", f"{path}: identity_key or bls_key does not belong to the secrets")
    return keys
