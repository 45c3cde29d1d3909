"""The pick: the variant that best serves a profile under the user's constraints, with the evidence.

A profile names the figure that decides (p90 latency at batch 1, Offline throughput, ...). Every
candidate's deciding figure gets a bootstrap CI from its raw samples (rounds first, see `stats`),
and the pick is said to beat the runner-up only when the CI of their difference excludes zero;
otherwise the two tie and the text says so. Constraints are checked on the point estimates, and a
pick whose CI reaches past a bound is flagged.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inferarena import kinds, stats
from inferarena.errors import ConfigError
from inferarena.hardware import by_class, match_class
from inferarena.kinds.base import Figure, Kind, Profile
from inferarena.results import RunRecord, VariantResult

REPS = 1000


@dataclass
class Recommendation:
    profile: str
    variant: str | None
    met: bool
    constraints: dict[str, float]
    metric: str
    value: float | None
    ci: list[float] | None
    explanation: str
    runner_up: str | None = None
    artifact: str | None = None
    config_path: str | None = None
    pareto: list[str] = field(default_factory=list)
    hardware: str | None = None  # the hardware class whose variants were ranked
    # A search's finalists, best first: {name, runtime, precision, value, ci} from their interleaved confirmations.
    finalists: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def recommend(run: RunRecord, sample_rounds: dict, profile_name: str, constraints: dict[str, float] | None = None,
              config_dir: Path | None = None, hardware: str | None = None) -> Recommendation:
    """The pick among the variants of one hardware class: `hardware` names it (the class, or a part of it);
    without it, the class that holds the most variants, and the text says the others were left out."""
    kind = kinds.of_run(run)
    profile = kind.profiles[profile_name]
    trade_offs = kind.trade_offs
    constraints = {k: v for k, v in (constraints or {}).items() if v is not None}
    # Search trials pruned after one round were never confirmed: they inform the search, not the pick.
    ok = [v for v in run.variants if v.ok and not v.pruned]
    ok, hardware, scope = _one_class(ok, hardware)
    # A search that confirmed finalists picks among them, on the confirmations measured side by side.
    if any(v.confirmed for v in ok):
        ok = [v for v in ok if v.confirmed]
    found = {v.name: figures(v) for v in ok}
    _add_balanced(found, trade_offs[0].key, trade_offs[1].key)
    candidates = [v for v in ok if found[v.name].get(profile.key) is not None]
    front = pareto(ok, found, trade_offs)
    if not candidates:
        return Recommendation(profile.name, None, False, constraints, profile.key, None, None,
                              f"No variant has a {profile.label} figure: run the scenario it needs.", pareto=front)
    feasible = [v for v in candidates if not misses(found[v.name], constraints, kind)]
    if not feasible:
        closest = min(candidates, key=lambda v: sum(m[1] for m in misses(found[v.name], constraints, kind)))
        missed = "; ".join(m[0] for m in misses(found[closest.name], constraints, kind))
        return Recommendation(profile.name, None, False, constraints, profile.key, None, None,
                              f"No variant meets the constraints. The closest is {closest.name}: {missed}.",
                              pareto=front)
    ranked = sorted(feasible, key=lambda v: _rank(profile, found[v.name], trade_offs[0].key))
    pick, runner = ranked[0], (ranked[1] if len(ranked) > 1 else None)
    reps = {v.name: _replicates(profile, v, sample_rounds, found) for v in ranked[:2]}
    point, values = reps[pick.name]
    ci = list(stats.interval(values)) if values is not None else None
    lines = [*scope, f"Picked {pick.name} for the {profile.name} profile ({profile.summary}): "
             f"{profile.label} {_num(point)}{_unit(profile.unit)}" + (f" [95% CI {_num(ci[0])}, {_num(ci[1])}]" if ci else "")
             + _estimated(profile, pick) + "."]
    if runner is not None:
        lines.append(_versus(profile, pick, runner, reps))
    else:
        lines.append("It is the only variant that meets the constraints.")
    if constraints:
        lines.append("Constraints: " + "; ".join(_constraint_status(found[pick.name], name, bound, pick, sample_rounds, kind)
                                                for name, bound in constraints.items()) + ".")
    gives = _gives_up(pick, ok, found, trade_offs)
    if gives:
        lines.append("It gives up: " + "; ".join(gives) + ".")
    headroom = _headroom(pick, profile)
    if headroom:
        lines.append(headroom)
    artifact, config_path = pick.artifact, None
    command = kind.reproduce_command(run, pick)
    if command:  # a kind measured by its own command (a workflow's arm)
        lines.append(f"Reproduce: {command}")
    else:
        config_path = _write_config(run, pick, profile, config_dir) if config_dir else None
        lines.append(f"Deploy: {artifact or 'the source model'} on {pick.runtime} ({_knobs(pick)}).")
        if config_path:
            lines.append(f"Reproduce: inferarena run --config {config_path}")
    finalists = [_finalist(profile, v, sample_rounds, found) for v in ranked if v.confirmed]
    return Recommendation(profile.name, pick.name, True, constraints, profile.key, point, ci, " ".join(lines),
                          runner.name if runner else None, artifact, config_path, front, hardware, finalists)


def _finalist(profile: Profile, v: VariantResult, sample_rounds: dict, found: dict) -> dict[str, Any]:
    point, values = _replicates(profile, v, sample_rounds, found)
    return {"name": v.name, "runtime": v.runtime, "precision": v.precision, "value": point,
            "ci": list(stats.interval(values)) if values is not None else None, "rounds": v.rounds}


def _headroom(pick: VariantResult, profile: Profile) -> str:
    """Where the pick computes in a slower precision than the host's fastest (BF16 on an AMX Xeon, whose INT8
    peak is higher), how much of that ceiling its useful work reaches."""
    if not profile.key.endswith("throughput_sps"):  # a ceiling of work per second: throughput picks only
        return ""
    flat, scenario = pick.flat(), profile.key.rpartition(".")[0]
    best, share = flat.get(f"{scenario}.best_peak_precision"), flat.get(f"{scenario}.useful_pct_of_best_peak")
    own = flat.get(f"{scenario}.useful_pct_of_peak")
    if not best or share is None or best == pick.precision or (pick.precision == "mixed" and best == "int8"):
        return ""
    return (f"Headroom: its useful work is {_num(own)} % of its {pick.precision} GEMM peak and {_num(share)} % of "
            f"{best}'s, this host's fastest precision.") if own is not None else ""


def _one_class(ok: list[VariantResult], wanted: str | None) -> tuple[list[VariantResult], str | None, list[str]]:
    """The variants of one hardware class, the class, and what the explanation says about the others:
    figures from a fast machine and a slow one are never ranked as if the hardware were the same."""
    classes = by_class(ok)
    if wanted is not None:
        matches = match_class(wanted, list(classes))
        if len(matches) != 1:
            problem = (f"no variant of this run was measured on hardware class {wanted!r}" if not matches else
                       f"--hardware {wanted!r} names several hardware classes ({'; '.join(matches)})")
            raise ConfigError(problem, f"pass one of: {'; '.join(classes) or 'none (no variant succeeded)'}")
        return classes[matches[0]], matches[0], [f"Ranked among the variants measured on {matches[0]}."]
    if len(classes) <= 1:
        return ok, next(iter(classes), None), []
    chosen = max(classes, key=lambda c: len(classes[c]))  # the first of the largest
    others = "; ".join(f"{c} ({len(vs)})" for c, vs in classes.items() if c != chosen)
    return classes[chosen], chosen, [f"These variants ran on {len(classes)} hardware classes, never ranked against "
                                     f"each other: ranked here among the {len(classes[chosen])} measured on {chosen}; "
                                     f"left out: {others} (pick for one with --hardware)."]


def pareto(variants: list[VariantResult], found: dict[str, dict], trade_offs: tuple[Figure, ...]) -> list[str]:
    """Variants no other beats on all of latency, throughput and fidelity at once (those measured)."""
    axes = [(f.key, f.higher_is_better) for f in trade_offs[:3] if any(f.key in found[v.name] for v in variants)]
    points = {v.name: [found[v.name].get(k) for k, _ in axes] for v in variants}
    points = {n: p for n, p in points.items() if all(isinstance(x, (int, float)) for x in p)}

    def dominates(p, q):
        better_or_equal = all((a >= b) if h else (a <= b) for (_, h), a, b in zip(axes, p, q))
        return better_or_equal and p != q

    return [n for n, p in points.items() if not any(dominates(q, p) for q in points.values())]


def figures(v: VariantResult) -> dict[str, float]:
    """A variant's numeric flat figures, plus its model size on disk: what profiles and constraints read."""
    found = v.figures()
    size = _size_mb(v.artifact)
    if size is not None:
        found["model_mb"] = size
    return found


def _add_balanced(figures: dict[str, dict], latency: str, throughput: str) -> None:
    """The balanced score of every variant with both figures, each relative to the best of the run."""
    lat = [f[latency] for f in figures.values() if latency in f]
    thr = [f[throughput] for f in figures.values() if throughput in f]
    if not lat or not thr or min(lat) <= 0 or max(thr) <= 0:  # e.g. every arm of a workflow scored 0: no score
        return
    for f in figures.values():
        if latency in f and throughput in f:
            f["balanced_score"] = float(np.sqrt(min(lat) / f[latency] * f[throughput] / max(thr)))


def _rank(profile: Profile, f: dict, latency: str) -> tuple:
    value = f[profile.key]
    tie_break = f.get(latency, float("inf"))
    return (-value if profile.higher_is_better else value, tie_break)


def _replicates(profile: Profile, v: VariantResult, sample_rounds: dict, found: dict) -> tuple[float, np.ndarray | None]:
    point = found[v.name][profile.key]
    rounds = sample_rounds.get((v.name, profile.scenario)) if profile.scenario else None
    if not rounds or sum(map(len, rounds)) < 2:
        return point, None
    seed = zlib.crc32(v.name.encode())  # independent draws per variant, the same on every call
    if profile.percentile is not None:
        _, values = stats.replicates(rounds, stats.percentile(profile.percentile), REPS, seed)
    else:
        _, values = stats.throughput_replicates(rounds, REPS, seed)
        if profile.per_query:  # at the measured price or average power, per query = constant ÷ throughput
            values = 1.0 / values
    # The stored figure is the mean over rounds (LoadGen's own numbers); centre the replicates on it.
    return point, values * (point / float(np.median(values)))


def _estimated(profile: Profile, v: VariantResult) -> str:
    """Energy from CPU time × TDP (no power counter) is an estimate, and the pick's text says so."""
    if profile.name != "energy":
        return ""
    source = v.flat().get(profile.key.rsplit(".", 1)[0] + ".energy_source")
    return " (an estimate: CPU time × TDP per thread, no power counter here)" if source == "estimate" else ""


def _versus(profile: Profile, pick: VariantResult, runner: VariantResult, reps: dict) -> str:
    (pa, va), (pb, vb) = reps[pick.name], reps[runner.name]
    better = "higher" if profile.higher_is_better else "lower"
    if va is None or vb is None:
        diff = abs(pa / pb - 1) * 100 if pb else 0.0
        which = "either" if va is None and vb is None else ("the pick" if va is None else "the runner-up")
        return (f"The runner-up, {runner.name}, has {_num(pb)}{_unit(profile.unit)}; the pick is {diff:.0f}% "
                f"{better} (no raw samples for {which}, so no interval).")
    found = stats.change(pb, vb, pa, va)  # the pick relative to the runner-up
    rel, low, high = (x * 100 for x in (found.rel, found.ci_low, found.ci_high))
    lo, hi = stats.interval(vb)
    text = (f"The runner-up, {runner.name}, has {_num(pb)}{_unit(profile.unit)} [95% CI {_num(lo)}, {_num(hi)}]; "
            f"the pick is {abs(rel):.0f}% {better} [CI of the difference {low:+.0f}% .. {high:+.0f}%]")
    if found.significant:
        return text + ", a real margin: the CI of the difference excludes zero."
    return text + (", which is within the noise: the two tie, and the pick leads only on the point estimate "
                   "(either is a sound choice; a longer run would separate them).")


def misses(f: dict, constraints: dict[str, float], kind: Kind) -> list[tuple[str, float]]:
    """(text, relative shortfall) for every constraint the figures break, as the kind maps each constraint."""
    out = []
    for name, bound in constraints.items():
        c = kind.constraints[name]
        value, unit = f.get(c.key), c.unit
        if value is None:
            out.append((f"{c.label} not measured", 1.0))
        elif (c.bound == "max" and value > bound) or (c.bound == "min" and value < bound):
            gap = abs(value - bound)
            out.append((f"{c.label} {_num(value)}{_unit(unit)} misses {c.bound} {_num(bound)}{_unit(unit)} by "
                        f"{_num(gap)}{_unit(unit)} ({gap / abs(bound) * 100:.1f}%)", gap / abs(bound)))
    return out


def _constraint_status(f: dict, name: str, bound: float, v: VariantResult, sample_rounds: dict, kind: Kind) -> str:
    c = kind.constraints[name]
    text = f"{c.label} {_num(f[c.key])}{_unit(c.unit)} {'≤' if c.bound == 'max' else '≥'} {_num(bound)}{_unit(c.unit)} met"
    if name in ("max_p99_ms", "max_p90_ms"):
        rounds = sample_rounds.get((v.name, c.key.split(".", 1)[0]))
        if rounds:
            _, values = stats.replicates(rounds, stats.percentile(99.0 if name == "max_p99_ms" else 90.0), REPS)
            low, high = stats.interval(values * (f[c.key] / float(np.median(values))))
            text += f" [CI {_num(low)}, {_num(high)}]"
            if high > bound:
                text += ", but its CI reaches past the bound"
    return text


def _gives_up(pick: VariantResult, ok: list[VariantResult], found: dict, trade_offs: tuple[Figure, ...]) -> list[str]:
    mine = found[pick.name]
    out = []
    for figure in trade_offs:
        key, higher, label, unit = figure.key, figure.higher_is_better, figure.label, figure.unit
        have = [(found[v.name][key], v.name) for v in ok if key in found[v.name]]
        if key not in mine or not have:
            continue
        best, who = (max if higher else min)(have)
        if not best:
            continue
        worse = (best - mine[key]) / abs(best) if higher else (mine[key] - best) / abs(best)
        threshold = 0.001 if key.startswith("fidelity") else 0.10
        if worse > threshold and who != pick.name:
            out.append(f"{label} {_num(mine[key])}{_unit(unit)} against {_num(best)}{_unit(unit)} for {who}")
    return out


def _write_config(run: RunRecord, pick: VariantResult, profile: Profile, config_dir: Path) -> str:
    import yaml

    path = Path(config_dir) / f"inferarena-run-{run.run_id}-{profile.name}.yaml"
    path.write_text(yaml.safe_dump(reproduce_config(run, pick), sort_keys=False))
    return str(path)


def reproduce_config(run: RunRecord, pick: VariantResult) -> dict[str, Any]:
    """A run config that measures just the pick again, under the same workload and settings: the pick's
    runtime and knobs, and the pipeline it was built with, as stored with it."""
    from inferarena import runtimes

    config = json.loads(json.dumps(run.config))
    pipeline = pick.pipeline_config
    defaults = runtimes.get(pick.runtime).Knobs().model_dump()
    knobs = {k: v for k, v in pick.knobs.items() if k != "threads" and v != defaults.get(k)}
    # Only the pick: its precision on its runtime, or none there when a pipeline made it.
    runtime = {"name": pick.runtime, "knobs": knobs, "precisions": [] if pipeline else [pick.precision]}
    if pick.batch_size:
        config["workload"]["batch_size"] = pick.batch_size
    config["runtimes"] = [runtime]
    config["device"] = pick.device  # where it was measured (`auto` resolved)
    config["pipelines"] = [{**pipeline, "runtimes": [pick.runtime], "shapes": [pick.shape]}] if pipeline else []
    config["workload"]["shapes"] = [pick.shape]
    return config


def _size_mb(path: str | None) -> float | None:
    """Bytes on disk of an artifact: a folder's weights, or a file plus its sidecars (.bin, .data)."""
    if not path:
        return None
    p = Path(path)
    if p.is_dir():
        weights = [f for f in p.iterdir() if f.suffix in (".safetensors",)] or [f for f in p.iterdir() if f.suffix == ".bin"]
        files = weights
    elif p.is_file():
        files = [p, *[f for f in p.parent.iterdir() if f != p and f.stem.startswith(p.stem) and f.suffix in (".bin", ".data")]]
    else:
        return None
    return round(sum(f.stat().st_size for f in files) / 1e6, 2)


def _knobs(v: VariantResult) -> str:
    from inferarena import runtimes
    from inferarena.runtimes.base import knobs_on_device

    try:
        knobs = knobs_on_device(runtimes.get(v.runtime).Knobs, v.knobs, v.device)
    except ConfigError:  # a runtime this install no longer has: its knobs as stored
        knobs = v.knobs
    return ", ".join(f"{k}={x}" for k, x in knobs.items() if x is not None) or "defaults"


def _unit(unit: str) -> str:
    return f" {unit}" if unit else ""


def _num(x: float) -> str:
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.4g}"

