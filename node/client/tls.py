"""TLS options of the SDK and the `ledger` client commands (docs/sdk.md, "HTTPS and client certificates").

    tls = TlsOptions(ca_file="consortium-ca.pem", cert_file="bank-a-client.pem", key_file="bank-a-client.key")
    client = LedgerClient("https://10.0.0.5:8100", key, tls=tls)

`ca_file` is the CA bundle that verifies the node's certificate (None: the system's trust store); `cert_file` and
`key_file` are the client certificate and its key for mutual TLS (`key_file` None: the key is in `cert_file`). The
node's certificate is always verified, host name included; there is no switch to turn that off.

`TlsOptions.from_env()` reads LEDGER_TLS_CA, LEDGER_TLS_CERT and LEDGER_TLS_KEY (empty = unset). A client built
without explicit options uses them for https:// URLs; http:// URLs ignore them (and refuse explicit options).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from node.client.errors import ClientError

__all__ = ["ENV_CA", "ENV_CERT", "ENV_KEY", "TlsOptions"]

ENV_CA: Final = "LEDGER_TLS_CA"
ENV_CERT: Final = "LEDGER_TLS_CERT"
ENV_KEY: Final = "LEDGER_TLS_KEY"


@dataclass(frozen=True, slots=True)
class TlsOptions:
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def __post_init__(self) -> None:
        if self.key_file is not None and self.cert_file is None:
            raise ClientError("bad_input", "a client key file without a client certificate")

    @property
    def empty(self) -> bool:
        return self.ca_file is None and self.cert_file is None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TlsOptions:
        env = os.environ if environ is None else environ
        return cls(env.get(ENV_CA) or None, env.get(ENV_CERT) or None, env.get(ENV_KEY) or None)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context: TLS 1.2 or newer, the server's certificate and host name verified against `ca_file`
        (or the system store), the client certificate loaded when given."""
        try:
            ctx = ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ClientError("tls_config", f"cannot load the CA bundle {self.ca_file}: {exc}") from None
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert_file is not None:
            try:
                ctx.load_cert_chain(self.cert_file, self.key_file)
            except (OSError, ssl.SSLError) as exc:
                raise ClientError(
                    "tls_config",
                    f"cannot load the client certificate {self.cert_file}"
                    f"{f' with key {self.key_file}' if self.key_file else ''}: {exc}",
                ) from None
        return ctx
