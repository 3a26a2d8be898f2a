"""Soak test: minutes of mixed traffic against a real ``rag serve``; memory and latency stability.

Run: .venv/bin/python bench/soak.py [--minutes 5] [--clients 4] [--sample-every 5] [--round T,T,...] [--json-out F]

Starts ``rag serve`` as its own process on a free loopback port over a fresh index
of ``seeds/`` (as ``bench/load.py`` does), then ``--clients`` concurrent clients send
mixed traffic for ``--minutes``: answers (JSON and streamed), searches,
OpenAI-compatible chat completions (JSON and streamed), document listings, and
uploads and deletes of a small document (``--round`` names the kinds a client
cycles through, to find which kind of traffic holds on to memory). A sampler
reads the server's resident memory (``VmRSS`` in ``/proc/PID/status``, Linux)
every ``--sample-every`` seconds.

Printed as one JSON object: requests by type and status, errors (any 5xx and
transport errors), resident memory after warm-up (the first minute, or the first
third of a shorter run) and at the end with the growth in per cent (target < 10 %),
and latency p50/p95 per minute, overall and per type (stability). Exits 1 when
there were errors or memory grew by the target or more. The server is always
stopped, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import free_port, percentile  # noqa: E402
GROWTH_TARGET_PCT = 10.0
TYPES = ("ask", "ask_stream", "chat", "chat_stream", "search", "list", "upload", "delete")
# one round of a client's traffic: answers dominate, as they would in use
ROUND = ("ask", "search", "ask_stream", "list", "chat", "search", "chat_stream", "upload", "ask", "delete")


@dataclass
class Tally:
    started: float
    statuses: Counter[tuple[str, str]] = field(default_factory=Counter)  # (type, status or error name)
    latencies: list[tuple[float, str, float]] = field(default_factory=list)  # (start offset s, type, ms)
    errors: list[str] = field(default_factory=list)

    def record(self, kind: str, t0: float, status: int | None, error: str | None = None) -> None:
        self.statuses[(kind, str(status) if status is not None else error or "error")] += 1
        if status is not None and status < 500:
            self.latencies.append((t0 - self.started, kind, (time.monotonic() - t0) * 1000))
        if status is None or status >= 500:
            self.errors.append(f"{kind}: {status or error}")


def rss_mb(pid: int) -> float | None:
    """Resident memory of ``pid`` in MiB (None once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


async def _sample_rss(pid: int, every: float, until: float, started: float,
                      samples: list[tuple[float, float]]) -> None:
    while time.monotonic() < until:
        value = rss_mb(pid)
        if value is not None:
            samples.append((time.monotonic() - started, value))
        await asyncio.sleep(every)
    value = rss_mb(pid)
    if value is not None:
        samples.append((time.monotonic() - started, value))


async def _request(http: httpx.AsyncClient, kind: str, n: int, questions: list[str], doc: str) -> int:
    """One request of ``kind``; returns its status (streams are read to the end)."""
    question = questions[n % len(questions)]
    if kind in ("ask_stream", "chat_stream"):
        path, body = (("/v1/ask", {"question": question, "stream": True}) if kind == "ask_stream" else
                      ("/v1/chat/completions", {"stream": True, "messages": [{"role": "user", "content": question}]}))
        async with http.stream("POST", path, json=body) as r:
            async for _ in r.aiter_bytes():
                pass
            return r.status_code
    if kind == "ask":
        r = await http.post("/v1/ask", json={"question": question})
    elif kind == "chat":
        r = await http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": question}]})
    elif kind == "search":
        r = await http.get("/v1/search", params={"q": question, "k": 5})
    elif kind == "list":
        r = await http.get("/v1/documents")
    elif kind == "upload":
        text = (f"Soak note {n}. The Varnholm harbour opened in {1800 + n % 200} after a storm. "
                f"Its lighthouse keeper logged {n} ships that year.")
        r = await http.post("/v1/documents", json={"source": doc, "text": text})
    else:
        r = await http.delete(f"/v1/documents/{doc}")
    return r.status_code


async def _client(url: str, number: int, until: float, questions: list[str], tally: Tally,
                  round_: tuple[str, ...]) -> None:
    doc = f"soak/client{number}.txt"
    n = number
    async with httpx.AsyncClient(base_url=url, timeout=300) as http:
        while time.monotonic() < until:
            kind = round_[n % len(round_)]
            t0 = time.monotonic()
            try:
                status = await _request(http, kind, n, questions, doc)
            except httpx.TransportError as exc:
                tally.record(kind, t0, None, type(exc).__name__)
            else:
                tally.record(kind, t0, status)
            n += 1


async def _soak(url: str, pid: int, args: argparse.Namespace,
                questions: list[str]) -> tuple[Tally, list[tuple[float, float]]]:
    started = time.monotonic()
    until = started + args.minutes * 60
    tally = Tally(started)
    samples: list[tuple[float, float]] = []
    sampler = asyncio.create_task(_sample_rss(pid, args.sample_every, until, started, samples))
    await asyncio.gather(*[_client(url, i, until, questions, tally, args.round) for i in range(args.clients)])
    await sampler
    return tally, samples


def _per_minute(tally: Tally) -> list[dict[str, object]]:
    minutes: dict[int, list[tuple[str, float]]] = {}
    for offset, kind, ms in tally.latencies:
        minutes.setdefault(int(offset // 60), []).append((kind, ms))
    out = []
    for minute, rows in sorted(minutes.items()):
        all_ms = [ms for _, ms in rows]
        by_type = {k: round(percentile([ms for kk, ms in rows if kk == k], 95), 1)
                   for k in TYPES if any(kk == k for kk, _ in rows)}
        out.append({"minute": minute + 1, "requests": len(rows), "p50_ms": round(percentile(all_ms, 50), 1),
                    "p95_ms": round(percentile(all_ms, 95), 1), "p95_ms_by_type": by_type})
    return out


def _memory(samples: list[tuple[float, float]], warmup_s: float) -> dict[str, object]:
    """Median RSS of the samples around the end of warm-up vs of the last samples."""
    if len(samples) < 4:
        return {"samples": len(samples), "note": "too few samples"}
    after = [i for i, (t, _) in enumerate(samples) if t >= warmup_s] or [len(samples) - 1]
    warm = statistics.median(v for _, v in samples[after[0]:after[0] + 3])
    end = statistics.median(v for _, v in samples[-3:])
    return {"samples": len(samples), "warmup_s": round(warmup_s, 1), "rss_start_mb": round(samples[0][1], 1),
            "rss_after_warmup_mb": round(warm, 1), "rss_end_mb": round(end, 1),
            "rss_max_mb": round(max(v for _, v in samples), 1),
            "rss_mb_per_minute": [round(statistics.median(v for t, v in samples if int(t // 60) == m), 1)
                                  for m in sorted({int(t // 60) for t, _ in samples})],
            "growth_pct": round((end - warm) / warm * 100, 2), "growth_target_pct": GROWTH_TARGET_PCT}


def _start_server(data: str, log: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "rag", "serve", "--port", str(port), "--data-dir", data],
                                  env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return server, url
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            _stop(server)
            raise SystemExit(f"rag serve did not start; see {log}")
        time.sleep(0.3)


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)


def _kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in TYPES]
    if not kinds or unknown:
        raise argparse.ArgumentTypeError(f"kinds are {', '.join(TYPES)}; got {text!r}")
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between memory samples")
    parser.add_argument("--round", type=_kinds, default=ROUND,
                        help=f"comma-separated kinds a client cycles through (of {', '.join(TYPES)}); "
                             "default: the mixed round")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    if not Path("/proc/self/status").exists():
        raise SystemExit("bench/soak.py reads /proc/PID/status: Linux only")
    questions = [json.loads(line)["question"] for line in (ROOT / "eval" / "dev.jsonl").read_text().splitlines()]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")} | {"HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "rag", "ingest", str(ROOT / "seeds"), "--data-dir", tmp, "--json"],
                       env=env, check=True, capture_output=True, timeout=600)
        log = Path(tmp) / "server.log"
        server, url = _start_server(tmp, log, env)
        try:
            tally, samples = asyncio.run(_soak(url, server.pid, args, questions))
        finally:
            _stop(server)
        server_log = log.read_text(errors="replace")
    warmup_s = min(60.0, args.minutes * 60 / 3)
    memory = _memory(samples, warmup_s)
    result = {
        "minutes": args.minutes, "clients": args.clients, "round": list(args.round),
        "requests": sum(tally.statuses.values()),
        "by_type_and_status": {f"{k} {s}": n for (k, s), n in sorted(tally.statuses.items())},
        "errors": len(tally.errors), "error_examples": tally.errors[:5],
        "server_log_tracebacks": server_log.count("Traceback"),
        "memory": memory,
        "latency_per_minute": _per_minute(tally),
    }
    print(json.dumps(result, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))
    growth = memory.get("growth_pct")
    if tally.errors or (isinstance(growth, float) and growth >= GROWTH_TARGET_PCT):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
