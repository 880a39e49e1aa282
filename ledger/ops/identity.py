"""Members, accounts, keys, roles, custodians."""

from __future__ import annotations

from dataclasses import replace

from ledger import codes
from ledger.context import TxContext
from ledger.errors import Refused
from ledger.operations import GrantRole, RegisterAccount, RegisterMember, RevokeRole, RotateKeys, SetCustodian
from ledger.records import Account, Member
from ledger.schema import ROLE_BITS, member_of
from ledger.state_keys import account_key, member_key


def check_key_set(keys: tuple[bytes, ...], threshold: int) -> None:
    if not 1 <= threshold <= len(keys):
        raise Refused(codes.INVALID_KEY_SET, f"threshold {threshold} with {len(keys)} keys")


def check_custodian(tx: TxContext, custodian: str | None) -> None:
    if custodian is None:
        return
    acct = tx.account(custodian)
    if not acct.roles & ROLE_BITS["custodian"]:
        raise Refused(codes.NOT_A_CUSTODIAN, f"{custodian} lacks the custodian role")


def register_member(tx: TxContext, op: RegisterMember) -> None:
    actor = tx.actor(op.actor)
    tx.require_role(op.actor, actor, "admin")
    if tx.member(op.member) is not None:
        raise Refused(codes.MEMBER_EXISTS, f"member {op.member} already exists")
    tx.state.put(member_key(op.member), Member(op.name, tx.block.height))
    tx.emit("member_registered", actor=op.actor, member=op.member, name=op.name)


def register_account(tx: TxContext, op: RegisterAccount) -> None:
    """An admin, or an account with the member role at the same member institution, opens an account."""
    actor = tx.actor(op.actor)
    member = member_of(op.account)
    if not actor.roles & ROLE_BITS["admin"]:
        if not actor.roles & ROLE_BITS["member"]:
            raise Refused(codes.UNAUTHORIZED, f"{op.actor} lacks the admin or member role")
        if actor.member != member:
            raise Refused(codes.UNAUTHORIZED, f"{op.actor} may only open accounts at {actor.member}")
    if tx.member(member) is None:
        raise Refused(codes.MEMBER_NOT_FOUND, f"member {member} does not exist")
    if tx.find_account(op.account) is not None:
        raise Refused(codes.ACCOUNT_EXISTS, f"account {op.account} already exists")
    check_key_set(op.keys, op.threshold)
    check_custodian(tx, op.custodian)
    tx.state.put(account_key(op.account), Account(member, op.keys, op.threshold, 0, op.custodian, False, None))
    tx.emit(
        "account_registered",
        actor=op.actor,
        account=op.account,
        keys=len(op.keys),
        threshold=op.threshold,
        custodian=op.custodian,
    )


def rotate_keys(tx: TxContext, op: RotateKeys) -> None:
    """The account replaces its own key set (the transaction was signed under the current one)."""
    actor = tx.actor(op.actor)
    check_key_set(op.keys, op.threshold)
    tx.put_account(op.actor, replace(actor, keys=op.keys, threshold=op.threshold))
    tx.emit("keys_rotated", actor=op.actor, account=op.actor, keys=len(op.keys), threshold=op.threshold)


def grant_role(tx: TxContext, op: GrantRole) -> None:
    actor = tx.actor(op.actor)
    tx.require_role(op.actor, actor, "admin")
    target = tx.account(op.account)
    bit = ROLE_BITS[op.role]
    if target.roles & bit:
        raise Refused(codes.ROLE_ALREADY_GRANTED, f"{op.account} already has the {op.role} role")
    tx.put_account(op.account, replace(target, roles=target.roles | bit))
    tx.emit("role_granted", actor=op.actor, account=op.account, role=op.role)


def revoke_role(tx: TxContext, op: RevokeRole) -> None:
    actor = tx.actor(op.actor)
    tx.require_role(op.actor, actor, "admin")
    if op.role == "admin" and op.account == op.actor:
        raise Refused(codes.SELF_ADMIN_REVOKE)
    target = tx.account(op.account)
    bit = ROLE_BITS[op.role]
    if not target.roles & bit:
        raise Refused(codes.ROLE_NOT_GRANTED, f"{op.account} does not have the {op.role} role")
    tx.put_account(op.account, replace(target, roles=target.roles & ~bit))
    tx.emit("role_revoked", actor=op.actor, account=op.account, role=op.role)


def set_custodian(tx: TxContext, op: SetCustodian) -> None:
    """The account itself, or an admin, appoints (or with nil removes) the account's custodian."""
    actor = tx.actor(op.actor)
    if op.actor != op.account:
        tx.require_role(op.actor, actor, "admin")
    target = tx.account(op.account)
    check_custodian(tx, op.custodian)
    tx.put_account(op.account, replace(target, custodian=op.custodian))
    tx.emit("custodian_set", actor=op.actor, account=op.account, custodian=op.custodian)
