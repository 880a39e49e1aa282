"""docs/reason-codes.md lists every node-layer code exactly as the shared table defines it."""

from __future__ import annotations

from pathlib import Path

import node.api.errors
import node.chain.mempool  # noqa: F401  (defines the mempool codes)
from ledger import codes

DOC = Path(__file__).resolve().parents[3] / "docs" / "reason-codes.md"


def test_every_node_code_is_documented() -> None:
    text = DOC.read_text()
    rows = [
        f"| {c.code} | `{c.name}` | {c.message} |"
        for c in sorted(codes.REASONS.values(), key=lambda c: c.code)
        if c.layer == "node"
    ]
    assert rows, "the node layer defines codes"
    assert [r for r in rows if r not in text] == []
