"""Generation throughput: xling's generation stage against a bare transformers `generate` loop.

Both run the bundled model on the same prompts (the quick suite, all three languages) with greedy
decoding, so they produce the same tokens; throughput counts generated tokens (padding excluded)
per second of wall time. The bare loop is timed at several batch sizes and its best is the
reference; xling runs its whole stage (chat template, batching, SQLite commits) at its default
batch size. Target: xling / best bare >= 0.9.

With ``--dtypes bfloat16,float32`` the same is measured for each weight type in turn, side by side
in one run: bfloat16 is fast on CPUs that compute it natively (AVX512-BF16, AMX) and slower than
float32 on those that emulate it (3x on an AMD EPYC with AVX2, README), which is what the backend's
``dtype=auto`` decides by.

    python benchmarks/generation.py [--max-new-tokens 64] [--batch-sizes 4,8,16] [--dtypes auto]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-sizes", default="4,8,16")
    parser.add_argument("--dtypes", default="auto", help="comma-separated: auto, bfloat16, float32")
    args = parser.parse_args()
    for dtype in args.dtypes.split(","):
        measure(dtype, args.max_new_tokens, [int(b) for b in args.batch_sizes.split(",")])


def measure(dtype: str, max_new_tokens: int, batch_sizes: list[int]) -> None:
    """Bare `generate` at each batch size, then xling's stage, with the weights in ``dtype``."""
    import torch

    from xling.backends import GenerationConfig, create_backend
    from xling.config import CompareConfig
    from xling.pipeline import generate_missing, plan
    from xling.prompts import load_suite
    from xling.store import Store

    config = CompareConfig(samples=1, generation=GenerationConfig(temperature=0.0, max_new_tokens=max_new_tokens))
    suite = load_suite("quick")
    backend = create_backend(config.models[0], {"dtype": dtype})
    backend.load()
    planned = plan(suite, suite.ids, config, config.models[0], str(backend.identity))
    model, tokenizer = backend._model, backend._tokenizer
    print(f"model {backend.identity}, dtype {dtype} ({model.dtype}), {len(planned)} prompts, "
          f"max_new_tokens {max_new_tokens}, torch threads {torch.get_num_threads()}")

    # Warm-up, so neither side pays for first-call allocation.
    backend.generate([planned[0].request], config.generation)

    best = (0.0, 0)
    for batch_size in batch_sizes:
        tokens, start = 0, time.perf_counter()
        for first in range(0, len(planned), batch_size):
            chunk = planned[first:first + batch_size]
            texts = [tokenizer.apply_chat_template([{"role": m.role, "content": m.content} for m in p.request.messages],
                                                   tokenize=False, add_generation_prompt=True) for p in chunk]
            encoded = tokenizer(texts, return_tensors="pt", padding=True)
            with torch.inference_mode():
                output = model.generate(**encoded, max_new_tokens=max_new_tokens, do_sample=False,
                                        pad_token_id=tokenizer.pad_token_id)
            new = output[:, encoded["input_ids"].shape[1]:]
            tokens += int((new != tokenizer.pad_token_id).sum())
        rate = tokens / (time.perf_counter() - start)
        print(f"bare generate  batch {batch_size:>2}: {tokens:>5} tokens, {rate:6.1f} tok/s")
        best = max(best, (rate, batch_size))

    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.sqlite") as store:
        start = time.perf_counter()
        generate_missing(backend, planned, store, config, lambda *_: None)
        elapsed = time.perf_counter() - start
        stored = store.get_generations([p.key for p in planned])
        tokens = sum(g.n_tokens or 0 for g in stored.values())
    rate = tokens / elapsed
    print(f"xling stage    batch {backend.batch_size:>2}: {tokens:>5} tokens, {rate:6.1f} tok/s")
    print(f"ratio xling / best bare (batch {best[1]}): {rate / best[0]:.2f}  (target >= 0.90)")


if __name__ == "__main__":
    main()
