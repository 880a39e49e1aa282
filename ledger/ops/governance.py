"""Governance: proposals approved by M of N voter members, whose actions change members, roles, the approval
threshold, the validator set and the chain params (docs/protocol.md, "Governance and epochs").

A governor is an account with the governor role whose member is a voter; it acts for its member. A proposal's
actions are checked against the current state when proposed (a dry run that is thrown away) and run again, in
order and atomically, by the transaction whose approval reaches the threshold. A refused action refuses that whole
transaction (the detail names the action's index) and nothing changes.

A validator or params change writes the EpochRecord of the next epoch, start_height = block height + 1. Several
changes in one block amend that same record, so a block schedules at most one epoch change.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ledger import codes
from ledger.context import TxContext
from ledger.errors import Refused
from ledger.governance_state import (
    chain_params_record,
    chain_params_values,
    current_epoch,
    current_governance,
    validator_set_error,
)
from ledger.jsonform import kind_name
from ledger.operations import (
    AddMember,
    AddValidator,
    Approve,
    CancelProposal,
    GovernanceAction,
    GrantRole,
    Propose,
    RemoveMember,
    RemoveValidator,
    RevokeRole,
    RotateValidatorKeys,
    SetApprovalThreshold,
    SetChainParams,
    SetRole,
    SetValidatorAddress,
    SetVoter,
)
from ledger.ops import identity
from ledger.records import (
    Account,
    ChainParamsRecord,
    EpochRecord,
    GovernanceRecord,
    Member,
    ProposalRecord,
    ProposalStatus,
    ValidatorInfo,
)
from ledger.schema import (
    MAX_PROPOSAL_LIFETIME,
    MAX_VALIDATORS,
    ROLE_BITS,
    approval_threshold_error,
    member_of,
)
from ledger.state import Overlay
from ledger.state_keys import EPOCH_KEY, GOVERNANCE_KEY, account_key, member_key, proposal_key

# Event kinds of governance (part of CORE_OPERATIONS' event kinds, ledger.operation_set).
EVENT_KINDS = (
    "proposal_created",
    "proposal_approved",
    "proposal_executed",
    "proposal_cancelled",
    "member_added",
    "member_removed",
    "voter_set",
    "validator_added",
    "validator_removed",
    "validator_keys_rotated",
    "validator_address_set",
    "role_set",
    "threshold_set",
    "chain_params_set",
    "epoch_scheduled",
)

GOVERNOR = ROLE_BITS["governor"]


# --------------------------------------------------------------------------------------------------------------
# Authority


def _governor(tx: TxContext, actor_id: str) -> tuple[Account, GovernanceRecord]:
    """The acting account must have signed, hold the governor role and belong to a voter member."""
    actor = tx.actor(actor_id)
    if not actor.roles & GOVERNOR:
        raise Refused(codes.NOT_GOVERNOR, f"{actor_id} lacks the governor role")
    gov = current_governance(tx.state)
    if actor.member not in gov.voters:
        raise Refused(codes.NOT_VOTER, f"member {actor.member} of {actor_id} is not a governance voter")
    return actor, gov


def grant_role(tx: TxContext, op: GrantRole) -> None:
    """GrantRole, except for the governor role (only a proposal grants it)."""
    if op.role == "governor":
        raise Refused(codes.GOVERNOR_ROLE_BY_PROPOSAL)
    identity.grant_role(tx, op)


def revoke_role(tx: TxContext, op: RevokeRole) -> None:
    if op.role == "governor":
        raise Refused(codes.GOVERNOR_ROLE_BY_PROPOSAL)
    identity.revoke_role(tx, op)


# --------------------------------------------------------------------------------------------------------------
# Running a proposal's actions


@dataclass(slots=True)
class _Draft:
    """The working copy of what actions change: validators, params, voters, threshold (written once at the end)."""

    validators: list[ValidatorInfo]
    params: ChainParamsRecord
    voters: set[str]
    threshold: int
    events: list[tuple[str, dict[str, Any]]]

    def find(self, node_id: str) -> int:
        for i, v in enumerate(self.validators):
            if v.node_id == node_id:
                return i
        raise Refused(codes.VALIDATOR_NOT_FOUND, f"validator {node_id} does not exist")


def _check_keys(
    tx: TxContext, draft: _Draft, node_id: str, identity_key: bytes, bls_key: bytes, bls_pop: bytes
) -> None:
    """Unique keys, and a proof of possession that the protocol's verifier (consensus.bls.pop_verify on a node)
    accepts."""
    for v in draft.validators:
        if v.node_id == node_id:
            continue
        if v.identity_key == identity_key:
            raise Refused(codes.DUPLICATE_IDENTITY_KEY, f"identity key already used by {v.node_id}")
        if v.bls_key == bls_key:
            raise Refused(codes.DUPLICATE_BLS_KEY, f"BLS key already used by {v.node_id}")
    try:
        ok = tx.protocol.pop_verifier(bls_key, bls_pop) is True
    except (ValueError, TypeError):
        ok = False
    if not ok:
        raise Refused(codes.BAD_BLS_POP, f"the proof of possession of {node_id}'s BLS key does not verify")


def _check_address(draft: _Draft, node_id: str, address: str) -> None:
    if not address:
        return
    port = int(address.rpartition(":")[2])
    if not 0 < port < 65536:
        raise Refused(codes.INVALID_VALIDATOR_ADDRESS, f"port {port} is not in 1..65535")
    for v in draft.validators:
        if v.node_id != node_id and v.address == address:
            raise Refused(codes.INVALID_VALIDATOR_ADDRESS, f"address {address} is used by {v.node_id}")


def _add_member(tx: TxContext, state: Overlay, draft: _Draft, a: AddMember) -> None:
    if state.get(member_key(a.member)) is not None:
        raise Refused(codes.MEMBER_EXISTS, f"member {a.member} already exists")
    state.put(member_key(a.member), Member(a.name, tx.block.height))
    if a.voter:
        draft.voters.add(a.member)
    draft.events.append(("member_added", {"member": a.member, "name": a.name, "voter": int(a.voter)}))


def _remove_member(tx: TxContext, state: Overlay, draft: _Draft, a: RemoveMember) -> None:
    if state.get(member_key(a.member)) is None:
        raise Refused(codes.MEMBER_NOT_FOUND, f"member {a.member} does not exist")
    for v in draft.validators:
        if v.member == a.member:
            raise Refused(codes.MEMBER_RUNS_VALIDATOR, f"member {a.member} runs validator {v.node_id}")
    state.put(member_key(a.member), None)
    was_voter = a.member in draft.voters
    draft.voters.discard(a.member)
    if was_voter and draft.threshold > len(draft.voters):
        raise Refused(codes.THRESHOLD_UNREACHABLE, f"{len(draft.voters)} voters left, threshold {draft.threshold}")
    draft.events.append(("member_removed", {"member": a.member, "voter": int(was_voter)}))


def _set_voter(tx: TxContext, state: Overlay, draft: _Draft, a: SetVoter) -> None:
    if state.get(member_key(a.member)) is None:
        raise Refused(codes.MEMBER_NOT_FOUND, f"member {a.member} does not exist")
    if (a.member in draft.voters) == a.voter:
        raise Refused(codes.VOTER_UNCHANGED, f"member {a.member} {'already' if a.voter else 'does not'} vote")
    if a.voter:
        draft.voters.add(a.member)
    else:
        draft.voters.discard(a.member)
        if draft.threshold > len(draft.voters):
            raise Refused(codes.THRESHOLD_UNREACHABLE, f"{len(draft.voters)} voters left, threshold {draft.threshold}")
    draft.events.append(("voter_set", {"member": a.member, "voter": int(a.voter)}))


def _add_validator(tx: TxContext, state: Overlay, draft: _Draft, a: AddValidator) -> None:
    if any(v.node_id == a.node_id for v in draft.validators):
        raise Refused(codes.VALIDATOR_EXISTS, f"validator {a.node_id} already exists")
    if state.get(member_key(a.member)) is None:
        raise Refused(codes.MEMBER_NOT_FOUND, f"member {a.member} does not exist")
    if len(draft.validators) >= MAX_VALIDATORS:
        raise Refused(codes.TOO_MANY_VALIDATORS, f"at most {MAX_VALIDATORS} validators")
    _check_address(draft, a.node_id, a.address)
    _check_keys(tx, draft, a.node_id, a.identity_key, a.bls_key, a.bls_pop)
    draft.validators.append(
        ValidatorInfo(a.node_id, a.member, a.identity_key, a.bls_key, a.bls_pop, a.address, a.power)
    )
    draft.events.append(
        ("validator_added", {"node_id": a.node_id, "member": a.member, "power": a.power, "bls_key": a.bls_key})
    )


def _remove_validator(tx: TxContext, state: Overlay, draft: _Draft, a: RemoveValidator) -> None:
    i = draft.find(a.node_id)
    del draft.validators[i]
    draft.events.append(("validator_removed", {"node_id": a.node_id}))


def _rotate_validator_keys(tx: TxContext, state: Overlay, draft: _Draft, a: RotateValidatorKeys) -> None:
    i = draft.find(a.node_id)
    _check_keys(tx, draft, a.node_id, a.identity_key, a.bls_key, a.bls_pop)
    v = draft.validators[i]
    draft.validators[i] = replace(v, identity_key=a.identity_key, bls_key=a.bls_key, bls_pop=a.bls_pop)
    draft.events.append(("validator_keys_rotated", {"node_id": a.node_id, "bls_key": a.bls_key}))


def _set_validator_address(tx: TxContext, state: Overlay, draft: _Draft, a: SetValidatorAddress) -> None:
    i = draft.find(a.node_id)
    _check_address(draft, a.node_id, a.address)
    draft.validators[i] = replace(draft.validators[i], address=a.address)
    draft.events.append(("validator_address_set", {"node_id": a.node_id, "address": a.address}))


def _set_role(tx: TxContext, state: Overlay, draft: _Draft, a: SetRole) -> None:
    target: Account | None = state.get(account_key(a.account))
    if target is None:
        raise Refused(codes.ACCOUNT_NOT_FOUND, f"account {a.account} does not exist")
    if target.closed_to is not None:
        raise Refused(codes.ACCOUNT_CLOSED, f"account {a.account} was migrated to {target.closed_to}")
    bit = ROLE_BITS[a.role]
    if a.granted and target.roles & bit:
        raise Refused(codes.ROLE_ALREADY_GRANTED, f"{a.account} already has the {a.role} role")
    if not a.granted and not target.roles & bit:
        raise Refused(codes.ROLE_NOT_GRANTED, f"{a.account} does not have the {a.role} role")
    roles = target.roles | bit if a.granted else target.roles & ~bit
    state.put(account_key(a.account), replace(target, roles=roles))
    draft.events.append(("role_set", {"account": a.account, "role": a.role, "granted": int(a.granted)}))


def _set_threshold(tx: TxContext, state: Overlay, draft: _Draft, a: SetApprovalThreshold) -> None:
    error = approval_threshold_error(a.threshold, len(draft.voters))
    if error is not None:
        raise Refused(codes.INVALID_APPROVAL_THRESHOLD, error)
    draft.threshold = a.threshold
    draft.events.append(("threshold_set", {"threshold": a.threshold, "voters": len(draft.voters)}))


def _set_chain_params(tx: TxContext, state: Overlay, draft: _Draft, a: SetChainParams) -> None:
    try:
        draft.params = chain_params_record(chain_params_values(a))
    except ValueError as exc:
        raise Refused(codes.INVALID_CHAIN_PARAMS, str(exc)) from None
    draft.events.append(("chain_params_set", chain_params_values(a)))


_ACTIONS: dict[type, Any] = {
    AddMember: _add_member,
    RemoveMember: _remove_member,
    SetVoter: _set_voter,
    AddValidator: _add_validator,
    RemoveValidator: _remove_validator,
    RotateValidatorKeys: _rotate_validator_keys,
    SetValidatorAddress: _set_validator_address,
    SetRole: _set_role,
    SetApprovalThreshold: _set_threshold,
    SetChainParams: _set_chain_params,
}


def _run_actions(tx: TxContext, proposal_id: str, actions: tuple[GovernanceAction, ...], execute: bool) -> None:
    """Run `actions` in order on a child overlay of the transaction. With `execute` the result is merged into the
    transaction and its events emitted; otherwise (a check at proposal time) it is dropped. Refuses on the first
    action that fails, or when the result breaks the validator-set or threshold rules."""
    parent = tx.state
    state = Overlay(parent)
    epoch = current_epoch(parent)
    gov = current_governance(parent)
    draft = _Draft(list(epoch.validators), epoch.params, set(gov.voters), gov.threshold, [])
    last_set_change = None
    for i, action in enumerate(actions):
        try:
            _ACTIONS[type(action)](tx, state, draft, action)
        except Refused as refusal:
            raise Refused(refusal.code, f"action {i} ({kind_name(type(action))}): {refusal.message}") from None
        if isinstance(action, AddValidator | RemoveValidator | RotateValidatorKeys | SetValidatorAddress):
            last_set_change = i
    validators = tuple(draft.validators)
    if validators != epoch.validators:
        error = validator_set_error(validators)
        if error is not None:
            raise Refused(error[0], f"after action {last_set_change}: {error[1]}")
    voters = tuple(sorted(draft.voters))
    if voters != gov.voters or draft.threshold != gov.threshold:
        if draft.threshold > len(voters):
            raise Refused(codes.THRESHOLD_UNREACHABLE, f"{len(voters)} voters, threshold {draft.threshold}")
        error = approval_threshold_error(draft.threshold, len(voters))
        if error is not None:
            raise Refused(codes.INVALID_APPROVAL_THRESHOLD, f"after the actions: {error}")
        state.put(GOVERNANCE_KEY, GovernanceRecord(voters, draft.threshold))
    if not execute:
        return
    for kind, attrs in draft.events:
        tx.emit(kind, proposal=proposal_id, **attrs)
    if validators != epoch.validators or draft.params != epoch.params:
        height = tx.block.height
        if epoch.start_height == height + 1:  # this block already scheduled the next epoch: amend it
            new = replace(epoch, validators=validators, params=draft.params)
        else:
            new = EpochRecord(epoch.epoch + 1, height + 1, validators, draft.params)
        state.put(EPOCH_KEY, new)
        tx.emit(
            "epoch_scheduled",
            proposal=proposal_id,
            epoch=new.epoch,
            start_height=new.start_height,
            validators=len(new.validators),
            total_power=sum(v.power for v in new.validators),
        )
    state.commit()


def _approvals(rec: ProposalRecord, gov: GovernanceRecord) -> int:
    """Approvals that count: those of members that still vote."""
    return len(set(rec.approvals) & set(gov.voters))


def _maybe_execute(tx: TxContext, proposal_id: str, rec: ProposalRecord, gov: GovernanceRecord) -> ProposalRecord:
    if _approvals(rec, gov) < gov.threshold:
        return rec
    rec = replace(rec, status=ProposalStatus.EXECUTED, closed_height=tx.block.height)
    tx.state.put(proposal_key(proposal_id), rec)
    _run_actions(tx, proposal_id, rec.actions, execute=True)
    tx.emit("proposal_executed", proposal=proposal_id, actions=len(rec.actions))
    return rec


# --------------------------------------------------------------------------------------------------------------
# Processors


def propose(tx: TxContext, op: Propose) -> None:
    actor, gov = _governor(tx, op.actor)
    key = proposal_key(op.proposal_id)
    if tx.state.get(key) is not None:
        raise Refused(codes.PROPOSAL_EXISTS, f"proposal {op.proposal_id} already exists")
    height = tx.block.height
    if not height <= op.expiry_height <= height + MAX_PROPOSAL_LIFETIME:
        raise Refused(
            codes.INVALID_PROPOSAL_EXPIRY,
            f"expiry height {op.expiry_height} is not in {height}..{height + MAX_PROPOSAL_LIFETIME}",
        )
    rec = ProposalRecord(op.actor, op.actions, op.expiry_height, height, (actor.member,), ProposalStatus.OPEN, 0)
    tx.state.put(key, rec)
    tx.emit(
        "proposal_created",
        actor=op.actor,
        proposal=op.proposal_id,
        member=actor.member,
        actions=",".join(kind_name(type(a)) for a in op.actions),
        expiry_height=op.expiry_height,
    )
    tx.emit(
        "proposal_approved", actor=op.actor, proposal=op.proposal_id, member=actor.member, approvals=1,
        threshold=gov.threshold,
    )
    if _approvals(rec, gov) < gov.threshold:
        _run_actions(tx, op.proposal_id, op.actions, execute=False)
    else:
        _maybe_execute(tx, op.proposal_id, rec, gov)


def _open_proposal(tx: TxContext, proposal_id: str) -> ProposalRecord:
    rec: ProposalRecord | None = tx.state.get(proposal_key(proposal_id))
    if rec is None:
        raise Refused(codes.PROPOSAL_NOT_FOUND, f"proposal {proposal_id} does not exist")
    if rec.status != ProposalStatus.OPEN:
        raise Refused(codes.PROPOSAL_NOT_OPEN, f"proposal {proposal_id} is already {_status_name(rec.status)}")
    if tx.block.height > rec.expiry_height:
        raise Refused(codes.PROPOSAL_EXPIRED, f"proposal {proposal_id} expired at height {rec.expiry_height}")
    return rec


def _status_name(status: int) -> str:
    return "executed" if status == ProposalStatus.EXECUTED else "cancelled"


def approve(tx: TxContext, op: Approve) -> None:
    actor, gov = _governor(tx, op.actor)
    rec = _open_proposal(tx, op.proposal_id)
    if actor.member in rec.approvals:
        raise Refused(codes.ALREADY_APPROVED, f"member {actor.member} already approved {op.proposal_id}")
    rec = replace(rec, approvals=tuple(sorted((*rec.approvals, actor.member))))
    tx.state.put(proposal_key(op.proposal_id), rec)
    tx.emit(
        "proposal_approved", actor=op.actor, proposal=op.proposal_id, member=actor.member,
        approvals=_approvals(rec, gov), threshold=gov.threshold,
    )
    _maybe_execute(tx, op.proposal_id, rec, gov)


def cancel_proposal(tx: TxContext, op: CancelProposal) -> None:
    actor = tx.actor(op.actor)
    if not actor.roles & GOVERNOR:
        raise Refused(codes.NOT_GOVERNOR, f"{op.actor} lacks the governor role")
    rec = _open_proposal(tx, op.proposal_id)
    if actor.member != member_of(rec.proposer):
        raise Refused(codes.NOT_PROPOSER, f"{op.proposal_id} was proposed by {member_of(rec.proposer)}")
    tx.state.put(
        proposal_key(op.proposal_id), replace(rec, status=ProposalStatus.CANCELLED, closed_height=tx.block.height)
    )
    tx.emit("proposal_cancelled", actor=op.actor, proposal=op.proposal_id, member=actor.member)
