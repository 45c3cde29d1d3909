"""Several tasks at once, and replies shared between arms: what makes a 100-task, four-arm GSM8K run fit in
a few hours on two cores.

Tasks at once (`TaskPool`). A debate round's three first attempts already decode together (`chat_many`).
Decoding two tasks' rounds together makes six sequences per llama.cpp step, and a small model's decode step
on a CPU costs little more for six than for three (`bench/agents_parallel.py`: on a 2-core EPYC, one step of
3 sequences gave 1.48× one sequence's tokens/s, one of 6 gave 1.86×). Each of `k` workers runs one task at a
time through `run_task`, unchanged; every model call goes through a `PooledChat`, which holds it until every
live worker has one call waiting, then decodes them all in one `chat_many` per model, the calls ordered by
task (so a batch's make-up does not depend on thread timing). A worker stays live between its tasks, so the
batches are the same from run to run.

What a task cost. The tasks overlap, so their own wall times would count shared seconds twice. Instead the
time from the end of one batch to the end of the next (the batch's decode and whatever the workers did
before it: gate checks, the sandbox) is shared equally among that batch's replies, and so is the energy
metered over that interval; a task is charged its replies' shares. The shares add up to the wall time and
energy of the whole arm.

Shared replies (`ReplyStore`). The arms ask many of the same calls: every arm's first round is the
baseline's (same prompts, same per-call seeds), and a gated arm whose gate passed every message asks the
baseline's second round too. A reply to a call already decoded (same model file, messages, max_tokens,
temperature and seed) is taken from the run's folder (`replies.jsonl`), and the arm is charged the seconds
and joules measured when it was decoded, so each arm's cost is what it would have been alone. The arms then
also share those replies' text, which makes their paired comparison sharper, not different in kind.
`--no-share-replies` decodes every call again.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

from inferarena.agents.chat import ChatModel, ChatRequest, Reply, sampling_of


@dataclass
class Charge:
    """What one task was charged: seconds, joules (None: no meter) and the replies taken from the store."""

    seconds: float = 0.0
    energy_j: float | None = None
    shared: int = 0
    shared_s: float = 0.0

    def add(self, seconds: float, energy_j: float | None) -> None:
        self.seconds += seconds
        if energy_j is not None:
            self.energy_j = (self.energy_j or 0.0) + energy_j


def request_key(model: ChatModel, request: ChatRequest) -> str:
    """What decides a reply: the model file (or endpoint) and every argument of the call."""
    identity = [model.label, str(getattr(model, "info", {}).get("path", "")),
                str(getattr(model, "info", {}).get("model", ""))]
    text = json.dumps([identity, request.messages, request.max_tokens, request.temperature, request.seed,
                       model.resolved(sampling_of(request))], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class ReplyStore:
    """Decoded replies of a run, one JSON line each, appended as tasks finish; read by later arms' jobs."""

    def __init__(self, path: Path | None):
        self.path = path
        self.replies: dict[str, tuple[Reply, float | None]] = {}
        if path is None or not path.is_file():
            return
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                self.replies[row["key"]] = (Reply(row["text"], row["prompt_tokens"], row["completion_tokens"],
                                                  row["seconds"], row["truncated"]), row.get("energy_j"))
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a stop

    def get(self, key: str) -> tuple[Reply, float | None] | None:
        return self.replies.get(key)

    def put(self, rows: list[tuple[str, Reply, float | None]]) -> None:
        fresh = [(k, r, j) for k, r, j in rows if k not in self.replies]
        for key, reply, energy_j in fresh:
            self.replies[key] = (reply, energy_j)
        if self.path is None or not fresh:
            return
        with self.path.open("a", encoding="utf-8") as out:
            for key, reply, energy_j in fresh:
                out.write(json.dumps({"key": key, "text": reply.text, "prompt_tokens": reply.prompt_tokens,
                                      "completion_tokens": reply.completion_tokens, "seconds": reply.seconds,
                                      "truncated": reply.truncated, "energy_j": energy_j}) + "\n")


class TaskPool:
    """`k` workers running tasks, their models' calls batched across tasks (see the module's docstring)."""

    def __init__(self, k: int = 1, meter=None, store: ReplyStore | None = None):
        self.k, self.meter, self.store = max(1, k), meter, store
        self._cv = threading.Condition()
        self._live = 0
        self._waiting: list[tuple[int, ChatModel, list[ChatRequest], dict]] = []
        self._local = threading.local()
        self._charges: dict[int, Charge] = {}
        self._pending_store: dict[int, list[tuple[str, Reply, float | None]]] = {}
        self._mark = time.perf_counter()
        self._tracker = None

    def wrap(self, model: ChatModel) -> "PooledChat":
        return PooledChat(self, model)

    # -- the workers --------------------------------------------------------------------------------------
    def run(self, tasks: list, fn: Callable) -> Iterator[tuple[int, object, Charge]]:
        """`fn(task)` for every task, `k` at a time; yields (index, fn's result, its charge) as each finishes.
        An exception in one task stops the pool and is raised here, after the workers end."""
        queue = list(enumerate(tasks))
        queue.reverse()
        done: list[tuple[int, object, Charge]] = []
        errors: list[BaseException] = []
        finished = threading.Condition()
        workers = min(self.k, len(tasks))
        self._start_interval()

        def work() -> None:
            try:
                while True:
                    with self._cv:
                        if not queue or errors:
                            break
                        index, task = queue.pop()
                    self._local.index = index
                    self._charges[index] = Charge()
                    self._pending_store[index] = []
                    try:
                        out = fn(task)
                    except BaseException as exc:  # noqa: BLE001 - raised again by run()
                        with finished:
                            errors.append(exc)
                            finished.notify_all()
                        break
                    if self.store is not None:
                        self.store.put(self._pending_store.pop(index))
                    with finished:
                        done.append((index, out, self._charges.pop(index)))
                        finished.notify_all()
            finally:
                with self._cv:
                    self._live -= 1
                    self._dispatch_if_ready()
                with finished:
                    finished.notify_all()

        with self._cv:
            self._live = workers
        threads = [threading.Thread(target=work, daemon=True, name=f"agents-task-{i}") for i in range(workers)]
        for t in threads:
            t.start()
        given = 0
        while True:
            with finished:
                while given == len(done) and not errors and any(t.is_alive() for t in threads):
                    finished.wait(0.5)
                ready, given = done[given:], len(done)
            yield from ready
            if errors or not any(t.is_alive() for t in threads):
                with finished:
                    rest, given = done[given:], len(done)
                yield from rest
                break
        for t in threads:
            t.join()
        self._stop_interval()
        if errors:
            raise errors[0]

    # -- the calls ----------------------------------------------------------------------------------------
    def call(self, model: ChatModel, requests: list[ChatRequest]) -> list[Reply]:
        index = getattr(self._local, "index", None)
        if index is None:  # not inside run(): a direct call (e.g. a warm-up), decoded at once
            return model.chat_many(requests)
        replies: list[Reply | None] = [None] * len(requests)
        keys = [request_key(model, r) for r in requests] if self.store is not None else []
        missing = []
        for i, request in enumerate(requests):
            hit = self.store.get(keys[i]) if self.store is not None else None
            if hit is None:
                missing.append(i)
                continue
            reply, energy_j = hit
            replies[i] = reply
            charge = self._charges[index]
            charge.add(reply.seconds, energy_j)
            charge.shared += 1
            charge.shared_s += reply.seconds
        if missing:
            slot: dict = {}
            with self._cv:
                self._waiting.append((index, model, [requests[i] for i in missing], slot))
                self._dispatch_if_ready()
                while "out" not in slot:
                    self._cv.wait()
            if isinstance(slot["out"], BaseException):
                raise slot["out"]
            for i, (reply, energy_j) in zip(missing, slot["out"]):
                replies[i] = reply
                if self.store is not None:
                    self._pending_store[index].append((keys[i], reply, energy_j))
        return replies  # type: ignore[return-value]

    def _dispatch_if_ready(self) -> None:
        """With the lock held: when every live worker waits on a call, decode them all (in task order)."""
        if not self._waiting or len(self._waiting) < self._live:
            return
        waiting = sorted(self._waiting, key=lambda w: w[0])
        self._waiting = []
        try:
            by_model: dict[int, tuple[ChatModel, list[tuple[dict, int, ChatRequest]]]] = {}
            for _, model, requests, slot in waiting:
                slot["replies"] = [None] * len(requests)
                for i, r in enumerate(requests):
                    by_model.setdefault(id(model), (model, []))[1].append((slot, i, r))
            for model, items in by_model.values():
                outs = model.chat_many([r for _, _, r in items])
                for (slot, i, _), reply in zip(items, outs):
                    slot["replies"][i] = reply
            seconds, energy_j = self._end_interval()
            n = sum(len(slot["replies"]) for *_, slot in waiting)
            share_s, share_j = seconds / n, (energy_j / n if energy_j is not None else None)
            for index, _, _, slot in waiting:
                out = []
                for reply in slot["replies"]:
                    out.append((replace(reply, seconds=share_s), share_j))
                    self._charges[index].add(share_s, share_j)
                slot["out"] = out
        except BaseException as exc:  # noqa: BLE001 - handed to every waiting worker
            for *_, slot in waiting:
                slot["out"] = exc
        self._cv.notify_all()

    # -- the intervals ------------------------------------------------------------------------------------
    def _start_interval(self) -> None:
        self._mark = time.perf_counter()
        if self.meter is not None:
            self._tracker = self.meter.track()
            self._tracker.__enter__()

    def _stop_interval(self) -> None:
        if self._tracker is not None:
            self._tracker.__exit__(None, None, None)
            self._tracker = None

    def _end_interval(self) -> tuple[float, float | None]:
        seconds = time.perf_counter() - self._mark
        energy_j = None
        if self._tracker is not None:
            self._tracker.__exit__(None, None, None)
            energy_j = self._tracker.result.energy_j if self._tracker.result is not None else None
        self._start_interval()
        return seconds, energy_j


class PooledChat(ChatModel):
    """A model whose calls go through a `TaskPool` (batched across tasks, shared between arms)."""

    def __init__(self, pool: TaskPool, inner: ChatModel):
        self.pool, self.inner = pool, inner
        self.label, self.runtime, self.precision = inner.label, inner.runtime, inner.precision
        self.local, self.info, self.sampling = inner.local, getattr(inner, "info", {}), inner.sampling

    def chat(self, messages, max_tokens, temperature, seed, **sampling) -> Reply:
        request = ChatRequest(messages, max_tokens, temperature, seed, sampling.get("top_k"), sampling.get("top_p"),
                              sampling.get("repeat_penalty"))
        return self.pool.call(self.inner, [request])[0]

    def chat_many(self, requests: list[ChatRequest]) -> list[Reply]:
        return self.pool.call(self.inner, list(requests))

    def close(self) -> None:
        self.inner.close()
