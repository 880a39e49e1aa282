"""TLS on the HTTP API (node/api/tls.py): HTTPS with a server certificate, mutual TLS with the certificate -> member
map and its binding to signed reads, the SDK's and the CLI's CA bundle and client certificate (flags and
environment), the [api.tls] config table and the plain-HTTP policy. Certificates are made here (tests/node/tls_certs.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ledger import operations as o
from node.api import ApiConfig
from node.api.server import start_api
from node.api.tls import MEMBER_HEADER, ApiTls, parse_tls_table, plain_http_refusal
from node.cli import main
from node.client import AccountKey, ApiError, ClientError, LedgerClient, TlsOptions, save_key
from node.validator.api_listen import api_serving
from node.validator.config import ConfigError, load_config
from node.validator.config import write_config as write_node_config
from tests.ledger.world import CHAIN, key_for
from tests.node.api.api_world import ALICE, BOB, ChainFacade, MirrorWorld, populated_world
from tests.node.tls_certs import Issued, issue, make_ca

TLS_CLIENT_UNKNOWN = 3209
AUTH_MEMBER_MISMATCH = 3210


class Certs:
    def __init__(self, directory: str) -> None:
        self.ca = make_ca(directory, "consortium-ca")
        self.other_ca = make_ca(directory, "other-ca")
        self.server = issue(directory, self.ca, "node-0", dns=("localhost",), ips=("127.0.0.1",))
        self.bank_a = issue(directory, self.ca, "bank-a-client", common_name="ops.bank-a", client=True)
        self.bank_b = issue(directory, self.ca, "bank-b-client", dns=("ops.bank-b.example",), client=True)
        self.stranger = issue(directory, self.ca, "stranger", client=True)
        self.rogue = issue(directory, self.other_ca, "rogue", common_name="ops.bank-a", client=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs(str(tmp_path_factory.mktemp("certs")))


@pytest.fixture
def world(tmp_path: Path) -> MirrorWorld:
    return populated_world(str(tmp_path / "db"))


def client_tls(certs: Certs, ca: Issued | None = None, client: Issued | None = None) -> TlsOptions:
    return TlsOptions(
        (ca or certs.ca).cert_path,
        None if client is None else client.cert_path,
        None if client is None else client.key_path,
    )


def mutual(certs: Certs, client_auth: str = "required") -> ApiTls:
    table = {
        "cert": certs.server.cert_path,
        "key": certs.server.key_path,
        "client_ca": certs.ca.cert_path,
        "client_auth": client_auth,
        "clients": {"bank-a": [certs.bank_a.fingerprint], "bank-b": ["dns:ops.bank-b.example"]},
    }
    return parse_tls_table(table, "/")


class ServedApi:
    """The API over `world` on 127.0.0.1 in a thread of its own (the blocking SDK and the CLI run in this one)."""

    def __init__(self, world: MirrorWorld, tls: ApiTls) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        config = ApiConfig(client_members=tls.members if tls.mutual else None)
        self.server = self._run(start_api(ChainFacade(world), "127.0.0.1", 0, config, tls.server_context()))
        self.url = self.server.url

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def close(self) -> None:
        self._run(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def served(world: MirrorWorld, certs: Certs, request: pytest.FixtureRequest) -> Iterator[ServedApi]:
    kind = getattr(request, "param", "server-only")
    if kind == "server-only":
        tls = ApiTls(certs.server.cert_path, certs.server.key_path)
    else:
        tls = mutual(certs, kind)
    api = ServedApi(world, tls)
    try:
        yield api
    finally:
        api.close()


def raw_get(url: str, tls: TlsOptions, path: str = "/v1/status") -> tuple[int, dict[str, str], Any]:
    async def go() -> tuple[int, dict[str, str], Any]:
        connector = aiohttp.TCPConnector(ssl=tls.ssl_context())
        async with aiohttp.ClientSession(connector=connector) as session, session.get(url + path) as r:
            return r.status, dict(r.headers), await r.json()

    return asyncio.run(go())


# -- HTTPS -----------------------------------------------------------------------------------------------------


def test_the_sdk_works_over_https_with_the_consortium_ca(served: ServedApi, certs: Certs) -> None:
    assert served.url.startswith("https://127.0.0.1:")
    tls = client_tls(certs)
    with LedgerClient(served.url, AccountKey(ALICE, key_for(ALICE)), tls=tls) as client:
        assert client.status()["chain_id"] == CHAIN
        assert client.balances(ALICE, "BOND-A")  # a signed read
        result = client.execute(o.Transfer(ALICE, "BOND-A", (o.TransferLeg(BOB, 7),)))
        assert result.ok, result
        stream = client.events(accounts=[ALICE], from_height=1)  # the event stream: WebSocket over TLS (wss)
        first = next(stream)
        assert first.type == "event" and first.height >= 1
        stream.close()


def test_a_client_without_the_right_ca_is_refused(served: ServedApi, certs: Certs) -> None:
    for tls in (TlsOptions(), client_tls(certs, ca=certs.other_ca)):  # the system store; another CA
        with LedgerClient(served.url, tls=tls) as client, pytest.raises(ClientError) as info:
            client.status()
        assert info.value.code == "tls_failed", info.value
        assert "certificate verify failed" in info.value.message
    with LedgerClient(served.url.replace("https", "http", 1)) as client, pytest.raises(ClientError):
        client.status()  # plain HTTP to the TLS port gets no answer


def test_the_sdk_takes_its_ca_from_the_environment_for_https_only(
    served: ServedApi, certs: Certs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_TLS_CA", certs.ca.cert_path)
    with LedgerClient(served.url) as client:
        assert client.status()["chain_id"] == CHAIN
    with pytest.raises(ClientError) as info:
        LedgerClient(served.url.replace("https", "http", 1), tls=client_tls(certs))
    assert info.value.code == "bad_input"  # explicit TLS options with an http:// URL
    monkeypatch.setenv("LEDGER_TLS_CA", "/nonexistent/ca.pem")
    with pytest.raises(ClientError) as info:
        LedgerClient(served.url)
    assert info.value.code == "tls_config"


def test_the_cli_takes_the_ca_by_flag_or_environment(
    served: ServedApi, certs: Certs, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LEDGER_TLS_CA", raising=False)
    assert main(["query", "status", "--json", "--node", served.url, "--tls-ca", certs.ca.cert_path]) == 0
    assert json.loads(capsys.readouterr().out)["chain_id"] == CHAIN
    assert main(["query", "status", "--json", "--node", served.url]) == 3
    assert "tls_failed" in capsys.readouterr().err
    monkeypatch.setenv("LEDGER_TLS_CA", certs.ca.cert_path)
    assert main(["query", "status", "--json", "--node", served.url]) == 0
    capsys.readouterr()


# -- mutual TLS ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("served", ["required"], indirect=True)
def test_mutual_tls_refuses_clients_without_an_accepted_certificate(served: ServedApi, certs: Certs) -> None:
    for tls in (client_tls(certs), client_tls(certs, client=certs.rogue)):  # no certificate; another CA's
        with LedgerClient(served.url, tls=tls) as client, pytest.raises(ClientError) as info:
            client.status()
        assert info.value.code in ("tls_failed", "connection_failed"), info.value
        assert info.value.code == "tls_failed" or "client certificate" in info.value.message
    with (
        LedgerClient(served.url, tls=client_tls(certs, client=certs.stranger)) as client,
        pytest.raises(ApiError) as refused,
    ):
        client.status()
    assert (refused.value.status, refused.value.code) == (403, TLS_CLIENT_UNKNOWN)
    assert refused.value.details["fingerprint"] == certs.stranger.fingerprint


@pytest.mark.parametrize("served", ["required"], indirect=True)
def test_the_certificate_maps_to_its_member_and_binds_signed_reads(served: ServedApi, certs: Certs) -> None:
    status, headers, body = raw_get(served.url, client_tls(certs, client=certs.bank_a))  # by fingerprint
    assert (status, headers[MEMBER_HEADER], body["chain_id"]) == (200, "bank-a", CHAIN)
    status, headers, _ = raw_get(served.url, client_tls(certs, client=certs.bank_b))  # by SAN DNS name
    assert (status, headers[MEMBER_HEADER]) == (200, "bank-b")

    bank_a = client_tls(certs, client=certs.bank_a)
    with LedgerClient(served.url, AccountKey(ALICE, key_for(ALICE)), tls=bank_a) as client:
        assert client.balances(ALICE, "BOND-A")
    with LedgerClient(served.url, AccountKey(BOB, key_for(BOB)), tls=bank_a) as client:
        with pytest.raises(ApiError) as info:
            client.balances(BOB)  # bob@bank-b's signature over bank-a's connection
        assert (info.value.status, info.value.code) == (403, AUTH_MEMBER_MISMATCH)
        assert info.value.details == {"certificate_member": "bank-a", "account": BOB}
        # Submissions are not bound: the transaction carries its own signatures.
        assert client.execute(o.Transfer(BOB, "BOND-A", (o.TransferLeg(ALICE, 1),))).ok
    with LedgerClient(served.url, AccountKey(BOB, key_for(BOB)), tls=client_tls(certs, client=certs.bank_b)) as c:
        assert c.balances(BOB)


@pytest.mark.parametrize("served", ["required"], indirect=True)
def test_the_cli_presents_a_client_certificate(
    served: ServedApi,
    certs: Certs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key_file = str(tmp_path / "alice.key")
    save_key(AccountKey(ALICE, key_for(ALICE)), key_file)
    monkeypatch.setenv("LEDGER_TLS_CA", certs.ca.cert_path)
    flags = ["--tls-cert", certs.bank_a.cert_path, "--tls-key", certs.bank_a.key_path]
    assert main(["query", "balances", ALICE, "--json", "--key", key_file, "--node", served.url, *flags]) == 0
    assert json.loads(capsys.readouterr().out)
    monkeypatch.setenv("LEDGER_TLS_CERT", certs.bank_b.cert_path)
    monkeypatch.setenv("LEDGER_TLS_KEY", certs.bank_b.key_path)
    assert main(["query", "balances", ALICE, "--json", "--key", key_file, "--node", served.url]) == 3
    assert str(AUTH_MEMBER_MISMATCH) in capsys.readouterr().err


@pytest.mark.parametrize("served", ["optional"], indirect=True)
def test_optional_client_certificates(served: ServedApi, certs: Certs) -> None:
    status, headers, _ = raw_get(served.url, client_tls(certs))
    assert status == 200 and MEMBER_HEADER not in headers
    status, headers, _ = raw_get(served.url, client_tls(certs, client=certs.bank_a))
    assert (status, headers[MEMBER_HEADER]) == (200, "bank-a")
    with (
        LedgerClient(served.url, tls=client_tls(certs, client=certs.stranger)) as client,
        pytest.raises(ApiError) as refused,
    ):
        client.status()
    assert refused.value.code == TLS_CLIENT_UNKNOWN


# -- configuration ---------------------------------------------------------------------------------------------


def write_config(directory: Path, api: str) -> str:
    path = directory / "config.toml"
    path.write_text(f'node_id = "node-0"\n[p2p]\nlisten = "127.0.0.1:7100"\n[api]\nlisten = "10.0.0.5:8100"\n{api}')
    return str(path)


def test_the_tls_table_of_the_config(certs: Certs, tmp_path: Path) -> None:
    tls_dir = tmp_path / "tls"
    tls_dir.mkdir()
    for src, name in (
        (certs.server.cert_path, "node.pem"),
        (certs.server.key_path, "node.key"),
        (certs.ca.cert_path, "ca.pem"),
    ):
        (tls_dir / name).write_bytes(Path(src).read_bytes())
    os.chmod(tls_dir / "node.key", 0o600)
    fingerprint = certs.bank_a.fingerprint.upper().replace("SHA256:", "sha256:")
    config = load_config(
        write_config(
            tmp_path,
            f"""[api.tls]
cert = "tls/node.pem"
key = "tls/node.key"
client_ca = "tls/ca.pem"
[api.tls.clients]
bank-a = ["{fingerprint}", "cn:ops.bank-a"]
bank-b = ["dns:OPS.bank-b.example"]
""",
        )
    )
    tls = config.api_tls
    assert tls is not None and tls.mutual and tls.client_auth == "required"
    assert tls.cert_file == str(tls_dir / "node.pem")
    assert tls.members.fingerprints == {bytes.fromhex(certs.bank_a.fingerprint[7:]): "bank-a"}
    assert tls.members.dns_names == {"ops.bank-b.example": "bank-b"}
    rewritten = str(tmp_path / "rewritten.toml")
    write_node_config(rewritten, config)  # what `ledger init` and the hosts tool write: the table survives a round trip
    assert load_config(rewritten).api_tls == tls
    api_config, context = api_serving(config, "bank-net")
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED
    assert api_config.client_members == tls.members

    def refused(api: str) -> ConfigError:
        with pytest.raises(ConfigError) as info:
            load_config(write_config(tmp_path, api))
        return info.value

    base = '[api.tls]\ncert = "tls/node.pem"\nkey = "tls/node.key"\n'
    assert refused(base + "ciphers = 'x'\n").code == "config_unknown_field"
    assert "no file" in refused('[api.tls]\ncert = "tls/missing.pem"\nkey = "tls/node.key"\n').message
    assert "client_ca" in refused(base + 'client_auth = "optional"\n').message
    assert "maps no certificate" in refused(base + 'client_ca = "tls/ca.pem"\n').message
    assert "client_auth" in refused(base + 'client_ca = "tls/ca.pem"\nclient_auth = "sometimes"\n').message
    clients = base + 'client_ca = "tls/ca.pem"\n[api.tls.clients]\n'
    assert 'not "sha256' in refused(clients + 'bank-a = ["subject:x"]\n').message
    assert "given twice" in refused(clients + 'bank-a = ["cn:x"]\nbank-b = ["cn:x"]\n').message
    assert "member id" in refused(clients + 'BANK_A = ["cn:x"]\n').message
    os.chmod(tls_dir / "node.key", 0o644)
    assert refused(base).code == "tls_key_permissions"


def test_plain_http_is_for_local_networks_loopback_or_an_explicit_choice(certs: Certs, tmp_path: Path) -> None:
    tls = ApiTls(certs.server.cert_path, certs.server.key_path)
    assert plain_http_refusal("bank-net", "10.0.0.5", None, False) is not None
    for chain, host, t, allow in (
        ("bank-net", "10.0.0.5", tls, False),
        ("bank-net", "127.0.0.1", None, False),
        ("bank-net", "::1", None, False),
        ("bank-net", "localhost", None, False),
        ("testnet-local", "10.0.0.5", None, False),
        ("dev-local", "0.0.0.0", None, False),
        ("bank-net", "0.0.0.0", None, True),
    ):
        assert plain_http_refusal(chain, host, t, allow) is None, (chain, host, t, allow)
    config = load_config(write_config(tmp_path, ""))
    with pytest.raises(ConfigError) as info:
        api_serving(config, "bank-net")
    assert info.value.code == "api_plain_http"
    allowed = load_config(write_config(tmp_path, "allow_plain_http = true\n"))
    assert api_serving(allowed, "bank-net")[1] is None


def test_ledger_node_run_refuses_plain_http_off_loopback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A consortium chain's node whose API would listen on a LAN address in clear text does not start (exit 1)."""
    from node.tools.localnet import generate_network

    layout = generate_network(str(tmp_path / "net"), 1, chain_id="bank-net", host="10.0.0.5", users=0)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        assert main(["node", "run", "--config", layout.config_paths[0]]) == 1
    finally:  # `node run` installed its log handler on the captured stderr: put the test's logging back
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
    err = capsys.readouterr().err
    assert "api_plain_http" in err and "10.0.0.5" in err
