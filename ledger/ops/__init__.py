"""Operation processors: one small function per operation kind (consensus-specs style).

Each processor takes the transaction context and the decoded operation, checks its preconditions in a fixed
order (authority, existence, rules, balances) and either applies its writes to the transaction overlay and emits
its events, or raises `Refused(code, detail)`. The dispatch table maps each operation type to its processor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ledger import operations as o
from ledger.context import TxContext
from ledger.ops import assets, enforcement, governance, holds, identity, settlement

PROCESSORS: dict[type, Callable[[TxContext, Any], None]] = {
    o.RegisterMember: identity.register_member,
    o.RegisterAccount: identity.register_account,
    o.RotateKeys: identity.rotate_keys,
    o.GrantRole: governance.grant_role,  # identity.grant_role, except for the governor role
    o.RevokeRole: governance.revoke_role,
    o.SetCustodian: identity.set_custodian,
    o.DefineAsset: assets.define_asset,
    o.SetAssetRules: assets.set_asset_rules,
    o.SetAssetAgents: assets.set_asset_agents,
    o.Issue: assets.issue,
    o.Transfer: assets.transfer,
    o.Redeem: assets.redeem,
    o.CreateHold: holds.create_hold,
    o.ExecuteHold: holds.execute_hold,
    o.ReleaseHold: holds.release_hold,
    o.ExpireHold: holds.expire_hold,
    o.FreezeAccount: enforcement.freeze_account,
    o.UnfreezeAccount: enforcement.unfreeze_account,
    o.FreezeAmount: enforcement.freeze_amount,
    o.UnfreezeAmount: enforcement.unfreeze_amount,
    o.PauseAsset: enforcement.pause_asset,
    o.UnpauseAsset: enforcement.unpause_asset,
    o.ForcedTransfer: enforcement.forced_transfer,
    o.RecoverKeys: enforcement.recover_keys,
    o.MigrateAccount: enforcement.migrate_account,
    o.Settle: settlement.settle,
    o.Propose: governance.propose,
    o.Approve: governance.approve,
    o.CancelProposal: governance.cancel_proposal,
}

assert set(PROCESSORS) == set(o.OPERATION_TYPES), "every operation kind needs exactly one processor"


def register_processor(cls: type, processor: Callable[[TxContext, Any], None]) -> None:
    """The processor of an extension operation (registered with ledger.operations.register_operation). It gets the
    transaction context (typed state access, balances via ledger.ops.assets.move_units, events via ctx.emit with
    kinds from ledger.events.register_event_kind) and refuses by raising ledger.codes.Refused."""
    if cls not in o.OPERATION.by_cls or cls.KIND not in o.EXTENSION_KINDS:  # type: ignore[attr-defined]
        raise ValueError(f"{cls.__name__} is not a registered extension operation")
    old = PROCESSORS.get(cls)
    if old is not None and old is not processor:
        raise ValueError(f"{cls.__name__} already has a processor")
    PROCESSORS[cls] = processor
