"""Operation processors: one small function per operation kind (consensus-specs style).

Each processor takes the transaction context and the decoded operation, checks its preconditions in a fixed
order (authority, existence, rules, balances) and either applies its writes to the transaction overlay and emits
its events, or raises `Refused(code, detail)`. CORE_PROCESSORS maps each core operation type to its processor; the
operation set (ledger.operation_set) pairs them, and the processors of extension operations, with their types.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ledger import operations as o
from ledger.events import EVENT_KINDS
from ledger.operation_set import OperationSet, Processor
from ledger.ops import assets, enforcement, governance, holds, identity, settlement

CORE_PROCESSORS: Mapping[type, Processor] = MappingProxyType({
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
})

assert set(CORE_PROCESSORS) == set(o.OPERATION_TYPES), "every operation kind needs exactly one processor"


# The ledger's own operation set: the core kinds, their processors and the events they emit (the contracts layer
# extends it into a node's: contracts.OPERATIONS).
CORE_OPERATIONS = OperationSet(tuple(CORE_PROCESSORS.items()), EVENT_KINDS + governance.EVENT_KINDS)
assert CORE_OPERATIONS.types == tuple(sorted(o.OPERATION_TYPES, key=lambda c: c.KIND))  # type: ignore[attr-defined]
