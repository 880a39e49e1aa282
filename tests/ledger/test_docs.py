"""docs/protocol.md and docs/reason-codes.md agree with the code: every operation/record table and every reason code
row in the documents is exactly what the schema and the code table say."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger import codes
from ledger.codec import Record, record_type
from ledger.events import Event, Receipt
from ledger.jsonform import kind_name
from ledger.operations import ACTION_TYPES, OPERATION_TYPES, Document, RuleSpec, SettlementLeg, TransferLeg
from ledger.records import RECORD_TYPES
from ledger.transaction import Signature, TxBody, TxEnvelope

DOCS = Path(__file__).resolve().parents[2] / "docs"


def field_table(rec: Record, first_index: int = 0) -> str:
    rows = ["| # | field | type and limits |", "|---|---|---|"]
    for i, (name, t) in enumerate(zip(rec.names, rec.types)):
        doc = t.doc.replace("|", "\\|")
        rows.append(f"| {i + first_index} | `{name}` | {doc} |")
    return "\n".join(rows)


def operation_section(cls: type) -> str:
    rec = record_type(cls)
    head = f"#### `{kind_name(cls)}` (kind {cls.KIND})"  # type: ignore[attr-defined]
    return head + "\n\n" + field_table(rec, first_index=1)


def record_section(cls: type) -> str:
    return f"#### `{cls.__name__}`\n\n" + field_table(record_type(cls))


NESTED = (TxBody, TxEnvelope, Signature, TransferLeg, SettlementLeg, Document, RuleSpec, Receipt, Event)


def code_rows(layer: str = "ledger") -> list[str]:
    return [
        f"| {c.code} | `{c.name}` | {c.message} |"
        for c in sorted(codes.REASONS.values(), key=lambda c: c.code)
        if c.layer == layer
    ]


@pytest.mark.parametrize("cls", OPERATION_TYPES, ids=lambda c: c.__name__)
def test_operation_documented(cls: type) -> None:
    assert operation_section(cls) in (DOCS / "protocol.md").read_text()


def action_section(cls: type) -> str:
    head = f"#### `{kind_name(cls)}` (action {cls.KIND})"  # type: ignore[attr-defined]
    return head + "\n\n" + field_table(record_type(cls), first_index=1)


@pytest.mark.parametrize("cls", ACTION_TYPES, ids=lambda c: c.__name__)
def test_governance_action_documented(cls: type) -> None:
    assert action_section(cls) in (DOCS / "protocol.md").read_text()


@pytest.mark.parametrize("cls", NESTED + RECORD_TYPES, ids=lambda c: c.__name__)
def test_record_documented(cls: type) -> None:
    assert record_section(cls) in (DOCS / "protocol.md").read_text()


def test_reason_codes_documented() -> None:
    text = (DOCS / "reason-codes.md").read_text()
    missing = [row for row in code_rows() if row not in text]
    assert missing == []


def test_retired_codes_documented_and_reserved() -> None:
    """A retired code is listed as retired, is not in the table any more, and cannot be defined again."""
    text = (DOCS / "reason-codes.md").read_text()
    assert codes.RETIRED
    for code, name in codes.RETIRED.items():
        assert f"| {code} | `{name}` (retired) |" in text
        assert code not in codes.REASONS and all(c.name != name for c in codes.REASONS.values())
        with pytest.raises(ValueError):
            codes.define(code, "SOMETHING_NEW", "a new meaning")
        with pytest.raises(ValueError):
            codes.define(699, name, "an old name")


if __name__ == "__main__":
    for cls in NESTED + RECORD_TYPES:
        print(record_section(cls), end="\n\n")
    for cls in OPERATION_TYPES:
        print(operation_section(cls), end="\n\n")
    print("\n".join(code_rows()))
