"""The TLS flags of the `ledger` client commands (tx, query, statement, governance):

    --tls-ca FILE     CA bundle that verifies the node's certificate   ($LEDGER_TLS_CA; default: the system store)
    --tls-cert FILE   client certificate for mutual TLS                ($LEDGER_TLS_CERT)
    --tls-key FILE    its private key, when not in --tls-cert          ($LEDGER_TLS_KEY)

They apply to an https:// `--node` URL; a flag wins over its environment variable (node/client/tls.py)."""

from __future__ import annotations

import argparse

from node.client.tls import ENV_CA, ENV_CERT, ENV_KEY, TlsOptions

__all__ = ["add_tls_flags", "node_tls"]


def add_tls_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tls-ca",
        metavar="FILE",
        help=f"CA bundle verifying the node's certificate (default ${ENV_CA}, else the system trust store)",
    )
    p.add_argument("--tls-cert", metavar="FILE", help=f"client certificate for mutual TLS (default ${ENV_CERT})")
    p.add_argument("--tls-key", metavar="FILE", help=f"the client certificate's key file (default ${ENV_KEY})")


def node_tls(args: argparse.Namespace) -> TlsOptions | None:
    """The TLS options of the flags, each unset one from the environment; None when no flag is given (the client
    then takes the environment's for an https:// URL and ignores it for http://)."""
    if not (args.tls_ca or args.tls_cert or args.tls_key):
        return None
    env = TlsOptions.from_env()
    cert = args.tls_cert or env.cert_file
    key = args.tls_key if (args.tls_key or args.tls_cert) else env.key_file
    return TlsOptions(args.tls_ca or env.ca_file, cert, key)
