"""Progress events, one shape for every long command (`run`, `search`, `agents`, `serve-bench`):

    emit(event, data)   # event: "plan", "start" or "done"; data: {"name": ..., "ok": ..., "error": ...}

The CLI turns them into progress bars (`cli_common.progress_bar`); library callers pass their own sink or none.
"""

from __future__ import annotations

from collections.abc import Callable

EventSink = Callable[[str, dict], None]


def ignore(event: str, data: dict) -> None:
    """The sink for callers that want no progress."""
