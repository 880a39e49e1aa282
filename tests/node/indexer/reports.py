"""The report queries of docs/indexer.md, read from the document itself (so the tests run exactly what it shows)."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[3] / "docs" / "indexer.md"


def report_queries() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    out = {}
    for block in re.findall(r"```sql\n(.*?)```", text, flags=re.DOTALL):
        m = re.match(r"-- report: (\w+)\n", block)
        if m:
            out[m.group(1)] = block
    return out
