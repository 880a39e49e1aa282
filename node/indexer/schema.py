"""Schema migrations: plain SQL files node/indexer/migrations/NNN_name.sql, applied in order, each in its own
transaction with its row in `indexer_schema`. A database whose schema is newer than this indexer knows is refused
(`indexer_schema_too_new`): an older binary must not write into tables it does not understand."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from node.indexer import errors as x
from node.indexer.errors import IndexerError

__all__ = ["MIGRATIONS", "Migration", "migrate", "schema_version"]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
ADVISORY_LOCK = 0x4C454447  # "LEDG": one migrator at a time


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(directory: Path = MIGRATIONS_DIR) -> tuple[Migration, ...]:
    out = []
    for path in sorted(directory.glob("*.sql")):
        m = re.fullmatch(r"(\d{3})_([a-z0-9_]+)\.sql", path.name)
        assert m is not None, f"migration file name {path.name} is not NNN_name.sql"
        out.append(Migration(int(m.group(1)), m.group(2), path.read_text()))
    assert [mg.version for mg in out] == list(range(1, len(out) + 1)), "migrations are numbered 001, 002, ..."
    return tuple(out)


MIGRATIONS = load_migrations()
LATEST = MIGRATIONS[-1].version

_CREATE = """CREATE TABLE IF NOT EXISTS indexer_schema (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now())"""


async def schema_version(conn: psycopg.AsyncConnection) -> int:
    async with conn.transaction():
        await conn.execute(_CREATE)
        row = await (await conn.execute("SELECT coalesce(max(version), 0) FROM indexer_schema")).fetchone()
    return int(row[0]) if row else 0


async def migrate(conn: psycopg.AsyncConnection, migrations: tuple[Migration, ...] = MIGRATIONS) -> int:
    """Bring the schema to the newest version this indexer knows; the version. IndexerError when the database is
    at a newer version."""
    latest = migrations[-1].version
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK,))
        await conn.execute(_CREATE)
        row = await (await conn.execute("SELECT coalesce(max(version), 0) FROM indexer_schema")).fetchone()
        current = int(row[0]) if row else 0
        if current > latest:
            raise IndexerError(
                x.SCHEMA_TOO_NEW,
                f"the database schema is version {current}; this indexer knows "
                f"versions up to {latest}: upgrade the indexer",
            )
        for mg in migrations:
            if mg.version > current:
                await conn.execute(mg.sql)  # several statements, no parameters
                await conn.execute("INSERT INTO indexer_schema (version, name) VALUES (%s, %s)", (mg.version, mg.name))
    return max(current, latest)
