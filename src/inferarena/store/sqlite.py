"""SQLite store. One row per run, per variant, and per (variant, scenario) measurement.

A variant's row is written in one transaction once it is finished (ok or failed), which is what
makes `--resume` exact: a variant is either fully stored or measured again.
"""

from __future__ import annotations

import io
import json
import sqlite3
from contextlib import contextmanager
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from inferarena import registry
from inferarena.errors import StoreError
from inferarena.results import RunRecord, ScenarioResult, VariantResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,              -- running | complete
    model TEXT NOT NULL,
    quick INTEGER NOT NULL,
    config_hash TEXT NOT NULL,
    config_json TEXT NOT NULL,
    environment_json TEXT NOT NULL,
    workload_json TEXT NOT NULL,
    notes_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS variants (
    run_id INTEGER NOT NULL REFERENCES runs(run_id),
    name TEXT NOT NULL,
    runtime TEXT NOT NULL,
    precision TEXT NOT NULL,
    shape TEXT NOT NULL,
    knobs_json TEXT NOT NULL,
    status TEXT NOT NULL,              -- ok | failed
    error TEXT,
    error_detail TEXT,
    fidelity_json TEXT,
    memory_json TEXT,
    session_info_json TEXT,
    load_s REAL,
    finished_at TEXT NOT NULL,
    build_json TEXT,                   -- passes applied with their lineage (parent, output), layers kept in higher precision
    task_json TEXT,                    -- task metrics (e.g. Spearman on human similarity judgments)
    kind TEXT,                         -- predict | generate (kinds registry)
    pipeline TEXT,                     -- the named pipeline it was built with (NULL: none)
    pipeline_json TEXT,                -- that pipeline's definition (passes and their configs)
    PRIMARY KEY (run_id, name)
);
CREATE TABLE IF NOT EXISTS samples (
    run_id INTEGER NOT NULL,
    variant TEXT NOT NULL,
    scenario TEXT NOT NULL,
    latencies_ms BLOB NOT NULL,        -- float32 array, npy bytes, zlib-compressed
    round_sizes_json TEXT,             -- samples per round, in order (NULL: one round)
    PRIMARY KEY (run_id, variant, scenario)
);
CREATE TABLE IF NOT EXISTS measurements (
    run_id INTEGER NOT NULL,
    variant TEXT NOT NULL,
    scenario TEXT NOT NULL,
    valid INTEGER NOT NULL,
    invalid_reason TEXT,
    mode TEXT NOT NULL,
    metrics_json TEXT NOT NULL,
    loadgen_json TEXT NOT NULL,
    PRIMARY KEY (run_id, variant, scenario),
    FOREIGN KEY (run_id, variant) REFERENCES variants(run_id, name)
);
"""


# The schema's version, kept in SQLite's `user_version`. Bump it with each migration below; a DB
# written by a newer inferarena (a higher version) is refused instead of misread.
SCHEMA_VERSION = 1


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Store:
    def __init__(self, path: Path):
        self.path = Path(path)
        if self.path.is_dir():
            raise StoreError(f"DB path {path} is a directory", "pass a file path to --db, e.g. results.db")
        if not self.path.parent.is_dir():
            raise StoreError(f"cannot create DB {path}: folder {self.path.parent} does not exist", "create it or pass another --db")
        try:
            self.db = sqlite3.connect(self.path)
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                self.db.close()
                raise StoreError(f"DB {path} was written by a newer inferarena (schema v{version}; this one reads up "
                                 f"to v{SCHEMA_VERSION})", "upgrade inferarena, or pass another --db")
            self.db.executescript(SCHEMA)
            columns = {row[1] for row in self.db.execute("PRAGMA table_info(variants)")}
            # A DB written before pipelines, task metrics, or kinds and lineage existed.
            for column in ("build_json", "task_json", "kind", "pipeline", "pipeline_json"):
                if column not in columns:
                    self.db.execute(f"ALTER TABLE variants ADD COLUMN {column} TEXT")
            if "round_sizes_json" not in {row[1] for row in self.db.execute("PRAGMA table_info(samples)")}:
                self.db.execute("ALTER TABLE samples ADD COLUMN round_sizes_json TEXT")  # before rounds existed
            if version < SCHEMA_VERSION:
                self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot write DB {path} ({exc})", "pass a writable file path to --db") from None
        self.db.row_factory = sqlite3.Row

    def close(self) -> None:
        self.db.close()

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

    # -- writing ---------------------------------------------------------------------------------

    def create_run(self, config: dict, config_hash: str, model: str, quick: bool, environment: dict,
                   workload: dict, notes: list[str]) -> int:
        with self._writing():
            cursor = self.db.execute(
                "INSERT INTO runs (created_at, status, model, quick, config_hash, config_json, environment_json,"
                " workload_json, notes_json) VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?)",
                (_now(), model, int(quick), config_hash, json.dumps(config), json.dumps(environment),
                 json.dumps(workload), json.dumps(notes)),
            )
        return int(cursor.lastrowid)

    def save_variant(self, run_id: int, result: VariantResult) -> None:
        """Store a finished variant and its measurements atomically."""
        row = result.to_row()
        columns = ["run_id", *row, "finished_at"]
        with self._writing():
            self.db.execute("DELETE FROM measurements WHERE run_id = ? AND variant = ?", (run_id, result.name))
            self.db.execute("DELETE FROM samples WHERE run_id = ? AND variant = ?", (run_id, result.name))
            self.db.execute(f"INSERT OR REPLACE INTO variants ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                            (run_id, *row.values(), _now()))
            for name, m in result.scenarios.items():
                self.db.execute(
                    "INSERT INTO measurements VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, result.name, name, int(m.valid), m.invalid_reason, m.mode, json.dumps(m.metrics),
                     json.dumps(m.loadgen)),
                )
                if m.latencies_ms is not None and len(m.latencies_ms):
                    sizes = m.round_sizes
                    self.db.execute(
                        "INSERT INTO samples (run_id, variant, scenario, latencies_ms, round_sizes_json)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (run_id, result.name, name, _pack(m.latencies_ms),
                         json.dumps(sizes) if sizes and len(sizes) > 1 else None))

    def update_environment(self, run_id: int, extra: dict) -> None:
        """Add figures known only once the run started (e.g. the FP32 reference's task scores)."""
        with self._writing():
            row = self.db.execute("SELECT environment_json FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            environment = {**json.loads(row[0]), **extra}
            self.db.execute("UPDATE runs SET environment_json = ? WHERE run_id = ?", (json.dumps(environment), run_id))

    def finish_run(self, run_id: int) -> None:
        with self._writing():
            self.db.execute("UPDATE runs SET status = 'complete', finished_at = ? WHERE run_id = ?", (_now(), run_id))

    # -- reading ---------------------------------------------------------------------------------

    def resumable_run(self, config_hash: str) -> int | None:
        """The latest run with this exact config, if it did not finish."""
        row = self.db.execute(
            "SELECT run_id, status FROM runs WHERE config_hash = ? ORDER BY run_id DESC LIMIT 1", (config_hash,)
        ).fetchone()
        return int(row["run_id"]) if row and row["status"] != "complete" else None

    def finished_variants(self, run_id: int) -> set[str]:
        return {r["name"] for r in self.db.execute("SELECT name FROM variants WHERE run_id = ?", (run_id,))}

    def runs(self, limit: int = 50) -> list[dict]:
        rows = self.db.execute(
            "SELECT r.run_id, r.created_at, r.status, r.model, r.quick,"
            " SUM(v.status = 'ok') AS ok, SUM(v.status = 'failed') AS failed"
            " FROM runs r LEFT JOIN variants v ON v.run_id = r.run_id"
            " GROUP BY r.run_id ORDER BY r.run_id DESC LIMIT ?",
            (limit,),
        )
        return [dict(r) for r in rows]

    def load_samples(self, run_id: int) -> dict[tuple[str, str], np.ndarray]:
        """Raw per-sample latencies (ms) of a run, by (variant, scenario), all rounds together."""
        return {key: np.concatenate(rounds) for key, rounds in self.load_sample_rounds(run_id).items()}

    def load_sample_rounds(self, run_id: int) -> dict[tuple[str, str], list[np.ndarray]]:
        """The same, split into the rounds (separate processes) they were measured in."""
        rows = self.db.execute("SELECT variant, scenario, latencies_ms, round_sizes_json FROM samples"
                               " WHERE run_id = ?", (run_id,))
        out = {}
        for r in rows:
            values = _unpack(r["latencies_ms"])
            sizes = _load(r["round_sizes_json"]) or [len(values)]
            out[(r["variant"], r["scenario"])] = np.split(values, np.cumsum(sizes)[:-1])
        return out

    def load_run(self, run_id: int) -> RunRecord | None:
        row = self.db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        config = json.loads(row["config_json"])
        measurements: dict[str, dict[str, ScenarioResult]] = {}
        for m in self.db.execute("SELECT * FROM measurements WHERE run_id = ?", (run_id,)):
            measurements.setdefault(m["variant"], {})[m["scenario"]] = ScenarioResult(
                m["scenario"], bool(m["valid"]), m["invalid_reason"], m["mode"], json.loads(m["metrics_json"]),
                json.loads(m["loadgen_json"]))
        variants = [_legacy(VariantResult.from_row(dict(v), measurements.get(v["name"], {})), config)
                    for v in self.db.execute("SELECT * FROM variants WHERE run_id = ? ORDER BY rowid", (run_id,))]
        return RunRecord(run_id=row["run_id"], created_at=row["created_at"], finished_at=row["finished_at"],
                         status=row["status"], model=row["model"], quick=bool(row["quick"]), config=config,
                         environment=json.loads(row["environment_json"]), workload=json.loads(row["workload_json"]),
                         notes=json.loads(row["notes_json"]), variants=variants)


def _legacy(v: VariantResult, config: dict) -> VariantResult:
    """A variant stored before kinds and lineage had columns: its kind is its runtime's, its pipeline the
    name after '@' (then its definition from the run's config, or the preset of that name)."""
    if v.kind is None:
        v.kind = registry.load(registry.RUNTIMES, v.runtime).kind if v.runtime in registry.RUNTIMES else "predict"
    if v.pipeline is None and "@" in v.name:
        v.pipeline = v.name.rsplit("@", 1)[1]
        from inferarena.passes.presets import PRESETS, preset

        v.pipeline_config = next((p for p in config.get("pipelines") or [] if p.get("name") == v.pipeline), None)
        if v.pipeline_config is None and v.pipeline in PRESETS:
            v.pipeline_config = preset(v.pipeline).model_dump(mode="json")
    return v


def _pack(values) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(values, dtype=np.float32), allow_pickle=False)
    return zlib.compress(buffer.getvalue())


def _unpack(blob: bytes) -> np.ndarray:
    return np.load(io.BytesIO(zlib.decompress(blob)), allow_pickle=False)



def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)
