"""Authenticated reads (docs/api.md section 1): the canonical string vector, every refusal code, visibility."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from node.api import ApiConfig
from node.api import errors as e
from node.api.auth import ReplayCache, canonical_query, canonical_request
from tests.node.api.api_world import (
    AGENT,
    ALICE,
    AUDITOR,
    BOB,
    CUSTODIAN,
    DAVE,
    ISSUER,
    OUTSIDER,
    ApiHarness,
    populated_world,
    signed_headers,
)

VECTOR_KEY = SigningKey(bytes(range(32)))


def test_canonical_request_vector() -> None:
    pk = bytes(VECTOR_KEY.verify_key).hex()
    assert pk == "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    m = canonical_request("testnet", "node-0", "GET", "/v1/accounts/client-d@bank-a/balances",
                          "height=12&asset=BOND-A", b"", "1764064800", "4f1c2a9e0b7d6e35", "custody@bank-a", pk)
    assert m == (
        b"CONSORTIUM-LEDGER/READ/v2\ntestnet\nnode-0\nGET\n/v1/accounts/client-d@bank-a/balances\n"
        b"asset=BOND-A&height=12\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n1764064800\n"
        b"4f1c2a9e0b7d6e35\ncustody@bank-a\n03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    )
    assert VECTOR_KEY.sign(m).signature.hex() == (
        "20448407bc873df6c16e81cff9d5097161035b4bd5b6252500a139ac6eb766e0"
        "042f39d8f5aa91322616f26961685bb90c96dd881a9a213326fa4c6519561500"
    )
    # The same request addressed to node-3 is another string, so another signature (docs/api.md 1.2).
    m3 = canonical_request("testnet", "node-3", "GET", "/v1/accounts/client-d@bank-a/balances",
                           "height=12&asset=BOND-A", b"", "1764064800", "4f1c2a9e0b7d6e35", "custody@bank-a", pk)
    assert VECTOR_KEY.sign(m3).signature.hex() == (
        "d72d52d1a04c39e1b212238cd2794d2fc4be31822383b2cef8fd87e066e27a3b"
        "390cb085f5c621d80a3b70f5904f48536231648ee23a19ad4f5b296ea7379705"
    )
    body = b'{"signers":["client-d@bank-a"]}'
    m2 = canonical_request("testnet", "node-0", "POST", "/v1/tx/dry-run", "", body, "1764064800", "nonce-0002",
                           "custody@bank-a", pk)
    assert m2.split(b"\n")[6] == hashlib.sha256(body).hexdigest().encode()
    assert VECTOR_KEY.sign(m2).signature.hex() == (
        "42f08382946c9dc88100a52e19e9db833279fe6fdef8bd7a7bb8703de1ad3c47"
        "fdce2363b465d319a8d8c83ded0fccb2954cfac19218f8e4f407964fbce66000"
    )


def test_canonical_query_sorts_and_reencodes() -> None:
    assert canonical_query("limit=50&asset=BOND-A&cursor=") == "asset=BOND-A&cursor=&limit=50"
    assert canonical_query("b=2&a=x%20y&a=+w") == "a=%20w&a=x%20y&b=2"
    assert canonical_query("account=dave%40bank-a") == "account=dave%40bank-a"
    assert canonical_query("account=dave@bank-a") == "account=dave%40bank-a"
    assert canonical_query("") == ""


def test_replay_cache_is_bounded_and_expires() -> None:
    cache = ReplayCache(2)
    assert cache.add(b"a", 10.0, 0.0) == 0
    assert cache.add(b"a", 10.0, 1.0) == e.AUTH_REPLAYED
    assert cache.add(b"b", 10.0, 1.0) == 0
    assert cache.add(b"c", 10.0, 1.0) == e.AUTH_BUSY
    assert cache.add(b"c", 20.0, 11.0) == 0  # a and b expired
    assert len(cache) == 1


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    return populated_world(str(tmp_path_factory.mktemp("auth") / "db"))


def run(world, body, config: ApiConfig | None = None):  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with ApiHarness(world, config) as h:
            await body(h)

    asyncio.run(main())


BAL = "/v1/accounts/dave@bank-a/balances"


def test_refusals_have_their_codes(world) -> None:  # type: ignore[no-untyped-def]
    async def body(h: ApiHarness) -> None:
        # unsigned
        s, b = await h.get(BAL)
        assert (s, b["code"]) == (401, e.AUTH_REQUIRED)
        # a header missing
        hdrs = signed_headers(DAVE, "GET", BAL)
        del hdrs["X-Ledger-Nonce"]
        s, b = await h.get(BAL, headers=hdrs)
        assert (s, b["code"]) == (401, e.AUTH_MALFORMED)
        # malformed signature hex
        hdrs = signed_headers(DAVE, "GET", BAL)
        hdrs["X-Ledger-Signature"] = "zz" * 64
        s, b = await h.get(BAL, headers=hdrs)
        assert (s, b["code"]) == (401, e.AUTH_MALFORMED)
        # wrong signature: signed for another path
        hdrs = signed_headers(DAVE, "GET", "/v1/accounts/alice@bank-a/balances")
        s, b = await h.get(BAL, headers=hdrs)
        assert (s, b["code"]) == (401, e.AUTH_BAD_SIGNATURE)
        # wrong signature: query not covered
        hdrs = signed_headers(DAVE, "GET", BAL, "asset=BOND-A")
        s, b = await h.get(BAL, headers=hdrs, query="asset=CASH-T")
        assert (s, b["code"]) == (401, e.AUTH_BAD_SIGNATURE)
        # key that is not the account's
        hdrs = signed_headers(DAVE, "GET", BAL, key=SigningKey(b"\x07" * 32))
        s, b = await h.get(BAL, headers=hdrs)
        assert (s, b["code"]) == (401, e.AUTH_UNKNOWN_KEY)
        # unknown account
        hdrs = signed_headers("ghost@bank-a", "GET", BAL)
        s, b = await h.get(BAL, headers=hdrs)
        assert (s, b["code"]) == (401, e.AUTH_UNKNOWN_KEY)
        # stale: outside the window either way
        for skew in (-3600, 3600):
            hdrs = signed_headers(DAVE, "GET", BAL, timestamp=int(time.time()) + skew)
            s, b = await h.get(BAL, headers=hdrs)
            assert (s, b["code"]) == (401, e.AUTH_STALE)
        # replayed: the same signed request twice
        hdrs = signed_headers(DAVE, "GET", BAL)
        s, b = await h.get(BAL, headers=hdrs)
        assert s == 200
        s, b = await h.get(BAL, headers=hdrs)
        assert (s, b["code"]) == (401, e.AUTH_REPLAYED)
        # another chain's signature
        hdrs = signed_headers(DAVE, "GET", BAL, chain_id="other-chain")
        s, b = await h.get(BAL, headers=hdrs)
        assert (s, b["code"]) == (401, e.AUTH_BAD_SIGNATURE)
        # a request signed for another node of the chain is not valid here, even once
        hdrs = signed_headers(DAVE, "GET", BAL, node_id="node-3")
        s, b = await h.get(BAL, headers=hdrs)
        assert (s, b["code"], b["details"]) == (401, e.AUTH_WRONG_NODE, {"node_id": "node-0"})
        # ... and naming this node in the header of a request signed for another does not verify
        hdrs["X-Ledger-Node"] = "node-0"
        s, b = await h.get(BAL, headers=hdrs)
        assert (s, b["code"]) == (401, e.AUTH_BAD_SIGNATURE)
        # a request signed without naming a node (the first version of the string) is malformed
        hdrs = signed_headers(DAVE, "GET", BAL)
        del hdrs["X-Ledger-Node"]
        s, b = await h.get(BAL, headers=hdrs)
        assert (s, b["code"]) == (401, e.AUTH_MALFORMED) and "X-Ledger-Node" in b["message"]
        # the path is signed percent-decoded: `@` sent as %40 verifies the same
        hdrs = signed_headers(DAVE, "GET", BAL)
        s, b = await h.get(BAL.replace("@", "%40"), headers=hdrs)
        assert s == 200, b
        # out of visibility
        s, b = await h.get(BAL, signer=OUTSIDER)
        assert (s, b["code"]) == (403, e.NOT_VISIBLE)

    run(world, body)


def test_visibility_rules(world) -> None:  # type: ignore[no-untyped-def]
    async def body(h: ApiHarness) -> None:
        # self, custodian, auditor see everything of DAVE
        for who in (DAVE, CUSTODIAN, AUDITOR):
            s, b = await h.get(BAL, signer=who)
            assert s == 200, (who, b)
            assert [x["asset"] for x in b["balances"]] == ["BOND-A"]
        # the issuer sees its asset's position, not an unrelated account's everything
        s, b = await h.get("/v1/accounts/bob@bank-b/balances", signer=ISSUER)
        assert s == 200 and {x["asset"] for x in b["balances"]} == {"BOND-A", "CASH-T"}
        # history: self yes, outsider no, agent sees entries of its assets
        s, b = await h.get("/v1/accounts/alice@bank-a/history", signer=ALICE)
        assert s == 200 and b["items"]
        s, b = await h.get("/v1/accounts/alice@bank-a/history", signer=OUTSIDER)
        assert (s, b["code"]) == (403, e.NOT_VISIBLE)
        s, b = await h.get("/v1/accounts/alice@bank-a/history", signer=AGENT)
        assert s == 200 and all(
            ev["attrs"].get("asset") in ("BOND-A", "CASH-T") for it in b["items"] for ev in it["events"]
        ) and b["items"]
        # holders: issuer and agent and auditor; not a holder
        for who in (ISSUER, AGENT, AUDITOR):
            s, b = await h.get("/v1/assets/BOND-A/holders", signer=who)
            assert s == 200, who
        s, b = await h.get("/v1/assets/BOND-A/holders", signer=BOB)
        assert (s, b["code"]) == (403, e.NOT_VISIBLE)
        # public reads need nothing
        for path in ("/v1/status", "/v1/assets/BOND-A", "/v1/blocks/1", f"/v1/accounts/{DAVE}"):
            s, _ = await h.get(path)
            assert s == 200, path

    run(world, body)


def test_open_reads_serve_unsigned_but_still_check_signatures(world) -> None:  # type: ignore[no-untyped-def]
    async def body(h: ApiHarness) -> None:
        s, b = await h.get(BAL)
        assert s == 200 and b["balances"][0]["available"] == 100_000
        hdrs = signed_headers(DAVE, "GET", "/v1/elsewhere")
        s, b = await h.get(BAL, headers=hdrs)
        assert (s, b["code"]) == (401, e.AUTH_BAD_SIGNATURE)

    run(world, body, ApiConfig(open_reads=True))


def test_body_is_covered_by_the_signature(tmp_path: Path) -> None:
    w = populated_world(str(tmp_path / "db"))
    from ledger import operations as o
    from ledger.jsonform import to_json
    from node.chain.protocol import OPERATIONS

    op = to_json(OPERATIONS.variant, o.Transfer(DAVE, "BOND-A", (o.TransferLeg(BOB, 5),)))
    req = {"signers": [DAVE], "operations": [op]}

    async def body(h: ApiHarness) -> None:
        s, b = await h.post("/v1/tx/dry-run", req, signer=CUSTODIAN)
        assert s == 200 and b["allowed"] and b["code"] == 0
        s, b = await h.post("/v1/tx/dry-run", req, signer=OUTSIDER)
        assert (s, b["code"]) == (403, e.NOT_VISIBLE)
        s, b = await h.post("/v1/tx/dry-run", req)
        assert (s, b["code"]) == (401, e.AUTH_REQUIRED)
        import json

        data = json.dumps(req).encode()
        hdrs = signed_headers(CUSTODIAN, "POST", "/v1/tx/dry-run", "", data + b" ")
        s, b = await h.post("/v1/tx/dry-run", raw=data, headers=hdrs)
        assert (s, b["code"]) == (401, e.AUTH_BAD_SIGNATURE)

    run(w, body)
