"""llama.cpp's weight repacking on and off, side by side: prompt and generation
speed of GGUF models loaded through ``rag.answer.llama_model.load_llama``.

Each configuration runs in a child process (a crash, as repacking on a CPU with
AMX, is reported, not fatal), on and off alternately, and the medians of
``--repeats`` rounds are reported with the ratio on/off. Run it as is on this CPU,
or under ``bench/no_amx.py`` to see a CPU without AMX:

  .venv/bin/python bench/repack.py [MODEL.gguf ...] [--repeats 5]
  .venv/bin/python bench/no_amx.py .venv/bin/python bench/repack.py MODEL.gguf
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = """
import json, sys, time
from rag.answer.llama_model import load_llama
path, repack, n_prompt, n_gen = sys.argv[1], sys.argv[2] == "on", int(sys.argv[3]), int(sys.argv[4])
llm = load_llama(path, repack, n_ctx=1024, n_threads=2, n_batch=512, verbose=False)
words = ("the quick brown fox jumps over a lazy dog while seven wizards quietly judge boxing matches " * 40)
prompt = llm.tokenize(words.encode())[:n_prompt]
t0 = time.perf_counter(); llm.eval(prompt); t1 = time.perf_counter()
for _ in range(n_gen):
    llm.eval([llm.sample(temp=0.0)])
t2 = time.perf_counter()
print(json.dumps({"prompt_tps": len(prompt) / (t1 - t0), "gen_tps": n_gen / (t2 - t1)}))
"""


def run(model: str, mode: str, n_prompt: int, n_gen: int) -> dict[str, float] | str:
    proc = subprocess.run([sys.executable, "-c", CHILD, model, mode, str(n_prompt), str(n_gen)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    if proc.returncode < 0:
        return f"crashed ({signal.Signals(-proc.returncode).name})"
    if proc.returncode:
        return f"failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    from models.manifest import default_model_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=[str(default_model_path())])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--prompt-tokens", type=int, default=256)
    parser.add_argument("--gen-tokens", type=int, default=32)
    args = parser.parse_args()
    for model in args.models:
        results: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
        failed: dict[str, str] = {}
        for _ in range(args.repeats):
            for mode in ("on", "off"):
                if mode in failed:
                    continue
                r = run(model, mode, args.prompt_tokens, args.gen_tokens)
                if isinstance(r, str):
                    failed[mode] = r
                else:
                    results[mode].append(r)
        print(Path(model).name)
        med = {m: {k: statistics.median(r[k] for r in rs) for k in ("prompt_tps", "gen_tps")}
               for m, rs in results.items() if rs}
        for mode in ("on", "off"):
            if mode in med:
                print(f"  repacking {mode:3s}: prompt {med[mode]['prompt_tps']:7.1f} tokens/s, "
                      f"generation {med[mode]['gen_tps']:6.1f} tokens/s (median of {len(results[mode])})")
            else:
                print(f"  repacking {mode:3s}: {failed[mode]}")
        if len(med) == 2:
            print(f"  on/off: prompt {med['on']['prompt_tps'] / med['off']['prompt_tps']:.2f}, "
                  f"generation {med['on']['gen_tps'] / med['off']['gen_tps']:.2f}")


if __name__ == "__main__":
    main()
