"""GGUF models in-process through llama-cpp-python: ``llamacpp/<path.gguf>`` or ``llamacpp/bundled:<name>``.

The fastest way to run the bundled GGUF models on a CPU: llama.cpp runs the quantised weights as
they are, where transformers first dequantises them. It is an optional extra (``pip install
'xling[llamacpp]'``; it compiles llama.cpp, a few minutes), imported only when used.

Answers come one request at a time (llama.cpp's high-level API does not batch sequences); the
chat template is the one stored in the GGUF file. Options (``-M key=value``): ``n_ctx`` (default
4096), ``n_threads`` (default: llama.cpp's choice), ``n_gpu_layers`` (default 0).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

from xling.backends import bundled
from xling.backends.base import (Backend, BackendError, Generation, GenerationConfig, ModelIdentity, Request,
                                 reopen_reasoning)
from xling.backends.openai_api import parse_response

_OPTIONS = ("n_ctx", "n_threads", "n_gpu_layers")


def locate(model: str) -> tuple[Path, str]:
    """The GGUF file an address names and its sha256 (the model's digest).

    Raises:
        BackendError: No such bundled model or file.
    """
    if model.startswith("bundled:"):
        name = model.split(":", 1)[1]
        if name not in bundled.BUNDLED:
            raise BackendError(f"no bundled model '{name}'. Fix: use one of {', '.join(bundled.BUNDLED)}")
        spec = bundled.BUNDLED[name]
        return bundled.gguf_path(spec), spec.sha256
    path = Path(model).expanduser()
    if path.suffix != ".gguf" or not path.is_file():
        raise BackendError(f"'{model}' is not a .gguf file. Fix: write llamacpp/path/to/model.gguf or "
                           f"llamacpp/bundled:{next(iter(bundled.BUNDLED))}")
    return path, bundled.sha256_file(path)


class LlamaCppBackend(Backend):
    """A GGUF model run in this process by llama.cpp."""

    batch_size = 1
    # Declared as text so ``-M`` checking names unknown ones; the constructor reads the integers
    # (n_gpu_layers=-1 means all layers, which a declared int's range check would refuse).
    OPTIONS = dict.fromkeys(_OPTIONS, str)

    def __init__(self, model: str, **options: str) -> None:
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise BackendError(f"unknown option(s) {', '.join(unknown)} for llamacpp. Fix: use -M with one of "
                               f"{', '.join(_OPTIONS)}")
        try:
            self._options = {key: int(value) for key, value in options.items()}
        except ValueError as err:
            raise BackendError(f"llamacpp options are integers ({err}). Fix: e.g. -M n_ctx=4096") from err
        self.address = f"llamacpp/{model}"
        self._path, self._digest = locate(model)
        self._llama: Any = None

    @property
    def identity(self) -> ModelIdentity:
        return ModelIdentity(self.address, self._digest)

    def load(self) -> None:
        if self._llama is not None:
            return
        try:
            from llama_cpp import Llama
        except ImportError as err:
            raise BackendError("llamacpp/ needs llama-cpp-python. Fix: pip install 'xling[llamacpp]' "
                               "(it compiles llama.cpp: a few minutes), or use hf/ for the same file") from err
        self._llama = Llama(model_path=str(self._path), n_ctx=self._options.get("n_ctx", 4096),
                            n_threads=self._options.get("n_threads"), n_gpu_layers=self._options.get("n_gpu_layers", 0),
                            verbose=False)

    def generate(self, requests: Sequence[Request], config: GenerationConfig) -> list[Generation]:
        self.load()
        out = []
        for request in requests:
            response = self._llama.create_chat_completion(
                messages=[{"role": m.role, "content": m.content} for m in request.messages],
                temperature=config.temperature, top_p=config.top_p, max_tokens=config.max_new_tokens,
                seed=config.seed + request.sample)
            message = response["choices"][0]["message"]
            message["content"] = reopen_reasoning(self._prompt(request), message.get("content") or "")
            out.append(parse_response(response))
        return out

    def _prompt(self, request: Request) -> str:
        """The prompt the GGUF's chat template makes of a request, as llama-cpp-python renders it;
        "" when the file has no template or it does not render here, which only loses the
        reasoning repair of ``reopen_reasoning``."""
        if self._template is None:
            return ""
        from jinja2 import TemplateError

        def raise_exception(message: str) -> None:
            raise TemplateError(message)

        try:
            return self._template.render(messages=[{"role": m.role, "content": m.content} for m in request.messages],
                                         add_generation_prompt=True, bos_token="", eos_token="",
                                         raise_exception=raise_exception)
        except (TemplateError, TypeError, ValueError):
            return ""

    @cached_property
    def _template(self) -> Any:
        """The GGUF's chat template compiled once (a sandboxed Jinja2 template, as llama-cpp-python
        compiles it), or None."""
        source = (getattr(self._llama, "metadata", None) or {}).get("tokenizer.chat_template")
        if not source:
            return None
        from jinja2 import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        try:
            return ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(source)
        except TemplateError:
            return None

    def close(self) -> None:
        llama, self._llama = self._llama, None
        close = getattr(llama, "close", None)  # llama-cpp-python >= 0.2.60
        if close is not None:
            close()
