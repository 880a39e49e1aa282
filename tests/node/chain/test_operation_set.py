"""Every entry point of the node decodes, encodes and executes the same operation set: the node's (the ledger's core
kinds and the contracts layer's), composed in node/chain/protocol.py and passed explicitly — nothing is registered
at import. A contracts-layer operation (set_claim, revoke_claim) goes through each entry point that decodes
transactions: the client SDK builder, the API's encode / dry-run / submit (JSON and msgpack, and again once stored)
/ batch / status / history routes, mempool admission and pre-verification, block execution, the commit feed (live
and rebuilt from the store), the event stream, and the genesis file. An entry point that used the ledger's core-only set would refuse it (UNKNOWN_VARIANT)
and fail here."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from contracts.operations import RevokeClaim, SetClaim
from ledger.jsonform import to_json
from ledger.ops import CORE_OPERATIONS
from ledger.schema import MAX_BLOCK_BYTES, MAX_BLOCK_TXS
from node.api import ApiConfig
from node.api.schemas import COMPONENTS
from node.api.server import start_api
from node.chain.commit_feed import CommitFeed
from node.chain.genesis import ChainParams, genesis_state, load_genesis, parse_genesis
from node.chain.protocol import OPERATIONS, node_protocol
from node.client import AccountKey, builder
from node.client.aio import AsyncLedgerClient
from node.tools.localnet import ADMIN_ACCOUNT, generate_network, load_accounts
from node.validator.config import load_config
from node.validator.node import ValidatorNode

ROOT = Path(__file__).resolve().parents[3]
CHAIN = "opset-it"
U1 = "user-1@m0"
FAR = 4_000_000_000
CONTRACT_KINDS = {SetClaim.KIND, RevokeClaim.KIND, 66, 67}

PROBE = """
import ledger.ops as s
core_kinds, core_events = sorted(s.CORE_OPERATIONS.variant.by_kind), sorted(s.CORE_OPERATIONS.event_names)
import {module}
import contracts, node.chain.protocol, ledger.operations
print(sorted(s.CORE_OPERATIONS.variant.by_kind) == core_kinds, sorted(s.CORE_OPERATIONS.event_names) == core_events,
      len(core_kinds), hasattr(ledger.operations, "OPERATION"), hasattr(ledger.operations, "register_operation"),
      node.chain.protocol.OPERATIONS is contracts.OPERATIONS, sorted(node.chain.protocol.OPERATIONS.variant.by_kind))
"""


def test_importing_the_node_registers_nothing() -> None:
    """Importing any part of the node (or the contracts layer) leaves the ledger's core set as it was: the node's
    set is a separate value, the core set plus the contracts kinds."""
    for module in ("node.net.transport", "node.chain.mempool", "node.api", "node.chain.statement", "node.cli"):
        out = subprocess.run([sys.executable, "-c", PROBE.format(module=module)], cwd=ROOT, capture_output=True,
                             text=True, check=True, timeout=120).stdout.split(" ", 6)
        assert out[:6] == ["True", "True", "29", "False", "False", "True"], (module, out)
        kinds = set(json.loads(out[6]))
        assert CONTRACT_KINDS <= kinds and kinds - CONTRACT_KINDS == set(CORE_OPERATIONS.variant.by_kind)


def test_node_code_names_only_the_node_set() -> None:
    """node/ never uses the ledger's core-only set, and builds a Protocol in one place only."""
    core_users, protocol_builders = [], []
    for path in (ROOT / "node").rglob("*.py"):
        text = path.read_text()
        rel = str(path.relative_to(ROOT))
        if "CORE_OPERATIONS" in text:
            core_users.append(rel)
        if re.search(r"\bProtocol\(", text):
            protocol_builders.append(rel)
    assert core_users == []
    assert protocol_builders == ["node/chain/protocol.py"]
    assert OPERATIONS.types[:29] == CORE_OPERATIONS.types and set(OPERATIONS.types[29:]) >= {SetClaim, RevokeClaim}
    assert node_protocol().operations is OPERATIONS
    kinds = [o["properties"]["kind"]["const"] for o in COMPONENTS["Operation"]["oneOf"]]  # the OpenAPI document
    assert "set_claim" in kinds and "claim_set" in OPERATIONS.event_names


def test_genesis_operations_of_the_contracts_layer(tmp_path: Path) -> None:
    layout = generate_network(str(tmp_path), 1, chain_id=CHAIN, users=2, seed=b"opset-genesis")
    doc = json.loads(Path(layout.genesis_path).read_text())
    base = genesis_state(parse_genesis(doc))
    doc["operations"].append(to_json(OPERATIONS.variant, SetClaim(ADMIN_ACCOUNT, U1, "SG", 2, FAR)))
    genesis = parse_genesis(doc)
    assert genesis.operations[-1] == SetClaim(ADMIN_ACCOUNT, U1, "SG", 2, FAR)
    assert genesis_state(genesis).state_root != base.state_root  # executed: the claim is in state


def test_a_contracts_operation_through_every_entry_point(tmp_path: Path) -> None:
    layout = generate_network(str(tmp_path), 1, chain_id=CHAIN, users=2, seed=b"opset-it",
                              params=ChainParams(base_timeout_ms=1000, empty_block_interval_ms=100))
    load_genesis(layout.genesis_path)  # the genesis file parses with the node's operation set
    admin = AccountKey(ADMIN_ACCOUNT, load_accounts(layout.accounts_path)[ADMIN_ACCOUNT])

    async def main() -> None:
        node = ValidatorNode.from_config(load_config(os.path.join(str(tmp_path), "node-0", "config.toml")))
        await node.start()
        server = await start_api(node.view, "127.0.0.1", 0, ApiConfig())
        try:
            async with AsyncLedgerClient(server.url, admin) as client, aiohttp.ClientSession(server.url) as http:
                await asyncio.wait_for(scenario(node, client, http), 90)
        finally:
            await server.stop()
            await node.stop()

    async def post(http: aiohttp.ClientSession, path: str, obj: Any) -> tuple[int, Any]:
        async with http.post(path, json=obj) as r:
            return r.status, await r.json()

    async def scenario(node: ValidatorNode, client: AsyncLedgerClient, http: aiohttp.ClientSession) -> None:
        # The client SDK: build, JSON round trip, sign, decode.
        op = builder.operation("set_claim", actor=ADMIN_ACCOUNT, account=U1, country="SG", level=2, expires_at=FAR)
        assert op == SetClaim(ADMIN_ACCOUNT, U1, "SG", 2, FAR)
        assert builder.operation_from_json(builder.operation_to_json(op)) == op
        tx = builder.sign(await client.body([op]), [admin])
        assert builder.tx_from_bytes(tx.to_bytes()) == tx
        as_json = builder.tx_to_json(tx)
        assert as_json["body"]["operations"][0]["kind"] == "set_claim"
        # The API: encode, dry-run (signed transaction, and unsigned operations).
        enc = await client.encode(as_json["body"])
        assert (enc["body"], enc["tx_id"]) == (tx.body_bytes.hex(), tx.tx_id.hex())
        assert (await client.dry_run(tx))["code"] == 0
        assert (await client.dry_run(ops=[op]))["code"] == 0
        # Submit the JSON envelope: mempool admission, block execution, the live commit feed.
        live = node.app.feed.subscribe()
        status, res = await post(http, "/v1/tx?wait=commit&timeout=20",
                                 {"body": as_json["body"], "signatures": as_json["signatures"]})
        assert status == 200 and res["status"] == "committed", res
        receipt = res["receipt"]
        assert receipt["code"] == 0 and [e["kind"] for e in receipt["events"]] == ["claim_set"], receipt
        height = receipt["height"]
        status, again = await post(http, "/v1/tx", {"body": as_json["body"], "signatures": as_json["signatures"]})
        assert status == 200 and again["duplicate"] and again["receipt"] == receipt  # answered from the store
        while True:
            block = await live.next()
            if block.height == height:
                break
        assert [(r.tx_id, r.code, [e.kind for e in r.events]) for r in block.receipts] == [
            (tx.tx_id, 0, ["claim_set"])]
        # Stored transactions and receipts: status, history, the commit feed replayed from the store.
        st = await client.tx(tx.tx_id.hex())
        assert st["status"] == "committed" and st["receipt"]["events"][0]["kind"] == "claim_set"
        history = await client.history(U1)
        assert tx.tx_id.hex() in json.dumps(history)
        replay = node.app.feed.subscribe(from_height=height)
        block = await replay.next()
        assert block.height == height and [e.kind for e in block.events] == ["claim_set"]
        rebuilt = CommitFeed(node.app.store, MAX_BLOCK_TXS, MAX_BLOCK_BYTES, operations=OPERATIONS).load(height)  # not in memory: the store
        assert [(r.tx_id, [e.kind for e in r.events]) for r in rebuilt.receipts] == [(tx.tx_id, ["claim_set"])]
        # The event stream (replayed from the store), filtered by the contracts layer's event kind.
        stream = client.events(accounts=[U1], kinds=["claim_set"], from_height=height)
        item = await anext(stream)
        assert (item.type, item.height) == ("event", height)
        assert item.message["event"]["kind"] == "claim_set" and item.message["event"]["tx_id"] == tx.tx_id.hex()
        await stream.aclose()
        # The batch route and the msgpack submit path.
        revoke = builder.sign(await client.body([RevokeClaim(ADMIN_ACCOUNT, U1)]), [admin])
        (result,) = await client.submit_batch([revoke])
        assert result["code"] == 0, result
        while (st := await client.tx(revoke.tx_id.hex()))["status"] != "committed":
            await asyncio.sleep(0.1)
        assert st["receipt"]["code"] == 0 and st["receipt"]["events"][0]["kind"] == "claim_revoked"
        again = builder.sign(await client.body([op]), [admin])
        submitted = await client.submit(again)
        assert submitted.receipt is not None and submitted.receipt["events"][0]["kind"] == "claim_set"

    asyncio.run(main())
