"""The OpenAPI document: it is what the code serves, it is well formed, and a property-based run of generated
requests against every endpoint finds no 5xx and no response that contradicts the document."""

from __future__ import annotations

import asyncio
import json
import re
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import operations as o
from ledger.jsonform import body_to_json
from ledger.state_keys import account_key, balance_key, hold_key
from node.api import ApiConfig, ApiLimits
from node.api.openapi import build_openapi
from node.api.routes import ALL_ROUTES
from node.chain.protocol import OPERATIONS
from tests.node.api.api_world import (
    ALICE,
    AUDITOR,
    BOB,
    CUSTODIAN,
    DAVE,
    ISSUER,
    OUTSIDER,
    ApiHarness,
    new_tx,
    populated_world,
    signed_headers,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"
SPEC = build_openapi(ALL_ROUTES)


def test_checked_in_document_matches_the_code() -> None:
    on_disk = json.loads(DOC.read_text())
    assert on_disk == json.loads(json.dumps(SPEC)), "regenerate: python -m node.api > docs/openapi.json"


# -- a JSON Schema (2020-12 subset) validator for the keywords the document uses ------------------------------------

KEYWORDS = {"type", "properties", "required", "additionalProperties", "items", "enum", "const", "pattern",
            "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems", "anyOf", "oneOf", "$ref",
            "maxProperties", "default", "contentMediaType", "contentSchema"}


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/components/schemas/"), ref
        schema = SPEC["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


def _type_ok(v: Any, t: str) -> bool:
    return {
        "object": isinstance(v, dict),
        "array": isinstance(v, list),
        "string": isinstance(v, str),
        "integer": type(v) is int,
        "boolean": type(v) is bool,
        "null": v is None,
    }[t]


def errors(schema: dict[str, Any], v: Any, path: str = "$") -> Iterator[str]:
    s = resolve(schema)
    if "type" in s:
        types = s["type"] if isinstance(s["type"], list) else [s["type"]]
        if not any(_type_ok(v, t) for t in types):
            yield f"{path}: {v!r:.60} is not {types}"
            return
    if "const" in s and v != s["const"]:
        yield f"{path}: != const {s['const']!r}"
    if "enum" in s and v not in s["enum"]:
        yield f"{path}: {v!r} not in enum"
    if isinstance(v, str):
        if "pattern" in s and re.search(s["pattern"], v) is None:
            yield f"{path}: {v!r:.60} does not match {s['pattern']}"
        if len(v) > s.get("maxLength", len(v)) or len(v) < s.get("minLength", 0):
            yield f"{path}: length {len(v)}"
    if type(v) is int and not s.get("minimum", v) <= v <= s.get("maximum", v):
        yield f"{path}: {v} out of range"
    if isinstance(v, list):
        if not s.get("minItems", 0) <= len(v) <= s.get("maxItems", len(v)):
            yield f"{path}: {len(v)} items"
        if "items" in s:
            for i, x in enumerate(v):
                yield from errors(s["items"], x, f"{path}[{i}]")
    if isinstance(v, dict):
        props = s.get("properties", {})
        for name in s.get("required", []):
            if name not in v:
                yield f"{path}: missing {name}"
        extra = s.get("additionalProperties", True)
        for k, x in v.items():
            if k in props:
                yield from errors(props[k], x, f"{path}.{k}")
            elif extra is False:
                yield f"{path}: unexpected {k}"
            elif isinstance(extra, dict):
                yield from errors(extra, x, f"{path}.{k}")
    if "anyOf" in s and not any(not list(errors(alt, v, path)) for alt in s["anyOf"]):
        yield f"{path}: matches none of anyOf"
    if "oneOf" in s and sum(1 for alt in s["oneOf"] if not list(errors(alt, v, path))) != 1:
        yield f"{path}: does not match exactly one of oneOf"


def walk_schemas(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if any(k in node for k in ("type", "$ref", "anyOf", "oneOf", "const", "enum")):
            yield node
        for k, v in node.items():
            if k == "properties":  # names, not schemas (a property may be called "type")
                for prop in v.values():
                    yield from walk_schemas(prop)
            else:
                yield from walk_schemas(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk_schemas(v)


def test_document_is_well_formed() -> None:
    assert SPEC["openapi"] == "3.1.0" and SPEC["info"]["title"] and SPEC["info"]["version"]
    op_ids = set()
    for path, item in SPEC["paths"].items():
        assert path.startswith("/")
        for method, op in item.items():
            assert method in {"get", "post"}
            assert op["operationId"] not in op_ids
            op_ids.add(op["operationId"])
            assert "200" in op["responses"] and all(re.fullmatch(r"[1-5]\d\d", c) for c in op["responses"])
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), path
            for p in op.get("parameters", []):
                assert p["in"] in ("path", "query") and (p["in"] == "query" or p["required"])
    assert len(op_ids) == len(ALL_ROUTES)
    for schema in walk_schemas([SPEC["paths"], SPEC["components"]["schemas"]]):
        if "$ref" in schema:
            resolve(schema)  # every reference resolves
        if "pattern" in schema:
            re.compile(schema["pattern"])
        t = schema.get("type")
        for x in t if isinstance(t, list) else [t] if t else []:
            assert x in {"object", "array", "string", "integer", "boolean", "null"}, x
    for name, comp in SPEC["components"]["schemas"].items():
        unknown = {k for k in resolve(comp) if k not in KEYWORDS}
        assert not unknown, (name, unknown)


# -- property-based run ----------------------------------------------------------------------------------------------

# An event stream never ends by itself (tests/node/api/test_api_schemathesis.py reads streams against a live node).
FUZZ_ROUTES = [r for r in ALL_ROUTES if r.response_type != "text/event-stream"]
ACCOUNTS = [ALICE, BOB, DAVE, CUSTODIAN, ISSUER, AUDITOR, OUTSIDER, "nobody@bank-a"]
KEYS = [account_key(ALICE).hex(), balance_key("BOND-A", DAVE).hex(), hold_key("hold-1").hex(), "43", "50" + "61" * 3]
texty = st.text(alphabet=string.printable + "é@%/", max_size=24)


def value_for(name: str, schema: dict[str, Any], pool: dict[str, list[Any]]) -> st.SearchStrategy[str]:
    options: list[st.SearchStrategy[str]] = [texty]
    if schema["type"] == "integer":
        options += [st.integers(-5, 40).map(str), st.integers(0, 2**70).map(str)]
    elif schema["type"] == "boolean":
        options.append(st.sampled_from(["true", "false"]))
    if "enum" in schema:
        options.append(st.sampled_from(schema["enum"]))
    if name in pool:
        options.append(st.sampled_from(pool[name]))
    return st.one_of(*options)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**65), 2**65) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def requests(draw: st.DrawFn, pool: dict[str, list[Any]]) -> tuple[Any, ...]:
    route = draw(st.sampled_from(FUZZ_ROUTES))
    path = route.path
    query: dict[str, str] = {}
    for p in route.params:
        if p.where == "path":
            path = path.replace("{" + p.name + "}", quote(draw(value_for(p.name, p.schema, pool)), safe="@"))
        elif draw(st.booleans()):
            query[p.name] = draw(value_for(p.name, p.schema, pool))
    if draw(st.integers(0, 9)) == 0:
        query[draw(st.sampled_from(["x", "limit", "height"]))] = draw(texty)
    body = None
    if route.method == "POST":
        body = draw(st.one_of(json_values.map(lambda v: json.dumps(v).encode()),
                              st.sampled_from(pool["bodies"]), st.binary(max_size=40)))
    signer = draw(st.sampled_from([None, *ACCOUNTS[:7]]))
    return route, path, query, body, signer


class Fuzz:
    def __init__(self, tmp: Path) -> None:
        self.world = populated_world(str(tmp / "db"))
        w = self.world
        w.ok(DAVE, o.CreateHold(DAVE, "hold-1", "BOND-A", DAVE, BOB, CUSTODIAN, 1_000, 1_900_000_000))
        t = new_tx(w, ALICE, o.Transfer(ALICE, "BOND-A", (o.TransferLeg(BOB, 1),)))
        sigs = [{"account": x.account, "public_key": x.public_key.hex(), "signature": x.signature.hex()}
                for x in t.signatures]
        bodies = [
            json.dumps({"tx": t.to_bytes().hex()}).encode(),
            json.dumps({"body": body_to_json(t.body, operations=OPERATIONS), "signatures": sigs}).encode(),
            json.dumps({"body": body_to_json(t.body, operations=OPERATIONS)}).encode(),
            json.dumps({"txs": [t.to_bytes().hex()]}).encode(),
            json.dumps({"signers": [DAVE], "operations": [{"kind": "transfer"}]}).encode(),
        ]
        self.pool: dict[str, list[Any]] = {
            "account_id": ACCOUNTS, "account": ACCOUNTS, "asset_id": ["BOND-A", "CASH-T", "NOPE"],
            "asset": ["BOND-A", "CASH-T"], "hold_id": ["hold-1", "nope"], "tx_id": [t.tx_id.hex(), "00" * 32],
            "height": ["0", "1", "5", "25", "9999"], "from_height": ["0", "20", "999"], "key": KEYS,
            "after": ["", "10:0", ALICE, "zz"], "limit": ["1", "2", "1000"], "timeout": ["1"],
            "bodies": bodies,
        }
        self.loop = asyncio.new_event_loop()
        config = ApiConfig(limits=ApiLimits(rate_per_second=100_000, rate_burst=100_000))

        async def start() -> ApiHarness:
            return await ApiHarness(w, config).__aenter__()

        self.harness = self.loop.run_until_complete(start())

    def close(self) -> None:
        self.loop.run_until_complete(self.harness.__aexit__())
        self.loop.close()

    def send(self, route: Any, path: str, query: dict[str, str], body: bytes | None, signer: str | None
             ) -> tuple[int, str, bytes]:
        async def go() -> tuple[int, str, bytes]:
            raw_query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query.items())
            headers = {"Content-Type": "application/json"} if body is not None else {}
            if signer is not None:
                from urllib.parse import unquote

                headers.update(signed_headers(signer, route.method, unquote(path), raw_query, body or b""))
            url = path + ("?" + raw_query if raw_query else "")
            async with self.harness.client.request(route.method, url, data=body, headers=headers) as r:
                return r.status, r.content_type, await r.read()

        return self.loop.run_until_complete(asyncio.wait_for(go(), 30))


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    f = Fuzz(tmp_path_factory.mktemp("fuzz"))
    yield f
    f.close()


def check_response(route: Any, path: str, status: int, ctype: str, raw: bytes) -> None:
    assert status < 500, (route.operation_id, path, status, raw[:300])
    op = SPEC["paths"][route.path][route.method.lower()]
    documented = op["responses"]
    assert str(status) in documented, (route.operation_id, path, status, raw[:300])
    if status >= 400:
        body = json.loads(raw)
        problems = list(errors({"$ref": "#/components/schemas/Error"}, body))
        assert not problems, (route.operation_id, problems)
        return
    content = documented[str(status)].get("content")
    if content is None:
        return
    assert ctype in content, (route.operation_id, ctype)
    if ctype == "application/json":
        body = json.loads(raw)
        problems = list(errors(content[ctype]["schema"], body))
        assert not problems, (route.operation_id, path, problems[:5])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_generated_requests_get_documented_answers(fuzz: Fuzz, data: st.DataObject) -> None:
    route, path, query, body, signer = data.draw(requests(fuzz.pool))
    status, ctype, raw = fuzz.send(route, path, query, body, signer)
    check_response(route, path, status, ctype, raw)


def test_every_endpoint_answers_a_valid_request_per_the_document(fuzz: Fuzz) -> None:
    """One well-formed request per endpoint: success responses validate against their schemas."""
    h = fuzz.world.store.head().height
    cases = {
        "getAccount": (f"/v1/accounts/{DAVE}", {}, None, None),
        "getBalances": (f"/v1/accounts/{DAVE}/balances", {}, None, CUSTODIAN),
        "getAccountHolds": (f"/v1/accounts/{DAVE}/holds", {}, None, DAVE),
        "getHold": ("/v1/holds/hold-1", {}, None, BOB),
        "getAccountHistory": (f"/v1/accounts/{ALICE}/history", {"limit": "2"}, None, ALICE),
        "getStatement": (f"/v1/accounts/{DAVE}/statement", {"height": str(h - 1)}, None, DAVE),
        "getAsset": ("/v1/assets/BOND-A", {}, None, None),
        "getHolders": ("/v1/assets/BOND-A/holders", {}, None, AUDITOR),
        "listBlocks": ("/v1/blocks", {}, None, None),
        "getBlock": ("/v1/blocks/3", {}, None, None),
        "getProof": ("/v1/proofs", {"key": KEYS[1]}, None, AUDITOR),
        "encodeTransaction": ("/v1/tx/encode", {}, fuzz.pool["bodies"][2], None),
        "dryRun": ("/v1/tx/dry-run", {}, fuzz.pool["bodies"][0], None),
        "getTransaction": (f"/v1/tx/{'00' * 32}", {}, None, None),
    }
    by_id = {r.operation_id: r for r in FUZZ_ROUTES}
    for op_id, (path, query, body, signer) in cases.items():
        route = by_id[op_id]
        status, ctype, raw = fuzz.send(route, path, query, body, signer)
        check_response(route, path, status, ctype, raw)
        assert status == (404 if op_id == "getTransaction" else 200), (op_id, raw[:300])
