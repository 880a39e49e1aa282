"""Governance on the client: proposals as operations, their actions, and the validator keys a joining node brings.

    add = action("add_validator", node_id="node-4", member="m4", identity_key=..., bls_key=..., bls_pop=...,
                 address="127.0.0.1:7104", power=1)
    op = propose("gov@m0", "onboard-m4", [action("add_member", member="m4", name="Member 4", voter=True), add],
                 expiry_height=head + 200)
    client.execute(op, keys=[gov_m0_key])                 # the proposer's member approves at once
    client.execute(approve("gov@m1", "onboard-m4"), keys=[gov_m1_key])   # ... until M of N approved: it executes
    client.proposal("onboard-m4")                        # {"status": "executed", "approvals": [...], ...}

Actions are the JSON form of docs/protocol.md ("Governance and epochs"): {"kind": "add_validator", <fields>}, bin
fields as lowercase hex (Python bytes are accepted too). Everything is checked against the ledger's schema here,
with the ledger's codes, so an operation the builder accepts decodes on the node.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ledger.codec import DecodeError, Record
from ledger.jsonform import from_json, kind_name, to_json
from ledger.operations import ACTION, ACTION_TYPES, GovernanceAction, Operation
from node.client import builder
from node.client.errors import ClientError

__all__ = [
    "ACTION_KINDS",
    "action",
    "action_from_json",
    "action_to_json",
    "approve",
    "cancel_proposal",
    "parse_actions",
    "propose",
    "validator_action",
]

# kind name -> record type: "add_member", "remove_member", "add_validator", "remove_validator",
# "rotate_validator_keys", "set_validator_address", "set_role", "set_approval_threshold", "set_chain_params", ...
ACTION_KINDS: dict[str, Record] = {
    kind_name(rec.cls): rec for _, rec in sorted(ACTION.by_kind.items())  # type: ignore[attr-defined]
}
assert len(ACTION_KINDS) == len(ACTION_TYPES)


def _hexify(v: Any) -> Any:
    return bytes(v).hex() if isinstance(v, bytes | bytearray) else v


def action(kind: str, **fields: Any) -> GovernanceAction:
    """One governance action from its fields; ClientError("bad_input") naming the field and ledger code."""
    if kind not in ACTION_KINDS:
        raise ClientError("bad_input", f"unknown governance action {kind!r}; one of {', '.join(ACTION_KINDS)}")
    return action_from_json({"kind": kind, **{k: _hexify(v) for k, v in fields.items()}})


def action_from_json(obj: Any) -> GovernanceAction:
    """An action from its JSON form ({"kind": ..., fields}); strict like the node."""
    try:
        return from_json(ACTION, obj)
    except DecodeError as exc:
        raise ClientError("bad_input", f"governance action: {exc}", {"ledger_code": exc.code,
                                                                     "path": exc.path}) from None


def action_to_json(a: GovernanceAction) -> dict[str, Any]:
    return to_json(ACTION, a)


def parse_actions(items: Iterable[Any]) -> list[GovernanceAction]:
    """Actions from JSON texts, JSON values (a JSON array text expands to several) or action records."""
    out: list[GovernanceAction] = []
    for item in items:
        if isinstance(item, str):
            try:
                item = json.loads(item)
            except ValueError as exc:
                raise ClientError("bad_input", f"action is not JSON: {exc}") from None
        for one in item if isinstance(item, list) else [item]:
            out.append(one if isinstance(one, ACTION_TYPES) else action_from_json(one))
    if not out:
        raise ClientError("bad_input", "a proposal needs at least one action")
    return out


def propose(actor: str, proposal_id: str, actions: Sequence[GovernanceAction | Mapping[str, Any] | str],
            expiry_height: int) -> Operation:
    """A `propose` operation: `actor` (a governor of a voting member) proposes `actions`, to run in order and
    atomically once M of N voting members approved, at a height <= `expiry_height`. The proposer's member counts
    as the first approval."""
    acts = parse_actions(actions)
    return builder.operation("propose", actor=actor, proposal_id=proposal_id,
                             actions=[action_to_json(a) for a in acts], expiry_height=expiry_height)


def approve(actor: str, proposal_id: str) -> Operation:
    """An `approve` operation: `actor`'s member approves; the approval that reaches the threshold executes it."""
    return builder.operation("approve", actor=actor, proposal_id=proposal_id)


def cancel_proposal(actor: str, proposal_id: str) -> Operation:
    """A `cancel_proposal` operation: a governor of the proposing member withdraws an open proposal."""
    return builder.operation("cancel_proposal", actor=actor, proposal_id=proposal_id)


def validator_action(node_id: str, member: str, keys: Any, address: str = "", power: int = 1,
                     *, rotate: bool = False) -> GovernanceAction:
    """`add_validator` (or, with rotate=True, `rotate_validator_keys`) from a node's keys (node.validator.keyfile.NodeKeys
    or anything with identity_key, bls_public_key and bls_pop())."""
    identity = bytes(keys.identity_key)
    bls_key = bytes(keys.bls_public_key)
    pop = bytes(keys.bls_pop())
    if rotate:
        return action("rotate_validator_keys", node_id=node_id, identity_key=identity, bls_key=bls_key, bls_pop=pop)
    return action("add_validator", node_id=node_id, member=member, identity_key=identity, bls_key=bls_key,
                  bls_pop=pop, address=address, power=power)
