"""The translator interface: back-translate answers into English so they can be compared."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence


class Translator(ABC):
    """Translates texts from one language into English.

    ``name`` identifies the translator and its model exactly (it keys the translation cache and
    goes into the signature).
    """

    name: str = "translator"
    batch_size: int = 8

    @abstractmethod
    def translate(self, texts: Sequence[str], source: str, target: str = "en") -> list[str]:
        """Translate each text from ``source`` ("zh", "ja", ...) into ``target``, in order."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release memory."""


class TranslatorError(RuntimeError):
    """A translator that cannot be created or cannot translate, with the fix in its message."""
