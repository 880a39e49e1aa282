"""A small ledger for contracts tests: genesis with named accounts, signed transactions, blocks, supply checks.
It runs under the contracts layer's protocol: its operation set (contracts.OPERATIONS), ContractsEngine and the real
BLS proof-of-possession check."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from nacl.signing import SigningKey

from consensus import bls
from contracts import OPERATIONS
from contracts.engine import ContractsEngine
from contracts.operations import SetClaim
from ledger import operations as o
from ledger.events import Receipt
from ledger.genesis import GenesisAccount, GenesisSpec
from ledger.invariants import audit_state
from ledger.memory import InMemoryLedger
from ledger.protocol import Protocol
from ledger.records import Balance
from ledger.rules import RuleState
from ledger.state import Overlay
from ledger.state_keys import balance_key
from ledger.transaction import SignedTransaction, TxBody, sign_transaction

CHAIN = "test-chain"
DAY = 86_400
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z

ISSUER = "issuer@bank-a"
AGENT = "agent@bank-a"
KYC = "kyc@kyc-co"
ADMIN = "admin@bank-a"
PAYER = "treasury@bank-a"
ESCROW = "escrow@bank-a"
A = "alice@bank-b"
B = "bob@bank-b"
C = "carol@bank-b"
D = "dave@bank-b"


def key_of(account: str) -> SigningKey:
    return SigningKey(hashlib.sha256(b"contracts-test/" + account.encode()).digest())


ROLES: dict[str, tuple[str, ...]] = {
    ADMIN: ("admin",),
    ISSUER: ("issuer", "agent"),
    AGENT: ("agent",),
    KYC: ("kyc_provider",),
    PAYER: (),
    ESCROW: (),
    A: (),
    B: (),
    C: (),
    D: (),
}


def genesis(extra: Iterable[str] = ()) -> GenesisSpec:
    accounts = dict(ROLES)
    for name in extra:
        accounts.setdefault(name, ())
    return GenesisSpec(
        CHAIN,
        T0,
        (("bank-a", "Bank A"), ("bank-b", "Bank B"), ("kyc-co", "KYC Co")),
        tuple(
            GenesisAccount(acct, (bytes(key_of(acct).verify_key),), 1, roles)
            for acct, roles in sorted(accounts.items())
        ),
    )


class Chain:
    """An InMemoryLedger driven by the contracts engine, with helpers to sign and apply transactions."""

    def __init__(self, extra_accounts: Iterable[str] = ()) -> None:
        self.engine = ContractsEngine()
        self.protocol = Protocol(OPERATIONS, self.engine, bls.pop_verify)
        self.ledger = InMemoryLedger(genesis(extra_accounts), self.protocol)
        self.nonce = 0

    @property
    def time(self) -> int:
        return self.ledger.time

    @property
    def height(self) -> int:
        return self.ledger.height

    def tx(self, *ops: Any, signers: Sequence[str] | None = None) -> SignedTransaction:
        """Sign `ops` by their actors (and any extra `signers`)."""
        names = set(signers or ())
        names.update(op.actor for op in ops)
        self.nonce += 1
        body = TxBody(1, CHAIN, tuple(sorted(names)), self.nonce, self.height + 100, tuple(ops))
        return sign_transaction(body, [(n, key_of(n)) for n in sorted(names)], operations=OPERATIONS)

    def block(self, txs: Sequence[SignedTransaction], time: int | None = None) -> tuple[Receipt, ...]:
        outcome = self.ledger.apply(list(txs), time)
        self.audit()
        return outcome.receipts

    def run(self, *ops: Any, time: int | None = None, signers: Sequence[str] | None = None) -> Receipt:
        """Dry-run, then execute `ops` as one transaction in its own block; asserts the dry-run gave the same code."""
        t = self.tx(*ops, signers=signers)
        predicted = self.ledger.dry_run(t, time)
        (receipt,) = self.block([t], time)
        assert (predicted.code, predicted.failed_op, predicted.detail) == (
            receipt.code,
            receipt.failed_op,
            receipt.detail,
        )
        return receipt

    def ok(self, *ops: Any, time: int | None = None, signers: Sequence[str] | None = None) -> Receipt:
        receipt = self.run(*ops, time=time, signers=signers)
        assert receipt.code == 0, receipt
        return receipt

    def balance(self, asset: str, account: str) -> Balance:
        bal = self.ledger.get(balance_key(asset, account))
        return Balance(0, 0, 0) if bal is None else bal

    def rule_state(self) -> RuleState:
        return RuleState(Overlay(self.ledger.state))

    def audit(self) -> dict[str, int]:
        """The supply check: per asset, issued - redeemed == sum of all balances (active + held + frozen)."""
        return audit_state(self.ledger.state.items())

    def set_state(self, changes: dict[bytes, bytes | None]) -> None:
        """Write state directly (test setup only), keeping the state root consistent."""
        led = self.ledger
        led.state.apply(changes)
        update = led.tree.update(changes)
        led.nodes.put_nodes(update.nodes)
        led.root = update.root

    def verify(self, account: str, country: str, expires_at: int, provider: str = KYC, level: int = 1) -> None:
        """The KYC provider records a claim on `account` (a SetClaim transaction in its own block)."""
        self.ok(SetClaim(provider, account, country, level, expires_at))


def spec(name: str, **params: int | str) -> o.RuleSpec:
    return o.RuleSpec(name, tuple(sorted(params.items())))


def define(asset: str, rules: Sequence[o.RuleSpec] = (), cap: int = 10**15, decimals: int = 2) -> o.DefineAsset:
    return o.DefineAsset(ISSUER, asset, decimals, cap, asset.title(), "", (), (AGENT,), tuple(rules))
