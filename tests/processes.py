"""Real server processes for tests (a Chroma server, an LLM server, ``rag serve``):
each in its own process group, logging to a file, polled until ready within a
bounded time, and always stopped (the whole group) on exit, also when the test fails."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``with ServerProcess(cmd, ready_url, log) as p:`` starts ``cmd`` and returns
    once ``GET ready_url`` answers 200 (and ``ready_when(log text)`` holds, if given)."""

    def __init__(self, cmd: Sequence[str], ready_url: str, log: Path, *, env: dict[str, str] | None = None,
                 cwd: Path | None = None, timeout: float = 120.0,
                 ready_when: Callable[[str], bool] | None = None) -> None:
        self.cmd = list(cmd)
        self.ready_url = ready_url
        self.log = log
        self.env = env
        self.cwd = cwd
        self.timeout = timeout
        self.ready_when = ready_when
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "ServerProcess":
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(self.cmd, env=self.env, cwd=self.cwd, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_ready(self) -> "ServerProcess":
        assert self.proc is not None, "start() first"
        deadline = time.monotonic() + self.timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.cmd[:4]} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.ready_url, timeout=2).status_code == 200 and (
                        self.ready_when is None or self.ready_when(self.log_tail(100_000))):
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.cmd[:4]} not ready after {self.timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.25)

    def stop(self) -> None:
        """SIGTERM to the whole process group, SIGKILL after a grace period."""
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = self.proc.pid  # start_new_session: the group id is the leader's pid
        for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
        try:  # children (uvicorn workers) may outlive the leader by a moment
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def __enter__(self) -> "ServerProcess":
        self.start()
        try:
            return self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
