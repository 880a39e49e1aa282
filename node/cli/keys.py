"""`ledger keys new|show|rotate`: account key files (node/client/keys.py) and node key files (node/validator/keyfile.py).

    ledger keys new --account ID --out FILE      a fresh account key, sealed under a passphrase
                    (--passphrase-file F | --passphrase-env V | --passphrase-prompt | --plaintext-keys)
    ledger keys show FILE [--pop] [--member M --address HOST:PORT --power N]
                                                 an account key's public key; for a node key file its node id and
                                                 public keys, with --pop the BLS proof of possession, and with
                                                 --member the add_validator governance action for it
    ledger keys import --accounts .testnet/accounts.json     the seeds of a testnet's accounts file (default: the
                                                 profile's), written as key files into the profile's key folder
    ledger keys import --seed HEX --account ID [--out FILE]
    ledger keys list                             the key files in the profile's key folder
    ledger keys rotate --keys NODE_KEYS [--force]
                                                 fresh keys for the same node, written beside the key file
                                                 (node_keys.next.json); prints the rotate_validator_keys action
    ledger keys seal FILE --out NEW (--passphrase-file F | --passphrase-env V | --passphrase-prompt)
                                                 a sealed copy of a plaintext key file (node or account, version 1
                                                 or 2); the operator replaces the plaintext file with it

A rotated node keeps running on its current keys; from the epoch whose validator record names the new ones (after
the proposal executes) it signs and connects with them, reading the next-keys file then (no restart needed). Keep
both files: the node picks, in every epoch, the keys its record names. The next keys get the protection of the
current ones: sealed under the same passphrase (give it with --passphrase-file/-env/-prompt), or plaintext.
"""

from __future__ import annotations

import argparse
import json
import os

from node.cli.passphrase import add_passphrase_options, kdf_cost, passphrase_from_args
from node.client.console import EXIT_OK, emit, guarded
from node.client.errors import ClientError
from node.client.keys import MAX_KEY_FILE_BYTES, AccountKey, key_file_info, load_key, save_key
from node.client.keystore import COST_LEVELS, DEFAULT_COST_LEVEL, PROTECTION_PASSPHRASE
from node.client.profile import ProfileStore, current_profile
from node.validator.keyfile import (
    KEYS_FORMATS,
    KeyFileError,
    NodeKeys,
    load_keys,
    next_keys_path,
    read_key_file_info,
    rotate_keys,
    write_keys,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("keys", help="create, show and rotate key files",
                                   description="Ed25519 account keys and node keys in JSON key files (mode 0600).")
    sub = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    new = sub.add_parser("new", help="generate a key for an account and write it to a file")
    new.add_argument("--account", required=True, help="the account id the key signs for (name@member)")
    new.add_argument("--out", required=True, help="key file to create (refuses to overwrite)")
    new.add_argument("--force", action="store_true", help="overwrite an existing file")
    add_passphrase_options(new, creating=True)
    new.set_defaults(func=guarded(_new))
    show = sub.add_parser("show", help="print the public parts of an account or node key file (never a secret)")
    show.add_argument("file", help="an account key file or a node key file (node_keys.json)")
    show.add_argument("--pop", action="store_true", help="node keys: also the BLS proof of possession")
    show.add_argument("--member", help="node keys: print the add_validator action for this member")
    show.add_argument("--address", default="", help="with --member: the validator's host:port (default none)")
    show.add_argument("--power", type=int, default=1, help="with --member: its voting power (default 1)")
    add_passphrase_options(show, creating=False)
    show.set_defaults(func=guarded(_show))
    rotate = sub.add_parser("rotate", help="write fresh keys for a node beside its key file")
    rotate.add_argument("--keys", required=True, help="the node's key file (node_keys.json)")
    rotate.add_argument("--force", action="store_true", help="replace next keys written earlier")
    add_passphrase_options(rotate, creating=False)
    rotate.set_defaults(func=guarded(_rotate))
    seal = sub.add_parser("seal", help="write a sealed (encrypted) copy of a plaintext key file")
    seal.add_argument("file", help="a plaintext node or account key file")
    seal.add_argument("--out", required=True, help="the sealed key file to create (refuses to overwrite)")
    add_passphrase_options(seal, creating=False)
    seal.add_argument("--kdf-cost", choices=COST_LEVELS, default=DEFAULT_COST_LEVEL,
                      help=f"Argon2id cost of the key encryption (default {DEFAULT_COST_LEVEL})")
    seal.set_defaults(func=guarded(_seal))
    imp = sub.add_parser("import", help="turn seeds into key files: one --seed, or a testnet's accounts file",
                         description="Write account key files from Ed25519 seeds. Without --out/--dir they go to "
                                     "the profile's key folder, where `--key ACCOUNT` finds them.")
    source = imp.add_mutually_exclusive_group()
    source.add_argument("--seed", metavar="HEX", help="a 32-byte Ed25519 seed in hex (needs --account)")
    source.add_argument("--accounts", metavar="FILE",
                        help="an accounts file {account: seed hex} (default: the profile's, e.g. the testnet's)")
    imp.add_argument("--account", action="append", default=[], metavar="ACCOUNT",
                     help="with --seed: the account it signs for; with an accounts file: import only these "
                          "(repeatable; default all)")
    imp.add_argument("--out", help="with --seed: the key file to write")
    imp.add_argument("--dir", help="folder to write <account>.key files in (default: the profile's key folder)")
    imp.add_argument("--profile", help="the profile whose key folder and accounts file to use (default: the "
                     "one in force)")
    imp.add_argument("--force", action="store_true", help="overwrite existing key files")
    imp.add_argument("--json", action="store_true", help="print JSON")
    imp.set_defaults(func=guarded(_import))
    lst = sub.add_parser("list", help="list the key files of the profile's key folder (or --dir)")
    lst.add_argument("--dir", help="a folder of key files (default: the profile's key folder)")
    lst.add_argument("--profile", help="the profile (default: the one in force)")
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(func=guarded(_list))


def _new(args: argparse.Namespace) -> int:
    key = AccountKey.generate(args.account)
    passphrase = passphrase_from_args(args, f"the key of {args.account}", creating=True)
    save_key(key, args.out, overwrite=args.force, passphrase=passphrase, cost=kdf_cost(args))
    emit({"account": key.account, "public_key": key.public_key.hex(), "file": args.out,
          "protection": "plaintext" if passphrase is None else "passphrase"})
    return EXIT_OK


def _is_node_keys(path: str) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("format") in KEYS_FORMATS


def _public(keys: NodeKeys, pop: bool) -> dict[str, object]:
    out: dict[str, object] = {"node_id": keys.node_id, "identity_key": keys.identity_key.hex(),
                              "bls_key": keys.bls_public_key.hex()}
    if pop:
        out["bls_pop"] = keys.bls_pop().hex()
    return out


def _node_keys_errors(run):  # type: ignore[no-untyped-def]
    """Node key file problems are user errors: report them with their code (never a traceback)."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except KeyFileError as exc:
            raise ClientError(exc.code, exc.message) from None

    wrapper.__doc__ = run.__doc__
    return wrapper


@_node_keys_errors
def _show(args: argparse.Namespace) -> int:
    if not _is_node_keys(args.file):
        info = key_file_info(args.file)  # public parts only: no passphrase needed
        emit({"account": info.account, "public_key": info.public_key.hex()})
        return EXIT_OK
    pop = args.pop or args.member is not None
    info = read_key_file_info(args.file)
    if info.identity_key is not None and info.bls_key is not None and not pop:
        emit({"node_id": info.node_id, "identity_key": info.identity_key.hex(), "bls_key": info.bls_key.hex()})
        return EXIT_OK
    keys = load_keys(args.file, passphrase_from_args(args, args.file, creating=False, needed=info.encrypted))
    out = _public(keys, pop)
    if args.member is not None:
        out["action"] = {"kind": "add_validator", "node_id": keys.node_id, "member": args.member,
                         "identity_key": out["identity_key"], "bls_key": out["bls_key"], "bls_pop": out["bls_pop"],
                         "address": args.address, "power": args.power}
    emit(out)
    return EXIT_OK


@_node_keys_errors
def _rotate(args: argparse.Namespace) -> int:
    info = read_key_file_info(args.keys)
    passphrase = passphrase_from_args(args, args.keys, creating=False, needed=info.encrypted)
    current = load_keys(args.keys, passphrase)
    fresh = rotate_keys(current)
    path = next_keys_path(args.keys)
    if info.cost is None:  # plaintext stays plaintext
        write_keys(path, fresh, overwrite=args.force)
    else:  # sealed under the same passphrase at the same cost
        write_keys(path, fresh, overwrite=args.force, passphrase=passphrase, cost=info.cost)
    out = _public(fresh, True)
    out["next_keys_file"] = path
    out["action"] = {"kind": "rotate_validator_keys", "node_id": fresh.node_id, "identity_key": out["identity_key"],
                     "bls_key": out["bls_key"], "bls_pop": out["bls_pop"]}
    emit(out)
    return EXIT_OK


@_node_keys_errors
def _seal(args: argparse.Namespace) -> int:
    """Existing plaintext keys (validators in a genesis cannot simply get new ones) sealed into a new file."""
    if _is_node_keys(args.file):
        info = read_key_file_info(args.file)
        if info.encrypted:
            raise ClientError("key_file_already_sealed", f"{args.file} is already sealed")
        keys = load_keys(args.file)
        passphrase = passphrase_from_args(args, args.out, creating=True)
        write_keys(args.out, keys, passphrase=passphrase, cost=kdf_cost(args))
        emit({"node_id": keys.node_id, "identity_key": keys.identity_key.hex(), "file": args.out,
              "protection": "passphrase"})
        return EXIT_OK
    if key_file_info(args.file).protection == PROTECTION_PASSPHRASE:
        raise ClientError("key_file_already_sealed", f"{args.file} is already sealed")
    key = load_key(args.file)
    passphrase = passphrase_from_args(args, args.out, creating=True)
    save_key(key, args.out, passphrase=passphrase, cost=kdf_cost(args))
    emit({"account": key.account, "public_key": key.public_key.hex(), "file": args.out, "protection": "passphrase"})
    return EXIT_OK


# -- import and list -------------------------------------------------------------------------------------------

MAX_ACCOUNTS_FILE_BYTES = 1 << 20


def _key_dir(args: argparse.Namespace) -> str:
    if args.dir:
        return args.dir
    profile = current_profile(args.profile)
    if profile is None:
        raise ClientError("no_profile", "no profile in force: pass --dir DIR (or --out FILE), or start a testnet "
                          "(`ledger testnet up`) / choose a profile (`ledger profile use NAME`)")
    return ProfileStore().keys_dir(profile.name)


def _read_accounts(path: str) -> dict[str, bytes]:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_ACCOUNTS_FILE_BYTES + 1)
    except OSError as exc:
        raise ClientError("bad_input", f"cannot read {path}: {exc.strerror}") from None
    try:
        doc = json.loads(data) if len(data) <= MAX_ACCOUNTS_FILE_BYTES else None
    except (ValueError, UnicodeDecodeError):
        doc = None
    if type(doc) is not dict:
        raise ClientError("bad_input", f"{path} is not an accounts file (a JSON object: account -> seed hex)")
    out: dict[str, bytes] = {}
    for account, seed in doc.items():
        try:
            out[account] = bytes.fromhex(seed)
        except (TypeError, ValueError):
            raise ClientError("key_bad_seed", f"{path}: the seed of {account!r} is not hex") from None
    return out


def _seed(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ClientError("key_bad_seed", "--seed is not hex (64 hex digits)") from None


def _import(args: argparse.Namespace) -> int:
    if args.seed is not None:
        if len(args.account) != 1:
            raise ClientError("bad_input", "--seed needs exactly one --account")
        keys = [AccountKey.from_seed(args.account[0], _seed(args.seed))]
    else:
        path = args.accounts
        if path is None:
            profile = current_profile(args.profile)
            if profile is None or profile.accounts is None:
                raise ClientError("no_profile", "no accounts file: pass --accounts FILE (a testnet's "
                                  "accounts.json) or --seed HEX --account ID")
            path = profile.accounts
        seeds = _read_accounts(path)
        missing = [a for a in args.account if a not in seeds]
        if missing:
            raise ClientError("bad_input", f"{path} has no account {', '.join(missing)}")
        keys = [AccountKey.from_seed(a, seeds[a]) for a in (args.account or sorted(seeds))]
        if args.out:
            raise ClientError("bad_input", "--out is for one --seed; use --dir for an accounts file")
    written = []
    for key in keys:
        if args.out:
            target = args.out
        else:
            directory = _key_dir(args)
            os.makedirs(directory, mode=0o700, exist_ok=True)
            target = os.path.join(directory, key.account + ".key")
        save_key(key, target, overwrite=args.force)
        written.append({"account": key.account, "public_key": key.public_key.hex(), "file": target})
    if args.json:
        emit(written)
    else:
        for w in written:
            print(f"imported {w['account']:24} {w['file']}")
        print(f"{len(written)} key file(s); sign with `--key ACCOUNT` (or the file path)")
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    directory = _key_dir(args)
    found = []
    names = sorted(os.listdir(directory)) if os.path.isdir(directory) else []
    for name in names:
        path = os.path.join(directory, name)
        if not name.endswith(".key") or not os.path.isfile(path) or os.path.getsize(path) > MAX_KEY_FILE_BYTES:
            continue
        try:
            key = load_key(path)
        except ClientError as exc:
            found.append({"file": path, "error": exc.code})
            continue
        found.append({"account": key.account, "public_key": key.public_key.hex(), "file": path})
    if args.json:
        emit({"dir": directory, "keys": found})
        return EXIT_OK
    if not found:
        print(f"no key files in {directory}; `ledger keys import` writes them")
    for item in found:
        if "error" in item:
            print(f"  (unreadable: {item['error']})  {item['file']}")
        else:
            print(f"  {item['account']:24} {item['public_key'][:16]}…  {item['file']}")
    return EXIT_OK
