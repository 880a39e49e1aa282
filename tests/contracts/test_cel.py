"""Custom rules in CEL: compile-time checks, integer semantics, evaluation errors deny, the context variables."""

from __future__ import annotations

import pytest

from contracts import cel
from contracts import codes as cc
from contracts.params import RuleConfigError
from ledger import operations as o
from tests.contracts.chain import ISSUER, KYC, T0, A, B, C, Chain, define, spec

X = "TOKEN-X"


@pytest.mark.parametrize(
    ("expr", "code"),
    [
        ("amount > 1.0", cc.CEL_FORBIDDEN),
        ("double(amount) > 1", cc.CEL_FORBIDDEN),
        ('timestamp("2026-01-01T00:00:00Z") > timestamp("2025-01-01T00:00:00Z")', cc.CEL_FORBIDDEN),
        ('duration("1s") == duration("1s")', cc.CEL_FORBIDDEN),
        ("now > 0", cc.CEL_FORBIDDEN),
        ('sender.id.matches("a.*")', cc.CEL_FORBIDDEN),
        ("time.getFullYear() > 2000", cc.CEL_FORBIDDEN),
        ("type(amount) == int", cc.CEL_FORBIDDEN),
        ("google.protobuf.Int64Value{value: 1} == 1", cc.CEL_FORBIDDEN),
        (".amount > 1", cc.CEL_FORBIDDEN),
        ("secret > 1", cc.CEL_FORBIDDEN),
        ("amount >", cc.CEL_SYNTAX),
        ("1 + " * 400 + "1 > 0", cc.CEL_TOO_LARGE),
        ("[" * 200 + "]" * 200, cc.CEL_TOO_LARGE),
        ("(" * 30 + "amount" + ")" * 30 + " > 0", cc.CEL_TOO_LARGE),
    ],
)
def test_refused_at_compile_time(expr: str, code: int) -> None:
    with pytest.raises(RuleConfigError) as info:
        cel.compile_expression(expr)
    assert info.value.code == code


def test_compile_once_and_cache() -> None:
    expr = "amount <= 12345 && recipient.country in ['CN', 'HK']"
    assert cel.compile_expression(expr) is cel.compile_expression(expr)


def test_deepest_allowed_expression_evaluates() -> None:
    compiled = cel.compile_expression("(" * 20 + "amount" + ")" * 20 + " > 0")
    assert cel.evaluate(compiled.runner, {"amount": cel.to_cel(5)}) == (True, "")


def test_macros_and_int_arithmetic_allowed() -> None:
    cel.compile_expression("asset.agents.exists(a, a == actor) || amount / 3 * 3 == amount")
    cel.compile_expression("[1, 2, 3].all(x, x > 0) && size(sender.id) > 0 && has(sender.country)")


def test_to_cel_refuses_floats_and_out_of_range_ints() -> None:
    with pytest.raises(ValueError):
        cel.to_cel(1.5)
    with pytest.raises(ValueError):
        cel.to_cel(1 << 63)
    assert cel.to_cel({"a": [1, "x", True]})


def chain_with_cel(expr: str) -> Chain:
    chain = Chain()
    chain.ok(define(X, (spec("eligibility", providers=KYC), spec("cel", expr=expr))))
    chain.verify(A, "CN", T0 + 10**8, level=3)
    chain.verify(B, "HK", T0 + 10**8, level=1)
    chain.verify(C, "SG", T0 + 10**8, level=1)
    return chain


def test_cel_rule_allows_and_denies() -> None:
    expr = (
        "kind == 'issue' || "
        "(recipient.country != 'SG' && (amount <= 1000 || recipient.level >= 3) && sender.balance - amount >= 10)"
    )
    chain = chain_with_cel(expr)
    chain.ok(o.Issue(ISSUER, X, A, 5000))
    chain.ok(o.Issue(ISSUER, X, B, 5000))
    assert chain.run(o.Transfer(A, X, (o.TransferLeg(C, 1),))).code == cc.CEL_DENIED
    assert chain.run(o.Transfer(A, X, (o.TransferLeg(B, 1001),))).code == cc.CEL_DENIED
    chain.ok(o.Transfer(A, X, (o.TransferLeg(B, 1000),)))
    chain.ok(o.Transfer(B, X, (o.TransferLeg(A, 2000),)))  # A has level 3
    assert chain.run(o.Transfer(A, X, (o.TransferLeg(B, 5991),))).code == cc.CEL_DENIED  # would keep < 10


def test_evaluation_errors_deny() -> None:
    chain = chain_with_cel("kind == 'issue' || amount / (sender.balance - amount) >= 0")
    chain.ok(o.Issue(ISSUER, X, A, 100))
    r = chain.run(o.Transfer(A, X, (o.TransferLeg(B, 100),)))  # division by zero
    assert r.code == cc.CEL_EVAL_ERROR
    overflow = chain_with_cel("kind == 'issue' || amount * 9223372036854775807 > 0")
    overflow.ok(o.Issue(ISSUER, X, A, 100))
    assert overflow.run(o.Transfer(A, X, (o.TransferLeg(B, 2),))).code == cc.CEL_EVAL_ERROR
    not_bool = chain_with_cel("amount")
    assert not_bool.run(o.Issue(ISSUER, X, A, 100)).code == cc.CEL_EVAL_ERROR
    missing = chain_with_cel("sender.nosuchfield == 1")
    assert missing.run(o.Issue(ISSUER, X, A, 100)).code == cc.CEL_EVAL_ERROR


def test_context_variables_documented() -> None:
    """Every context variable and field is named in docs/contracts.md."""
    from pathlib import Path

    doc = Path(__file__).resolve().parents[2].joinpath("docs", "contracts.md").read_text()
    for name in cel.CONTEXT_NAMES:
        assert f"`{name}`" in doc, name
    for field in ("balance", "available", "held", "frozen", "account_frozen", "verified", "country", "level"):
        assert f"`{field}`" in doc, field


def _literal_rule(size: int) -> str:
    """A valid expression of exactly `size` UTF-8 bytes."""
    return "'" + "a" * (size - 8) + "' != ''"


def test_an_expression_over_the_parameter_limit_is_refused_at_decoding_with_limit_exceeded() -> None:
    """docs/contracts.md: every rule parameter is bounded by the wire format (MAX_PARAM_BYTES), so a CEL expression
    longer than 1024 bytes never reaches the CEL checks: the transaction carrying it does not decode (5
    LIMIT_EXCEEDED, with the parameter's path), like any over-long field; CEL_TOO_LARGE is for expressions that fit
    in a parameter but have too many nodes, too deep a tree or too high a cost."""
    import msgpack

    from contracts import OPERATIONS
    from ledger import codes
    from ledger.codec import CodecError
    from ledger.schema import MAX_PARAM_BYTES
    from ledger.transaction import decode_transaction

    assert cel.MAX_EXPR_BYTES == MAX_PARAM_BYTES == 1024
    chain = Chain()
    fits = _literal_rule(MAX_PARAM_BYTES)
    assert len(fits.encode()) == MAX_PARAM_BYTES
    chain.ok(define(X, [spec("cel", expr=fits)]))  # the largest expression a transaction can carry is attached

    too_long = _literal_rule(MAX_PARAM_BYTES + 1)
    with pytest.raises(CodecError) as built:  # the encoder (SDK, /v1/tx/encode) refuses to build it
        chain.tx(define("TOKEN-Y", [spec("cel", expr=too_long)]))
    assert built.value.code == codes.LIMIT_EXCEEDED
    # Bytes built by hand (the same transaction with the longer expression) do not decode either.
    envelope = msgpack.unpackb(chain.tx(define("TOKEN-Y", [spec("cel", expr=fits)])).to_bytes())
    old, new = msgpack.packb(fits), msgpack.packb(too_long)
    body = [i for i, part in enumerate(envelope) if isinstance(part, bytes) and old in part]
    assert len(body) == 1
    envelope[body[0]] = envelope[body[0]].replace(old, new)
    with pytest.raises(CodecError) as decoded:
        decode_transaction(msgpack.packb(envelope), operations=OPERATIONS)
    assert decoded.value.code == codes.LIMIT_EXCEEDED and "params" in decoded.value.path
