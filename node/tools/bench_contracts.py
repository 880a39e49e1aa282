"""Benchmark: the cost of the contracts layer per transfer.

    ledger bench contracts [--txs N]            (or: python -m node.tools.bench_contracts [--txs N])

Applies N signed single-leg transfers among 100 verified holders of (a) an asset without rules under the plain
CoreRuleEngine, (b) the same under ContractsEngine (bookkeeping only), and (c) an asset with five built-in rules
(eligibility, countries, max_holders, max_balance, lockup) plus one CEL rule. Signatures are verified once up
front and skipped in the timed loop, so the numbers are the state transition's cost. Every run executes under the
node's operation set (node/chain/protocol.py) with the engine being measured. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from typing import Any

from nacl.signing import SigningKey

from contracts import claims
from contracts.engine import ContractsEngine
from contracts.state import Claim
from ledger import operations as o
from ledger.context import BlockContext
from ledger.genesis import GenesisAccount, GenesisSpec, genesis_changes
from ledger.protocol import Protocol
from ledger.rules import CoreRuleEngine, RuleEngine, RuleState
from ledger.state import MemoryState, Overlay
from ledger.transaction import SignedTransaction, TxBody, sign_transaction
from ledger.transition import apply_transaction
from node.chain.protocol import OPERATIONS, node_protocol

CHAIN = "bench"
T0 = 1_767_225_600
ISSUER, KYC = "issuer@bank", "kyc@bank"
HOLDERS = [f"h{i}@bank" for i in range(100)]

RULES = (
    o.RuleSpec("eligibility", (("providers", KYC),)),
    o.RuleSpec("countries", (("allow", "CN,HK,SG"),)),
    o.RuleSpec("max_holders", (("total", 10_000),)),
    o.RuleSpec("max_balance", (("max", 10**15),)),
    o.RuleSpec("lockup", (("seconds", 86_400),)),
    o.RuleSpec("cel", (("expr", "forced || kind == 'issue' || (amount <= 1000000 && recipient.country != 'US')"),)),
)


def _key(name: str) -> SigningKey:
    return SigningKey(hashlib.sha256(name.encode()).digest())


def _setup(protocol: Protocol, rules: tuple[o.RuleSpec, ...]) -> tuple[Overlay, list[SignedTransaction]]:
    accounts = [GenesisAccount("admin@bank", (bytes(_key("admin@bank").verify_key),), 1, ("admin",))]
    accounts.append(GenesisAccount(ISSUER, (bytes(_key(ISSUER).verify_key),), 1, ("issuer", "agent")))
    accounts.append(GenesisAccount(KYC, (bytes(_key(KYC).verify_key),), 1, ("kyc_provider",)))
    accounts += [GenesisAccount(h, (bytes(_key(h).verify_key),), 1, ()) for h in HOLDERS]
    state = MemoryState()
    state.apply(genesis_changes(GenesisSpec(CHAIN, T0, (("bank", "Bank"),), tuple(accounts))))
    overlay = Overlay(state)
    rs = RuleState(overlay)
    for h in HOLDERS:
        claims.set_claim(rs, h, Claim(KYC, "SG", 1, T0 + 10**8), T0)
    setup_ops: list[Any] = [o.DefineAsset(ISSUER, "BOND", 2, 10**15, "Bond", "", (), (), rules)]
    setup_ops += [o.Issue(ISSUER, "BOND", h, 10**9) for h in HOLDERS]
    block = BlockContext(CHAIN, 1, T0)
    for i in range(0, len(setup_ops), 32):
        body = TxBody(1, CHAIN, (ISSUER,), i, 100, tuple(setup_ops[i : i + 32]))
        tx = sign_transaction(body, [(ISSUER, _key(ISSUER))], operations=OPERATIONS)
        out = apply_transaction(overlay, block, tx, 0, protocol=protocol)
        assert out.receipt.code == 0, out.receipt
    return overlay, []


def _transfers(n: int) -> list[SignedTransaction]:
    txs = []
    for i in range(n):
        src, dst = HOLDERS[i % 100], HOLDERS[(i * 7 + 3) % 100]
        if src == dst:
            dst = HOLDERS[(i + 1) % 100]
        body = TxBody(1, CHAIN, (src,), 1000 + i, 200, (o.Transfer(src, "BOND", (o.TransferLeg(dst, 1 + i % 50),)),))
        txs.append(sign_transaction(body, [(src, _key(src))], operations=OPERATIONS))
    return txs


def _run(engine: RuleEngine, rules: tuple[o.RuleSpec, ...], txs: list[SignedTransaction]) -> float:
    protocol = node_protocol(engine)
    overlay, _ = _setup(protocol, rules)
    block = BlockContext(CHAIN, 2, T0 + 2 * 86_400)
    start = time.perf_counter()
    for i, tx in enumerate(txs):
        out = apply_transaction(overlay, block, tx, i, protocol=protocol, verify_signatures=False)
        assert out.receipt.code == 0, out.receipt
    return (time.perf_counter() - start) / len(txs)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--txs", type=int, default=2000, help="transfers per configuration (default 2000)")


def run(args: argparse.Namespace) -> int:
    if args.txs < 1:
        print("error: need --txs >= 1", file=sys.stderr)
        return 2
    txs = _transfers(args.txs)
    plain = _run(CoreRuleEngine(), (), txs)
    bookkeeping = _run(ContractsEngine(), (), txs)
    builtin = _run(ContractsEngine(), RULES[:5], txs)
    ruled = _run(ContractsEngine(), RULES, txs)
    print(
        json.dumps(
            {
                "txs": args.txs,
                "plain_us_per_transfer": round(plain * 1e6, 1),
                "contracts_no_rules_us_per_transfer": round(bookkeeping * 1e6, 1),
                "five_rules_us_per_transfer": round(builtin * 1e6, 1),
                "five_rules_plus_cel_us_per_transfer": round(ruled * 1e6, 1),
                "ratio_rules_vs_plain": round(ruled / plain, 2),
                "command": f"ledger bench contracts --txs {args.txs}",
            }
        )
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
