"""llama.cpp through llama-cpp-python, as the runtime, the agents and the OpenAI server open it: the build's
CPU features, and whether weights go into llama.cpp's extra buffer types.

Extra buffer types are where the CPU backend keeps weights in a layout of its own: repacked Q4_0, Q4_K and
IQ4_NL blocks for its AVX2/AVX512/NEON kernels, and on builds with `AMX_INT8 = 1` (pip builds llama.cpp with
the host's native flags, so any Xeon with AMX) the AMX buffer for ggml_backend_amx_mul_mat. That AMX path
segfaults on the first decode of a quantized model (ggml-org/llama.cpp#20824; dspy removed its AMX CI job
for it), so by default (`auto`) extra buffers are off exactly where the build has AMX_INT8, and on
elsewhere. `on` keeps them for a llama.cpp whose AMX path works; `off` is llama.cpp's `--no-repack`.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

EXTRA_BUFFERS = ("auto", "on", "off")
AMX_CRASH = "ggml-org/llama.cpp#20824"


@lru_cache(maxsize=1)
def system_info() -> str | None:
    """llama.cpp's own build report (`llama_print_system_info`): backends and CPU features compiled in (fixed
    for the process, so read once)."""
    try:
        import llama_cpp

        return llama_cpp.llama_print_system_info().decode(errors="replace").strip()
    except Exception:  # noqa: BLE001 - informational only: no llama-cpp-python, or an old one
        return None


def build_features(info: str | None = None) -> dict[str, bool]:
    """The CPU features of the llama.cpp build as flags, e.g. {"AVX2": True, "AMX_INT8": True, ...}: what
    `system_info()` reports as `NAME = 1` (or `= 0`)."""
    info = system_info() if info is None else info
    return {name: value == "1" for name, value in re.findall(r"([A-Z][A-Z0-9_]*) = ([01])\b", info or "")}


def extra_buffers(setting: str = "auto", features: dict[str, bool] | None = None) -> tuple[bool, str]:
    """Whether weights go into the extra buffer types under `setting` (auto | on | off), and why, in words."""
    if setting not in EXTRA_BUFFERS:
        raise ValueError(f"extra_buffers is one of {', '.join(EXTRA_BUFFERS)}, not {setting!r}")
    if setting != "auto":
        return setting == "on", f"{setting} (asked)"
    features = build_features() if features is None else features
    if features.get("AMX_INT8"):
        return False, (f"off: this llama.cpp build has AMX_INT8, whose extra buffer crashes ({AMX_CRASH}); "
                       "extra_buffers=on keeps it")
    return True, "on (auto: no AMX in this build)"


def build_summary(setting: str = "auto", info: str | None = None) -> str:
    """One line for the environment card: the build's CPU features that are on, and the extra buffers."""
    features = build_features(info)
    on = [name for name, value in features.items() if value]
    return f"{' '.join(on) or 'no CPU features reported'}; extra buffers {extra_buffers(setting, features)[1]}"


@contextlib.contextmanager
def _without_extra_buffers() -> Iterator[None]:
    """Models loaded inside get `use_extra_bufts = False`: llama-cpp-python's `Llama` takes its model
    parameters from `llama_model_default_params()` and exposes no argument for this field."""
    import llama_cpp.llama_cpp as low

    default = low.llama_model_default_params

    def params():
        p = default()
        p.use_extra_bufts = False
        return p

    low.llama_model_default_params = params
    try:
        yield
    finally:
        low.llama_model_default_params = default


def open_model(path: str | Path, setting: str = "auto", **kwargs: Any):
    """`llama_cpp.Llama(path, **kwargs)` with the extra buffers `setting` decides."""
    from llama_cpp import Llama

    use, _why = extra_buffers(setting)
    if use:
        return Llama(str(path), **kwargs)
    with _without_extra_buffers():
        return Llama(str(path), **kwargs)


@dataclass
class Request:
    """One sequence for `BatchedGenerator`: prompt tokens and the sampling `Llama.create_completion` would do
    with these settings (its defaults, as `create_chat_completion` passes them)."""

    prompt: list[int]
    max_tokens: int
    temperature: float = 0.2
    seed: int = 0xFFFFFFFF
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    typical_p: float = 1.0
    repeat_penalty: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    stop: tuple[str, ...] = ()


@dataclass
class Generated:
    tokens: list[int]  # the completion's tokens, without the end-of-generation token
    text: str
    prompt_tokens: int
    completion_tokens: int
    truncated: bool  # stopped at its max_tokens (finish_reason "length"), not at an end of generation or stop text


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class _Captured(Exception):
    def __init__(self, kwargs: dict):
        super().__init__("captured")
        self.kwargs = kwargs


class _Capture:
    """Stands in for the `Llama` a chat handler is given: tokenizes with the real one, and stops the handler at
    its `create_completion` call, keeping what it would have generated from."""

    def __init__(self, llm):
        self._llm = llm

    def __getattr__(self, name):
        return getattr(self._llm, name)

    def create_completion(self, **kwargs):
        raise _Captured(kwargs)


def chat_request(llm, messages: list[dict], max_tokens: int, temperature: float, seed: int, top_p: float = 0.95,
                 top_k: int = 40, repeat_penalty: float = 1.0) -> Request:
    """What `llm.create_chat_completion(messages, ...)` would generate from: the chat handler `Llama` picked
    for this GGUF (its own `tokenizer.chat_template`, or a format guessed from it) runs up to its
    `create_completion` call, so the prompt tokens, stop texts and sampler settings are the very ones it uses."""
    from llama_cpp import llama_chat_format

    handler = (llm.chat_handler or llm._chat_handlers.get(llm.chat_format)
               or llama_chat_format.get_chat_completion_handler(llm.chat_format))
    try:
        handler(llama=_Capture(llm), messages=messages, temperature=temperature, top_p=top_p, top_k=top_k,
                min_p=0.05, typical_p=1.0, stream=False, stop=[], seed=seed, max_tokens=max_tokens,
                presence_penalty=0.0, frequency_penalty=0.0, repeat_penalty=repeat_penalty)
    except _Captured as captured:
        kw = captured.kwargs
    else:
        raise RuntimeError(f"the chat handler of {llm.chat_format!r} did not call create_completion")
    prompt = kw["prompt"]
    if isinstance(prompt, str):  # create_completion tokenizes a text prompt so, after no BOS of its own
        prompt = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
    stop = kw.get("stop") or []
    return Request(list(prompt), kw.get("max_tokens") or max_tokens, kw["temperature"],
                   seed if kw.get("seed") is None else kw["seed"], kw["top_k"], kw["top_p"], kw["min_p"],
                   kw["typical_p"], kw["repeat_penalty"], kw["frequency_penalty"], kw["presence_penalty"],
                   tuple([stop] if isinstance(stop, str) else stop))


class BatchedGenerator:
    """Up to `n_seq` sequences decoded together in one llama.cpp context of the already loaded `llm`'s model:
    each prompt prefilled (its tokens with its sequence id, logits only at its last token, in chunks of
    n_batch), then one `llama_decode` per step with one token of every unfinished sequence. A small model's
    batch-1 decode on a CPU leaves most of each weight read unused; reading the weights once for several
    sequences is where the aggregate tokens/s come from.

    Each sequence samples with its own chain, built as `Llama._init_sampler` builds it (penalties, then
    greedy at temperature 0, else top-k, typical, top-p, min-p, temperature, and `dist(seed)`), so a seed
    means here what it means to `create_completion`. The context is the `llm`'s own settings (threads,
    batch sizes, attention) with `n_seq_max = n_seq` and `n_ctx_per_seq * n_seq` KV cells; each sequence is
    limited to `n_ctx_per_seq` tokens, as the `llm` limits its one. Close it before the `llm` (it is also
    closed with the model, before the model is freed).

    The KV cache is one stream per sequence (`kv_unified = False`; `unified=True` shares one): a sequence's
    cells then lie at the indices they have when it is decoded alone, so its attention sums in the same
    order. In a unified cache the sequences' cells interleave, and greedy runs of SmolLM2 diverged from the
    one-sequence run after 17 to 116 tokens; apart, none did. It costs nothing, the cache being sized for
    every sequence's full context either way.

    Each prompt is prefilled in batches of its own (`separate_prefill`), as it would be alone: the CPU
    backend's repacked Q4_K kernels compute a batch's rows in groups of four (gemm) and its remainder one by
    one (gemv), which round differently, so one batch of all the prompts (`separate_prefill=False`) puts a
    prompt's rows in other groups and changes its KV cache in the last bits. Measured on Qwen2.5-Coder-0.5B
    Q4_K_M, three questions × debate-math's three solvers: prefilled together, 6 of 9 greedy and 8 of 9 seeded
    runs diverged from the one-sequence run (from the 2nd to the 146th token); prefilled apart, none of the 18
    did, in about the same prefill time (a prompt's prefill is already a matrix product; the decode steps
    are what gain). Decode steps of up to three sequences stay under the gemm's four rows; steps of four or
    more may round differently again.

    `reuse_prefix=True` keeps each sequence's cells between calls, as a server's prompt cache does: a request
    goes to the sequence whose cells hold the longest start of its prompt, and only the rest is prefilled.
    On a 2-core EPYC, Qwen2.5-Coder-0.5B prefills about 160 tokens/s against 38 decoded, so a debate's second
    round (the agent's own first call and reply, then the others' messages) costs a fraction of its prompt."""

    def __init__(self, llm, n_seq: int, n_ctx_per_seq: int | None = None, unified: bool = False,
                 separate_prefill: bool = True, reuse_prefix: bool = False):
        import llama_cpp.llama_cpp as low
        from llama_cpp._internals import LlamaContext

        if n_seq < 1:
            raise ValueError(f"n_seq must be at least 1, not {n_seq}")
        self.llm, self.n_seq, self.separate_prefill, self.reuse_prefix = llm, n_seq, separate_prefill, reuse_prefix
        # What each sequence's KV cells hold (tokens from position 0), for `reuse_prefix`.
        self._history: list[list[int]] = [[] for _ in range(n_seq)]
        self.prefilled_tokens = self.reused_tokens = 0  # prompt tokens computed, and taken from a sequence's cells
        self.n_ctx_per_seq = n_ctx_per_seq or llm.n_ctx()
        params = type(llm.context_params).from_buffer_copy(llm.context_params)
        # llama.cpp pads a context to a multiple of 256 cells and splits it evenly between the sequences.
        params.n_ctx = -(-self.n_ctx_per_seq // 256) * 256 * n_seq
        params.n_seq_max = n_seq
        params.kv_unified = unified
        params.n_batch = max(int(params.n_batch), n_seq)
        params.n_ubatch = min(max(int(params.n_ubatch), n_seq), params.n_batch)
        params.embeddings = False
        self.n_batch = int(params.n_batch)
        # LlamaContext frees the context on close, and registers that with the model so it goes first.
        self._context = LlamaContext(model=llm._model, params=params, verbose=False)
        self.ctx = self._context.ctx
        self.vocab = llm._model.vocab
        self.n_vocab = low.llama_vocab_n_tokens(self.vocab)

    def _sampler(self, r: Request):
        import llama_cpp.llama_cpp as low

        chain = low.llama_sampler_chain_init(low.llama_sampler_chain_default_params())
        if chain is None:
            raise MemoryError("llama_sampler_chain_init failed")
        add = lambda s: low.llama_sampler_chain_add(chain, s)  # noqa: E731 - the chain owns what it is given
        add(low.llama_sampler_init_penalties(self.n_vocab, self.llm.last_n_tokens_size, r.repeat_penalty,
                                             r.frequency_penalty, r.presence_penalty))
        seed = r.seed & 0xFFFFFFFF
        if r.temperature < 0.0:
            add(low.llama_sampler_init_dist(seed))
        elif r.temperature == 0.0:
            add(low.llama_sampler_init_greedy())
        else:
            add(low.llama_sampler_init_top_k(r.top_k))
            add(low.llama_sampler_init_typical(r.typical_p, 1))
            add(low.llama_sampler_init_top_p(r.top_p, 1))
            add(low.llama_sampler_init_min_p(r.min_p, 1))
            add(low.llama_sampler_init_temp(r.temperature))
            add(low.llama_sampler_init_dist(seed))
        return chain

    def generate(self, requests: list[Request]) -> list[Generated]:
        """Every request's completion, decoded together; in request order."""
        import llama_cpp.llama_cpp as low

        if not requests:
            return []
        if len(requests) > self.n_seq:
            raise ValueError(f"{len(requests)} sequences for a generator of {self.n_seq}")
        if self._context.ctx is None:
            raise RuntimeError("the batched generator is closed")
        limits = []
        for r in requests:
            n = len(r.prompt)
            if n == 0 or n >= self.n_ctx_per_seq:
                raise ValueError(f"a prompt of {n} tokens does not fit a context of {self.n_ctx_per_seq}")
            # As create_completion: no max_tokens means up to the context; never past it.
            wanted = r.max_tokens if r.max_tokens and r.max_tokens > 0 else self.n_ctx_per_seq - n
            limits.append(wanted if wanted + n < self.n_ctx_per_seq else self.n_ctx_per_seq - n)
        memory = low.llama_get_memory(self.ctx)
        if self.reuse_prefix:
            # Each request goes to the free sequence whose cells already hold the longest start of its prompt
            # (a server's prompt cache): only the rest is prefilled. A debate's second round, a rectify call
            # (the first call's prompt and reply, then the feedback) and a repeated system prompt start so.
            seqs, starts = self._assign(requests)
            for k, (seq, start) in enumerate(zip(seqs, starts)):
                if not low.llama_memory_seq_rm(memory, seq, start, -1):  # a cache that cannot cut: start over
                    low.llama_memory_seq_rm(memory, seq, -1, -1)
                    starts[k] = 0
        else:
            low.llama_memory_clear(memory, True)
            seqs, starts = list(range(len(requests))), [0] * len(requests)
        self.reused_tokens += sum(starts)
        self.prefilled_tokens += sum(len(r.prompt) - s for r, s in zip(requests, starts))
        outs: list[list[int]] = [[] for _ in requests]
        finish: list[str | None] = [None] * len(requests)
        texts: list[str | None] = [None] * len(requests)
        samplers: list = []
        batch = low.llama_batch_init(self.n_batch, 0, 1)
        try:
            for r in requests:
                samplers.append(self._sampler(r))

            def take(i: int, index: int) -> None:
                """Sample sequence i's next token from the batch's row `index`, and see whether it ends."""
                token = low.llama_sampler_sample(samplers[i], self.ctx, index)
                if low.llama_vocab_is_eog(self.vocab, token):
                    finish[i] = "stop"
                    return
                outs[i].append(token)
                stop = requests[i].stop
                if stop:
                    text = self._text(requests[i], outs[i])
                    found = [s for s in stop if s and s in text]
                    if found:
                        texts[i], finish[i] = text[: text.index(found[0])], "stop"
                        return
                if len(outs[i]) >= limits[i]:
                    finish[i] = "length"

            # Prefill: every prompt token with its sequence, logits at each prompt's last token only; each
            # prompt in batches of its own (`separate_prefill`), or all of them in one.
            rows = [[(i, pos, r.prompt[pos], pos == len(r.prompt) - 1) for pos in range(starts[i], len(r.prompt))]
                    for i, r in enumerate(requests)]
            if not self.separate_prefill:
                rows = [[row for prompt in rows for row in prompt]]
            chunks = [prompt[s:s + self.n_batch] for prompt in rows for s in range(0, len(prompt), self.n_batch)]
            for chunk in chunks:
                self._decode(batch, [(tok, pos, seqs[i], last) for i, pos, tok, last in chunk])
                for index, (i, _pos, _tok, last) in enumerate(chunk):
                    if last:
                        take(i, index)
            # Decode: one token of every unfinished sequence per step.
            while True:
                active = [i for i in range(len(requests)) if finish[i] is None]
                if not active:
                    break
                self._decode(batch, [(outs[i][-1], len(requests[i].prompt) + len(outs[i]) - 1, seqs[i], True)
                                     for i in active])
                for index, i in enumerate(active):
                    take(i, index)
        except BaseException:
            self._history = [[] for _ in range(self.n_seq)]  # cells in an unknown state: trust none of them
            if self.reuse_prefix:
                low.llama_memory_clear(memory, True)
            raise
        finally:
            for sampler in samplers:
                low.llama_sampler_free(sampler)
            low.llama_batch_free(batch)
        for i, r in enumerate(requests):
            # The cells hold the prompt and every completion token fed back (all but the last sampled one).
            self._history[seqs[i]] = list(r.prompt) + outs[i][:-1]
        return [Generated(out, texts[i] if texts[i] is not None else self._text(r, out), len(r.prompt), len(out),
                          finish[i] == "length")
                for i, (r, out) in enumerate(zip(requests, outs))]

    def _assign(self, requests: list[Request]) -> tuple[list[int], list[int]]:
        """A distinct sequence per request, the one whose cells share the longest start with its prompt (the
        lowest-numbered of equals), and how many of the prompt's tokens it keeps (never the last: its logits
        are needed)."""
        free, seqs, starts = list(range(self.n_seq)), [], []
        for r in requests:
            shared = {s: _common_prefix(self._history[s], r.prompt) for s in free}
            seq = max(free, key=lambda s: (shared[s], -s))
            free.remove(seq)
            seqs.append(seq)
            starts.append(min(shared[seq], len(r.prompt) - 1))
        return seqs, starts

    def _text(self, r: Request, tokens: list[int]) -> str:
        return self.llm.detokenize(tokens, prev_tokens=r.prompt).decode("utf-8", errors="ignore")

    def _decode(self, batch, rows: list[tuple[int, int, int, bool]]) -> None:
        """One llama_decode of `rows`: (token, position, sequence id, whether its logits are wanted)."""
        import llama_cpp.llama_cpp as low

        for k, (token, pos, seq, logits) in enumerate(rows):
            batch.token[k] = token
            batch.pos[k] = pos
            batch.n_seq_id[k] = 1
            batch.seq_id[k][0] = seq
            batch.logits[k] = logits
        batch.n_tokens = len(rows)
        code = low.llama_decode(self.ctx, batch)
        if code != 0:
            raise RuntimeError(f"llama_decode returned {code}" + (" (no room in the KV cache)" if code == 1 else ""))

    def close(self) -> None:
        self._context.close()

    def __enter__(self) -> "BatchedGenerator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def serve(argv: list[str]) -> None:
    """`python -m llama_cpp.server ARGS` with the extra buffers `--extra_buffers auto|on|off` decides (the
    server builds its `Llama` inside; this process exists only to serve)."""
    import runpy
    import sys

    setting = "auto"
    if "--extra_buffers" in argv:
        i = argv.index("--extra_buffers")
        setting, argv = argv[i + 1], argv[:i] + argv[i + 2:]
    sys.argv = ["llama_cpp.server", *argv]
    if extra_buffers(setting)[0]:
        runpy.run_module("llama_cpp.server", run_name="__main__")
    else:
        with _without_extra_buffers():
            runpy.run_module("llama_cpp.server", run_name="__main__")


if __name__ == "__main__":
    import sys

    serve(sys.argv[1:])
