"""Model backends, addressed as ``provider/model`` with options from ``-M key=value``.

The registry holds ``"module:Class"`` strings so that listing or parsing never imports torch.
"""

from __future__ import annotations

import importlib

from xling.backends.base import Backend, BackendError, Generation, GenerationConfig, Message, ModelIdentity, Request

REGISTRY: dict[str, str] = {
    "hf": "xling.backends.hf:HFBackend",
    "openai-api": "xling.backends.openai_api:OpenAIBackend",
    "llamacpp": "xling.backends.llamacpp:LlamaCppBackend",
    "replay": "xling.backends.replay:ReplayBackend",
    "fake": "xling.backends.fake:FakeBackend",
}


def split_address(address: str) -> tuple[str, str]:
    provider, sep, model = address.partition("/")
    if not sep or not model:
        raise BackendError(f"model '{address}' is not provider/model. Fix: write e.g. hf/Qwen/Qwen2.5-7B-Instruct "
                           f"(providers: {', '.join(REGISTRY)})")
    if provider not in REGISTRY:
        raise BackendError(f"unknown provider '{provider}' in '{address}'. Fix: use one of {', '.join(REGISTRY)}")
    return provider, model


def create_backend(address: str, options: dict[str, str] | None = None) -> Backend:
    """Build the backend for ``provider/model`` (e.g. ``hf/Qwen/Qwen2.5-7B-Instruct``)."""
    provider, model = split_address(address)
    module_name, class_name = REGISTRY[provider].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(model, **(options or {}))


__all__ = ["Backend", "BackendError", "Generation", "GenerationConfig", "Message", "ModelIdentity",
           "Request", "REGISTRY", "create_backend", "split_address"]
