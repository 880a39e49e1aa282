"""Who signed what (public): a block's commit certificate decoded into its headers and signer set, and the signing
record of the validators over the last blocks.

The certificate of block h is the stored `consensus.messages.CommitCertificate` (docs/consensus.md); its quorum
certificate's bitmap names signers by their index in the validator set of the certificate's epoch, which this module
resolves to node ids: the ledger's current epoch record, the node's consensus set, or the epoch-change proof that
ended the previous epoch (the same proofs `GET /v1/epochs` serves).
"""

from __future__ import annotations

from typing import Any, Final

from consensus.codec import CodecError
from consensus.messages import CommitCertificate, EpochChangeProof
from consensus.validators import bitmap_indexes
from ledger.records import EpochRecord
from ledger.state_keys import EPOCH_KEY
from node.api import errors as e
from node.api.context import ApiContext, Call
from node.api.errors import ApiError
from node.api.routes.blocks import HEIGHT_PATH
from node.api.routes.common import limit_param
from node.api.routing import Route
from node.api.schemas import HASH, HEIGHT, INT
from node.chain.certified import cert_key, epoch_proof_key

__all__ = ["MAX_SIGNING_WINDOW", "ROUTES", "certificate_view"]

MAX_SIGNING_WINDOW: Final = 100  # blocks GET /v1/validators/signing looks back (docs/limits.md)

ValidatorSet = tuple[tuple[str, int], ...]  # (node id, power) in signer-bitmap order


class EpochSets:
    """The validator sets of epochs, looked up once per request."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self._sets: dict[int, ValidatorSet | None] = {}

    def get(self, epoch: int) -> ValidatorSet | None:
        if epoch not in self._sets:
            self._sets[epoch] = self._load(epoch)
        return self._sets[epoch]

    def _load(self, epoch: int) -> ValidatorSet | None:
        ctx = self.ctx
        current: EpochRecord | None = ctx.record(EPOCH_KEY)
        if current is not None and current.epoch == epoch and current.validators:
            return tuple((v.node_id, v.power) for v in current.validators)
        number, views = ctx.facade.validators()
        if number == epoch and views:
            return tuple((v.name, v.power) for v in views)
        if epoch >= 1:
            raw = ctx.store.get_extra(epoch_proof_key(epoch - 1))
            if raw is not None:
                try:
                    proof = EpochChangeProof.decode(raw)
                except CodecError:
                    return None
                return tuple(
                    (node_id.decode("utf-8", "replace"), power) for node_id, _key, _pop, power in proof.next_validators
                )
            return None
        try:
            genesis: EpochRecord | None = ctx.record_at(EPOCH_KEY, 0)[0]
        except ApiError:  # pruned
            return None
        return None if genesis is None else tuple((v.node_id, v.power) for v in genesis.validators)


def _name(vset: ValidatorSet | None, index: int) -> str | None:
    return vset[index][0] if vset is not None and 0 <= index < len(vset) else None


def _load_certificate(ctx: ApiContext, height: int) -> CommitCertificate | None:
    raw = ctx.store.get_extra(cert_key(height))
    if raw is None:
        return None
    try:
        return CommitCertificate.decode(raw)
    except CodecError:
        raise ApiError(e.INTERNAL_ERROR, "a stored commit certificate does not decode", {"height": height}) from None


def certificate_view(cert: CommitCertificate, sets: EpochSets) -> dict[str, Any]:
    """A commit certificate in JSON: the certified block, the chain of headers that commits it, and the quorum
    certificate's signers by node id (null names when this node cannot resolve the epoch's set)."""
    qc = cert.qc
    vset = sets.get(qc.epoch)
    indexes = bitmap_indexes(qc.signers)
    signer_power = None if vset is None else sum(vset[i][1] for i in indexes if i < len(vset))
    return {
        "height": cert.height,
        "block_id": cert.block_id.hex(),
        "epoch": qc.epoch,
        "state_root": cert.state_root.hex(),
        "headers": [
            {
                "height": h.height,
                "round": h.round,
                "epoch": h.epoch,
                "block_id": h.id.hex(),
                "parent_id": h.parent_id.hex(),
                "proposer": h.proposer,
                "proposer_name": _name(sets.get(h.epoch), h.proposer),
            }
            for h in cert.headers
        ],
        "qc": {
            "epoch": qc.epoch,
            "round": qc.round,
            "block_id": qc.block_id.hex(),
            "signers": qc.signers.hex(),
            "signature": qc.signature.hex(),
        },
        "signers": [{"index": i, "name": _name(vset, i)} for i in indexes],
        "validators": None
        if vset is None
        else [{"index": i, "name": n, "power": p, "signed": i in indexes} for i, (n, p) in enumerate(vset)],
        "signer_power": signer_power,
        "total_power": None if vset is None else sum(p for _, p in vset),
    }


async def get_certificate(call: Call) -> Any:
    ctx = call.ctx
    height = call.params["height"]
    head = ctx.facade.head().height
    if height > head:
        raise ApiError(e.BLOCK_NOT_FOUND, details={"height": height, "head": head})
    cert = _load_certificate(ctx, height)
    if cert is None:
        raise ApiError(e.NOT_AVAILABLE, "no commit certificate stored for this height", {"height": height})
    return certificate_view(cert, EpochSets(ctx))


async def get_signing(call: Call) -> Any:
    """For the last `limit` blocks: each block's proposer and signers; per validator, how many of those blocks it
    signed and proposed and the last height it signed."""
    ctx = call.ctx
    head = ctx.facade.head().height
    limit = call.params["limit"]
    first = max(1, head - limit + 1)
    sets = EpochSets(ctx)
    blocks: list[dict[str, Any]] = []
    tally: dict[str, dict[str, Any]] = {}
    current: EpochRecord | None = ctx.record(EPOCH_KEY)
    current_set = None if current is None else sets.get(current.epoch)
    for name, _power in current_set or ():
        tally[name] = {"name": name, "signed": 0, "proposed": 0, "eligible": 0, "last_signed": None}
    for height in range(first, head + 1):
        cert = _load_certificate(ctx, height)
        if cert is None:
            continue
        view = certificate_view(cert, sets)
        signers = [s["name"] for s in view["signers"] if s["name"] is not None]
        proposer = view["headers"][0]["proposer_name"]
        blocks.append(
            {
                "height": height,
                "epoch": view["epoch"],
                "round": cert.headers[0].round,
                "proposer": proposer,
                "signers": signers,
                "signer_power": view["signer_power"],
                "total_power": view["total_power"],
            }
        )
        for v in view["validators"] or ():
            entry = tally.setdefault(
                v["name"], {"name": v["name"], "signed": 0, "proposed": 0, "eligible": 0, "last_signed": None}
            )
            entry["eligible"] += 1
            if v["signed"]:
                entry["signed"] += 1
                entry["last_signed"] = height
        if proposer is not None and proposer in tally:
            tally[proposer]["proposed"] += 1
    return {
        "height": head,
        "from_height": first,
        "to_height": head,
        "blocks": blocks,
        "validators": list(tally.values()),
    }


def _obj(props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


_HEX = {"type": "string", "pattern": "^(?:[0-9a-f]{2})*$"}
_NAME_OR_NULL = {"type": ["string", "null"]}
_INT_OR_NULL = {"type": ["integer", "null"], "minimum": 0}
CERTIFICATE = _obj(
    {
        "height": HEIGHT,
        "block_id": HASH,
        "epoch": INT,
        "state_root": HASH,
        "headers": {
            "type": "array",
            "items": _obj(
                {
                    "height": HEIGHT,
                    "round": INT,
                    "epoch": INT,
                    "block_id": HASH,
                    "parent_id": HASH,
                    "proposer": INT,
                    "proposer_name": _NAME_OR_NULL,
                }
            ),
        },
        "qc": _obj({"epoch": INT, "round": INT, "block_id": HASH, "signers": _HEX, "signature": _HEX}),
        "signers": {"type": "array", "items": _obj({"index": INT, "name": _NAME_OR_NULL})},
        "validators": {
            "type": ["array", "null"],
            "items": _obj({"index": INT, "name": {"type": "string"}, "power": INT, "signed": {"type": "boolean"}}),
        },
        "signer_power": _INT_OR_NULL,
        "total_power": _INT_OR_NULL,
    }
)
SIGNING = _obj(
    {
        "height": HEIGHT,
        "from_height": HEIGHT,
        "to_height": HEIGHT,
        "blocks": {
            "type": "array",
            "items": _obj(
                {
                    "height": HEIGHT,
                    "epoch": INT,
                    "round": INT,
                    "proposer": _NAME_OR_NULL,
                    "signers": {"type": "array", "items": {"type": "string"}},
                    "signer_power": _INT_OR_NULL,
                    "total_power": _INT_OR_NULL,
                }
            ),
        },
        "validators": {
            "type": "array",
            "items": _obj(
                {
                    "name": {"type": "string"},
                    "signed": INT,
                    "proposed": INT,
                    "eligible": INT,
                    "last_signed": _INT_OR_NULL,
                }
            ),
        },
    }
)

ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/v1/blocks/{height}/certificate",
        "getBlockCertificate",
        "A block's commit certificate decoded: headers, quorum certificate, signer set",
        "blocks",
        get_certificate,
        params=(HEIGHT_PATH,),
        response=CERTIFICATE,
        errors=(e.BLOCK_NOT_FOUND, e.NOT_AVAILABLE),
        description="The decoded form of `GET /v1/blocks/{height}`'s `certificate`. `signers` are the validators "
        "whose BLS signatures the quorum certificate aggregates (bitmap order of the epoch's set); "
        "names are null when this node cannot resolve that epoch's set. 404 `API_NOT_AVAILABLE` for "
        "the genesis block and blocks whose certificate this node did not keep.",
    ),
    Route(
        "GET",
        "/v1/validators/signing",
        "getValidatorSigning",
        "Which validators signed and proposed the last blocks",
        "governance",
        get_signing,
        params=(limit_param(20, MAX_SIGNING_WINDOW),),
        response=SIGNING,
        description="Over the last `limit` blocks (at most 100) with a stored certificate: each block's "
        "proposer and commit-certificate signers; per validator (the current set first) the blocks "
        "it signed, proposed, and was in the set for (`eligible`), and the last height it signed.",
    ),
)
