"""Every entry point of the node sees the same operation set: importing any node module registers the contracts
layer's operations, so no process can decode fewer operation kinds than its peers (which would split the chain)."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import {module}
from ledger.operations import OPERATION
print(sorted(OPERATION.by_kind))
"""


@pytest.mark.parametrize("module", ["node.net.transport", "node.chain.mempool", "node.api", "node.chain.statement", "node.cli"])
def test_any_node_module_registers_the_contracts_operations(module: str) -> None:
    out = subprocess.run([sys.executable, "-c", PROBE.format(module=module)], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    kinds = set(eval(out))  # a printed list of ints
    from contracts.operations import AnnounceAction, PayAction, RevokeClaim, SetClaim

    assert {SetClaim.KIND, RevokeClaim.KIND, AnnounceAction.KIND, PayAction.KIND} <= kinds
