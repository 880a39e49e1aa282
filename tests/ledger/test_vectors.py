"""The transaction test vectors (tests/vectors/transactions.json) are exact, self-consistent and up to date."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from nacl.signing import SigningKey, VerifyKey

from ledger.codec import DecodeError
from ledger.jsonform import body_from_json, body_to_json, kind_name
from ledger.operations import OPERATION_TYPES
from ledger.ops import CORE_OPERATIONS as OPS
from ledger.transaction import TX_DOMAIN, decode_body, decode_transaction, encode_body
from tests.vectors import generate

DATA = json.loads(Path(generate.OUT).read_text())


def test_file_is_what_the_generator_makes() -> None:
    assert generate.render() == Path(generate.OUT).read_text()


def test_every_operation_kind_has_a_vector() -> None:
    kinds = {op["kind"] for v in DATA["vectors"] for op in v["body"]["operations"]}
    assert kinds == {kind_name(cls) for cls in OPERATION_TYPES}


@pytest.mark.parametrize("v", DATA["vectors"], ids=lambda v: v["name"])
def test_vector(v: dict) -> None:
    body = body_from_json(v["body"], operations=OPS)
    body_bytes = encode_body(body, operations=OPS)
    assert body_bytes.hex() == v["body_hex"]
    assert decode_body(body_bytes, operations=OPS) == body
    assert body_to_json(body, operations=OPS) == v["body"]
    assert hashlib.sha256(body_bytes).hexdigest() == v["tx_id"]
    chain = body.chain_id.encode()
    message = TX_DOMAIN + bytes([len(chain)]) + chain + body_bytes
    assert message.hex() == v["signing_message_hex"]
    keys = {(k["account"], k["public_key"]): k["seed"] for k in v["keys"]}
    for s in v["signatures"]:
        seed = keys[(s["account"], s["public_key"])]
        sk = SigningKey(bytes.fromhex(seed))
        assert bytes(sk.verify_key).hex() == s["public_key"]
        assert sk.sign(message).signature.hex() == s["signature"]
        VerifyKey(bytes.fromhex(s["public_key"])).verify(message, bytes.fromhex(s["signature"]))
    tx = decode_transaction(bytes.fromhex(v["signed_tx_hex"]), operations=OPS)
    assert tx.body == body and tx.tx_id.hex() == v["tx_id"]
    assert [sig.signature.hex() for sig in tx.signatures] == [s["signature"] for s in v["signatures"]]


@pytest.mark.parametrize("v", DATA["invalid"], ids=lambda v: v["name"])
def test_invalid_vector(v: dict) -> None:
    data = bytes.fromhex(v["hex"])
    with pytest.raises(DecodeError) as exc:
        if v["decoder"] == "body":
            decode_body(data, operations=OPS)
        else:
            decode_transaction(data, operations=OPS)
    assert exc.value.code == v["code"]
