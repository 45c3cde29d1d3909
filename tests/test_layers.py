"""Layers that point down: no import cycle among inferarena's modules (imports inside functions count,
since they are how the cycles hide), plugins never reach up into the orchestrator or across into
another axis's plugins, and decisions never import a renderer. Read with `ast`: nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "inferarena"

# Each axis's plugins live in their own package. A plugin module is one that registry.py names; the
# axis's other modules (`base`, the package `__init__`, format helpers such as models.hf_encoder,
# trackers and workloads, which have no registry) are what it shares, so any module may import them.
AXES = ("passes", "runtimes", "models", "scenarios", "evaluators", "workloads", "trackers", "kinds")
# Worker and orchestrator code: what runs plugins, which a plugin must never import.
ORCHESTRATOR = ("jobs", "arena", "worker", "search", "recommend", "plan")
# What the store may import: the records it keeps and the floor under them (no plugin, no orchestrator).
STORE_READS = ("store", "results", "config", "errors", "artifacts", "hardware", "registry", "fsutil", "")
# Who may import the agents package: its command, and the workflow kind's declarations (agents.arms only).
AGENTS_IMPORTERS = {"inferarena.cli_agents": None, "inferarena.kinds.workflow": {"inferarena.agents.arms"}}
ORCHESTRATOR_PREFIXES = ("cli", "launchers", "doctor")  # doctor_jobs runs plugins as jobs does
DECISIONS = ("recommend", "search", "arena", "plan")


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Every module of `package` under `root` (its parent folder), a package named by its __init__."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """`name` if it is a module, else its longest prefix that is one (an attribute of a module)."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in modules:
            return ".".join(parts)
        parts.pop()
    return None


def _base(module: str, path: Path, level: int) -> str:
    """The package a relative import of `level` dots starts from."""
    parts = module.split(".")
    if path.name != "__init__.py":
        parts.pop()
    return ".".join(parts[: len(parts) - (level - 1)] if level > 1 else parts)


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that `module` imports anywhere in its file, module level or inside functions.

    `from pkg import name` is `pkg.name` when that is a module, else `pkg`; living in a package is not
    an import of its __init__ (that would make every package a cycle), naming the package is."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            origin = node.module or ""
            if node.level:
                base = _base(module, path, node.level)
                origin = f"{base}.{origin}" if origin else base
            targets = [f"{origin}.{alias.name}" for alias in node.names if alias.name != "*"] or [origin]
        else:
            continue
        for target in targets:
            if (resolved := _known(target, modules)) is not None:
                found.add(resolved)
    return found


def import_graph(root: Path = SRC, package: str = PACKAGE) -> dict[str, set[str]]:
    modules = module_names(root, package)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components, iteratively (no recursion limit), each in discovery order."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(component[::-1])
    return components


def _path(graph: dict[str, set[str]], start: str, members: set[str]) -> list[str]:
    """One cycle through `start` inside its component, shortest first (breadth-first)."""
    previous, frontier = {}, [start]
    while frontier:
        step = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    chain = [node]
                    while chain[-1] != start:
                        chain.append(previous[chain[-1]])
                    return [start, *chain[::-1][1:], start] if node != start else [start, start]
                if child not in previous:
                    previous[child] = node
                    step.append(child)
        frontier = step
    return [start]


def cycles(graph: dict[str, set[str]]) -> list[str]:
    """Each import cycle as `a -> b -> a`: one per component of more than one module, and self-imports."""
    found = []
    for component in strongly_connected(graph):
        if len(component) > 1 or component[0] in graph[component[0]]:
            cycle = _path(graph, min(component), set(component))
            others = sorted(set(component) - set(cycle))
            found.append(" -> ".join(cycle) + (f"  (in one knot with {', '.join(others)})" if others else ""))
    return sorted(found)


def registered_modules(root: Path = SRC, package: str = PACKAGE) -> set[str]:
    """The modules registry.py names as "module:Class" (read from its dict literals, not imported)."""
    tree = ast.parse((root / package / "registry.py").read_text())
    return {value.value.partition(":")[0] for node in ast.walk(tree) if isinstance(node, ast.Dict)
            for value in node.values if isinstance(value, ast.Constant) and isinstance(value.value, str)}


def _top(module: str) -> str:
    """The first name below the package: `runtimes` for inferarena.runtimes.ort, "" for the package."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _axis(module: str) -> str | None:
    return _top(module) if _top(module) in AXES else None


def _is_orchestrator(module: str) -> bool:
    return _top(module) in ORCHESTRATOR or _top(module).startswith(ORCHESTRATOR_PREFIXES)


def _edges(graph: dict[str, set[str]]):
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            yield module, target


def test_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles (imports inside functions count):\n" + "\n".join(found)


def test_the_cycle_checker_finds_a_planted_cycle(tmp_path):
    pkg = tmp_path / "fakepkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "high.py").write_text("from fakepkg.sub import mid\n")
    (pkg / "sub" / "mid.py").write_text("from .. import low\n")
    planted = "def later():\n    from fakepkg.high import value\n"
    (pkg / "low.py").write_text("import os\n\n\n" + planted)

    graph = import_graph(tmp_path, "fakepkg")
    assert graph["fakepkg.sub.mid"] == {"fakepkg.low"}  # relative, and `from pkg import module`
    assert graph["fakepkg.low"] == {"fakepkg.high"}  # `from module import attribute`, inside a function
    assert graph["fakepkg"] == graph["fakepkg.sub"] == set()
    assert cycles(graph) == ["fakepkg.high -> fakepkg.sub.mid -> fakepkg.low -> fakepkg.high"]

    (pkg / "low.py").write_text("import os\n")
    assert cycles(import_graph(tmp_path, "fakepkg")) == []

    (pkg / "low.py").write_text("def again():\n    from . import low\n")
    assert cycles(import_graph(tmp_path, "fakepkg")) == ["fakepkg.low -> fakepkg.low"]


def test_plugins_never_import_worker_or_orchestrator_code():
    bad = [f"{m} imports {t}" for m, t in _edges(import_graph()) if _axis(m) and _is_orchestrator(t)]
    assert not bad, ("plugin modules must not import worker or orchestrator code "
                     "(pass what they need in, or move it to a neutral module):\n" + "\n".join(bad))


def test_plugins_never_borrow_another_axis_plugin():
    plugins = registered_modules()
    assert "inferarena.runtimes.ort" in plugins  # the registry is still read
    bad = [f"{m} imports {t}" for m, t in _edges(import_graph())
           if _axis(m) and t in plugins and _axis(t) not in (None, _axis(m))]
    assert not bad, ("a plugin may import another axis's base module, package or helpers, never its plugin "
                     "modules (shared framework helpers belong in inferarena.frameworks, one module per "
                     "framework; another axis's plugin is reached through its registry):\n" + "\n".join(bad))


def test_decisions_never_import_a_renderer():
    bad = [f"{m} imports {t}" for m, t in _edges(import_graph())
           if _top(m) in DECISIONS and _top(t) == "report"]
    assert not bad, "decisions return data; renderers (inferarena.report) read it:\n" + "\n".join(bad)


def test_declarations_and_the_store_never_import_drivers_or_plugins():
    """A kind declares (scenarios, profiles, documents) and never imports a driver such as agents.run; the
    store keeps records and knows no pass, runtime or model plugin (presets come from config)."""
    graph = import_graph()
    bad = [f"{m} imports {t}" for m, t in _edges(graph) if _top(m) == "kinds" and t == "inferarena.agents.run"]
    bad += [f"{m} imports {t}" for m, t in _edges(graph) if _top(m) == "store" and _axis(t) in ("passes", "runtimes", "models")]
    assert not bad, "declarations import no driver, and the store no plugin axis:\n" + "\n".join(bad)


def test_agents_reach_plugins_through_the_registry():
    """The agents use the passes and models as any caller does: their packages' functions (`passes.apply`,
    `models.resolve`) and the registry, never a plugin module (agents/chat.py once read passes/gguf.py's
    type table directly)."""
    plugins = registered_modules()
    bad = [f"{m} imports {t}" for m, t in _edges(import_graph()) if _top(m) == "agents" and t in plugins and _top(t) != "agents"]
    assert not bad, "agents reach a plugin through inferarena.registry:\n" + "\n".join(bad)


def test_the_store_reads_only_records_and_the_floor():
    """The store keeps typed records; it imports them and the floor, never a plugin, a kind or a driver."""
    bad = [f"{m} imports {t}" for m, t in _edges(import_graph()) if _top(m) == "store" and _top(t) not in STORE_READS]
    assert not bad, "the store imports only records and the floor:\n" + "\n".join(bad)


def test_only_the_agents_command_and_the_workflow_kind_reach_the_agents():
    """The core never names the agents: the agents command drives them, and the workflow kind declares their
    arms (agents.arms, declarations only) for the reports."""
    bad = []
    for m, t in _edges(import_graph()):
        if _top(t) != "agents" or _top(m) == "agents":
            continue
        allowed = AGENTS_IMPORTERS.get(m, set())
        if m not in AGENTS_IMPORTERS or (allowed is not None and t not in allowed):
            bad.append(f"{m} imports {t}")
    assert not bad, "only cli_agents and kinds.workflow (agents.arms) import the agents package:\n" + "\n".join(bad)
