"""Custom rules in CEL (cel-python): compile-time checks, a compile cache, and deterministic evaluation.

An expression is checked when it is attached (RuleConfigError otherwise):
- at most MAX_EXPR_BYTES UTF-8 bytes, MAX_AST_NODES parse-tree nodes and MAX_TREE_DEPTH levels (CEL_TOO_LARGE);
- it parses (CEL_SYNTAX);
- integer semantics only and nothing that depends on the machine: no double literals, and only the allowed
  functions and methods (CEL_FORBIDDEN). Excluded: double(), timestamp(), duration() and every timestamp/duration
  accessor (getFullYear, getHours, ... — they consult the host's time-zone database), matches() (regex), dyn(),
  type(), message construction, and leading-dot names. cel-python's base library has no clock or random function;
  its `now` exists only in the c7nlib extension, which is never loaded. Names must be context variables (listed in
  CONTEXT_NAMES, documented in docs/contracts.md) or variables bound by a comprehension macro.
Compiled programs are cached by expression text (bounded). Evaluation gets only int, bool, string and list/map values
(no doubles can enter: the activation builder refuses anything else); CEL int arithmetic is 64-bit signed and
overflow is an error. Any error, or a result that is not a bool, denies the movement with CEL_EVAL_ERROR; false
denies with CEL_DENIED.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import celpy
import lark
from celpy import celtypes

from contracts import codes as cc
from contracts.params import RuleConfigError

__all__ = [
    "CONTEXT_NAMES",
    "MAX_AST_NODES",
    "MAX_EXPR_BYTES",
    "Compiled",
    "compile_expression",
    "evaluate",
    "to_cel",
]

MAX_EXPR_BYTES = 1024
MAX_AST_NODES = 2000
# Parse-tree depth: evaluation recurses about 4 Python frames per level and cel-python raises the recursion limit
# to 2500, so 250 levels keep every allowed expression far from a RecursionError whatever the caller's stack depth
# (which could otherwise make the same expression fail on one node and pass on another).
MAX_TREE_DEPTH = 250
MAX_CACHE = 1024

CONTEXT_NAMES = frozenset({"kind", "forced", "amount", "height", "time", "actor", "asset", "sender", "recipient"})
ALLOWED_FUNCTIONS = frozenset({"has", "size", "int", "uint", "string", "bool", "bytes"})
ALLOWED_METHODS = frozenset(
    {"size", "contains", "startsWith", "endsWith", "all", "exists", "exists_one", "map", "filter"}
)
MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
FORBIDDEN_NODES = frozenset({"dot_ident", "dot_ident_arg", "member_object"})
I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1


def _refuse(*_: Any) -> Any:
    raise ValueError("function not allowed in ledger rules")


# Belt and braces: even if a forbidden name slipped past the checks, evaluation could not reach it.
_OVERRIDES: dict[str, Any] = {
    name: _refuse
    for name in (
        "double",
        "timestamp",
        "duration",
        "matches",
        "type",
        "getDate",
        "getDayOfMonth",
        "getDayOfWeek",
        "getDayOfYear",
        "getFullYear",
        "getMonth",
        "getHours",
        "getMilliseconds",
        "getMinutes",
        "getSeconds",
    )
}

_ENV = celpy.Environment()


@dataclass(frozen=True, slots=True)
class Compiled:
    """A checked, compiled expression and the context variables it reads (only those are built per movement)."""

    runner: celpy.Runner
    names: frozenset[str]


_CACHE: dict[str, Compiled] = {}


def _depth(ast: lark.Tree) -> int:
    best = 0
    stack = [(ast, 1)]
    while stack:
        node, d = stack.pop()
        best = max(best, d)
        stack.extend((c, d + 1) for c in node.children if isinstance(c, lark.Tree))
    return best


def _check_tree(ast: lark.Tree) -> frozenset[str]:
    """Refuse forbidden constructs; return the context variables the expression reads."""
    nodes = 0
    macro_vars: set[str] = set()
    idents: list[str] = []
    for node in ast.iter_subtrees():
        nodes += 1
        data = node.data
        if data in FORBIDDEN_NODES:
            raise RuleConfigError(cc.CEL_FORBIDDEN, f"CEL: {data} is not allowed")
        if data == "literal":
            tok = node.children[0]
            if isinstance(tok, lark.Token) and tok.type == "FLOAT_LIT":
                raise RuleConfigError(cc.CEL_FORBIDDEN, f"CEL: double literal {tok} (integers only)")
        elif data == "ident":
            idents.append(str(node.children[0]))
        elif data == "ident_arg":
            name = str(node.children[0])
            if name not in ALLOWED_FUNCTIONS:
                raise RuleConfigError(cc.CEL_FORBIDDEN, f"CEL: function {name}() is not allowed")
        elif data == "member_dot_arg":
            name = str(node.children[1])
            if name not in ALLOWED_METHODS:
                raise RuleConfigError(cc.CEL_FORBIDDEN, f"CEL: method .{name}() is not allowed")
            if name in MACROS and len(node.children) > 2 and isinstance(node.children[2], lark.Tree):
                first = node.children[2].children[0]
                for sub in first.iter_subtrees():
                    if sub.data == "ident":
                        macro_vars.add(str(sub.children[0]))
    if nodes > MAX_AST_NODES:
        raise RuleConfigError(cc.CEL_TOO_LARGE, f"CEL: {nodes} syntax nodes > {MAX_AST_NODES}")
    depth = _depth(ast)
    if depth > MAX_TREE_DEPTH:
        raise RuleConfigError(cc.CEL_TOO_LARGE, f"CEL: nesting depth {depth} > {MAX_TREE_DEPTH}")
    for name in idents:
        if name not in CONTEXT_NAMES and name not in macro_vars:
            raise RuleConfigError(cc.CEL_FORBIDDEN, f"CEL: unknown name {name}")
    return frozenset(idents) & CONTEXT_NAMES


def compile_expression(text: str) -> Compiled:
    """The compiled program for `text` (cached), or RuleConfigError."""
    compiled = _CACHE.get(text)
    if compiled is not None:
        return compiled
    if len(text.encode("utf-8")) > MAX_EXPR_BYTES:
        raise RuleConfigError(cc.CEL_TOO_LARGE, f"CEL: expression longer than {MAX_EXPR_BYTES} bytes")
    try:
        ast = _ENV.compile(text)
    except (celpy.CELParseError, RecursionError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RuleConfigError(cc.CEL_SYNTAX, f"CEL: {first[:200]}") from None
    names = _check_tree(ast)
    compiled = Compiled(_ENV.program(ast, functions=_OVERRIDES), names)
    if len(_CACHE) >= MAX_CACHE:
        _CACHE.clear()
    _CACHE[text] = compiled
    return compiled


def to_cel(value: Any) -> Any:
    """Convert a plain value (bool, int in int64, str, bytes, list, str-keyed dict) to CEL; anything else is a bug
    or an out-of-range integer (ValueError)."""
    t = type(value)
    if t is bool:
        return celtypes.BoolType(value)
    if t is int:
        if not I64_MIN <= value <= I64_MAX:
            raise ValueError(f"integer {value} outside the CEL int64 range")
        return celtypes.IntType(value)
    if t is str:
        return celtypes.StringType(value)
    if t is bytes:
        return celtypes.BytesType(value)
    if t in (list, tuple):
        return celtypes.ListType([to_cel(v) for v in value])
    if isinstance(value, Mapping):
        return celtypes.MapType({celtypes.StringType(k): to_cel(v) for k, v in value.items()})
    raise ValueError(f"value of type {t.__name__} not allowed in a CEL context")


def evaluate(runner: celpy.Runner, activation: Mapping[str, Any]) -> tuple[bool | None, str]:
    """(True/False, "") or (None, why) when evaluation failed or did not give a bool."""
    try:
        result = runner.evaluate(dict(activation))
    except Exception as exc:  # noqa: BLE001 - by contract any evaluation failure denies (CEL_EVAL_ERROR)
        return None, f"{type(exc).__name__}: {str(exc)[:120]}"
    if isinstance(result, celtypes.BoolType):
        return bool(result), ""
    return None, f"result is {type(result).__name__}, not bool"
