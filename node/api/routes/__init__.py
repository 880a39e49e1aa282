"""The API's endpoints, one module per area; `ALL_ROUTES` is the route table the app and the OpenAPI document use."""

from __future__ import annotations

from node.api.routes import accounts, assets, blocks, catalog, changes, events, governance, proofs, signing, status, tx
from node.api.routing import Route

__all__ = ["ALL_ROUTES"]

ALL_ROUTES: tuple[Route, ...] = (
    *tx.ROUTES,
    *accounts.ROUTES,
    *assets.ROUTES,
    *blocks.ROUTES,
    *changes.ROUTES,
    *proofs.ROUTES,
    *events.ROUTES,
    *governance.ROUTES,
    *status.ROUTES,
    *catalog.ROUTES,
    *signing.ROUTES,
)
