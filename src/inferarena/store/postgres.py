"""PostgreSQL store: one history shared by several drivers (`--db postgresql://USER@HOST:PORT/DB`).

The schema and queries are `store.base`'s, the same as SQLite's; what differs is spelled here: `%s`
placeholders, BIGSERIAL run ids (a sequence, so concurrent drivers never share one), BYTEA samples,
a sequence column that keeps variants in the order they were stored, and the schema version in a
table of its own. Creating and migrating the schema holds an advisory lock, so two drivers opening
a new database at once do not race. psycopg (the `postgres` extra) is imported here only.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

from inferarena.errors import StoreError
from inferarena.store.base import ADDED_COLUMNS, SCHEMA, SCHEMA_VERSION, Store

_TYPES = (("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY"), ("BLOB", "BYTEA"),
          ("REAL", "DOUBLE PRECISION"), ("run_id INTEGER", "run_id BIGINT"))
_LOCK = 0x1F2E_A0E5  # pg_advisory_xact_lock key for schema changes (any constant the app owns)


def _ddl() -> str:
    ddl = SCHEMA
    for sqlite_type, pg_type in _TYPES:
        ddl = ddl.replace(sqlite_type, pg_type)
    # Postgres has no rowid: a sequence column keeps variants in the order they were first stored.
    return ddl.replace("    name TEXT NOT NULL,\n    runtime", "    name TEXT NOT NULL,\n    seq BIGSERIAL,\n    runtime", 1)


def redact(url: str) -> str:
    """The URL without its password, for messages and reports."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


class PostgresStore(Store):
    order_column = "seq"
    _lock_row = " FOR UPDATE"

    def __init__(self, url: str):
        self.label = redact(url)
        try:
            import psycopg
            from psycopg.rows import dict_row
        except ImportError:
            raise StoreError("a postgresql:// --db needs psycopg", "pip install 'inferarena[postgres]'") from None
        self._errors = psycopg.Error
        try:
            # Autocommit: reads see what other drivers committed and hold no transaction open; writes
            # take one explicitly (`_writing`).
            self.db = psycopg.connect(url, autocommit=True, row_factory=dict_row, connect_timeout=10)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {self.label} ({_first_line(exc)})",
                             "start the server, check the URL (postgresql://USER@HOST:PORT/DB), or pass a SQLite file "
                             "to --db") from None
        try:
            with self.db.transaction():
                self.db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
                self.db.execute("CREATE TABLE IF NOT EXISTS inferarena_schema (version INTEGER NOT NULL)")
                row = self.db.execute("SELECT version FROM inferarena_schema").fetchone()
                version = row["version"] if row else 0
                if version > SCHEMA_VERSION:
                    raise StoreError(f"DB {self.label} was written by a newer inferarena (schema v{version}; this one "
                                     f"reads up to v{SCHEMA_VERSION})", "upgrade inferarena, or pass another --db")
                for statement in filter(str.strip, _ddl().split(";")):
                    self.db.execute(statement)
                for table, column in ADDED_COLUMNS:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} TEXT")
                if row is None:
                    self.db.execute("INSERT INTO inferarena_schema VALUES (%s)", (SCHEMA_VERSION,))
                elif version < SCHEMA_VERSION:
                    self.db.execute("UPDATE inferarena_schema SET version = %s", (SCHEMA_VERSION,))
        except psycopg.Error as exc:
            self.db.close()
            raise StoreError(f"cannot write DB {self.label} ({_first_line(exc)})",
                             "grant this user CREATE on the database, or pass another --db") from None
        except StoreError:
            self.db.close()
            raise

    def close(self) -> None:
        self.db.close()

    def _execute(self, sql, params=()):
        try:
            return self.db.execute(sql.replace("?", "%s"), params)
        except self._errors as exc:
            raise StoreError(f"cannot read DB {self.label} ({_first_line(exc)})",
                             "check the server and the URL given to --db") from None

    @contextmanager
    def _writing(self):
        try:
            with self.db.transaction():
                yield
        except self._errors as exc:
            raise StoreError(f"cannot write to DB {self.label} ({_first_line(exc)}); what was stored before is intact",
                             "check the server, then rerun the same command with --resume") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
