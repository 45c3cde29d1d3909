"""Agents that decode together: the aggregate completion tokens/s of a debate round's three first attempts
asked one at a time (`LlamaChat.chat`, llama-cpp-python's create_chat_completion) against all three at once
(`LlamaChat.chat_many`, one llama.cpp context decoding the three sequences in one batch per step).

The prompts are debate-math's: its three solvers' system prompts, each with the same GSM8K question (as in a
debate's first round), the question changing with each repetition; max_tokens 160 and the temperature the
workflow's agents use, each call seeded as the workflow seeds it. The two ways alternate in order over the
repetitions (one by one first, then together first, ...) so drift in a shared machine's load hits both; the
ratio is the median of the per-repetition ratios. Target: >= 1.8x.

Run: HF_HUB_OFFLINE=1 .venv/bin/python bench/agents_parallel.py [--model qwen-coder-0.5b|smollm2|PATH.gguf]
     [--reps 3] [--threads N] [--debates 2] [--json bench-out/agents_parallel.json]
--debates 2 puts two debates' first rounds in the together way (six sequences), as `agents --parallel-tasks 2`
does; the one-at-a-time way then asks the same six calls one by one.
About a minute per repetition on 2 cores with qwen-coder-0.5b, less with smollm2.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET = 1.8


def default_model() -> str:
    from inferarena import models

    try:
        models.resolve("qwen-coder-0.5b")
        return "qwen-coder-0.5b"
    except Exception:  # noqa: BLE001 - not installed here: the bundled one
        return "smollm2"


def lscpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown (no lscpu)"
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "unknown")


def step_times(llm, sizes: list[int], context: int = 100, steps: int = 24, reps: int = 3) -> dict[int, float]:
    """Milliseconds of one decode step of n sequences (one token each, every sequence `context` tokens in),
    the best of `reps` medians of `steps` steps, for each n in `sizes`: printed with the aggregate tokens/s
    each gives, as a multiple of one sequence's."""
    import llama_cpp.llama_cpp as low

    from inferarena.frameworks import llama_cpp as llama

    if not sizes:
        return {}
    prompt = llm.tokenize(b"Natalia sold clips to 48 of her friends in April, and then she sold half as many "
                          b"clips in May. " * 8, add_bos=False, special=False)[:context]
    generators = {n: llama.BatchedGenerator(llm, n, context + steps + 8) for n in sizes}
    best: dict[int, float] = {}
    try:
        for _ in range(reps):
            for n, g in generators.items():
                low.llama_memory_clear(low.llama_get_memory(g.ctx), True)
                batch = low.llama_batch_init(max(len(prompt), n), 0, 1)
                try:
                    for i in range(n):
                        g._decode(batch, [(t, p, i, False) for p, t in enumerate(prompt)])
                    times = []
                    for k in range(steps):
                        started = time.perf_counter()
                        g._decode(batch, [(prompt[k], len(prompt) + k, i, True) for i in range(n)])
                        times.append(time.perf_counter() - started)
                finally:
                    low.llama_batch_free(batch)
                best[n] = min(best.get(n, float("inf")), statistics.median(times) * 1000.0)
    finally:
        for g in generators.values():
            g.close()
    one = best.get(1)
    for n, ms in best.items():
        gain = f", {n * one / ms:.2f}x one sequence's" if one else ""
        print(f"decode step of {n} sequence{'s' if n > 1 else ''}: {ms:.1f} ms = {n * 1000.0 / ms:.1f} tok/s{gain}")
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="a model name or .gguf (default: qwen-coder-0.5b if "
                        "installed, else smollm2)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: every core)")
    parser.add_argument("--context", type=int, default=2048, help="KV cells per agent, as `agents --context`")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    parser.add_argument("--debates", type=int, default=1, help="Debates decoded at once in the 'together' way: 2 is "
                        "what `agents --parallel-tasks 2` does (six sequences); 1, the issue's three agents")
    parser.add_argument("--step-sizes", default="1,2,3,4,8", help="also time one decode step of this many "
                        "sequences each (comma-separated; empty: skip): where the aggregate gain comes from")
    args = parser.parse_args(argv)

    from inferarena import hardware, models
    from inferarena.agents.chat import ChatRequest, LlamaChat
    from inferarena.agents.config import load_workflow
    from inferarena.agents.execute import prompt, seed_of
    from inferarena.agents.tasks import gsm8k
    from inferarena.frameworks import llama_cpp as llama

    name = args.model or default_model()
    artifact = models.resolve(name)
    threads = args.threads or os.cpu_count() or 1
    precision = str(artifact.meta.get("precision", "native"))
    chat = LlamaChat(artifact.path, f"llama_cpp/{precision}", precision, threads, args.context, {})
    workflow = load_workflow("debate-math")
    agents = workflow.actors
    tasks = gsm8k(max(args.reps, 1) * args.debates + 1)

    def requests(task):
        return [ChatRequest(prompt(workflow, a, task, []), args.max_tokens, a.temperature,
                            seed_of(0, task.id, a.name, 0, 0)) for a in agents]

    def one_by_one(reqs):
        return [chat.chat(r.messages, r.max_tokens, r.temperature, r.seed) for r in reqs]

    def together(reqs):
        return chat.chat_many(reqs)

    cpu = lscpu_model()
    print(f"CPU: {cpu} (inferarena: {hardware.host().cpu_model}), {os.cpu_count()} logical cores; llama.cpp "
          f"threads {threads}; build: {llama.build_summary('auto')}")
    print(f"model: {name} ({artifact.meta.get('name', '?')}, {precision}) {artifact.path}")
    print(f"prompts: debate-math's {len(agents)} solvers ({', '.join(a.name for a in agents)}) on one GSM8K "
          f"question per repetition; max_tokens {args.max_tokens}, temperature "
          f"{', '.join(sorted({f'{a.temperature:g}' for a in agents}))}, seeded as the workflow seeds; "
          f"{args.debates} debate(s) per repetition ({len(agents) * args.debates} sequences together)")

    # Warm up both paths on a question not measured: the batched context is made on the first chat_many.
    warm = [ChatRequest(r.messages, 8, r.temperature, r.seed) for r in requests(tasks[-1])]
    one_by_one(warm)
    together(warm)
    # Tokens per CPU-second of this process: a second view of the same runs, moved less than wall time when
    # other processes take the cores (though llama.cpp's workers spinning at a barrier count as CPU time).

    rows = []
    try:
        for rep in range(args.reps):
            reqs = [r for d in range(args.debates) for r in requests(tasks[rep * args.debates + d])]
            load = os.getloadavg()[0]
            order = [("one", one_by_one), ("together", together)]
            if rep % 2:
                order.reverse()
            measured, texts = {}, {}
            for label, run in order:
                started, cpu_started = time.perf_counter(), time.process_time()
                replies = run(reqs)
                seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
                tokens = sum(r.completion_tokens for r in replies)
                texts[label] = [r.text for r in replies]
                measured[label] = {"seconds": seconds, "cpu_s": cpu_s, "completion_tokens": tokens,
                                   "tok_s": tokens / seconds, "tok_per_cpu_s": tokens / cpu_s,
                                   "truncated": sum(r.truncated for r in replies),
                                   "per_agent_tokens": [r.completion_tokens for r in replies]}
            ratio = measured["together"]["tok_s"] / measured["one"]["tok_s"]
            same = sum(a == b for a, b in zip(texts["one"], texts["together"]))
            rows.append({"rep": rep, "task": tasks[rep].id, "load_1m": load, **measured, "ratio": ratio,
                         "same_text": same})
            print(f"rep {rep} ({tasks[rep].id}, load {load:.2f}): one at a time "
                  f"{measured['one']['completion_tokens']} tok in {measured['one']['seconds']:.2f} s = "
                  f"{measured['one']['tok_s']:.1f} tok/s; together {measured['together']['completion_tokens']} tok "
                  f"in {measured['together']['seconds']:.2f} s = {measured['together']['tok_s']:.1f} tok/s; "
                  f"ratio {ratio:.2f}x; per CPU-second {measured['one']['tok_per_cpu_s']:.1f} vs "
                  f"{measured['together']['tok_per_cpu_s']:.1f} tok; same text both ways in {same} of "
                  f"{len(reqs)} replies", flush=True)
        steps = step_times(chat.llm, [int(n) for n in args.step_sizes.split(",") if n.strip()])
    finally:
        chat.close()

    ratio = statistics.median(r["ratio"] for r in rows)
    one = statistics.median(r["one"]["tok_s"] for r in rows)
    both = statistics.median(r["together"]["tok_s"] for r in rows)
    verdict = "meets" if ratio >= TARGET else "misses"
    same = sum(r["same_text"] for r in rows)
    print(f"the seeded replies were the same both ways in {same} of {len(rows) * len(agents)}")
    busiest = max(r["load_1m"] for r in rows)
    if busiest > (os.cpu_count() or 1):
        print(f"note: the 1-minute load reached {busiest:.1f} on {os.cpu_count()} cores: other processes shared the "
              "CPU, and the absolute tokens/s (and the ratio) carry that noise")
    print(f"median: one at a time {one:.1f} tok/s, together {both:.1f} tok/s; ratio {ratio:.2f}x "
          f"({verdict} the >= {TARGET}x target) on {cpu} with {name}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"cpu": cpu, "cpu_model": hardware.host().cpu_model, "model": name,
                                         "path": str(artifact.path), "precision": precision, "threads": threads,
                                         "max_tokens": args.max_tokens, "reps": rows, "median_ratio": ratio,
                                         "median_tok_s_one": one, "median_tok_s_together": both,
                                         "target": TARGET, "meets_target": ratio >= TARGET,
                                         "decode_step_ms": steps}, indent=2))
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
