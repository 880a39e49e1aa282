"""Generate tests/vectors/client.json: the vectors of docs/protocol.md section 11 ("Building a client").

    python -m tests.vectors.client          # rewrite the file
    python -m tests.vectors.client --check  # exit 1 if the file differs from what this script makes

What a client in another language must reproduce beyond the transaction vectors (tests/vectors/transactions.json):
  integers      the smallest msgpack form of every integer, and a transaction whose amount (2^53 + 1) a float-writing
                or always-9-byte encoder gets wrong, with those wrong bytes (every decoder refuses them);
  bls           a secret key, its public key, its proof of possession (the BLS_POP_ ciphersuite over the 48-byte public
                key) and a signature (the BLS_SIG_ ciphersuite);
  genesis       a genesis document, its hash and the consensus chain id (the hash's 32 raw bytes), used in a vote
                message;
  epoch_change  the digest of a next validator set (epoch e + 1) and the epoch commitment that binds it.
Everything is deterministic (fixed keys; BLS and Ed25519 signatures are deterministic). tests/node/chain/
test_client_vectors.py recomputes each value with the node's code.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
from pathlib import Path
from typing import Any

from consensus import bls
from consensus.messages import epoch_commitment, vote_message
from consensus.validators import ValidatorSet
from ledger import codes
from ledger import operations as o
from ledger.codec import UInt, encode
from ledger.jsonform import body_to_json
from ledger.ops import CORE_OPERATIONS
from ledger.transaction import TxBody, encode_body
from node.chain.genesis import GENESIS_FORMAT, canonical_json, genesis_hash

OUT = Path(__file__).with_name("client.json")
BIG = 2**53 + 1  # the first integer a float64 cannot hold: JSON-in-JavaScript and float-writing encoders lose it
INTEGERS = (0, 1, 127, 128, 255, 256, 65_535, 65_536, 2**32 - 1, 2**32, 2**53, BIG, 2**63, 2**64 - 1)


def bls_secret(label: str) -> bytes:
    """A valid BLS secret key derived from a label (IETF KeyGen over SHA-256(label))."""
    return bls.keygen(hashlib.sha256(f"client-vector/{label}".encode()).digest())


def integers() -> dict[str, Any]:
    canonical = [{"value": str(v), "hex": encode(UInt(64), v).hex()} for v in INTEGERS]
    issue = o.Issue("treasury@bank-a", "BOND-A", "client-7@bank-b", BIG)
    body = TxBody(1, "consortium-main", ("treasury@bank-a",), 7, 1000, (issue,))
    body_bytes = encode_body(body, operations=CORE_OPERATIONS)
    good_amount = encode(UInt(64), BIG)
    as_float = b"\xcb" + struct.pack(">d", float(BIG))  # what a float-writing encoder emits: 2^53, as a float64
    as_uint64 = b"\xcf" + (300).to_bytes(8, "big")  # an always-9-byte encoder's 300 (canonical: cd 01 2c)
    assert body_bytes.count(good_amount) == 1
    return {
        "rule": "every integer in its smallest msgpack form (docs/protocol.md section 1, rule 1)",
        "canonical": canonical,
        "transaction": {
            "body": body_to_json(body, operations=CORE_OPERATIONS),
            "body_hex": body_bytes.hex(),
            "tx_id": hashlib.sha256(body_bytes).hexdigest(),
            "amount_hex": good_amount.hex(),
        },
        "refused": [
            {
                "name": "amount written as a float64 (a float-writing encoder; the value also becomes 2^53)",
                "body_hex": body_bytes.replace(good_amount, as_float).hex(),
                "code": codes.FLOAT_FORBIDDEN,
            },
            {
                "name": "300 written as uint64 (an always-9-byte encoder)",
                "value_hex": as_uint64.hex(),
                "code": codes.NON_CANONICAL,
            },
        ],
    }


def bls_vectors() -> dict[str, Any]:
    backend = bls.get_backend()
    sk = bls_secret("validator-0")
    pk = backend.public_key(sk)
    message = b"LEDGER client vector"
    return {
        "signature_ciphersuite": bls.SIGNATURE_CIPHERSUITE.decode(),
        "pop_ciphersuite": bls.POP_CIPHERSUITE.decode(),
        "secret_key": sk.hex(),
        "public_key": pk.hex(),
        "pop": backend.pop_prove(sk).hex(),
        "message_hex": message.hex(),
        "signature": backend.sign(sk, message).hex(),
    }


def genesis_document() -> dict[str, Any]:
    """A small genesis in the form `ledger init genesis` writes (two validators; a non-ASCII member name, which the
    canonical JSON keeps as UTF-8)."""
    backend = bls.get_backend()
    validators = []
    for i in range(2):
        sk = bls_secret(f"validator-{i}")
        identity = hashlib.sha256(f"client-vector/identity-{i}".encode()).hexdigest()
        validators.append(
            {
                "id": f"node-{i}",
                "member": f"m{i}",
                "identity_key": identity,
                "bls_key": backend.public_key(sk).hex(),
                "bls_pop": backend.pop_prove(sk).hex(),
                "address": f"127.0.0.1:{7100 + i}",
                "power": 1,
            }
        )
    admin = hashlib.sha256(b"client-vector/admin").hexdigest()
    return {
        "format": GENESIS_FORMAT,
        "chain_id": "client-vectors",
        "genesis_time": 1_800_000_000,
        "members": [{"id": "m0", "name": "Bänk Zero"}, {"id": "m1", "name": "Bank One"}],
        "validators": validators,
        "accounts": [{"id": "admin@m0", "keys": [admin], "threshold": 1, "roles": ["admin", "issuer", "auditor"]}],
    }


def genesis_vectors() -> dict[str, Any]:
    doc = genesis_document()
    digest = genesis_hash(doc)
    chain = digest  # the consensus chain id is the genesis hash's 32 raw bytes
    vote = vote_message(chain, 0, 1, bytes([0x11]) * 32, bytes([0x22]) * 32)
    return {
        "document": doc,
        "canonical_json_hex": canonical_json(doc).hex(),
        "genesis_hash": digest.hex(),
        "consensus_chain_id_hex": chain.hex(),
        "vote": {"epoch": 0, "round": 1, "block_id": "11" * 32, "state_root": "22" * 32, "message_hex": vote.hex()},
    }


def epoch_change_vectors() -> dict[str, Any]:
    backend = bls.get_backend()
    ending_epoch = 3
    members = []
    for i, power in ((0, 1), (2, 3)):
        sk = bls_secret(f"validator-{i}")
        members.append((f"node-{i}".encode(), backend.public_key(sk), backend.pop_prove(sk), power))
    next_set = ValidatorSet(ending_epoch + 1, members, backend=backend)
    block_id, state_root = bytes([0x33]) * 32, bytes([0x44]) * 32
    return {
        "ending_epoch": ending_epoch,
        "next_set_epoch": ending_epoch + 1,
        "next_set": [
            {"id": vid.decode(), "bls_key": pk.hex(), "bls_pop": pop.hex(), "power": power}
            for vid, pk, pop, power in members
        ],
        "next_set_digest": next_set.digest.hex(),
        "block_id": block_id.hex(),
        "state_root": state_root.hex(),
        "epoch_commitment": epoch_commitment(block_id, state_root, next_set.digest).hex(),
    }


def build() -> dict[str, Any]:
    return {
        "about": "docs/protocol.md section 11; generated by python -m tests.vectors.client",
        "integers": integers(),
        "bls": bls_vectors(),
        "genesis": genesis_vectors(),
        "epoch_change": epoch_change_vectors(),
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs from the generated one")
    args = parser.parse_args()
    text = render()
    if args.check:
        return 0 if OUT.exists() and OUT.read_text() == text else 1
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
