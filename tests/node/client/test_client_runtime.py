"""Scenario 6 against the real node: a one-validator chain (node.validator.node.ValidatorNode: consensus, execution, mempool,
commit certificates) serving the real API on 127.0.0.1, driven through the `ledger` CLI and the SDK. The custody
statement the node builds verifies offline from the generated genesis file; a tampered copy does not."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from node.api.app import create_app
from node.api.context import ApiConfig
from node.chain.genesis import ChainParams, load_genesis
from node.cli import main
from node.client import AccountKey, LedgerClient, save_key
from node.tools.localnet import generate_network
from node.validator.config import load_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RealNode:
    """One validator and its API in a background thread with its own event loop."""

    def __init__(self, directory: str) -> None:
        layout = generate_network(directory, 1, chain_id="dev-e2e", base_port=_free_port(), api_base_port=_free_port(),
                                  users=2,
                                  params=ChainParams(base_timeout_ms=300, empty_block_interval_ms=100))
        self.genesis_path = layout.genesis_path
        self.accounts: dict[str, str] = json.loads(Path(layout.accounts_path).read_text())
        self.config = load_config(layout.config_paths[0])
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.node: Any = None
        self.url = ""
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(60), "the node did not start"
        assert self.error is None, self.error

    def _run(self) -> None:
        from node.validator.node import ValidatorNode

        async def serve() -> None:
            cfg = self.config
            self.node = ValidatorNode.from_config(cfg)
            await self.node.start()
            runner = web.AppRunner(create_app(self.node.view, ApiConfig()))
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://127.0.0.1:{port}"
            self.ready.set()
            await self.node.wait_stopped()
            await runner.cleanup()

        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(serve())
        except Exception as exc:  # noqa: BLE001 - handed to the test thread, which fails with it
            self.error = exc
            self.ready.set()
        finally:
            self.loop.close()

    def stop(self) -> None:
        if self.node is not None and not self.loop.is_closed():
            asyncio.run_coroutine_threadsafe(self.node.stop(), self.loop).result(30)
        self.thread.join(30)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealNode]:
    n = RealNode(str(tmp_path_factory.mktemp("real-node")))
    yield n
    n.stop()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    if argv[0] in ("tx", "query", "governance"):
        argv = (*argv, "--json")  # these tests read the JSON answer; tests/node/test_cli_usability.py the text
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out.strip() else None, captured.err


def test_custody_statement_from_the_real_node(node: RealNode, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    user, other = sorted(a for a in node.accounts if a.startswith("user-"))[:2]
    keys = {}
    for name in (user, other):
        keys[name] = str(tmp_path / f"{name.split('@')[0]}.key")
        save_key(AccountKey.from_seed(name, bytes.fromhex(node.accounts[name])), keys[name])
    url = ["--node", node.url]
    code, out, err = run(capsys, "tx", "create-hold", "--hold", "e2e-1", "--asset", "CASH-T", "--sender", user,
                         "--recipient", other, "--notary", "admin@m0", "--amount", "10.00",
                         "--expires-at", str(int(time.time()) + 3600), "--key", keys[user], *url)
    assert code == 0, err
    hold_height = out["receipt"]["height"]
    code, out, err = run(capsys, "tx", "transfer", "--asset", "CASH-T", "--legs",
                         json.dumps({"recipient": other, "amount": 55}), "--key", keys[user], *url)
    assert code == 0, err
    path = str(tmp_path / "statement.json")
    code, out, err = run(capsys, "statement", user, "--key", keys[user], "--out", path, "--genesis", node.genesis_path,
                         *url)
    assert code == 0 and out["verified"], err
    code, verdict, _ = run(capsys, "verify-statement", path, "--genesis", node.genesis_path)
    assert code == 0 and verdict["valid"]
    cash = verdict["holdings"][0]
    assert (cash["asset"], cash["held"], [h["hold"] for h in cash["holds"]]) == ("CASH-T", 1000, ["e2e-1"])
    data = Path(path).read_bytes()
    at = data.index(b'"held": ') + len(b'"held": ')
    Path(path + ".bad").write_bytes(data[:at] + b"9" + data[at + 1 :])
    code, verdict, _ = run(capsys, "verify-statement", path + ".bad", "--genesis", node.genesis_path)
    assert code == 1 and verdict["code"] == "statement_value_mismatch"
    # the SDK sees the same chain: the hold's event, in order, from a replayed stream
    with LedgerClient(node.url, AccountKey.from_seed(user, bytes.fromhex(node.accounts[user]))) as client:
        stream = client.events(accounts=[user], kinds=["hold_created"], from_height=1)
        first = next(stream)
        stream.close()
        assert (first.height, first.message["event"]["kind"]) == (hold_height, "hold_created")
        historical = client.statement(user, hold_height)
    assert client.verify_statement(historical, load_genesis(node.genesis_path)).ok
    assert historical["holdings"][0]["available"] == cash["available"] + 55
