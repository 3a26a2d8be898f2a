"""One error hierarchy for the whole library.

::

    RagError                      user-facing; CLI exit code 1, HTTP 500 unless overridden
     +-- InputError               bad input from the user (exit 2, HTTP 400/422)
     |    +-- EmptyQuestionError
     |    +-- InvalidSourceError  a document name that is a path, or otherwise unsafe
     |    +-- DatasetError        a malformed evaluation dataset
     |    +-- PayloadTooLargeError a request body or question over its limit (HTTP 413)
     +-- NotFoundError            a document/source that does not exist (exit 1, HTTP 404)
     +-- IngestError              reading or ingesting documents failed (exit 1, HTTP 400)
     |    +-- UnsupportedFormatError  a file type no parser reads (exit 1, HTTP 415)
     +-- ModelError               a model file is missing or cannot be loaded (exit 1, HTTP 503)
     +-- IndexEmptyError          nothing has been ingested yet (exit 1, HTTP 409)
     +-- BackendError             a remote service (Chroma server, LLM server) failed (exit 1, HTTP 502)
     +-- BusyError                the generator queue is full (HTTP 503 with Retry-After)
     +-- RequestTimeoutError      a request ran past its time limit (HTTP 504)
     +-- AuthError                missing or wrong API key (HTTP 401)

The CLI maps these once (``rag.cli.main``), the HTTP app once (``server.errors``);
nothing else inspects messages.
"""

from __future__ import annotations


class RagError(Exception):
    """Base class for errors meant for the user: the message is shown as is."""

    exit_code: int = 1
    http_status: int = 500
    kind: str = "rag_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputError(RagError):
    exit_code = 2
    http_status = 400
    kind = "invalid_input"


class EmptyQuestionError(InputError):
    kind = "empty_question"


class InvalidSourceError(InputError):
    kind = "invalid_source"


class DatasetError(InputError):
    kind = "invalid_dataset"


class PayloadTooLargeError(InputError):
    http_status = 413
    kind = "payload_too_large"


class NotFoundError(RagError):
    http_status = 404
    kind = "not_found"


class IngestError(RagError):
    http_status = 400
    kind = "ingest_error"


class UnsupportedFormatError(IngestError):
    http_status = 415
    kind = "unsupported_file_type"


class ModelError(RagError):
    http_status = 503
    kind = "model_unavailable"


class IndexEmptyError(RagError):
    http_status = 409
    kind = "index_empty"


class BackendError(RagError):
    http_status = 502
    kind = "backend_error"


class BusyError(RagError):
    http_status = 503
    kind = "busy"

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RequestTimeoutError(RagError):
    http_status = 504
    kind = "timeout"


class ForbiddenError(RagError):
    """A request the server will not act on, whoever sends it (a cross-site write)."""

    http_status = 403
    kind = "forbidden"


class AuthError(RagError):
    http_status = 401
    kind = "unauthorized"
