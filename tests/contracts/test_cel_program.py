"""The fast CEL path (contracts.cel_program) against the reference evaluator (cel-python).

Differential: on random expressions over the supported subset and random contexts, including mixed types, overflow,
division by zero, missing fields and every other error, the fast program either returns exactly the reference's bool
or falls back; `decide` (fast path, then reference) returns exactly what the reference returns, error text included.
Coverage: the rules of the tests, the docs and the benchmark run on the fast path without falling back."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import cel
from contracts import codes as cc
from contracts.cel_program import Fallback
from contracts.params import RuleConfigError
from ledger import operations as o
from tests.contracts.chain import ISSUER, KYC, T0, A, B, Chain, define, spec

I64_MAX = (1 << 63) - 1
X = "TOKEN-X"

# -- random contexts ---------------------------------------------------------------------------------------------

ints = st.one_of(st.integers(-3, 3), st.sampled_from([0, 1, 100, 10**6, I64_MAX, -I64_MAX - 1, I64_MAX // 2]))
texts = st.sampled_from(["", "a", "SG", "US", "CN", "alice@bank-a", "transfer", "issue", "ab", "true", "0x1f", "12"])


def side(exists: bool, text: str, n: int, flag: bool) -> dict[str, Any]:
    return {
        "id": text if exists else "",
        "exists": exists,
        "balance": n,
        "available": n // 2,
        "held": 0,
        "frozen": n - n // 2,
        "account_frozen": flag,
        "verified": exists,
        "country": text[:2],
        "level": abs(n) % 256,
    }


contexts = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["issue", "transfer", "redeem", "forced_transfer", "hold_create"]),
        "forced": st.booleans(),
        "amount": ints,
        "height": st.integers(0, 10**6),
        "time": st.sampled_from([0, T0, I64_MAX]),
        "actor": texts,
        "asset": st.builds(
            lambda agents, n: {
                "id": X,
                "issuer": ISSUER,
                "decimals": 2,
                "outstanding": n,
                "holders": 3,
                "agents": agents,
            },
            st.lists(texts, max_size=4),
            ints,
        ),
        "sender": st.builds(side, st.booleans(), texts, ints, st.booleans()),
        "recipient": st.builds(side, st.booleans(), texts, ints, st.booleans()),
    }
)

# -- random expressions: mostly well-typed (so the fast path answers), with errors and type mixes mixed in -----

FIELDS = ("id", "exists", "balance", "available", "held", "frozen", "account_frozen", "verified", "country", "level")
INT_REFS = ("amount", "height", "time", "asset.decimals", "asset.outstanding", "asset.holders") + tuple(
    f"{who}.{f}" for who in ("sender", "recipient") for f in ("balance", "available", "held", "frozen", "level")
)
BOOL_REFS = ("forced",) + tuple(
    f"{who}.{f}" for who in ("sender", "recipient") for f in ("exists", "verified", "account_frozen")
)
STR_REFS = (
    "kind",
    "actor",
    "asset.id",
    "asset.issuer",
    "sender.id",
    "recipient.id",
    "sender.country",
    "recipient.country",
)
INT_LITERALS = (
    "0",
    "1",
    "2",
    "-1",
    "3",
    "7",
    "100",
    "1000000",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "0x10",
)
STR_LITERALS = (
    "''",
    "'a'",
    "'SG'",
    "'US'",
    '"alice@bank-a"',
    "'ab'",
    "'issue'",
    "'transfer'",
    "'12'",
    "'\\x41'",
    "r'\\n'",
    "'true'",
    "'t'",
    "'0x1f'",
    "' 7'",
)
MISSING = ("sender.nosuch", "asset.agents", "sender", "{'a': 1}.b", "[1, 2][5]", "amount / 0")
KINDS = ("bool", "int", "str", "ints", "strs", "map")


# The strategies are built once per (kind, depth, scope, macros) and reused: hypothesis validates a strategy object
# the first time it draws from it, and building them afresh at every draw spent most of the test's time there.
@cache
def typed(kind: str, depth: int, scope: tuple[tuple[str, str], ...], macros: bool) -> st.SearchStrategy[str]:
    """An expression of CEL type `kind`; about one in fifteen subexpressions is of another type or fails."""
    return _typed(kind, depth, scope, macros)


@st.composite
def _typed(draw: st.DrawFn, kind: str, depth: int, scope: tuple[tuple[str, str], ...], macros: bool) -> str:
    if draw(st.integers(0, 14)) == 0:
        return (
            draw(st.sampled_from(MISSING))
            if draw(st.booleans())
            else draw(typed(draw(st.sampled_from(KINDS)), max(depth - 1, 0), scope, False))
        )
    if depth <= 0:
        return draw(_leaves(kind, scope))
    return f"({draw(_options(kind, depth, scope, macros))})"


@cache
def _leaves(kind: str, scope: tuple[tuple[str, str], ...]) -> st.SearchStrategy[str]:
    return st.one_of(*_leaf_list(kind, scope))


@cache
def _leaf_list(kind: str, scope: tuple[tuple[str, str], ...]) -> tuple[st.SearchStrategy[str], ...]:
    names = [name for name, k in scope if k == kind]
    leaves = {
        "bool": [st.sampled_from(("true", "false") + BOOL_REFS)],
        "int": [st.sampled_from(INT_LITERALS + INT_REFS)],
        "str": [st.sampled_from(STR_LITERALS + STR_REFS)],
        "ints": [st.sampled_from(("[1, 2, 3]", "[]", "[amount, 0]", "[-1, 9223372036854775807]"))],
        "strs": [st.sampled_from(("asset.agents", "['a', 'SG']", "[]", "[kind, actor]"))],
        "map": [st.sampled_from(("sender", "recipient", "asset", "{'a': 1, 'b': amount}", "{}"))],
    }[kind]
    if names:
        leaves.append(st.sampled_from(names))
    return tuple(leaves)


@cache
def _options(kind: str, depth: int, scope: tuple[tuple[str, str], ...], macros: bool) -> st.SearchStrategy[str]:
    def sub(k: str) -> st.SearchStrategy[str]:
        return typed(k, depth - 1, scope, macros)

    leaves = list(_leaf_list(kind, scope))
    branches: dict[str, list[st.SearchStrategy[str]]] = {
        "bool": [
            st.tuples(sub("int"), st.sampled_from(("==", "!=", "<", "<=", ">", ">=")), sub("int")).map(" ".join),
            st.tuples(sub("str"), st.sampled_from(("==", "!=", "<", ">=")), sub("str")).map(" ".join),
            st.tuples(sub("bool"), st.sampled_from(("==", "!=", "<", "&&", "||")), sub("bool")).map(" ".join),
            st.tuples(sub("ints"), st.sampled_from(("==", "!=")), sub("ints")).map(" ".join),
            st.tuples(sub("map"), st.sampled_from(("==", "!=")), sub("map")).map(" ".join),
            st.tuples(sub("int"), sub("ints")).map(lambda t: f"{t[0]} in {t[1]}"),
            st.tuples(sub("str"), st.sampled_from(("strs", "map")).flatmap(sub)).map(lambda t: f"{t[0]} in {t[1]}"),
            sub("bool").map(lambda x: f"!({x})"),
            st.tuples(sub("str"), st.sampled_from(("startsWith", "endsWith", "contains")), sub("str")).map(
                lambda t: f"{t[0]}.{t[1]}({t[2]})"
            ),
            st.tuples(sub("strs"), sub("str")).map(lambda t: f"{t[0]}.contains({t[1]})"),
            st.tuples(sub("map"), sub("str")).map(lambda t: f"{t[0]}.contains({t[1]})"),
            st.sampled_from(
                (
                    "has(sender.country)",
                    "has(sender.nosuch)",
                    "has(asset.agents)",
                    "has({'a': 1}.a)",
                    "has(amount)",
                    "has(amount / 0)",
                    "bool('f')",
                    "bool('true')",
                    "bool('2')",
                )
            ),
            st.tuples(sub("map"), st.sampled_from(FIELDS + ("a", "nosuch"))).map(lambda t: f"has({t[0]}.{t[1]})"),
        ],
        "int": [
            st.tuples(sub("int"), st.sampled_from(("+", "-", "*", "/", "%")), sub("int")).map(
                lambda t: f"({' '.join(t)})"
            ),
            sub("int").map(lambda x: f"-({x})"),
            st.sampled_from(("str", "ints", "strs", "map")).flatmap(sub).map(lambda x: f"size({x})"),
            sub("strs").map(lambda x: f"{x}.size()"),
            st.sampled_from(("str", "bool", "int")).flatmap(sub).map(lambda x: f"int({x})"),
            st.tuples(sub("ints"), sub("int")).map(lambda t: f"{t[0]}[{t[1]}]"),
            sub("int").map(lambda x: f"{{'a': {x}}}.a"),
        ],
        "str": [
            st.tuples(sub("str"), sub("str")).map(lambda t: f"({t[0]} + {t[1]})"),
            st.sampled_from(("int", "bool")).flatmap(sub).map(lambda x: f"string({x})"),
            st.tuples(sub("strs"), sub("int")).map(lambda t: f"{t[0]}[{t[1]}]"),
            st.tuples(sub("map"), st.sampled_from(("id", "country", "issuer"))).map(lambda t: f"{t[0]}.{t[1]}"),
        ],
        "ints": [
            st.lists(sub("int"), max_size=3).map(lambda xs: f"[{', '.join(xs)}]"),
            st.tuples(sub("ints"), sub("ints")).map(lambda t: f"({t[0]} + {t[1]})"),
        ],
        "strs": [
            st.lists(sub("str"), max_size=3).map(lambda xs: f"[{', '.join(xs)}]"),
            st.tuples(sub("strs"), sub("strs")).map(lambda t: f"({t[0]} + {t[1]})"),
        ],
        "map": [
            st.lists(st.tuples(st.sampled_from(("'a'", "'b'", "'id'")), sub("int")), max_size=3).map(
                lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"
            ),
        ],
    }
    options = leaves + branches[kind]
    options.append(st.tuples(sub("bool"), sub(kind), sub(kind)).map(lambda t: f"({t[0]} ? {t[1]} : {t[2]})"))
    if macros:
        options.append(macro(kind, depth, scope))
    return st.one_of(*options)


@cache
def macro(kind: str, depth: int, scope: tuple[tuple[str, str], ...]) -> st.SearchStrategy[str]:
    return _macro(kind, depth, scope)


@st.composite
def _macro(draw: st.DrawFn, kind: str, depth: int, scope: tuple[tuple[str, str], ...]) -> str:
    """A comprehension over a bounded range (a list literal or a context value); its body holds no macro."""
    source = draw(st.sampled_from(("ints", "strs", "map")))
    rng = draw(
        st.sampled_from(
            {
                "ints": ("[1, 2, 3]", "[0, -1, 7] + [2]", "[]", "[amount, 9223372036854775807]"),
                "strs": ("asset.agents", "['a', 'SG', '']", "(amount > 0 ? ['x'] : asset.agents)"),
                "map": ("sender", "recipient", "asset", "{'a': 1, 'b': 2}"),
            }[source]
        )
    )
    var = draw(st.sampled_from(("x", "amount", "sender")))
    element = "int" if source == "ints" else "str"
    inner = scope + ((var, element),)
    if kind == "bool":
        name = draw(st.sampled_from(("all", "exists", "exists_one")))
        return f"{rng}.{name}({var}, {draw(typed('bool', depth - 1, inner, False))})"
    if kind == ("ints" if element == "int" else "strs") and draw(st.booleans()):
        return f"{rng}.filter({var}, {draw(typed('bool', depth - 1, inner, False))})"
    if kind == "ints":
        return f"{rng}.map({var}, {draw(typed('int', depth - 1, inner, False))})"
    if kind == "strs":
        return f"{rng}.map({var}, {draw(typed('str', depth - 1, inner, False))})"
    return draw(typed(kind, 0, scope, False))


def expressions() -> st.SearchStrategy[str]:
    return st.integers(1, 4).flatmap(lambda depth: typed("bool", depth, (), True))


def reference(compiled: cel.Compiled, values: dict[str, Any]) -> tuple[bool | None, str]:
    return cel.evaluate(compiled.runner, {name: cel.to_cel(values[name]) for name in compiled.names})


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(expressions(), contexts)
def test_fast_path_agrees_with_the_reference(expr: str, context: dict[str, Any]) -> None:
    try:
        compiled = cel.compile_expression(expr)
    except RuleConfigError:
        return  # refused at attach time: never evaluated
    values = {name: cel.plain(context[name]) for name in compiled.names}
    expected = reference(compiled, values)
    if compiled.program is not None:
        try:
            fast = compiled.program(values)
        except Fallback:
            pass
        else:
            assert expected == (fast, ""), expr  # an answer from the fast path is the reference's, never an error
    assert cel.decide(compiled, values) == expected, expr


# -- the fast path is the one that answers for ordinary rules ----------------------------------------------------

RULES = [
    "forced || kind == 'issue' || (amount <= 1000000 && recipient.country != 'US')",
    (
        "kind == 'issue' || (recipient.country != 'SG' && (amount <= 1000 || recipient.level >= 3) && "
        "sender.balance - amount >= 10)"
    ),
    "kind == 'issue' || (recipient.country != 'SG' && (amount <= 100000 || recipient.level >= 3))",
    "forced || kind == 'issue' || recipient.balance + amount != 1234",
    "asset.agents.exists(a, a == actor) || amount / 3 * 3 == amount",
    "[1, 2, 3].all(x, x > 0) && size(sender.id) > 0 && has(sender.country)",
    "amount <= 12345 && recipient.country in ['CN', 'HK']",
    (
        "asset.agents.all(a, a != recipient.id) && sender.exists(k, k == 'country') && "
        "(amount <= 100 || ['alice@bank-b', 'carol@bank-b'].exists_one(s, s == sender.id))"
    ),
    "size(asset) == 6 && size(sender) == 10",
    "recipient.id.endsWith('@bank-b') && !sender.account_frozen && amount % 2 == 0",
    "[amount, sender.balance].filter(v, v > 10).size() <= 2 && {'a': amount}.a == amount",
    "int('12') + amount > 0 && string(amount) != '' && bool('true') && -amount < 1",
]


@pytest.mark.parametrize("expr", RULES)
def test_ordinary_rules_run_on_the_fast_path(expr: str) -> None:
    compiled = cel.compile_expression(expr)
    assert compiled.program is not None
    context = {
        "kind": "transfer",
        "forced": False,
        "amount": 4,
        "height": 9,
        "time": T0,
        "actor": "alice@bank-a",
        "asset": {"id": X, "issuer": ISSUER, "decimals": 2, "outstanding": 10**9, "holders": 3, "agents": [ISSUER]},
        "sender": side(True, "alice@bank-a", 5000, False),
        "recipient": side(True, "bob@bank-b", 10, False),
    }
    values = {name: cel.plain(context[name]) for name in compiled.names}
    fast = compiled.program(values)  # no Fallback
    assert reference(compiled, values) == (fast, "")


@pytest.mark.parametrize(
    ("expr", "values"),
    [
        ("amount * 9223372036854775807 > 0", {"amount": 2}),  # overflow
        ("amount / (amount - 2) > 0", {"amount": 2}),  # division by zero
        ("amount == true", {"amount": 1}),  # mixed types: an error in this order...
        ("true == amount", {"amount": 1}),  # ...and true in this one (cel-python's bool is an int)
        ("sender.nosuch == 1", {"sender": {"id": "a"}}),  # missing field
        ("amount", {"amount": 1}),  # not a bool
        ("kind == 'issue' || amount / 0 > 1", {"kind": "issue", "amount": 1}),  # an error the reference absorbs
    ],
)
def test_errors_and_type_mixes_are_left_to_the_reference(expr: str, values: dict[str, Any]) -> None:
    compiled = cel.compile_expression(expr)
    assert compiled.program is not None
    with pytest.raises(Fallback):
        compiled.program(values)
    assert cel.decide(compiled, values) == reference(compiled, values)


@pytest.mark.parametrize("expr", ["1u == 1u", "b'a' == b'a'", "null == null", "uint(amount) > 0u", "bytes('a') != b''"])
def test_constructs_outside_the_subset_always_use_the_reference(expr: str) -> None:
    compiled = cel.compile_expression(expr)
    assert compiled.program is None
    assert cel.decide(compiled, {"amount": 1}) == reference(compiled, {"amount": 1})


class Broken:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def __call__(self, values: Any) -> bool:
        raise self.exc


def with_program(expr: str, program: Any) -> cel.Compiled:
    compiled = cel.compile_expression(expr)
    return cel.Compiled(compiled.runner, program, compiled.names, compiled.cost)


def test_an_unexpected_failure_of_the_fast_path_falls_back() -> None:
    compiled = with_program("amount > 1", Broken(KeyError("bug")))
    assert cel.decide(compiled, {"amount": 2}) == (True, "")


@pytest.mark.parametrize("exc", [MemoryError(), RecursionError("maximum recursion depth exceeded")])
def test_machine_dependent_failures_of_the_fast_path_propagate(exc: BaseException) -> None:
    with pytest.raises(type(exc)):
        cel.decide(with_program("amount > 1", Broken(exc)), {"amount": 2})


def test_plain_refuses_what_to_cel_refuses() -> None:
    for bad in (1.5, 1 << 63, {1: 2}, object()):
        with pytest.raises(ValueError):
            cel.plain(bad)
    assert cel.plain({"a": (1, "x", True)}) == {"a": [1, "x", True]}


def test_the_ledger_gives_the_reference_codes_and_details_through_the_fast_path() -> None:
    """Through the rule module: an allowed movement, a denial, and an error whose detail is the reference's text."""
    chain = Chain()
    chain.ok(
        define(X, (spec("eligibility", providers=KYC), spec("cel", expr="kind == 'issue' || 10 / (amount - 5) > 0")))
    )
    chain.verify(A, "CN", T0 + 10**8)
    chain.verify(B, "HK", T0 + 10**8)
    chain.ok(o.Issue(ISSUER, X, A, 100))
    chain.ok(o.Transfer(A, X, (o.TransferLeg(B, 6),)))
    assert chain.run(o.Transfer(A, X, (o.TransferLeg(B, 4),))).code == cc.CEL_DENIED
    r = chain.run(o.Transfer(A, X, (o.TransferLeg(B, 5),)))
    assert r.code == cc.CEL_EVAL_ERROR
    compiled = cel.compile_expression("kind == 'issue' || 10 / (amount - 5) > 0")
    _, why = reference(compiled, {"kind": "transfer", "amount": 5})
    assert why and why[:40] in r.detail


def test_the_deepest_and_longest_accepted_expressions_run_on_the_fast_path() -> None:
    deep = cel.compile_expression("(" * 20 + "amount" + ")" * 20 + " > 0")
    assert deep.program is not None and deep.program({"amount": 5}) is True
    terms = 1
    while True:  # the longest `amount + amount + ...` the attach-time limits accept
        try:
            cel.compile_expression(" + ".join(["amount"] * (terms + 1)) + " > 0")
        except RuleConfigError:
            break
        terms += 1
    chain = cel.compile_expression(" + ".join(["amount"] * terms) + " > 0")
    assert chain.program is not None
    assert chain.program({"amount": 1}) is True
    with pytest.raises(Fallback):
        chain.program({"amount": I64_MAX // 2})  # overflow: the reference reports it


class Context:
    cel_activation = None


def test_context_errors_are_reported_in_a_fixed_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """With two out-of-range context values the same one is reported whatever the set's iteration order (a set of
    names iterates in hash order, which differs between processes)."""
    from contracts.modules import cel_rule

    monkeypatch.setattr(cel_rule, "variable", lambda ctx, name: {"amount": 1 << 63, "height": 1 << 64}[name])
    messages = set()
    for names in (("amount", "height"), ("height", "amount")):
        with pytest.raises(ValueError) as info:
            cel_rule.activation(Context(), names)  # type: ignore[arg-type]
        messages.add(str(info.value))
    assert messages == {f"integer {1 << 63} outside the CEL int64 range"}
