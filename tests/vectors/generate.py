"""Generate tests/vectors/transactions.json: canonical transaction vectors for clients in any language.

    .venv/bin/python -m tests.vectors.generate          # rewrite the file
    .venv/bin/python -m tests.vectors.generate --check  # exit 1 if the file differs from what this script makes

Every vector: the signers' Ed25519 seeds and public keys, the body in its JSON form, the canonical body bytes, the tx
id, the signing message, the signatures and the signed transaction bytes. Ed25519 signatures are deterministic, so
the output is stable. "invalid" vectors are byte strings every decoder must refuse, with the expected code.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import msgpack
from nacl.signing import SigningKey

from ledger import codes
from ledger import operations as o
from ledger.jsonform import body_to_json
from ledger.ops import CORE_OPERATIONS
from ledger.transaction import TX_DOMAIN, TxBody, encode_body, sign_transaction

OUT = Path(__file__).with_name("transactions.json")
CHAIN = "consortium-main"
A, B, C = "treasury@bank-a", "client-7@bank-b", "ops@bank-c"
H32 = bytes(range(32))


def seed(account: str, index: int = 0) -> bytes:
    return hashlib.sha256(f"vector/{account}/{index}".encode()).digest()


def key(account: str, index: int = 0) -> SigningKey:
    return SigningKey(seed(account, index))


def pk(account: str, index: int = 0) -> bytes:
    return bytes(key(account, index).verify_key)


ONE_OP: list[tuple[str, object]] = [
    ("register_member", o.RegisterMember(A, "bank-d", "Bank D Ltd.")),
    ("register_account", o.RegisterAccount(A, "fund-1@bank-a", tuple(sorted((pk("f", 0), pk("f", 1)))), 2, None)),
    ("rotate_keys", o.RotateKeys(A, (pk(A, 1),), 1)),
    ("grant_role", o.GrantRole(A, B, "custodian")),
    ("revoke_role", o.RevokeRole(A, B, "custodian")),
    ("set_custodian", o.SetCustodian(A, A, C)),
    (
        "define_asset",
        o.DefineAsset(
            A,
            "BOND-A",
            2,
            100_000_000,
            "Bank A 3.5% 2030",
            "CNE1000001Z5",
            (o.Document("prospectus", H32),),
            (C,),
            (
                o.RuleSpec("country_allow", (("countries", "CN,HK,SG"),)),
                o.RuleSpec("lockup", (("days", 180), ("tag", b"\x01\x02"))),
            ),
        ),
    ),
    ("set_asset_rules", o.SetAssetRules(A, "BOND-A", (o.RuleSpec("max_holders", (("limit", 200),)),))),
    ("set_asset_agents", o.SetAssetAgents(A, "BOND-A", (B, C))),
    ("issue", o.Issue(A, "BOND-A", B, 25_000_00)),
    ("transfer", o.Transfer(A, "CASH-T", (o.TransferLeg(B, 1), o.TransferLeg(C, 18_446_744_073_709_551_615)))),
    ("redeem", o.Redeem(A, "BOND-A", 500)),
    ("create_hold", o.CreateHold(A, "hold-2026-001", "BOND-A", A, B, C, 1_000, 1_800_000_000)),
    ("execute_hold", o.ExecuteHold(A, "hold-2026-001")),
    ("release_hold", o.ReleaseHold(A, "hold-2026-001")),
    ("expire_hold", o.ExpireHold(A, "hold-2026-001")),
    ("freeze_account", o.FreezeAccount(A, B, "court order 2026/17")),
    ("unfreeze_account", o.UnfreezeAccount(A, B, "order lifted")),
    ("freeze_amount", o.FreezeAmount(A, "BOND-A", B, 30_000, "court order 2026/17")),
    ("unfreeze_amount", o.UnfreezeAmount(A, "BOND-A", B, 30_000, "order lifted")),
    ("pause_asset", o.PauseAsset(A, "BOND-A", "coupon record date")),
    ("unpause_asset", o.UnpauseAsset(A, "BOND-A", "")),
    ("forced_transfer", o.ForcedTransfer(A, "BOND-A", B, C, 30_000, True, "court order 2026/17: to escrow")),
    ("recover_keys", o.RecoverKeys(A, B, (pk(B, 9),), 1, "lost device, ticket 88")),
    ("migrate_account", o.MigrateAccount(A, B, "client-7b@bank-b", "lost keys, ticket 89")),
    (
        "settle",
        o.Settle(A, "dvp-42", 1_000, (o.SettlementLeg("BOND-A", A, B, 100), o.SettlementLeg("CASH-T", B, A, 99_50))),
    ),
]


def blob(label: str, size: int) -> bytes:
    """Deterministic bytes for key fields (the vectors check encoding only; execution checks the BLS proofs)."""
    out = b""
    while len(out) < size:
        out += hashlib.sha256(f"vector/{label}/{len(out)}".encode()).digest()
    return out[:size]


GOVERNANCE_OPS: list[tuple[str, object]] = [
    (
        "propose",
        o.Propose(
            A,
            "join-bank-e",
            (
                o.AddMember("bank-e", "Bank E Ltd.", True),
                o.AddValidator("node-4", "bank-e", blob("id4", 32), blob("bls4", 48), blob("pop4", 96),
                               "10.0.0.5:7100", 1),
                o.RemoveValidator("node-0"),
                o.RotateValidatorKeys("node-1", blob("id1b", 32), blob("bls1b", 48), blob("pop1b", 96)),
                o.SetValidatorAddress("node-2", "node2.bank-c.example:7100"),
                o.SetRole("gov@bank-e", "governor", True),
                o.SetApprovalThreshold(4),
                o.SetChainParams(2000, 2_000_000, 2000, 6, 10_000, 500),
                o.SetVoter("bank-d", False),
                o.RemoveMember("bank-d"),
            ),
            5_000,
        ),
    ),
    ("approve", o.Approve(A, "join-bank-e")),
    ("cancel_proposal", o.CancelProposal(A, "join-bank-e")),
]


def vector(name: str, body: TxBody, signing: list[tuple[str, int]]) -> dict[str, Any]:
    tx = sign_transaction(body, [(acct, key(acct, i)) for acct, i in signing], operations=CORE_OPERATIONS)
    assert encode_body(body, operations=CORE_OPERATIONS) == tx.body_bytes
    return {
        "name": name,
        "keys": [
            {"account": acct, "seed": seed(acct, i).hex(), "public_key": pk(acct, i).hex()} for acct, i in signing
        ],
        "body": body_to_json(body, operations=CORE_OPERATIONS),
        "body_hex": tx.body_bytes.hex(),
        "tx_id": tx.tx_id.hex(),
        "signing_message_hex": tx.signing_message.hex(),
        "signatures": [
            {"account": s.account, "public_key": s.public_key.hex(), "signature": s.signature.hex()}
            for s in tx.signatures
        ],
        "signed_tx_hex": tx.to_bytes().hex(),
    }


def invalid_vectors(valid_body: bytes, valid_tx: bytes) -> list[dict[str, Any]]:
    body = msgpack.unpackb(valid_body)
    out = []

    def add(name: str, target: str, data: bytes, code: int) -> None:
        out.append(
            {"name": name, "decoder": target, "hex": data.hex(), "code": code, "code_name": codes.REASONS[code].name}
        )

    add("trailing byte", "signed_tx", valid_tx + b"\x00", codes.TRAILING_BYTES)
    add("truncated", "signed_tx", valid_tx[:-1], codes.MALFORMED)
    # nonce 7 (a positive fixint) written as uint16
    raw = msgpack.packb(body)
    nonce_at = raw.index(b"\x07\xcd")  # nonce 7 followed by expiry 1000 (uint16)
    add("non-minimal integer", "body", raw[:nonce_at] + b"\xcd\x00\x07" + raw[nonce_at + 1 :], codes.NON_CANONICAL)
    add("float amount", "body", msgpack.packb([*body[:5], [[14, A, "CASH-T", [[B, 1.0]]]]]), codes.FLOAT_FORBIDDEN)
    add("unknown operation kind", "body", msgpack.packb([*body[:5], [[99, A]]]), codes.UNKNOWN_VARIANT)
    add("extra field", "body", msgpack.packb([*body, 0]), codes.UNKNOWN_FIELD)
    add(
        "unsorted signers",
        "body",
        msgpack.packb([body[0], body[1], sorted((A, B), reverse=True), *body[3:]]),
        codes.NOT_SORTED,
    )
    add("version 2", "body", msgpack.packb([2, *body[1:]]), codes.UNSUPPORTED_VERSION)
    add("zero amount", "body", msgpack.packb([*body[:5], [[14, A, "CASH-T", [[B, 0]]]]]), codes.INVALID_VALUE)
    add(
        "bad account id", "body", msgpack.packb([body[0], body[1], ["Treasury@Bank-A"], *body[3:]]), codes.INVALID_VALUE
    )
    add("str where bin expected", "signed_tx", msgpack.packb(["x", []]), codes.WRONG_TYPE)
    return out


def build() -> dict[str, Any]:
    vectors = []
    for i, (name, op) in enumerate(ONE_OP):
        body = TxBody(1, CHAIN, (A,), i, 1_000 + i, (op,))
        vectors.append(vector(name, body, [(A, 0)]))
    # two signers (DvP): both must sign
    for i, (name, op) in enumerate(GOVERNANCE_OPS):
        body = TxBody(1, CHAIN, (A,), 500 + i, 2_000 + i, (op,))
        vectors.append(vector(name, body, [(A, 0)]))
    settle = dict(ONE_OP)["settle"]
    vectors.append(
        vector("settle_two_signers", TxBody(1, CHAIN, tuple(sorted((A, B))), 77, 5_000, (settle,)), [(A, 0), (B, 0)])
    )
    # a 2-of-3 multisig account signing with keys 0 and 2, several operations in one body
    multi = TxBody(
        1,
        CHAIN,
        (C,),
        2**64 - 1,
        123_456,
        (o.Issue(C, "CASH-T", A, 1), o.Transfer(C, "CASH-T", (o.TransferLeg(B, 2),)), o.Redeem(C, "CASH-T", 3)),
    )
    vectors.append(vector("multisig_2_of_3_three_ops", multi, [(C, 0), (C, 2)]))
    plain = TxBody(1, CHAIN, (A,), 7, 1_000, (o.Transfer(A, "CASH-T", (o.TransferLeg(B, 5),)),))
    vectors.append(vector("plain_transfer", plain, [(A, 0)]))
    return {
        "description": "Canonical transaction vectors; see docs/protocol.md. Generated by tests/vectors/generate.py.",
        "chain_id": CHAIN,
        "tx_domain_hex": TX_DOMAIN.hex(),
        "vectors": vectors,
        "invalid": invalid_vectors(bytes.fromhex(vectors[-1]["body_hex"]), bytes.fromhex(vectors[-1]["signed_tx_hex"])),
    }


def render() -> str:
    return json.dumps(build(), indent=1, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        same = OUT.exists() and OUT.read_text() == text
        print("up to date" if same else f"{OUT} differs from the generator output")
        return 0 if same else 1
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
