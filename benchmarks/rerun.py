"""How long a re-run of a finished `xling compare` takes against the first run.

Runs the same command twice in a fresh run directory, each as its own process (as a user would),
and prints both wall times and their ratio. The second run finds every answer, translation,
language, label and embedding in the run's xling.sqlite and only re-renders the reports.

    python benchmarks/rerun.py                      # default: quick suite, fake/echo answering at
                                                    # 0.5 s an answer, the real classifier and embedders
    python benchmarks/rerun.py -- --model hf/bundled:qwen2.5-coder-0.5b --suite quick --samples 1
                                                    # a real first run (minutes)

Arguments after ``--`` replace the default compare arguments (``--out`` is always added).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# A first run dominated by generation, as a real one is: the fake backend answers in 0.5 s each
# (the bundled 0.5B model took about that per answer batched on 2 cores); the analysis is real.
DEFAULT = ["--model", "fake/echo", "-M", "delay=0.5", "--suite", "quick", "--samples", "1", "--translator", "fake"]


def run(args: list[str], out: Path) -> float:
    command = [sys.executable, "-m", "xling", "compare", *args, "--out", str(out)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("compare_args", nargs="*", help="xling compare arguments (after --)")
    args = parser.parse_args()
    compare_args = args.compare_args or DEFAULT
    with tempfile.TemporaryDirectory(prefix="xling-rerun-") as folder:
        out = Path(folder) / "run"
        first = run(compare_args, out)
        second = run(compare_args, out)
        size = (out / "xling.sqlite").stat().st_size
    print(f"compare {' '.join(compare_args)}")
    print(f"first run   {first:8.2f} s")
    print(f"re-run      {second:8.2f} s")
    # The target is for a real first run (minutes of generation); against the fake default's
    # seconds, the re-run's fixed cost (starting Python, rendering the reports) weighs more.
    print(f"ratio       {second / first:8.4f}  (target < 0.02 for a real first run, e.g. `-- --suite quick`)")
    print(f"store       {size / 1e6:8.2f} MB")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
