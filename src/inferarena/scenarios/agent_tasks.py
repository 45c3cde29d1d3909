"""The `workflow` scenario: tasks run through a multi-agent workflow (`inferarena agents`), one arm of
it on one model variant. Not a LoadGen scenario: a task is a conversation of many LLM calls whose
figures are accuracy, tokens, calls, time and energy, measured by `agents.measure`. It declares how
its leaderboard ranks and which columns it shows, like any scenario, so `show`, `report` and
`compare` read an agents run as they read any other.
"""

from __future__ import annotations

from inferarena.scenarios.base import Scenario


class WorkflowTasks(Scenario):
    """Declares how arms rank and read; no LoadGen test runs it (`inferarena agents` measures the tasks)."""

    name = "workflow"
    kind = "workflow"
    lg_scenario = "Workflow"  # the leaderboard's title (no LoadGen scenario behind it)
    loadgen = False
    metric = "accuracy"
    ranking = "accuracy on the tasks, highest first"
    columns = (("accuracy", "accuracy"), ("accuracy_ci_low", "CI low"), ("accuracy_ci_high", "CI high"),
               ("prompt_tokens", "prompt tok"), ("completion_tokens", "compl tok"), ("llm_calls", "calls"),
               ("wall_s", "wall s"), ("prune_rate", "pruned"), ("rectify_rounds_mean", "rectify"),
               ("truncated_rate", "truncated"), ("tokens_per_correct", "tok/correct"),
               ("accuracy_per_1k_tokens", "acc/1k tok"))
    # Shown after its own columns, in place of the LoadGen scenarios' per-query figures.
    efficiency = (("energy_j_per_task", "J/task", 1.0), ("cost_usd_per_1k_tasks", "$/1k tasks", 1.0))
    spread_metric = "accuracy"
    ci_statistic = None  # the accuracy's CI is a Wilson interval over tasks, stored with it
    drift_check = False
