"""The Python client SDK of the ledger (docs/sdk.md).

    from node.client import LedgerClient, AccountKey, operation, load_key, verify_statement
    from node.client import proposals         # propose / approve / cancel_proposal and governance actions
"""

from node.chain.statement import StatementVerdict, TrustAnchor, load_trust_anchor, statement_bytes, verify_statement
from node.client import proposals
from node.client.aio import AsyncLedgerClient, StreamItem, SubmitResult
from node.client.builder import (
    OPERATION_KINDS,
    make_body,
    operation,
    operation_from_json,
    operation_to_json,
    required_signers,
    sign,
    tx_from_bytes,
    tx_to_json,
)
from node.client.errors import ApiError, ClientError, LedgerClientError, TransactionFailed
from node.client.keys import AccountKey, load_key, save_key
from node.client.sync import LedgerClient
from node.client.tls import TlsOptions
from node.client.verify import verify_certificate, verify_state_proof

__all__ = [
    "OPERATION_KINDS",
    "AccountKey",
    "ApiError",
    "AsyncLedgerClient",
    "ClientError",
    "LedgerClient",
    "LedgerClientError",
    "StatementVerdict",
    "StreamItem",
    "SubmitResult",
    "TlsOptions",
    "TransactionFailed",
    "TrustAnchor",
    "load_key",
    "load_trust_anchor",
    "make_body",
    "operation",
    "operation_from_json",
    "operation_to_json",
    "proposals",
    "required_signers",
    "save_key",
    "sign",
    "statement_bytes",
    "tx_from_bytes",
    "tx_to_json",
    "verify_certificate",
    "verify_state_proof",
    "verify_statement",
]
