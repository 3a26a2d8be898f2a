"""Loading a GGUF model into llama.cpp the same way everywhere: the answering
model, the model check (``rag.answer.model_check``), the benches, the tests, and the
OpenAI-compatible LLM server this project starts (``python -m rag.answer.llm_server``).

One choice is made here: llama.cpp's weight repacking ("extra buffer types": at
load, weights are rewritten into layouts for the CPU's matrix instructions). It
speeds up some quantisations on some CPUs, but on Intel CPUs with AMX (Sapphire
Rapids and later) the AMX layout segfaults at the first decode (llama.cpp issue
20824, ``ggml_backend_amx_mul_mat``). ``RAG_LLM_REPACK=auto`` (the default) keeps
llama.cpp's default, repacking on, unless the CPU reports AMX; ``on`` and ``off``
force either way."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rag.errors import ModelError

if TYPE_CHECKING:
    from llama_cpp import Llama

Repack = Literal["auto", "on", "off"]
REPACK_CHOICES: tuple[Repack, ...] = ("auto", "on", "off")
AMX_FLAGS = frozenset({"amx_tile", "amx_int8", "amx_bf16"})  # as Linux names them in /proc/cpuinfo
CPUINFO = Path("/proc/cpuinfo")

_load_lock = threading.Lock()  # the default-parameters hook below is process-wide while a model loads


@dataclass(frozen=True)
class RepackChoice:
    """Whether weights are repacked at load, and why (one phrase, for logs and ``rag doctor``)."""

    repack: bool
    reason: str

    def describe(self) -> str:
        return f"weight repacking {'on' if self.repack else 'off'} ({self.reason})"


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str] | None:
    """The CPU's feature flags as the kernel reports them (Linux's /proc/cpuinfo);
    None where that file does not exist or cannot be read."""
    try:
        text = cpuinfo.read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":  # the first processor's; they are alike
            return frozenset(value.split())
    return frozenset()


def build_flags() -> frozenset[str]:
    """AMX flags when the installed llama.cpp was built with AMX kernels (its
    ``AMX_INT8 = 1``): where the OS does not list the CPU's flags (Windows, where
    llama.cpp uses AMX without asking the OS), a build that has them is taken to
    run on a CPU that has them."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
    return AMX_FLAGS if "AMX_INT8 = 1" in info else frozenset()


def choose_repack(setting: Repack, flags: Iterable[str]) -> RepackChoice:
    """The repacking decision for ``setting`` on a CPU with ``flags``."""
    if setting == "on":
        return RepackChoice(True, "RAG_LLM_REPACK=on")
    if setting == "off":
        return RepackChoice(False, "RAG_LLM_REPACK=off")
    if setting != "auto":
        raise ValueError(f"RAG_LLM_REPACK must be one of {', '.join(REPACK_CHOICES)}, not {setting!r}")
    amx = sorted(AMX_FLAGS.intersection(flags))
    if amx:
        return RepackChoice(False, f"auto: this CPU has AMX ({' '.join(amx)}), whose repacked weights crash "
                                   "llama.cpp; RAG_LLM_REPACK=on forces it")
    return RepackChoice(True, "auto: llama.cpp's default, no AMX on this CPU")


def repack_here(setting: Repack) -> RepackChoice:
    """``choose_repack`` for this machine's CPU."""
    flags = cpu_flags()
    return choose_repack(setting, build_flags() if flags is None else flags)


@contextmanager
def repacking(repack: bool) -> Iterator[None]:
    """Models that ``llama_cpp.Llama`` loads meanwhile repack their weights or not.

    llama-cpp-python has no argument for it: ``Llama`` takes the model's parameters
    from ``llama_model_default_params()`` and sets the fields it knows, so that
    function is wrapped meanwhile (under a lock: loads in this process take turns)."""
    import llama_cpp.llama_cpp as api

    with _load_lock:
        default = api.llama_model_default_params

        def params():  # noqa: ANN202 - llama_cpp's ctypes structure
            p = default()
            p.use_extra_bufts = repack
            return p

        api.llama_model_default_params = params
        try:
            yield
        finally:
            api.llama_model_default_params = default


def load_llama(model_path: Path | str, repack: bool, **options: object) -> "Llama":
    """``llama_cpp.Llama(model_path, **options)`` with weight repacking on or off
    (``ModelError`` where the installed llama-cpp-python has no such parameter and
    it must be off)."""
    import llama_cpp.llama_cpp as api
    from llama_cpp import Llama

    if not repack and "use_extra_bufts" not in {name for name, *_ in api.llama_model_params._fields_}:
        raise ModelError("this llama-cpp-python cannot load a model without weight repacking (RAG_LLM_REPACK=off, "
                         "or auto on a CPU with AMX): install the version in requirements.lock")
    with repacking(repack):
        return Llama(model_path=str(model_path), **options)
