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
    with pytest.raises(BackendError, match="unknown option"):
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
