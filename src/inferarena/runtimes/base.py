"""The runtime contract: `Runtime.load(artifact, ...) -> Session`, and `Session.predict(batch) -> outputs`.

`Session`s answer one batch at a time (`kind = "predict"`). Generative runtimes (`kind = "generate"`)
load a `GenerativeSession` instead, which streams greedy tokens; the runtime's `kind` tells the core
which scenarios, reference and fidelity checks apply, so the core never needs to name a runtime.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import threading
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, ClassVar, Iterable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from inferarena.artifacts import Artifact
from inferarena.errors import ConfigError
from inferarena.hardware import Gpu, Host

Batch = dict[str, np.ndarray]
# Called once a submitted batch is done: with None, or with the error that batch raised.
Done = Callable[[BaseException | None], None]


class Knobs(BaseModel):
    """Knobs every runtime has. Subclasses add their own, each with help."""

    model_config = ConfigDict(extra="forbid")
    threads: int | None = Field(None, ge=1, description="Threads the variant computes on, in all (shared out "
                                "among its streams, if it has several); default: all cores. Search space: all of "
                                "them, and half where the host has SMT or 8 or more (search.host_space).",
                                json_schema_extra={"space": "threads"})


def knobs_on_device(knobs: type[Knobs], values: dict[str, Any], device: str) -> dict[str, Any]:
    """The knob values that mean something on `device`: a knob that declares its devices (ORT's `gpu_provider`:
    cuda) is left out elsewhere, e.g. from a CPU pick's deploy line."""
    def applies(name: str) -> bool:
        info = knobs.model_fields.get(name)
        extra = info.json_schema_extra if info is not None and isinstance(info.json_schema_extra, dict) else {}
        return device in extra.get("devices", (device,))

    return {k: v for k, v in values.items() if applies(k)}


class StreamKnobs(Knobs):
    """Knobs of a runtime that overlaps requests by running `streams` of them at once, each on its share of
    the cores (Offline and Server keep that many batches in flight; SingleStream stays one at a time)."""

    streams: int = Field(1, ge=1, le=256, description="Batches in flight at once, each on cores/streams threads. "
                         "Search space: powers of two up to the threads, e.g. 1, 2 on 2 cores, 1 to 128 on 192 (where "
                         "batch sizes are searched: one query at a time never overlaps).",
                         json_schema_extra={"space": "streams", "overlaps": True})

    def threads_per_stream(self) -> int:
        return max(1, (self.threads or os.cpu_count() or 1) // self.streams)


class Session(ABC):
    input_names: list[str]
    # What the runtime actually applied (effective precision, streams...), stored with the result.
    info: dict[str, Any]
    # Batches this session can have in flight at once (`submit`); 1 runs them one after another.
    requests: int = 1

    @abstractmethod
    def predict(self, batch: Batch) -> dict[str, np.ndarray]: ...

    def submit(self, batch: Batch, done: Done) -> None:
        """Start one batch and call `done` when it is finished, from whichever thread finished it.

        Blocks while `requests` batches are in flight. The default runs it here and now."""
        try:
            self.predict(batch)
        except BaseException as exc:  # the caller's callback decides what an error means
            done(exc)
            return
        done(None)

    def drain(self) -> None:  # noqa: B027 - nothing is ever in flight by default
        """Wait until every submitted batch is done."""

    def flops(self, shapes: dict[str, tuple[int, ...]]) -> float | None:
        """FLOPs of one call on inputs of these shapes, if the runtime can count them."""
        return None

    def adaptive_stats(self, reset: bool = False) -> dict | None:
        """An adaptive session's per-input decisions since the last reset (`adaptive.*` figures); None
        for a session that always runs the whole model."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class ThreadedSession(Session):
    """A session whose `predict` releases the GIL (ONNX Runtime, torch) overlaps batches on a pool of
    `requests` threads, each running a whole batch on its share of the cores (`start_streams`)."""

    pool: ThreadPoolExecutor | None = None

    def start_streams(self, requests: int) -> None:
        self.requests = requests
        if requests > 1:
            self.pool = ThreadPoolExecutor(requests, thread_name_prefix="stream")
            self.slots = threading.BoundedSemaphore(requests)
            self.pending: set = set()

    def submit(self, batch: Batch, done: Done) -> None:
        if self.pool is None:
            super().submit(batch, done)
            return
        self.slots.acquire()

        def run():
            error = None
            try:
                self.predict(batch)
            except BaseException as exc:
                error = exc
            finally:
                self.slots.release()
            done(error)

        future = self.pool.submit(run)
        self.pending.add(future)
        future.add_done_callback(self.pending.discard)

    def drain(self) -> None:
        if self.pool is not None:
            for future in list(self.pending):
                future.result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None


def submit_all(session: Session, batches: Iterable[Batch], finished: Callable[[int], None] | None = None) -> None:
    """Submit each batch in turn, as many in flight as `session.requests`; `finished(i)` is called when
    batch i is done (failed or not). Waits for all, then raises the first error."""
    errors: list[BaseException] = []
    for i, batch in enumerate(batches):
        def done(error, i=i):
            if error is not None:
                errors.append(error)
            if finished is not None:
                finished(i)

        session.submit(batch, done)
    session.drain()
    if errors:
        raise errors[0]


TokenCallback = Callable[[int], None]


class GenerativeSession(ABC):
    """A loaded language model that generates greedily from token ids.

    Every request generates exactly `max_new_tokens` (end-of-sequence is ignored), so runtimes do the
    same work and their token latencies compare. `on_token(id)` is called as each token is ready: the
    scenario stamps the first for TTFT and the rest for inter-token latency.
    """

    info: dict[str, Any]
    # Bytes of weights read per generated token (the roofline's numerator, with the KV cache).
    weight_bytes: int
    kv_bytes_per_value: int = 2  # bytes of one cached key or value element (f16 unless a runtime says otherwise)

    @abstractmethod
    def generate(self, prompt: list[int], max_new_tokens: int, on_token: TokenCallback | None = None) -> list[int]: ...

    def generate_batch(self, prompts: list[list[int]], max_new_tokens: int) -> list[list[int]]:
        """Several prompts at once; runtimes that batch override this, the rest serve them in turn."""
        return [self.generate(p, max_new_tokens) for p in prompts]

    def token_logprobs(self, tokens: list[int]) -> np.ndarray | None:
        """log p(tokens[i] | tokens[:i]) for i >= 1 (teacher forcing), or None if the runtime exposes no logits."""
        return None

    def adaptive_stats(self, reset: bool = False) -> dict | None:
        """The `adaptive.*` figures of a session whose decoding adapts (speculation, FFN slicing) since the
        last reset, or None."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class Runtime(ABC):
    name: ClassVar[str]
    formats: ClassVar[tuple[str, ...]]  # artifact formats it loads
    precisions: ClassVar[tuple[str, ...]]  # on the CPU
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    # Precisions on a device other than the CPU, where the runtime runs there (e.g. {"cuda": ("fp32", "bf16")}).
    device_precisions: ClassVar[dict[str, tuple[str, ...]]] = {}
    kind: ClassVar[str] = "predict"
    modules: ClassVar[tuple[str, ...]]  # import names that must be present
    distribution: ClassVar[str]  # the pip distribution whose version is reported
    extra: ClassVar[str]  # inferarena's pip extra that installs it
    Knobs: ClassVar[type[Knobs]] = Knobs

    @classmethod
    def available(cls) -> bool:
        return all(importlib.util.find_spec(m) is not None for m in cls.modules)

    @classmethod
    def version(cls) -> str | None:
        try:
            return importlib.metadata.version(cls.distribution)
        except importlib.metadata.PackageNotFoundError:
            return None

    @classmethod
    def install_hint(cls) -> str:
        return f"pip install 'inferarena[{cls.extra}]'"

    @classmethod
    def precisions_on(cls, device: str) -> tuple[str, ...]:
        """The precisions it computes in on this device (the CPU's list unless the runtime declares another)."""
        return cls.precisions if device == "cpu" else cls.device_precisions.get(device, cls.precisions)

    @classmethod
    def supported_precisions(cls, host: Host, device: str = "cpu", gpu: Gpu | None = None) -> tuple[str, ...]:
        """The precisions it computes natively here: the CPU's ISA decides on cpu, the GPU's capability on cuda."""
        if device == "cpu":
            return tuple(p for p in cls.precisions if host.supports(p))
        return tuple(p for p in cls.precisions_on(device) if gpu is None or gpu.supports(p))

    @classmethod
    def unavailable_on(cls, device: str) -> str | None:
        """Why it cannot run on `device` here although it declares it (a CPU-only build of its framework,
        say), read without importing the framework; None when nothing is known against it."""
        return None

    @classmethod
    def validate_knobs(cls, knobs: dict[str, Any]) -> Knobs:
        try:
            return cls.Knobs.model_validate(knobs)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            allowed = ", ".join(cls.Knobs.model_fields)
            raise ConfigError(
                f"runtime {cls.name!r} knob '{field}': {first['msg']}", f"valid knobs are: {allowed}"
            ) from None

    @abstractmethod
    def load(self, artifact: Artifact, precision: str, knobs: Knobs, input_shapes: dict[str, list[int]]) -> Session:
        """Build a ready session. `input_shapes` has -1 where a dimension varies. A runtime that declares
        devices beyond the CPU also takes `device=` (see `on_device`); the plan gives it only those."""


def on_device(spec) -> dict[str, str]:
    """The `load` keyword for a variant's device: none on the CPU, so runtimes that run only there keep
    the plain signature; `{"device": "cuda"}` for a runtime the plan measures on a GPU."""
    return {} if spec.device == "cpu" else {"device": spec.device}
