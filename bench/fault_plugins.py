"""Runtimes that misbehave on purpose, for bench/faults.py only: never in the product's registry.
The suite adds them through INFERARENA_PLUGINS, which the spawned workers inherit. Each wraps the
real ONNX Runtime plugin and breaks one thing."""

from __future__ import annotations

import ctypes
import resource
import time

import numpy as np

from inferarena.runtimes.ort import OnnxRuntime


class _Broken(OnnxRuntime):
    def load(self, artifact, precision, knobs, input_shapes):
        session = super().load(artifact, precision, knobs, input_shapes)
        real = session.predict
        session.predict = lambda batch: self.misbehave(real, batch)
        return session

    def misbehave(self, real, batch):
        return real(batch)


class Segfault(_Broken):
    name = "fault_segfault"

    def misbehave(self, real, batch):
        ctypes.string_at(0)  # reads address 0: SIGSEGV


class Hang(_Broken):
    name = "fault_hang"

    def misbehave(self, real, batch):
        time.sleep(10**6)


class OutOfMemory(_Broken):
    name = "fault_oom"

    def misbehave(self, real, batch):
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        used = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (used + (256 << 20), hard))  # 256 MB more, then allocate 4 GB
        hog = [np.ones(1 << 27) for _ in range(32)]
        return real(batch) if hog else None


class NaN(_Broken):
    name = "fault_nan"

    def misbehave(self, real, batch):
        return {k: np.full_like(v, np.nan) for k, v in real(batch).items()}


class WrongShape(_Broken):
    name = "fault_shape"

    def misbehave(self, real, batch):
        return {k: v[:, :1] for k, v in real(batch).items()}


class RaiseInLoad(OnnxRuntime):
    name = "fault_load"

    def load(self, artifact, precision, knobs, input_shapes):
        raise RuntimeError("injected: the runtime refused to load the model")
