"""TLS on the HTTP API (docs/operations.md, "TLS on the API"): the server certificate, optional client-certificate
authentication (mutual TLS) and the map from a client certificate to the member institution it speaks for.

    tls = parse_tls_table(config["api"]["tls"], base_dir)     # ApiTls; TlsConfigError names the bad field
    context = tls.server_context()                             # ssl.SSLContext for the listening socket
    create_app(facade, ApiConfig(client_members=tls.members if tls.client_ca_file else None))

With mutual TLS the handshake itself checks the client's certificate against `client_ca` (Python's ssl module,
OpenSSL underneath). A certificate that verifies but names no configured member is refused on every request with
403 TLS_CLIENT_UNKNOWN; a request from a known certificate carries its member (response header
`X-Ledger-Client-Member`). The certificate authenticates the *institution*, never an account: private reads still
need a signed request (node/api/auth.py), and the signing account must belong to the certificate's member
(403 AUTH_MEMBER_MISMATCH). Submissions are not bound: a transaction carries its own signatures (a delivery versus
payment is signed by two members and either may relay it).

Member identifiers (`[api.tls.clients]`: member id -> list):
    "sha256:<64 hex>"   the SHA-256 fingerprint of the certificate (DER) — pins one certificate;
    "dns:<name>"        a subjectAltName DNS entry;
    "cn:<name>"         the subject's commonName.
`dns:` and `cn:` trust every CA in `client_ca` to issue only names it should: with several institutions' CAs in one
bundle, pin certificates by fingerprint.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import ssl
import stat
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web

from ledger.schema import MEMBER_PATTERN
from node.api import errors as e
from node.api.auth import SignedBy
from node.api.errors import ApiError
from node.errors import NodeError

__all__ = [
    "MEMBER_HEADER",
    "ApiTls",
    "ClientMembers",
    "TlsConfigError",
    "client_member",
    "client_member_middleware",
    "parse_tls_table",
    "plain_http_refusal",
    "require_member",
]

MEMBER_HEADER: Final = "X-Ledger-Client-Member"
CLIENT_AUTH_MODES: Final = ("required", "optional")
MAX_CLIENT_IDENTIFIERS: Final = 4096  # entries of [api.tls.clients] over all members
_MEMBER = re.compile(MEMBER_PATTERN)
_FINGERPRINT = re.compile(r"sha256:([0-9a-fA-F:]{64,95})")
# Where a request keeps its client's member (aiohttp >= 3.12 has typed request keys; older ones take a string).
_REQUEST_MEMBER: Final[Any] = (
    web.RequestKey("ledger_client_member", str) if hasattr(web, "RequestKey") else "ledger_client_member"
)
# Chain-id prefixes of local networks, where the API may be served over plain HTTP on any address.
LOCAL_CHAIN_PREFIXES: Final = ("testnet-", "dev-")


class TlsConfigError(NodeError, ValueError):
    """An [api.tls] table that cannot be used (code `config_bad_field` or `tls_key_permissions`)."""


@dataclass(frozen=True, slots=True)
class ClientMembers:
    """Client certificate -> member id, by fingerprint, SAN DNS name or subject common name (checked in that
    order)."""

    fingerprints: Mapping[bytes, str] = field(default_factory=dict)
    dns_names: Mapping[str, str] = field(default_factory=dict)
    common_names: Mapping[str, str] = field(default_factory=dict)

    def member_of(self, der: bytes, cert: Mapping[str, Any]) -> str | None:
        """The member of a verified certificate: `der` its DER bytes, `cert` ssl's decoded form of it."""
        member = self.fingerprints.get(hashlib.sha256(der).digest())
        if member is not None:
            return member
        for kind, value in cert.get("subjectAltName", ()):
            if kind == "DNS":
                member = self.dns_names.get(str(value).lower())
                if member is not None:
                    return member
        for rdn in cert.get("subject", ()):
            for name, value in rdn:
                if name == "commonName":
                    member = self.common_names.get(str(value))
                    if member is not None:
                        return member
        return None


@dataclass(frozen=True, slots=True)
class ApiTls:
    cert_file: str  # the server's certificate chain (PEM), leaf first
    key_file: str  # its private key (PEM, unencrypted, not readable by group or others)
    client_ca_file: str | None = None  # CA bundle of client certificates: mutual TLS when set
    client_auth: str = "required"  # with client_ca_file: "required" (handshake fails without one) | "optional"
    members: ClientMembers = field(default_factory=ClientMembers)

    @property
    def mutual(self) -> bool:
        return self.client_ca_file is not None

    def server_context(self) -> ssl.SSLContext:
        """The listening socket's context: TLS 1.2 or newer, the server certificate, client verification."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(
                "config_bad_field", f"api.tls: cannot load certificate {self.cert_file} with key {self.key_file}: {exc}"
            ) from None
        if self.client_ca_file is not None:
            try:
                ctx.load_verify_locations(cafile=self.client_ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise TlsConfigError(
                    "config_bad_field", f"api.tls.client_ca: cannot load {self.client_ca_file}: {exc}"
                ) from None
            ctx.verify_mode = ssl.CERT_REQUIRED if self.client_auth == "required" else ssl.CERT_OPTIONAL
        return ctx

    def to_toml(self, rel: Callable[[str], str]) -> dict[str, Any]:
        doc: dict[str, Any] = {"cert": rel(self.cert_file), "key": rel(self.key_file)}
        if self.client_ca_file is not None:
            doc["client_ca"] = rel(self.client_ca_file)
            doc["client_auth"] = self.client_auth
        clients: dict[str, list[str]] = {}
        for digest, member in self.members.fingerprints.items():
            clients.setdefault(member, []).append(f"sha256:{digest.hex()}")
        for name, member in self.members.dns_names.items():
            clients.setdefault(member, []).append(f"dns:{name}")
        for name, member in self.members.common_names.items():
            clients.setdefault(member, []).append(f"cn:{name}")
        if clients:
            doc["clients"] = clients
        return doc


def _bad(message: str) -> TlsConfigError:
    return TlsConfigError("config_bad_field", message)


def _path(table: Mapping[str, Any], name: str, base_dir: str) -> str:
    value = table.get(name)
    if not isinstance(value, str) or not value:
        raise _bad(f"api.tls.{name} must be a path")
    path = os.path.normpath(os.path.join(base_dir, value))
    if not os.path.isfile(path):
        raise _bad(f"api.tls.{name}: no file {path}")
    return path


def _check_key_mode(path: str) -> None:
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        raise TlsConfigError(
            "tls_key_permissions", f"{path} is readable by others (mode {oct(mode)}); chmod 600 {path}"
        )


def _members(clients: Any) -> ClientMembers:
    if not isinstance(clients, dict):
        raise _bad("[api.tls.clients] must be a table of member id = [identifiers]")
    fingerprints: dict[bytes, str] = {}
    dns_names: dict[str, str] = {}
    common_names: dict[str, str] = {}
    seen: set[str] = set()
    for member, identifiers in clients.items():
        where = f"api.tls.clients.{member}"
        if _MEMBER.fullmatch(member) is None:
            raise _bad(f"{where}: not a member id ({MEMBER_PATTERN})")
        if not isinstance(identifiers, list) or not identifiers:
            raise _bad(f'{where} must be a non-empty list of "sha256:<hex>", "dns:<name>" or "cn:<name>"')
        for ident in identifiers:
            if not isinstance(ident, str):
                raise _bad(f"{where}: identifiers are strings")
            kind, _, value = ident.partition(":")
            if kind == "sha256" and (m := _FINGERPRINT.fullmatch(ident)) is not None:
                digest_hex = m.group(1).replace(":", "")
                if len(digest_hex) != 64:
                    raise _bad(f"{where}: {ident!r}: a fingerprint is 32 bytes of hex")
                key = f"sha256:{digest_hex.lower()}"
                fingerprints[bytes.fromhex(digest_hex)] = member
            elif kind == "dns" and value:
                key = f"dns:{value.lower()}"
                dns_names[value.lower()] = member
            elif kind == "cn" and value:
                key = f"cn:{value}"
                common_names[value] = member
            else:
                raise _bad(f'{where}: {ident!r} is not "sha256:<64 hex>", "dns:<name>" or "cn:<name>"')
            if key in seen:
                raise _bad(f"api.tls.clients: {ident!r} is given twice")
            seen.add(key)
            if len(seen) > MAX_CLIENT_IDENTIFIERS:
                raise _bad(f"api.tls.clients: more than {MAX_CLIENT_IDENTIFIERS} identifiers")
    return ClientMembers(fingerprints, dns_names, common_names)


def parse_tls_table(table: Any, base_dir: str) -> ApiTls:
    """The [api.tls] table of a node config (paths relative to `base_dir`), checked: files exist, the key is not
    readable by others, the client-auth mode is known, every member identifier is well formed and unique."""
    if not isinstance(table, dict):
        raise _bad("[api.tls] must be a table")
    unknown = set(table) - {"cert", "key", "client_ca", "client_auth", "clients"}
    if unknown:
        raise TlsConfigError("config_unknown_field", f"[api.tls] has unknown keys {sorted(unknown)}")
    cert = _path(table, "cert", base_dir)
    key = _path(table, "key", base_dir)
    _check_key_mode(key)
    client_ca = _path(table, "client_ca", base_dir) if "client_ca" in table else None
    client_auth = table.get("client_auth", "required")
    if client_auth not in CLIENT_AUTH_MODES:
        raise _bad('api.tls.client_auth must be "required" or "optional"')
    if client_ca is None and ("client_auth" in table or "clients" in table):
        raise _bad("api.tls.client_auth and [api.tls.clients] need api.tls.client_ca (the client CA bundle)")
    members = _members(table.get("clients", {}))
    if client_ca is not None and not (members.fingerprints or members.dns_names or members.common_names):
        raise _bad("api.tls.client_ca is set but [api.tls.clients] maps no certificate to a member")
    return ApiTls(cert, key, client_ca, client_auth, members)


def plain_http_refusal(chain_id: str, host: str, tls: ApiTls | None, allow_plain_http: bool) -> str | None:
    """Why the API may not listen on `host` without TLS, or None when it may: plain HTTP is for local networks
    (testnet-... and dev-... chains), loopback addresses, or an explicit `[api] allow_plain_http = true` (TLS
    terminated by a proxy in front of the node)."""
    if tls is not None or allow_plain_http or chain_id.startswith(LOCAL_CHAIN_PREFIXES):
        return None
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return (
        f"the API of chain {chain_id} would listen on {host} without TLS; configure [api.tls] "
        f'(docs/operations.md, "TLS on the API"), listen on a loopback address, or set '
        f"[api] allow_plain_http = true when a proxy in front of the node terminates TLS"
    )


def _peer_certificate(request: web.Request) -> tuple[bytes, dict[str, Any]] | None:
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    return der, ssl_object.getpeercert() or {}


def client_member(request: web.Request) -> str | None:
    """The member of the request's client certificate (None: no certificate, or mutual TLS not configured)."""
    return request.get(_REQUEST_MEMBER)


def client_member_middleware(members: ClientMembers) -> Callable[..., object]:
    """Maps the verified client certificate of each request to its member; refuses certificates that map to none.
    (The handshake already refused certificates that do not chain to the client CA.)"""

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        peer = _peer_certificate(request)
        member = None
        if peer is not None:
            der, decoded = peer
            member = members.member_of(der, decoded)
            if member is None:
                raise ApiError(
                    e.TLS_CLIENT_UNKNOWN, details={"fingerprint": f"sha256:{hashlib.sha256(der).hexdigest()}"}
                )
            request[_REQUEST_MEMBER] = member
        response = await handler(request)
        if member is not None and not response.prepared:
            response.headers[MEMBER_HEADER] = member
        return response

    return middleware


def require_member(request: web.Request, who: SignedBy | None) -> None:
    """A signed request over a connection authenticated as member M must be signed by an account of M."""
    member = client_member(request)
    if member is None or who is None:
        return
    account_member = who.account.rpartition("@")[2]
    if account_member != member:
        raise ApiError(
            e.AUTH_MEMBER_MISMATCH,
            f"the client certificate is member {member}'s; {who.account} is not an account of {member}",
            {"certificate_member": member, "account": who.account},
        )
