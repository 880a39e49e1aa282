"""Client errors. Every failure a caller can meet is one of these, with a stable code:

- ApiError: the node answered with its error form {code, message, details} (code: a number of the shared
  reason-code table, docs/reason-codes.md); `status` is the HTTP status.
- TransactionFailed: a transaction was committed (or rejected in a block) with a non-zero receipt code.
- ClientError: anything on the client side (bad input, unreachable node, timeout, malformed answer, key files).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ApiError", "ClientError", "LedgerClientError", "TransactionFailed"]


class LedgerClientError(Exception):
    """Base of every SDK error: a stable code, a message and JSON details. The subclasses say where it came from."""

    def __init__(self, code: int | str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details or {}


class ClientError(LedgerClientError):
    """A client-side failure. Codes: connection_failed, timeout, bad_response, bad_input, key_*, ..."""


class ApiError(LedgerClientError):
    """The node refused a request: its {code, message, details} and the HTTP status."""

    def __init__(self, status: int, code: int, message: str, details: dict[str, Any] | None = None,
                 name: str = "") -> None:
        super().__init__(code, message, details)
        self.status = status
        self.name = name

    def __str__(self) -> str:
        return f"HTTP {self.status}: [{self.code} {self.name}] {self.message}".replace(" ]", "]")


class TransactionFailed(LedgerClientError):
    """A transaction got a non-zero receipt (rejected: 1..199, refused: >= 200). `receipt` is the JSON receipt."""

    def __init__(self, tx_id: str, code: int, message: str, receipt: dict[str, Any]) -> None:
        super().__init__(code, message)
        self.tx_id = tx_id
        self.receipt = receipt

    def __str__(self) -> str:
        return f"transaction {self.tx_id[:16]}… failed with code {self.code}: {self.message}"
