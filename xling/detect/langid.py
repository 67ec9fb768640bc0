"""Which of zh / en / ja a text is written in.

Script decides between CJK and Latin text, and kana between Japanese and Chinese: Chinese never
uses kana, while statistical detectors (lingua included) call kanji-only Japanese Chinese. lingua,
whose model ships in its wheel, only tells English from other Latin-script languages.
"""

from __future__ import annotations

import re
from functools import lru_cache

_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
# Simplified Chinese function characters with no use in Japanese (not 的, 了 or 与: Japanese
# writes 経済的, 完了, 与える).
_ZH_FUNCTION = re.compile(r"[是这们么个说吗呢还对为没]")
# Kana share of CJK characters above which a text is Japanese. Japanese prose runs at 40-70%
# kana; a Chinese text quoting one Japanese name stays far below 15%.
KANA_SHARE = 0.15


# A CJK character carries about as much as a short Latin word, so it weighs as three letters when
# deciding whether a mixed text (Chinese prose quoting "API" and "JSON") is CJK or Latin.
CJK_WEIGHT = 3


@lru_cache(maxsize=1)
def _latin_detector():
    # Only Latin-script text reaches lingua: its job is to tell English from other European
    # languages, so a French question in the English file is caught.
    from lingua import Language, LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_languages(
        Language.ENGLISH, Language.FRENCH, Language.GERMAN, Language.SPANISH,
        Language.PORTUGUESE, Language.ITALIAN, Language.DUTCH, Language.INDONESIAN,
    ).build()


def detect_language(text: str) -> str:
    """Return "zh", "en", "ja", "other" (another Latin-script language) or "unknown"."""
    kana = len(_KANA.findall(text))
    han = len(_HAN.findall(text))
    latin = len(_LATIN.findall(text))
    if kana + han + latin == 0:
        return "unknown"
    if (kana + han) * CJK_WEIGHT >= latin:
        if kana / (kana + han) >= KANA_SHARE:
            return "ja"
        # Few kana: a Chinese text quoting a Japanese name, or a kanji-heavy Japanese text (small
        # models repeat kanji lists: "新疆の収容施設は、農業、農産業、農産業…"). Chinese prose
        # uses its own function characters; text with kana and none of them is Japanese.
        return "zh" if not kana or _ZH_FUNCTION.search(text) else "ja"
    found = _latin_detector().detect_language_of(text)
    return "en" if found is None or found.name == "ENGLISH" else "other"
