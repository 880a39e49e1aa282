"""The node's HTTP API (docs/api.md): `create_app(facade, ApiConfig(...))` over a `NodeFacade`."""

from node.api.app import create_app
from node.api.context import ApiConfig
from node.api.facade import AdmissionView, BlockView, CommitNotice, HeadInfo, NodeFacade, PeerView, ValidatorView
from node.api.limits import ApiLimits

__all__ = [
    "AdmissionView",
    "ApiConfig",
    "ApiLimits",
    "BlockView",
    "CommitNotice",
    "HeadInfo",
    "NodeFacade",
    "PeerView",
    "ValidatorView",
    "create_app",
]
