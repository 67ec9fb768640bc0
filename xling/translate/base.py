"""The translator interface: back-translate answers into English so they can be compared."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterator, Sequence


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

    def translate_stream(self, items: Sequence[tuple[str, str]],
                         target: str = "en") -> Iterator[list[tuple[int, str | None]]]:
        """Translate ``(source, text)`` pairs, yielding ``(index, translation)`` groups as they finish.

        The caller stores each group as it comes. This default translates ``batch_size`` texts of
        one source at a time; a translator behind a server overrides it to keep the server busy
        across sources. ``None`` is a translation that failed (the provider blocked or the server
        gave up on the request): it is not cached, so a rerun asks again.
        """
        by_source: dict[str, list[int]] = {}
        for index, (source, _) in enumerate(items):
            by_source.setdefault(source, []).append(index)
        for source, indices in by_source.items():
            for start in range(0, len(indices), self.batch_size):
                batch = indices[start:start + self.batch_size]
                yield list(zip(batch, self.translate([items[i][1] for i in batch], source, target)))

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release memory."""


class TranslatorError(RuntimeError):
    """A translator that cannot be created or cannot translate, with the fix in its message."""
