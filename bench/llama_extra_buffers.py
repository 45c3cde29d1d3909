"""What turning llama.cpp's extra buffers off costs (issue 37): decode tokens/s with `extra_buffers` on and off,
side by side in one run, for each GGUF weight type, on this machine's native build.

`extra_buffers=auto` turns them off only where the llama.cpp build has AMX_INT8 (the AMX buffer crashes,
ggml-org/llama.cpp#20824). Off also drops the repacked Q4_0/Q4_K/IQ4_NL layouts, so this measures what an
AMX host gives up, on a machine where both settings run. Each reading is its own process (a crash fails one
reading), rounds interleave the settings, and the ratio is of medians.

Run: HF_HUB_OFFLINE=1 .venv/bin/python bench/llama_extra_buffers.py [--rounds 3] [--tokens 96] [--types f16,q8_0,q4_0,q4_1]
About 3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path


def one(path: str, setting: str, tokens: int, threads: int) -> dict:
    """In a child process: load, generate `tokens` greedy tokens after a fixed prompt, time the decode."""
    from inferarena.frameworks import llama_cpp as llama

    llm = llama.open_model(path, setting, n_ctx=512, n_threads=threads, n_threads_batch=threads, verbose=False)
    prompt = llm.tokenize(b"The history of the printing press begins in", add_bos=True)
    llm.reset()
    stamps = []
    for _ in llm.generate(prompt, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0, reset=True):
        stamps.append(time.perf_counter())
        if len(stamps) >= tokens:
            break
    decode_s = stamps[-1] - stamps[0]
    return {"decode_tok_per_s": (len(stamps) - 1) / decode_s, "tokens": len(stamps),
            "extra_buffers": llama.extra_buffers(setting)[1]}


def build(types: list[str], cache: Path) -> dict[str, str]:
    """The bundled SmolLM2 in each type, through inferarena's own gguf_quantize pass."""
    from inferarena import models
    from inferarena.passes.gguf import GGUFQuantize, GGUFQuantizeConfig

    source = models.resolve("smollm2")
    paths = {}
    for t in types:
        out = cache / t
        out.mkdir(parents=True, exist_ok=True)
        found = list(out.glob("*.gguf"))
        paths[t] = str(found[0] if found else GGUFQuantize().run(source, GGUFQuantizeConfig(type=t), out, None).path)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=96)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--types", default="f16,q8_0,q4_0,q4_1")
    ap.add_argument("--cache", type=Path, default=Path("bench-out/llama_extra_buffers"))
    ap.add_argument("--one", nargs=2, metavar=("GGUF", "SETTING"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1], args.tokens, args.threads)))
        return
    from inferarena.frameworks import llama_cpp as llama

    paths = build(args.types.split(","), args.cache)
    print(f"CPU: {_cpu()} · llama.cpp build: {llama.build_summary()}")
    readings: dict[tuple[str, str], list[float]] = {}
    for r in range(args.rounds):
        for t, path in paths.items():
            for setting in (("on", "off") if r % 2 == 0 else ("off", "on")):
                done = subprocess.run([sys.executable, __file__, "--one", path, setting, "--tokens", str(args.tokens),
                                       "--threads", str(args.threads)], capture_output=True, text=True)
                if done.returncode != 0:
                    print(f"  {t} extra_buffers={setting}: failed (exit {done.returncode}) {done.stderr[-300:]}")
                    continue
                readings.setdefault((t, setting), []).append(json.loads(done.stdout)["decode_tok_per_s"])
    print(f"\n{'type':6} {'on: decode tok/s':>18} {'off: decode tok/s':>18} {'off / on':>9}   (medians of "
          f"{args.rounds} interleaved rounds, {args.tokens} tokens, {args.threads} threads)")
    for t in paths:
        on, off = readings.get((t, "on"), []), readings.get((t, "off"), [])
        if on and off:
            m_on, m_off = statistics.median(on), statistics.median(off)
            print(f"{t:6} {m_on:18.1f} {m_off:18.1f} {m_off / m_on:9.3f}   on {_r(on)} · off {_r(off)}")


def _r(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.1f}" for v in values) + "]"


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


if __name__ == "__main__":
    main()
