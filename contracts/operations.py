"""The contracts layer's operations: identity claims and corporate actions (extension kinds 64-127).

Plain frozen dataclasses; nothing is registered. contracts.processors pairs them with their processors and builds the
contracts layer's operation set (contracts.OPERATIONS = CORE_OPERATIONS.extend(...)), with which they decode, encode
and have a JSON form like the core operations. Kind numbers never change meaning.
Field tables: docs/contracts.md, "Operations".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ledger.codec import Str, UInt, wire
from ledger.schema import ACCOUNT_ID, AMOUNT, ASSET_ID, HEIGHT, HOLD_ID, TIME

__all__ = ["CONTRACT_OPERATIONS", "AnnounceAction", "PayAction", "RevokeClaim", "SetClaim"]

COUNTRY = Str(2, "[A-Z]{2}", min_bytes=2)
MAX_BATCH = 64


@dataclass(frozen=True, slots=True)
class SetClaim:
    """A KYC provider (kyc_provider role) records or replaces its identity claim on `account`: verified, resident in
    `country` (ISO 3166-1 alpha-2), investor `level` (the provider's scale), valid while block time < `expires_at`."""

    KIND: ClassVar[int] = 64
    actor: str = wire(ACCOUNT_ID)
    account: str = wire(ACCOUNT_ID)
    country: str = wire(COUNTRY)
    level: int = wire(UInt(8))
    expires_at: int = wire(TIME)


@dataclass(frozen=True, slots=True)
class RevokeClaim:
    """The KYC provider removes its claim on `account`."""

    KIND: ClassVar[int] = 65
    actor: str = wire(ACCOUNT_ID)
    account: str = wire(ACCOUNT_ID)


@dataclass(frozen=True, slots=True)
class AnnounceAction:
    """The issuer or an agent of `asset` announces a corporate action: action_kind 1 = distribution (coupon,
    dividend), 2 = redemption at maturity; paid in `pay_asset` by `payer` (who signs), rate_num / rate_den pay units
    per unit held at `record_height`; rounding remainders go to `remainder_account`."""

    KIND: ClassVar[int] = 66
    actor: str = wire(ACCOUNT_ID)
    action: str = wire(HOLD_ID)
    action_kind: int = wire(UInt(8, minimum=1, maximum=2))
    asset: str = wire(ASSET_ID)
    pay_asset: str = wire(ASSET_ID)
    payer: str = wire(ACCOUNT_ID)
    remainder_account: str = wire(ACCOUNT_ID)
    record_height: int = wire(HEIGHT)
    rate_num: int = wire(AMOUNT)
    rate_den: int = wire(AMOUNT)


@dataclass(frozen=True, slots=True)
class PayAction:
    """The issuer or an agent of the action's asset pays its next batch (at most `max_holders` holder-index slots);
    the payer signs."""

    KIND: ClassVar[int] = 67
    actor: str = wire(ACCOUNT_ID)
    action: str = wire(HOLD_ID)
    max_holders: int = wire(UInt(8, minimum=1, maximum=MAX_BATCH))


CONTRACT_OPERATIONS: tuple[type, ...] = (SetClaim, RevokeClaim, AnnounceAction, PayAction)
