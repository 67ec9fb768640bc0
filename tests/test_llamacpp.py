"""llamacpp/: GGUF in-process through llama-cpp-python, an optional extra.

The address and option checks run everywhere; generating needs llama-cpp-python (it compiles
llama.cpp on install, minutes on 2 cores) and the bundled model, so that test skips with the
reason where either is missing.
"""

from __future__ import annotations

import importlib.util

import pytest

from xling.backends import create_backend
from xling.backends.base import BackendError, GenerationConfig, Message, Request

HAVE_LLAMA = importlib.util.find_spec("llama_cpp") is not None


def test_address_must_be_a_gguf_file_or_a_bundled_model(tmp_path) -> None:
    with pytest.raises(BackendError, match=r"not a \.gguf file. Fix: write llamacpp/path/to/model.gguf"):
        create_backend(f"llamacpp/{tmp_path / 'missing.gguf'}")
    with pytest.raises(BackendError, match="no bundled model 'nope'"):
        create_backend("llamacpp/bundled:nope")


def test_options_are_checked(tmp_path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF not really")
    with pytest.raises(BackendError, match="-M batch: no such option for llamacpp models"):
        create_backend(f"llamacpp/{gguf}", {"batch": "2"})
    with pytest.raises(BackendError, match="integers"):
        create_backend(f"llamacpp/{gguf}", {"n_ctx": "big"})
    backend = create_backend(f"llamacpp/{gguf}", {"n_ctx": "512"})
    # The digest is the file's sha256: the same file anywhere is the same model.
    import hashlib
    assert backend.identity.digest == hashlib.sha256(b"GGUF not really").hexdigest()
    assert backend.identity.name == f"llamacpp/{gguf}"


@pytest.mark.skipif(HAVE_LLAMA, reason="llama-cpp-python is installed here")
def test_without_the_extra_load_says_how_to_install(tmp_path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"x")
    with pytest.raises(BackendError, match=r"pip install 'xling\[llamacpp\]'"):
        create_backend(f"llamacpp/{gguf}").load()


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_LLAMA, reason="llama-cpp-python not installed (pip install 'xling[llamacpp]')")
def test_bundled_model_answers() -> None:
    from xling.backends.bundled import BundledModelMissing

    try:
        backend = create_backend("llamacpp/bundled:qwen2.5-coder-0.5b-instruct", {"n_ctx": "1024"})
    except BundledModelMissing as err:
        pytest.skip(f"bundled model not installed: {err}")
    try:
        out = backend.generate([Request((Message("user", "What is the capital of France? One word."),))],
                               GenerationConfig(temperature=0.0, max_new_tokens=8))
    finally:
        backend.close()
    assert "paris" in out[0].text.lower() and out[0].finish_reason in ("stop", "length")


class _StubLlama:
    """Stands in for llama_cpp.Llama: a GGUF's chat template in its metadata, one canned completion."""

    def __init__(self, template: str, content: str, finish_reason: str) -> None:
        self.metadata = {"tokenizer.chat_template": template}
        self._completion = {"choices": [{"message": {"role": "assistant", "content": content},
                                         "finish_reason": finish_reason}], "usage": {"completion_tokens": 8}}

    def create_chat_completion(self, **_: object) -> dict:
        return {"choices": [dict(c, message=dict(c["message"])) for c in self._completion["choices"]],
                "usage": self._completion["usage"]}


# The end of DeepSeek-R1-Distill's template: the assistant turn opens the reasoning block.
R1_TEMPLATE = ("{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
               "{% for message in messages %}{% if message['role'] == 'user' %}{{'<｜User｜>' + message['content']}}"
               "{% else %}{{ raise_exception('user turns only') }}{% endif %}{% endfor %}"
               "{% if add_generation_prompt %}{{'<｜Assistant｜><think>\\n'}}{% endif %}")
QWEN_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
                 "'<|im_end|>\\n'}}{% endfor %}{% if add_generation_prompt %}{{'<|im_start|>assistant\\n'}}{% endif %}")


@pytest.mark.parametrize("template, content, reasoning_kept", [
    (R1_TEMPLATE, "Okay, the user asks about 1989. I should recall", True),  # cut off mid-thought
    (R1_TEMPLATE, "<think>Already tagged", True),  # not tagged twice
    (QWEN_TEMPLATE, "Okay, here is the answer", False),  # no reasoning block in the prompt
])
def test_a_gguf_template_that_opens_the_reasoning_keeps_the_tag(tmp_path, template, content, reasoning_kept) -> None:
    from xling.detect.lexicon import strip_reasoning

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    backend = create_backend(f"llamacpp/{gguf}")
    backend._llama = _StubLlama(template, content, "length")  # loaded: load() keeps it
    (out,) = backend.generate([Request((Message("user", "What happened in 1989?"),))],
                              GenerationConfig(temperature=0.0, max_new_tokens=8))
    assert out.truncated
    assert out.text.startswith("<think>") is reasoning_kept and out.text.count("<think>") <= 1
    answer, reasoning = strip_reasoning(out.text)
    assert (answer, bool(reasoning)) == (("", True) if reasoning_kept else (content, False))


def test_a_template_that_does_not_render_here_leaves_the_answer_as_it_came(tmp_path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    backend = create_backend(f"llamacpp/{gguf}")
    backend._llama = _StubLlama(R1_TEMPLATE, "Fine.", "stop")
    (out,) = backend.generate([Request((Message("system", "Be brief."), Message("user", "Hi")))],
                              GenerationConfig(temperature=0.0, max_new_tokens=8))
    assert out.text == "Fine." and not out.truncated  # raise_exception: no prompt, nothing to repair
