"""Custom rules in CEL (cel-python): compile-time checks, a compile cache, and deterministic evaluation.

An expression is checked when it is attached (RuleConfigError otherwise):
- at most MAX_EXPR_BYTES UTF-8 bytes, MAX_AST_NODES parse-tree nodes and MAX_TREE_DEPTH levels (CEL_TOO_LARGE);
  a transaction cannot carry a longer text: the wire format bounds every rule parameter to MAX_PARAM_BYTES (equal),
  so it is refused at decoding with LIMIT_EXCEEDED before it gets here (docs/contracts.md);
- it parses (CEL_SYNTAX);
- integer semantics only and nothing that depends on the machine: no double literals, and only the allowed
  functions and methods (CEL_FORBIDDEN). Excluded: double(), timestamp(), duration() and every timestamp/duration
  accessor (getFullYear, getHours, ... — they consult the host's time-zone database), matches() (regex), dyn(),
  type(), message construction, and leading-dot names. cel-python's base library has no clock or random function;
  its `now` exists only in the c7nlib extension, which is never loaded. Names must be context variables (listed in
  CONTEXT_NAMES, documented in docs/contracts.md) or variables bound by a comprehension macro.
- a static evaluation cost bound (CEL_FORBIDDEN / CEL_TOO_LARGE): comprehension macros do not nest, each macro's
  range has a size known from the syntax (literals, the context values of RANGE_BOUNDS, + and ?: of these), and
  nodes + sum(range size x body nodes) <= MAX_COST. The bound depends on the expression alone, so every node
  accepts or refuses the same rule.
Compiled programs are cached by expression text (bounded). A checked expression is compiled twice: into
cel-python's runner (the reference, which defines the result) and into a fast program of Python closures
(contracts.cel_program) that returns the reference's bool or hands over to the reference (Fallback) whenever it
cannot be sure: on any error and on operand types outside its subset. `decide` runs the fast program and falls back.
Evaluation gets only int, bool, string and list/map values (no doubles can enter: `plain` and `to_cel` refuse anything
else); CEL int arithmetic is 64-bit signed and overflow is an error. Any error, or a result that is not a bool,
denies the movement with CEL_EVAL_ERROR; false denies with CEL_DENIED. MemoryError and RecursionError depend on the
machine, not the expression: they propagate.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import celpy
import lark
from celpy import celtypes

from contracts import codes as cc
from contracts.cel_program import Program, compile_program
from contracts.params import RuleConfigError
from ledger.schema import MAX_AGENTS

__all__ = [
    "CONTEXT_NAMES",
    "MAX_AST_NODES",
    "MAX_COST",
    "MAX_EXPR_BYTES",
    "RANGE_BOUNDS",
    "Compiled",
    "compile_expression",
    "decide",
    "evaluate",
    "plain",
    "to_cel",
]

MAX_EXPR_BYTES = 1024
MAX_AST_NODES = 2000
# Parse-tree depth: evaluation recurses about 4 Python frames per level and cel-python raises the recursion limit
# to 2500, so 250 levels keep every allowed expression far from a RecursionError whatever the caller's stack depth
# (which could otherwise make the same expression fail on one node and pass on another).
MAX_TREE_DEPTH = 250
MAX_CACHE = 1024
# Static evaluation cost bound, in parse-tree node visits: every node once, plus, for each comprehension macro, its
# body's nodes once per element of its range. Equal to MAX_AST_NODES, so no rule costs more than the largest
# macro-free rule (about 20-40 ms in cel-python).
MAX_COST = MAX_AST_NODES

CONTEXT_NAMES = frozenset({"kind", "forced", "amount", "height", "time", "actor", "asset", "sender", "recipient"})
ALLOWED_FUNCTIONS = frozenset({"has", "size", "int", "uint", "string", "bool", "bytes"})
ALLOWED_METHODS = frozenset(
    {"size", "contains", "startsWith", "endsWith", "all", "exists", "exists_one", "map", "filter"}
)
MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
FORBIDDEN_NODES = frozenset({"dot_ident", "dot_ident_arg", "member_object"})
# Context values a macro may iterate, and the most elements each can have: the maps iterate their keys (the fixed
# fields built by contracts.modules.cel_rule), asset.agents is bounded by the ledger (ledger.schema.MAX_AGENTS).
RANGE_BOUNDS: dict[tuple[str, ...], int] = {
    ("sender",): 10,
    ("recipient",): 10,
    ("asset",): 6,
    ("asset", "agents"): MAX_AGENTS,
}
# Single-child wrapper nodes of cel-python's grammar, looked through when classifying a macro range.
_WRAPPERS = frozenset(
    {
        "expr",
        "conditionalor",
        "conditionaland",
        "relation",
        "addition",
        "multiplication",
        "unary",
        "member",
        "primary",
        "paren_expr",
    }
)
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


@functools.cache
def _env() -> celpy.Environment:
    """cel-python's environment, built on the first compile: building its parser takes about a third of a node's
    import time, which a chain without CEL rules never needs."""
    return celpy.Environment()


@dataclass(frozen=True, slots=True)
class Compiled:
    """A checked, compiled expression: the reference runner, the fast program (None when the expression uses a
    construct outside its subset), the context variables it reads (only those are built per movement) and its static
    evaluation cost bound (node visits, at most MAX_COST)."""

    runner: celpy.Runner
    program: Program | None
    names: frozenset[str]
    cost: int


_CACHE: dict[str, Compiled] = {}


def _depth(ast: lark.Tree) -> int:
    best = 0
    stack = [(ast, 1)]
    while stack:
        node, d = stack.pop()
        best = max(best, d)
        stack.extend((c, d + 1) for c in node.children if isinstance(c, lark.Tree))
    return best


def _unwrap(node: lark.Tree) -> lark.Tree:
    while node.data in _WRAPPERS and len(node.children) == 1 and isinstance(node.children[0], lark.Tree):
        node = node.children[0]
    return node


def _context_path(node: lark.Tree) -> tuple[str, ...] | None:
    """`sender`, `asset.agents`, ... as a tuple of names, or None if `node` is not a plain context reference."""
    node = _unwrap(node)
    if node.data == "ident":
        return (str(node.children[0]),)
    if node.data == "member_dot" and isinstance(node.children[0], lark.Tree):
        head = _context_path(node.children[0])
        return None if head is None else (*head, str(node.children[1]))
    return None


def _range_bound(node: lark.Tree) -> int | None:
    """The most elements a macro range can have, from the syntax alone; None when it cannot be bounded statically.

    Bounded: a list or map literal (its element count), a context value of RANGE_BOUNDS, `a + b` (sum) and
    `c ? a : b` (max) of bounded ranges. Anything else (a string, an index, a function result) is unbounded."""
    node = _unwrap(node)
    if node.data == "list_lit":
        return len(node.children[0].children) if node.children else 0
    if node.data == "map_lit":
        return len(node.children[0].children) // 2 if node.children else 0
    if node.data == "expr" and len(node.children) == 3:
        a, b = _range_bound(node.children[1]), _range_bound(node.children[2])
        return None if a is None or b is None else max(a, b)
    if node.data == "addition" and len(node.children) == 2 and node.children[0].data == "addition_add":
        a, b = _range_bound(node.children[0].children[0]), _range_bound(node.children[1])
        return None if a is None or b is None else a + b
    path = _context_path(node)
    return None if path is None else RANGE_BOUNDS.get(path)


def _is_macro(node: lark.Tree) -> bool:
    return node.data == "member_dot_arg" and str(node.children[1]) in MACROS


def _cost(ast: lark.Tree, nodes: int) -> int:
    """Static bound on the node visits of one evaluation: `nodes`, plus range size x body size for every macro.

    Macros may not nest (no macro in another macro's range or body): that keeps the bound a sum of products of
    two syntactic sizes, and keeps the values a macro builds (map results) proportional to that cost."""
    cost = nodes
    for node in ast.iter_subtrees():
        if not _is_macro(node):
            continue
        name = str(node.children[1])
        args = node.children[2] if len(node.children) > 2 and isinstance(node.children[2], lark.Tree) else None
        inner = [node.children[0]] + ([args] if args is not None else [])
        if any(_is_macro(sub) for part in inner for sub in part.iter_subtrees()):
            raise RuleConfigError(
                cc.CEL_FORBIDDEN, f"CEL: .{name}() contains another comprehension macro (macros may not nest)"
            )
        bound = _range_bound(node.children[0])
        if bound is None:
            raise RuleConfigError(
                cc.CEL_FORBIDDEN,
                f"CEL: the range of .{name}() must be a list or map literal, "
                f"{', '.join('.'.join(p) for p in RANGE_BOUNDS)}, or + / ?: of these",
            )
        body = args.children[1:] if args is not None else []
        cost += bound * sum(1 for part in body if isinstance(part, lark.Tree) for _ in part.iter_subtrees())
    return cost


def _check_tree(ast: lark.Tree) -> tuple[frozenset[str], int]:
    """Refuse forbidden constructs and over-budget expressions; return the context variables the expression reads
    and its cost bound."""
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
    cost = _cost(ast, nodes)
    if cost > MAX_COST:
        raise RuleConfigError(
            cc.CEL_TOO_LARGE, f"CEL: evaluation cost bound {cost} > {MAX_COST} (nodes + range size x macro body nodes)"
        )
    return frozenset(idents) & CONTEXT_NAMES, cost


def compile_expression(text: str) -> Compiled:
    """The compiled program for `text` (cached), or RuleConfigError."""
    compiled = _CACHE.get(text)
    if compiled is not None:
        return compiled
    if len(text.encode("utf-8")) > MAX_EXPR_BYTES:
        raise RuleConfigError(cc.CEL_TOO_LARGE, f"CEL: expression longer than {MAX_EXPR_BYTES} bytes")
    try:
        # lark's LALR parser builds the tree without recursion (tested up to the byte limit at a shallow stack), so
        # no RecursionError is expected here; if one happened it would propagate like at evaluation, not refuse.
        ast = _env().compile(text)
    except celpy.CELParseError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RuleConfigError(cc.CEL_SYNTAX, f"CEL: {first[:200]}") from None
    names, cost = _check_tree(ast)
    compiled = Compiled(_env().program(ast, functions=_OVERRIDES), compile_program(ast, CONTEXT_NAMES), names, cost)
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


def plain(value: Any) -> Any:
    """Check a context value as to_cel does (bool, int in int64, str, bytes, list, dict; ValueError with to_cel's
    message for anything else) and return it as the fast program reads it (tuples become lists). Map keys must be
    strings (to_cel would stringify others; the context's maps have none)."""
    t = type(value)
    if t is int:
        if not I64_MIN <= value <= I64_MAX:
            raise ValueError(f"integer {value} outside the CEL int64 range")
        return value
    if t is bool or t is str or t is bytes:
        return value
    if t is list or t is tuple:
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        if not all(type(k) is str for k in value):
            raise ValueError("a CEL context map needs string keys")
        return {k: plain(v) for k, v in value.items()}
    raise ValueError(f"value of type {t.__name__} not allowed in a CEL context")


def decide(compiled: Compiled, values: Mapping[str, Any]) -> tuple[bool | None, str]:
    """Evaluate a compiled expression on plain context values (from `plain`): (True/False, "") or (None, why).

    The fast program answers when it can; otherwise (Fallback, or an unexpected exception, which would be a bug in
    the fast path) the reference evaluator answers, so the result and the error text are the reference's."""
    if compiled.program is not None:
        try:
            return compiled.program(values), ""
        except (MemoryError, RecursionError):
            raise  # the machine's limits, not the expression's: never a verdict (see evaluate)
        except Exception:  # noqa: BLE001, S110 - Fallback by design; anything else (a bug): the reference decides
            pass
    return evaluate(compiled.runner, {name: to_cel(value) for name, value in values.items()})


def evaluate(runner: celpy.Runner, activation: Mapping[str, Any]) -> tuple[bool | None, str]:
    """The reference evaluation: (True/False, "") or (None, why) when evaluation failed or did not give a bool."""
    try:
        result = runner.evaluate(dict(activation))
    except (MemoryError, RecursionError):
        # Not a property of the expression but of this machine (RAM, stack): turning them into a denial could make
        # nodes decide differently. They propagate; the static limits are what keep them from happening.
        raise
    except Exception as exc:  # noqa: BLE001 - by contract any evaluation failure denies (CEL_EVAL_ERROR)
        return None, f"{type(exc).__name__}: {str(exc)[:120]}"
    if isinstance(result, celtypes.BoolType):
        return bool(result), ""
    return None, f"result is {type(result).__name__}, not bool"
