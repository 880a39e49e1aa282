"""Station-to-station handshake between two consortium nodes, without I/O (after CometBFT's SecretConnection).

Both sides send at once, in this order (docs/transport.md has it byte by byte, with a test vector):

1. hello: MAGIC (8 bytes) || ephemeral X25519 public key (32 bytes).
2. Each side computes the X25519 shared secret, the transcript hash over the protocol tag and both ephemeral keys
   (sorted, so both sides agree without a dialer/acceptor role), and derives with HKDF-SHA256 one key per direction
   plus a 32-byte challenge. The side whose ephemeral key sorts lower is role 0.
3. auth: the first encrypted frame (counter 0, kind AUTH) carries msgpack
   [node_id, chain_id, genesis_hash, protocol_version, identity public key, signature], the signature being Ed25519
   over SIGN_CONTEXT || role || u16 len || chain_id || genesis_hash || u32 protocol_version || transcript hash ||
   challenge. What the node runs is given by whoever builds the handshake, never read here: `chain_id` (the genesis
   `chain_id` string), `genesis_hash` (the 32-byte hash of the genesis document the node runs,
   node.chain.genesis.Genesis.hash, also the consensus chain id) and `protocol_version`
   (ledger.protocol.PROTOCOL_VERSION). Once the peer's signature verifies, a peer that signed another chain id is
   refused with wrong_chain; another genesis hash (two networks created from different genesis files under one chain
   id, e.g. a re-created testnet) with wrong_genesis, the detail naming both hash prefixes; another ledger protocol
   version (its state roots differ) with wrong_protocol. Each side checks the other's auth frame, so both refuse,
   neither sends an ACCEPT, no link comes up and no message of the layers above flows.
   Why signed and not in the transcript hash (the key derivation): there a mismatch would derive other keys, the
   peer's auth frame would not decrypt, and every mismatch would look alike (auth_decrypt_failed), like noise on the
   line. Signed, each side decrypts the other's auth frame, checks that a member's key signed the announced values,
   and names the mismatch. For the same reason the chain id left the transcript hash (where the first wire versions
   had it): it is signed beside the genesis hash, so a node of another chain gets wrong_chain. The transcript hash
   still binds both ephemeral keys and the signature binds the transcript hash and the challenge, so a signature
   holds for one exchange and the values it covers only.
4. verdict: once a side has checked the peer's auth it sends frame 1, ACCEPT (empty) or CLOSE (the refusal code), and
   a side treats the link as up only when the peer's frame 1 is an ACCEPT. Without it the side whose auth the other
   refuses would see a complete handshake and count a peer that is about to hang up (a node not admitted would take
   client transactions for a validator it cannot reach).

A man in the middle runs a separate exchange with each side, so the signature it relays covers a different transcript
and challenge and fails. The receiver admits only a node id from the peer set whose key matches and whose signature
verifies. Every refusal is a HandshakeError with a stable code.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import msgpack
import nacl.bindings
import nacl.exceptions
import nacl.signing

from node.errors import NodeError
from node.net.framing import KIND_ACCEPT, KIND_AUTH, KIND_CLOSE, FrameError, FrameOpener, FrameSealer

PROTOCOL_TAG = b"consortium-ledger/p2p/1"
# The last byte is the wire version: 2 added the verdict frame; 3 the ledger protocol version and the genesis hash in
# the auth frame and in the signed message, the chain id moved from the transcript hash to the signed message. A node
# of an older wire version is refused with bad_magic.
MAGIC = b"CLP2P\x00\x00\x03"
EPHEMERAL_KEY_BYTES = 32
HELLO_BYTES = len(MAGIC) + EPHEMERAL_KEY_BYTES
KEYS_INFO = PROTOCOL_TAG + b" keys"
SIGN_CONTEXT = PROTOCOL_TAG + b" auth"
IDENTITY_KEY_BYTES = 32
SIGNATURE_BYTES = 64
MAX_NODE_ID_BYTES = 64
MAX_CHAIN_ID_BYTES = 64
# The genesis hash (node/chain/genesis.py): 32 raw bytes in the auth frame and in the signed message; wrong_genesis
# names the first GENESIS_PREFIX_HEX hex digits of each side's.
GENESIS_HASH_BYTES = 32
GENESIS_PREFIX_HEX = 16
# The ledger protocol version travels as a msgpack unsigned integer in the auth frame and as 4 bytes in the signed
# message.
MAX_PROTOCOL_VERSION = 2**32 - 1
# Who a broadcast goes to (Transport.broadcast): the peers that are not full nodes (consensus messages, gossip),
# the full nodes only, everyone.
AUDIENCE_PEERS = "peers"
AUDIENCE_FULL = "full_nodes"
AUDIENCE_ALL = "all"
AUDIENCES = (AUDIENCE_PEERS, AUDIENCE_FULL, AUDIENCE_ALL)
# The auth frame's payload is a few dozen bytes; anything larger is refused before it is read.
MAX_AUTH_PAYLOAD_BYTES = 512
# The verdict frame: ACCEPT is empty, CLOSE carries a refusal code of at most this many bytes.
MAX_VERDICT_PAYLOAD_BYTES = 64


class HandshakeError(NodeError):
    """The handshake is refused. `code` is stable (used in logs and metrics)."""


@dataclass(frozen=True, slots=True)
class Peer:
    """A consortium member's node: its id, its Ed25519 identity public key, and where to dial it (None: never dial).
    `previous_key`: a key the node had before a rotation, still admitted while it may not have switched yet.
    `full`: a full node (it follows the chain and never votes): left out of broadcasts to validators."""

    node_id: str
    public_key: bytes
    address: tuple[str, int] | None = None
    previous_key: bytes | None = None
    full: bool = False

    def __post_init__(self) -> None:
        assert 0 < len(self.node_id.encode()) <= MAX_NODE_ID_BYTES, "node id must be 1..64 bytes of UTF-8"
        assert len(self.public_key) == IDENTITY_KEY_BYTES, "identity key must be 32 bytes"
        assert self.previous_key is None or (len(self.previous_key) == IDENTITY_KEY_BYTES
                                             and self.previous_key != self.public_key)
        if self.address is not None:
            host, port = self.address
            assert host and 0 < port < 65536, "address must be (host, port)"

    def identity_keys(self) -> tuple[bytes, ...]:
        return (self.public_key,) if self.previous_key is None else (self.public_key, self.previous_key)

    def accepts(self, key: bytes) -> bool:
        """Whether `key` authenticates this node (its key, or its previous key during a rotation)."""
        return key == self.public_key or (self.previous_key is not None and key == self.previous_key)


@dataclass(frozen=True, slots=True)
class PeerSet:
    """The consortium's nodes; only these identities are admitted."""

    peers: tuple[Peer, ...]
    _by_id: Mapping[str, Peer] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id = {peer.node_id: peer for peer in self.peers}
        assert len(by_id) == len(self.peers), "node ids in a peer set must be unique"
        keys = [key for peer in self.peers for key in peer.identity_keys()]
        assert len(set(keys)) == len(keys), "identity keys must be unique"
        object.__setattr__(self, "_by_id", by_id)

    @classmethod
    def of(cls, peers: Iterable[Peer]) -> PeerSet:
        return cls(tuple(sorted(peers, key=lambda peer: peer.node_id)))

    def get(self, node_id: str) -> Peer | None:
        return self._by_id.get(node_id)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._by_id

    def ids(self) -> frozenset[str]:
        return frozenset(self._by_id)


class Identity:
    """This node's id and Ed25519 identity key."""

    __slots__ = ("node_id", "public_key", "signing_key")

    def __init__(self, node_id: str, signing_key: nacl.signing.SigningKey) -> None:
        assert 0 < len(node_id.encode()) <= MAX_NODE_ID_BYTES, "node id must be 1..64 bytes of UTF-8"
        self.node_id = node_id
        self.signing_key = signing_key
        self.public_key = bytes(signing_key.verify_key)

    def as_peer(self, address: tuple[str, int] | None = None) -> Peer:
        return Peer(self.node_id, self.public_key, address)


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF with SHA-256 (RFC 5869): extract then expand."""
    assert 0 < length <= 255 * 32
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    okm = b""
    block = b""
    counter = 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes((counter,)), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


def transcript_hash(ephemeral_a: bytes, ephemeral_b: bytes) -> bytes:
    """SHA-256 over u8 len || tag || lower ephemeral key || higher ephemeral key. The chain id, the genesis hash and
    the protocol version are signed (signed_message), not hashed here: a mismatch must not change the keys."""
    low, high = sorted((ephemeral_a, ephemeral_b))
    return hashlib.sha256(bytes((len(PROTOCOL_TAG),)) + PROTOCOL_TAG + low + high).digest()


@dataclass(frozen=True, slots=True)
class SessionKeys:
    """What both sides derive from one exchange: a key per direction (by role) and the challenge each side signs."""

    transcript: bytes
    low_to_high: bytes
    high_to_low: bytes
    challenge: bytes


def derive_session_keys(shared_secret: bytes, transcript: bytes) -> SessionKeys:
    okm = hkdf_sha256(shared_secret, transcript, KEYS_INFO, 96)
    return SessionKeys(transcript, okm[0:32], okm[32:64], okm[64:96])


def signed_message(
    role: int, keys: SessionKeys, *, chain_id: str, genesis_hash: bytes, protocol_version: int
) -> bytes:
    """The bytes a side of `role` (0: lower ephemeral key), on chain `chain_id` with genesis `genesis_hash` and running
    ledger protocol `protocol_version`, signs with its identity key: SIGN_CONTEXT || u8 role || u16 len(chain_id) ||
    chain_id || genesis_hash || u32 protocol_version || transcript || challenge."""
    assert role in (0, 1)
    assert valid_chain_id(chain_id) and valid_genesis_hash(genesis_hash) and valid_protocol_version(protocol_version)
    chain = chain_id.encode()
    return (SIGN_CONTEXT + bytes((role,)) + len(chain).to_bytes(2, "big") + chain + genesis_hash
            + protocol_version.to_bytes(4, "big") + keys.transcript + keys.challenge)


def valid_chain_id(chain_id: object) -> bool:
    """Whether a handshake can bind `chain_id`: a string of 1 .. MAX_CHAIN_ID_BYTES bytes of UTF-8."""
    if not isinstance(chain_id, str):
        return False
    try:
        return 0 < len(chain_id.encode()) <= MAX_CHAIN_ID_BYTES
    except UnicodeEncodeError:  # a lone surrogate (JSON can escape one)
        return False


def valid_genesis_hash(genesis_hash: object) -> bool:
    """Whether a handshake can bind `genesis_hash`: exactly GENESIS_HASH_BYTES bytes."""
    return type(genesis_hash) is bytes and len(genesis_hash) == GENESIS_HASH_BYTES


def valid_protocol_version(version: object) -> bool:
    """Whether a handshake can bind `version` as the ledger protocol version: an integer 1 .. 2^32 - 1."""
    return type(version) is int and 0 < version <= MAX_PROTOCOL_VERSION


@dataclass(frozen=True, slots=True)
class Session:
    """An authenticated, encrypted connection state: who the peer is and the two frame ciphers."""

    peer: Peer
    sealer: FrameSealer
    opener: FrameOpener
    # The identity key the peer authenticated with (its current key, or its previous one during a rotation).
    key: bytes = b""


class Handshake:
    """One side of one handshake. hello() -> send; receive_hello(40 bytes) -> auth frame to send;
    receive_auth(frame body) -> Session; accept() -> verdict frame to send (or refusal(code) on any refusal);
    receive_verdict(frame body) -> the link is up. `expected_peer` (when dialling) refuses any other identity.
    What this node runs, each signed in the auth frame and compared with the peer's signed value:
    `chain_id` (the genesis chain_id string; another: wrong_chain), `genesis_hash` (the 32-byte hash of its genesis,
    Genesis.hash on a node; another: wrong_genesis), `protocol_version` (the ledger protocol,
    ledger.protocol.PROTOCOL_VERSION on a node; another: wrong_protocol)."""

    __slots__ = (
        "_admitted",
        "_chain_id",
        "_expected_peer",
        "_genesis_hash",
        "_identity",
        "_keys",
        "_peer_set",
        "_protocol_version",
        "_public",
        "_role",
        "_secret",
        "opener",
        "sealer",
    )

    def __init__(
        self,
        identity: Identity,
        chain_id: str,
        peer_set: PeerSet,
        expected_peer: str | None = None,
        ephemeral_secret: bytes | None = None,
        *,
        protocol_version: int,
        genesis_hash: bytes,
    ) -> None:
        assert valid_chain_id(chain_id), "a chain id is 1 .. 64 bytes of UTF-8"
        assert valid_genesis_hash(genesis_hash), "a genesis hash is 32 bytes"
        assert valid_protocol_version(protocol_version), "a ledger protocol version is an integer 1 .. 2^32 - 1"
        self._identity = identity
        self._chain_id = chain_id
        self._genesis_hash = genesis_hash
        self._protocol_version = protocol_version
        self._peer_set = peer_set
        self._expected_peer = expected_peer
        self._secret = ephemeral_secret if ephemeral_secret is not None else os.urandom(32)
        assert len(self._secret) == 32
        self._public = nacl.bindings.crypto_scalarmult_base(self._secret)
        self._keys: SessionKeys | None = None
        self._role = -1
        self._admitted = False
        self.sealer: FrameSealer | None = None
        self.opener: FrameOpener | None = None

    @property
    def ephemeral_public(self) -> bytes:
        return self._public

    @property
    def role(self) -> int:
        """0 if this side's ephemeral key sorts lower, 1 if higher, -1 before the peer's hello."""
        return self._role

    @property
    def keys(self) -> SessionKeys | None:
        return self._keys

    def hello(self) -> bytes:
        return MAGIC + self._public

    def receive_hello(self, hello: bytes) -> bytes:
        """Derive the session from the peer's hello; returns the complete auth frame to send."""
        assert self._keys is None, "hello already received"
        if len(hello) != HELLO_BYTES or hello[: len(MAGIC)] != MAGIC:
            raise HandshakeError("bad_magic", "the peer did not open with this protocol's hello")
        remote = hello[len(MAGIC) :]
        if remote == self._public:
            raise HandshakeError("reflected_key", "the peer sent back our own ephemeral key")
        try:
            shared = nacl.bindings.crypto_scalarmult(self._secret, remote)
        except nacl.exceptions.RuntimeError:
            raise HandshakeError("low_order_key", "the peer's ephemeral key gives an all-zero shared secret") from None
        keys = derive_session_keys(shared, transcript_hash(self._public, remote))
        self._keys = keys
        self._role = 0 if self._public < remote else 1
        if self._role == 0:
            self.sealer, self.opener = FrameSealer(keys.low_to_high), FrameOpener(keys.high_to_low)
        else:
            self.sealer, self.opener = FrameSealer(keys.high_to_low), FrameOpener(keys.low_to_high)
        signature = self._identity.signing_key.sign(
            signed_message(self._role, keys, chain_id=self._chain_id, genesis_hash=self._genesis_hash,
                           protocol_version=self._protocol_version)
        ).signature
        auth = msgpack.packb([self._identity.node_id, self._chain_id, self._genesis_hash, self._protocol_version,
                              self._identity.public_key, signature])
        assert len(auth) <= MAX_AUTH_PAYLOAD_BYTES
        return self.sealer.seal(KIND_AUTH, auth)

    def receive_auth(self, body: bytes) -> Session:
        """Check the peer's auth frame body (after the 4-byte prefix); returns the session or raises HandshakeError."""
        assert self._keys is not None and self.opener is not None and self.sealer is not None, "hello first"
        try:
            kind, payload = self.opener.open(body)
        except FrameError as error:
            raise HandshakeError("auth_decrypt_failed", error.message) from None
        if kind != KIND_AUTH:
            raise HandshakeError("malformed_auth", f"first frame has kind {kind}")
        node_id, chain_id, genesis_hash, protocol_version, public_key, signature = _decode_auth(payload)
        if node_id == self._identity.node_id or public_key == self._identity.public_key:
            raise HandshakeError("self_connection", "the peer presents this node's own identity")
        peer = self._peer_set.get(node_id)
        if peer is None:
            raise HandshakeError("unknown_peer", f"node {node_id!r} (key {public_key.hex()}) is not in the peer set")
        if not peer.accepts(public_key):
            raise HandshakeError("unknown_key", f"node {node_id!r} presents key {public_key.hex()}, not its own")
        if self._expected_peer is not None and node_id != self._expected_peer:
            raise HandshakeError("unexpected_peer", f"dialled {self._expected_peer!r}, reached {node_id!r}")
        try:
            nacl.signing.VerifyKey(public_key).verify(
                signed_message(1 - self._role, self._keys, chain_id=chain_id, genesis_hash=genesis_hash,
                               protocol_version=protocol_version),
                signature,
            )
        except nacl.exceptions.BadSignatureError:
            raise HandshakeError("bad_signature", f"node {node_id!r} signed a different transcript") from None
        # Checked after the signature: the chain, genesis and version refused are the ones a member signed, not a
        # stranger's claim. Another chain id means another genesis as well; the chain id says it more plainly.
        if chain_id != self._chain_id:
            raise HandshakeError(
                "wrong_chain", f"peer {node_id!r} is on chain {chain_id!r}, this node on {self._chain_id!r}"
            )
        if genesis_hash != self._genesis_hash:
            raise HandshakeError(
                "wrong_genesis",
                f"peer {node_id!r} runs genesis {genesis_hash.hex()[:GENESIS_PREFIX_HEX]}…, this node runs genesis "
                f"{self._genesis_hash.hex()[:GENESIS_PREFIX_HEX]}… (both chain {chain_id!r})",
            )
        if protocol_version != self._protocol_version:
            raise HandshakeError(
                "wrong_protocol",
                f"peer {node_id!r} runs ledger protocol {protocol_version}, this node runs {self._protocol_version}",
            )
        self._admitted = True
        return Session(peer, self.sealer, self.opener, public_key)

    def accept(self) -> bytes:
        """The verdict frame (frame 1) admitting the peer, once receive_auth returned its session: kind ACCEPT,
        empty."""
        assert self._admitted and self.sealer is not None, "receive_auth first"
        return self.sealer.seal(KIND_ACCEPT, b"")

    def refusal(self, code: str) -> bytes | None:
        """The frame telling the peer why this side refuses it (kind CLOSE, the code): its verdict, or the frame after
        an ACCEPT when the refusal came later. None before this side made its auth frame (the peer could not read
        anything)."""
        if self.sealer is None:
            return None
        return self.sealer.seal(KIND_CLOSE, code.encode()[:MAX_VERDICT_PAYLOAD_BYTES])

    def receive_verdict(self, body: bytes) -> None:
        """Check the peer's verdict frame body (after the 4-byte prefix): returns if the peer accepted this side,
        raises HandshakeError (`refused_by_peer` with the peer's code, or a malformed frame) otherwise."""
        assert self._admitted and self.opener is not None, "receive_auth first"
        try:
            kind, payload = self.opener.open(body)
        except FrameError as error:
            raise HandshakeError(f"verdict_{error.code}", error.message) from None
        if kind == KIND_CLOSE:
            reason = payload[:MAX_VERDICT_PAYLOAD_BYTES].decode("utf-8", "replace")
            raise HandshakeError("refused_by_peer", f"the peer refused this node: {reason}")
        if kind != KIND_ACCEPT or payload:
            raise HandshakeError("malformed_verdict", f"frame 1 has kind {kind} and {len(payload)} payload bytes")


def _decode_auth(payload: bytes) -> tuple[str, str, bytes, int, bytes, bytes]:
    try:
        fields = msgpack.unpackb(payload, raw=False, strict_map_key=True, max_bin_len=128, max_str_len=128)
    except (ValueError, TypeError):
        raise HandshakeError("malformed_auth", "auth payload is not msgpack") from None
    if not (isinstance(fields, list) and len(fields) == 6):
        raise HandshakeError(
            "malformed_auth", "auth payload is not [node_id, chain_id, genesis_hash, protocol_version, key, signature]"
        )
    node_id, chain_id, genesis_hash, protocol_version, public_key, signature = fields
    if not (isinstance(node_id, str) and 0 < len(node_id.encode()) <= MAX_NODE_ID_BYTES):
        raise HandshakeError("malformed_auth", "bad node id")
    if not valid_chain_id(chain_id):
        raise HandshakeError("malformed_auth", "bad chain id")
    if not valid_genesis_hash(genesis_hash):
        raise HandshakeError("malformed_auth", "bad genesis hash")
    if not valid_protocol_version(protocol_version):
        raise HandshakeError("malformed_auth", "bad protocol version")
    if not (isinstance(public_key, bytes) and len(public_key) == IDENTITY_KEY_BYTES):
        raise HandshakeError("malformed_auth", "bad identity key")
    if not (isinstance(signature, bytes) and len(signature) == SIGNATURE_BYTES):
        raise HandshakeError("malformed_auth", "bad signature field")
    return node_id, chain_id, genesis_hash, protocol_version, public_key, signature
