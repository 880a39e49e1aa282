"""tests/vectors/client.json (docs/protocol.md section 11, "Building a client") agrees with the code: the integer
encoding rule, the BLS ciphersuites and proof of possession, the genesis hash, the consensus chain id and the
epoch-change digest, each recomputed here by the node's own functions."""

from __future__ import annotations

import hashlib
import json
import struct

import msgpack
import pytest

from consensus import bls
from consensus.messages import epoch_commitment, vote_message
from consensus.validators import ValidatorSet
from ledger.codec import DecodeError, UInt, decode, encode
from ledger.jsonform import body_from_json
from ledger.ops import CORE_OPERATIONS
from ledger.transaction import decode_body, encode_body
from node.chain.genesis import canonical_json, genesis_hash, parse_genesis
from tests.vectors import client

DATA = json.loads(client.OUT.read_text())


def test_file_is_what_the_generator_makes() -> None:
    assert client.render() == client.OUT.read_text()


def test_integers_take_their_smallest_form() -> None:
    ints = DATA["integers"]
    assert [int(v["value"]) for v in ints["canonical"]][-3:] == [2**53 + 1, 2**63, 2**64 - 1]
    for v in ints["canonical"]:
        value, data = int(v["value"]), bytes.fromhex(v["hex"])
        assert encode(UInt(64), value) == data and decode(UInt(64), data) == value
        # the smallest form is what a stock encoder writes for a Python int ...
        assert msgpack.packb(value) == data
    # ... but not for a number that went through a float: 2^53 + 1 becomes 2^53, written as float64
    assert float(2**53 + 1) == 2**53 and msgpack.packb(float(2**53 + 1)) == b"\xcb" + struct.pack(">d", 2.0**53)
    tx = ints["transaction"]
    body = body_from_json(tx["body"], operations=CORE_OPERATIONS)
    assert body.operations[0].amount == 2**53 + 1  # type: ignore[attr-defined]
    body_bytes = encode_body(body, operations=CORE_OPERATIONS)
    assert body_bytes.hex() == tx["body_hex"] and hashlib.sha256(body_bytes).hexdigest() == tx["tx_id"]
    assert tx["amount_hex"] == "cf0020000000000001" and tx["amount_hex"] in tx["body_hex"]
    float_body, uint64 = ints["refused"]
    with pytest.raises(DecodeError) as exc:
        decode_body(bytes.fromhex(float_body["body_hex"]), operations=CORE_OPERATIONS)
    assert exc.value.code == float_body["code"]
    with pytest.raises(DecodeError) as exc:
        decode(UInt(64), bytes.fromhex(uint64["value_hex"]))
    assert exc.value.code == uint64["code"]


def test_bls_ciphersuite_and_proof_of_possession() -> None:
    v = DATA["bls"]
    assert (
        v["signature_ciphersuite"]
        == "BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"
        == bls.SIGNATURE_CIPHERSUITE.decode()
    )
    assert v["pop_ciphersuite"] == "BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_" == bls.POP_CIPHERSUITE.decode()
    sk, pk, pop, sig = (bytes.fromhex(v[k]) for k in ("secret_key", "public_key", "pop", "signature"))
    message = bytes.fromhex(v["message_hex"])
    backend = bls.get_backend()
    assert backend.public_key(sk) == pk and backend.pop_prove(sk) == pop and backend.sign(sk, message) == sig
    assert backend.pop_verify(pk, pop) and backend.verify(pk, message, sig)
    # the proof is a signature of the 48-byte public key under the POP tag, never under the signature tag
    assert not backend.verify(pk, pk, pop) and pop != backend.sign(sk, pk)
    reference = bls.get_backend("py_ecc")
    assert reference.pop_verify(pk, pop)  # the reference implementation agrees byte for byte


def test_genesis_hash_and_consensus_chain_id() -> None:
    v = DATA["genesis"]
    doc = v["document"]
    assert canonical_json(doc).hex() == v["canonical_json_hex"]
    assert "Bänk".encode() in canonical_json(doc)  # UTF-8 kept, not \\u escapes
    assert hashlib.sha256(b"LEDGER-GENESIS-V1" + canonical_json(doc)).hexdigest() == v["genesis_hash"]
    assert genesis_hash(doc).hex() == v["genesis_hash"]
    genesis = parse_genesis(doc)
    assert genesis.consensus_chain_id == bytes.fromhex(v["consensus_chain_id_hex"]) == genesis_hash(doc)
    assert len(genesis.consensus_chain_id) == 32 and genesis.chain_id == "client-vectors"
    vote = v["vote"]
    message = vote_message(
        genesis.consensus_chain_id,
        vote["epoch"],
        vote["round"],
        bytes.fromhex(vote["block_id"]),
        bytes.fromhex(vote["state_root"]),
    )
    assert message.hex() == vote["message_hex"]
    assert message[len(b"LEDGER-JOLTEON-V1/VOTE") + 1 :][:33] == b"\x20" + genesis.consensus_chain_id


def test_next_set_digest_uses_the_next_epoch() -> None:
    v = DATA["epoch_change"]
    assert v["next_set_epoch"] == v["ending_epoch"] + 1
    members = [
        (m["id"].encode(), bytes.fromhex(m["bls_key"]), bytes.fromhex(m["bls_pop"]), m["power"]) for m in v["next_set"]
    ]
    next_set = ValidatorSet(v["next_set_epoch"], members)
    assert next_set.digest.hex() == v["next_set_digest"]
    h = hashlib.sha256(b"LEDGER-VALIDATOR-SET-V1" + v["next_set_epoch"].to_bytes(8, "big"))
    for vid, pk, _pop, power in members:
        h.update(bytes([len(vid)]) + vid + pk + power.to_bytes(8, "big"))
    assert h.hexdigest() == v["next_set_digest"]
    assert ValidatorSet(v["ending_epoch"], members).digest != next_set.digest  # the ending epoch gives another
    block_id, root = bytes.fromhex(v["block_id"]), bytes.fromhex(v["state_root"])
    assert epoch_commitment(block_id, root, next_set.digest).hex() == v["epoch_commitment"]
    assert (
        hashlib.sha256(b"LEDGER-JOLTEON-V1/EPOCH-END" + block_id + root + next_set.digest).hexdigest()
        == v["epoch_commitment"]
    )


def test_protocol_doc_states_the_vectors() -> None:
    doc = (client.OUT.parents[2] / "docs" / "protocol.md").read_text()
    section = doc[doc.index("## 11. Building a client") :]
    ints = DATA["integers"]
    for text in (
        ints["transaction"]["amount_hex"],
        "cb4340000000000000",
        ints["refused"][1]["value_hex"],
        DATA["bls"]["signature_ciphersuite"],
        DATA["bls"]["pop_ciphersuite"],
        "LEDGER-GENESIS-V1",
        "LEDGER-VALIDATOR-SET-V1",
        "uint64_be(e + 1)",
        "32 raw bytes",
    ):
        assert text in section, text
    for v in ints["canonical"]:
        if v["value"] in ("127", "128", "256", "65536", "4294967296", "9007199254740993"):
            assert f"`{v['hex']}`" in section, v
    # section 1 no longer claims that any msgpack encoder writes the canonical form
    assert "every conforming msgpack encoder" not in doc and "Do not assume your msgpack library" in doc
