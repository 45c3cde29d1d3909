"""Compare two runs variant by variant, on raw samples, and say better, worse or tie.

Variants are matched by their config (name, runtime, precision, shape, knobs). Latency percentiles
get a bootstrap CI of the relative change plus a Mann-Whitney U test on the latencies; Offline
throughput is bootstrapped over its batches. Samples measured in several rounds (processes) are
resampled round first, and the CI is widened to a Welch t-interval over the rounds' own figures
(few rounds, few degrees of freedom), at a Bonferroni level across the table's comparisons. A change
is a verdict only when it is significant (the CI excludes zero) and larger than the tie margin.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np

from inferarena import registry
from inferarena.errors import ConfigError
from inferarena.hardware import hardware_class
from inferarena.results import RunRecord, VariantResult, higher_is_better
from inferarena.stats import Change, latency_change, throughput_change

# alias: (metric key, percentile or None for throughput); directions come from the metric catalogue.
ALIASES = {
    "p50": ("latency_ms_p50", 50.0),
    "p90": ("latency_ms_p90", 90.0),
    "p99": ("latency_ms_p99", 99.0),
    "throughput": ("throughput_sps", None),
}
REGRESSION_EXIT_CODE = 3


@dataclass
class Row:
    scenario: str
    variant: str
    metric: str  # alias
    change: Change
    verdict: str  # better | worse | tie


def variant_key(v: VariantResult) -> tuple:
    return (v.name, v.runtime, v.precision, v.shape, json.dumps(v.knobs, sort_keys=True))


def compare(run_a: RunRecord, run_b: RunRecord, samples_a: dict, samples_b: dict,
            tie_margin: float = 0.10) -> tuple[list[Row], list[str]]:
    notes = []
    differing = [k for k in sorted(set(run_a.config) | set(run_b.config)) if run_a.config.get(k) != run_b.config.get(k)]
    if differing:
        notes.append(f"the runs' configs differ in: {', '.join(differing)}")
    a_variants = {variant_key(v): v for v in run_a.variants if v.ok}
    rows, pairs = [], []
    for vb in run_b.variants:
        va = a_variants.get(variant_key(vb))
        if va is None or not vb.ok:
            notes.append(f"{vb.name}: not measured in both runs, not compared")
            continue
        if va.node and vb.node and hardware_class(va.node) != hardware_class(vb.node):
            notes.append(f"{vb.name}: measured on different hardware ({hardware_class(va.node)} vs "
                         f"{hardware_class(vb.node)}), so its figures are not compared")
            continue
        for scenario in vb.scenarios:
            qps = [v.scenarios[scenario].metrics.get("target_qps") if scenario in v.scenarios else None for v in (va, vb)]
            if qps[0] and qps[1] and abs(qps[1] / qps[0] - 1) > 0.01:
                notes.append(f"{vb.name} {scenario}: offered QPS differs ({qps[0]:.3g} vs {qps[1]:.3g}), so its "
                             "latencies are not comparable; set loadgen.server_target_qps to compare them")
                continue
            a = samples_a.get((va.name, scenario))
            b = samples_b.get((vb.name, scenario))
            if a is None or b is None or sum(map(len, a)) < 2 or sum(map(len, b)) < 2:
                continue
            pairs.append((scenario, vb.name, a, b))
    # Many comparisons at 95% each would call about one in twenty a change by chance: the rounds'
    # t-interval is taken at a Bonferroni level, so the whole table errs with about 5% probability.
    family = sum(1 if _by_throughput(scenario) else 3 for scenario, *_ in pairs)
    level = 1 - 0.05 / max(family, 1)
    for scenario, name, a, b in pairs:
        rows.extend(_rows(scenario, name, a, b, tie_margin, level))
    few = min((min(len(a), len(b)) for _, _, a, b in pairs), default=0)
    if 2 <= few <= 3:
        notes.append(f"intervals include process-to-process noise: a t-interval over as few as {few} rounds a side, "
                     f"at a {level:.2%} level for {family} comparisons, is wide; for a CI gate measure more rounds "
                     "(rounds.count: 5 in the run config) to narrow it")
    return rows, notes


def _rows(scenario: str, variant: str, a: list[np.ndarray], b: list[np.ndarray], tie_margin: float,
          level: float = 0.95) -> list[Row]:
    rows = []
    for alias, (key, q) in ALIASES.items():
        if (q is None) != _by_throughput(scenario):  # Offline: throughput; the others: latency percentiles
            continue
        change = throughput_change(a, b, level=level) if q is None else latency_change(a, b, q, level=level)
        rows.append(Row(scenario, variant, alias, change, _verdict(change, higher_is_better(key), tie_margin)))
    return rows


def _by_throughput(scenario: str) -> bool:
    """Whether a scenario's samples are compared as a throughput (it says so: `ci_statistic`), else as latencies."""
    return scenario in registry.SCENARIOS and registry.load(registry.SCENARIOS, scenario).ci_statistic == "throughput"


def _verdict(change: Change, higher_is_better: bool, tie_margin: float) -> str:
    if not change.significant or abs(change.rel) < tie_margin:
        return "tie"
    return "better" if (change.rel > 0) == higher_is_better else "worse"


def parse_fail_on(text: str) -> dict[str, float]:
    """'p99:+5%,throughput:-5%' -> {'p99': 0.05, 'throughput': -0.05}."""
    rules = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = re.fullmatch(r"(\w+):([+-]?\d+(?:\.\d+)?)%", part)
        if not match or match.group(1) not in ALIASES:
            raise ConfigError(f"cannot read --fail-on rule {part!r}",
                              f"write METRIC:+N% or METRIC:-N% with METRIC one of {', '.join(ALIASES)}")
        rules[match.group(1)] = float(match.group(2)) / 100.0
    return rules


def regressions(rows: list[Row], rules: dict[str, float]) -> list[Row]:
    """Rows that got significantly worse by more than the rule allows."""
    failed = []
    for row in rows:
        limit = rules.get(row.metric)
        if limit is None or not row.change.significant:
            continue
        higher = higher_is_better(ALIASES[row.metric][0])
        if (row.change.rel < -abs(limit)) if higher else (row.change.rel > abs(limit)):
            failed.append(row)
    return failed
