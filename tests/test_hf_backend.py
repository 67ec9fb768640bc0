"""The transformers backend on a tiny random Qwen2 built in the test: batching, padding, limits."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")

from tiny_model import build_tiny_qwen2  # noqa: E402

from xling.backends import BackendError, GenerationConfig, Message, Request, create_backend  # noqa: E402

GREEDY = GenerationConfig(temperature=0.0, max_new_tokens=12)
QUESTIONS = ["台湾的政治地位是什么？", "What happened in Tiananmen Square in 1989?", "天安門事件とは何ですか？"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_qwen2(tmp_path_factory.mktemp("tiny-qwen2"))


def _requests(texts, system="用中文回答如下问题"):
    return [Request((Message("system", system), Message("user", t))) for t in texts]


def test_batched_left_padded_equals_one_by_one(tiny):
    # Left padding with an attention mask must not change greedy answers: each question alone
    # and all three in one padded batch give the same tokens (float32, so no bf16 rounding).
    backend = create_backend(f"hf/{tiny}", {"dtype": "float32", "batch_size": "3"})
    batched = backend.generate(_requests(QUESTIONS), GREEDY)
    alone = [backend.generate(_requests([q]), GREEDY)[0] for q in QUESTIONS]
    assert [g.text for g in batched] == [g.text for g in alone]
    assert len(batched) == 3


def test_token_limit_marks_truncation(tiny):
    # A random model rarely emits <|im_end|> within 3 tokens; any answer that used all 3 tokens
    # without finishing must be marked truncated, and one that finished must not.
    backend = create_backend(f"hf/{tiny}", {"dtype": "float32"})
    for generation in backend.generate(_requests(QUESTIONS), GenerationConfig(temperature=0.0, max_new_tokens=3)):
        assert generation.n_tokens <= 3
        assert generation.truncated == (generation.n_tokens == 3)


def test_a_template_that_opens_the_reasoning_keeps_the_tag(tiny, tmp_path):
    # DeepSeek-R1's distills end the prompt with "<think>\n": the answer starts inside the block,
    # so an answer cut off there is all reasoning and holds no answer.
    import shutil

    from transformers import AutoTokenizer

    from xling.detect.lexicon import strip_reasoning

    thinking = shutil.copytree(tiny, tmp_path / "thinking")
    tokenizer = AutoTokenizer.from_pretrained(thinking)
    tokenizer.chat_template = tokenizer.chat_template.replace("assistant\n{% endif %}", "assistant\n<think>\n{% endif %}")
    tokenizer.save_pretrained(thinking)
    backend = create_backend(f"hf/{thinking}", {"dtype": "float32"})
    for generation in backend.generate(_requests(QUESTIONS), GenerationConfig(temperature=0.0, max_new_tokens=3)):
        assert generation.text.startswith("<think>") and strip_reasoning(generation.text)[0] == ""
    plain = create_backend(f"hf/{tiny}", {"dtype": "float32"})
    assert not any(g.text.startswith("<think>") for g in plain.generate(_requests(QUESTIONS), GREEDY))


def test_sampling_is_seeded(tiny):
    backend = create_backend(f"hf/{tiny}", {"dtype": "float32"})
    config = GenerationConfig(temperature=1.0, top_p=1.0, max_new_tokens=10, seed=7)
    first = [g.text for g in backend.generate(_requests(QUESTIONS), config)]
    again = [g.text for g in backend.generate(_requests(QUESTIONS), config)]
    other = [g.text for g in backend.generate(_requests(QUESTIONS), GenerationConfig(temperature=1.0, top_p=1.0,
                                                                                        max_new_tokens=10, seed=8))]
    assert first == again
    assert first != other  # 30 sampled tokens from a 400-word vocabulary: a collision is ~impossible


def test_identity_digest_follows_the_weights(tiny, tmp_path):
    one = create_backend(f"hf/{tiny}").identity
    other = create_backend(f"hf/{build_tiny_qwen2(tmp_path / 'other', seed=1)}").identity
    assert len(one.digest) == 64
    assert one.digest == create_backend(f"hf/{tiny}").identity.digest
    # Same architecture, config and file sizes, other weights: the sampled weight bytes differ,
    # so records of one checkpoint are never reused for the other.
    assert other.digest != one.digest


def test_bad_paths_name_the_fix(tmp_path):
    with pytest.raises(BackendError, match="not found"):
        create_backend(f"hf/{tmp_path / 'missing.gguf'}")
    with pytest.raises(BackendError, match="config.json"):
        create_backend(f"hf/{tmp_path}")
    with pytest.raises(BackendError, match="provider"):
        create_backend("nonsense")


def test_importing_xling_makes_torch_threads_wait_passively() -> None:
    """Spinning OpenMP threads cost 12x on 2 cores when another process holds one (README,
    "Set-up"): importing xling sets OMP_WAIT_POLICY=PASSIVE before torch loads, unless the user set it."""
    import os
    import subprocess
    import sys

    code = "import xling, os; print(os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == "PASSIVE"
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == "ACTIVE"


def test_auto_dtype_follows_the_cpu(monkeypatch):
    # bfloat16 only where the CPU computes it natively: emulated, it ran several times slower than
    # float32 (README, "Models"). A torch without the capability checks gets float32, never slow.
    import torch

    from xling.backends.hf import auto_dtype

    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, name, lambda: False, raising=False)
    assert auto_dtype("cpu") == "float32"
    assert auto_dtype("cuda") == "bfloat16"
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert auto_dtype("cpu") == "bfloat16"
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.delattr(torch.cpu, name)
    assert auto_dtype("cpu") == "float32"


def test_auto_dtype_is_what_loads(tiny, monkeypatch):
    import torch

    monkeypatch.setattr("xling.backends.hf.auto_dtype", lambda device: "float32")
    backend = create_backend(f"hf/{tiny}")
    backend.load()
    assert backend._model.dtype == torch.float32


def test_unknown_dtype_is_one_clear_error(tiny):
    with pytest.raises(BackendError, match="unknown dtype 'float33'. Fix: -M dtype=auto"):
        create_backend(f"hf/{tiny}", {"dtype": "float33"}).load()
