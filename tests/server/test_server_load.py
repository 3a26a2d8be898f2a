"""16 concurrent clients asking 4 questions each against the real model: every
request gets a correct 200 or a clean 503, never a 500, and the server stays up."""

from __future__ import annotations

import asyncio

import httpx

QUESTIONS = [
    ("Who is Meta's president of global affairs?", "Clegg"),
    ("Which companies are partnering with Meta on Llama for national security?", None),
    ("When will Meta release Llama 5?", None),  # not in the corpus: abstains
    ("What did Meta say Llama was used for by Chinese researchers?", None),
]


async def client(url: str, http: httpx.AsyncClient, n: int) -> list[tuple[int, dict]]:
    out = []
    for i in range(4):
        question, _ = QUESTIONS[(n + i) % len(QUESTIONS)]
        r = await http.post(f"{url}/v1/ask", json={"question": question})
        out.append((r.status_code, r.json() | {"_q": question}))
    return out


def test_sixteen_clients_get_answers_or_clean_503(api_url: str) -> None:
    async def main() -> list[tuple[int, dict]]:
        async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=32)) as http:
            results = await asyncio.gather(*[client(api_url, http, n) for n in range(16)])
        return [r for rs in results for r in rs]

    results = asyncio.run(main())
    assert len(results) == 64
    statuses = {s for s, _ in results}
    assert statuses <= {200, 503}, statuses
    expected = dict(QUESTIONS)
    for status, body in results:
        if status == 503:
            assert body["error"]["type"] == "busy"
            continue
        assert body["question"] == body["_q"]
        if body["abstained"]:
            assert body["citations"] == []
        else:
            markers = {c["marker"] for c in body["citations"]}
            assert markers and all(f"[{m}]" in body["answer"] for m in markers)
        if expected[body["_q"]]:
            assert expected[body["_q"]] in body["answer"]
    assert sum(s == 200 for s, _ in results) >= 16
    assert httpx.get(f"{api_url}/healthz").status_code == 200
    assert httpx.get(f"{api_url}/readyz").json()["queue"] == {"active": 0, "waiting": 0, "max": 16, "slots": 1}
