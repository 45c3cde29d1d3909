"""Which model can the agents use: single first-round replies on GSM8K, per model and sampling variant.

Each of debate-math's three solvers answers each of the first N GSM8K test problems once, as in a debate's
first round (its system prompt, the question, the call seeded as the workflow seeds it), all replies decoded
six at a time (`LlamaChat.chat_many`). Printed per variant: replies right, replies cut at max_tokens,
completion tokens and aggregate tokens/s. Variants share tasks, agents and seeds, so their right/wrong
outcomes pair reply by reply; --jsonl keeps every reply for that.

Run: HF_HUB_OFFLINE=1 .venv/bin/python bench/agents_models.py --model qwen-coder-0.5b --n 30 \\
         --variants '{"rp1.0": {"repeat_penalty": 1.0}, "default": {}, "t0.2": {"temperature": 0.2}}'
A variant sets any of temperature, top_k, top_p, repeat_penalty, max_tokens; {} is the model's own sampling.
About 10 minutes per variant of 90 replies on 2 cores with qwen-coder-0.5b; the 1.5B about twice that.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen-coder-0.5b", help="a bundled GGUF model or a .gguf file")
    parser.add_argument("--n", type=int, default=30, help="GSM8K test problems (the first N of the seeded order)")
    parser.add_argument("--variants", default='{"default": {}}', help="JSON: name -> sampling settings")
    parser.add_argument("--workflow", default="debate-math")
    parser.add_argument("--jsonl", type=Path, default=None, help="append every reply here")
    args = parser.parse_args()

    from inferarena.agents import tasks as task_sets
    from inferarena.agents.chat import ChatRequest, variant_model
    from inferarena.agents.config import load_workflow
    from inferarena.agents.execute import prompt, seed_of
    from inferarena.agents.verifiers import final_number
    from inferarena.cli_common import DEFAULT_CACHE
    from inferarena.hardware import host

    workflow = load_workflow(args.workflow)
    tasks, _ = task_sets.split("gsm8k", args.n, 0, 0)
    model = variant_model("llama_cpp", args.model, DEFAULT_CACHE, None, 4096)
    print(f"{args.model} on {host().cpu_model} ({host().logical_cores} threads); its own sampling {model.sampling}")
    try:
        for name, v in json.loads(args.variants).items():
            requests, asked = [], []
            for task in tasks:
                for agent in workflow.agents:
                    requests.append(ChatRequest(prompt(workflow, agent, task, []), v.get("max_tokens", 640),
                                                v.get("temperature", agent.temperature),
                                                seed_of(0, task.id, agent.name, 0, 0), v.get("top_k"), v.get("top_p"),
                                                v.get("repeat_penalty")))
                    asked.append((task, agent.name))
            started = time.perf_counter()
            replies = [r for i in range(0, len(requests), 6) for r in model.chat_many(requests[i:i + 6])]
            seconds = time.perf_counter() - started
            right = [(lambda x: x is not None and math.isclose(x, t.answer, abs_tol=1e-9))(final_number(r.text))
                     for (t, _), r in zip(asked, replies)]
            tokens = sum(r.completion_tokens for r in replies)
            print(f"{name}: {sum(right)}/{len(replies)} replies right ({sum(right) / len(replies):.1%}), "
                  f"{sum(r.truncated for r in replies)} cut at max_tokens, {tokens} completion tokens, "
                  f"{seconds:.0f} s, {tokens / seconds:.1f} tok/s")
            if args.jsonl:
                with args.jsonl.open("a") as out:
                    for (task, agent), r, ok in zip(asked, replies, right):
                        out.write(json.dumps({"model": args.model, "variant": name, "task": task.id, "agent": agent,
                                              "right": ok, "truncated": r.truncated, "tokens": r.completion_tokens,
                                              "text": r.text}) + "\n")
    finally:
        model.close()


if __name__ == "__main__":
    main()
