"""SQLite store, the default: one file, nothing to run. The schema and queries are `store.base`'s;
this file opens the file and migrates it (columns added since); the legacy reads of older rows are `store.base`'s.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path

from inferarena.errors import StoreError
from inferarena.store.base import ADDED_COLUMNS, SCHEMA, SCHEMA_VERSION, Store


class SQLiteStore(Store):
    def __init__(self, path: Path):
        self.path = Path(path)
        self.label = str(path)
        if self.path.is_dir():
            raise StoreError(f"DB path {path} is a directory", "pass a file path to --db, e.g. results.db")
        if not self.path.parent.is_dir():
            raise StoreError(f"cannot create DB {path}: folder {self.path.parent} does not exist", "create it or pass another --db")
        try:
            # Another driver writing the same file holds its lock for one variant's transaction: wait for it.
            self.db = sqlite3.connect(self.path, timeout=60)
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                self.db.close()
                raise StoreError(f"DB {path} was written by a newer inferarena (schema v{version}; this one reads up "
                                 f"to v{SCHEMA_VERSION})", "upgrade inferarena, or pass another --db")
            self.db.executescript(SCHEMA)
            for table, column in ADDED_COLUMNS:
                if column not in {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")
            if version < SCHEMA_VERSION:
                self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self.db.commit()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot write DB {path} ({exc})", "pass a writable file path to --db") from None
        self.db.row_factory = sqlite3.Row

    def close(self) -> None:
        self.db.close()

    def _execute(self, sql, params=()):
        return self.db.execute(sql, params)

    @contextmanager
    def _writing(self):
        """One transaction: all of it lands or none (what is stored stays intact), and a write that
        fails (disk full, locked, read-only) ends as a one-line error, not a traceback."""
        try:
            with self.db:
                yield
        except sqlite3.Error as exc:
            hint = " (is the disk full?)" if "I/O" in str(exc) or "full" in str(exc) else ""
            raise StoreError(f"cannot write to DB {self.path} ({exc}){hint}; what was stored before is intact",
                             "free space or release the DB, then rerun the same command with --resume") from None
