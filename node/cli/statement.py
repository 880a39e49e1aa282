"""`ledger statement ACCOUNT --height H` (fetch a custody statement from a node) and
`ledger verify-statement FILE --genesis GENESIS` (verify one offline: no network; exit 1 on any tampering).

docs/custody-statements.md describes the document and every check.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from node.chain.statement import (
    MAX_STATEMENT_BYTES,
    StatementVerdict,
    TrustAnchor,
    statement_bytes,
    verify_statement_bytes,
)
from node.cli.passphrase import load_account_key
from node.cli.tls_flags import node_tls
from node.cli.tx import add_node_flags
from node.client.console import EXIT_FAILED, EXIT_INPUT, EXIT_OK, emit, fail, guarded
from node.client.errors import ClientError
from node.client.profile import resolve_target
from node.client.sync import LedgerClient


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("statement", help="fetch the custody statement of an account at a height",
                              description="Fetch a custody statement (a signed read) and write it in canonical "
                                          "form; optionally verify it against a genesis file right away.")
    p.add_argument("account", help="the account id (name@member)")
    p.add_argument("--height", type=int, help="the height (default: the node's latest certified height)")
    p.add_argument("--key", metavar="FILE", help="key file (or imported account) of the requester (self, custodian, auditor)")
    p.add_argument("--out", help="write the statement here (default: stdout)")
    p.add_argument("--genesis", help="verify the fetched statement against this genesis file before writing it "
                   "(default: the genesis the profile in force records)")
    add_node_flags(p)
    p.set_defaults(func=guarded(_fetch))
    v = subparsers.add_parser("verify-statement", help="verify a custody statement offline",
                              description="Verify a custody statement file against a genesis file, with no "
                                          "network. Exit 0: valid; 1: invalid or tampered; 2: unreadable input.")
    v.add_argument("file", help="the statement file (as written by `ledger statement`)")
    v.add_argument("--genesis", required=True, help="the chain's genesis file")
    v.set_defaults(func=guarded(_verify))


def _anchor(path: str) -> TrustAnchor:
    from node.chain.genesis import GenesisError, load_genesis

    try:
        return TrustAnchor.from_genesis(load_genesis(path))
    except GenesisError as exc:
        raise ClientError(exc.code, exc.message) from None


def _report(verdict: StatementVerdict, doc: dict | None) -> int:
    out = {"valid": verdict.ok, "code": verdict.code, "reason": verdict.reason, "account": verdict.account,
           "height": verdict.height}
    if verdict.ok and doc is not None:
        out["time"] = doc["time"]
        out["epoch"] = doc["validator_set"]["epoch"]
        out["epoch_changes"] = len(doc["validator_set"]["epoch_changes"])
        out["holdings"] = doc["holdings"]
        out["account_status"] = doc["account_status"]
    emit(out)
    return EXIT_OK if verdict.ok else EXIT_FAILED


def _verify(args: argparse.Namespace) -> int:
    anchor = _anchor(args.genesis)
    try:
        with open(args.file, "rb") as f:
            data = f.read(MAX_STATEMENT_BYTES + 1)
    except OSError as exc:
        return fail("bad_input", f"cannot read {args.file}: {exc.strerror}", exit_code=EXIT_INPUT)
    verdict = verify_statement_bytes(data, anchor)
    return _report(verdict, json.loads(data) if verdict.ok else None)


NOT_VERIFIED = ("not verified: no genesis given (pass --genesis FILE, use a profile that records the genesis, or "
                "check the file later: ledger verify-statement FILE --genesis GENESIS)")


def _fetch(args: argparse.Namespace) -> int:
    target = resolve_target(args.node, args.profile)
    genesis = args.genesis
    if genesis is None and target.profile is not None and target.profile.genesis \
            and os.path.isfile(target.profile.genesis):
        genesis = target.profile.genesis  # the network the profile names: its genesis is the trust anchor
    anchor = _anchor(genesis) if genesis else None
    key = load_account_key(args.key, args.profile) if args.key else None
    with LedgerClient(target.url, key, timeout=args.timeout, tls=node_tls(args)) as client:
        doc = client.statement(args.account, args.height)
    if not isinstance(doc, dict):
        raise ClientError("bad_response", "the node answered a statement that is not a JSON object")
    data = statement_bytes(doc)
    if anchor is not None:
        verdict = verify_statement_bytes(data, anchor)
        if not verdict.ok:
            return _report(verdict, None)
    if args.out:
        tmp = f"{args.out}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, args.out)
        summary: dict[str, object] = {"file": args.out, "bytes": len(data), "account": doc.get("account"),
                                      "height": doc.get("height")}
        if anchor is not None:
            summary.update(verified=True, genesis=genesis)
        else:
            summary["not_verified"] = NOT_VERIFIED
        emit(summary)
    else:
        sys.stdout.write(data.decode("ascii"))
        sys.stdout.flush()
        note = f"verified against {genesis}" if anchor is not None else NOT_VERIFIED
        print(f"# {note}", file=sys.stderr)
    return EXIT_OK
