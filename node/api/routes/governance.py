"""Governance and epochs (public reads): the voters, threshold and chain params; proposals; the current validator
set from ledger state; the epoch changes so far with the proofs light clients follow from the genesis set.

Submitting proposals, approvals and cancellations uses the transaction routes (operations `propose`, `approve`,
`cancel_proposal`; docs/protocol.md, "Governance and epochs")."""

from __future__ import annotations

from typing import Any, Final

from consensus.codec import CodecError
from consensus.messages import EpochChangeProof
from ledger import codes
from ledger.governance_state import chain_params_values
from ledger.jsonform import to_json
from ledger.operations import ACTION
from ledger.records import PROPOSAL_STATUS_NAMES, EpochRecord, GovernanceRecord, ProposalRecord, ProposalStatus
from ledger.schema import PROPOSAL_PATTERN, member_of
from ledger.state import decode_value
from ledger.state_keys import EPOCH_KEY, GOVERNANCE_KEY, proposal_key
from node.api import errors as e
from node.api.context import Call
from node.api.errors import ApiError
from node.api.routes.common import HEIGHT_QUERY, limit_param
from node.api.routing import Param, Route
from node.api.schemas import ref

MAX_EPOCH_PAGE: Final = 100
PROPOSAL_PARAM = Param("proposal_id", "path", {"type": "string", "pattern": f"^(?:{PROPOSAL_PATTERN})$",
                                                "maxLength": 64}, "a proposal id", True)
AFTER_EPOCH = Param("after", "query", {"type": "integer", "minimum": 0, "maximum": (1 << 63) - 1},
                    "list epoch changes after this epoch (the `next` of the previous page)")
AFTER_PROPOSAL = Param("after", "query", {"type": "string", "pattern": f"^(?:{PROPOSAL_PATTERN})$",
                                          "maxLength": 64}, "the `next` of the previous page (a proposal id)")


def _epoch_and_governance(call: Call, height: int | None) -> tuple[EpochRecord, GovernanceRecord, int]:
    epoch: EpochRecord | None
    epoch, at = call.ctx.record_at(EPOCH_KEY, height)
    governance: GovernanceRecord | None = call.ctx.record_at(GOVERNANCE_KEY, at)[0]
    if epoch is None or governance is None:
        raise ApiError(e.NOT_AVAILABLE, "this chain's state has no governance records", {"height": at})
    return epoch, governance, at


def validators_view(epoch: EpochRecord) -> list[dict[str, Any]]:
    return [
        {"index": i, "name": v.node_id, "member": v.member, "public_key": v.bls_key.hex(),
         "identity_key": v.identity_key.hex(), "address": v.address, "power": v.power}
        for i, v in enumerate(epoch.validators)
    ]


async def get_validators(call: Call) -> Any:
    """The validator set of the ledger's current epoch (the one that certifies the next block); when the ledger
    state names no validators (a chain whose genesis predates governance) the set the node's consensus runs with."""
    epoch: EpochRecord | None
    epoch, at = call.ctx.record_at(EPOCH_KEY, None)
    if epoch is None or not epoch.validators:
        number, views = call.ctx.facade.validators()
        return {
            "epoch": number,
            "start_height": None if epoch is None else epoch.start_height,
            "height": at,
            "validators": [
                {"index": v.index, "name": v.name, "member": None, "public_key": v.public_key.hex(),
                 "identity_key": None, "address": None, "power": v.power}
                for v in views
            ],
        }
    return {"epoch": epoch.epoch, "start_height": epoch.start_height, "height": at,
            "validators": validators_view(epoch)}


async def get_governance(call: Call) -> Any:
    epoch, governance, at = _epoch_and_governance(call, call.params["height"])
    return {
        "height": at,
        "epoch": epoch.epoch,
        "start_height": epoch.start_height,
        "voters": list(governance.voters),
        "threshold": governance.threshold,
        "params": chain_params_values(epoch.params),
        "validators": len(epoch.validators),
    }


def proposal_view(proposal_id: str, rec: ProposalRecord, governance: GovernanceRecord, height: int) -> dict[str, Any]:
    """A proposal as the API shows it. `status` adds "expired": open, but no approval can be included any more
    (the next block's height is past `expiry_height`)."""
    status = PROPOSAL_STATUS_NAMES[rec.status]
    if rec.status == ProposalStatus.OPEN and height >= rec.expiry_height:
        status = "expired"
    counted = [m for m in rec.approvals if m in governance.voters]
    return {
        "proposal_id": proposal_id,
        "height": height,
        "status": status,
        "proposer": rec.proposer,
        "proposer_member": member_of(rec.proposer),
        "actions": [to_json(ACTION, a) for a in rec.actions],
        "approvals": list(rec.approvals),
        "threshold": governance.threshold,
        "approvals_missing": 0 if rec.status != ProposalStatus.OPEN else max(0, governance.threshold - len(counted)),
        "expiry_height": rec.expiry_height,
        "created_height": rec.created_height,
        "closed_height": rec.closed_height or None,
    }


async def get_proposal(call: Call) -> Any:
    proposal_id = call.params["proposal_id"]
    rec: ProposalRecord | None
    rec, at = call.ctx.record_at(proposal_key(proposal_id), call.params["height"])
    if rec is None:
        raise ApiError(codes.PROPOSAL_NOT_FOUND, f"no proposal {proposal_id!r}", {"proposal_id": proposal_id},
                       status=404)
    _, governance, _ = _epoch_and_governance(call, at)
    return proposal_view(proposal_id, rec, governance, at)


async def list_proposals(call: Call) -> Any:
    ctx = call.ctx
    limit = call.params["limit"]
    after = call.params["after"]
    head = ctx.facade.head().height
    governance: GovernanceRecord | None = ctx.record(GOVERNANCE_KEY)
    if governance is None:
        raise ApiError(e.NOT_AVAILABLE, "this chain's state has no governance records", {"height": head})
    items: list[dict[str, Any]] = []
    it = ctx.store.iter_state(b"g", after=proposal_key(after) if after else None)
    try:
        for key, raw in it:
            pid = key[1:].decode("ascii")
            items.append(proposal_view(pid, decode_value(key, raw), governance, head))
            if len(items) == limit:
                break
    finally:
        it.close()
    return {"items": items, "next": items[-1]["proposal_id"] if len(items) == limit else None}


def epoch_change_view(epoch: int, raw: bytes | None) -> dict[str, Any]:
    """One ended epoch: the height of its epoch-ending block and the proof (hex EpochChangeProof) that certifies
    the next set. `proof` is null when this node has not stored it (it never is for a node that committed the
    block: the proof is written with it)."""
    if raw is None:
        return {"epoch": epoch, "end_height": None, "block_id": None, "next_epoch": epoch + 1,
                "next_start_height": None, "next_validators": [], "proof": None}
    try:
        proof = EpochChangeProof.decode(raw)
    except CodecError:
        raise ApiError(e.INTERNAL_ERROR, "a stored epoch-change proof does not decode", {"epoch": epoch}) from None
    assert proof.epoch == epoch, "epoch proof stored under another epoch"
    return {
        "epoch": epoch,
        "end_height": proof.cert.height,
        "block_id": proof.cert.block_id.hex(),
        "next_epoch": epoch + 1,
        "next_start_height": proof.cert.height + 1,
        "next_validators": [{"name": node_id.decode("utf-8", "replace"), "public_key": key.hex(), "power": power}
                            for node_id, key, _pop, power in proof.next_validators],
        "proof": raw.hex(),
    }


async def list_epochs(call: Call) -> Any:
    from node.chain.certified import epoch_proof_key

    ctx = call.ctx
    current: EpochRecord | None
    current, at = ctx.record_at(EPOCH_KEY, None)
    if current is None:
        raise ApiError(e.NOT_AVAILABLE, "this chain's state has no epoch record", {"height": at})
    limit = call.params["limit"]
    start = 0 if call.params["after"] is None else call.params["after"] + 1
    ended = range(start, min(current.epoch, start + limit))
    items = [epoch_change_view(n, ctx.store.get_extra(epoch_proof_key(n))) for n in ended]
    more = start + limit < current.epoch
    # `items` is the page (section 2 of docs/api.md); `epochs`, the same list, stays for clients written before
    return {"height": at, "current_epoch": current.epoch, "start_height": current.start_height, "items": items,
            "epochs": items, "next": items[-1]["epoch"] if items and more else None}


ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/validators", "getValidators", "The validator set of the current epoch", "governance",
          get_validators, response=ref("Validators"),
          description="From ledger state: the set that certifies blocks from `start_height` (after an epoch-ending "
                      "block, the next epoch's set). `public_key` is the BLS key, `identity_key` the Ed25519 "
                      "transport key."),
    Route("GET", "/v1/governance", "getGovernance", "Governance voters, approval threshold, chain params, epoch",
          "governance", get_governance, params=(HEIGHT_QUERY,), response=ref("Governance"),
          errors=(e.HEIGHT_UNKNOWN, e.HEIGHT_PRUNED, e.NOT_AVAILABLE)),
    Route("GET", "/v1/governance/proposals", "listProposals", "Governance proposals by id", "governance",
          list_proposals, params=(AFTER_PROPOSAL, limit_param(100, 1000)), response=ref("ProposalPage"),
          errors=(e.NOT_AVAILABLE,)),
    Route("GET", "/v1/governance/proposals/{proposal_id}", "getProposal",
          "A proposal: status, approvals, actions, expiry", "governance", get_proposal,
          params=(PROPOSAL_PARAM, HEIGHT_QUERY), response=ref("Proposal"),
          errors=(codes.PROPOSAL_NOT_FOUND, e.HEIGHT_UNKNOWN, e.HEIGHT_PRUNED, e.NOT_AVAILABLE),
          description="`status`: open, executed, cancelled, or expired (open, but the next block is past "
                      "`expiry_height`). Unknown ids answer 404 with the ledger code 603 PROPOSAL_NOT_FOUND."),
    Route("GET", "/v1/epochs", "listEpochs", "Epoch changes with the proofs light clients follow", "governance",
          list_epochs, params=(AFTER_EPOCH, limit_param(MAX_EPOCH_PAGE, MAX_EPOCH_PAGE)), response=ref("Epochs"),
          errors=(e.NOT_AVAILABLE,),
          description="Entry e ends epoch e: its epoch-ending block and the hex EpochChangeProof "
                      "(docs/consensus.md section 10). Follow them from the genesis set with "
                      "consensus.certificates.verify_epoch_chain; custody statements carry the same proofs."),
)
