"""docs/limits.md agrees with the code: every limit named in its tables is imported from the module the row names and
its value is the documented one (a module constant, an attribute of a module value, or a config field's default)."""

from __future__ import annotations

import dataclasses
import importlib
import re
from pathlib import Path
from typing import Any

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "limits.md"
ROW = re.compile(r"^\| `([A-Za-z_][A-Za-z0-9_.]*)` \| ([^|]+) \| ([a-z_/]+\.py) \| [^|]+ \|$")
NUMBER = re.compile(r"[0-9][0-9,]*(?:\.[0-9]+)?")


def rows() -> list[tuple[str, str, str]]:
    found = [m.groups() for line in DOC.read_text().splitlines() if (m := ROW.match(line))]
    assert len(found) >= 100, "the tables of docs/limits.md were not found"
    return [(name, value.strip(), module) for name, value, module in found]


def documented(value: str) -> int | float:
    m = NUMBER.match(value)
    assert m is not None, f"value {value!r} does not start with a number"
    text = m.group(0).replace(",", "")
    return float(text) if "." in text else int(text)


def resolve(module_path: str, name: str) -> Any:
    module = importlib.import_module(module_path.removesuffix(".py").replace("/", "."))
    owner: Any = module
    *path, last = name.split(".")
    for part in path:
        owner = getattr(owner, part)
    if isinstance(owner, type) and dataclasses.is_dataclass(owner):
        field = {f.name: f for f in dataclasses.fields(owner)}[last]
        assert field.default is not dataclasses.MISSING, f"{name} has no plain default"
        return field.default
    return getattr(owner, last)


@pytest.mark.parametrize(("name", "value", "module"), rows(), ids=lambda x: x if "/" not in x else None)
def test_documented_limit_is_the_code(name: str, value: str, module: str) -> None:
    actual = resolve(module, name)
    assert type(actual) in (int, float), f"{module} {name} is not a number"
    assert actual == documented(value), f"docs/limits.md says {name} = {value}; {module} has {actual}"


def test_every_row_is_read() -> None:
    """A row the pattern above does not match would silently escape the check."""
    table_rows = [line for line in DOC.read_text().splitlines() if line.startswith("| `")]
    assert len(table_rows) == len(rows())
