"""`ledger governance ...`: propose, approve and cancel governance proposals; show governance state and epochs.

    ledger governance propose --id onboard-m4 --action '{"kind": "add_member", "member": "m4", "name": "Member 4",
                              "voter": true}' --action "$(ledger testnet add-node --print-action)" --key gov-m0.key
    ledger governance approve onboard-m4 --key gov-m1.key          (M of N voting members: the last one executes it)
    ledger governance cancel onboard-m4 --key gov-m0.key
    ledger governance show [onboard-m4]                            (the governance state, or one proposal)
    ledger governance epochs                                       (epoch changes with their proofs)

Actions are JSON objects in the form of docs/protocol.md ("Governance and epochs"): `--action` repeats, or takes a
JSON array; `--actions-file F` reads an array from a file. The signing key's account must hold the governor role
and belong to a voting member. Transactions are signed with the key files and submitted to `--node` like `ledger tx`
(the chain id and the transaction expiry come from the node). Output: the receipt and the proposal afterwards, as readable text (`--json`: JSON).
Exit codes: node/client/console.py (0 ok, 1 non-zero receipt, 2 bad input, 3 node refused / unreachable).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ledger.operations import Operation
from node.cli.passphrase import load_account_key
from node.cli.render import show
from node.cli.tls_flags import node_tls
from node.cli.tx import add_node_flags, node_url
from node.client import builder
from node.client.console import EXIT_FAILED, EXIT_OK, guarded
from node.client.errors import ApiError, ClientError
from node.client.keys import AccountKey
from node.client.proposals import approve, cancel_proposal, parse_actions, propose
from node.client.sync import LedgerClient

DEFAULT_PROPOSAL_LIFETIME = 1000  # blocks
MAX_ACTIONS_FILE_BYTES = 1 << 20


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("governance", help="propose, approve and inspect governance changes",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="governance_command", metavar="ACTION", required=True)

    p = sub.add_parser("propose", help="propose actions (add a member or validator, rotate keys, ...)")
    p.add_argument("--id", dest="proposal_id", required=True, help="the proposal id (unique, never reused)")
    p.add_argument("--action", action="append", default=[], metavar="JSON",
                   help="an action as JSON (repeat, or give a JSON array)")
    p.add_argument("--actions-file", metavar="FILE", help="a JSON array of actions")
    p.add_argument("--expiry-height", type=int, help="last height at which approvals count "
                   "(default: head + --expires-in)")
    p.add_argument("--expires-in", type=int, default=DEFAULT_PROPOSAL_LIFETIME,
                   help=f"blocks until the proposal expires (default {DEFAULT_PROPOSAL_LIFETIME})")
    _signing(p)
    p.set_defaults(func=guarded(_propose))

    a = sub.add_parser("approve", help="approve an open proposal for the key's member")
    a.add_argument("proposal_id", help="the proposal id")
    _signing(a)
    a.set_defaults(func=guarded(_approve))

    c = sub.add_parser("cancel", help="withdraw an open proposal (a governor of the proposing member)")
    c.add_argument("proposal_id", help="the proposal id")
    _signing(c)
    c.set_defaults(func=guarded(_cancel))

    s = sub.add_parser("show", help="the governance state (voters, threshold, params, epoch) or one proposal")
    s.add_argument("proposal_id", nargs="?", help="a proposal id (default: the governance state)")
    s.add_argument("--height", type=int, help="read at this height (default: the latest)")
    s.add_argument("--json", action="store_true", help="print JSON (default: readable text)")
    add_node_flags(s)
    s.set_defaults(func=guarded(_show))

    e = sub.add_parser("epochs", help="the epoch changes so far, with the proofs light clients follow")
    e.add_argument("--after", type=int, help="list epoch changes after this epoch")
    e.add_argument("--limit", type=int, help="at most this many epoch changes")
    e.add_argument("--json", action="store_true", help="print JSON (default: readable text)")
    add_node_flags(e)
    e.set_defaults(func=guarded(_epochs))


def _signing(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key", required=True, metavar="FILE", help="key file (or imported account) of a governor")
    p.add_argument("--actor", metavar="ACCOUNT", help="acting account (default: the key's account)")
    p.add_argument("--lifetime", type=int, default=100, help="blocks until the transaction expires (default 100)")
    p.add_argument("--wait", choices=("commit", "none"), default="commit",
                   help="wait for the receipt (default) or return once admitted")
    p.add_argument("--json", action="store_true", help="print the result as JSON (default: readable text)")
    add_node_flags(p)


def _read_actions(args: argparse.Namespace) -> list[Any]:
    items: list[Any] = list(args.action)
    if args.actions_file:
        try:
            with open(args.actions_file, "rb") as f:
                data = f.read(MAX_ACTIONS_FILE_BYTES + 1)
        except OSError as exc:
            raise ClientError("bad_input", f"cannot read {args.actions_file}: {exc.strerror}") from None
        if len(data) > MAX_ACTIONS_FILE_BYTES:
            raise ClientError("bad_input", f"{args.actions_file} is larger than {MAX_ACTIONS_FILE_BYTES} bytes")
        try:
            items.append(json.loads(data))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ClientError("bad_input", f"{args.actions_file} is not JSON: {exc}") from None
    return items


def _submit(args: argparse.Namespace, client: LedgerClient, key: AccountKey, op: Operation) -> int:
    body = client.body([op], lifetime=args.lifetime)
    tx = builder.sign(body, [key])
    result = client.submit(tx, wait=args.wait, timeout=args.timeout, check=False)
    out: dict[str, Any] = {"tx_id": result.tx_id, "status": result.status, "duplicate": result.duplicate,
                           "receipt": result.receipt}
    if result.receipt is not None:
        try:
            out["proposal"] = client.proposal(op.proposal_id)  # type: ignore[union-attr]
        except ApiError:
            out["proposal"] = None
    show(out, args.json, client)
    if result.receipt is not None and result.receipt.get("code") != 0:
        return EXIT_FAILED
    return EXIT_OK


def _propose(args: argparse.Namespace) -> int:
    key = load_account_key(args.key, args.profile)
    actions = parse_actions(_read_actions(args))
    with LedgerClient(node_url(args), timeout=args.timeout, tls=node_tls(args)) as client:
        expiry = args.expiry_height
        if expiry is None:
            if args.expires_in < 1:
                raise ClientError("bad_input", "--expires-in must be at least 1")
            expiry = client.head_height() + args.expires_in
        op = propose(args.actor or key.account, args.proposal_id, actions, expiry)
        return _submit(args, client, key, op)


def _approve(args: argparse.Namespace) -> int:
    key = load_account_key(args.key, args.profile)
    with LedgerClient(node_url(args), timeout=args.timeout, tls=node_tls(args)) as client:
        return _submit(args, client, key, approve(args.actor or key.account, args.proposal_id))


def _cancel(args: argparse.Namespace) -> int:
    key = load_account_key(args.key, args.profile)
    with LedgerClient(node_url(args), timeout=args.timeout, tls=node_tls(args)) as client:
        return _submit(args, client, key, cancel_proposal(args.actor or key.account, args.proposal_id))


def _show(args: argparse.Namespace) -> int:
    with LedgerClient(node_url(args), timeout=args.timeout, tls=node_tls(args)) as client:
        if args.proposal_id:
            show(client.proposal(args.proposal_id, args.height), args.json, client)
        else:
            show(client.governance(args.height), args.json, client)
    return EXIT_OK


def _epochs(args: argparse.Namespace) -> int:
    with LedgerClient(node_url(args), timeout=args.timeout, tls=node_tls(args)) as client:
        page = client.epochs(args.after, args.limit)
        if not args.json and page.get("epochs") == page.get("items"):
            page = {k: v for k, v in page.items() if k != "epochs"}  # the deprecated alias: the same list again
        show(page, args.json, client)
    return EXIT_OK
