"""Client profiles: which network the `ledger` client commands talk to, like kubectl contexts.

A profile names a network: its API URLs, its genesis file (statements verify against it), its test accounts file
(`ledger keys import` turns its seeds into key files) and its chain id. `ledger testnet up` records the profile
`testnet` and makes it current; `ledger profile add|use|list|show|remove` manage the others.

Everything lives under the client home, $LEDGER_HOME (default ~/.config/ledger):

    $LEDGER_HOME/profiles.json                 {"current": NAME, "profiles": {NAME: {...}}}   (mode 0600)
    $LEDGER_HOME/keys/<profile>/<account>.key  key files imported for that profile's network (mode 0600)

Which node a command uses (first that applies):
    1. --node URL (alias --url)            an explicit node
    2. --profile NAME                      that profile
    3. $LEDGER_URL (or the older $LEDGER_NODE)
    4. $LEDGER_PROFILE                     that profile
    5. the current profile
otherwise the command stops with `no_node` and says how to choose one. A profile with several URLs (a testnet)
uses the first node whose API answers, so a killed node-0 does not break the CLI.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Final

from node.client.errors import ClientError
from node.client.keys import AccountKey, load_key

__all__ = [
    "PROFILES_FORMAT",
    "Profile",
    "ProfileStore",
    "Target",
    "client_home",
    "current_profile",
    "genesis_digest",
    "key_file",
    "load_key_arg",
    "resolve_target",
]

PROFILES_FORMAT: Final = "ledger-profiles/1"
MAX_PROFILES_BYTES: Final = 1 << 20
# How long to wait for one node's API when picking the first that answers among a profile's URLs.
PROBE_TIMEOUT_S: Final = 1.0
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def client_home() -> str:
    """$LEDGER_HOME, else $XDG_CONFIG_HOME/ledger, else ~/.config/ledger."""
    home = os.environ.get("LEDGER_HOME")
    if home:
        return os.path.abspath(home)
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(xdg, "ledger")


def genesis_digest(path: str) -> str:
    """SHA-256 of the genesis file's bytes (tells a re-created testnet from the one a profile recorded)."""
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return ""


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    urls: tuple[str, ...]
    genesis: str | None = None
    accounts: str | None = None
    chain_id: str | None = None
    testnet_dir: str | None = None
    genesis_sha256: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "urls": list(self.urls),
            "genesis": self.genesis,
            "accounts": self.accounts,
            "chain_id": self.chain_id,
            "testnet_dir": self.testnet_dir,
            "genesis_sha256": self.genesis_sha256,
        }

    @staticmethod
    def from_json(name: str, obj: Any) -> Profile:
        if type(obj) is not dict or type(obj.get("urls")) is not list or not all(type(u) is str for u in obj["urls"]):
            raise ClientError("profile_malformed", f"profile {name!r} needs a list of URLs")

        def opt(key: str) -> str | None:
            v = obj.get(key)
            if v is not None and type(v) is not str:
                raise ClientError("profile_malformed", f"profile {name!r}: {key} must be a string")
            return v

        return Profile(
            name,
            tuple(obj["urls"]),
            opt("genesis"),
            opt("accounts"),
            opt("chain_id"),
            opt("testnet_dir"),
            opt("genesis_sha256") or "",
        )


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ClientError("profile_bad_name", f"{name!r} is not a profile name (letters, digits, . _ -; at most 64)")
    return name


def check_url(url: str) -> str:
    if not url.startswith(("http://", "https://")) or len(url) > 2048:
        raise ClientError("bad_input", f"{url!r} is not an http:// or https:// URL")
    return url.rstrip("/")


@dataclass(slots=True)
class ProfileStore:
    """The profiles file under a client home. Reads are tolerant of a missing file; writes are atomic."""

    home: str = field(default_factory=client_home)

    @property
    def path(self) -> str:
        return os.path.join(self.home, "profiles.json")

    def keys_dir(self, profile: str) -> str:
        return os.path.join(self.home, "keys", check_name(profile))

    def _read(self) -> dict[str, Any]:
        try:
            with open(self.path, "rb") as f:
                data = f.read(MAX_PROFILES_BYTES + 1)
        except FileNotFoundError:
            return {"format": PROFILES_FORMAT, "current": None, "profiles": {}}
        except OSError as exc:
            raise ClientError("profile_unreadable", f"cannot read {self.path}: {exc.strerror}") from None
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise ClientError("profile_malformed", f"{self.path} is not JSON") from None
        if (
            len(data) > MAX_PROFILES_BYTES
            or type(doc) is not dict
            or doc.get("format") != PROFILES_FORMAT
            or type(doc.get("profiles")) is not dict
        ):
            raise ClientError("profile_malformed", f"{self.path} is not a {PROFILES_FORMAT} file")
        return doc

    def _write(self, doc: dict[str, Any]) -> None:
        os.makedirs(self.home, mode=0o700, exist_ok=True)
        tmp = self.path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, self.path)

    def current(self) -> str | None:
        value = self._read().get("current")
        return value if type(value) is str else None

    def names(self) -> list[str]:
        return sorted(self._read()["profiles"])

    def get(self, name: str) -> Profile:
        profiles = self._read()["profiles"]
        if name not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise ClientError("profile_unknown", f"no profile {name!r} (known: {known}); `ledger profile list`")
        return Profile.from_json(name, profiles[name])

    def put(self, profile: Profile, *, make_current: bool = True) -> bool:
        """Record `profile`. Returns True when it replaced a profile of another chain (a different genesis), whose
        imported keys were then removed: they sign for accounts of a network that no longer exists."""
        check_name(profile.name)
        doc = self._read()
        old = doc["profiles"].get(profile.name)
        replaced = bool(
            old
            and type(old) is dict
            and old.get("genesis_sha256")
            and old.get("genesis_sha256") != profile.genesis_sha256
        )
        if replaced:
            shutil.rmtree(self.keys_dir(profile.name), ignore_errors=True)
        doc["profiles"][profile.name] = profile.to_json()
        if make_current or doc.get("current") is None:
            doc["current"] = profile.name
        self._write(doc)
        return replaced

    def use(self, name: str) -> Profile:
        profile = self.get(name)
        doc = self._read()
        doc["current"] = name
        self._write(doc)
        return profile

    def remove(self, name: str) -> None:
        doc = self._read()
        if name not in doc["profiles"]:
            raise ClientError("profile_unknown", f"no profile {name!r}")
        del doc["profiles"][name]
        if doc.get("current") == name:
            doc["current"] = None
        self._write(doc)
        shutil.rmtree(self.keys_dir(name), ignore_errors=True)


@dataclass(frozen=True, slots=True)
class Target:
    """The node a command talks to, and where that choice came from (for messages)."""

    url: str
    source: str
    profile: Profile | None = None


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/v1/status", timeout=PROBE_TIMEOUT_S) as r:
            return bool(r.status == 200)
    except (OSError, ValueError):
        return False


def _from_profile(profile: Profile, source: str) -> Target:
    if not profile.urls:
        raise ClientError("profile_malformed", f"profile {profile.name!r} has no URL")
    if len(profile.urls) > 1:
        for url in profile.urls:
            if _answers(url):
                return Target(url, source, profile)
    return Target(profile.urls[0], source, profile)


def resolve_target(node: str | None = None, profile: str | None = None, *, store: ProfileStore | None = None) -> Target:
    """The node to use: the --node flag, the --profile flag, $LEDGER_URL/$LEDGER_NODE, $LEDGER_PROFILE, the current
    profile, in that order; ClientError `no_node` when none applies."""
    if node:
        return Target(check_url(node), "--node")
    store = store if store is not None else ProfileStore()
    if profile:
        return _from_profile(store.get(profile), f"--profile {profile}")
    for var in ("LEDGER_URL", "LEDGER_NODE"):
        if os.environ.get(var):
            return Target(check_url(os.environ[var]), f"${var}")
    env_profile = os.environ.get("LEDGER_PROFILE")
    if env_profile:
        return _from_profile(store.get(env_profile), f"$LEDGER_PROFILE={env_profile}")
    current = store.current()
    if current is not None:
        return _from_profile(store.get(current), f"profile {current}")
    raise ClientError(
        "no_node",
        "no node chosen: start a local network with `ledger testnet up` (it records the "
        "profile `testnet`), pass --node URL, set $LEDGER_URL, or pick a profile "
        f"(`ledger profile list`; profiles in {store.path})",
    )


def current_profile(profile: str | None = None, *, store: ProfileStore | None = None) -> Profile | None:
    """The profile in force (the --profile flag, $LEDGER_PROFILE, the current one), or None."""
    store = store if store is not None else ProfileStore()
    name = profile or os.environ.get("LEDGER_PROFILE") or store.current()
    if name is None:
        return None
    return store.get(name)


def key_file(spec: str, profile: str | None = None, *, store: ProfileStore | None = None) -> str:
    """A --key argument as a file path: an existing file as given; an account id (name@member) that is not a file
    names the key imported for it into the profile in force (`ledger keys import`)."""
    if os.path.exists(spec) or "@" not in spec or os.sep in spec:
        return spec
    store = store if store is not None else ProfileStore()
    name = profile or os.environ.get("LEDGER_PROFILE") or store.current()
    if name is None:
        raise ClientError(
            "key_file_missing", f"{spec!r} is neither a key file nor an imported key (no profile; `ledger keys import`)"
        )
    path = os.path.join(store.keys_dir(name), spec + ".key")
    if not os.path.exists(path):
        raise ClientError(
            "key_file_missing",
            f"{spec!r} is neither a key file nor a key imported into profile "
            f"{name!r}; import it: `ledger keys import --accounts FILE` or `--seed HEX --account "
            f"{spec}`",
        )
    return path


def load_key_arg(spec: str, profile: str | None = None) -> AccountKey:
    """The AccountKey a --key argument names (a file, or an account imported into the profile: `key_file`)."""
    return load_key(key_file(spec, profile))
