"""A 4-validator network for scenario tests: node.tools.testnet.Testnet with its nodes inside the test process
(real consensus over loopback TCP, the HTTP API on every node, private reads signed), and `Driver`, which plays
transactions and reads through the synchronous SDK (`LedgerClient`). Every wait is bounded; `net.close()` always
tears the nodes down."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ledger.operations import Operation
from node.client import AccountKey, ApiError, LedgerClient, builder
from node.tools.localnet import load_accounts
from node.tools.testnet import Testnet

START_TIMEOUT_S = 90.0


def start_network(directory: str, nodes: int = 4) -> Testnet:
    """A fresh in-process testnet in `directory`, up (every node committing, connected); the caller closes it."""
    net = Testnet.create(directory, nodes, chain_id="testnet-demo", users=2, open_reads=False, in_process=True)
    try:
        net.up(START_TIMEOUT_S)
    except BaseException:
        net.close()
        raise
    return net


def genesis_keys(net: Testnet) -> dict[str, AccountKey]:
    """The genesis test accounts (admin@m0, user-<k>@m<k>, gov@m<i>) with their keys, from accounts.json."""
    return {name: AccountKey.from_seed(name, bytes(seed)) for name, seed in load_accounts(net.accounts_path).items()}


class Driver:
    """Submits through the nodes in turn (each transaction signed by the acting institutions' keys, waited for to
    commit) and reads as one account (signed reads)."""

    def __init__(self, urls: Sequence[str], reader: AccountKey) -> None:
        assert urls
        self.writers = [LedgerClient(u, timeout=30.0) for u in urls]
        self.reader = LedgerClient(urls[0], reader, timeout=30.0)
        self._turn = 0

    def close(self) -> None:
        self.reader.close()
        for w in self.writers:
            w.close()

    def client(self, key: AccountKey, node: int = 0) -> LedgerClient:
        """A client reading as `key`'s account; the caller closes it."""
        return LedgerClient(self.writers[node % len(self.writers)].base_url, key, timeout=30.0)

    def attempt(self, ops: Sequence[Operation], keys: Sequence[AccountKey],
                declared: Sequence[str] | None = None) -> tuple[int, dict[str, Any]]:
        """(code, receipt): the receipt's code, or the code of a refusal at admission (receipt {})."""
        writer = self.writers[self._turn % len(self.writers)]
        self._turn += 1
        body = writer.body(list(ops), signers=declared)
        tx = builder.sign(body, list(keys))
        try:
            result = writer.submit(tx, wait="commit", timeout=30.0, check=False)
        except ApiError as exc:
            return int(exc.code), {}
        receipt = result.receipt or {}
        return int(receipt.get("code", -1)), receipt

    def ok(self, ops: Sequence[Operation], keys: Sequence[AccountKey]) -> dict[str, Any]:
        code, receipt = self.attempt(ops, keys)
        assert code == 0, (code, receipt)
        return receipt

    def wait_height(self, height: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.reader.head_height() < height:
            assert time.monotonic() < deadline, f"height {height} not reached within {timeout:.0f}s"
            time.sleep(0.1)

    def balance(self, account: str, asset: str, height: int | None = None) -> dict[str, int]:
        items = self.reader.balances(account, asset, height).get("balances", [])
        if not items:
            return {"available": 0, "held": 0, "frozen": 0, "total": 0}
        return {k: int(items[0][k]) for k in ("available", "held", "frozen", "total")}

    def supply_check(self, assets: Sequence[str]) -> int:
        """issued - redeemed == sum over every holder of available + held + frozen, per asset, all read at one
        height through the API (as node/tools/demo/story.py does). Returns the height."""
        height = self.reader.head_height()
        for asset in assets:
            outstanding = int(self.reader.asset(asset, height)["outstanding"])
            holders: list[str] = []
            after = None
            for _ in range(100):
                page = self.reader.holders(asset, limit=100, after=after)
                holders += [item["account"] for item in page["items"]]
                after = page.get("next")
                if not after:
                    break
            assert not after, "holder pagination did not end"
            total = 0
            for account in holders:
                b = self.balance(account, asset, height)
                total += b["available"] + b["held"] + b["frozen"]
            assert total == outstanding, (asset, height, total, outstanding)
        return height
