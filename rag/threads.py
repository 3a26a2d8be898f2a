"""Work started now and waited for later, and how many cores it may use."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any


class Background:
    """``make()`` running in a daemon thread; ``result()`` waits for it and returns
    its value or raises its exception."""

    def __init__(self, make: Callable[[], Any], name: str) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(make,), name=name, daemon=True)
        self._thread.start()

    def _run(self, make: Callable[[], Any]) -> None:
        try:
            self._value = make()
        except BaseException as exc:  # noqa: BLE001 - handed to result()
            self._error = exc

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def cpu_threads() -> int:
    """The cores this process may run on (its CPU affinity where the OS says)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
