"""Test-wide settings: no test reads or writes the real client home (~/.config/ledger)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _ledger_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """$LEDGER_HOME points at a fresh folder for every test (subprocesses inherit it); the profile variables that
    would pick a node are cleared."""
    home = tmp_path_factory.mktemp("ledger-home")
    monkeypatch.setenv("LEDGER_HOME", str(home))
    for var in ("LEDGER_URL", "LEDGER_NODE", "LEDGER_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    yield home
