"""Back-translation with Argos Translate's offline packages (OpenNMT models run by CTranslate2).

xling uses Argos Translate for what makes a package a package (finding the installed ones,
reading their metadata, their SentencePiece or BPE tokenizer) and runs the package's
CTranslate2 model itself, for two reasons:

* Argos splits sentences with MiniSBD or Stanza, which download their models on first use; a
  machine that installed the packages from ``.argosmodel`` files offline would fail there. Chinese
  and Japanese sentences end in unambiguous punctuation (。！？), so :func:`split_sentences`
  does the job without a model.
* Argos translates one text at a time; xling hands over many answers at once, and one
  ``translate_batch`` call over all their sentences is several times faster on CPU.

The decoding settings below are fixed (they match Argos's defaults) rather than read from
``ARGOS_BEAM_SIZE`` and friends, so that the translator's name says everything that changes a
translation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from xling.translate.base import Translator, TranslatorError

DEFAULT_SOURCES = ("zh", "ja")

# Argos Translate's defaults (argostranslate.translate.apply_packaged_translation, 1.9-1.11).
BEAM_SIZE = 4
LENGTH_PENALTY = 0.2

# Sentences longer than this are cut at a comma (or hard) before translating: the models were
# trained on sentences, and a long run-on sentence comes back truncated or looping.
MAX_SENTENCE_CHARS = 200

# A sentence ends at 。！？!? or an ellipsis, or at a period followed by a space (so that "3.5"
# and "U.S." inside Latin text do not split), together with the closing quotes and brackets
# that follow it.
_SENTENCE_END = re.compile(r"""(?:[。！？!?]+|…+|\.(?=\s))[」』）)\]】”’"']*\s*""")
_SOFT_BREAK = re.compile(r"[，、,；;：:]")


@dataclass(frozen=True)
class _Pair:
    """The installed package chosen for one language pair."""

    source: str
    target: str
    version: str
    package: Any  # argostranslate.package.Package, typed loosely to keep the import lazy

    @property
    def label(self) -> str:
        return f"{self.source}-{self.target}@{self.version}"


def split_sentences(text: str) -> list[str]:
    """Split one paragraph into sentences short enough to translate.

    Args:
        text: A paragraph (no newlines needed; they are treated as spaces).

    Returns:
        The non-empty sentences, stripped, in order. Sentences over ``MAX_SENTENCE_CHARS``
        characters are cut at their last comma before the limit, or at the limit.
    """
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        sentences.append(text[start:match.end()].strip())
        start = match.end()
    sentences.append(text[start:].strip())
    return [chunk for sentence in sentences if sentence for chunk in _chunk(sentence)]


def _chunk(sentence: str) -> list[str]:
    chunks: list[str] = []
    while len(sentence) > MAX_SENTENCE_CHARS:
        breaks = [m.end() for m in _SOFT_BREAK.finditer(sentence, 0, MAX_SENTENCE_CHARS)]
        cut = breaks[-1] if breaks else MAX_SENTENCE_CHARS
        chunks.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    if sentence:
        chunks.append(sentence)
    return [c for c in chunks if c]


def install_fix(pairs: Sequence[tuple[str, str]]) -> str:
    """The fix to print when language pairs are missing, naming the argospm packages.

    Args:
        pairs: ``(source, target)`` codes, e.g. ``[("zh", "en"), ("ja", "en")]``.

    Returns:
        E.g. ``"install the zh->en and ja->en packages: argospm install translate-zh_en
        translate-ja_en, or use --translator llm"``.
    """
    names = " and ".join(f"{s}->{t}" for s, t in pairs)
    packages = " ".join(f"translate-{s}_{t}" for s, t in pairs)
    noun = "package" if len(pairs) == 1 else "packages"
    return f"install the {names} {noun}: argospm update && argospm install {packages}, or use --translator llm"


class ArgosTranslator(Translator):
    """Translates zh and ja (or the given sources) into English with installed Argos packages.

    Installed packages are found when the translator is built, and its ``name`` lists the
    version of each pair found (``argos:zh-en@1.9,ja-en@1.7``). A missing pair is an error
    only when a text in that language is translated, since a run may need one language only;
    a translator for which no pair at all is installed cannot be built.

    Args:
        sources: The source languages it is for, as a sequence or a comma-separated string
            (``"zh,ja"``, the form ``--translator argos:zh,ja`` passes).
        target: The language it translates into.

    Raises:
        TranslatorError: argostranslate is not installed, an installed package is broken, or
            no package for any of the sources is installed.
    """

    batch_size = 32

    def __init__(self, sources: str | Sequence[str] = DEFAULT_SOURCES, target: str = "en") -> None:
        if isinstance(sources, str):
            sources = [s.strip() for s in sources.split(",") if s.strip()]
        self.sources = tuple(s for s in sources if s != target)
        self.target = target
        self._pairs = _find_pairs(self.sources, target)
        missing = [(s, target) for s in self.sources if s not in self._pairs]
        if not self._pairs:
            raise TranslatorError(f"no Argos Translate package for {', '.join(f'{s}->{t}' for s, t in missing)} "
                                  f"is installed (looked in {_package_dirs()}). Fix: {install_fix(missing)}")
        self.name = "argos:" + ",".join(self._pairs[s].label for s in self.sources if s in self._pairs)
        self._models: dict[str, Any] = {}

    def translate(self, texts: Sequence[str], source: str, target: str = "en") -> list[str]:
        """Translate each text from ``source`` into English; texts already in ``target`` come back as is.

        Newlines are kept: each paragraph is split into sentences, the sentences of all texts
        are translated in one batch, and each paragraph is rebuilt from its sentences.

        Raises:
            TranslatorError: No package for ``source -> target`` is installed.
        """
        if source == target:
            return list(texts)
        pair = self._pair(source, target)
        sentences: list[str] = []
        layouts: list[list[list[int]]] = []  # per text, per paragraph: indices into sentences
        for text in texts:
            layout = []
            for paragraph in text.split("\n"):
                parts = split_sentences(paragraph)
                layout.append(list(range(len(sentences), len(sentences) + len(parts))))
                sentences.extend(parts)
            layouts.append(layout)
        translated = self._translate_sentences(pair, sentences) if sentences else []
        return ["\n".join(" ".join(translated[i] for i in paragraph) for paragraph in layout) for layout in layouts]

    def close(self) -> None:
        """Unload the CTranslate2 models."""
        self._models.clear()

    def _pair(self, source: str, target: str) -> _Pair:
        if target != self.target:
            raise TranslatorError(f"this Argos translator translates into {self.target}, not {target}. "
                                  f"Fix: build it with ArgosTranslator(target={target!r})")
        if source not in self.sources:
            raise TranslatorError(f"this Argos translator was built for {', '.join(self.sources)}, not {source}. "
                                  f"Fix: use --translator argos:{','.join((*self.sources, source))}")
        pair = self._pairs.get(source)
        if pair is None:
            raise TranslatorError(f"no Argos Translate package for {source}->{target} is installed "
                                  f"(looked in {_package_dirs()}). Fix: {install_fix([(source, target)])}")
        return pair

    def _translate_sentences(self, pair: _Pair, sentences: list[str]) -> list[str]:
        package = pair.package
        tokens = [package.tokenizer.encode(s) for s in sentences]
        prefix = getattr(package, "target_prefix", "") or ""
        longest = max(len(t) for t in tokens)
        results = self._model(pair).translate_batch(
            tokens,
            target_prefix=[[prefix]] * len(tokens) if prefix else None,
            replace_unknowns=True,
            max_batch_size=self.batch_size,
            beam_size=BEAM_SIZE,
            num_hypotheses=1,
            length_penalty=LENGTH_PENALTY,
            # An English sentence rarely needs three times the tokens of its source; the cap
            # stops a model that has fallen into a repetition loop.
            max_decoding_length=min(1024, 3 * longest + 20),
        )
        out = []
        for result in results:
            text = package.tokenizer.decode(result.hypotheses[0])
            if prefix and text.startswith(prefix):
                text = text[len(prefix):]
            out.append(text.strip())
        return out

    def _model(self, pair: _Pair) -> Any:
        model = self._models.get(pair.source)
        if model is None:
            import ctranslate2
            from argostranslate import settings

            model = ctranslate2.Translator(
                str(Path(pair.package.package_path) / "model"),
                device=settings.device,
                inter_threads=settings.inter_threads,
                intra_threads=settings.intra_threads,
                # "default" keeps the weights' own precision, so the device's fastest type
                # does not change the translations.
                compute_type="default",
            )
            self._models[pair.source] = model
        return model


def _find_pairs(sources: Sequence[str], target: str) -> dict[str, _Pair]:
    """The newest installed translate package for each ``source -> target``."""
    try:
        from argostranslate import package as argos_package
    except ImportError as err:
        raise TranslatorError("argostranslate is not installed. Fix: pip install 'xling[argos]', "
                              "or use --translator llm") from err
    try:
        installed = argos_package.get_installed_packages()
    except (OSError, ValueError) as err:  # a package folder without metadata.json, bad JSON
        raise TranslatorError(f"an installed Argos Translate package cannot be read ({err}). Fix: remove or "
                              f"reinstall it (argospm list; argospm remove <name>) in {_package_dirs()}") from err
    pairs: dict[str, _Pair] = {}
    for pkg in installed:
        if pkg.type != "translate" or pkg.to_code != target or pkg.from_code not in sources:
            continue
        current = pairs.get(pkg.from_code)
        if current is None or _version_key(pkg.package_version) > _version_key(current.version):
            pairs[pkg.from_code] = _Pair(pkg.from_code, target, pkg.package_version, pkg)
    return pairs


def _version_key(version: str) -> tuple[int, ...]:
    # Package versions are dotted numbers ("1.9", "1.10"); compare them as numbers so 1.10 > 1.9.
    return tuple(int(p) if p.isdigit() else -1 for p in re.split(r"[.\-]", version or "0"))


def _package_dirs() -> str:
    from argostranslate import settings

    return ", ".join(str(d) for d in settings.package_dirs)
