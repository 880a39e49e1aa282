"""Where `ledger` commands get the passphrase of a sealed key file (docs/operations.md, "Keys at rest").

Commands that write keys (`ledger init node`, `ledger keys new`) take exactly one of

    --passphrase-file FILE    the passphrase is the file's content (one trailing newline is dropped)
    --passphrase-env VAR      the passphrase is the value of the environment variable VAR
    --passphrase-prompt       ask on the terminal (twice when creating a key)
    --plaintext-keys          no passphrase: the secret is written unencrypted, and the file says so (testnets)

and `--kdf-cost interactive|moderate|sensitive` (default moderate). Without any of them they prompt when stdin is
a terminal, and otherwise stop with `keystore_passphrase_required`: an unattended script states its choice.
Commands that read node keys (`ledger node run`, `ledger keys show|rotate`) take the first three; they ask only
when the file is sealed. Commands that sign with an account key file (`ledger tx`, `query`, `statement`,
`governance`) read a sealed key's passphrase from $LEDGER_PASSPHRASE_FILE (a file), else $LEDGER_PASSPHRASE (the
value), else a prompt on the terminal.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Final

from node.client.keys import AccountKey, key_file_info, load_key
from node.client.keystore import (
    COST_LEVELS,
    DEFAULT_COST_LEVEL,
    MAX_PASSPHRASE_BYTES,
    PROTECTION_PASSPHRASE,
    KdfCost,
    KeystoreError,
)
from node.client.profile import key_file

ENV_PASSPHRASE_FILE: Final = "LEDGER_PASSPHRASE_FILE"
ENV_PASSPHRASE: Final = "LEDGER_PASSPHRASE"


def add_passphrase_options(parser: argparse.ArgumentParser, *, creating: bool) -> None:
    """The passphrase options of a command that writes (`creating`) or reads a key file."""
    group = parser.add_argument_group("keys at rest (docs/operations.md)")
    choice = group.add_mutually_exclusive_group()
    choice.add_argument("--passphrase-file", metavar="FILE", help="read the key passphrase from FILE")
    choice.add_argument("--passphrase-env", metavar="VAR", help="read the key passphrase from environment variable VAR")
    choice.add_argument("--passphrase-prompt", action="store_true", help="ask for the key passphrase on the terminal")
    if creating:
        choice.add_argument(
            "--plaintext-keys",
            action="store_true",
            help="store the secret key unencrypted (testnets only; the file records it)",
        )
        group.add_argument(
            "--kdf-cost",
            choices=COST_LEVELS,
            default=DEFAULT_COST_LEVEL,
            help=f"Argon2id cost of the key encryption (default {DEFAULT_COST_LEVEL})",
        )


def kdf_cost(args: argparse.Namespace) -> KdfCost:
    return KdfCost.named(getattr(args, "kdf_cost", DEFAULT_COST_LEVEL))


def read_passphrase_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_PASSPHRASE_BYTES + 3)
    except OSError as exc:
        raise KeystoreError("passphrase_file_unreadable", f"cannot read {path}: {exc.strerror}") from None
    return raw.removesuffix(b"\n").removesuffix(b"\r")


def _from_env(name: str) -> bytes:
    value = os.environ.get(name, "")
    if not value:
        raise KeystoreError("passphrase_env_unset", f"the environment variable {name} is not set or empty")
    return value.encode("utf-8")


def _prompt(what: str, confirm: bool) -> bytes:
    if not sys.stdin.isatty():
        raise KeystoreError(
            "passphrase_no_terminal",
            f"cannot ask for the passphrase of {what}: stdin is not a "
            "terminal (use --passphrase-file or --passphrase-env)",
        )
    first = getpass.getpass(f"Passphrase for {what}: ")
    if confirm and getpass.getpass("Repeat the passphrase: ") != first:
        raise KeystoreError("passphrase_mismatch", "the two passphrases differ")
    return first.encode("utf-8")


def passphrase_from_args(args: argparse.Namespace, what: str, *, creating: bool, needed: bool = True) -> bytes | None:
    """The passphrase the options name; None for --plaintext-keys, or when reading a file that needs none.
    With no option: prompt on a terminal, else `keystore_passphrase_required`."""
    if getattr(args, "passphrase_file", None):
        return read_passphrase_file(args.passphrase_file)
    if getattr(args, "passphrase_env", None):
        return _from_env(args.passphrase_env)
    if getattr(args, "passphrase_prompt", False):
        return _prompt(what, confirm=creating)
    if creating and getattr(args, "plaintext_keys", False):
        return None
    if not needed:
        return None
    if sys.stdin.isatty():
        return _prompt(what, confirm=creating)
    hint = ", or --plaintext-keys (testnets)" if hasattr(args, "plaintext_keys") else ""
    raise KeystoreError(
        "keystore_passphrase_required",
        f"{what} needs a passphrase: give --passphrase-file FILE, --passphrase-env VAR or --passphrase-prompt{hint}",
    )


def load_account_key(spec: str, profile: str | None = None) -> AccountKey:
    """The account key a --key argument names (a file, or an account `ledger keys import` wrote into the profile's
    key folder: node/client/profile.py `key_file`), for signing: a sealed one opens with $LEDGER_PASSPHRASE_FILE,
    $LEDGER_PASSPHRASE or a terminal prompt (in that order)."""
    path = key_file(spec, profile)
    if key_file_info(path).protection != PROTECTION_PASSPHRASE:
        return load_key(path)
    if os.environ.get(ENV_PASSPHRASE_FILE):
        passphrase = read_passphrase_file(os.environ[ENV_PASSPHRASE_FILE])
    elif os.environ.get(ENV_PASSPHRASE):
        passphrase = _from_env(ENV_PASSPHRASE)
    elif sys.stdin.isatty():
        passphrase = _prompt(path, confirm=False)
    else:
        raise KeystoreError(
            "keystore_passphrase_required",
            f"{path} is encrypted: set {ENV_PASSPHRASE_FILE} (a file holding the passphrase) or {ENV_PASSPHRASE}",
        )
    return load_key(path, passphrase)
