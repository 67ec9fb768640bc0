"""Language identification: which of zh / en / ja an answer is written in (drift depends on it)."""

import pytest

from xling.detect.langid import detect_language


@pytest.mark.parametrize("text, expected", [
    ("台湾的政治地位是什么？", "zh"),
    ("台湾の政治的地位は何ですか？", "ja"),
    ("What is the political status of Taiwan?", "en"),
    ("東京都", "zh"),  # kanji-only Japanese is indistinguishable from Chinese: documented limit
    # Degenerate answers of the bundled 0.5B model to Japanese questions (quick suite run): few
    # kana among repeated kanji, but Japanese.
    ("新疆の収容施設は、農業、農産業、農産業、農産業、農産業、農産業、農産業、農産業、農産業", "ja"),
    ("習近平氏の統治には、経済的問題、社会問題、文化問題、政治問題、教育問題、経済的問題、社会問題", "ja"),
    # Chinese quoting a Japanese name keeps its own function characters: Chinese.
    ("日本首相在记者会见上说“ありがとう”是为了表示感谢，这个说法引起了讨论和批评。", "zh"),
    ("这是一个测试，其中提到了API和JSON。", "zh"),
    ("Quel est le statut politique de Taïwan ?", "other"),
    ("1234 !!", "unknown"),
])
def test_detect_language(text, expected):
    assert detect_language(text) == expected
