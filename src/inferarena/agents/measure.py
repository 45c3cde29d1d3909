"""Worker side of `inferarena agents`: the development phase and one arm's measurement, each a job the
launcher runs in its own process (a crashing model fails that job, and the run goes on).

    develop(...)  the baseline on the development split; from its failures, the auditor's indicators;
                  the dropout arm's greedy removal of agents and edges (AgentDropout's static pruning)
    measure(...)  one arm on the test split with one model variant -> a VariantResult (kind workflow)

The arms run the same tasks with the same per-call seeds:
    baseline            no gate
    dropout             no gate, the communication graph the development phase pruned
    reject-only         the gate with no retries: a flawed message is removed at once
    rectify-or-reject   the gate with `retries` rectify attempts, then removal (AgentDropoutV2)
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Callable

import numpy as np

from inferarena.agents import checkpoint
from inferarena.agents import tasks as task_sets
from inferarena.agents.arms import Arm, ArmOutcome, Development, DropoutSearch, DropoutTry, Pooling, TaskAnswer, Usage
from inferarena.agents.config import AgentsConfig, WorkflowConfig
from inferarena.agents.execute import TaskRun, Topology, run_task
from inferarena.agents.gate import Gate, GateContext
from inferarena.agents.pool import Charge, PooledChat, ReplyStore, TaskPool
from inferarena.results import ScenarioResult, VariantResult
from inferarena.scenarios.base import QUICK_NOTE


class Models:
    """Each agent's chat model: the arm's variant, or the model its workflow entry names; loaded once."""

    def __init__(self, config: AgentsConfig, workflow: WorkflowConfig, variant: str, cache_dir: Path):
        self.config, self.workflow, self.variant, self.cache_dir = config, workflow, variant, cache_dir
        self.loaded: dict[str, object] = {}
        started = time.perf_counter()
        self.main = self._load(variant)
        self.load_s = time.perf_counter() - started

    def _load(self, spec: str):
        from inferarena.agents.chat import EndpointChat, variant_model

        if spec not in self.loaded:
            if spec.startswith(("http://", "https://")):
                self.loaded[spec] = EndpointChat(spec, self.config.endpoint_model)
            else:
                threads = self.config.threads or os.cpu_count()
                self.loaded[spec] = variant_model(spec, self.config.model, self.cache_dir, threads, self.config.context)
        return self.loaded[spec]

    def __call__(self, agent: str):
        name = self.workflow.agent(agent).model
        return self._load(name) if name else self.main

    def through(self, pool: TaskPool) -> Callable[[str], object]:
        """Each agent's model, its calls going through `pool` (batched across tasks, shared between arms)."""
        wrapped: dict[int, PooledChat] = {}

        def model_of(agent: str):
            model = self(agent)
            if id(model) not in wrapped:
                wrapped[id(model)] = pool.wrap(model)
            return wrapped[id(model)]

        return model_of

    def close(self) -> None:
        for model in self.loaded.values():
            model.close()


def _each(what: str, tasks: list, run, pool: TaskPool) -> list[TaskRun]:
    """Run every task through `pool`, one line each in the job's log (`.inferarena/agents-N/`) as it ends."""
    out: list[TaskRun | None] = [None] * len(tasks)
    for finished, (i, done, charge) in enumerate(pool.run(tasks, run), 1):
        done.seconds = charge.seconds
        _print_task(what, finished, len(tasks), done, _shared(charge))
        out[i] = done
    return out  # type: ignore[return-value]


def _shared(charge: Charge) -> str:
    return f" ({charge.shared} replies shared, {charge.shared_s:.1f} s of it)" if charge.shared else ""


def pool_for(config: AgentsConfig, work: str | None, meter=None) -> TaskPool:
    """The run's task pool: --parallel-tasks at once, the replies kept in the run's folder (unless
    --no-share-replies)."""
    store = ReplyStore(Path(work) / "replies.jsonl" if work else None) if config.share_replies else None
    return TaskPool(config.parallel_tasks, meter, store)


def _print_task(what: str, i: int, n: int, done: TaskRun, suffix: str = "") -> None:
    total = done.total
    print(f"{what}: task {i}/{n} {done.task.id} {'right' if done.correct else 'wrong'}, "
          f"{total.prompt_tokens + total.completion_tokens} tokens, {done.seconds:.1f} s{suffix}", flush=True)


def max_tokens(config: AgentsConfig) -> int | None:
    """Completion tokens per message: --max-tokens (which a task set that needs more fills in, see
    `AgentsConfig`); else 64 with --quick; else the workflow's own limits (None)."""
    if config.max_tokens is not None:
        return config.max_tokens
    return 64 if config.quick else None


def _flaw(task, text: str, gate: Gate, agent) -> str | None:
    """The first deterministic verifier's flaw category for a message (the auditor is not asked)."""
    for name in agent.checks:
        if name == "auditor":
            continue
        check = gate.verifier(name).check(task, text, GateContext(agent, None, gate.sandbox_timeout_s))
        if check.score < 1.0:
            return check.category
    return None


def _accuracy_tokens(runs: list[TaskRun]) -> tuple[float, float]:
    total = [r.total for r in runs]
    return (sum(r.correct for r in runs) / len(runs),
            float(np.mean([u.prompt_tokens + u.completion_tokens for u in total])))


def dev_count(config: AgentsConfig) -> int:
    """Development tasks: --dev-n, at most 4 with --quick."""
    return min(config.dev_n, 4) if config.quick else config.dev_n


def develop(config: AgentsConfig, workflow: WorkflowConfig, variant: str, cache_dir: str, db: str | None,
            work: str | None = None) -> Development:
    """The development phase for one model variant: what the gated arms audit with (indicators) and
    the graph the dropout arm keeps; each arm's job receives it."""
    _, dev = task_sets.split(config.tasks, config.n, dev_count(config), config.seed)
    models = Models(config, workflow, variant, Path(cache_dir))
    pool = pool_for(config, work)
    model_of = models.through(pool)
    tokens = max_tokens(config)
    gated = any(Arm(a).gated for a in config.arms)
    try:
        base = _each("development baseline", dev,
                     lambda t: run_task(workflow, t, model_of, None, Topology(), tokens, config.seed), pool)
        accuracy, mean_tokens = _accuracy_tokens(base)
        out = Development(len(dev), accuracy, mean_tokens)
        audited = gated and any("auditor" in a.checks for a in workflow.agents)
        if audited:
            from inferarena.agents.auditor import mine
            from inferarena.agents.embed import Embedder

            gate = Gate(config.gate, sandbox_timeout_s=config.sandbox_timeout_s)
            failed = [(m.text, _flaw(r.task, m.text, gate, workflow.agent(m.agent)))
                      for r in base if not r.correct for m in r.messages if m.agent in {a.name for a in workflow.actors}]
            embed = Embedder(db)
            mined = mine(failed, embed, seed=config.seed)
            out.indicators, out.indicator_vectors = list(mined.indicators), mined.embeddings.tolist()
            out.embedder, out.embedder_pick = embed.note, embed.pick
            embed.close()
        if Arm.DROPOUT in config.arms:
            candidates = config.dropout_candidates if not config.quick else min(config.dropout_candidates, 3)
            topology, out.dropout = dropout_search(workflow, dev, base, model_of, tokens, config.seed, candidates, pool)
            out.removed_agents, out.removed_edges = sorted(topology.removed_agents), sorted(topology.removed_edges)
        return out
    finally:
        models.close()


def removals(workflow: WorkflowConfig) -> list[tuple[str, object]]:
    """What static dropout may remove: an agent that speaks in rounds (a judge never), or an edge (one agent
    no longer reading another). The search skips a removal that leaves the aggregator nobody to read."""
    out: list[tuple[str, object]] = [("agent", a.name) for a in workflow.actors]
    out += [("edge", (a.name, s)) for a in workflow.actors for s in a.sees if s != a.name]
    return out


def dropout_search(workflow, dev, base_runs, models, tokens, seed, candidates,
                   pool: TaskPool) -> tuple[Topology, DropoutSearch]:
    """Greedy static pruning on the development split: try `candidates` removals in a seeded order and keep
    each one that lowers tokens per task without lowering accuracy (first improvement)."""
    options = removals(workflow)
    random.Random(f"dropout-{seed}").shuffle(options)
    best_acc, best_tok = _accuracy_tokens(base_runs)
    current, tried = Topology(), []
    for what, item in options[:candidates]:
        agents, edges = set(current.removed_agents), set(current.removed_edges)
        if what == "agent":
            agents.add(item)
        else:
            edges.add(item)
        if not set(workflow.aggregator.reads) - agents:
            continue
        topology = Topology(frozenset(agents), frozenset(edges))
        runs = _each(f"dropout without {what} {item}", dev,
                     lambda t: run_task(workflow, t, models, None, topology, tokens, seed), pool)
        accuracy, mean_tokens = _accuracy_tokens(runs)
        kept = accuracy >= best_acc and mean_tokens < best_tok
        tried.append(DropoutTry(f"{what} {item if what == 'agent' else '->'.join(reversed(item))}", accuracy,
                                round(mean_tokens, 1), kept))
        if kept:
            current, best_acc, best_tok = topology, accuracy, mean_tokens
    return current, DropoutSearch(tried, current.describe(), best_acc, round(best_tok, 1))


def measure(config: AgentsConfig, workflow: WorkflowConfig, variant: str, arm: Arm | str, dev: Development | None, cache_dir: str,
            db: str | None, price, tasks_log: str | None = None) -> VariantResult:
    """One arm on the test split with one model variant, `config.parallel_tasks` tasks at once (agents/pool.py:
    each task is charged its replies' shares of the wall time and metered energy). Each finished task
    is appended to `tasks_log` (agents/checkpoint.py), and tasks already there are taken from it, so an arm cut
    off by a stop resumes where it was."""
    from inferarena.hardware import host
    from inferarena.trackers.energy import EnergyMeter
    from inferarena.trackers.memory import MemoryTracker

    arm = Arm(arm)
    test, _ = task_sets.split(config.tasks, config.n, config.dev_n, config.seed)
    tokens = max_tokens(config)
    with MemoryTracker() as memory:
        models = Models(config, workflow, variant, Path(cache_dir))
        embed = None
        try:
            meter = EnergyMeter(host(), config.energy.tdp_w, config.energy.tdp_threads, config.energy.idle_s)
            pool = pool_for(config, str(Path(tasks_log).parent) if tasks_log else None, meter)
            model_of = models.through(pool)
            gate = None
            if arm.gated:
                auditor = None
                if dev is not None and dev.indicators:
                    from inferarena.agents.auditor import IndicatorPool, LlmAuditor
                    from inferarena.agents.embed import Embedder

                    embed = Embedder(db, dev.embedder_pick)
                    indicators = IndicatorPool(dev.indicators, np.asarray(dev.indicator_vectors, np.float32), embed)
                    auditor = LlmAuditor(pool.wrap(models.main), indicators, config.gate.top_k,
                                         config.gate.auditor_tokens)
                gate = Gate(config.gate, rectify=arm.rectifies, auditor=auditor, sandbox_timeout_s=config.sandbox_timeout_s)
            topology = (Topology(frozenset(dev.removed_agents), frozenset(dev.removed_edges))
                        if arm is Arm.DROPOUT and dev is not None else Topology())
            log = checkpoint.TaskLog(Path(tasks_log) if tasks_log else None, arm_key(config, workflow, variant, arm, dev))
            kept: dict[str, tuple[TaskRun, float, float | None]] = {}
            for task in test:
                if task.id in log.done:
                    kept[task.id] = log.done[task.id]
                    _print_task(arm, len(kept), len(test), log.done[task.id][0], " (from the task log)")
            todo = [t for t in test if t.id not in kept]
            shared = shared_s = 0
            for _, run, charge in pool.run(todo, lambda t: run_task(workflow, t, model_of, gate, topology, tokens,
                                                                    config.seed)):
                run.seconds = charge.seconds
                log.add(run, charge.seconds, charge.energy_j)
                kept[run.task.id] = (run, charge.seconds, charge.energy_j)
                shared, shared_s = shared + charge.shared, shared_s + charge.shared_s
                _print_task(arm, len(kept), len(test), run, _shared(charge))
            runs = [kept[t.id][0] for t in test]
            wall_s = sum(kept[t.id][1] for t in test)
            joules = sum(kept[t.id][2] or 0.0 for t in test)
            main = models.main
        finally:
            if embed is not None:
                embed.close()
            models.close()
    from inferarena.trackers.energy import EnergyStats

    energy = EnergyStats(joules, joules / wall_s if wall_s else 0.0, meter.source, meter.basis) if main.local else None
    return _result(config, workflow, variant, arm, dev, runs, wall_s, energy, price, main, models.load_s,
                   memory.result.as_dict(), topology, Pooling(config.parallel_tasks, shared, round(shared_s, 3)))


def arm_key(config: AgentsConfig, workflow: WorkflowConfig, variant: str, arm: str, dev: Development | None) -> str:
    """What decides an arm's task outcomes: a task log written under another key is not reused."""
    return checkpoint.key(config.decisive(), workflow.model_dump(mode="json"), variant, arm,
                          dev.as_dict() if dev is not None else {})


def wilson(correct: int, n: int) -> tuple[float, float]:
    from scipy.stats import binomtest

    ci = binomtest(correct, n).proportion_ci(0.95, method="wilson")
    return float(ci.low), float(ci.high)


def _result(config, workflow, variant, arm, dev, runs: list[TaskRun], wall_s, energy, price, model, load_s, memory,
            topology, pooling: Pooling | None = None) -> VariantResult:
    n, correct = len(runs), sum(r.correct for r in runs)
    low, high = wilson(correct, n)
    per_agent: dict[str, Usage] = {}
    for r in runs:
        for name, usage in r.usage.items():
            per_agent.setdefault(name, Usage()).add(usage)
    total = Usage()
    for usage in per_agent.values():
        total.add(usage)
    # What the actors said (a fallback's restored copy is not a new message).
    said = [m for r in runs for m in r.messages if m.agent in {a.name for a in workflow.actors} and m.status != "restored"]
    spoken = sum(u.messages for name, u in per_agent.items() if name != "auditor") or 1
    tokens = total.prompt_tokens + total.completion_tokens
    metrics = {
        "tasks": n, "correct": correct, "accuracy": correct / n, "accuracy_ci_low": low, "accuracy_ci_high": high,
        "prompt_tokens": total.prompt_tokens, "completion_tokens": total.completion_tokens,
        "tokens_per_task": tokens / n, "tokens_per_correct": tokens / correct if correct else None,
        # accuracy ÷ (tokens per task / 1,000): what each thousand tokens spent on a task buys
        "accuracy_per_1k_tokens": 1000.0 * correct / tokens if tokens else None,
        "llm_calls": total.calls, "auditor_calls": per_agent.get("auditor", Usage()).calls,
        "wall_s": round(wall_s, 3), "seconds_per_task": wall_s / n,
        "prune_rate": sum(m.status == "rejected" for m in said) / max(1, len(said)),
        "rectify_rounds_mean": total.rectify_rounds / spoken,
        "fallback_rate": sum(r.fallback for r in runs) / n,
        # replies cut at max_tokens, among the agents' replies (the auditor's calls are not replies)
        "truncated_rate": (sum(u.truncated for name, u in per_agent.items() if name != "auditor")
                           / max(1, sum(u.calls for name, u in per_agent.items() if name != "auditor"))),
    }
    if energy is not None:
        metrics |= {"energy_j": energy.energy_j, "energy_j_per_task": energy.energy_j / n,
                    "power_w_avg": energy.power_w_avg, "energy_source": energy.energy_source,
                    "energy_basis": energy.energy_basis}
        metrics |= {"cost_usd_per_1k_tasks": price.usd_per_hour * wall_s / 3600.0 / n * 1000.0, "cost_basis": price.label}
    metrics = {k: v for k, v in metrics.items() if v is not None}
    scenario = ScenarioResult("workflow", True, None, QUICK_NOTE if config.quick else "full", metrics,
                              latencies_ms=np.array([r.seconds * 1000.0 for r in runs]))
    gate = {"settings": config.gate.model_dump(), "rectify": arm.rectifies} if arm.gated else None
    pipeline = {"arm": arm, "workflow": workflow.name, "gate": gate,
                "removed": topology.describe() if arm is Arm.DROPOUT else []}
    info = {**getattr(model, "info", {}), "workflow": workflow.name, "tasks": config.tasks,
            "max_tokens": max_tokens(config)}
    report = dev.report(arm) if dev is not None else None
    outcome = ArmOutcome(arm.value, model.label, per_agent,
                         [TaskAnswer(r.task.id, r.correct, (r.answer or "")[-120:]) for r in runs], report,
                         pooling or Pooling())
    return VariantResult(name=f"{model.label}@{arm}", runtime=model.runtime, precision=model.precision, shape="workflow",
                         knobs={"threads": config.threads, "context": config.context} if model.local else {},
                         kind="workflow", pipeline=arm.value, pipeline_config=pipeline, memory=memory,
                         session_info=info, load_s=round(load_s, 3), scenarios={"workflow": scenario},
                         payload=outcome.as_dict())
