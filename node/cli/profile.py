"""`ledger profile list|show|use|add|remove`: the networks the client commands talk to (like kubectl contexts).

    ledger profile list                          every profile, the current one marked
    ledger profile show [NAME]                   a profile (default: the one in force) and the node it resolves to
    ledger profile use NAME                      make NAME the current profile
    ledger profile add NAME --url URL [--url URL2] [--genesis FILE] [--accounts FILE]
    ledger profile remove NAME

`ledger testnet up` records the profile `testnet` (its nodes' API URLs, genesis, accounts file) and makes it
current, so `ledger query status` right after it needs no address. node/client/profile.py says where profiles live
($LEDGER_HOME, default ~/.config/ledger) and the order in which a command picks its node.
"""

from __future__ import annotations

import argparse
import os

from node.client.console import EXIT_OK, emit, guarded
from node.client.errors import ClientError
from node.client.profile import Profile, ProfileStore, check_name, check_url, genesis_digest, resolve_target


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "profile",
        help="choose the network the client commands use (like kubectl contexts)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="profile_command", metavar="ACTION", required=True)
    lst = sub.add_parser("list", help="list the profiles; * marks the current one")
    lst.add_argument("--json", action="store_true", help="print JSON instead of a table")
    lst.set_defaults(func=guarded(_list))
    show = sub.add_parser("show", help="show a profile and the node a command would use now")
    show.add_argument("name", nargs="?", help="the profile (default: the one in force)")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=guarded(_show))
    use = sub.add_parser("use", help="make a profile the current one")
    use.add_argument("name", help="the profile")
    use.set_defaults(func=guarded(_use))
    add = sub.add_parser("add", help="record a profile for a network (replaces one of the same name)")
    add.add_argument("name", help="the profile name (letters, digits, . _ -)")
    add.add_argument("--url", action="append", required=True, help="API base URL of a node (repeat for several)")
    add.add_argument("--genesis", help="the network's genesis file (statements verify against it)")
    add.add_argument("--accounts", help="a test accounts file (name -> seed hex) for `ledger keys import`")
    add.add_argument("--chain-id", help="the chain id, for reference")
    add.add_argument("--no-use", action="store_true", help="record it without making it current")
    add.set_defaults(func=guarded(_add))
    rm = sub.add_parser("remove", help="forget a profile and the keys imported for it")
    rm.add_argument("name", help="the profile")
    rm.set_defaults(func=guarded(_remove))


def record_testnet_profile(
    urls: list[str], genesis: str, accounts: str, chain_id: str, directory: str, name: str = "testnet"
) -> tuple[Profile, str, bool]:
    """Record (and make current) the profile of a local testnet; returns it, the profiles file and whether it
    replaced a profile of another chain (whose imported keys were dropped)."""
    store = ProfileStore()
    profile = Profile(
        name,
        tuple(urls),
        os.path.abspath(genesis),
        os.path.abspath(accounts),
        chain_id,
        os.path.abspath(directory),
        genesis_digest(genesis),
    )
    replaced = store.put(profile)
    return profile, store.path, replaced


def _list(args: argparse.Namespace) -> int:
    store = ProfileStore()
    current = store.current()
    profiles = [store.get(n) for n in store.names()]
    if args.json:
        emit({"current": current, "file": store.path, "profiles": {p.name: p.to_json() for p in profiles}})
        return EXIT_OK
    if not profiles:
        print(f"no profiles in {store.path}; `ledger testnet up` records one, or `ledger profile add`")
        return EXIT_OK
    width = max(len(p.name) for p in profiles)
    for p in profiles:
        mark = "*" if p.name == current else " "
        extra = f"  ({len(p.urls) - 1} more)" if len(p.urls) > 1 else ""
        print(f"{mark} {p.name:{width}}  {p.urls[0]}{extra}  chain {p.chain_id or 'unknown'}")
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    store = ProfileStore()
    name = args.name or os.environ.get("LEDGER_PROFILE") or store.current()
    if name is None:
        raise ClientError("profile_unknown", "no profile in force; `ledger profile list`")
    profile = store.get(name)
    target = resolve_target(None, name, store=store)
    if args.json:
        emit(
            {
                "name": name,
                "current": name == store.current(),
                "node": target.url,
                **profile.to_json(),
                "keys_dir": store.keys_dir(name),
            }
        )
        return EXIT_OK
    print(f"profile   {name}{' (current)' if name == store.current() else ''}")
    print(f"node      {target.url}")
    for url in profile.urls:
        print(f"url       {url}")
    print(f"chain     {profile.chain_id or 'unknown'}")
    print(f"genesis   {profile.genesis or 'not recorded (statements are not verified by default)'}")
    print(f"accounts  {profile.accounts or 'not recorded'}")
    print(f"keys      {store.keys_dir(name)}")
    return EXIT_OK


def _use(args: argparse.Namespace) -> int:
    profile = ProfileStore().use(args.name)
    print(f"now using profile {profile.name} ({profile.urls[0]})")
    return EXIT_OK


def _add(args: argparse.Namespace) -> int:
    store = ProfileStore()
    urls = tuple(check_url(u) for u in args.url)
    for path in (args.genesis, args.accounts):
        if path is not None and not os.path.isfile(path):
            raise ClientError("bad_input", f"{path} is not a file")
    genesis = os.path.abspath(args.genesis) if args.genesis else None
    profile = Profile(
        check_name(args.name),
        urls,
        genesis,
        os.path.abspath(args.accounts) if args.accounts else None,
        args.chain_id,
        None,
        genesis_digest(genesis) if genesis else "",
    )
    store.put(profile, make_current=not args.no_use)
    note = "" if args.no_use else " and made it current"
    print(f"recorded profile {profile.name}{note} in {store.path}")
    return EXIT_OK


def _remove(args: argparse.Namespace) -> int:
    ProfileStore().remove(args.name)
    print(f"removed profile {args.name}")
    return EXIT_OK


__all__ = ["record_testnet_profile", "register"]


def print_testnet_profile(urls: list[str], genesis: str, accounts: str, chain_id: str, directory: str) -> None:
    """Record the testnet's profile and tell the user what it means (printed by `ledger testnet up`)."""
    profile, path, replaced = record_testnet_profile(urls, genesis, accounts, chain_id, directory)
    print(f"client profile {profile.name!r} recorded in {path} and made current:")
    print(f"  `ledger query status` now talks to {profile.urls[0]} (or the first node that answers)")
    if replaced:
        print("  (keys imported for the previous testnet were removed: it no longer exists)")
    print("  import the test accounts' keys: ledger keys import    then sign with --key ACCOUNT, e.g. --key user-0@m0")
