"""`ledger tx ...`: build, sign and submit transactions (every operation kind), or sign offline.

    ledger tx transfer --asset BOND-A --legs '{"recipient": "bob@bank-b", "amount": 300}' --key alice.key
    ledger tx issue --asset BOND-A --recipient alice@bank-a --amount 1000 --key issuer.key --wait none
    ledger tx json ops.json --key a.key --key b.key          (operations / a whole body from a JSON file)
    ledger tx create-hold ... --offline --chain-id testnet --tx-expiry-height 900 --out tx.json
    ledger tx cosign tx.json --key buyer.key                  (add signatures: DvP signed by both parties)
    ledger tx submit tx.json                                  (submit signed bytes made elsewhere)

Each operation kind is a subcommand (`register-account`, `transfer`, `create-hold`, `settle`, ...) whose flags are its
fields (docs/protocol.md section 5): scalars as values, ids as strings, bin as hex, optional fields accept `none`,
lists repeat the flag (`--keys HEX --keys HEX`), lists of records take one JSON object per flag or one JSON array.
`--actor` defaults to the account of the first key. Without `--offline` the chain id and expiry come from the node.
Output: the transaction's status and receipt as readable text (amounts in the asset's units); `--json` prints it
as JSON. `--offline` prints the signed transaction as JSON (the input of `cosign` and `submit`).
Exit codes: docs in node/client/console.py (0 ok, 1 non-zero receipt, 2 bad input, 3 node refused / unreachable).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ledger.codec import Bin, Bool, Optional, Record, Seq, Str, StrMap, UInt, Variant, WireType
from ledger.transaction import Signature, SignedTransaction, sign_transaction
from node.chain.protocol import OPERATIONS
from node.cli.passphrase import load_account_key
from node.cli.render import show
from node.cli.tls_flags import add_tls_flags, node_tls
from node.client import builder
from node.client.amounts import parse_amount
from node.client.console import EXIT_FAILED, EXIT_INPUT, EXIT_OK, emit, fail, guarded
from node.client.errors import ClientError
from node.client.keys import AccountKey
from node.client.profile import resolve_target
from node.client.sync import LedgerClient

MAX_INPUT_BYTES = 1 << 20


def node_url(args: argparse.Namespace) -> str:
    """The node the command talks to (node/client/profile.py: --node, --profile, $LEDGER_URL, $LEDGER_PROFILE, the
    current profile)."""
    return resolve_target(args.node, args.profile).url


def add_node_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--node", "--url", dest="node", metavar="URL",
                   help="API base URL of the node (default: $LEDGER_URL, else the profile in force)")
    p.add_argument("--profile", help="use this client profile (default: $LEDGER_PROFILE, else the current one; "
                   "`ledger profile list`)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the node (default 30)")
    add_tls_flags(p)


def _add_signing_flags(p: argparse.ArgumentParser, keys_required: bool = True) -> None:
    p.add_argument("--key", action="append", default=[], metavar="FILE", required=keys_required,
                   help="key file, or an account whose key `ledger keys import` wrote, to sign with (repeat for several "
                   "signers or an M-of-N account)")
    p.add_argument("--signer", action="append", default=None, metavar="ACCOUNT",
                   help="declared signer (repeatable; default: every actor, and every settlement leg's sender)")
    p.add_argument("--nonce", type=int, help="body nonce (default random)")
    p.add_argument("--tx-expiry-height", type=int, help="last height the transaction may be included at "
                   "(default: node head + --lifetime)")
    p.add_argument("--lifetime", type=int, default=100, help="blocks until expiry when asking the node (default 100)")
    p.add_argument("--offline", action="store_true",
                   help="do not contact a node: print the signed transaction (needs --chain-id, --tx-expiry-height)")
    p.add_argument("--chain-id", help="chain id (required with --offline)")
    p.add_argument("--out", help="also write the signed transaction JSON to this file")
    _add_submit_flags(p)


def _add_amount_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--decimals", type=int, metavar="N",
                   help="the asset's decimals (default: asked from the node; needed with --offline for amounts "
                        "given in the asset's units)")
    p.add_argument("--base-units", action="store_true",
                   help="amounts are integers in base units as on the wire (no decimal conversion)")


def _add_submit_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", choices=("commit", "none"), default="commit",
                   help="wait for the receipt (default) or return once admitted")
    p.add_argument("--json", action="store_true", help="print the result as JSON (default: readable text)")
    add_node_flags(p)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tx", help="build, sign and submit transactions",
                                   description="Build a transaction from flags or JSON, sign it with key files, "
                                               "submit it (or print it with --offline).")
    sub = parser.add_subparsers(dest="tx_command", metavar="OPERATION", required=True)
    for kind in builder.OPERATION_KINDS:
        p = sub.add_parser(kind.replace("_", "-"), help=f"one {kind} operation", allow_abbrev=False)
        for name, t in builder.operation_fields(kind):
            if kind == "transfer" and name == "legs":
                p.add_argument("--legs", dest="f_legs", action="append", default=None, type=_json_value,
                               metavar="JSON", help='legs {"recipient": ..., "amount": ...} (amount: base units as '
                               'an integer, or the asset\'s units as a string "12.50"); repeatable, or one JSON '
                               "array; or use --to and --amount")
                p.add_argument("--to", metavar="ACCOUNT", help="one leg to this account (with --amount)")
                p.add_argument("--amount", dest="f_amount", metavar="AMOUNT",
                               help="with --to: in the asset's units, exact to its decimals (12.50)")
                continue
            _add_field_flag(p, name, t)
        if any(name == "amount" for name, _t in builder.operation_fields(kind)) or kind in ("transfer", "settle"):
            _add_amount_flags(p)
        _add_signing_flags(p)
        p.set_defaults(func=guarded(_run_kind), kind=kind)
    p = sub.add_parser("json", help="operations (or a body) from a JSON file", allow_abbrev=False)
    p.add_argument("file", help='JSON file ("-" = stdin): an operation, a list of operations, or '
                                '{"operations": [...], "signers"?, "nonce"?, "expiry_height"?, "chain_id"?}')
    _add_signing_flags(p)
    p.set_defaults(func=guarded(_run_json))
    p = sub.add_parser("cosign", help="add signatures to a signed transaction", allow_abbrev=False)
    p.add_argument("file", help="signed transaction: JSON printed by `ledger tx ... --offline`, or hex")
    p.add_argument("--key", action="append", required=True, metavar="FILE",
                   help="key file (or imported account) to add a signature with (repeatable)")
    p.add_argument("--submit", action="store_true", help="submit after signing (default: print it)")
    p.add_argument("--out", help="also write the signed transaction JSON to this file")
    _add_submit_flags(p)
    p.set_defaults(func=guarded(_run_cosign))
    p = sub.add_parser("submit", help="submit a signed transaction", allow_abbrev=False)
    p.add_argument("file", help="signed transaction: JSON printed by `ledger tx ... --offline`, or hex")
    _add_submit_flags(p)
    p.set_defaults(func=guarded(_run_submit))


# -- flags from the operation schema ---------------------------------------------------------------------------


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _scalar(t: WireType) -> Any:
    tt = type(t)
    if tt is UInt:
        return int
    if tt is Bool:
        return _boolean
    return str


def _boolean(text: str) -> bool:
    if text not in ("true", "false"):
        raise argparse.ArgumentTypeError("expected true or false")
    return text == "true"


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None


def _add_field_flag(p: argparse.ArgumentParser, name: str, t: WireType) -> None:
    tt = type(t)
    dest = "f_" + name
    if name == "actor":
        p.add_argument("--actor", dest=dest, metavar="ACCOUNT", help="acting account (default: the first key's account)")
    elif name == "amount" and tt is UInt:
        p.add_argument("--amount", dest=dest, required=True, metavar="AMOUNT",
                       help="in the asset's units, exact to its decimals: 12.50 (or base units with --base-units)")
    elif tt is Optional:
        inner = t.inner  # type: ignore[attr-defined]
        p.add_argument(_flag(name), dest=dest, default=None, metavar="VALUE|none",
                       help=f"optional {type(inner).__name__.lower()} (default none)")
    elif tt is Seq:
        item = t.item  # type: ignore[attr-defined]
        structured = type(item) in (Record, StrMap, Seq, Variant)
        p.add_argument(_flag(name), dest=dest, action="append", default=None,
                       type=_json_value if structured else _scalar(item),
                       metavar="JSON" if structured else ("HEX" if type(item) is Bin else "VALUE"),
                       required=t.min_len > 0,  # type: ignore[attr-defined]
                       help=(getattr(t, "doc", "") or name.replace("_", " ")) + ": repeatable"
                       + ("; a JSON object per flag, or one JSON array" if structured else ""))
    elif tt in (Record, StrMap):
        p.add_argument(_flag(name), dest=dest, type=_json_value, required=True, metavar="JSON",
                       help=f"a JSON object: {getattr(t, 'doc', '') or name}")
    elif tt is Str and t.min_bytes == 0:  # type: ignore[attr-defined]
        p.add_argument(_flag(name), dest=dest, default="", metavar=name.upper(), help=f"{t.doc} (default empty)")
    else:
        p.add_argument(_flag(name), dest=dest, type=_scalar(t), required=True,
                       metavar="HEX" if tt is Bin else name.upper(),
                       help=getattr(t, "doc", None) or name.replace("_", " "))


def _field_values(args: argparse.Namespace, kind: str, keys: list[AccountKey]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, t in builder.operation_fields(kind):
        v = getattr(args, "f_" + name)
        if name == "actor" and v is None:
            if not keys:
                raise ClientError("bad_input", "--actor is needed when no --key is given")
            v = keys[0].account
        elif type(t) is Optional:
            v = None if v is None or v == "none" else _optional_value(t.inner, v)  # type: ignore[attr-defined]
        elif type(t) is Seq:
            items = v or []
            if len(items) == 1 and isinstance(items[0], list):
                items = items[0]
            v = items
        out[name] = v
    return out


def _optional_value(t: WireType, text: str) -> Any:
    if type(t) is UInt:
        if not text.isdigit():
            raise ClientError("bad_input", f"expected an integer, got {text!r}")
        return int(text)
    return text


# -- running ---------------------------------------------------------------------------------------------------


def _keys(args: argparse.Namespace) -> list[AccountKey]:
    return [load_account_key(path, args.profile) for path in args.key]


def _finish(args: argparse.Namespace, ops: list[Any], keys: list[AccountKey], body_over: dict[str, Any]) -> int:
    signers = body_over.get("signers", args.signer)
    nonce = body_over.get("nonce", args.nonce)
    expiry = body_over.get("expiry_height", args.tx_expiry_height)
    chain_id = body_over.get("chain_id", args.chain_id)
    if args.offline:
        if chain_id is None or expiry is None:
            return fail("bad_input", "--offline needs --chain-id and --tx-expiry-height")
        body = builder.make_body(ops, chain_id=chain_id, expiry_height=expiry, signers=signers, nonce=nonce)
        tx = builder.sign(body, keys)
        return _print_tx(args, tx)
    with LedgerClient(node_url(args), timeout=args.timeout, chain_id=chain_id, tls=node_tls(args)) as client:
        body = client.body(ops, signers=signers, nonce=nonce, expiry_height=expiry, lifetime=args.lifetime)
        tx = builder.sign(body, keys)
        if args.out:
            _write_tx(args.out, tx)
        return _submit(client, args, tx)


def _print_tx(args: argparse.Namespace, tx: SignedTransaction) -> int:
    if args.out:
        _write_tx(args.out, tx)
    emit(builder.tx_to_json(tx))
    return EXIT_OK


def _write_tx(path: str, tx: SignedTransaction) -> None:
    try:
        with open(path, "w", encoding="ascii") as f:
            json.dump(builder.tx_to_json(tx), f, indent=2, sort_keys=True)
            f.write("\n")
    except OSError as exc:
        raise ClientError("bad_input", f"cannot write {path}: {exc.strerror}") from None


def _submit(client: LedgerClient, args: argparse.Namespace, tx: SignedTransaction) -> int:
    result = client.submit(tx, wait=args.wait, timeout=args.timeout, check=False)
    show({"tx_id": result.tx_id, "status": result.status, "duplicate": result.duplicate, "receipt": result.receipt},
         args.json, client)
    if result.receipt is not None and result.receipt.get("code") != 0:
        return EXIT_FAILED
    return EXIT_OK


def _run_kind(args: argparse.Namespace) -> int:
    keys = _keys(args)
    if args.kind == "transfer":
        _transfer_legs(args)
    values = _field_values(args, args.kind, keys)
    _convert_amounts(args, values)
    op = builder.operation(args.kind, **values)
    return _finish(args, [op], keys, {})


def _transfer_legs(args: argparse.Namespace) -> None:
    """`--to X --amount A` is one leg; otherwise --legs; never both."""
    if args.to is not None or args.f_amount is not None:
        if args.f_legs:
            raise ClientError("bad_input", "give either --to/--amount or --legs, not both")
        if args.to is None or args.f_amount is None:
            raise ClientError("bad_input", "--to and --amount go together")
        args.f_legs = [{"recipient": args.to, "amount": args.f_amount}]
    elif not args.f_legs:
        raise ClientError("bad_input", "a transfer needs --to ACCOUNT --amount AMOUNT, or --legs JSON")


def _convert_amounts(args: argparse.Namespace, values: dict[str, Any]) -> None:
    """Amounts in the asset's units -> integer base units, exactly (node/client/amounts.py). The decimals come from
    --decimals or the node (one read per asset); --base-units takes integers as they are."""
    cache: dict[str, int] = {}

    def decimals(asset: str) -> int:
        if args.decimals is not None:
            return int(args.decimals)
        if asset not in cache:
            if args.offline:
                raise ClientError("bad_input", "--offline with an amount in the asset's units needs --decimals N "
                                  "(or --base-units)")
            with LedgerClient(node_url(args), timeout=args.timeout, tls=node_tls(args)) as client:
                cache[asset] = int(client.asset(asset)["definition"]["decimals"])
        return cache[asset]

    def convert(text: Any, asset: Any, what: str) -> Any:
        if not isinstance(text, str):
            return text  # a JSON integer in legs: base units, as on the wire
        if args.base_units:
            if not text.isdigit():
                raise ClientError("bad_input", f"{what} {text!r}: --base-units takes a whole number")
            return int(text)
        if not isinstance(asset, str):
            raise ClientError("bad_input", f"{what}: no asset to take the decimals from")
        return parse_amount(text, decimals(asset), what=what)

    if "amount" in values:
        values["amount"] = convert(values["amount"], values.get("asset"), "--amount")
    for i, leg in enumerate(values.get("legs") or []):
        if isinstance(leg, dict) and "amount" in leg:
            what = "--amount" if getattr(args, "to", None) is not None else f"legs[{i}].amount"
            leg["amount"] = convert(leg["amount"], leg.get("asset", values.get("asset")), what)


def _read_input(path: str) -> bytes:
    try:
        if path == "-":
            data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        else:
            with open(path, "rb") as f:
                data = f.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise ClientError("bad_input", f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_INPUT_BYTES:
        raise ClientError("bad_input", f"{path} is larger than {MAX_INPUT_BYTES} bytes")
    return data


def _run_json(args: argparse.Namespace) -> int:
    try:
        doc = json.loads(_read_input(args.file))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ClientError("bad_input", f"{args.file} is not JSON: {exc}") from None
    over: dict[str, Any] = {}
    if isinstance(doc, dict) and "operations" in doc:
        unknown = set(doc) - {"operations", "signers", "nonce", "expiry_height", "chain_id", "version"}
        if unknown:
            raise ClientError("bad_input", f"unknown fields {sorted(unknown)}")
        over = {k: doc[k] for k in ("signers", "nonce", "expiry_height", "chain_id") if k in doc}
        doc = doc["operations"]
    items = doc if isinstance(doc, list) else [doc]
    ops = [builder.operation_from_json(item) for item in items]
    return _finish(args, ops, _keys(args), over)


def read_signed_tx(path: str) -> SignedTransaction:
    """A signed transaction from a file: the JSON of `ledger tx --offline`, or hex, or the raw bytes."""
    data = _read_input(path)
    text = data.strip()
    try:
        if text.startswith(b"{"):
            obj = json.loads(text)
            if not isinstance(obj, dict) or not isinstance(obj.get("signed_tx_hex"), str):
                raise ClientError("bad_input", f"{path}: JSON without signed_tx_hex")
            return builder.tx_from_bytes(bytes.fromhex(obj["signed_tx_hex"]))
        return builder.tx_from_bytes(bytes.fromhex(text.decode("ascii")))
    except (ValueError, UnicodeDecodeError):
        return builder.tx_from_bytes(data)


def _run_cosign(args: argparse.Namespace) -> int:
    tx = read_signed_tx(args.file)
    keys = _keys(args)
    stray = sorted({k.account for k in keys} - set(tx.body.signers))
    if stray:
        return fail("bad_input", f"keys of {', '.join(stray)}, not declared signers {list(tx.body.signers)}")
    new = sign_transaction(tx.body, [(k.account, k.signing_key) for k in keys], operations=OPERATIONS)
    merged: dict[tuple[str, bytes], Signature] = {(s.account, s.public_key): s for s in tx.signatures}
    merged.update({(s.account, s.public_key): s for s in new.signatures})
    assert new.body_bytes == tx.body_bytes
    tx = SignedTransaction(tx.body, tx.body_bytes, tuple(merged[k] for k in sorted(merged)), tx.tx_id)
    if not args.submit:
        return _print_tx(args, tx)
    if args.out:
        _write_tx(args.out, tx)
    with LedgerClient(node_url(args), timeout=args.timeout, tls=node_tls(args)) as client:
        return _submit(client, args, tx)


def _run_submit(args: argparse.Namespace) -> int:
    tx = read_signed_tx(args.file)
    with LedgerClient(node_url(args), timeout=args.timeout, tls=node_tls(args)) as client:
        return _submit(client, args, tx)


__all__ = ["EXIT_INPUT", "add_node_flags", "node_url", "read_signed_tx", "register"]
