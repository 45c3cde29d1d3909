"""Joint search over compression × runtime × knobs × shape strategy × batch size, for one profile.

The space is read from plugin declarations: the variants `plan` makes (runtimes, precisions,
pipelines), the shape strategies the workload offers, each runtime knob's declared `space`, and
batch sizes where the profile is about throughput. Each trial is one variant, measured in its own
processes like any other. Two strategies:

- grid: every point, in a fixed order;
- optuna: TPE over the same dimensions, within a trial count and a time budget.

Both prune early: a trial whose first round is clearly behind the best so far (by `prune_margin`)
gets no second round. Throughput profiles also prune by the roofline, before measuring: a trial whose
precision's GEMM peak, divided by the useful work per sample its pipeline was measured to need, stays
below the best so far even at `ROOFLINE_SLACK` times that peak cannot win, and is not measured.

Optuna first measures every base at its runtime's advised setting (a knob's declared `throughput` value,
e.g. OpenVINO's THROUGHPUT hint, and the defaults for the rest): a sampler that learns from a few dozen
noisy trials may otherwise never try it. The finalists (`Search.finalists`: the best of each runtime ×
precision, then the best of the rest) are confirmed at the end, interleaved (`arena._confirm`), and the
pick comes from `recommend`, among them, on those rounds. A search is a run: interrupted, it resumes
with `--resume`.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from inferarena import hardware, runtimes
from inferarena.config import RoundsConfig, RunConfig, SearchConfig, ShapeStrategy
from inferarena.errors import RuntimeUnavailable
from inferarena.hardware import Host
from inferarena.kinds.base import Kind
from inferarena.recommend import figures, misses
from inferarena.results import VariantResult, VariantSpec


@dataclass(frozen=True)
class Dimension:
    name: str
    choices: tuple
    runtime: str | None = None  # a knob: applies only to trials on this runtime
    start: Any = None  # the value its runtime recommends for throughput (`"throughput"` in the knob's declaration)
    default: Any = None  # the knob's value where nobody sets it (None: the runtime's own choice, e.g. OV pinning)


@dataclass
class Space:
    bases: list[VariantSpec]  # one per (runtime, precision, pipeline), shape still to choose
    dimensions: list[Dimension]
    shape_in_name: bool = True  # False where the workload shapes inputs one way only (names drop it, as plan's do)

    def size(self) -> int:
        total = 0
        for base in self.bases:
            total += _product(d.choices for d in self.dimensions if d.runtime in (None, base.runtime))
        return total

    def points(self):
        """Every trial of the grid, as (base index, params)."""
        for i, base in enumerate(self.bases):
            dims = [d for d in self.dimensions if d.runtime in (None, base.runtime)]
            for values in itertools.product(*(d.choices for d in dims)):
                yield i, {d.name: v for d, v in zip(dims, values)}

    def starts(self) -> list[tuple[int, dict[str, Any]]]:
        """Each runtime × precision × pipeline at its runtime's advised setting: the knob values it recommends
        for throughput, its defaults for the rest (pinning included), dynamic shapes (else the first strategy
        offered) and the smallest batch. Measured first, so a sampler that learns from few noisy trials has
        seen what a hand-tuned setup would use on every runtime and precision."""
        dynamic = ShapeStrategy.dynamic.value
        shared = {d.name: (dynamic if dynamic in d.choices else d.choices[0]) if d.name == "shape" else min(d.choices)
                  for d in self.dimensions if d.runtime is None}
        points = []
        for i, base in enumerate(self.bases):
            advised = {d.name: d.start if d.start is not None else _default(d, base)
                       for d in self.dimensions if d.runtime == base.runtime}
            points.append((i, {**advised, **shared}))
        return points

    def variant(self, base_index: int, params: dict[str, Any]) -> VariantSpec:
        base = self.bases[base_index]
        knobs = {**base.knobs, **{k.split(".", 1)[1]: v for k, v in params.items() if k.startswith(base.runtime + ".")}}
        batch = params.get("batch_size")
        shape = params["shape"]
        changed = "".join(f"+{k}={v}" for k, v in sorted(knobs.items()) if base.knobs.get(k) != v)
        suffix = changed + (f"+batch={batch}" if batch else "")
        at = f"@{base.pipeline}" if base.pipeline else ""
        shaped = f"/{shape}" if self.shape_in_name else ""
        return dataclasses.replace(base, name=f"{base.runtime}/{base.precision}{shaped}{suffix}{at}", shape=shape,
                                   knobs=knobs, batch_size=batch)


def host_space(name: str, threads: int, host: Host) -> tuple:
    """A knob space that scales with the machine, for a variant on `threads` threads of `host`:
    - `threads`: all of them, and half of them where the host has SMT (two hardware threads share a core's
      vector units, so GEMM-bound work often runs best on one per core) or 8 or more (a small model stops
      scaling before the last core of a big host); on a 2-core VM without SMT, only 2;
    - `streams`: powers of two up to the threads (1, 2 on 2 cores; 1 to 128 on 192), each stream on
      threads/streams of them."""
    if name == "threads":
        smt = host.physical_cores is not None and host.physical_cores < host.logical_cores
        return tuple(sorted({threads, threads // 2} - {0})) if threads >= 8 or (smt and threads >= 2) else (threads,)
    if name == "streams":
        return tuple(2**i for i in range(max(1, threads).bit_length()))
    raise ValueError(f"no host-scaled space named {name!r}")


def build_space(specs: list[VariantSpec], shapes: list[str], profile: str, kind: Kind,
                shape_in_name: bool = True, host: Host | None = None) -> Space:
    """Bases from the planned variants (one per runtime, precision and pipeline), then the dimensions;
    profiles about throughput (and energy or cost per query) also search the kind's batch sizes. A knob
    whose space is named (`threads`, `streams`) gets the host's own (`host_space`); a dimension left with
    one choice is no dimension."""
    host = host or hardware.host()
    bases: dict[tuple, VariantSpec] = {}
    for spec in specs:
        bases.setdefault((spec.runtime, spec.precision, spec.pipeline, spec.steps), spec)
    batched = profile in ("throughput", "balanced", "energy", "cost")
    dims = [Dimension("shape", tuple(shapes))]
    for name in dict.fromkeys(s.runtime for s in bases.values()):
        on = {s.device for s in bases.values() if s.runtime == name}
        for knob, info in runtimes.get(name).Knobs.model_fields.items():
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            # Knobs that overlap requests (streams) matter only where batches are served in bulk; a knob
            # that declares its devices (torch's `compile`: cuda) is searched only where the run computes.
            if extra.get("space") and (batched or not extra.get("overlaps")) and on & set(extra.get("devices", on)):
                start = extra.get("throughput") if batched else None
                space = extra["space"]
                if isinstance(space, str):
                    threads = max((s.knobs.get("threads") or host.logical_cores) for s in bases.values()
                                  if s.runtime == name)
                    space = host_space(space, threads, host)
                if len(space) > 1:
                    dims.append(Dimension(f"{name}.{knob}", tuple(space), runtime=name, start=start,
                                          default=info.default))
    if batched:
        dims.append(Dimension("batch_size", kind.search_batch_sizes))
    return Space(list(bases.values()), dims, shape_in_name)


# A trial is cut by the roofline only if it would lose even at this many times its precision's measured
# GEMM peak: runtimes' own kernels can beat the torch matmuls the peak is timed with, and the peak is
# measured on another day, on a machine whose speed moves.
ROOFLINE_SLACK = 2.0
# optuna's default trial count: a quarter of the space, at most this many.
MAX_DEFAULT_TRIALS = 32


@dataclass
class Trial:
    spec: VariantSpec
    params: dict[str, Any]
    value: float | None  # the profile's figure after its rounds (None: failed or no figure)
    pruned: bool = False
    rounds: list[VariantResult] = field(default_factory=list)
    feasible: bool = True


@dataclass(frozen=True)
class SearchSettings:
    """The slice of the run config a search needs: its strategy and budget, the profile and constraints
    it serves, and the rounds (for the confirmation reserve)."""

    search: SearchConfig
    profile: str
    constraints: dict[str, float]
    rounds: RoundsConfig
    quick: bool
    seed: int = 0

    @classmethod
    def of(cls, config: RunConfig) -> SearchSettings:
        constraints = {k: v for k, v in config.constraints.model_dump().items() if v is not None}
        return cls(config.search, config.profile, constraints, config.rounds, config.quick, config.workload.seed)


# measure(spec, keep_going) -> (result, round results); keep_going(first round result) -> bool
Measure = Callable[[VariantSpec, Callable[[VariantResult], bool]], tuple[VariantResult, list[VariantResult]]]


class Search:
    """Drives one strategy over a space; the caller measures and stores each trial."""

    def __init__(self, space: Space, config: SearchSettings, kind: Kind, measure: Measure,
                 done: dict[str, VariantResult] | None = None, on_trial: Callable[[Trial], None] | None = None,
                 peaks: dict[str, float] | None = None):
        self.space, self.config, self.measure, self.kind = space, config, measure, kind
        self.peaks = peaks or {}  # GEMM GFLOP/s by precision, for the roofline cut
        self.work: dict[str | None, float] = {}  # least useful GFLOP per sample measured, by pipeline
        self.cut: list[tuple[VariantSpec, str]] = []  # trials the roofline ruled out, and why
        self.profile = kind.profiles[config.profile]
        self.done = done or {}  # variant name -> stored result, from an interrupted search
        self.on_trial = on_trial or (lambda trial: None)
        self.trials: list[Trial] = []
        self.best: float | None = None
        self.started = time.monotonic()
        self.measuring_s = 0.0  # spent in measure(), for the confirmation reserve
        s = config.search
        self.max_trials = s.trials or (space.size() if s.strategy == "grid"
                                       else max(4, min(MAX_DEFAULT_TRIALS, -(-space.size() // 4))))

    def figure(self, result: VariantResult) -> float | None:
        """The profile's deciding figure for one trial (balanced: sqrt(throughput / latency), which ranks
        like recommend's score, whose normalisers are the same for every variant)."""
        if not result.ok:
            return None
        f = figures(result)
        if self.profile.name == "balanced":
            lat, thr = (f.get(axis.key) for axis in self.kind.trade_offs[:2])
            return (thr / lat) ** 0.5 if lat and thr else None
        return f.get(self.profile.key)

    def feasible(self, result: VariantResult) -> bool:
        """Every constraint recommend will check, so pruning never measures against an ineligible best."""
        return not misses(figures(result), self.config.constraints, self.kind)

    def better(self, a: float, b: float) -> bool:
        return a > b if self.profile.higher_is_better else a < b

    def behind(self, value: float) -> bool:
        """Clearly worse than the best so far: by more than the prune margin."""
        if self.best is None:
            return False
        margin = self.config.search.prune_margin
        return value < self.best * (1 - margin) if self.profile.higher_is_better else value > self.best * (1 + margin)

    def out_of_budget(self) -> bool:
        """No trial left, or no time left once the finalists' confirmation (estimated from the rounds so
        far) is set aside: the time budget covers the whole search, confirmation included."""
        s = self.config.search
        if len(self.trials) >= self.max_trials:
            return True
        if s.time_budget_s is None:
            return False
        rounds = self.config.rounds
        per_finalist = rounds.planned(self.config.quick) * self.round_s()
        if rounds.ci_target_pct is not None:  # a confirmation may go on to max_rounds, within ci_budget_s
            per_finalist = min(rounds.ci_budget_s, max(per_finalist, rounds.max_rounds * self.round_s()))
        reserve = self.finalists_planned() * per_finalist
        return time.monotonic() - self.started + reserve >= s.time_budget_s

    def round_s(self) -> float:
        """Mean wall time of one measured round so far (0 before any)."""
        rounds = sum(len(t.rounds) for t in self.trials)
        return self.measuring_s / rounds if rounds else 0.0

    def roofline_cut(self, spec: VariantSpec) -> str | None:
        """Why `spec` cannot beat the best so far on a throughput profile, from the roofline; None if it might.

        Its bound is the samples/s it would reach running only useful FLOPs at its precision's peak."""
        bare = self.profile.key.rpartition(".")[2]
        work = self.work.get(spec.pipeline)
        peak = self.peaks.get("int8" if spec.precision == "mixed" else spec.precision)
        if bare != "throughput_sps" or self.best is None or not work or not peak:
            return None
        bound = peak / work
        if ROOFLINE_SLACK * bound >= self.best:
            return None
        return (f"roofline: {peak:,.0f} GFLOP/s ({spec.precision} peak) ÷ {work:.3g} GFLOP per sample = {bound:,.0f} "
                f"samples/s at most, under {1 / ROOFLINE_SLACK:.2g}× the best so far ({self.best:,.0f})")

    def learn_work(self, spec: VariantSpec, result: VariantResult) -> None:
        """Remember the useful work per sample that this trial's pipeline needs (the roofline's divisor)."""
        scenario = self.profile.key.rpartition(".")[0]
        work = figures(result).get(f"{scenario}.useful_gflops_per_query") if result.ok else None
        if isinstance(work, (int, float)) and work > 0:
            self.work[spec.pipeline] = min(work, self.work.get(spec.pipeline, work))

    def run_trial(self, base_index: int, params: dict) -> Trial | None:
        """Measure one point (or reuse its stored result); None if the roofline rules it out unmeasured."""
        spec = self.space.variant(base_index, params)
        if spec.name not in self.done and (reason := self.roofline_cut(spec)):
            if all(c.name != spec.name for c, _ in self.cut):
                self.cut.append((spec, reason))
            return None
        if spec.name in self.done:  # measured before the interruption: reuse, do not repeat
            result, rounds = self.done[spec.name], []
        else:
            def keep_going(first: VariantResult) -> bool:
                value = self.figure(first)
                return value is not None and self.feasible(first) and not self.behind(value)

            began = time.monotonic()
            result, rounds = self.measure(spec, keep_going)
            self.measuring_s += time.monotonic() - began
        value = self.figure(result)
        self.learn_work(spec, result)
        trial = Trial(spec, params, value, pruned=result.pruned, rounds=rounds, feasible=result.ok and self.feasible(result))
        if value is not None and trial.feasible and not trial.pruned and (self.best is None or self.better(value, self.best)):
            self.best = value
        self.trials.append(trial)
        self.on_trial(trial)
        return trial

    def grid(self) -> list[Trial]:
        for base_index, params in self.space.points():
            if self.out_of_budget():
                break
            self.run_trial(base_index, params)
        return self.trials

    def optuna(self) -> list[Trial]:
        try:
            import optuna
        except ImportError:
            raise RuntimeUnavailable("the optuna strategy needs optuna, which is not installed",
                                     "pip install 'inferarena[search]', or use --strategy grid") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        direction = "maximize" if self.profile.higher_is_better else "minimize"
        study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=self.config.seed))
        labels = [f"{b.runtime}/{b.precision}" + (f"@{b.pipeline}" if b.pipeline else "") for b in self.space.bases]
        for base_index, params in self.space.starts():
            study.enqueue_trial({"candidate": labels[base_index], **params}, skip_if_exists=True)
        while not self.out_of_budget():
            trial = study.ask()
            base_index = labels.index(trial.suggest_categorical("candidate", labels))
            runtime = self.space.bases[base_index].runtime
            params = {d.name: trial.suggest_categorical(d.name, list(d.choices))
                      for d in self.space.dimensions if d.runtime in (None, runtime)}
            spec = self.space.variant(base_index, params)
            if any(t.spec.name == spec.name for t in self.trials):  # TPE proposed a point it has seen
                seen = next(t for t in self.trials if t.spec.name == spec.name)
                good = seen.value is not None and seen.feasible
                study.tell(trial, seen.value if good else None, state=None if good else optuna.trial.TrialState.FAIL)
                if len(study.trials) > 4 * max(1, self.space.size()):
                    break  # the sampler keeps revisiting: the space is exhausted
                continue
            done = self.run_trial(base_index, params)
            if done is None:  # the roofline ruled it out, unmeasured
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                if len(study.trials) > 4 * max(1, self.space.size()):
                    break
                continue
            if done.value is None or not done.feasible:  # infeasible values must not pull the sampler
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, done.value)
        return self.trials

    def finalists(self, count: int = 3) -> list[Trial]:
        """The trials confirmed at the end: the best of each runtime × precision (a first reading that one
        noisy round put behind, pruned or not, gets its second chance), then the best of the rest up to
        `count`; best first. None where `count` is 0."""
        if count <= 0:
            return []
        ranked = [t for t in self.trials if t.value is not None and t.feasible]
        ranked.sort(key=lambda t: (t.pruned, -t.value if self.profile.higher_is_better else t.value))
        chosen: dict[str, Trial] = {}
        for trial in ranked:
            chosen.setdefault(_group(trial.spec), trial)
        for trial in ranked:
            if len(chosen) >= count:
                break
            if trial not in chosen.values() and not trial.pruned:
                chosen[trial.spec.name] = trial
        return sorted(chosen.values(), key=lambda t: -t.value if self.profile.higher_is_better else t.value)

    def finalists_planned(self) -> int:
        """How many finalists the confirmation will hold at most: one per runtime × precision, at least `finalists`."""
        count = self.config.search.finalists
        return max(count, len({_group(b) for b in self.space.bases})) if count else 0


def _group(spec: VariantSpec) -> str:
    return f"{spec.runtime}/{spec.precision}"


def _default(dimension: Dimension, base: VariantSpec) -> Any:
    """A knob's value in `base` where the sweep set it, else its declared default; one the space does not
    hold (threads left to the runtime: all cores) is its largest choice."""
    value = base.knobs.get(dimension.name.split(".", 1)[1], dimension.default)
    if value in dimension.choices:
        return value
    return max(dimension.choices, key=lambda c: (c is not None, c if isinstance(c, (int, float)) else 0))


def _product(choices) -> int:
    total = 1
    for c in choices:
        total *= len(c)
    return total
