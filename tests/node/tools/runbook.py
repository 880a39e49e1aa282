"""The key-ceremony runbook of docs/operations.md as data: its command blocks, in order, and their argv.

    steps = runbook_steps()                    # [Step(role="member" | "coordinator", commands=(...)), ...]
    argv = command_argv(cmd, {"DIR": ..., ...}, ledger=(sys.executable, "-m", "node.cli"))

A block is a fenced ```bash block right after a `<!-- runbook: ROLE -->` marker; every command in it starts with
`ledger` (backslash continuations are joined). Variables ($NAME or ${NAME}) are replaced from the mapping given; an
unknown variable is an error (the doc introduced one the tests do not set). tests/node/tools/test_runbook.py runs
the blocks on local directories; the multi-host test runs the same blocks, one member per network namespace
(prefixing argv with `ip netns exec NS`).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

RUNBOOK_DOC = Path(__file__).resolve().parents[3] / "docs" / "operations.md"
_BLOCK = re.compile(r"<!-- runbook: (member|coordinator) -->\n```bash\n(.*?)```", re.DOTALL)
_VARIABLE = re.compile(r"\$(?:\{([A-Z_][A-Z0-9_]*)\}|([A-Z_][A-Z0-9_]*))")


@dataclass(frozen=True, slots=True)
class Step:
    role: str  # "member": every member runs it on its own host; "coordinator": the coordinator, once
    commands: tuple[str, ...]


def runbook_steps(text: str | None = None) -> list[Step]:
    text = RUNBOOK_DOC.read_text(encoding="utf-8") if text is None else text
    steps = []
    for match in _BLOCK.finditer(text):
        joined = match.group(2).replace("\\\n", " ")
        commands = tuple(" ".join(line.split()) for line in joined.splitlines() if line.strip())
        for command in commands:
            if not command.startswith("ledger "):
                raise ValueError(f"a runbook command starts with `ledger`: {command!r}")
        steps.append(Step(match.group(1), commands))
    return steps


def command_argv(
    command: str, variables: Mapping[str, str], *, ledger: Sequence[str] = ("ledger",), extra: Sequence[str] = ()
) -> list[str]:
    """The argv of one runbook command: variables replaced, `ledger` replaced by `ledger` (the program to run),
    `extra` appended."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise KeyError(f"the runbook uses ${name}, which the test does not set")
        return variables[name]

    words = [_VARIABLE.sub(value, word) for word in shlex.split(command)]
    assert words[0] == "ledger"
    return [*ledger, *words[1:], *extra]
