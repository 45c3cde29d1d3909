"""The model-server contract, and what every server shares.

A server plugin says which protocol it speaks, which managed environment it runs in (its
dependencies clash with inferarena's own: see `inferarena.envs`), and how to turn a folder of served
models plus one batching configuration into a command line. `serving.bench` starts it, waits for
readiness, loads it with LoadGen and stops it.

Every served model is a folder with `model.onnx` and `served.json` (input dtypes, threads); the
server's glue runs it with `serving.backend.OrtModel`, which also logs the batch sizes the server
formed, so every server is measured on the same model code.
"""

from __future__ import annotations

import json
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from inferarena.envs import Environment


class Batching(BaseModel):
    """One point of the batching sweep."""

    model_config = ConfigDict(extra="forbid")
    max_batch_size: int = Field(1, ge=1, description="Largest batch the server forms; 1 turns batching off.")
    max_delay_ms: float = Field(2.0, ge=0, description="Longest a request waits for others to join its batch.")
    instances: int = Field(1, ge=1, description="Model instances (workers) serving in parallel.")

    def label(self) -> str:
        """Short enough for a table cell; one instance is the default and goes unsaid."""
        batching = "no batching" if self.max_batch_size == 1 else f"batch ≤{self.max_batch_size}, {self.max_delay_ms:g} ms"
        return batching + (f", {self.instances} instances" if self.instances > 1 else "")

    def key(self) -> str:
        return f"b{self.max_batch_size}-d{self.max_delay_ms:g}ms-i{self.instances}"


@dataclass
class ServedModel:
    name: str
    folder: Path  # model.onnx + served.json


def stage_model(name: str, onnx: Path, dtypes: dict[str, str], threads: int, into: Path,
                device: str = "cpu") -> ServedModel:
    """A fresh folder for one served model (the batch log starts empty); `device` cuda asks the server's ONNX
    Runtime for its CUDA execution provider."""
    folder = into / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copy(onnx, folder / "model.onnx")
    for data in external_data(onnx):  # weights stored beside the graph keep the name the graph refers to
        shutil.copy(onnx.parent / data, folder / data)
    (folder / "served.json").write_text(json.dumps({"dtypes": dtypes, "threads": threads, "device": device,
                                                     "batch_log": str(folder.resolve() / "batches.log")}))
    return ServedModel(name, folder)


def external_data(onnx: Path) -> set[str]:
    """The files an .onnx keeps its weights in (exports of large models write model.onnx.data)."""
    import onnx as onnx_lib

    model = onnx_lib.load(str(onnx), load_external_data=False)
    return {entry.value for tensor in model.graph.initializer
            if tensor.data_location == onnx_lib.TensorProto.EXTERNAL
            for entry in tensor.external_data if entry.key == "location"}


class ModelServer(ABC):
    name: ClassVar[str]
    protocol: ClassVar[str]  # a key of serving.clients.PROTOCOLS
    environment: ClassVar[Environment]
    # Whether `Batching.instances` means anything for this server.
    has_instances: ClassVar[bool] = True
    startup_timeout_s: ClassVar[float] = 300.0

    @abstractmethod
    def command(self, models: list[ServedModel], batching: Batching, workdir: Path, python: Path,
                ports: dict[str, int]) -> tuple[list[str], dict[str, str]]:
        """The command line (and extra environment variables) that serves `models` with `batching`."""

    @abstractmethod
    def base_url(self, ports: dict[str, int]) -> str: ...

    @abstractmethod
    def ready_urls(self, ports: dict[str, int], models: list[ServedModel]) -> list[str]: ...

    port_names: ClassVar[tuple[str, ...]] = ("http",)
    # The protocol its gRPC port speaks (on the "grpc" port), or None where we do not drive its gRPC API.
    grpc_protocol: ClassVar[str | None] = None

    def grpc_address(self, ports: dict[str, int]) -> str:
        return f"127.0.0.1:{ports['grpc']}"
    # SIGTERM to the leader only, letting it stop its children (pytriton's tritonserver), before the
    # group gets SIGKILL; otherwise the whole group gets SIGTERM.
    stop_leader_first: ClassVar[bool] = False

    def ready_check(self, ports: dict[str, int], models: list[ServedModel],
                    workdir: Path | None = None) -> Callable[[], bool] | None:
        """An extra readiness condition beyond the URLs answering 200 (e.g. workers loaded)."""
        return None

    def batch_counters(self, ports: dict[str, int]) -> tuple[float, float] | None:
        """(inferences, executions) so far, from the server's own statistics, where it keeps them; their
        change over a probe gives the average batch the server reports (next to the one our model
        code logged)."""
        return None

    def cleanup(self, workdir: Path) -> None:  # noqa: B027 - optional hook
        """Remove what the server leaves outside `workdir` after it stopped."""
