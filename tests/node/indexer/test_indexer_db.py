"""The indexer's database side without a node: migrations and the refusal of a newer schema, the DSN's password
never in a status line, an error or the log, and the retry with a clear status while the node or PostgreSQL does not
answer."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from node.chain.genesis import load_genesis
from node.indexer import errors as x
from node.indexer.errors import IndexerError
from node.indexer.pgcluster import PgCluster
from node.indexer.run import Indexer, IndexerConfig, redact_dsn
from node.indexer.schema import LATEST, MIGRATIONS, migrate
from node.tools.testnet import Testnet

SECRET = "s3cret-Pw_42"


@pytest.fixture(scope="module")
def pg() -> Iterator[PgCluster]:
    with PgCluster() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def genesis_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    net = Testnet.create(str(tmp_path_factory.mktemp("g") / "net"), 1, chain_id="testnet-idxdb", users=2, seed=b"idxdb")
    return net.genesis_path


def _database(pg: PgCluster, name: str) -> str:
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return pg.dsn.replace(f"dbname={pg.database}", f"dbname={name}")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_migrations_apply_once_and_a_newer_schema_is_refused(pg: PgCluster) -> None:
    dsn = _database(pg, "schema_check")

    async def go() -> None:
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            assert await migrate(conn) == LATEST
            assert await migrate(conn) == LATEST  # idempotent
            cur = await conn.execute("SELECT version, name FROM indexer_schema ORDER BY version")
            assert await cur.fetchall() == [(m.version, m.name) for m in MIGRATIONS]
            await conn.execute(
                "INSERT INTO indexer_schema (version, name) VALUES (%s, 'from_the_future')", (LATEST + 1,)
            )
            await conn.commit()
            with pytest.raises(IndexerError) as info:
                await migrate(conn)
            assert info.value.code == x.SCHEMA_TOO_NEW and info.value.fatal

    asyncio.run(go())


def test_the_cli_refuses_a_newer_schema_with_exit_3(pg: PgCluster, genesis_path: str) -> None:
    dsn = _database(pg, "schema_cli")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE indexer_schema (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute("INSERT INTO indexer_schema (version, name) VALUES (999, 'future')")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "node.cli",
            "index",
            "--node",
            f"http://127.0.0.1:{_closed_port()}",
            "--genesis",
            genesis_path,
            "--dsn",
            dsn,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 3, out.stderr
    assert "indexer_schema_too_new" in out.stderr and "999" in out.stderr


def test_redact_dsn_removes_passwords_in_both_forms() -> None:
    assert redact_dsn(f"host=db user=ledger password={SECRET} dbname=x") == "host=db user=ledger password=*** dbname=x"
    assert redact_dsn(f"host=db password = '{SECRET} with space' dbname=x") == "host=db password = *** dbname=x"
    assert redact_dsn(f"postgresql://ledger:{SECRET}@db:5432/x") == "postgresql://ledger:***@db:5432/x"
    assert redact_dsn("postgresql://db/x") == "postgresql://db/x"


def test_the_password_never_appears_while_retrying_the_database_or_the_node(
    pg: PgCluster, genesis_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    genesis = load_genesis(genesis_path)
    dead_db = f"host=127.0.0.1 port={_closed_port()} user=ledger password={SECRET} dbname=ledger"
    live_db = f"{_database(pg, 'secret_check')} password={SECRET}"  # trust auth: the password is not needed
    dead_node = f"http://127.0.0.1:{_closed_port()}"
    lines: list[str] = []
    errors: list[IndexerError] = []
    caplog.set_level(logging.DEBUG)
    for dsn in (dead_db, live_db):
        config = IndexerConfig(dead_node, dsn, genesis, max_attempts=2, status=lines.append)
        with pytest.raises(IndexerError) as info:
            asyncio.run(Indexer(config).run())
        errors.append(info.value)
    assert [e.code for e in errors] == [x.DATABASE_UNAVAILABLE, x.NODE_UNREACHABLE]
    assert not any(e.fatal for e in errors)
    assert any("indexer_database_unavailable" in line and "retrying in" in line for line in lines)
    assert any("indexer_node_unreachable" in line and dead_node in line for line in lines)
    assert any("password=***" in line for line in lines)
    everything = "\n".join([*lines, *(str(e) for e in errors), caplog.text])
    assert SECRET not in everything


def test_the_cli_never_prints_the_password(pg: PgCluster, genesis_path: str, tmp_path: Path) -> None:
    dsn = f"host=127.0.0.1 port={_closed_port()} user=ledger password={SECRET} dbname=ledger"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "node.cli",
            "index",
            "--node",
            "http://127.0.0.1:9",
            "--genesis",
            genesis_path,
            "--dsn",
            dsn,
            "--max-attempts",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 4, out.stderr
    assert "indexer_database_unavailable" in out.stderr
    assert SECRET not in out.stdout + out.stderr


def test_an_existing_database_keeps_the_indexer_in_its_own_schema(pg: PgCluster) -> None:
    """README / docs/indexer.md: a schema of its own and `options='-c search_path=...'` in the DSN keep the indexer's
    tables apart from the database's own (here: a table `events` of the user's, untouched)."""
    base = _database(pg, "existing_db")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute("CREATE TABLE events (id serial PRIMARY KEY, note text)")
        conn.execute("INSERT INTO events (note) VALUES ('the user''s own')")
        conn.execute("CREATE SCHEMA ledger")
    dsn = f"{base} options='-c search_path=ledger'"

    async def go() -> None:
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            assert await migrate(conn) == LATEST

    asyncio.run(go())
    with psycopg.connect(base) as conn:
        tables = {
            (s, t)
            for s, t in conn.execute(
                "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema IN ('public', 'ledger')"
            )
        }
        assert ("ledger", "events") in tables and ("ledger", "indexer_checkpoint") in tables
        assert {t for s, t in tables if s == "public"} == {"events"}
        assert conn.execute("SELECT note FROM public.events").fetchall() == [("the user's own",)]


def test_bad_usage_is_refused_with_exit_2(
    genesis_path: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from node.cli import main

    monkeypatch.delenv("LEDGER_INDEX_DSN", raising=False)
    assert main(["index", "--genesis", genesis_path, "--dsn", "x", "--audit-every", "-1", "--max-attempts", "0"]) == 2
    assert "out of range: --audit-every, --max-attempts" in capsys.readouterr().err
    assert main(["index", "--genesis", genesis_path + ".missing", "--dsn", "x"]) == 2
    assert "genesis" in capsys.readouterr().err
    assert main(["index", "--genesis", genesis_path]) == 2  # no --dsn and no $LEDGER_INDEX_DSN
    assert "LEDGER_INDEX_DSN" in capsys.readouterr().err
