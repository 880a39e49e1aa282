"""The node's local admin socket: a Unix socket in the data directory (DATA/admin.sock, mode 0600).

One JSON object per line in each direction:

    {"op": "status"}                                  -> the node's status (NodeView.status())
    {"op": "submit", "tx": "<hex of signed tx>"}      -> {"tx_id": hex, "code": int, "message": str}
    {"op": "submit_many", "txs": [hex, ...]}          -> {"codes": [int, ...]}   (at most 8192)
    {"op": "roots", "from": H1, "to": H2}             -> {"roots": {"H": hex state root, ...}} (at most 1000)
    {"op": "block", "height": H}                      -> {"block_id": hex, "tx_count": int, "time_ms": int}
    {"op": "fault", "action": "block"|"unblock"|"delay", "peers": [...], "ms": int}   testnet configs only
    {"op": "metrics"}                                 -> {"text": Prometheus exposition}
    {"op": "commit_times", "after": H}                -> {"commits": [[height, monotonic s, txs], ...]} of heights > H
                                                         (txs: those made final, TX_REPLAYED copies not counted)
                                                         still kept (the last COMMIT_TIMES_KEPT; at most 8192)
    {"op": "round_timeline", "after": N}              -> {"events": [[seq, t_us, kind, height, round, a, b], ...],
                                                         "kinds": {code: name}}: the round timeline's events with
                                                         seq > N still kept (at most 8192; round_timeline.py)
    {"op": "reload_full_nodes"}                       -> {"full_nodes": [node id, ...]}: [p2p.full_nodes] re-read
                                                         from the config file, admitted from now on (no restart)

Errors: {"error": code, "message": text}. Used by operators (`ledger node status`), the testnet launcher and tests, through node/tools/admin_client.py.
Only local processes with access to the data directory can connect.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from typing import TYPE_CHECKING, Any, Final

from node.net.transport import TransportError
from node.validator.config import ConfigError
from node.validator.round_timeline import KINDS

if TYPE_CHECKING:
    from node.validator.node import ValidatorNode

MAX_LINE: Final = 64 << 20
MAX_CLIENTS: Final = 64
MAX_SUBMIT_MANY: Final = 8192
MAX_COMMIT_TIMES: Final = 8192
MAX_TIMELINE_EVENTS: Final = 8192


class AdminServer:
    def __init__(self, node: ValidatorNode, path: str) -> None:
        self.node = node
        self.path = path
        self._server: asyncio.AbstractServer | None = None
        self._clients = 0

    async def start(self) -> None:
        if os.path.exists(self.path):
            os.remove(self.path)
        self._server = await asyncio.start_unix_server(self._client, self.path, limit=MAX_LINE)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if os.path.exists(self.path):
            os.remove(self.path)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._clients >= MAX_CLIENTS:
            writer.close()
            return
        self._clients += 1
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    break
                if not line:
                    break
                try:
                    answer = await self.handle(json.loads(line))
                except (ValueError, TypeError, KeyError) as exc:
                    answer = {"error": "bad_request", "message": str(exc)}
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._clients -= 1
            writer.close()

    async def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        node = self.node
        view = node.view
        op = req["op"]
        if op == "status":
            return view.status()
        if op == "submit":
            raw = bytes.fromhex(req["tx"])
            (result,) = await node.submit_many([raw])
            tx_id = result.tx_id if result.tx_id is not None else hashlib.sha256(raw).digest()
            return {"tx_id": tx_id.hex(), "code": result.code, "message": result.message}
        if op == "submit_many":
            raws = [bytes.fromhex(t) for t in req["txs"][:MAX_SUBMIT_MANY]]
            results = await node.submit_many(raws)
            return {"codes": [r.code for r in results]}
        if op == "roots":
            lo, hi = int(req["from"]), int(req["to"])
            hi = min(hi, lo + 999, node.app.head.height)
            roots = {}
            for h in range(max(0, lo), hi + 1):
                root = node.app.store.state_root_at(h)
                if root is not None:
                    roots[str(h)] = root.hex()
            return {"roots": roots}
        if op == "block":
            committed = node.app.feed.load(int(req["height"]))
            return {"block_id": committed.block_id.hex(), "tx_count": committed.tx_count,
                    "time_ms": committed.time_ms, "receipts": len(committed.receipts)}
        if op == "metrics":
            return {"text": view.metrics_text()}
        if op == "commit_times":
            after = int(req["after"])
            return {"commits": [list(c) for c in node.commit_times if c[0] > after][:MAX_COMMIT_TIMES]}
        if op == "round_timeline":
            timeline = node.metrics.timeline
            events = [] if timeline is None else timeline.events(int(req.get("after", -1)), MAX_TIMELINE_EVENTS)
            return {"events": [list(e) for e in events], "kinds": KINDS}
        if op == "reload_full_nodes":
            try:
                return {"full_nodes": node.reload_full_nodes()}
            except ConfigError as exc:
                return {"error": exc.code, "message": exc.message}
        if op == "fault":
            transport = node.transport
            if transport is None:
                return {"error": "no_transport", "message": "a single-validator node has no peers"}
            try:
                action = req["action"]
                if action == "block":
                    transport.block(req["peers"])
                elif action == "unblock":
                    transport.unblock(req.get("peers"))
                elif action == "delay":
                    transport.set_delay(req.get("peer"), int(req["ms"]))
                else:
                    return {"error": "bad_request", "message": f"unknown fault action {action!r}"}
            except TransportError as exc:
                return {"error": exc.code, "message": exc.message}
            return {"ok": True, "faults": transport.fault_state()}
        return {"error": "bad_request", "message": f"unknown op {op!r}"}

