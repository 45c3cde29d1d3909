"""`inferarena deploy`: a measured variant written out as a self-contained bundle for one server.

    bundle = deploy(store, run_id=1, target="triton", out=Path("serve/"))   # the run's recommendation
    bundle = deploy(store, 1, "kserve", Path("k8s/"), variant="openvino/int8/dynamic@nncf-int8")

Every bundle holds the artifact copied out of the pass cache, the target's files (targets are plugins:
`registry.DEPLOY_TARGETS`), `reproduce.yaml` (a run config that measures the variant again), a README with
what was measured and a request, and `inferarena-bundle.json`: the lineage, the sha256 of every file and
what was checked here. It is written to a temporary folder beside `out` and renamed at the end, so a
failure leaves no half-written bundle.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferarena import __version__, registry
from inferarena.deploy import deployable
from inferarena.deploy.base import Written, sha256
from inferarena.deploy.deployable import Deployable
from inferarena.errors import ConfigError, InferarenaError
from inferarena.results import RunRecord, VariantResult, metric

MANIFEST = "inferarena-bundle.json"
# What the README and the manifest report, in this order (units from the catalogue).
FIGURES = ("single_stream.latency_ms_p50", "single_stream.latency_ms_p90", "single_stream.latency_ms_p99",
           "offline.throughput_sps", "server.target_qps", "fidelity.cos_min", "memory.peak_rss_mb")


@dataclass
class Bundle:
    path: Path
    deployable: Deployable
    written: Written
    manifest: dict[str, Any]


def deploy(store, run_id: int, target: str, out: Path, variant: str | None = None) -> Bundle:
    """Write `variant` of run `run_id` (default: the run's recommendation) as a bundle for `target` in `out`."""
    if target not in registry.DEPLOY_TARGETS:
        raise ConfigError(f"unknown deploy target {target!r}", f"choose one of: {', '.join(registry.DEPLOY_TARGETS)}")
    run = store.load_run(run_id)
    if run is None:
        raise InferarenaError(f"run {run_id} is not in {store.label}", "list the runs with `inferarena results`")
    out = Path(out)
    _check_out(out)
    chosen, why = choose(store, run, variant)
    d = deployable.resolve(run, chosen)
    d.why = why
    if target in registry.SERVERS:  # a server serve-bench measures: its best batching for this model, if any
        from inferarena.serving import choice

        d.serving = choice.latest(store, run.model, server=target)
    from inferarena.recommend import reproduce_config

    d.reproduce = reproduce_config(run, chosen)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    except OSError as exc:
        raise InferarenaError(f"cannot write in {out.parent} ({exc.strerror})", "pass a writable folder with -o") from None
    try:
        written = registry.load(registry.DEPLOY_TARGETS, target)().write(d, work)
        manifest = _finish(d, target, written, work)
        work.chmod(0o755)  # mkdtemp's folder is private; a bundle is meant to be shared
        if out.exists():
            out.rmdir()  # empty, as _check_out made sure
        os.rename(work, out)
    except OSError as exc:  # a full disk, a folder that appeared meanwhile: nothing half-written is left
        shutil.rmtree(work, ignore_errors=True)
        raise InferarenaError(f"cannot write the bundle to {out} ({exc.strerror or exc})",
                              "free some space or pass another folder with -o") from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return Bundle(out, d, written, manifest)


def choose(store, run: RunRecord, name: str | None) -> tuple[VariantResult, str | None]:
    """The named variant, or the run's recommendation under its own profile and constraints (latency when it
    named none, `inferarena recommend`'s default), with the recommendation's explanation."""
    if name is not None:
        found = next((v for v in run.variants if v.name == name), None)
        if found is None:
            names = ", ".join(v.name for v in run.variants if v.ok) or "none succeeded"
            raise ConfigError(f"run {run.run_id} has no variant {name!r}", f"pass one of: {names}")
        return found, None
    from inferarena import kinds
    from inferarena.recommend import recommend

    profiles = kinds.of_run(run).profiles
    profile = run.config.get("profile") or ("latency" if "latency" in profiles else next(iter(profiles)))
    rec = recommend(run, store.load_sample_rounds(run.run_id), profile, run.config.get("constraints") or {})
    if rec.variant is None:
        raise ConfigError(f"run {run.run_id} has no recommendation to deploy: {rec.explanation}",
                          "name the variant with --variant (as `inferarena show` lists them)")
    return next(v for v in run.variants if v.name == rec.variant), f"{profile} profile: {rec.explanation}"


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        what = "a file" if not out.is_dir() else ("an earlier bundle" if (out / MANIFEST).exists() else "not empty")
        raise ConfigError(f"{out} is {what}", "pass a new or empty folder with -o (or remove it first)")


def _finish(d: Deployable, target: str, written: Written, work: Path) -> dict[str, Any]:
    """reproduce.yaml, README.md and the manifest; checks that every copy of the artifact is byte-identical."""
    import yaml

    from inferarena.deploy import readme

    copies = []
    for path, source in sorted(written.artifact.items()):
        digest, original = sha256(path), sha256(source)
        if digest != original:
            raise InferarenaError(f"the copy of {source} differs from the original", "check the disk and retry")
        copies.append({"path": str(path.relative_to(work)), "source": str(source), "sha256": digest,
                       "bytes": path.stat().st_size})
    written.checks.insert(0, f"artifact copied byte for byte: {len(copies)} file(s), sha256 of each equal to the "
                             "cache's")
    (work / "reproduce.yaml").write_text(f"# Measures {d.variant.name} again: inferarena run --config reproduce.yaml\n"
                                         + yaml.safe_dump(d.reproduce, sort_keys=False))
    main = _main_copy(d, copies)
    manifest = {
        "bundle_version": 1,
        "created_by": f"inferarena {__version__}",
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "target": target,
        "model_name": d.model_name,
        "run": {"id": d.run.run_id, "model": d.run.model, "measured_at": d.run.created_at, "quick": d.run.quick},
        "chosen_by": d.why or "--variant",
        "variant": {"name": d.variant.name, "runtime": d.runtime, "precision": d.variant.precision,
                    "shape": d.variant.shape, "pipeline": d.variant.pipeline, "knobs": d.knobs,
                    "batch_size": d.batch_size, "device": d.variant.device},
        "artifact": {"format": d.format, "source": str(d.artifact), "path": main["path"], "sha256": main["sha256"],
                     "files": copies},
        "lineage": [{k: p.as_dict()[k] for k in ("pass", "config", "parent", "output")} for p in d.variant.passes],
        "pipeline": d.variant.pipeline_config,
        "inputs": [_tensor(t) for t in d.inputs],
        "outputs": [_tensor(t) for t in d.outputs],
        "measured": measured(d),
        "host": {"class": d.host, "cpu_model": d.run.environment.get("cpu_model"),
                 "logical_cores": d.run.environment.get("logical_cores")},
        "versions": d.versions(),
        "serving": {"instances": d.instances, "threads_per_instance": d.threads_per_instance,
                    "max_batch_size": d.batch_size, "max_queue_delay_us": d.max_delay_us, "memory_mi": d.memory_mi,
                    "batching_from": d.batching_basis},
        "reproduce": "inferarena run --config reproduce.yaml",
        "checks": written.checks,
        "notes": [*d.notes, *written.notes],
    }
    (work / "README.md").write_text(readme.render(d, target, written, manifest))
    manifest["files"] = [{"path": str(p.relative_to(work)), "sha256": sha256(p)}
                         for p in sorted(work.rglob("*")) if p.is_file()]
    (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _main_copy(d: Deployable, copies: list[dict[str, Any]]) -> dict[str, Any]:
    """The artifact's place in the bundle: its main file, or for a folder the folder (no single sha256)."""
    for copy in copies:
        if copy["source"] == str(d.artifact):
            return copy
    first = copies[0]
    depth = len(Path(first["source"]).relative_to(d.artifact).parts)
    return {"path": str(Path(first["path"]).parents[depth - 1]), "sha256": None}


def measured(d: Deployable) -> dict[str, dict[str, Any]]:
    """The variant's headline figures, each with its unit and label from the catalogue."""
    found = d.figures()
    out = {}
    for key in FIGURES:
        if key in found:
            m = metric(key)
            out[key] = {"value": found[key], "unit": m.unit if m else "", "label": m.label if m else key}
    return out


def _tensor(t) -> dict[str, Any]:
    return {"name": t.name, "dtype": t.dtype, "shape": [d if d is not None else -1 for d in t.shape]}
