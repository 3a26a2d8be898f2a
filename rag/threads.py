"""Work started now and waited for later."""

from __future__ import annotations

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
