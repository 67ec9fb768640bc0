"""Model backends, addressed as ``provider/model`` with options from ``-M key=value``.

The registry holds ``"module:Class"`` strings so that listing or parsing never imports torch.
"""

from __future__ import annotations

import importlib
import inspect
import math
from typing import Sequence

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


def backend_class(provider: str) -> type[Backend]:
    module_name, class_name = REGISTRY[provider].split(":")
    return getattr(importlib.import_module(module_name), class_name)


# Options that count things one at a time must be at least 1 (a batch of 0 never ends); every
# other number must be at least 0.
_AT_LEAST_ONE = frozenset({"batch_size", "concurrency"})


def declared_options(cls: type) -> dict[str, type] | None:
    """The ``-M`` options a backend takes and the type of each.

    A backend declares them with an ``OPTIONS`` class attribute (name -> type), or else by its
    constructor's keyword parameters after ``model`` (the type read from the default value, or
    from the annotation when the default is None). None: the constructor takes ``**options`` and
    checks them itself.
    """
    explicit = getattr(cls, "OPTIONS", None)
    if explicit is not None:
        return dict(explicit)
    params = list(inspect.signature(cls.__init__).parameters.values())[2:]  # self, model
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name: _option_type(p) for p in params
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}


def _option_type(param: inspect.Parameter) -> type:
    default = param.default
    if isinstance(default, bool):
        return bool
    if isinstance(default, (int, float)):
        return type(default)
    annotation = str(param.annotation)
    return float if "float" in annotation else int if "int" in annotation else str


_KIND = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}


def check_options(address: str, options: dict[str, str] | None) -> dict:
    """Check ``-M`` options against what the backend of ``address`` declares, converting each
    value to its type.

    Raises:
        BackendError: naming the option, what is wrong with it and the fix.
    """
    provider, _ = split_address(address)
    options = dict(options or {})
    declared = declared_options(backend_class(provider))
    if declared is None:
        return options
    unknown = sorted(set(options) - set(declared))
    if unknown:
        known = ", ".join(declared) or "none"
        raise BackendError(f"-M {unknown[0]}: no such option for {provider} models ({address}). "
                           f"Fix: use one of its options ({known}), or drop -M {unknown[0]}")
    out = {}
    for key, raw in options.items():
        kind = declared[key]
        value = _convert(key, raw, kind)
        if kind in (int, float):
            minimum = 1 if key in _AT_LEAST_ONE else 0
            if not math.isfinite(value) or value < minimum:
                raise BackendError(f"-M {key}={raw} is out of range: {key} must be at least {minimum}. "
                                   f"Fix: e.g. -M {key}={max(minimum, 4) if kind is int else 1.0}")
        out[key] = value
    return out


def _convert(key: str, raw, kind: type):
    if not isinstance(raw, str) or kind is str:
        return raw
    try:
        if kind is bool:
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(raw)
            return raw.lower() in ("true", "1", "yes")
        return kind(raw)
    except ValueError:
        example = {int: "4", float: "0.5", bool: "true"}[kind]
        raise BackendError(f"-M {key}={raw!r} is not {_KIND[kind]}. Fix: e.g. -M {key}={example}") from None


def helper_options(address: str, options: dict[str, str], models: Sequence[str]) -> dict[str, str]:
    """The ``-M`` options given to a judge or a back-translating model at ``address``: those its
    backend takes (a local model's ``batch_size`` must not stop a server judge), and a base URL or
    key only when a compared model is on the same server (else they name the model's server, and
    the helper's own ``<SERVER>_BASE_URL`` is the one to read)."""
    known = declared_options(backend_class(split_address(address)[0])) or {}
    same_server = on_models_server(address, models)
    return {key: value for key, value in options.items()
            if key in known and (same_server or key not in ("base_url", "api_key"))}


def on_models_server(address: str, models: Sequence[str]) -> bool:
    """Whether ``address`` is on the server of a compared model: ``openai-api/vllm/llama`` is on
    ``openai-api/vllm/qwen``'s (the part after the server names only the served model)."""
    return _server(address) in {_server(model) for model in models}


def _server(address: str) -> str:
    """``openai-api/vllm/Qwen/...`` -> ``openai-api/vllm``: the part that picks the server."""
    return "/".join(address.split("/")[:2])


def create_backend(address: str, options: dict[str, str] | None = None) -> Backend:
    """Build the backend for ``provider/model`` (e.g. ``hf/Qwen/Qwen2.5-7B-Instruct``)."""
    provider, model = split_address(address)
    return backend_class(provider)(model, **check_options(address, options))


__all__ = ["Backend", "BackendError", "Generation", "GenerationConfig", "Message", "ModelIdentity",
           "Request", "REGISTRY", "check_options", "create_backend", "declared_options", "helper_options",
           "on_models_server", "split_address"]
