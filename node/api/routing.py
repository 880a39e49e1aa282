"""The single route table: every endpoint is a `Route` (method, path, parameters, body and response schemas,
access, error codes, handler). The aiohttp router and the OpenAPI document are both built from it, so the code and
the document cannot drift; parameters are parsed and checked here, before any handler runs."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from node.api import errors as e
from node.api.errors import ApiError

__all__ = ["PUBLIC", "SIGNED", "Param", "Route", "parse_params"]

PUBLIC = "public"
SIGNED = "signed"  # private data: a signed request (or open reads) and visibility

Schema = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    where: str  # "path" or "query"
    schema: Schema  # integer (minimum/maximum), string (pattern/maxLength/enum) or boolean
    description: str
    required: bool = False

    def __post_init__(self) -> None:
        assert self.where in ("path", "query")
        assert self.where == "query" or self.required, "path parameters are required"
        assert self.schema.get("type") in ("integer", "string", "boolean"), self.schema


Handler = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str  # OpenAPI / aiohttp form: /v1/accounts/{account_id}
    operation_id: str
    summary: str
    tag: str
    handler: Handler | None
    access: str = PUBLIC
    params: tuple[Param, ...] = ()
    body: Schema | None = None  # JSON request body schema
    body_types: tuple[str, ...] = ("application/json",)
    response: Schema = field(default_factory=dict)
    response_type: str = "application/json"
    errors: tuple[int, ...] = ()
    description: str = ""
    extra_status: Mapping[int, str] = field(default_factory=dict)  # other success statuses (e.g. 202)

    def __post_init__(self) -> None:
        names = set(re.findall(r"{(\w+)}", self.path))
        declared = {p.name for p in self.params if p.where == "path"}
        assert names == declared, f"{self.path}: path parameters {names} vs declared {declared}"
        assert self.access in (PUBLIC, SIGNED)
        for code in self.errors:
            assert code in e.HTTP_STATUS or code < 1000, f"{self.operation_id}: unknown error code {code}"


def _bad(param: Param, why: str) -> ApiError:
    return ApiError(e.BAD_REQUEST, f"parameter {param.name!r}: {why}", {"parameter": param.name})


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _check(param: Param, raw: str) -> Any:
    s = param.schema
    kind = s["type"]
    if kind == "integer":
        if not re.fullmatch(r"0|-?[1-9][0-9]{0,19}", raw):
            raise _bad(param, "expected a decimal integer")
        value = int(raw)
        if "minimum" in s and value < s["minimum"]:
            raise _bad(param, f"must be >= {s['minimum']}")
        if "maximum" in s and value > s["maximum"]:
            raise _bad(param, f"must be <= {s['maximum']}")
        return value
    if kind == "boolean":
        if raw not in ("true", "false"):
            raise _bad(param, "expected true or false")
        return raw == "true"
    if "maxLength" in s and len(raw) > s["maxLength"]:
        raise _bad(param, f"longer than {s['maxLength']} characters")
    if "minLength" in s and len(raw) < s["minLength"]:
        raise _bad(param, f"shorter than {s['minLength']} characters")
    if "enum" in s and raw not in s["enum"]:
        raise _bad(param, f"must be one of {', '.join(s['enum'])}")
    pattern = s.get("pattern")
    if pattern is not None:
        compiled = _PATTERNS.get(pattern)
        if compiled is None:
            compiled = _PATTERNS[pattern] = re.compile(pattern, re.ASCII)
        if compiled.search(raw) is None:
            raise _bad(param, "does not match its pattern")
    return raw


def parse_params(route: Route, request: web.Request) -> dict[str, Any]:
    """The route's declared parameters, checked and converted; unknown query parameters are refused."""
    out: dict[str, Any] = {}
    query = request.query
    declared_query = {p.name for p in route.params if p.where == "query"}
    for name in query:
        if name not in declared_query:
            raise ApiError(e.BAD_REQUEST, f"unknown query parameter {name!r}", {"parameter": name})
    for p in route.params:
        if p.where == "path":
            raw = request.match_info.get(p.name)
        else:
            values = query.getall(p.name, [])
            if len(values) > 1:
                raise _bad(p, "given more than once")
            raw = values[0] if values else None
        if raw is None:
            if p.required:
                raise _bad(p, "required")
            out[p.name] = p.schema.get("default")
            continue
        out[p.name] = _check(p, raw)
    return out
