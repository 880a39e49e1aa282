"""A node's secret keys: the Ed25519 identity key (peer transport) and the BLS consensus key (votes, proposals).

Stored as one JSON file with mode 0600 (docs/operations.md, "Keys"):

    {"format": "consortium-ledger-node-keys/1", "node_id": "node-0",
     "identity_seed": hex32, "bls_secret": hex32}

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
from node.errors import NodeError
from node.net.handshake import Identity

KEYS_FORMAT: Final = "consortium-ledger-node-keys/1"


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

    def to_json(self) -> dict[str, Any]:
        return {"format": KEYS_FORMAT, "node_id": self.node_id, "identity_seed": self.identity_seed.hex(),
                "bls_secret": self.bls_secret.hex()}


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


def load_next_keys(path: str | os.PathLike[str]) -> list[NodeKeys]:
    """The next keys written beside the key file at `path` ([] when there are none); KeyFileError when the file
    exists but is unreadable, or belongs to another node."""
    nxt = next_keys_path(path)
    if not os.path.exists(nxt):
        return []
    keys = load_keys(nxt)
    current = load_keys(path)
    if keys.node_id != current.node_id:
        raise KeyFileError("keys_bad_format", f"{nxt} is for {keys.node_id!r}, {path} for {current.node_id!r}")
    return [keys]


def never_signed_path(path: str | os.PathLike[str]) -> str:
    """The marker beside the key file at `path` (`<stem>.never-signed`): these keys have never signed anything.

    Written with a new node's keys; the node deletes it once it has created its consensus directory (and marked it:
    node/validator/safety_store.py). A consensus directory created later -- the data directory was wiped -- finds no
    marker, so the node cannot claim it never signed in the current epoch and signs again only from the next."""
    return os.fspath(path).removesuffix(".json") + ".never-signed"


def write_new_node_keys(path: str | os.PathLike[str], keys: NodeKeys, *, overwrite: bool = False) -> None:
    """The key file of a new node, and its never-signed marker."""
    write_keys(path, keys, overwrite=overwrite)
    with open(never_signed_path(path), "w", encoding="utf-8") as f:
        f.write("these node keys have never signed; the node deletes this file when it first creates its consensus "
                "directory (a later, wiped directory must not look like a first start)\n")
        f.flush()
        os.fsync(f.fileno())


def write_keys(path: str | os.PathLike[str], keys: NodeKeys, *, overwrite: bool = False) -> None:
    """Create the key file with mode 0600 (refuses to overwrite unless asked)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise KeyFileError("keys_exist", f"{path} already exists; refusing to overwrite node keys") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)
        json.dump(keys.to_json(), f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def load_keys(path: str | os.PathLike[str]) -> NodeKeys:
    try:
        st = os.stat(path)
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as exc:
        raise KeyFileError("keys_unreadable", f"cannot read {path}: {exc.strerror}") from None
    except ValueError:
        raise KeyFileError("keys_bad_json", f"{path} is not valid JSON") from None
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise KeyFileError("keys_permissions", f"{path} is readable by others (mode {oct(st.st_mode & 0o777)}); "
                                               "run chmod 600 on it")
    if not isinstance(doc, dict) or doc.get("format") != KEYS_FORMAT:
        raise KeyFileError("keys_bad_format", f"{path} is not a {KEYS_FORMAT} file")
    try:
        keys = NodeKeys(str(doc["node_id"]), bytes.fromhex(doc["identity_seed"]), bytes.fromhex(doc["bls_secret"]))
    except (KeyError, TypeError, ValueError):
        raise KeyFileError("keys_bad_format", f"{path} lacks node_id, identity_seed or bls_secret") from None
    if len(keys.identity_seed) != 32 or len(keys.bls_secret) != 32:
        raise KeyFileError("keys_bad_format", f"{path}: seeds must be 32 bytes")
    try:
        keys.bls_public_key  # noqa: B018 (validates the secret)
    except bls.BlsError:
        raise KeyFileError("keys_bad_format", f"{path}: the BLS secret is not a valid key") from None
    return keys
