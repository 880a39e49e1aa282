"""The client side of a node's admin socket (DATA/admin.sock, node/validator/admin_socket.py): one JSON line per request
and per answer. The testnet launcher, chaos and the bench reach their nodes through it, whether the nodes run as
processes or inside the launching process.

    with AdminConnection(path) as conn: conn.request({"op": "status"}); conn.pipeline([...])
    admin_call(path, {"op": "status"})     one request; None when the node cannot be reached
"""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence
from typing import Any, Final, Self

ADMIN_TIMEOUT_S: Final = 5.0
MAX_ANSWER_BYTES: Final = 64 << 20  # the node's own line limit (node.validator.admin_socket.MAX_LINE)


class AdminConnection:
    """One persistent connection to a node's admin socket (one JSON line per request and per answer)."""

    def __init__(self, path: str, timeout: float = ADMIN_TIMEOUT_S) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(path)
        except OSError:
            self._sock.close()
            raise
        self._buf = b""

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, request: dict[str, Any]) -> None:
        self._sock.sendall(json.dumps(request).encode() + b"\n")

    def receive(self) -> dict[str, Any]:
        while b"\n" not in self._buf:
            if len(self._buf) > MAX_ANSWER_BYTES:
                raise ValueError("admin answer longer than the node's line limit")
            chunk = self._sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("the node closed its admin socket")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        answer = json.loads(line)
        if not isinstance(answer, dict):
            raise TypeError("admin answer is not an object")
        return answer

    def request(self, request: dict[str, Any]) -> dict[str, Any]:
        self.send(request)
        return self.receive()

    def pipeline(self, requests: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send every request, then read every answer (the node answers one connection's lines in order)."""
        self._sock.sendall(b"".join(json.dumps(r).encode() + b"\n" for r in requests))
        return [self.receive() for _ in requests]


def admin_call(path: str, request: dict[str, Any], timeout: float = ADMIN_TIMEOUT_S) -> dict[str, Any] | None:
    """One request; None when the node cannot be reached (not running, starting, or stopping)."""
    try:
        with AdminConnection(path, timeout) as conn:
            return conn.request(request)
    except (OSError, ValueError, TypeError):
        return None
