"""The results store: runs, variants, measurements, environment and config, in one SQLite file."""

from inferarena.store.sqlite import Store

__all__ = ["Store"]
