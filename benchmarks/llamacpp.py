"""The bundled GGUF model through llama.cpp in-process (llamacpp/) against transformers (hf/).

Both run xling's whole generation stage (pipeline.generate_missing, SQLite commits included) on
the same quick-suite prompts with greedy decoding; throughput is generated tokens per second of
wall time, each backend's tokens as it reports them. Needs the [llamacpp] and [bundled] extras.

    python benchmarks/llamacpp.py [--prompts 12] [--max-new-tokens 64]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=12, help="how many of the quick suite's prompts")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()

    from xling.backends import GenerationConfig, create_backend
    from xling.config import CompareConfig
    from xling.pipeline import generate_missing, plan
    from xling.prompts import load_suite
    from xling.store import Store

    config = CompareConfig(samples=1, generation=GenerationConfig(temperature=0.0, max_new_tokens=args.max_new_tokens))
    suite = load_suite("quick")
    for address in ("llamacpp/bundled:qwen2.5-coder-0.5b-instruct", "hf/bundled:qwen2.5-coder-0.5b-instruct"):
        backend = create_backend(address)
        load_start = time.perf_counter()
        backend.load()
        loaded = time.perf_counter() - load_start
        planned = plan(suite, suite.ids, config, address, str(backend.identity))[:args.prompts]
        with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.sqlite") as store:
            start = time.perf_counter()
            generate_missing(backend, planned, store, config, lambda *_: None)
            elapsed = time.perf_counter() - start
            answers = store.get_generations([p.key for p in planned]).values()
            tokens = sum(a.n_tokens or 0 for a in answers)
        backend.close()
        print(f"{address:<48} load {loaded:5.1f} s  {len(planned)} answers, {tokens} tokens in {elapsed:6.1f} s: "
              f"{tokens / elapsed:6.1f} tokens/s")


if __name__ == "__main__":
    main()
