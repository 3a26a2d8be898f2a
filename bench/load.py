"""HTTP load benchmark: many concurrent clients against a real ``rag serve``.

Run: .venv/bin/python bench/load.py [--clients 16] [--questions 4] [--repeats 3]

Starts ``rag serve`` as its own process on a free loopback port over a fresh index
of ``seeds/``, then per repeat: a reference of one client asking the N x M
questions one after another, and the load of N clients asking M of them each, at once.
Reported (medians over repeats): throughput in answers per second, latency p50/p95
as the clients saw it (queue wait included), status counts, and the ratio of
throughput under load to the single-client reference.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import free_port, percentile  # noqa: E402


async def _run(url: str, questions: list[str], clients: int, total: int) -> dict[str, object]:
    """``total`` answers (the questions in order, round and round) asked by
    ``clients`` clients at once, each asking its share one after another: runs
    with the same ``total`` ask the same questions whatever ``clients`` is."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def one(http: httpx.AsyncClient, n: int) -> None:
        for j in range(n, total, clients):
            t0 = time.perf_counter()
            r = await http.post(f"{url}/v1/ask", json={"question": questions[j % len(questions)]})
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code == 200:
                latencies.append((time.perf_counter() - t0) * 1000)

    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=clients * 2)) as http:
        await asyncio.gather(*[one(http, n) for n in range(clients)])
    wall = time.perf_counter() - t0
    ok = statuses.get(200, 0)
    return {"throughput": ok / wall, "p50_ms": percentile(latencies, 50) if latencies else 0.0,
            "p95_ms": percentile(latencies, 95) if latencies else 0.0, "statuses": statuses, "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--questions", type=int, default=4, help="questions per client")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    questions = [json.loads(line)["question"] for line in (ROOT / "eval" / "dev.jsonl").read_text().splitlines()]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")} | {"HF_HUB_OFFLINE": "1"}
    rag = [sys.executable, "-m", "rag"]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([*rag, "ingest", str(ROOT / "seeds"), "--data-dir", tmp, "--json"], env=env, check=True,
                       capture_output=True)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([*rag, "serve", "--port", str(port), "--data-dir", tmp], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("rag serve did not start")
                time.sleep(0.3)
            asyncio.run(_run(url, questions, 1, 3))  # warm-up
            refs, loads = [], []
            total = args.clients * args.questions  # the reference asks the same questions
            for i in range(args.repeats):
                refs.append(asyncio.run(_run(url, questions, 1, total)))
                loads.append(asyncio.run(_run(url, questions, args.clients, total)))
                print(f"repeat {i + 1}: 1 client {refs[-1]['throughput']:.2f}/s, "
                      f"{args.clients} clients {loads[-1]['throughput']:.2f}/s "
                      f"p95 {loads[-1]['p95_ms']:.0f} ms statuses {loads[-1]['statuses']}", file=sys.stderr)
        finally:
            server.terminate()
            server.wait(timeout=30)
    med = lambda rows, key: statistics.median(float(r[key]) for r in rows)  # noqa: E731
    result = {
        "clients": args.clients, "questions_per_client": args.questions, "repeats": args.repeats,
        "load": {k: med(loads, k) for k in ("throughput", "p50_ms", "p95_ms", "wall_s")},
        "reference_1_client": {k: med(refs, k) for k in ("throughput", "p50_ms", "p95_ms")},
        "statuses": [r["statuses"] for r in loads],
    }
    result["throughput_ratio"] = result["load"]["throughput"] / result["reference_1_client"]["throughput"]
    print(json.dumps(result, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
