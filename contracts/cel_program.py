"""Custom CEL rules, fast path: a checked parse tree compiled once into a tree of Python closures over plain values.

cel-python (the reference evaluator, used by contracts.cel) defines what a rule means. This module only makes the
common case cheap, and it is exact by construction: a compiled program either returns the bool the reference returns
for the same expression and context, or raises Fallback, and the caller then evaluates with the reference.

- Values are plain Python: bool, int (int64), str, list, and dict with str keys. Types are compared with `type(x) is`,
  never isinstance (a bool is not an int in CEL). One quirk of the reference is mirrored: a string or list made by
  `+` is a plain Python str/list there, not its CEL type, and has no `.contains()` method; here it is a JoinedStr /
  JoinedList, which every operation treats as a str / list except `.contains()`, which falls back.
- Each operation accepts only the operand types whose reference semantics it reproduces exactly: int arithmetic with
  int64 overflow and truncating division, string and list concatenation, same-type comparisons, ... Anything else
  (mixed types, an error such as a division by zero, an overflow or a missing key, a condition that is not a bool)
  raises Fallback, so errors are never modelled here: the reference produces them, with its own message.
- Like the reference, `||` and `&&` evaluate both operands and macros visit every element: cel-python does not
  short-circuit, so an exception raised in the side a short circuit would skip must still decide the outcome.
- Constructs outside the subset (uint, bytes and null literals; uint(), bytes(); a macro without exactly two arguments
  or whose variable is not a plain name) make compile_program return None: such a rule always uses the reference.
- Nothing from the expression text is executed. Literals are decoded at compile time by cel-python's own literal
  functions, names are looked up in the activation dict, and every closure is a fixed function chosen by node type.
- No floats, no clock, no hashing-order dependence (dicts iterate in insertion order, as cel-python's MapType does).

The recursion depth of compiling and of running a program is bounded by the parse-tree depth limit
(contracts.cel.MAX_TREE_DEPTH), like the reference's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import lark
from celpy import celtypes
from celpy.evaluation import celstr

__all__ = ["Fallback", "JoinedList", "JoinedStr", "Program", "compile_program"]

I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1

Env = dict[str, Any]
Node = Callable[[Env], Any]
Program = Callable[[Mapping[str, Any]], bool]

_WRAPPERS = frozenset(
    {"expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication", "unary", "member", "primary"}
)
_SCALARS = (bool, int, str)
_FALSE_TEXT = frozenset({"False", "f", "FALSE", "false"})  # celtypes.BoolType's string conversions
_TRUE_TEXT = frozenset({"True", "t", "TRUE", "true"})


class JoinedStr(str):
    """A string made by `+` (cel-python: a plain str, without the CEL string's .contains())."""

    __slots__ = ()


class JoinedList(list[Any]):
    """A list made by `+` (cel-python: a plain list, without the CEL list's .contains())."""

    __slots__ = ()


_TYPES: dict[type, type] = {bool: bool, int: int, str: str, JoinedStr: str, list: list, JoinedList: list, dict: dict}


def _type(value: Any) -> type | None:
    """The CEL type of a fast-path value (None: not a fast-path value)."""
    return _TYPES.get(type(value))


class Fallback(Exception):
    """The fast path cannot decide exactly (an error, or operand types outside its subset): the reference must."""


class _Unsupported(Exception):
    """A construct the fast path does not compile: the whole rule uses the reference."""


def compile_program(ast: lark.Tree, context_names: frozenset[str]) -> Program | None:
    """The fast program for a checked parse tree, or None when the tree uses a construct outside the subset.

    `context_names`: the names an activation provides (other free names are resolved by the reference)."""
    try:
        node = _Compiler(context_names).compile(ast, frozenset())
    except _Unsupported:
        return None

    def program(values: Mapping[str, Any]) -> bool:
        result = node(values)
        if type(result) is not bool:
            raise Fallback
        return result

    return program


# -- values and operations ---------------------------------------------------------------------------------------


def _int64(value: int) -> int:
    if I64_MIN <= value <= I64_MAX:
        return value
    raise Fallback


def _eq(a: Any, b: Any) -> bool:
    """CEL equality where the reference gives a bool for any element order (same types all the way down)."""
    t = _type(a)
    if t is not _type(b):
        raise Fallback
    if t is list:
        return len(a) == len(b) and all(_eq(x, y) for x, y in zip(a, b, strict=True))
    if t is dict:
        return a.keys() == b.keys() and all(_eq(a[k], b[k]) for k in a)
    if t in _SCALARS:
        return a == b
    raise Fallback


def _ordered(a: Any, b: Any) -> None:
    t = _type(a)
    if t is not _type(b) or t not in _SCALARS:
        raise Fallback


def _lt(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return a < b


def _le(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return a <= b


def _gt(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return a > b


def _ge(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return a >= b


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _contains(container: Any, item: Any) -> bool:
    """`item in container` for a list (element equality, in order) or a map (its keys)."""
    t = _type(container)
    if t is list:
        for element in container:
            if _eq(element, item):
                return True
        return False
    if t is dict and _type(item) is str:
        return item in container
    raise Fallback


def _in(item: Any, container: Any) -> bool:
    return _contains(container, item)


def _ints(a: Any, b: Any) -> None:
    if type(a) is not int or type(b) is not int:
        raise Fallback


def _add(a: Any, b: Any) -> Any:
    t = _type(a)
    if t is not _type(b):
        raise Fallback
    if t is int:
        return _int64(a + b)
    if t is str:
        return JoinedStr(a + b)
    if t is list:
        return JoinedList(a + b)
    raise Fallback


def _sub(a: Any, b: Any) -> int:
    _ints(a, b)
    return _int64(a - b)


def _mul(a: Any, b: Any) -> int:
    _ints(a, b)
    return _int64(a * b)


def _div(a: Any, b: Any) -> int:
    """Truncating division, as celtypes.IntType: the sign of the product, the magnitude floor(|a| / |b|)."""
    _ints(a, b)
    if b == 0:
        raise Fallback
    quotient = abs(a) // abs(b)
    return _int64(quotient if (a < 0) == (b < 0) else -quotient)


def _mod(a: Any, b: Any) -> int:
    """Remainder with the sign of the dividend, as celtypes.IntType."""
    _ints(a, b)
    if b == 0:
        raise Fallback
    remainder = abs(a) % abs(b)
    return _int64(-remainder if a < 0 else remainder)


def _size(value: Any) -> int:
    t = _type(value)
    if t is str or t is list or t is dict:
        return len(value)
    raise Fallback


def _to_int(value: Any) -> int:
    t = _type(value)
    if t is int:
        return value
    if t is bool:
        return int(value)
    if t is str:
        try:
            return int(celtypes.IntType(value))  # its parsing rules (hex, signs, ...) exactly
        except (ValueError, TypeError):
            raise Fallback from None
    raise Fallback


def _to_string(value: Any) -> str:
    t = _type(value)
    if t is str:
        return str(value)
    if t is int or t is bool:
        return str(value)  # celtypes' str() of IntType and BoolType: str(int(x)), str(bool(x))
    raise Fallback


def _to_bool(value: Any) -> bool:
    t = _type(value)
    if t is bool:
        return value
    if t is str:
        if value in _TRUE_TEXT:
            return True
        if value in _FALSE_TEXT:
            return False
    elif t is int and value in (0, 1):  # celtypes.BoolType(5) is an int 5, not a bool: left to the reference
        return value == 1
    raise Fallback


def _starts_with(text: Any, prefix: Any) -> bool:
    if _type(text) is not str or _type(prefix) is not str:
        raise Fallback
    return text.startswith(prefix)


def _ends_with(text: Any, suffix: Any) -> bool:
    if _type(text) is not str or _type(suffix) is not str:
        raise Fallback
    return text.endswith(suffix)


def _method_contains(container: Any, item: Any) -> bool:
    t = type(container)
    if t is JoinedStr or t is JoinedList:
        raise Fallback  # no .contains() in the reference: an error
    if t is str:
        if _type(item) is not str:
            raise Fallback
        return item in container
    return _contains(container, item)


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise Fallback
    return value


_RELATIONS: dict[str, Callable[[Any, Any], bool]] = {
    "relation_lt": _lt,
    "relation_le": _le,
    "relation_gt": _gt,
    "relation_ge": _ge,
    "relation_eq": _eq,
    "relation_ne": _ne,
    "relation_in": _in,
}
_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "addition_add": _add,
    "addition_sub": _sub,
    "multiplication_mul": _mul,
    "multiplication_div": _div,
    "multiplication_mod": _mod,
}
_FUNCTIONS: dict[str, Callable[[Any], Any]] = {"size": _size, "int": _to_int, "string": _to_string, "bool": _to_bool}
_METHODS: dict[str, Callable[..., Any]] = {
    "size": _size,
    "contains": _method_contains,
    "startsWith": _starts_with,
    "endsWith": _ends_with,
}
_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})


# -- the compiler: one closure per parse-tree node ---------------------------------------------------------------


def _fails(env: Env) -> Any:
    raise Fallback


def _constant(value: Any) -> Node:
    return lambda env: value


def _unwrap(tree: lark.Tree) -> lark.Tree:
    while tree.data in _WRAPPERS and len(tree.children) == 1 and isinstance(tree.children[0], lark.Tree):
        tree = tree.children[0]
    return tree


def _literal(token: lark.Token) -> Node:
    try:
        if token.type == "INT_LIT":
            return _constant(int(celtypes.IntType(token.value)))
        if token.type in ("STRING_LIT", "MLSTRING_LIT"):
            return _constant(str(celstr(token)))
    except ValueError:
        return _fails  # the reference's value is an error (an int literal beyond int64, a bad escape)
    if token.type == "BOOL_LIT":
        return _constant(token.value == "true")
    raise _Unsupported(token.type)  # uint, bytes, null (double literals are refused by the checks)


def _call(function: Callable[..., Any], args: tuple[Node, ...], arity: int) -> Node:
    if len(args) != arity:
        return _fails  # the reference's answer is an error
    if arity == 1:
        (first,) = args
        return lambda env: function(first(env))
    first, second = args
    return lambda env: function(first(env), second(env))


def _member_dot(obj: Node, name: str) -> Node:
    def field(env: Env) -> Any:
        value = obj(env)
        if type(value) is not dict or name not in value:
            raise Fallback
        return value[name]

    return field


def _member_index(obj: Node, index: Node) -> Node:
    def item(env: Env) -> Any:
        container, key = obj(env), index(env)
        t = _type(container)
        if t is list and type(key) is int and -len(container) <= key < len(container):
            return container[key]
        if t is dict and _type(key) is str and key in container:
            return container[key]
        raise Fallback

    return item


def _conditional(cond: Node, then: Node, other: Node) -> Node:
    """c ? a : b; only the chosen branch is evaluated, as in the reference."""
    return lambda env: then(env) if _bool(cond(env)) else other(env)


def _either(left: Node, right: Node) -> Node:
    def either(env: Env) -> bool:
        a, b = _bool(left(env)), _bool(right(env))
        return a or b

    return either


def _both(left: Node, right: Node) -> Node:
    def both(env: Env) -> bool:
        a, b = _bool(left(env)), _bool(right(env))
        return a and b

    return both


def _binary(op: Callable[[Any, Any], Any], left: Node, right: Node) -> Node:
    return lambda env: op(left(env), right(env))


def _not(operand: Node) -> Node:
    return lambda env: not _bool(operand(env))


def _negate(operand: Node) -> Node:
    def negate(env: Env) -> int:
        value = operand(env)
        if type(value) is not int:
            raise Fallback
        return _int64(-value)

    return negate


def _list(items: tuple[Node, ...]) -> Node:
    return lambda env: [item(env) for item in items]


def _map(parts: tuple[Node, ...]) -> Node:
    def build(env: Env) -> dict[str, Any]:
        values = [part(env) for part in parts]  # every key and value, in order, as the reference does
        result: dict[str, Any] = {}
        for key, value in zip(values[0::2], values[1::2], strict=True):
            if _type(key) is not str or key in result:  # other key types, duplicates: left to the reference
                raise Fallback
            result[key] = value
        return result

    return build


def _has_field(obj: Node, name: str) -> Node:
    """has(e.f): whether e is a map with key f (for any other e the reference's e.f is an error: false)."""

    def has_field(env: Env) -> bool:
        value = obj(env)
        return type(value) is dict and name in value

    return has_field


def _evaluates(node: Node) -> Node:
    """has(x) of anything but a field: whether x evaluates without an error (reference semantics)."""

    def evaluates(env: Env) -> bool:
        node(env)
        return True

    return evaluates


def _macro(name: str, target: Node, var: str, body: Node) -> Node:
    def results(env: Env) -> tuple[list[Any], list[Any]]:
        domain = target(env)
        t = _type(domain)
        if t is dict:
            elements = list(domain)  # a map iterates its keys
        elif t is list:
            elements = domain
        else:
            raise Fallback
        inner = dict(env)
        out = []
        for element in elements:  # every element, as the reference does
            inner[var] = element
            out.append(body(inner))
        return elements, out

    if name == "map":
        return lambda env: results(env)[1]
    if name == "filter":

        def keep(env: Env) -> list[Any]:
            elements, out = results(env)
            return [e for e, ok in zip(elements, out, strict=True) if _bool(ok)]

        return keep

    def verdict(env: Env) -> bool:
        flags = [_bool(ok) for ok in results(env)[1]]
        if name == "all":
            return all(flags)
        if name == "exists":
            return any(flags)
        return flags.count(True) == 1  # exists_one

    return verdict


class _Compiler:
    __slots__ = ("context_names",)

    def __init__(self, context_names: frozenset[str]) -> None:
        self.context_names = context_names

    def compile(self, tree: lark.Tree, bound: frozenset[str]) -> Node:
        """`bound`: macro variables in scope (they shadow context names, as cel-python's nested activations do)."""
        tree = _unwrap(tree)
        kind, children = tree.data, tree.children
        if kind == "paren_expr":
            return self.compile(children[0], bound)
        if kind == "expr":
            return _conditional(*(self.compile(c, bound) for c in children))
        if kind == "conditionalor":
            return _either(self.compile(children[0], bound), self.compile(children[1], bound))
        if kind == "conditionaland":
            return _both(self.compile(children[0], bound), self.compile(children[1], bound))
        if kind in ("relation", "addition", "multiplication"):
            op_tree, right = children
            op = _RELATIONS.get(op_tree.data) or _ARITHMETIC.get(op_tree.data)
            if op is None:
                raise _Unsupported(op_tree.data)
            return _binary(op, self.compile(op_tree.children[0], bound), self.compile(right, bound))
        if kind == "unary":
            op_name, operand = children[0].data, self.compile(children[1], bound)
            if op_name == "unary_not":
                return _not(operand)
            if op_name == "unary_neg":
                return _negate(operand)
            raise _Unsupported(op_name)
        if kind == "literal":
            return _literal(children[0])
        if kind == "ident":
            return self.ident(str(children[0]), bound)
        if kind == "list_lit":
            return _list(self.arguments(tree, 0, bound))
        if kind == "map_lit":
            return _map(self.arguments(tree, 0, bound))
        if kind == "member_dot":
            return _member_dot(self.compile(children[0], bound), str(children[1]))
        if kind == "member_index":
            return _member_index(self.compile(children[0], bound), self.compile(children[1], bound))
        if kind == "member_dot_arg":
            return self.member_call(tree, bound)
        if kind == "ident_arg":
            return self.function(tree, bound)
        raise _Unsupported(kind)  # dot_ident, member_object, ... (refused by the checks anyway)

    def ident(self, name: str, bound: frozenset[str]) -> Node:
        if name not in bound and name not in self.context_names:
            return _fails  # a macro variable used outside its macro: the reference resolves it (to an error)
        return lambda env: env[name]

    def arguments(self, tree: lark.Tree, position: int, bound: frozenset[str]) -> tuple[Node, ...]:
        """The compiled expressions of the list child at `position` (exprlist, mapinits), () when it is absent."""
        if len(tree.children) <= position:
            return ()
        return tuple(self.compile(c, bound) for c in tree.children[position].children)

    def function(self, tree: lark.Tree, bound: frozenset[str]) -> Node:
        name = str(tree.children[0])
        if name == "has":
            return self.has(tree, bound)
        function = _FUNCTIONS.get(name)
        if function is None:
            raise _Unsupported(name)  # uint(), bytes()
        return _call(function, self.arguments(tree, 1, bound), 1)

    def has(self, tree: lark.Tree, bound: frozenset[str]) -> Node:
        if len(tree.children) != 2 or len(tree.children[1].children) != 1:
            return _fails
        arg = _unwrap(tree.children[1].children[0])
        if arg.data == "member_dot":
            return _has_field(self.compile(arg.children[0], bound), str(arg.children[1]))
        return _evaluates(self.compile(arg, bound))

    def member_call(self, tree: lark.Tree, bound: frozenset[str]) -> Node:
        target, name = tree.children[0], str(tree.children[1])
        if name in _MACROS:
            return self.macro(tree, name, bound)
        method = _METHODS.get(name)
        if method is None:
            raise _Unsupported(name)
        arity = 1 if name == "size" else 2
        return _call(method, (self.compile(target, bound), *self.arguments(tree, 2, bound)), arity)

    def macro(self, tree: lark.Tree, name: str, bound: frozenset[str]) -> Node:
        if len(tree.children) != 3 or len(tree.children[2].children) != 2:
            raise _Unsupported(name)
        var_tree, body_tree = tree.children[2].children
        var = _unwrap(var_tree)
        if var.data != "ident":
            raise _Unsupported(name)
        var_name = str(var.children[0])
        return _macro(
            name, self.compile(tree.children[0], bound), var_name, self.compile(body_tree, bound | {var_name})
        )
