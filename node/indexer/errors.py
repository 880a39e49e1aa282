"""The indexer's stable error codes (docs/indexer.md, "Errors"). Fatal ones stop `ledger index` with exit code 3
and a message naming the height; transient ones (node or database unreachable) are retried with backoff."""

from __future__ import annotations

from typing import Final

from node.errors import NodeError

__all__ = ["FATAL", "IndexerError"]

SCHEMA_TOO_NEW: Final = "indexer_schema_too_new"
WRONG_CHAIN: Final = "indexer_wrong_chain"
CERTIFICATE_INVALID: Final = "indexer_certificate_invalid"
BLOCK_INVALID: Final = "indexer_block_invalid"
AUDIT_MISMATCH: Final = "indexer_audit_mismatch"
NODE_UNREACHABLE: Final = "indexer_node_unreachable"
DATABASE_UNAVAILABLE: Final = "indexer_database_unavailable"
NODE_REFUSED: Final = "indexer_node_refused"  # a read refused for good (401/403: the key is not an auditor's)
DATABASE_REFUSED: Final = "indexer_database_refused"  # a constraint refused a block's rows: they contradict the index

FATAL: Final = frozenset(
    {SCHEMA_TOO_NEW, WRONG_CHAIN, CERTIFICATE_INVALID, BLOCK_INVALID, AUDIT_MISMATCH, DATABASE_REFUSED, NODE_REFUSED}
)


class IndexerError(NodeError):
    def __init__(self, code: str, message: str, height: int | None = None) -> None:
        super().__init__(code, message if height is None else f"height {height}: {message}")
        self.height = height

    @property
    def fatal(self) -> bool:
        return self.code in FATAL
