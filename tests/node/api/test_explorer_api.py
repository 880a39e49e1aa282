"""The reads the block explorer needs (node/api/routes/catalog.py, signing.py) and the explorer's files as the API
serves them, on an in-process chain (tests/node/api/api_world.py) whose blocks are certified by real BLS quorums of
validators v0, v1, v2 (of v0..v3)."""

from __future__ import annotations

import asyncio
import re
import tomllib
from collections.abc import Awaitable, Callable
from fnmatch import fnmatch
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from contracts.operations import AnnounceAction
from ledger import operations as o
from ledger.jsonform import body_to_json
from node.api import ApiConfig
from node.api.explorer.assets import CSP, load_files
from node.chain.protocol import OPERATIONS, node_protocol
from tests.node.api.api_world import ALICE, BOB, ISSUER, ApiHarness, MirrorWorld, new_tx, populated_world

ROOT = Path(__file__).resolve().parents[3]


def run(world: MirrorWorld, body: Callable[[ApiHarness], Awaitable[None]], *, open_reads: bool = True) -> None:
    async def main() -> None:
        async with ApiHarness(world, ApiConfig(open_reads=open_reads)) as api:
            await body(api)

    asyncio.run(main())


@pytest.fixture
def world(tmp_path: Path) -> MirrorWorld:
    w = populated_world(str(tmp_path / "store"), node_protocol())
    w.asset("FUND-Z", ISSUER, cap=10**9)
    w.ok(ISSUER, AnnounceAction(ISSUER, "cpn-1", 1, "BOND-A", "CASH-T", ISSUER, ISSUER, w.ledger.height + 5, 7, 200))
    w.ok(ALICE, o.Transfer(ALICE, "BOND-A", (o.TransferLeg(BOB, 10),)))
    return w


def test_assets_are_listed_by_id_with_supply_and_decimals_page_by_page(world: MirrorWorld) -> None:
    async def body(api: ApiHarness) -> None:
        status, first = await api.get("/v1/assets", query="limit=2")
        assert status == 200, first
        assert [a["asset_id"] for a in first["items"]] == ["BOND-A", "CASH-T"] and first["next"] == "CASH-T"
        bond = first["items"][0]
        assert (bond["issuer"], bond["decimals"], bond["outstanding"], bond["paused"]) == (ISSUER, 2, 150_000, False)
        status, second = await api.get("/v1/assets", query="limit=2&after=CASH-T")
        assert [a["asset_id"] for a in second["items"]] == ["FUND-Z"] and second["next"] is None
        status, bad = await api.get("/v1/assets", query="after=not%20an%20id")
        assert status == 400 and bad["name"] == "API_BAD_REQUEST"

    run(world, body)


def test_accounts_are_listed_by_id_page_by_page(world: MirrorWorld) -> None:
    async def body(api: ApiHarness) -> None:
        seen: list[str] = []
        after = ""
        while True:
            status, page = await api.get("/v1/accounts", query="limit=3" + (f"&after={after}" if after else ""))
            assert status == 200, page
            seen += [a["account_id"] for a in page["items"]]
            if page["next"] is None:
                break
            after = page["next"]
        assert seen == sorted(seen) and len(seen) == len(set(seen))
        assert {ALICE, BOB, ISSUER, "admin@consortium"} <= set(seen)
        status, alice = await api.get(f"/v1/accounts/{ALICE}")
        listed = next(
            a for a in (await api.get("/v1/accounts", query="limit=1000"))[1]["items"] if a["account_id"] == ALICE
        )
        assert listed == alice

    run(world, body, open_reads=False)  # account records are public


def test_corporate_actions_of_an_asset_and_of_its_pay_asset(world: MirrorWorld) -> None:
    async def body(api: ApiHarness) -> None:
        status, bond = await api.get("/v1/assets/BOND-A/actions")
        assert status == 200, bond
        [action] = bond["items"]
        assert action["action_id"] == "cpn-1" and action["kind"] == "distribution"
        assert (action["asset"], action["pay_asset"], action["rate_num"], action["rate_den"]) == (
            "BOND-A",
            "CASH-T",
            7,
            200,
        )
        assert action["done"] is False and action["paid"] == 0 and bond["next"] is None
        assert (await api.get("/v1/assets/CASH-T/actions"))[1]["items"] == [action]
        status, none = await api.get("/v1/assets/FUND-Z/actions")
        assert status == 200 and none["items"] == [] and none["next"] is None
        status, missing = await api.get("/v1/assets/NOPE/actions")
        assert status == 404 and missing["name"] == "API_ASSET_NOT_FOUND"

    run(world, body, open_reads=False)


def test_a_committed_transaction_decodes_to_its_json_body(world: MirrorWorld) -> None:
    tx = new_tx(world, ALICE, o.Transfer(ALICE, "BOND-A", (o.TransferLeg(BOB, 3),)))

    async def body(api: ApiHarness) -> None:
        status, pending = await api.get(f"/v1/tx/{tx.tx_id.hex()}/body")
        assert status == 404 and pending["name"] == "API_TX_NOT_FOUND"
        status, sub = await api.post("/v1/tx", {"tx": tx.to_bytes().hex()}, query="wait=commit&timeout=5")
        assert status == 200, sub
        status, got = await api.get(f"/v1/tx/{tx.tx_id.hex()}/body")
        assert status == 200, got
        assert got["body"] == body_to_json(tx.body, operations=OPERATIONS)
        assert got["height"] == sub["receipt"]["height"] and got["index"] == 0
        assert got["signatures"] == [
            {"account": s.account, "public_key": s.public_key.hex(), "signature": s.signature.hex()}
            for s in tx.signatures
        ]

    run(world, body, open_reads=False)  # public: the id is the capability, as for GET /v1/tx/{id}


def test_blocks_are_found_by_hash_and_by_a_hash_prefix(world: MirrorWorld) -> None:
    async def body(api: ApiHarness) -> None:
        status, page = await api.get("/v1/blocks", query="from_height=0&limit=100")
        assert status == 200, page
        blocks = {b["block_hash"]: b["height"] for b in page["items"]}
        assert len(blocks) == len(page["items"]) >= 5
        # The store's index, in hash order, holds every block once.
        indexed = world.store.block_hashes_from(b"", 1000)
        assert [h for h, _ in indexed] == sorted(h for h, _ in indexed)
        assert {h.hex(): height for h, height in indexed} == blocks
        assert world.store.block_hashes_from(indexed[2][0], 2) == indexed[2:4]  # from `start` on, at most `limit`
        assert (
            world.store.block_hashes_from(indexed[-1][0] + b"\x00", 5) == []
            and world.store.block_hashes_from(b"", 0) == []
        )
        for block_hash, height in blocks.items():
            for digits in (64, 9, 8):  # the full hash, an odd and an even prefix
                status, found = await api.get(f"/v1/blocks/by-hash/{block_hash[:digits]}")
                assert status == 200, found
                assert found == {"items": [{"height": height, "block_hash": block_hash}], "more": False}
        some = next(iter(blocks))
        other_nibble = "0" if some[8] != "0" else "1"  # same first 4 bytes, another 9th digit: no block
        for absent in (some[:8] + other_nibble, "f" * 64 if "f" * 64 not in blocks else "0" * 64):
            status, missing = await api.get(f"/v1/blocks/by-hash/{absent}")
            assert status == 404 and missing["name"] == "API_BLOCK_NOT_FOUND", missing
            assert missing["details"] == {"block_hash": absent}
        for bad in (some[:7], some.upper(), some + "0", "xyzxyzxy"):
            status, refused = await api.get(f"/v1/blocks/by-hash/{bad}")
            assert status == 400 and refused["name"] == "API_BAD_REQUEST", (bad, refused)

    run(world, body, open_reads=False)  # public, as blocks are


def test_a_block_certificate_names_its_signers(world: MirrorWorld) -> None:
    async def body(api: ApiHarness) -> None:
        status, cert = await api.get("/v1/blocks/3/certificate")
        assert status == 200, cert
        assert cert["height"] == 3 and cert["epoch"] == 0
        assert [s["name"] for s in cert["signers"]] == ["v0", "v1", "v2"]
        assert [(v["name"], v["signed"]) for v in cert["validators"]] == [
            ("v0", True),
            ("v1", True),
            ("v2", True),
            ("v3", False),
        ]
        assert (cert["signer_power"], cert["total_power"]) == (3, 4)
        assert [h["height"] for h in cert["headers"]] == [3, 4] and cert["headers"][0]["proposer_name"] == "v3"
        status, block = await api.get("/v1/blocks/3")
        assert cert["block_id"] == block["block_hash"]
        status, genesis = await api.get("/v1/blocks/0/certificate")
        assert status == 404 and genesis["name"] == "API_NOT_AVAILABLE"
        head = world.store.head().height
        status, beyond = await api.get(f"/v1/blocks/{head + 1}/certificate")
        assert status == 404 and beyond["name"] == "API_BLOCK_NOT_FOUND"

    run(world, body, open_reads=False)


def test_validators_signing_over_the_last_blocks(world: MirrorWorld) -> None:
    head = world.store.head().height

    async def body(api: ApiHarness) -> None:
        status, sig = await api.get("/v1/validators/signing", query="limit=5")
        assert status == 200, sig
        assert (sig["from_height"], sig["to_height"]) == (head - 4, head)
        # The head's certificate is stored with the next block: the window shows the 4 certified ones.
        assert [b["height"] for b in sig["blocks"]] == list(range(head - 4, head))
        assert all(b["signers"] == ["v0", "v1", "v2"] for b in sig["blocks"])
        tally = {v["name"]: v for v in sig["validators"]}
        assert [v["name"] for v in sig["validators"]] == ["v0", "v1", "v2", "v3"]
        assert tally["v0"]["signed"] == tally["v0"]["eligible"] == 4 and tally["v3"]["signed"] == 0
        assert tally["v0"]["last_signed"] == head - 1 and tally["v3"]["last_signed"] is None
        assert sum(v["proposed"] for v in sig["validators"]) == 4
        status, bad = await api.get("/v1/validators/signing", query="limit=101")
        assert status == 400 and bad["details"]["parameter"] == "limit"

    run(world, body, open_reads=False)


# -- the explorer's files ----------------------------------------------------------------------------------------


def test_the_explorer_page_and_its_modules_are_served_with_a_same_origin_policy(world: MirrorWorld) -> None:
    files = load_files()

    async def body(api: ApiHarness) -> None:
        async with api.client.get("/") as r:
            assert r.status == 200 and r.content_type == "text/html"
            page = await r.text()
            assert r.headers["Content-Security-Policy"] == CSP
        async with api.client.head("/") as r:
            assert r.status == 200
        referenced = set(re.findall(r'(?:src|href)="/explorer/([^"]+)"', page))
        for name, f in files.items():
            if f.content_type == "text/javascript":
                referenced |= set(re.findall(r'from "\./([^"]+)"', f.body.decode()))
        assert referenced and referenced <= set(files), referenced - set(files)  # every import resolves
        for name in sorted(referenced):
            async with api.client.get(f"/explorer/{name}") as r:
                assert r.status == 200, name
                assert r.content_type == files[name].content_type
                assert await r.read() == files[name].body
        for missing in ("/explorer/nope.js", "/explorer/..%2Fassets.py", "/explorer/", "/explorer/assets.py"):
            async with api.client.get(missing) as r:
                assert r.status == 404, missing
                assert (await r.json())["name"] == "API_ROUTE_NOT_FOUND"
        async with api.client.post("/") as r:
            assert r.status == 405 and (await r.json())["name"] == "API_METHOD_NOT_ALLOWED"

    run(world, body, open_reads=False)


def test_no_page_fetches_anything_from_another_origin() -> None:
    for name, f in load_files().items():
        text = f.body.decode()
        assert not re.search(r"https?://", text.replace("http://www.w3.org/2000/svg", "")), name
        assert "innerHTML" not in text and "eval(" not in text, name


def test_amounts_are_never_floats_in_the_explorer() -> None:
    """Amounts go through format.js `amount` (BigInt); no parseFloat / toFixed on anything but the commit rate."""
    for name, f in load_files().items():
        if f.content_type != "text/javascript":
            continue
        text = f.body.decode()
        assert "parseFloat" not in text, name
        for line in text.splitlines():
            if "toFixed" in line:
                assert "/ span" in line, (name, line)  # the blocks-per-minute rate


def test_the_static_files_are_package_data() -> None:
    """A non-editable install must carry node/api/explorer/static/: pyproject declares it."""
    config: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["node.api.explorer"]
    static = resources.files("node.api.explorer").joinpath("static")
    names = [entry.name for entry in static.iterdir() if entry.is_file()]
    assert names and all(any(fnmatch(f"static/{n}", p) for p in patterns) for n in names), (patterns, names)
