"""A small test world: deterministic keys, a genesis with an admin, and helpers to sign and apply transactions.

Ledger tests run under PROTOCOL: the ledger's own operation set (CORE_OPERATIONS), the core rule engine and the real
BLS proof-of-possession check (tests may import any layer)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from nacl.signing import SigningKey

from consensus import bls
from ledger import operations as o
from ledger import transition
from ledger.codec import encode
from ledger.events import Receipt
from ledger.genesis import GenesisAccount, GenesisSpec
from ledger.memory import InMemoryLedger
from ledger.ops import CORE_OPERATIONS
from ledger.protocol import Protocol
from ledger.records import ZERO_BALANCE, Account, AssetStatus, Balance, Hold
from ledger.rules import CoreRuleEngine
from ledger.state_keys import account_key, asset_status_key, balance_key, hold_key
from ledger.transaction import ENVELOPE, Signature, SignedTransaction, TxBody, TxEnvelope, sign_transaction

CHAIN = "test-chain"
T0 = 1_700_000_000
ADMIN = "admin@consortium"
OPS = CORE_OPERATIONS
PROTOCOL = Protocol(CORE_OPERATIONS, CoreRuleEngine(), bls.pop_verify)


def key_for(name: str, index: int = 0) -> SigningKey:
    return SigningKey(hashlib.sha256(f"{name}/{index}".encode()).digest())


def pub(name: str, index: int = 0) -> bytes:
    return bytes(key_for(name, index).verify_key)


class World:
    """An InMemoryLedger plus the signing keys of every account it created."""

    def __init__(
        self, members: Iterable[str] = ("bank-a", "bank-b", "issuer-co", "custody-c"), protocol: Protocol = PROTOCOL
    ) -> None:
        self.keys: dict[str, list[SigningKey]] = {ADMIN: [key_for(ADMIN)]}
        spec = GenesisSpec(
            chain_id=CHAIN,
            time=T0,
            members=(("consortium", "Consortium"),) + tuple((m, m.upper()) for m in members),
            accounts=(GenesisAccount(ADMIN, (pub(ADMIN),), 1, ("admin",)),),
        )
        self.ledger = InMemoryLedger(spec, protocol)
        self.nonce = 0
        self.time = T0

    # -- transactions ------------------------------------------------------------------------------------------

    def tx(
        self,
        signers: Iterable[str],
        *ops: object,
        sign_with: Iterable[tuple[str, SigningKey]] | None = None,
        expiry: int | None = None,
        nonce: int | None = None,
        chain: str = CHAIN,
    ) -> SignedTransaction:
        signers = tuple(sorted(set(signers)))
        if nonce is None:
            self.nonce += 1
            nonce = self.nonce
        body = TxBody(1, chain, signers, nonce, self.ledger.height + 10 if expiry is None else expiry, tuple(ops))
        if sign_with is None:
            sign_with = [(s, k) for s in signers for k in self.keys[s][: self.threshold(s)]]
        return sign_transaction(body, sign_with, operations=self.ledger.protocol.operations)

    def threshold(self, account: str) -> int:
        acct = self.ledger.get(account_key(account))
        return 1 if acct is None else acct.threshold

    def submit(self, *txs: SignedTransaction | bytes, advance: int = 1) -> list[Receipt]:
        self.time += advance
        outcome = self.ledger.apply(list(txs), time=self.time)
        return list(outcome.receipts)

    def run(self, signer: str, *ops: object) -> Receipt:
        """Sign with `signer`, apply in one block, return the receipt."""
        return self.submit(self.tx([signer], *ops))[0]

    def ok(self, signer: str, *ops: object) -> Receipt:
        r = self.run(signer, *ops)
        assert r.code == 0, (r.code, r.detail)
        return r

    def dry(self, tx: SignedTransaction) -> Receipt:
        return self.ledger.dry_run(tx, time=self.time + 1)

    # -- setup -------------------------------------------------------------------------------------------------

    def account(
        self,
        account_id: str,
        roles: Iterable[str] = (),
        n_keys: int = 1,
        threshold: int = 1,
        custodian: str | None = None,
    ) -> str:
        keys = [key_for(account_id, i) for i in range(n_keys)]
        self.keys[account_id] = keys
        pubs = tuple(sorted(bytes(k.verify_key) for k in keys))
        self.ok(ADMIN, o.RegisterAccount(ADMIN, account_id, pubs, threshold, custodian))
        for role in roles:
            self.ok(ADMIN, o.GrantRole(ADMIN, account_id, role))
        return account_id

    def asset(
        self,
        asset_id: str,
        issuer: str,
        cap: int = 10**12,
        agents: tuple[str, ...] = (),
        rules: tuple[o.RuleSpec, ...] = (),
    ) -> str:
        self.ok(issuer, o.DefineAsset(issuer, asset_id, 2, cap, f"{asset_id} name", "", (), agents, rules))
        return asset_id

    # -- reads -------------------------------------------------------------------------------------------------

    def balance(self, asset: str, account: str) -> Balance:
        b = self.ledger.get(balance_key(asset, account))
        return ZERO_BALANCE if b is None else b

    def status(self, asset: str) -> AssetStatus:
        return self.ledger.get(asset_status_key(asset))

    def acct(self, account: str) -> Account:
        return self.ledger.get(account_key(account))

    def hold(self, hold_id: str) -> Hold:
        return self.ledger.get(hold_key(hold_id))


def standard_world() -> World:
    """Issuer, agent, two holders, a custodian, an escrow; BOND-A (issuer, agent) with 1,000,000.00 cap."""
    w = World()
    w.account("treasury@issuer-co", roles=("issuer",))
    w.account("agent@issuer-co", roles=("agent",))
    w.account("custodian@custody-c", roles=("custodian",))
    w.account("alice@bank-a")
    w.account("bob@bank-b")
    w.account("dave@bank-a", custodian="custodian@custody-c")
    w.account("escrow@issuer-co")
    w.asset("BOND-A", "treasury@issuer-co", cap=100_000_000, agents=("agent@issuer-co",))
    w.asset("CASH-T", "treasury@issuer-co", cap=10**15, agents=("agent@issuer-co",))
    return w


def corrupt_signature(tx: SignedTransaction, which: int = 0) -> bytes:
    """The same transaction (same id) with one bit of its `which`-th signature flipped."""
    sigs = list(tx.signatures)
    s = sigs[which]
    sigs[which] = Signature(s.account, s.public_key, bytes([s.signature[0] ^ 1]) + s.signature[1:])
    return encode(ENVELOPE, TxEnvelope(tx.body_bytes, tuple(sigs)))


def count_verifications(monkeypatch: Any) -> list[int]:
    """A one-item list counting the Ed25519 checks the state transition makes from now on (pytest's monkeypatch
    restores the real check)."""
    calls = [0]
    real = transition.verify_signature

    def counting(public_key: bytes, message: bytes, signature: bytes) -> bool:
        calls[0] += 1
        return real(public_key, message, signature)

    monkeypatch.setattr(transition, "verify_signature", counting)
    return calls
