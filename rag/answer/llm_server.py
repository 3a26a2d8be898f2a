"""llama-cpp-python's OpenAI-compatible server (``python -m llama_cpp.server``),
started so that its model loads as this project loads models: with weight
repacking decided by ``RAG_LLM_REPACK`` (``rag.answer.llama_model``; auto: off on CPUs
with AMX, where repacked weights crash llama.cpp). That server has no option
for it, so run it as::

    python -m rag.answer.llm_server --model MODEL.gguf --host 127.0.0.1 --port 8080 ...

with the same arguments ``python -m llama_cpp.server`` takes (``--help`` lists
them). llama.cpp's own ``llama-server`` takes ``--no-repack`` instead."""

from __future__ import annotations

import os
import sys

from rag.answer.llama_model import REPACK_CHOICES, repack_here, repacking


def main() -> None:
    setting = os.environ.get("RAG_LLM_REPACK", "auto").strip().lower() or "auto"
    if setting not in REPACK_CHOICES:
        print(f"error: RAG_LLM_REPACK must be one of {', '.join(REPACK_CHOICES)}, not {setting!r}", file=sys.stderr)
        sys.exit(2)
    choice = repack_here(setting)  # type: ignore[arg-type]
    print(f"rag.answer.llm_server: {choice.describe()}", file=sys.stderr, flush=True)
    from llama_cpp.server.__main__ import main as serve

    with repacking(choice.repack):  # held while the server runs: its models load in this process only
        serve()


if __name__ == "__main__":
    main()
