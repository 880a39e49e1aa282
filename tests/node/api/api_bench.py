"""API throughput, measured over real TCP on localhost (client and server in one process, so the numbers are a
lower bound for the server): `python -m tests.node.api.api_bench [--seconds 3] [--concurrency 16]`.

- submit:   POST /v1/tx (JSON hex), the admission path: parse, decode, verify the Ed25519 signature, admit.
            Blocks are not produced during the run (the in-process test chain has no consensus).
- balance:  GET /v1/accounts/{id}/balances signed by the account (pre-signed: the client's signing is excluded),
            so each request runs the full authenticated-read path: header checks, key lookup, signature
            verification, replay cache, visibility, state reads.
- balance (open reads): the same read on a node with open reads (no signature).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from typing import Any

import aiohttp
from aiohttp import web

from ledger import operations as o
from node.api import ApiConfig, ApiLimits, create_app
from tests.node.api.api_world import ALICE, BOB, DAVE, ChainFacade, new_tx, populated_world, signed_headers

FAST = ApiLimits(rate_per_second=10**6, rate_burst=10**6)


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


async def _drive(n_workers: int, seconds: float, make: Any) -> tuple[int, int]:
    ok = bad = 0
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession() as session:

        async def worker(w: int) -> None:
            nonlocal ok, bad
            i = 0
            while time.perf_counter() < deadline:
                method, url, kw = make(w, i)
                i += 1
                async with session.request(method, url, **kw) as r:
                    await r.read()
                    if r.status < 300:
                        ok += 1
                    else:
                        bad += 1

        await asyncio.gather(*(worker(w) for w in range(n_workers)))
    return ok, bad


async def main(seconds: float, concurrency: int) -> None:
    world = populated_world(tempfile.mkdtemp() + "/db")
    print(f"# python -m tests.node.api.api_bench --seconds {seconds} --concurrency {concurrency}")
    # submit ----------------------------------------------------------------------------------------------------
    n = int(seconds * 4000)
    txs = [json.dumps({"tx": new_tx(world, ALICE, o.Transfer(ALICE, "BOND-A", (o.TransferLeg(BOB, 1),))
                                    ).to_bytes().hex()}).encode() for _ in range(n)]
    facade = ChainFacade(world, auto_commit=False)
    runner, base = await _serve(create_app(facade, ApiConfig(limits=FAST)))
    it = iter(txs)

    def submit(_w: int, _i: int) -> Any:
        return "POST", base + "/v1/tx", {"data": next(it), "headers": {"Content-Type": "application/json"}}

    t0 = time.perf_counter()
    ok, bad = await _drive(concurrency, seconds, submit)
    dt = time.perf_counter() - t0
    print(f"submit  POST /v1/tx            {ok / dt:8.0f} req/s  ({ok} admitted, {bad} refused, {dt:.1f} s)")
    await runner.cleanup()
    # signed balance reads -------------------------------------------------------------------------------------
    path = f"/v1/accounts/{DAVE}/balances"
    runner, base = await _serve(create_app(ChainFacade(world), ApiConfig(limits=FAST)))
    signed = [signed_headers(DAVE, "GET", path) for _ in range(int(seconds * 6000))]
    hit = iter(signed)

    def balance(_w: int, _i: int) -> Any:
        return "GET", base + path, {"headers": next(hit)}

    t0 = time.perf_counter()
    ok, bad = await _drive(concurrency, seconds, balance)
    dt = time.perf_counter() - t0
    print(f"balance GET  .../balances signed {ok / dt:6.0f} req/s  ({ok} ok, {bad} refused, {dt:.1f} s)")
    await runner.cleanup()
    runner, base = await _serve(create_app(ChainFacade(world), ApiConfig(open_reads=True, limits=FAST)))

    def balance_open(_w: int, _i: int) -> Any:
        return "GET", base + path, {}

    t0 = time.perf_counter()
    ok, bad = await _drive(concurrency, seconds, balance_open)
    dt = time.perf_counter() - t0
    print(f"balance GET  .../balances open   {ok / dt:6.0f} req/s  ({ok} ok, {bad} refused, {dt:.1f} s)")
    await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.concurrency))
