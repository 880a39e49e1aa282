"""The OpenAPI 3.1 document and the /docs page, both generated from the route table (node.api.routes).

`python -m node.api > docs/openapi.json` regenerates the checked-in copy; a test asserts they agree."""

from __future__ import annotations

import html
import json
import sys
from collections.abc import Iterable
from typing import Any

from ledger import codes
from node.api import errors as e
from node.api.routing import SIGNED, Route
from node.api.schemas import COMPONENTS

__all__ = ["API_VERSION", "build_openapi", "docs_html", "main"]

API_VERSION = "1.0.0"

_SIGNED_NOTE = (
    "Private data: needs a request signed with an account key for this node (headers X-Ledger-Node, "
    "X-Ledger-Account, X-Ledger-Key, X-Ledger-Timestamp, X-Ledger-Nonce, X-Ledger-Signature; docs/api.md section 1), "
    "unless the node opens all reads."
)


def _error_response(codes_: Iterable[int]) -> dict[str, dict[str, Any]]:
    by_status: dict[int, list[int]] = {}
    for c in codes_:
        by_status.setdefault(e.status_for(c), []).append(c)
    out: dict[str, dict[str, Any]] = {}
    for status, cs in sorted(by_status.items()):
        names = ", ".join(f"{c} {codes.describe(c).name}" for c in sorted(set(cs)))  # type: ignore[union-attr]
        out[str(status)] = {
            "description": names,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return out


def _operation(route: Route) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
    }
    description = route.description
    if route.access == SIGNED:
        description = (description + "\n\n" if description else "") + _SIGNED_NOTE
        op["security"] = [{"ledgerSignature": []}, {}]
    if description:
        op["description"] = description
    if route.params:
        op["parameters"] = [
            {"name": p.name, "in": p.where, "required": p.required, "description": p.description, "schema": p.schema}
            for p in route.params
        ]
    if route.body is not None:
        content: dict[str, Any] = {}
        for t in route.body_types:
            if t == "application/json":
                content[t] = {"schema": route.body}
            else:
                content[t] = {"schema": {"type": "string", "contentMediaType": t}}
        op["requestBody"] = {"required": True, "content": content}
    ok: dict[str, Any] = {"description": "success", "content": {route.response_type: {"schema": route.response}}}
    responses: dict[str, Any] = {"200": ok}
    for status, text in route.extra_status.items():
        responses[str(status)] = {"description": text}
        if status == 202:
            responses["202"]["content"] = {route.response_type: {"schema": route.response}}
    common = [e.RATE_LIMITED, e.REQUEST_TIMEOUT, e.INTERNAL_ERROR, e.BAD_REQUEST]
    if route.body is not None:
        common += [e.BODY_TOO_LARGE, e.INVALID_JSON, e.UNSUPPORTED_MEDIA_TYPE]
    responses.update(_error_response([*route.errors, *common]))
    op["responses"] = responses
    return op


def build_openapi(routes: Iterable[Route]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for route in routes:
        assert route.operation_id not in seen, f"duplicate operationId {route.operation_id}"
        seen.add(route.operation_id)
        item = paths.setdefault(route.path, {})
        method = route.method.lower()
        assert method not in item, f"duplicate route {route.method} {route.path}"
        item[method] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Consortium asset ledger node API",
            "version": API_VERSION,
            "description": "Submit, encode and dry-run transactions; read state with proofs; custody statements; "
                           "event streams. Errors are {code, name, message, details}; codes are the shared "
                           "reason-code table (GET /v1/codes). See docs/api.md.",
        },
        "paths": paths,
        "components": {
            "schemas": COMPONENTS,
            "securitySchemes": {
                "ledgerSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Ledger-Signature",
                    "description": _SIGNED_NOTE,
                }
            },
        },
    }


_CSS = (
    "body{font-family:sans-serif;max-width:70em;margin:auto;padding:1em}"
    "code,pre{background:#f4f4f4}pre{padding:.5em;overflow:auto;max-height:30em}"
    "h3{border-top:1px solid #ccc;padding-top:.5em}.m{font-weight:bold;color:#06c}"
)


def docs_html(spec: dict[str, Any]) -> str:
    """A self-contained page (no scripts, no CDN) listing every endpoint with its parameters and schemas."""
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>",
        esc(spec["info"]["title"]),
        "</title><style>" + _CSS + "</style></head><body>",
        f"<h1>{esc(spec['info']['title'])} <small>{esc(spec['info']['version'])}</small></h1>",
        f"<p>{esc(spec['info']['description'])}</p>",
        "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a></p><h2>Endpoints</h2><ul>",
    ]
    for path, item in spec["paths"].items():
        for method, op in item.items():
            parts.append(f"<li><a href='#{esc(op['operationId'])}'><span class='m'>{method.upper()}</span> "
                         f"{esc(path)}</a> — {esc(op['summary'])}</li>")
    parts.append("</ul>")
    for path, item in spec["paths"].items():
        for method, op in item.items():
            parts.append(f"<h3 id='{esc(op['operationId'])}'><span class='m'>{method.upper()}</span> "
                         f"<code>{esc(path)}</code></h3><p>{esc(op['summary'])}</p>")
            if "description" in op:
                parts.append(f"<p>{esc(op['description'])}</p>")
            for p in op.get("parameters", []):
                req = " (required)" if p["required"] else ""
                parts.append(f"<div><code>{esc(p['name'])}</code> in {p['in']}{req}: {esc(p['description'])}"
                             f" <code>{esc(json.dumps(p['schema']))}</code></div>")
            if "requestBody" in op:
                for ctype, c in op["requestBody"]["content"].items():
                    parts.append(f"<div>Body <code>{esc(ctype)}</code>: <code>{esc(json.dumps(c['schema']))}"
                                 "</code></div>")
            for status, r in op["responses"].items():
                parts.append(f"<div>{esc(status)}: {esc(r['description'])}</div>")
    parts.append("<h2>Schemas</h2>")
    for name, schema in spec["components"]["schemas"].items():
        parts.append(f"<h3 id='schema-{esc(name)}'>{esc(name)}</h3><pre>{esc(json.dumps(schema, indent=1))}</pre>")
    parts.append("</body></html>")
    return "".join(parts)


def main() -> int:
    from node.api.routes import ALL_ROUTES

    sys.stdout.write(json.dumps(build_openapi(ALL_ROUTES), indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
