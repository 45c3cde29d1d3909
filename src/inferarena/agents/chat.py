"""The agents' language models: a llama.cpp variant the arena builds (`llama_cpp/q4_1` of the bundled
SmolLM2, other types through the `gguf_quantize` pass), an OpenAI-compatible endpoint, or a scripted
model (tests). Each call returns its text and the tokens it cost, as the model counted them.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from inferarena.errors import ConfigError, InferarenaError, ModelError

Messages = list[dict[str, str]]


@dataclass
class Reply:
    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    truncated: bool = False  # the completion stopped at max_tokens (finish_reason "length"), not where it ended


@dataclass(frozen=True)
class ChatRequest:
    """One `chat` call's arguments, for `ChatModel.chat_many`. Sampling left None is the model's own (`sampling`)."""

    messages: Messages
    max_tokens: int
    temperature: float
    seed: int
    top_k: int | None = None
    top_p: float | None = None
    repeat_penalty: float | None = None


DEFAULT_SAMPLING = {"top_k": 40, "top_p": 0.95, "repeat_penalty": 1.0}  # llama-cpp-python's, less its top_p


class ChatModel(ABC):
    label: str  # the variant, e.g. llama_cpp/q4_1, or the endpoint's URL
    runtime: str
    precision: str
    local: bool  # computes in this process: its energy is metered here
    info: dict
    sampling: dict = DEFAULT_SAMPLING  # top_k, top_p, repeat_penalty where a call names none

    @abstractmethod
    def chat(self, messages: Messages, max_tokens: int, temperature: float, seed: int, **sampling) -> Reply:
        """One reply. `sampling`: top_k, top_p, repeat_penalty, each None for the model's own."""

    def chat_many(self, requests: list[ChatRequest]) -> list[Reply]:
        """Independent calls' replies, in order: here one `chat` after another; a model that can decode
        several sequences at once (`LlamaChat`) does them together."""
        return [self.chat(r.messages, r.max_tokens, r.temperature, r.seed, **sampling_of(r)) for r in requests]

    def resolved(self, sampling: dict) -> dict:
        """The call's sampling, each setting it leaves None taken from the model's."""
        return {k: (sampling.get(k) if sampling.get(k) is not None else v) for k, v in self.sampling.items()}

    def close(self) -> None:  # noqa: B027 - nothing to free by default
        pass


def sampling_of(request: ChatRequest) -> dict:
    return {"top_k": request.top_k, "top_p": request.top_p, "repeat_penalty": request.repeat_penalty}


class LlamaChat(ChatModel):
    """llama-cpp-python's chat completion with the GGUF's own chat template, seeded sampling. Prefix
    caching is on, as in a server: agents that share a system prompt pay its prefill once.

    `chat_many` decodes its requests together, up to PARALLEL at a time, in a second llama.cpp context on
    the same loaded weights (`frameworks.llama_cpp.BatchedGenerator`, its cells kept between calls as a prompt
    cache), with the prompt tokens, chat template and sampler chain `chat` uses: a greedy reply is token for token `chat`'s where the weights' matrix
    products round per row (the bundled SmolLM2's Q4_1); weights the CPU backend repacks (Q4_K) may round
    differently with the number of sequences, and a near tie may then go the other way."""

    runtime, local = "llama_cpp", True
    PARALLEL = 8

    def __init__(self, path: Path, label: str, precision: str, threads: int | None, context: int, info: dict,
                 sampling: dict | None = None):
        try:
            import llama_cpp  # noqa: F401 - only to say what is missing
        except ImportError:
            raise InferarenaError("the agents' llama.cpp models need llama-cpp-python",
                                  "pip install 'inferarena[llm]', or point the agents at a server with --endpoint") from None
        self.label, self.precision, self.context = label, precision, context
        self.sampling = {**DEFAULT_SAMPLING, **(sampling or {})}
        from inferarena.frameworks import llama_cpp as llama

        # Extra buffers off where the build has AMX (its buffer crashes, frameworks/llama_cpp.py), on elsewhere.
        self.llm = llama.open_model(path, "auto", n_ctx=context, n_threads=threads, n_threads_batch=threads,
                                    verbose=False)
        self.info = {**info, "path": str(path), "n_ctx": context, "threads": threads,
                     "build": llama.build_summary("auto"), "sampling": self.sampling}
        self._batched = None  # the BatchedGenerator of the last chat_many, kept for the next one of its size

    def chat(self, messages, max_tokens, temperature, seed, **sampling):
        messages = _fit(messages, self.context - max_tokens - 32, self._count)
        started = time.perf_counter()
        out = self.llm.create_chat_completion(messages=messages, max_tokens=max_tokens, temperature=temperature,
                                              seed=seed, **self.resolved(sampling))
        seconds = time.perf_counter() - started
        usage = out.get("usage") or {}
        choice = out["choices"][0]
        return Reply(choice["message"].get("content") or "", int(usage.get("prompt_tokens", 0)),
                     int(usage.get("completion_tokens", 0)), seconds, choice.get("finish_reason") == "length")

    def chat_many(self, requests):
        if not requests:
            return []
        from inferarena.frameworks import llama_cpp as llama

        replies: list[Reply] = []
        for start in range(0, len(requests), self.PARALLEL):
            group = requests[start:start + self.PARALLEL]
            started = time.perf_counter()
            batch = [llama.chat_request(self.llm, _fit(r.messages, self.context - r.max_tokens - 32, self._count),
                                        r.max_tokens, r.temperature, r.seed, **self.resolved(sampling_of(r)))
                     for r in group]
            outs = self._generator().generate(batch)
            # The sequences shared one wall time: each reply is charged an equal share, so the agents' seconds
            # still add up to the time spent.
            share = (time.perf_counter() - started) / len(group)
            replies += [Reply(o.text, o.prompt_tokens, o.completion_tokens, share, o.truncated) for o in outs]
        return replies

    def _generator(self):
        """One context of PARALLEL sequences for every chat_many, its cells kept between calls (a prompt cache:
        `BatchedGenerator(reuse_prefix=True)`)."""
        from inferarena.frameworks import llama_cpp as llama

        if self._batched is None:
            self._batched = llama.BatchedGenerator(self.llm, self.PARALLEL, self.context, reuse_prefix=True)
        return self._batched

    @property
    def prompt_cache(self) -> dict:
        """Prompt tokens the batched context computed, and those it took from its cells instead."""
        g = self._batched
        return {"prefilled_tokens": g.prefilled_tokens if g else 0, "reused_tokens": g.reused_tokens if g else 0}

    def _count(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode(), add_bos=False, special=False))

    def close(self):
        if self._batched is not None:
            self._batched.close()  # its context before the model it reads
            self._batched = None
        self.llm.close()


class EndpointChat(ChatModel):
    """POST /v1/chat/completions on an OpenAI-compatible server (vLLM, llama.cpp's server, TGI)."""

    runtime, precision, local = "endpoint", "remote", False

    def __init__(self, url: str, model: str | None, timeout_s: float = 120.0):
        from inferarena.serving.openai import OpenAIClient

        # serve-bench's client: its URL checks, TLS and API key (INFERARENA_API_KEY or OPENAI_API_KEY)
        self.client = OpenAIClient(url, model or "default", timeout_s)
        self.label, self.model, self.timeout_s = url, model or "default", timeout_s
        self.info = {"url": url, "model": self.model}

    def chat(self, messages, max_tokens, temperature, seed, **sampling):
        from inferarena.serving.clients import RequestFailed

        fields = {"model": self.model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature,
                  "seed": seed}
        # Only what the call names: the server keeps its own defaults otherwise. top_p is OpenAI's; top_k and
        # the repetition penalty are what vLLM (repetition_penalty) and llama.cpp's server (repeat_penalty) accept.
        if sampling.get("top_p") is not None:
            fields["top_p"] = sampling["top_p"]
        if sampling.get("top_k") is not None:
            fields["top_k"] = sampling["top_k"]
        if sampling.get("repeat_penalty") is not None:
            fields["repeat_penalty"] = fields["repetition_penalty"] = sampling["repeat_penalty"]
        started = time.perf_counter()
        try:
            out = self.client.chat(fields)
        except RequestFailed as exc:
            raise InferarenaError(f"the endpoint {self.label} did not answer a chat completion ({exc})",
                                  "check --endpoint (an OpenAI-compatible server's base URL) and that it is up") from None
        seconds = time.perf_counter() - started
        usage = out.get("usage") or {}
        choice = out["choices"][0]
        return Reply(choice["message"].get("content") or "", int(usage.get("prompt_tokens") or 0),
                     int(usage.get("completion_tokens") or 0), seconds, choice.get("finish_reason") == "length")


@dataclass
class ScriptedChat(ChatModel):
    """A model whose replies a function writes: `script(messages, seed) -> text`. Tokens are words."""

    script: Callable[[Messages, int], str]
    label: str = "scripted"
    runtime: str = "scripted"
    precision: str = "none"
    local: bool = True
    info: dict = field(default_factory=dict)

    def chat(self, messages, max_tokens, temperature, seed, **sampling):
        text = self.script(messages, seed)
        prompt = sum(len(m["content"].split()) for m in messages)
        return Reply(text, prompt, len(text.split()), 0.0, False)


def _fit(messages: Messages, budget: int, count: Callable[[str], int]) -> Messages:
    """Shorten the longest user turns (others' messages quoted in them) until the prompt fits the context."""
    messages = [dict(m) for m in messages]
    for _ in range(8):
        sizes = [count(m["content"]) for m in messages]
        if sum(sizes) + 8 * len(messages) <= budget:
            break
        longest = max(range(len(messages)), key=sizes.__getitem__)
        text = messages[longest]["content"]
        messages[longest]["content"] = text[: len(text) // 2] + " [...]"
    return messages


def gguf_types() -> tuple[str, ...]:
    """The llama.cpp weight types the `gguf_quantize` pass writes, asked of the pass through the registry."""
    from typing import get_args

    from inferarena import registry

    return get_args(registry.load(registry.PASSES, "gguf_quantize").Config.model_fields["type"].annotation)


def check_variant(variant: str) -> None:
    """A user's `runtime/type` names a llama.cpp GGUF type (before any model is loaded)."""
    runtime, _, precision = variant.partition("/")
    if runtime != "llama_cpp":
        raise ConfigError(f"agents cannot run on {variant!r}: only llama_cpp variants have a chat API here",
                          "use --variants llama_cpp/q4_1,llama_cpp/q8_0 (GGUF types), or --endpoint URL for any server")
    if precision and precision != "native" and precision not in gguf_types():
        raise ConfigError(f"unknown GGUF type {precision!r} in {variant!r}", f"choose from {', '.join(gguf_types())}")


def variant_model(variant: str, model: str, cache_dir: Path, threads: int | None, context: int) -> LlamaChat:
    """The agents' model for `runtime/precision`: llama_cpp with the GGUF's own type, or one the
    `gguf_quantize` pass writes (cached by content hash, like any build)."""
    from inferarena import models, passes

    check_variant(variant)
    precision = variant.partition("/")[2]
    artifact = models.resolve(model)
    if artifact.format != "gguf":
        raise ModelError(f"the agents' model {model!r} is not a GGUF", "use --model smollm2 or a .gguf file")
    source = artifact.meta.get("precision")
    steps: tuple = ()
    if precision and precision not in ("native", source):
        steps = (("gguf_quantize", json.dumps({"type": precision})),)
    built, applied = passes.apply(steps, artifact, cache_dir, None)
    notes = []
    if steps and source not in ("f32", "f16", "bf16"):
        notes.append(f"{precision} made from the {source} source: it holds no more information than {source}")
    return LlamaChat(built.path, f"llama_cpp/{precision or source}", precision or source, threads, context,
                     {"source": str(artifact.path), "source_type": source, "passes": [p.as_dict() for p in applied],
                      "notes": notes}, artifact.meta.get("sampling"))
