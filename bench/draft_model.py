"""Draft-model speculative decoding on a real pair (issue 41): Qwen2.5-Coder-1.5B-Instruct verifying greedy drafts
from Qwen2.5-Coder-0.5B-Instruct (both the bundled Q4_K_M GGUFs, one tokenizer) on llama.cpp, against the 1.5B alone.

The variant is built by inferarena's own pass (speculative_decoding, method draft_model, draft qwen-coder-0.5b: the
vocabulary check, the cache key, the pass report) and run by the llama_cpp runtime's own session and counting draft
model (runtimes/llama_cpp.py). Each repetition runs every prompt (a code or math question through the model's chat
template) on the 1.5B alone and on the pair at each num_tokens, interleaved, the order rotating each repetition.
Greedy, each request from a fresh KV cache (the draft's too), `--tokens` tokens generated (end-of-sequence not
honoured, as the runtime does). A repetition's decode tok/s is its tokens after the first over their time, summed
over the prompts; a configuration's figure is the median of its repetitions, and its speedup is that over the 1.5B
alone's median. Each draft configuration's tokens are compared with the 1.5B alone's, prompt by prompt and repetition
by repetition. Acceptance is counted over every prompt and repetition: accepted / drafted drafts, drafts per
verification step, tokens per step.

Run: HF_HUB_OFFLINE=1 .venv/bin/python bench/draft_model.py [--reps 3] [--tokens 128] [--ks 2,4,6,8] [--prompts 4]
[--threads N] [--json out.json]. About 5 minutes on 2 idle cores; a shared machine's load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

PROMPTS = (
    "Write a Python function that returns the n-th Fibonacci number iteratively, with a docstring and type hints.",
    "A train travels 180 km in 2.5 hours, then 120 km in 1.5 hours. What is its average speed for the whole trip? "
    "Solve it step by step.",
    "Write a Python function that checks whether a string is a palindrome, ignoring case, spaces and punctuation.",
    "Write a SQL query that returns the five customers with the highest total order amount, from the tables "
    "customers(id, name) and orders(id, customer_id, amount).",
    "Solve for x: 3x + 7 = 2x - 5 + 4x. Show each step.",
    "Write a Python class Stack with push, pop, peek and is_empty methods, and a short usage example.",
)
TARGET_SPEEDUP = 1.5


def chat_prompts(llm, questions: list[str]) -> list[list[int]]:
    """Each question as a user turn through the GGUF's own chat template, tokenized as the target tokenizes."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata["tokenizer.chat_template"]
    eos = llm.detokenize([llm.token_eos()], special=True).decode(errors="replace")
    formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token="")
    return [llm.tokenize(formatter(messages=[{"role": "user", "content": q}]).prompt.encode(), add_bos=False,
                         special=True) for q in questions]


def timed(session, prompt: list[int], tokens: int) -> tuple[list[int], float, float]:
    """The generated tokens, the decode time after the first token, and the time to the first token."""
    stamps: list[float] = []
    start = time.perf_counter()
    out = session.generate(prompt, tokens, on_token=lambda _t: stamps.append(time.perf_counter()))
    return out, stamps[-1] - stamps[0], stamps[0] - start


def _first_difference(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", default="qwen-coder-1.5b")
    ap.add_argument("--draft", default="qwen-coder-0.5b")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--ks", default="2,4,6,8", help="num_tokens values to measure")
    ap.add_argument("--prompts", type=int, default=4, help=f"how many of the {len(PROMPTS)} questions")
    ap.add_argument("--threads", type=int, default=None, help="default: the host's logical cores")
    ap.add_argument("--cache", type=Path, default=None, help="pass cache folder (default: a temporary one)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from inferarena import hardware, models, passes
    from inferarena.frameworks import llama_cpp as llama
    from inferarena.runtimes.llama_cpp import LlamaCpp

    host = hardware.host()
    threads = args.threads or host.logical_cores
    ks = [int(k) for k in args.ks.split(",")]
    target = models.resolve(args.target)
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or Path(tmp)
        step = ("speculative_decoding", json.dumps({"method": "draft_model", "draft": args.draft, "num_tokens": ks[0]}))
        built, applied = passes.apply((step,), target, cache, None)
        report = built.meta["pass_report"]["draft_model"]
        runtime = LlamaCpp()
        knobs = runtime.validate_knobs({"threads": threads})
        shapes = {"input_ids": [1, 512]}
        plain = runtime.load(target, "native", knobs, shapes)
        pair = runtime.load(built, "native", knobs, shapes)
        prompts = chat_prompts(plain.llm, list(PROMPTS[: args.prompts]))
        print(f"CPU: {host.cpu_model} · {host.logical_cores} logical cores, {threads} threads · llama.cpp build: "
              f"{llama.build_summary()}")
        print(f"target {args.target} ({target.meta.get('precision')}, {target.path.stat().st_size / 1e6:.0f} MB) · "
              f"draft {report['draft']} ({report['draft_name']}, {report['draft_type']}, {report['draft_mb']} MB, "
              f"sha256 {report['draft_sha256']}) · vocab check: {report['vocab_check']} · pass "
              f"{'cached' if applied[0].cached else 'built'} in {applied[0].seconds} s")
        print(f"{len(prompts)} chat prompts ({', '.join(str(len(p)) for p in prompts)} tokens), {args.tokens} tokens "
              f"each, greedy; {args.reps} repetitions, configurations interleaved; load average at start "
              f"{os.getloadavg()[0]:.2f}")
        for session in (plain, pair):  # warm: the weights paged in, the first-call costs paid
            session.generate(prompts[0], 8)
        pair.draft.reset()

        configs: list[int | None] = [None, *ks]
        rates: dict = {c: [] for c in configs}
        ttft: dict = {c: [] for c in configs}
        counts = {k: [0, 0, 0] for k in ks}  # drafted, accepted, steps
        outputs: dict = {}
        loads = []
        for rep in range(args.reps):
            order = configs[rep % len(configs):] + configs[: rep % len(configs)]
            for c in order:
                session = plain if c is None else pair
                if c is not None:
                    session.draft.k = c
                    session.draft.reset()
                tokens = decode_s = 0.0
                for i, prompt in enumerate(prompts):
                    out, seconds, first = timed(session, prompt, args.tokens)
                    outputs[(c, rep, i)] = out
                    tokens, decode_s = tokens + len(out) - 1, decode_s + seconds
                    ttft[c].append(first)
                rates[c].append(tokens / decode_s)
                if c is not None:
                    d = session.draft
                    counts[c] = [counts[c][0] + d.drafted, counts[c][1] + d.accepted, counts[c][2] + d.steps]
            loads.append(os.getloadavg()[0])
            print(f"  repetition {rep + 1}: " + ", ".join(f"{'alone' if c is None else f'k={c}'} {rates[c][-1]:.1f}"
                                                          for c in configs) + f" tok/s; load average {loads[-1]:.2f}",
                  flush=True)
        for session in (plain, pair):
            session.close()

    base = statistics.median(rates[None])
    rows = []
    print()
    print(f"{'configuration':<22}{'decode tok/s':>13}{'speedup':>9}{'accepted':>10}{'drafts/step':>12}"
          f"{'tokens/step':>12}{'TTFT ms':>9}  identical to alone   repetitions (tok/s)")
    for c in configs:
        median = statistics.median(rates[c])
        same = sum(outputs[(c, r, i)] == outputs[(None, r, i)] for r in range(args.reps) for i in range(len(prompts)))
        total = args.reps * len(prompts)
        diverged = sorted({(i, _first_difference(outputs[(c, r, i)], outputs[(None, r, i)]))
                           for r in range(args.reps) for i in range(len(prompts))
                           if outputs[(c, r, i)] != outputs[(None, r, i)]})
        row = {"num_tokens": c, "decode_tok_per_s": round(median, 2), "speedup": round(median / base, 3),
               "reps_tok_per_s": [round(r, 2) for r in rates[c]], "ttft_ms": round(1000 * statistics.median(ttft[c]), 1),
               "identical": f"{same}/{total}",
               "diverged": [{"prompt": i + 1, "at_token": at} for i, at in diverged]}
        if c is not None:
            drafted, accepted, steps = counts[c]
            row.update(acceptance_rate=round(accepted / drafted, 3) if drafted else None,
                       draft_tokens_per_step=round(drafted / steps, 2) if steps else None,
                       tokens_per_step=round((accepted + steps) / steps, 2) if steps else None)
        rows.append(row)
        name = f"{args.target} alone" if c is None else f"+ {args.draft} k={c}"
        fmt = lambda key, spec: format(row[key], spec) if row.get(key) is not None else "-"  # noqa: E731
        print(f"{name:<22}{row['decode_tok_per_s']:>13.1f}{row['speedup']:>8.2f}x{fmt('acceptance_rate', '.3f'):>10}"
              f"{fmt('draft_tokens_per_step', '.2f'):>12}{fmt('tokens_per_step', '.2f'):>12}{row['ttft_ms']:>9.0f}  "
              f"{row['identical']:<20} {', '.join(f'{r:.1f}' for r in rates[c])}"
              + (f"  (differs: {', '.join(f'prompt {d[0] + 1} from token {d[1]}' for d in diverged)})" if diverged else ""))
    plain_stable = all(outputs[(None, r, i)] == outputs[(None, 0, i)] for r in range(args.reps) for i in range(len(prompts)))
    best = max((r for r in rows if r["num_tokens"] is not None), key=lambda r: r["decode_tok_per_s"])
    print(f"\nbest num_tokens: {best['num_tokens']} ({best['speedup']:.2f}x the target alone; target "
          f">= {TARGET_SPEEDUP}x: {'met' if best['speedup'] >= TARGET_SPEEDUP else 'not met'}) · greedy output "
          f"token-identical to the 1.5B alone: {'yes, every prompt and k' if all(r['identical'] == rows[0]['identical'] for r in rows) else 'NO'}"
          f" · the 1.5B alone repeats itself across repetitions: {'yes' if plain_stable else 'no'} · load average "
          f"during the repetitions {', '.join(f'{x:.2f}' for x in loads)}")
    if args.json:
        args.json.write_text(json.dumps({"cpu": host.cpu_model, "threads": threads, "target": args.target,
                                         "draft": args.draft, "pass_report": report, "tokens": args.tokens,
                                         "prompts": len(prompts), "reps": args.reps, "rows": rows, "best": best,
                                         "load_average": loads}, indent=2))


if __name__ == "__main__":
    main()
