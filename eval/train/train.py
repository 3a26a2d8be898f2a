"""Everything the answer path learns, made again from the committed training suite,
in order, with the time each step took:

    .venv/bin/python eval/train/train.py

1. ``build_table.py``: every training question's candidate units, retrieved as ``rag ask`` does;
2. ``eval/fit_policy.py --signals``: ``rag/answer/policy_signals.json``, the selection policy on the signals alone;
3. ``train_ranker.py``: the ranker's cross-fitted scores and the shipped ranker (``models/ranker/``);
4. ``eval/fit_policy.py``: ``rag/answer/policy.json``, the policy on the signals and the ranker's score.

About an hour on 2 CPU cores (the README has the measured times). Nothing here
reads the development suite.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STEPS = (
    ("table", ["eval/train/build_table.py"]),
    ("signals policy", ["eval/fit_policy.py", "--signals"]),
    ("ranker", ["eval/train/train_ranker.py"]),
    ("ranked policy", ["eval/fit_policy.py"]),
)


def main() -> int:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    start = time.perf_counter()
    for name, argv in STEPS:
        t0 = time.perf_counter()
        print(f"== {name}: {' '.join(argv)}", flush=True)
        done = subprocess.run([sys.executable, *argv], cwd=ROOT)
        if done.returncode:
            print(f"== {name} failed (exit {done.returncode})", flush=True)
            return done.returncode
        print(f"== {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"== all: {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
