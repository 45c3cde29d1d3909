"""The driver of `inferarena agents`: for each model variant, the development phase, then each arm in
its own job; every finished arm is stored at once (one transaction), and every finished task and the
development result are kept in the run's work folder (agents/checkpoint.py), so `--resume` measures only what
is missing and a failed arm is recorded as failed while the others go on.

    run_id = run(AgentsConfig(workflow="debate-math", tasks="arithmetic", n=50), store, paths, launcher)
"""

from __future__ import annotations

from inferarena.agents import checkpoint
from inferarena.agents.arms import Arm, Development
from inferarena.agents.config import AgentsConfig, load_workflow
from inferarena.config import digest
from inferarena.errors import ConfigError
from inferarena.events import EventSink, ignore
from inferarena.results import RunSummary, VariantResult

SMALL_MODEL_NOTE = ("SmolLM2-135M gives little reasoning accuracy: trust its token, call, time and energy figures, "
                    "not what its accuracy says about the methods (point --endpoint at a real model for that)")


def variants_of(config: AgentsConfig) -> list[str]:
    return [config.endpoint] if config.endpoint else list(config.variants)


def planned_names(config: AgentsConfig, variant: str) -> list[str]:
    """The stored names of one variant's arms: the model's label, then @arm (before the model is loaded)."""
    label = variant if variant.startswith(("http://", "https://")) else _label(config, variant)
    return [f"{label}@{arm}" for arm in config.arms]


def _label(config: AgentsConfig, variant: str) -> str:
    runtime, _, precision = variant.partition("/")
    if precision:
        return variant
    from inferarena import models

    return f"{runtime}/{models.resolve(config.model).meta.get('precision')}"


def config_hash(config: AgentsConfig) -> str:
    return digest(config.decisive())


def describe_tasks(config: AgentsConfig) -> dict:
    from inferarena.agents import measure

    what = {"arithmetic": "generated arithmetic word problems (seeded, 2-4 steps)",
            "code": "small Python functions with hidden unit tests",
            "gsm8k": "GSM8K test problems (100 shipped, seeded order)"}.get(config.tasks,
                                                                          f"tasks from {config.tasks}")
    dev = measure.dev_count(config)
    apart = "other seeds" if config.tasks in ("arithmetic", "code") else "not among these"
    return {"kind": "tasks", "samples": config.n, "source": f"{what}; {dev} more for development ({apart})",
            "tasks": config.tasks, "seed": config.seed, "dev_n": dev}


def check(config: AgentsConfig):
    """The workflow, once the tasks and variants are known to be readable: a user's mistake ends here, in one
    line, before any database or job is touched."""
    from inferarena.agents import tasks as task_sets
    from inferarena.agents.chat import check_variant

    workflow = load_workflow(config.workflow)
    task_sets.split(config.tasks, config.n, config.dev_n, config.seed)
    for variant in ([] if config.endpoint else config.variants):
        check_variant(variant)
    if config.endpoint and not config.endpoint.startswith(("http://", "https://")):
        raise ConfigError(f"--endpoint {config.endpoint!r} is not an http(s) URL",
                          "pass the server's base URL, e.g. http://127.0.0.1:8000/v1")
    return workflow


def run(config: AgentsConfig, store, paths, launcher, resume: bool = False, on_event: EventSink | None = None,
        timeout_s: float | None = None, db: str | None = None) -> RunSummary:
    """`db`: the store's --db (a SQLite path or a PostgreSQL URL), where the auditor looks for the arena's
    MiniLM pick."""
    from inferarena import environment
    from inferarena.agents import measure
    from inferarena.hardware import host
    from inferarena.trackers import cost

    emit = on_event or ignore
    workflow = check(config)  # bad input fails here, before any job
    price = cost.price(host(), config.cost.instance, config.cost.usd_per_hour, device="cpu")  # llama.cpp agents run on CPU
    key = config_hash(config)
    run_id = store.resumable_run(key) if resume else None
    skipped: list[str] = []
    notes = []
    if config.model == "smollm2" and not config.endpoint:  # the 135M model: mechanism checks only
        notes.append(SMALL_MODEL_NOTE)
    if config.endpoint:
        notes.append(f"agents on the endpoint {config.endpoint}: energy and cost are the server's and not metered here")
    if run_id is not None:
        skipped = sorted(store.finished_variants(run_id))
    else:
        env = {**environment.capture(), "price": price.label, "launcher": launcher.name}
        run_id = store.create_run(config.model_dump(mode="json") | {"scenarios": ["workflow"], "kind": "workflow"},
                                  key, config.model if not config.endpoint else config.endpoint, config.quick, env,
                                  describe_tasks(config), notes)
    variants = variants_of(config)
    todo = sum(1 for v in variants for name in planned_names(config, v) if name not in skipped)
    work = paths.work_dir / f"agents-{run_id}"
    work.mkdir(parents=True, exist_ok=True)
    emit("plan", {"run_id": run_id, "todo": todo, "notes": [*notes, f"each job logs a line per task in {work}/"]})
    limit = timeout_s or max(600.0, 60.0 * (config.n + config.dev_n) * len(workflow.agents))
    for variant in variants:
        names = planned_names(config, variant)
        wanted = [(arm, name) for arm, name in zip(config.arms, names) if name not in skipped]
        if not wanted:
            continue
        dev: Development | None = None
        if any(arm is not Arm.BASELINE for arm, _ in wanted):
            saved, dev_key = work / f"{_safe(variant)}-dev.json", checkpoint.key(
                config.decisive(), workflow.model_dump(mode="json"), variant)
            dev = checkpoint.load_development(saved, dev_key)
            label = f"{variant}: development split" + (" (saved)" if dev else "")
            emit("start", {"name": label})
            if dev is None:
                outcome = launcher.run(measure.develop, (config, workflow, variant, str(paths.cache_dir), db, str(work)),
                                       limit,
                                       work / f"{_safe(variant)}-dev.log")
                if not outcome.ok:
                    for arm, name in wanted:
                        _failed(store, run_id, config, variant, arm, name, f"development phase: {outcome.error}",
                                outcome.detail)
                        emit("done", {"name": name, "ok": False, "error": f"development phase: {outcome.error}",
                                      "variant": True})
                    continue
                dev = outcome.value
                checkpoint.save_development(saved, dev_key, dev)
            emit("done", {"name": label, "ok": True, "error": None})
        for arm, name in wanted:
            emit("start", {"name": f"{name} ({config.n} tasks)"})
            outcome = launcher.run(measure.measure, (config, workflow, variant, arm, dev, str(paths.cache_dir), db, price,
                                                     str(work / f"{_safe(name)}.tasks.jsonl")),
                                   limit, work / f"{_safe(name)}.log")
            if outcome.ok:
                store.save_variant(run_id, outcome.value)
            else:
                _failed(store, run_id, config, variant, arm, name, outcome.error, outcome.detail)
            emit("done", {"name": name, "ok": outcome.ok, "error": outcome.error, "variant": True})
    store.finish_run(run_id)
    return RunSummary(run_id, bool(skipped), skipped)


def _failed(store, run_id, config, variant, arm, name, error, detail) -> None:
    runtime, _, precision = variant.partition("/")
    store.save_variant(run_id, VariantResult(name=name, runtime=runtime if precision else "endpoint",
                                             precision=precision or "remote", shape="workflow", kind="workflow",
                                             pipeline=arm, status="failed", error=error, error_detail=detail))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]
