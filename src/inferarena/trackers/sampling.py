"""A background thread that calls `sample()` every interval while a tracker's window is open."""

from __future__ import annotations

import threading


class Sampler:
    interval_s: float = 0.1

    def sample(self) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Turn the samples into `self.result`."""
        raise NotImplementedError

    def __enter__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval_s):
                return

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
        self.finish()
