"""One short decode of the configured model in a child process, so that a crash
inside llama.cpp (a segfault ends the process it happens in) is one clear line
naming the cause and the setting, not a dead terminal.

``rag doctor`` and the set-up script's last step run it every time. The engine
runs it once before a model is first loaded in process on a machine
(``ensure_checked``): a passed check is remembered in the cache folder under a
key made of the model file, the llama.cpp build, the CPU and the loading options,
so later loads cost one small file read.

Run as ``python -m rag.answer.model_check '{"model_path": ..., ...}'`` it is the child:
it loads the model with ``rag.answer.generation.LlamaCppGenerator`` (the loading code
the product uses), decodes a short prompt and a few tokens, and prints one JSON
line."""

from __future__ import annotations

import hashlib
import json
import logging
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import ModelError
from rag.files import write_atomic
from rag.answer.llama_model import CPUINFO, repack_here

if TYPE_CHECKING:
    from rag.settings import Settings

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 300.0  # a model of several GB loads from a slow disk in this time
CHECK_TOKENS = 4
STAMPS = "model-checks.json"  # in the cache folder
MAX_STAMPS = 64
CHILD_OPTIONS = ("model_path", "ctx", "n_threads", "n_gpu_layers", "llm_repack")


@dataclass(frozen=True)
class ModelCheck:
    """The outcome of one check: ``summary`` is one line, for the terminal."""

    ok: bool
    summary: str

    def to_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "summary": self.summary}


def _child_command(settings: "Settings") -> list[str]:
    options = {name: str(getattr(settings, name)) if name == "model_path" else getattr(settings, name)
               for name in CHILD_OPTIONS}
    return [sys.executable, "-m", "rag.answer.model_check", json.dumps(options)]


def _crash_hint(repack: bool) -> str:
    if repack:
        return ("set RAG_LLM_REPACK=off (repacked weights crash llama.cpp on CPUs with AMX, its issue 20824; "
                "'auto' turns repacking off where /proc/cpuinfo lists AMX)")
    return ("weight repacking is already off, so it is not the AMX defect: try another model file (--model, "
            "RAG_MODEL_PATH) or build llama-cpp-python again ('pip install --force-reinstall --no-cache-dir "
            "llama-cpp-python')")


def run_check(settings: "Settings", timeout: float = CHECK_TIMEOUT_S) -> ModelCheck:
    """Load the configured model in a child process and decode once."""
    path = Path(settings.model_path).expanduser()
    if not path.is_file():
        return ModelCheck(False, f"model file not found: {path} (fetch the default with 'python -m models.fetch', "
                                 "or pass --model / RAG_MODEL_PATH)")
    choice = repack_here(settings.llm_repack)
    try:
        done = subprocess.run(_child_command(settings), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return ModelCheck(False, f"{path.name} did not load and decode within {timeout:g} s in the model check "
                                 f"({choice.describe()})")
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        return ModelCheck(False, f"{path.name} crashed llama.cpp at its first decode ({name}) with "
                                 f"{choice.describe()}: {_crash_hint(choice.repack)}")
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return ModelCheck(False, f"the model check of {path.name} failed: {last.removeprefix('error: ')}")
    report = json.loads(lines[-1])
    return ModelCheck(True, f"{path.name} loads and decodes ({report['load_s']:.2f} s to load, "
                            f"{report['tokens']} tokens in {report['decode_s']:.2f} s, in a child process); "
                            f"{report['repack']}")


def _llama_build() -> list[object]:
    """Identity of the installed llama.cpp libraries (names, sizes, times), found
    without importing llama_cpp."""
    spec = find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        return []
    lib = Path(spec.origin).parent / "lib"
    found: list[object] = []
    for f in sorted(lib.glob("*")) if lib.is_dir() else []:
        st = f.stat()
        found.append([f.name, st.st_size, st.st_mtime_ns])
    return found


def _cpu_identity() -> str:
    try:
        lines = CPUINFO.read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        import platform

        return platform.processor() or platform.machine()
    wanted = ("model name", "flags")
    return "\n".join(dict.fromkeys(ln for ln in lines if ln.split(":")[0].strip() in wanted))


def stamp_key(settings: "Settings") -> str:
    """What a passed check holds for: the model file, the llama.cpp build, the CPU
    and the options the model loads with."""
    path = Path(settings.model_path).expanduser().resolve()
    st = path.stat()
    material = json.dumps([str(path), st.st_size, st.st_mtime_ns, _llama_build(), _cpu_identity(),
                           settings.n_gpu_layers, settings.llm_repack, repack_here(settings.llm_repack).repack])
    return hashlib.sha256(material.encode()).hexdigest()


def _read_stamps(file: Path) -> dict[str, object]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def ensure_checked(settings: "Settings") -> None:
    """Run the check unless it passed before for this model, build, CPU and
    options; ``ModelError`` with its one line when it fails."""
    path = Path(settings.model_path).expanduser()
    if not path.is_file():
        return  # the generator says so in its own words
    file = Path(settings.cache_dir) / STAMPS
    key = stamp_key(settings)
    stamps = _read_stamps(file)
    if key in stamps:
        return
    log.info("checking %s in a child process (once on this machine)", path.name)
    result = run_check(settings)
    if not result.ok:
        raise ModelError(result.summary)
    stamps[key] = {"model": path.name, "checked": time.strftime("%Y-%m-%dT%H:%M:%S")}
    try:
        write_atomic(file, json.dumps(dict(list(stamps.items())[-MAX_STAMPS:]), indent=1).encode("utf-8"))
    except OSError as exc:  # a read-only cache only means the check runs again next time
        log.warning("cannot remember the model check in %s: %s", file, exc)


def main(argv: list[str]) -> int:
    """The child: load, decode, print one JSON line."""
    from rag.answer.generation import LlamaCppGenerator

    options = json.loads(argv[0])
    t0 = time.perf_counter()
    try:
        gen = LlamaCppGenerator(Path(options["model_path"]), n_ctx=options["ctx"], n_threads=options["n_threads"],
                                n_gpu_layers=options["n_gpu_layers"], repack=options["llm_repack"])
    except ModelError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    t1 = time.perf_counter()
    pieces = list(gen.stream([{"role": "user", "content": "Is the model ready? Answer in one word."}],
                             max_tokens=CHECK_TOKENS))
    t2 = time.perf_counter()
    print(json.dumps({"load_s": t1 - t0, "decode_s": t2 - t1, "tokens": len(pieces), "text": "".join(pieces),
                      "repack": gen.repack.describe()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
