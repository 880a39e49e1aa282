"""The testnet loads sign as clients do: each transfer expires EXPIRY_BLOCKS after the head the load last saw, not
after the head of its start. One expiry for a whole run made every block rewrite one growing replay bucket (its ids
listed per expiry height), so a healthy testnet slowed down as a run went on (docs/benchmarks.md, "The load's expiry
heights"). Both loads run here against fakes: TransferLoad (chaos, demo) over a fake admin socket, and the degraded
bench's closed loop over a small HTTP server answering every submission "committed" at a rising height."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time

from aiohttp import web

from ledger.transaction import decode_transaction
from node.chain.protocol import OPERATIONS
from node.tools.bench_degraded import ClosedLoop
from node.tools.load import EXPIRY_BLOCKS, TransferLoad


class FakeNet:
    """What the loads read of a testnet: its accounts, heights that rise on demand, and where to submit."""

    chain_id = "testnet-local"

    def __init__(self, path: str, users: int = 4) -> None:
        self.accounts_path = path
        with open(path, "w", encoding="utf-8") as f:
            json.dump({f"user-{i}@m0": bytes([i + 1]).hex() * 32 for i in range(users)}, f)
        self.n = 2
        self.head = 100
        self.submitted: list[bytes] = []
        self.url = ""

    def running(self, i: int) -> bool:
        return True

    def height(self, i: int) -> int:
        return self.head

    def admin(self, i: int, request: dict, timeout: float = 1.0) -> dict:
        self.submitted.append(bytes.fromhex(request["tx"]))
        return {"code": 0}

    def api_url(self, i: int) -> str:
        return self.url


def expiries(raws: list[bytes]) -> list[int]:
    return [decode_transaction(raw, operations=OPERATIONS).body.expiry_height for raw in raws]


def test_transfer_load_follows_the_head(tmp_path, monkeypatch) -> None:
    import node.tools.load as load_module

    monkeypatch.setattr(load_module, "EXPIRY_REFRESH_S", 0.05)
    net = FakeNet(str(tmp_path / "accounts.json"))
    load = TransferLoad(net, 400, random.Random(1))
    load.start()
    for _ in range(6):
        time.sleep(0.12)
        net.head += 40
    load.finish()
    seen = expiries(net.submitted)
    assert seen[0] == 100 + EXPIRY_BLOCKS and seen == sorted(seen)
    assert len(set(seen)) >= 4 and seen[-1] >= 100 + 4 * 40 + EXPIRY_BLOCKS


def test_the_degraded_bench_closed_loop_follows_the_heights_its_commits_answer(tmp_path) -> None:
    net = FakeNet(str(tmp_path / "accounts.json"), users=5)
    got: list[bytes] = []

    async def submit(request: web.Request) -> web.Response:
        raw = bytes.fromhex((await request.json())["tx"])
        got.append(raw)
        net.head += 1  # every commit answer names a higher block
        return web.json_response({"status": "committed", "receipt": {"height": net.head}})

    ready, stop = threading.Event(), threading.Event()

    def serve() -> None:
        async def main() -> None:
            app = web.Application()
            app.router.add_post("/v1/tx", submit)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            net.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.02)
            await runner.cleanup()

        asyncio.run(main())

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    assert ready.wait(10)
    load = ClosedLoop(net, 2, seed=3)
    load.start()
    deadline = time.monotonic() + 10
    while len(got) < 40 and time.monotonic() < deadline:
        time.sleep(0.02)
    load.finish()
    stop.set()
    server.join(10)
    seen = expiries(got)
    assert len(seen) >= 40 and load.errors == 0
    assert seen[0] == 100 + EXPIRY_BLOCKS  # the head at the start
    assert seen[-1] >= seen[0] + 30  # then each commit answer's height
