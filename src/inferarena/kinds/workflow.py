"""Multi-agent workflows on generative models: the `workflow` kind (`inferarena agents`).

A "variant" of this kind is one arm of a workflow (baseline, dropout, reject-only, rectify-or-reject)
on one model variant (`llama_cpp/q4_1`, or an endpoint), measured on the same tasks and seeds. Its
figures are accuracy with a Wilson 95% CI, tokens, LLM calls, wall time, energy, prune and rectify
rates, tokens per correct answer and cost per 1,000 tasks (`scenarios/agent_tasks.py`). Runs are made by
`inferarena agents`, not `inferarena run`: the kind declares (profiles, columns, findings) and measures nothing.
"""

from __future__ import annotations

from inferarena.agents.arms import Arm, ArmOutcome
from inferarena.kinds.base import Column, Figure, Kind, Plot, Profile


class Workflow(Kind):
    name = "workflow"
    modes = ("quick (messages capped at 64 tokens, 4 development tasks)",
             "full (every task, the workflow's or --max-tokens' message limits)")
    profiles = {
        "accuracy": Profile("accuracy", "workflow.accuracy", "accuracy", None, None, "most tasks answered right"),
        "latency": Profile("latency", "workflow.seconds_per_task", "time per task", None, None,
                           "least wall time per task"),
        "balanced": Profile("balanced", "balanced_score", "balanced score", None, None,
                            "best geometric mean of tokens per task and accuracy, each relative to the best"),
        "tokens": Profile("tokens", "workflow.tokens_per_correct", "tokens per correct answer", None, None,
                          "fewest tokens per correct answer"),
        "energy": Profile("energy", "workflow.energy_j_per_task", "energy per task", None, None,
                          "least energy per task"),
        "cost": Profile("cost", "workflow.cost_usd_per_1k_tasks", "cost per 1,000 tasks", None, None,
                        "lowest cost per 1,000 tasks"),
    }
    # The first two are the "balanced" axes (lower is better, then higher); the first three the Pareto front.
    trade_offs = (Figure("workflow.tokens_per_task", "tokens per task"), Figure("workflow.accuracy", "accuracy"),
                  Figure("workflow.energy_j_per_task", "energy per task"), Figure("workflow.seconds_per_task", "time per task"))
    constraints = {}
    judged_by = dict.fromkeys(profiles, ("workflow",))
    search_batch_sizes = (1,)
    fidelity_title = "Arms — accuracy on the tasks (Wilson 95% CI)"
    fidelity_columns = (Column("tasks", "tasks"), Column("correct", "right"), Column("accuracy", "accuracy", ".3f"),
                        Column("accuracy_ci_low", "CI low", ".3f"), Column("accuracy_ci_high", "CI high", ".3f"))
    pareto_title = "Pareto front — no other arm is better on tokens per task, accuracy and energy per task at once"
    pareto_columns = (Figure("workflow.tokens_per_task", "tokens/task", ".0f"), Figure("workflow.accuracy", "accuracy", ".3f"),
                      Figure("workflow.energy_j_per_task", "J/task", ".3g"))
    plots = (Plot("workflow.tokens_per_task", "workflow.accuracy", "tokens per task (prompt + completion)",
                  "accuracy", "Accuracy vs tokens"),
             Plot("workflow.seconds_per_task", "workflow.accuracy", "seconds per task", "accuracy", "Accuracy vs time"),
             Plot("workflow.energy_j_per_task", "workflow.accuracy", "energy per task (J)", "accuracy",
                  "Accuracy vs energy"))
    serving = "openai"

    def scenarios(self, requested):
        return ["workflow"]

    def fidelity_of(self, variant):
        """An arm's accuracy on the tasks (not agreement with a reference: a workflow has none)."""
        m = variant.scenarios["workflow"].metrics if "workflow" in variant.scenarios else {}
        return {c.key: m[c.key] for c in self.fidelity_columns if c.key in m}

    def fidelity_key(self, variants):
        return "tasks", "tasks"

    def tables(self, run):
        rows = []
        for v in run.ok:
            for agent, u in ArmOutcome.of(v).per_agent.items():
                rows.append([v.name, agent, str(u.calls), str(u.prompt_tokens), str(u.completion_tokens),
                             f"{u.seconds:.1f}", str(u.messages), str(u.rejected), str(u.rectify_rounds),
                             str(u.truncated)])
        if not rows:
            return []
        return [("Per agent — what each agent (and the auditor) cost over the arm's tasks; truncated: replies cut "
                 "off at --max-tokens",
                 ["arm", "agent", "calls", "prompt tok", "compl tok", "seconds", "messages", "rejected", "rectified",
                  "truncated"], rows)]

    def findings(self, run):
        lines = [line for variant, arms in _by_variant(run).items() for line in _versus_baseline(variant, arms)]
        shared = {v.name: ArmOutcome.of(v).pooling.shared_replies_this_job for v in run.ok}
        if any(shared.values()):
            lines.append("Replies to calls an earlier arm had already made (same prompt, settings and seed) were taken "
                         "from the run's folder, and each arm was charged the seconds and joules measured when they "
                         "were decoded: " + ", ".join(f"{name} {n}" for name, n in shared.items() if n)
                         + " (agents/pool.py; --no-share-replies decodes them again).")
        return lines

    def reproduce_command(self, run, pick):
        c = run.config
        outcome = ArmOutcome.of(pick)
        variant = outcome.variant
        target = f"--endpoint {variant}" if c.get("endpoint") else f"--model {c.get('model')} --variants {variant}"
        return (f"inferarena agents --workflow {c.get('workflow')} --tasks {c.get('tasks')} --n {c.get('n')} "
                f"--arms {outcome.arm} {target} --seed {c.get('seed', 0)}" + (" --quick" if c.get("quick") else ""))

    def document(self, run):
        return {"arms": arms_document(run)}


def arms_document(run) -> list[dict]:
    """The `arms[]` of the --json: one entry per arm × variant, with the figures the issue names."""
    out = []
    for v in run.variants:
        m = v.scenarios["workflow"].metrics if v.ok and "workflow" in v.scenarios else {}
        outcome = ArmOutcome.of(v)
        out.append({"arm": outcome.arm, "variant": outcome.variant, "status": v.status, "error": v.error,
                    "accuracy": m.get("accuracy"),
                    "accuracy_ci": [m.get("accuracy_ci_low"), m.get("accuracy_ci_high")] if m else None,
                    **{k: m.get(k) for k in ("tasks", "correct", "prompt_tokens", "completion_tokens", "llm_calls",
                                             "wall_s", "energy_j", "energy_source", "prune_rate",
                                             "rectify_rounds_mean", "truncated_rate", "tokens_per_correct",
                                             "accuracy_per_1k_tokens", "cost_usd_per_1k_tasks")},
                    "per_agent": outcome.as_dict()["per_agent"] if v.ok else None})
    return out


def _by_variant(run) -> dict:
    out: dict = {}
    for v in run.ok:
        outcome = ArmOutcome.of(v)
        out.setdefault(outcome.variant, {})[outcome.arm] = v
    return out


def paired_difference(a: list[bool], b: list[bool], reps: int = 4000, seed: int = 0) -> tuple[float, float, float]:
    """Accuracy of b minus a on the same tasks, with a 95% paired-bootstrap interval (tasks resampled)."""
    import numpy as np

    x, y = np.asarray(a, float), np.asarray(b, float)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(x), size=(reps, len(x)))
    diffs = (y[picks] - x[picks]).mean(axis=1)
    return float(y.mean() - x.mean()), float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))


# The effect the rectify-or-reject paper reports for 8B and 14B models on math (as issue 40 quotes it):
# +6.39 points of accuracy at about 4.4x the tokens (Fixed-MAS 51.74 % at 39.2M tokens, 53.50 % at 171.0M).
PAPER_EFFECT = 0.0639


def tasks_to_resolve(a: list[bool], b: list[bool], effect: float = PAPER_EFFECT) -> int:
    """Paired tasks whose 95 % interval would be narrower than ±`effect`, at the per-task variance of the
    differences seen here (at least that of `effect` discordant tasks, where none disagreed)."""
    import math

    import numpy as np

    d = np.asarray(b, float) - np.asarray(a, float)
    variance = max(float(d.var()) if len(d) else 0.0, effect * (1 - effect))
    return math.ceil(1.96**2 * variance / effect**2)


def _versus_baseline(variant: str, arms: dict) -> list[str]:
    base = arms.get(Arm.BASELINE)
    if base is None:
        return []
    bm = base.scenarios["workflow"].metrics
    right = {a.task: a.correct for a in ArmOutcome.of(base).answers}
    lines = []
    for arm in (a for a in Arm if a is not Arm.BASELINE):
        other = arms.get(arm)
        if other is None:
            continue
        om = other.scenarios["workflow"].metrics
        theirs = {a.task: a.correct for a in ArmOutcome.of(other).answers}
        shared = [t for t in right if t in theirs]
        diff, low, high = paired_difference([right[t] for t in shared], [theirs[t] for t in shared])
        verdict = ("better" if low > 0 else "worse" if high < 0 else "no significant change")
        tokens = om["tokens_per_task"] / bm["tokens_per_task"] if bm.get("tokens_per_task") else float("nan")
        text = (f"{variant}: {arm} vs baseline — accuracy {om['accuracy']:.3f} vs {bm['accuracy']:.3f}, "
                f"difference {diff:+.3f} [95% CI {low:+.3f}, {high:+.3f}, paired over {len(shared)} tasks]: {verdict}; "
                f"tokens ×{tokens:.2f}")
        if om.get("energy_j") and bm.get("energy_j"):
            text += f", energy ×{om['energy_j'] / bm['energy_j']:.2f}"
            if om.get("energy_source") == "estimate":
                text += " (estimated)"
        text += f", wall time ×{om['wall_s'] / bm['wall_s']:.2f}"
        if arm.gated:
            text += f"; pruned {om.get('prune_rate', 0):.0%} of messages, {om.get('rectify_rounds_mean', 0):.2f} rectify rounds per message"
        if om.get("truncated_rate") is not None:
            text += f"; {om['truncated_rate']:.0%} of replies cut at max_tokens (baseline {bm.get('truncated_rate', 0):.0%})"
        if om.get("accuracy_per_1k_tokens") is not None and bm.get("accuracy_per_1k_tokens"):
            text += (f"; accuracy per 1k tokens {om['accuracy_per_1k_tokens']:.3f} vs "
                     f"{bm['accuracy_per_1k_tokens']:.3f}")
        if low <= 0 <= PAPER_EFFECT <= high:
            needed = tasks_to_resolve([right[t] for t in shared], [theirs[t] for t in shared])
            text += (f". This interval cannot tell an effect the size of the paper's (+{100 * PAPER_EFFECT:.2f} "
                     f"points) from none: about {needed} paired tasks would")
        lines.append(text + ".")
    return lines
