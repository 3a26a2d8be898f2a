"""HTTP fuzzing with schemathesis against the service's own ``/openapi.json``.

What it proves: for every operation in the OpenAPI document (answers, streamed and
OpenAI-compatible ones included, search, document upload, listing and deletion,
health, readiness, metrics), generated valid and invalid requests never get a
server error, and every response conforms to the document: its status code and
content type are declared, its body matches the declared schema (for streams:
every Server-Sent Event, its JSON payload included), declared headers are
well-formed, and requests that violate the schema are refused with a 4xx.

Bounds: one live server over a fresh index holding two short documents (so answers
are quick); the examples, coverage and fuzzing phases run, the last with at most
``RELIABILITY_FUZZ_EXAMPLES`` examples per operation (default 20); a fixed seed
(``RELIABILITY_FUZZ_SEED`` to explore others), no Hypothesis deadline, no example
database, no shrinking; each request has a 60 s time limit."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from rag.engine import Rag  # noqa: E402
from rag.settings import Settings  # noqa: E402
from server.app import create_app  # noqa: E402
from tests.serving import LiveServer  # noqa: E402

EXAMPLES = int(os.environ.get("RELIABILITY_FUZZ_EXAMPLES", "20"))
SEED = int(os.environ.get("RELIABILITY_FUZZ_SEED", "20261123"))
# the OpenAPI examples ask about Nick Clegg: these make them real, cited answers
DOCS = [{"source": "fuzz/clegg.txt", "text": "Nick Clegg is Meta's president of global affairs. In a blog post on "
                                             "Monday he wrote that Meta would share its Llama models."},
        {"source": "fuzz/harbour.md", "text": "# Varnholm\n\nThe harbour of Varnholm opened in 1887 after a storm."}]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, negative_data_rejection]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fuzz_url(tmp_path_factory: pytest.TempPathFactory, embedder, seeded_engine) -> Iterator[str]:
    settings_ = Settings(data_dir=tmp_path_factory.mktemp("fuzz") / "data", request_timeout=60)
    engine = Rag(settings_, embedder=embedder)
    engine.__dict__["generator"] = seeded_engine.generator  # share the loaded model
    with LiveServer(create_app(settings_, engine=engine)) as server:
        for doc in DOCS:
            assert httpx.post(f"{server.url}/v1/documents", json=doc, timeout=60).status_code == 200
        yield server.url


def _openapi() -> dict[str, object]:
    """The OpenAPI document the server serves: the app is only built, never started
    (schemathesis's fixture-based loader does not work with this pytest; a test below
    checks that the live server serves the same document)."""
    return create_app(Settings(data_dir=Path("unused"))).openapi()


schema = schemathesis.openapi.from_dict(_openapi(), config=schemathesis.Config.from_dict({
    "seed": SEED,
    "request-timeout": 60,
    "generation": {"mode": "all", "max-examples": EXAMPLES, "no-shrink": True, "database": "none"},
    "phases": {"stateful": {"enabled": False}},
}))


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck),
          phases=[Phase.explicit, Phase.generate])
def test_every_operation_conforms_to_its_openapi(case, fuzz_url: str) -> None:  # noqa: ANN001 - schemathesis.Case
    case.call_and_validate(base_url=fuzz_url, checks=CHECKS)


def test_the_live_server_serves_the_fuzzed_document(fuzz_url: str) -> None:
    assert httpx.get(f"{fuzz_url}/openapi.json", timeout=60).json() == _openapi()


def test_openapi_declares_errors_sse_and_body_types(fuzz_url: str) -> None:
    spec = httpx.get(f"{fuzz_url}/openapi.json", timeout=60).json()
    for path in ("/v1/ask", "/v1/chat/completions"):
        op = spec["paths"][path]["post"]
        assert {"400", "401", "413", "415", "422", "503", "504"} <= set(op["responses"]), path
        assert "text/event-stream" in op["responses"]["200"]["content"], path
    upload = spec["paths"]["/v1/documents"]["post"]
    assert {"application/json", "multipart/form-data"} <= set(upload["requestBody"]["content"])
    assert "404" in spec["paths"]["/v1/documents/{source}"]["delete"]["responses"]
