"""How a node serves its API, from its config: `api_serving(config, chain_id)` -> (ApiConfig, ssl context or None).

It refuses (ConfigError `api_plain_http`) to serve plain HTTP on a non-loopback address of a chain that is not a
local network (testnet-..., dev-...) unless the config says `[api] allow_plain_http = true`, and it builds the TLS
context of `[api.tls]` (ConfigError when a file cannot be loaded). `ledger node run` and the in-process testnet call
it before they listen."""

from __future__ import annotations

import ssl

from node.api.context import ApiConfig
from node.api.tls import TlsConfigError, plain_http_refusal
from node.validator.config import ConfigError, NodeConfig

__all__ = ["api_serving"]


def api_serving(config: NodeConfig, chain_id: str) -> tuple[ApiConfig, ssl.SSLContext | None]:
    tls = config.api_tls
    if config.api_listen is not None:
        refusal = plain_http_refusal(chain_id, config.api_listen[0], tls, config.api_allow_plain_http)
        if refusal is not None:
            raise ConfigError("api_plain_http", refusal)
    context = None
    if tls is not None:
        try:
            context = tls.server_context()
        except TlsConfigError as exc:
            raise ConfigError(exc.code, exc.message) from None
    members = tls.members if tls is not None and tls.mutual else None
    return ApiConfig(open_reads=config.api_open_reads, client_members=members), context
