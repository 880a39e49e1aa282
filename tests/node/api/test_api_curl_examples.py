"""Every curl example of docs/api.md section 9 runs, as written, against a live node (a one-validator testnet
process serving the API with open reads): every route of the API has one, and each answers a success status."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from node.api.routes import ALL_ROUTES
from node.client import builder
from node.client.keys import AccountKey
from node.client.proposals import parse_actions, propose
from node.client.sync import LedgerClient
from node.tools.localnet import load_accounts
from tests.node.api.live_node import one_node_testnet

DOC = Path(__file__).resolve().parents[3] / "docs" / "api.md"
SECTION = "## 9. Every endpoint with curl"
HEADING = re.compile(r"^#### `(GET|POST) (/\S*)`$")
CURL_TIMEOUT_S = 60.0
# curl's exit code when --max-time ends a transfer: how the stream examples stop
CURL_TIMED_OUT = 28
# The wrapper the examples run under: the example's own curl command line, plus where to put the body and the status.
WRAPPER = """curl() {
  command curl -sS -o "$OUT_BODY" -w '%{http_code}' "$@" > "$OUT_STATUS"
  rc=$?
  [ "$rc" -eq 0 ] || [ "$rc" -eq 28 ] || return "$rc"
}
"""


def examples() -> list[tuple[str, str, str]]:
    """(method, path, shell block) for every sh block under a route heading of section 9."""
    text = DOC.read_text()
    assert SECTION in text
    lines = text[text.index(SECTION) :].splitlines()
    found: list[tuple[str, str, str]] = []
    route: tuple[str, str] | None = None
    block: list[str] | None = None
    for line in lines:
        if block is not None:
            if line == "```":
                assert route is not None, "a curl block before any route heading"
                found.append((*route, "\n".join(block)))
                block = None
            else:
                block.append(line)
        elif (m := HEADING.match(line)) is not None:
            route = (m.group(1), m.group(2))
        elif line == "```sh":
            block = []
    return found


def test_every_route_has_a_curl_example() -> None:
    documented = {(method, path) for method, path, _ in examples()}
    routes = {(r.method, r.path) for r in ALL_ROUTES}
    assert routes - documented == set(), "routes without a curl example in docs/api.md section 9"
    assert documented - routes == set(), "curl examples of routes that do not exist"


def _world(url: str, accounts_path: str) -> dict[str, str]:
    """A transfer, a hold and a proposal on the node, and fresh signed transactions for the examples that submit."""
    seeds = load_accounts(accounts_path)
    key = {name: AccountKey.from_seed(name, bytes(sk)) for name, sk in seeds.items()}
    user, admin = "user-0@m0", "admin@m0"
    with LedgerClient(url, timeout=30) as client:

        def submit(op: Any, signer: str) -> str:
            result = client.submit(builder.sign(client.body([op]), [key[signer]]), wait="commit", timeout=30)
            assert result.receipt is not None and result.receipt["code"] == 0, result.receipt
            return result.tx_id

        tx_id = submit(
            builder.operation("transfer", actor=user, asset="CASH-T", legs=[{"recipient": admin, "amount": 1}]), user
        )
        submit(
            builder.operation(
                "create_hold",
                actor=user,
                hold="curl-hold-1",
                asset="CASH-T",
                sender=user,
                recipient=admin,
                notary=admin,
                amount=100,
                expires_at=int(time.time()) + 3600,
            ),
            user,
        )
        head = client.head_height()
        actions = parse_actions([{"kind": "add_member", "member": "m9", "name": "Member 9", "voter": False}])
        submit(propose("gov@m0", "curl-proposal-1", actions, head + 100), "gov@m0")
        fresh = []
        for nonce in (11, 12, 13):
            op = builder.operation("transfer", actor=user, asset="CASH-T", legs=[{"recipient": admin, "amount": 1}])
            tx = builder.sign(client.body([op], nonce=nonce), [key[user]])
            fresh.append(builder.tx_to_json(tx)["signed_tx_hex"])
        status = client.status()
        block_hash = client.block(1)["block_hash"]
    return {
        "NODE": url,
        "CHAIN_ID": status["chain_id"],
        "EXPIRY": str(status["height"] + 100),
        "TX_ID": tx_id,
        "HOLD_ID": "curl-hold-1",
        "PROPOSAL_ID": "curl-proposal-1",
        "BLOCK_HASH": block_hash,
        "TX_HEX": fresh[0],
        "BATCH_HEX": fresh[1],
        "DRY_HEX": fresh[2],
    }


def test_every_curl_example_succeeds_on_a_live_node(tmp_path: Path) -> None:
    assert shutil.which("curl") is not None and shutil.which("bash") is not None, "this test runs curl under bash"
    with one_node_testnet(tmp_path, "curl", open_reads=True, empty_block_interval_ms=200) as net:
        variables = _world(net.api_url(0), net.accounts_path)
        env = {**os.environ, **variables, "OUT_BODY": str(tmp_path / "body"), "OUT_STATUS": str(tmp_path / "status")}
        ran = 0
        for method, path, block in examples():
            assert block.lstrip().startswith("curl "), (method, path, "an example is one curl command")
            proc = subprocess.run(
                ["bash", "-c", WRAPPER + block],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=CURL_TIMEOUT_S,
                check=False,
            )
            assert proc.returncode == 0, (method, path, proc.stderr)
            status = int((tmp_path / "status").read_text())
            body = (tmp_path / "body").read_bytes()
            assert 200 <= status < 300 and body, (method, path, status, body[:300])
            if body.startswith(b"{"):
                doc = json.loads(body)
                assert set(doc) != {"code", "name", "message", "details"}, (method, path, doc)  # not an error
                if path == "/v1/tx/dry-run":
                    assert doc["code"] == 0 and doc["allowed"] is True, doc
                if path == "/v1/tx":
                    assert doc["status"] == "committed" and doc["receipt"]["code"] == 0, doc
            ran += 1
        assert ran >= len(ALL_ROUTES)
        # what the submitting examples did, seen from the node
        with LedgerClient(net.api_url(0)) as client:
            for hex_tx in (variables["TX_HEX"], variables["BATCH_HEX"]):
                tx_id = builder.tx_from_bytes(bytes.fromhex(hex_tx)).tx_id.hex()
                deadline = time.monotonic() + 30
                while client.tx(tx_id)["status"] != "committed":
                    assert time.monotonic() < deadline, tx_id
                    time.sleep(0.2)
