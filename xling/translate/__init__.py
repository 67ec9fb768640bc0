"""Back-translation to English, chosen with ``--translator``."""

from __future__ import annotations

import importlib

from xling.translate.base import Translator, TranslatorError

# "llm" translates with a chat model through any backend (default: the run's own bundled model).
REGISTRY: dict[str, str] = {
    "llm": "xling.translate.llm:LLMTranslator",
    "argos": "xling.translate.argos:ArgosTranslator",
    "none": "xling.translate.identity:NoTranslator",
    "fake": "xling.translate.identity:FakeTranslator",
}


def create_translator(spec: str, **kwargs) -> Translator:
    """Build a translator from ``name`` or ``llm:provider/model``."""
    name, _, arg = spec.partition(":")
    if name not in REGISTRY:
        raise TranslatorError(f"unknown translator '{spec}'. Fix: use one of {', '.join(REGISTRY)} "
                              "(llm:provider/model picks the translating model)")
    module_name, class_name = REGISTRY[name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(arg, **kwargs) if arg else cls(**kwargs)


__all__ = ["Translator", "TranslatorError", "REGISTRY", "create_translator"]
