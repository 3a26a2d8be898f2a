"""The learned evidence ranker: a cross-encoder that reads a question and one
evidence unit (under the end of its section path) and scores how well the unit
answers the question.

It is all-MiniLM-L6-v2 fine-tuned on the training suite (``eval/train/``) by
``eval/train/train_ranker.py``, exported to ONNX and quantized to int8; it runs
in ONNX Runtime, no torch. Selection (``rag.answer.selection``) has it read the
candidates its signals rank best (the policy's ranker ``Stage``: how many it
reads) and weighs its score as one more signal. The files are in ``models/ranker/``, each checked
against the sha256 that ``models/manifest.json`` lists before it is used.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ModelError

log = logging.getLogger(__name__)

MAX_TOKENS = 128  # question and passage together; the passage is cut to fit
SECTION_LEVELS = 2  # the passage starts with the last levels of its section path ...
SECTION_CHARS = 100  # ... at most this long
BATCH = 32
MODEL_FILE = "ranker.onnx"
TOKENIZER_FILE = "tokenizer.json"


def passage(section: str, text: str) -> str:
    """What the ranker reads of a unit: the end of its heading path, then its text
    (an FAQ's answer "No." means something only under its question)."""
    tail = " > ".join(part.strip() for part in section.split(" > ")[-SECTION_LEVELS:] if part.strip())
    tail = tail[:SECTION_CHARS]
    return f"{tail}: {text}" if tail else text


def make_tokenizer(data: str) -> Any:
    """The model's tokenizer (``tokenizers``), cutting pairs as training did."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(data)
    tok.enable_truncation(max_length=MAX_TOKENS, strategy="only_second")
    tok.enable_padding()
    return tok


def encode(tokenizer: Any, question: str, passages: Sequence[str]) -> dict[str, np.ndarray]:
    """Model inputs for ``question`` paired with each passage."""
    encodings = tokenizer.encode_batch([(question, p) for p in passages])
    return {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64)}


@dataclass(frozen=True)
class RankerFiles:
    folder: Path
    sha256: dict[str, str]  # file name -> sha256, from models/manifest.json


class Ranker:
    """Scores (question, unit) pairs: higher is a better answer. Thread-safe."""

    def __init__(self, session: Any, tokenizer: Any) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self._inputs = [i.name for i in session.get_inputs()]
        self._lock = threading.Lock()  # the tokenizer's padding settings are shared state

    def scores(self, question: str, passages: Sequence[str]) -> np.ndarray:
        if not passages:
            return np.zeros(0, dtype=np.float64)
        from rag.index.onnx_embedder import length_batches

        out = np.zeros(len(passages), dtype=np.float64)
        for batch in length_batches(passages, BATCH):
            with self._lock:
                feeds = encode(self._tokenizer, question, [passages[i] for i in batch])
            logits = self._session.run(None, {n: feeds[n] for n in self._inputs})[0]
            out[batch] = np.asarray(logits, dtype=np.float64).reshape(-1)
        return out


def load_ranker(files: RankerFiles) -> Ranker:
    """The ranker from checked files (``ModelError`` naming the file that is missing or differs)."""
    from rag.index.onnx_embedder import DamagedExport, new_session, verified_bytes

    try:
        model = verified_bytes(files.folder, MODEL_FILE, files.sha256[MODEL_FILE])
        tokenizer = verified_bytes(files.folder, TOKENIZER_FILE, files.sha256[TOKENIZER_FILE])
    except DamagedExport as exc:
        raise ModelError(f"the evidence ranker cannot be used: {exc} (git checkout models/ranker, or "
                         "RAG_RANKER=false to answer without it)") from exc
    return Ranker(new_session(model), make_tokenizer(tokenizer.decode("utf-8")))


def default_files() -> RankerFiles:
    """The shipped ranker's folder and hashes (``models/manifest.json``, entry "ranker")."""
    from models.manifest import ranker_entry

    entry = ranker_entry()
    return RankerFiles(entry.path, dict(entry.files))
