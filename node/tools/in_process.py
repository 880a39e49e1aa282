"""Testnet nodes inside this process: what `ledger node run` assembles from a node's config (a ValidatorNode with real
consensus over loopback TCP, its admin socket, its HTTP API) as tasks of one event loop on a thread of its own, the
nodes sharing one signature-verifier pool. Faster to start than processes (tests, `ledger demo` when no testnet is
running) and driven through the same admin sockets and API ports, so node.tools.testnet.Testnet offers the same
commands over both (a process cannot be killed with -9 here: `kill` is refused).

    nodes = InProcessNodes(config_path)    config_path(i) -> DIR/node-<i>/config.toml
    nodes.start(i) -> this process's pid   nodes.pid(i) -> pid | None (None once the node stopped, e.g. halted)
    nodes.stop(i) / nodes.stop_all(indexes)
    nodes.close()                          stop every node, close the verifier pool, end the event loop's thread
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from ledger.store import StoreError
from node.chain.genesis import GenesisError
from node.errors import NodeError
from node.net.transport import TransportError
from node.validator.config import ConfigError
from node.validator.keyfile import KeyFileError
from node.validator.safety_store import SafetyStoreError

# What keeps a node from starting, as `ledger node run` reports it: its config, keys, genesis, stores or ports.
START_ERRORS: Final = (ConfigError, GenesisError, KeyFileError, SafetyStoreError, NodeError, StoreError,
                       TransportError, ValueError, OSError)
START_TIMEOUT_S: Final = 90.0
STOP_TIMEOUT_S: Final = 60.0
EXIT_FATAL: Final = 3  # as `ledger node run`: the node halted on a fatal inconsistency

T = TypeVar("T")


@dataclass(slots=True)
class _Node:
    validator: Any
    admin: Any
    api: Any
    stopped: asyncio.Future[str | None]


class InProcessNodes:
    """The nodes of one testnet directory, run on an event loop of this process."""

    def __init__(self, config_path: Callable[[int], str]) -> None:
        self.config_path = config_path
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._nodes: dict[int, _Node] = {}
        self._exit_codes: dict[int, int] = {}
        self._verifier: Any = None

    # ----------------------------------------------------------------------------------------- the event loop

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=self._run_loop, args=(loop,), name="testnet-nodes", daemon=True)
            thread.start()
            self._loop, self._thread = loop, thread
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.run_forever()
        loop.close()

    # ---------------------------------------------------------------------------------------------- one node

    async def _start(self, i: int) -> None:
        from node.api.server import start_api
        from node.chain.sigverify import Ed25519Verifier
        from node.validator.admin_socket import AdminServer
        from node.validator.api_listen import api_serving
        from node.validator.config import load_config
        from node.validator.node import ValidatorNode

        config = load_config(self.config_path(i))
        if self._verifier is None:
            self._verifier = Ed25519Verifier()
        validator = ValidatorNode.from_config(config, sig_verifier=self._verifier)
        admin = AdminServer(validator, os.path.join(config.data_dir, "admin.sock"))
        api = None
        try:
            await validator.start()
            await admin.start()
            if config.api_listen is not None:
                api_config, api_ssl = api_serving(config, validator.genesis.chain_id)
                api = await start_api(validator.view, config.api_listen[0], config.api_listen[1], api_config, api_ssl)
        except BaseException:
            await admin.close()
            await validator.stop()
            raise
        self._nodes[i] = _Node(validator, admin, api, asyncio.ensure_future(validator.wait_stopped()))
        self._exit_codes.pop(i, None)

    async def _stop(self, i: int) -> None:
        node = self._nodes.pop(i, None)
        if node is None:
            return
        if node.api is not None:
            await node.api.stop()
        await node.admin.close()
        await node.validator.stop()
        fatal = await node.stopped
        self._exit_codes[i] = EXIT_FATAL if fatal else 0

    async def _stop_all(self, nodes: list[int]) -> None:
        await asyncio.gather(*(self._stop(i) for i in nodes))

    async def _close(self) -> None:
        await self._stop_all(list(self._nodes))
        if self._verifier is not None:
            self._verifier.close()
            self._verifier = None

    # ------------------------------------------------------------------------------------------ the commands

    def pid(self, i: int) -> int | None:
        """This process's pid while node i runs here (not stopped, not halted), else None."""
        node = self._nodes.get(i)
        return os.getpid() if node is not None and not node.stopped.done() else None

    def start(self, i: int) -> int:
        """Start node i (no-op when it runs); a node that halted is cleaned up and started again."""
        if self.pid(i) is not None:
            return os.getpid()
        if i in self._nodes:
            self._call(self._stop(i), STOP_TIMEOUT_S)
        self._call(self._start(i), START_TIMEOUT_S)
        return os.getpid()

    def stop(self, i: int, grace: float = STOP_TIMEOUT_S) -> str:
        """Stop node i gracefully; 'stopped' or 'not_running'."""
        return self.stop_all([i], grace)[i]

    def stop_all(self, nodes: Iterable[int], grace: float = STOP_TIMEOUT_S) -> dict[int, str]:
        which = list(nodes)
        result = {i: "stopped" if self.pid(i) is not None else "not_running" for i in which}
        if any(i in self._nodes for i in which):
            self._call(self._stop_all([i for i in which if i in self._nodes]), max(grace, STOP_TIMEOUT_S))
        return result

    def exit_code(self, i: int) -> int | None:
        """0 after a graceful stop, 3 when the node had halted (as `ledger node run` exits); None while it runs."""
        return self._exit_codes.get(i)

    def close(self) -> None:
        """Stop every node, close the shared verifier pool and end the event loop's thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            if loop.is_running():
                self._call(self._close(), STOP_TIMEOUT_S)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(STOP_TIMEOUT_S)
            self._loop = self._thread = None
