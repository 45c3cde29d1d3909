"""The results store: runs, variants, measurements, environment and config. A SQLite file by default;
a PostgreSQL database (`--db postgresql://USER@HOST:PORT/DB`) where several drivers share one history."""

from __future__ import annotations

from pathlib import Path

from inferarena.store.base import Store
from inferarena.store.sqlite import SQLiteStore

__all__ = ["Store", "SQLiteStore", "is_url", "open_store"]

URL_SCHEMES = ("postgresql://", "postgres://")


def is_url(db: str | Path) -> bool:
    """Whether `--db` names a database server rather than a SQLite file."""
    return str(db).startswith(URL_SCHEMES)


def open_store(db: str | Path) -> Store:
    """The store `--db` names: a PostgreSQL URL, or else a SQLite file path."""
    if is_url(db):
        from inferarena.store.postgres import PostgresStore

        return PostgresStore(str(db))
    return SQLiteStore(Path(db))
