"""What every results store shares: the schema, the queries and the row mapping. One row per run, per
variant, and per (variant, scenario) measurement; the backends (`sqlite`, `postgres`) only connect,
migrate and say how their SQL differs.

A variant's row is written in one transaction once it is finished (ok or failed), which is what
makes `--resume` exact: a variant is either fully stored or measured again. Run ids come from the
database's own sequence, so two drivers writing to one database never share one.
"""

from __future__ import annotations

import io
import json
import zlib
from abc import ABC, abstractmethod
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, ClassVar, Iterator

import numpy as np

from inferarena import registry
from inferarena.results import RunRecord, ScenarioResult, VariantResult

# Written for SQLite; a backend maps the few types that differ (`Dialect.types`).
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
    node_json TEXT,                    -- the machine it was measured on (hostname, CPU, cores, accelerator, node id)
    payload_json TEXT,                 -- what only its kind reads (a workflow arm's outcome), in the kind's shape
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

# Columns added after the first schema, each by a migration: (table, column). A DB written before
# pipelines, task metrics, kinds and lineage, rounds or nodes gets them on open.
ADDED_COLUMNS = (("variants", "build_json"), ("variants", "task_json"), ("variants", "kind"), ("variants", "pipeline"),
                 ("variants", "pipeline_json"), ("variants", "node_json"), ("samples", "round_sizes_json"),
                 ("variants", "payload_json"))

# The schema's version. Bump it with each migration that an older inferarena would misread; a DB
# written by a newer inferarena (a higher version) is refused instead of misread.
SCHEMA_VERSION = 1


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Store(ABC):
    """The store's queries, written once with `?` placeholders; each backend runs them on its connection."""

    # How rows of a run keep the order they were stored in (SQLite: rowid; Postgres: a sequence column).
    order_column: ClassVar[str] = "rowid"
    # What `--db` names, for messages (a file path, or a URL with its password left out).
    label: str

    @abstractmethod
    def _execute(self, sql: str, params: tuple = ()) -> Any:
        """Run one statement, returning a cursor whose rows read by column name."""

    @abstractmethod
    @contextmanager
    def _writing(self) -> Iterator[None]:
        """One transaction: all of it lands or none, and a failed write ends as a StoreError."""

    @abstractmethod
    def close(self) -> None: ...

    # -- writing ---------------------------------------------------------------------------------

    def create_run(self, config: dict, config_hash: str, model: str, quick: bool, environment: dict,
                   workload: dict, notes: list[str]) -> int:
        with self._writing():
            row = self._execute(
                "INSERT INTO runs (created_at, status, model, quick, config_hash, config_json, environment_json,"
                " workload_json, notes_json) VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?) RETURNING run_id",
                (_now(), model, int(quick), config_hash, json.dumps(config), json.dumps(environment),
                 json.dumps(workload), json.dumps(notes)),
            ).fetchone()
        return int(row["run_id"])

    def save_variant(self, run_id: int, result: VariantResult) -> None:
        """Store a finished variant and its measurements atomically (again: it replaces the earlier row)."""
        row = {**result.to_row(), "finished_at": _now()}
        columns = ["run_id", *row]
        updates = ", ".join(f"{c} = excluded.{c}" for c in row if c != "name")
        with self._writing():
            self._execute("DELETE FROM measurements WHERE run_id = ? AND variant = ?", (run_id, result.name))
            self._execute("DELETE FROM samples WHERE run_id = ? AND variant = ?", (run_id, result.name))
            self._execute(f"INSERT INTO variants ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                          f" ON CONFLICT (run_id, name) DO UPDATE SET {updates}", (run_id, *row.values()))
            for name, m in result.scenarios.items():
                self._execute(
                    "INSERT INTO measurements (run_id, variant, scenario, valid, invalid_reason, mode, metrics_json,"
                    " loadgen_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, result.name, name, int(m.valid), m.invalid_reason, m.mode, json.dumps(m.metrics),
                     json.dumps(m.loadgen)),
                )
                if m.latencies_ms is not None and len(m.latencies_ms):
                    sizes = m.round_sizes
                    self._execute(
                        "INSERT INTO samples (run_id, variant, scenario, latencies_ms, round_sizes_json)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (run_id, result.name, name, _pack(m.latencies_ms),
                         json.dumps(sizes) if sizes and len(sizes) > 1 else None))

    def update_environment(self, run_id: int, extra: dict) -> None:
        """Add figures known only once the run started (e.g. the FP32 reference's task scores)."""
        with self._writing():
            row = self._execute(f"SELECT environment_json FROM runs WHERE run_id = ?{self._lock_row}",
                                (run_id,)).fetchone()
            environment = {**json.loads(row["environment_json"]), **extra}
            self._execute("UPDATE runs SET environment_json = ? WHERE run_id = ?", (json.dumps(environment), run_id))

    _lock_row: ClassVar[str] = ""  # what makes a read-then-write of one run row exclusive (Postgres: FOR UPDATE)

    def finish_run(self, run_id: int) -> None:
        with self._writing():
            self._execute("UPDATE runs SET status = 'complete', finished_at = ? WHERE run_id = ?", (_now(), run_id))

    # -- reading ---------------------------------------------------------------------------------

    def resumable_run(self, config_hash: str) -> int | None:
        """The latest run with this exact config, if it did not finish."""
        row = self._execute(
            "SELECT run_id, status FROM runs WHERE config_hash = ? ORDER BY run_id DESC LIMIT 1", (config_hash,)
        ).fetchone()
        return int(row["run_id"]) if row and row["status"] != "complete" else None

    def finished_variants(self, run_id: int) -> set[str]:
        return {r["name"] for r in self._execute("SELECT name FROM variants WHERE run_id = ?", (run_id,))}

    def runs(self, limit: int = 50) -> list[dict]:
        rows = self._execute(
            "SELECT r.run_id, r.created_at, r.status, r.model, r.quick,"
            " SUM(CASE WHEN v.status = 'ok' THEN 1 ELSE 0 END) AS ok,"
            " SUM(CASE WHEN v.status = 'failed' THEN 1 ELSE 0 END) AS failed"
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
        rows = self._execute("SELECT variant, scenario, latencies_ms, round_sizes_json FROM samples"
                             " WHERE run_id = ?", (run_id,))
        out = {}
        for r in rows:
            values = _unpack(r["latencies_ms"])
            sizes = _load(r["round_sizes_json"]) or [len(values)]
            out[(r["variant"], r["scenario"])] = np.split(values, np.cumsum(sizes)[:-1])
        return out

    def load_run(self, run_id: int) -> RunRecord | None:
        row = self._execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        config = json.loads(row["config_json"])
        measurements: dict[str, dict[str, ScenarioResult]] = {}
        for m in self._execute("SELECT * FROM measurements WHERE run_id = ?", (run_id,)):
            measurements.setdefault(m["variant"], {})[m["scenario"]] = ScenarioResult(
                m["scenario"], bool(m["valid"]), m["invalid_reason"], m["mode"], json.loads(m["metrics_json"]),
                json.loads(m["loadgen_json"]))
        variants = [_legacy(VariantResult.from_row(dict(v), measurements.get(v["name"], {})), config)
                    for v in self._execute(f"SELECT * FROM variants WHERE run_id = ? ORDER BY {self.order_column}",
                                           (run_id,))]
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
        from inferarena.config import PRESETS, preset

        v.pipeline_config = next((p for p in config.get("pipelines") or [] if p.get("name") == v.pipeline), None)
        if v.pipeline_config is None and v.pipeline in PRESETS:
            v.pipeline_config = preset(v.pipeline).model_dump(mode="json")
    return v


def _pack(values) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(values, dtype=np.float32), allow_pickle=False)
    return zlib.compress(buffer.getvalue())


def _unpack(blob: bytes) -> np.ndarray:
    return np.load(io.BytesIO(zlib.decompress(bytes(blob))), allow_pickle=False)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)
