"""Model manifest and fetch code.

The GGUF files themselves live next to this file and are git-ignored; the
manifest (``manifest.json``) says what each one is, how big it is, its sha256
and where it comes from. ``python -m models.fetch`` downloads and verifies them.
"""

from __future__ import annotations

from models.manifest import MODELS_DIR, ModelEntry, default_model_path, load_manifest

__all__ = ["MODELS_DIR", "ModelEntry", "default_model_path", "load_manifest"]
