"""node.tools.loadgen: a node that cannot be reached (killed, restarting, partitioned away) does not stop the load;
the batch it did not answer goes, unchanged, to the next node. Both submission paths: the HTTP API and the admin
sockets (whose node here dies in the middle of a batch)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import msgpack
from aiohttp import web

from node.tools.loadgen import LoadJob, _submit_all

COUNT = 300


def _job(*, api_urls: tuple[str, ...] = (), sockets: tuple[str, ...] = ()) -> LoadJob:
    return LoadJob(0, "bench-chain", (), (), sockets, COUNT, 100, None, 3.0, 1, 64, 1, api_urls)


def _txs() -> list[bytes]:
    return [b"tx-%05d" % k for k in range(COUNT)]


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_api_node_sends_its_batches_to_the_next_one() -> None:
    received: list[bytes] = []

    async def batch(request: web.Request) -> web.Response:
        txs = msgpack.unpackb(await request.read())
        received.extend(txs)
        return web.json_response({"results": [{"code": 0} for _ in txs]})

    async def run() -> dict:
        app = web.Application()
        app.router.add_post("/v1/tx/batch", batch)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            job = _job(api_urls=(f"http://127.0.0.1:{_dead_port()}", f"http://127.0.0.1:{port}"))
            return await _submit_all(job, _txs(), time.time())
        finally:
            await runner.cleanup()

    out = asyncio.run(run())
    assert out["unreachable"] >= 1
    assert len(out["accepted"]) == COUNT and out["submitted"] == COUNT and not out["failed"]
    assert sorted(received) == _txs()  # each one reached the live node once


def test_an_admin_socket_that_dies_mid_batch_hands_the_batch_to_the_next_node(tmp_path: Path) -> None:
    seen: dict[str, list[str]] = {"a": [], "b": []}

    def serve(name: str, answer_at_most: int | None) -> object:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while line := await reader.readline():
                if answer_at_most is not None and len(seen[name]) >= answer_at_most:
                    writer.close()  # the node dies, its connection with it
                    return
                seen[name].append(json.loads(line)["tx"])
                writer.write(b'{"code": 0}\n')
                await writer.drain()
            writer.close()

        return handle

    async def run() -> dict:
        a_path, b_path = str(tmp_path / "a.sock"), str(tmp_path / "b.sock")
        a = await asyncio.start_unix_server(serve("a", 100), a_path)  # answers 100 lines, then dies
        b = await asyncio.start_unix_server(serve("b", None), b_path)
        try:
            return await _submit_all(_job(sockets=(a_path, b_path)), _txs(), time.time())
        finally:
            a.close()
            b.close()

    out = asyncio.run(run())
    assert out["unreachable"] >= 1
    assert len(out["accepted"]) == COUNT and not out["failed"]
    everything = {t.hex() for t in _txs()}
    assert set(seen["b"]) | set(seen["a"][:64]) == everything  # the unanswered batch went to b whole
    assert len(seen["a"]) == 100
