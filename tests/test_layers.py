"""The layer contracts of the repository (pyproject.toml, [tool.importlinter]), checked with import-linter:

- consensus/ imports no other layer, and no I/O loop, socket or clock; ledger/ and contracts/ import no other layer
  above them, no asyncio, socket, time or random;
- node/'s rooms depend in one direction: cli > tools > validator | indexer > api | client > chain > net > errors;
- and no module of consensus/, ledger/ or contracts/ reads the environment (a hidden input to a pure layer).

Each check is shown to fail on a planted violation, so a broken configuration cannot pass silently."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PURE_LAYERS = ("consensus", "ledger", "contracts")


LINT = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())"


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(root))
    return subprocess.run([sys.executable, "-c", LINT], check=False, cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_layer_contracts_hold() -> None:
    out = _lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "4 kept, 0 broken" in out.stdout


def test_planted_violations_break_the_contracts(tmp_path: Path) -> None:
    for package in ("ledger", "contracts", "consensus", "node"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "consensus" / "planted.py").write_text("from ledger import codes  # the pure BFT layer reads ledger\n")
    (tmp_path / "contracts" / "planted.py").write_text("import time  # a rule reads the clock\n")
    (tmp_path / "node" / "chain" / "planted.py").write_text("from node.validator import driver  # upwards\n")
    out = _lint(tmp_path)
    assert out.returncode != 0
    assert "0 kept, 4 broken" not in out.stdout and "1 kept, 3 broken" in out.stdout, out.stdout
    for planted in ("consensus.planted -> ledger.codes", "contracts.planted -> time",
                    "node.chain.planted -> node.validator.driver"):
        assert planted in out.stdout, out.stdout


def environment_reads(source: str) -> list[int]:
    """Lines of `source` that read the process environment (os.environ, os.getenv, os.putenv, environ imported)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv", "putenv", "environb"} or isinstance(node, ast.ImportFrom) and node.module == "os" and any(
                a.name in {"environ", "getenv", "environb"} for a in node.names):
            lines.append(node.lineno)
    return lines


def test_no_pure_layer_reads_the_environment() -> None:
    found = {str(path.relative_to(ROOT)): lines for layer in PURE_LAYERS for path in sorted((ROOT / layer).rglob("*.py"))
             if (lines := environment_reads(path.read_text(encoding="utf-8")))}
    assert found == {}
    assert environment_reads("import os\nname = os.environ.get('LEDGER_BLS_BACKEND')\n") == [2]
    assert environment_reads("from os import getenv\n") == [1]
