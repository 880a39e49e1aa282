"""What a person reads from the `ledger` command must not be Python's internals: no reprs of None/True/False, of
dicts, lists or tuples with quoted strings, of objects, and no traceback."""

from __future__ import annotations

import re

PYTHON_REPRS = (
    re.compile(r"\b(?:None|True|False)\b"),
    re.compile(r"\{'[^']*': "),  # {'a': 1}
    re.compile(r"\['[^']*'(?:, |\])"),  # ['a', 'b']
    re.compile(r"\('[^']*',"),  # ('a',)
    re.compile(r"<[\w.]+ object at 0x"),
    re.compile(r"\b[A-Z]\w+\((?:\w+=)"),  # Namespace(a=..), Dataclass(field=..)
    re.compile(r"Traceback \(most recent call last\)"),
)


def python_reprs(text: str) -> list[str]:
    """The lines of `text` that show a Python repr."""
    return [line for line in text.splitlines() if any(p.search(line) for p in PYTHON_REPRS)]


def assert_no_python_repr(text: str) -> None:
    found = python_reprs(text)
    assert not found, "Python reprs in human output:\n" + "\n".join(found[:10])
