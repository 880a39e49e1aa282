"""Identity claims: what KYC providers say about an account (verified, country, investor level, until when).

One ClaimSet per account (at most one claim per provider, at most MAX_CLAIMS providers). A claim is valid at block
time t while t < expires_at. Which providers an asset trusts is a parameter of its `eligibility` rule; the country
of an account *for an asset* is the country of its first valid claim in the order of the asset's trusted providers
(or, for an asset without an eligibility rule, in provider-id order).

When a recovery agent migrates an account, the new account inherits the old one's claims (`inherit`, called by
the engine on the first migrated position).

`set_claim` / `revoke_claim` are the state updates behind the SetClaim / RevokeClaim operations a kyc_provider
signs (contracts.operations); they return a (code, message) refusal, or write and return OK. Rules only count a
claim while its provider holds the kyc_provider role (contracts.modules.base.RuleContext.claims).
"""

from __future__ import annotations

import re

from contracts import codes as cc
from contracts.state import MAX_CLAIMS, Claim, ClaimSet, claims_key, read, write
from ledger import codes
from ledger.rules import RuleState

__all__ = ["account_claims", "country_for", "inherit", "revoke_claim", "set_claim", "valid_claim"]

_COUNTRY = re.compile(r"[A-Z]{2}")


def account_claims(state: RuleState, account: str) -> tuple[Claim, ...]:
    cs = read(state, claims_key(account), ClaimSet)
    return () if cs is None else cs.claims


def valid_claim(claims: tuple[Claim, ...], providers: tuple[str, ...] | None, time: int) -> tuple[Claim | None, bool]:
    """(the first valid claim by a trusted provider, whether an expired trusted claim exists).
    providers=None trusts every provider (in provider-id order)."""
    expired = False
    if providers is None:
        ordered = claims
    else:
        by_provider = {c.provider: c for c in claims}
        ordered = tuple(by_provider[p] for p in providers if p in by_provider)
    for c in ordered:
        if time < c.expires_at:
            return c, expired
        expired = True
    return None, expired


def country_for(claims: tuple[Claim, ...], providers: tuple[str, ...] | None, time: int) -> str:
    claim, _ = valid_claim(claims, providers, time)
    return "" if claim is None else claim.country


def set_claim(state: RuleState, account: str, claim: Claim, now: int) -> tuple[int, str]:
    """Add or replace `claim.provider`'s claim on `account`."""
    if not _COUNTRY.fullmatch(claim.country) or claim.expires_at <= now:
        return cc.CLAIM_INVALID, f"claim needs a 2-letter country and an expiry after {now}"
    current = {c.provider: c for c in account_claims(state, account)}
    if claim.provider not in current and len(current) >= MAX_CLAIMS:
        return cc.CLAIM_LIMIT, f"{account} already has {MAX_CLAIMS} claims"
    current[claim.provider] = claim
    write(state, claims_key(account), ClaimSet(tuple(current[p] for p in sorted(current))))
    return codes.OK, ""


def revoke_claim(state: RuleState, account: str, provider: str) -> tuple[int, str]:
    current = {c.provider: c for c in account_claims(state, account)}
    if provider not in current:
        return cc.CLAIM_NOT_FOUND, f"{account} has no claim by {provider}"
    del current[provider]
    write(state, claims_key(account), ClaimSet(tuple(current[p] for p in sorted(current))) if current else None)
    return codes.OK, ""


def inherit(state: RuleState, old: str, new: str) -> None:
    """Account migration (lost-key recovery): the new account of the same holder takes over the old account's
    claims, unless it already has claims of its own."""
    cs = read(state, claims_key(old), ClaimSet)
    if cs is not None and read(state, claims_key(new), ClaimSet) is None:
        write(state, claims_key(new), cs)
