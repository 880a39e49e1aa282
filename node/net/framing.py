"""Encrypted frames on an authenticated peer connection, without I/O.

After the handshake (node/net/handshake.py) each direction of a connection has its own 32-byte key. Every frame is

    length   u32 big-endian   number of bytes that follow (counter + ciphertext)
    counter  u64 big-endian   0, 1, 2, ... per direction; never repeats, never skips
    ciphertext                XChaCha20-Poly1305-IETF(key, nonce, aad, kind || payload), 16-byte tag included

with nonce = 16 zero bytes || counter (8 bytes, big-endian) and aad = length || counter (the first 12 bytes of the
frame). The plaintext starts with one kind byte (data, ping, pong, close, auth). The receiver accepts only the counter
it expects next, so a replayed, reordered or dropped frame is refused before decryption, and a modified frame fails the
tag check. Either error ends the connection. The length is checked against the limit before the body is read, so an
oversized frame is refused without allocating it. docs/transport.md has the same layout with examples.
"""

from __future__ import annotations

import struct

import nacl.bindings
import nacl.exceptions

from node.errors import NodeError

LENGTH = struct.Struct(">I")
HEADER = struct.Struct(">IQ")
LENGTH_BYTES = 4
COUNTER_BYTES = 8
TAG_BYTES = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_ABYTES
KEY_BYTES = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_KEYBYTES
NONCE_PREFIX = bytes(16)
KIND_BYTES = 1
# Bytes a frame body carries beyond its payload: counter, tag and the kind byte.
BODY_OVERHEAD = COUNTER_BYTES + TAG_BYTES + KIND_BYTES
MAX_COUNTER = 2**64 - 1

DEFAULT_MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
# The wire format cannot carry more than this in one frame (u32 length).
HARD_MAX_PAYLOAD_BYTES = 2**32 - 1 - BODY_OVERHEAD

KIND_DATA = 0
KIND_PING = 1
KIND_PONG = 2
KIND_CLOSE = 3
KIND_AUTH = 4
KIND_ACCEPT = 5
KINDS = frozenset({KIND_DATA, KIND_PING, KIND_PONG, KIND_CLOSE, KIND_AUTH, KIND_ACCEPT})

_encrypt = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt
_decrypt = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt


class FrameError(NodeError):
    """A frame the receiver refuses. `code` is stable (used in logs and metrics); the connection must be closed."""


def body_length(prefix: bytes, max_payload: int) -> int:
    """The body length announced by a 4-byte frame prefix, refused before anything is read if out of bounds."""
    assert len(prefix) == LENGTH_BYTES
    (length,) = LENGTH.unpack(prefix)
    if length > max_payload + BODY_OVERHEAD:
        raise FrameError("frame_too_large", f"frame announces {length} bytes, limit {max_payload + BODY_OVERHEAD}")
    if length < BODY_OVERHEAD:
        raise FrameError("frame_too_short", f"frame announces {length} bytes, minimum {BODY_OVERHEAD}")
    return length


class FrameSealer:
    """Encrypts outgoing frames for one direction of one connection; the counter only goes up."""

    __slots__ = ("_counter", "_key")

    def __init__(self, key: bytes) -> None:
        assert len(key) == KEY_BYTES
        self._key = key
        self._counter = 0

    @property
    def counter(self) -> int:
        """The counter the next frame will carry."""
        return self._counter

    def seal(self, kind: int, payload: bytes) -> bytes:
        """The complete frame (prefix included) carrying `payload`; each call uses a fresh nonce."""
        assert kind in KINDS
        assert len(payload) <= HARD_MAX_PAYLOAD_BYTES
        counter = self._counter
        # 2**64 frames are out of reach; the assertion keeps nonce reuse impossible rather than improbable.
        assert counter < MAX_COUNTER, "frame counter exhausted"
        self._counter = counter + 1
        header = HEADER.pack(BODY_OVERHEAD + len(payload), counter)
        nonce = NONCE_PREFIX + header[LENGTH_BYTES:]
        return header + _encrypt(bytes((kind,)) + payload, header, nonce, self._key)


class FrameOpener:
    """Decrypts incoming frames for one direction of one connection, in order, each exactly once."""

    __slots__ = ("_expected", "_key")

    def __init__(self, key: bytes) -> None:
        assert len(key) == KEY_BYTES
        self._key = key
        self._expected = 0

    @property
    def expected(self) -> int:
        """The counter the next accepted frame must carry."""
        return self._expected

    def open(self, body: bytes) -> tuple[int, bytes]:
        """(kind, payload) of a frame body (everything after the 4-byte prefix); raises FrameError if refused."""
        if len(body) < BODY_OVERHEAD:
            raise FrameError("frame_too_short", f"frame body of {len(body)} bytes")
        counter_bytes = body[:COUNTER_BYTES]
        counter = int.from_bytes(counter_bytes, "big")
        if counter != self._expected:
            if counter < self._expected:
                raise FrameError("replayed_frame", f"counter {counter} already seen, expected {self._expected}")
            raise FrameError("out_of_order_frame", f"counter {counter}, expected {self._expected}")
        aad = LENGTH.pack(len(body)) + counter_bytes
        try:
            plaintext = _decrypt(body[COUNTER_BYTES:], aad, NONCE_PREFIX + counter_bytes, self._key)
        except nacl.exceptions.CryptoError:
            raise FrameError("decrypt_failed", f"frame {counter} fails authentication") from None
        self._expected = counter + 1
        kind = plaintext[0]
        if kind not in KINDS:
            raise FrameError("unknown_kind", f"frame {counter} has kind {kind}")
        return kind, plaintext[KIND_BYTES:]
