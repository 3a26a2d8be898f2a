"""Read ``manifest.json``: the models this project knows how to fetch and verify."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODELS_DIR = Path(__file__).resolve().parent
MANIFEST_PATH = MODELS_DIR / "manifest.json"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    file: str
    size: int
    sha256: str
    source: dict[str, Any] = field(default_factory=dict)
    architecture: str = ""
    license: str = ""

    @property
    def path(self) -> Path:
        return MODELS_DIR / self.file


def load_manifest(path: Path = MANIFEST_PATH) -> tuple[str, list[ModelEntry]]:
    """Return (default model name, entries)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    entries = [ModelEntry(**m) for m in data["models"]]
    return data["default"], entries


def default_entry() -> ModelEntry:
    default, entries = load_manifest()
    for entry in entries:
        if entry.name == default:
            return entry
    raise KeyError(f"default model {default!r} is not in {MANIFEST_PATH}")


def default_model_path() -> Path:
    return default_entry().path
