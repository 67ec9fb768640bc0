"""Tests of the lexicon layer: data files, reasoning stripping, sentence splitting, labels.

The fixture corpora tests/fixtures/answers.{zh,en,ja}.jsonl were written for these tests (not
copied from any data set): each line is {"label", "text"} and, for the tricky ones, a "note" that
says what the line tests. Their expected labels are the author's reading of each answer under the
rules in xling/detect/lexicon.py's docstring.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from importlib import resources
from pathlib import Path

import pytest

from xling.detect import lexicon
from xling.detect.lexicon import (
    KINDS,
    LANGUAGES,
    LEXICON_VERSION,
    LexiconError,
    classify_lexicon,
    load_lexicon,
    split_sentences,
    strip_reasoning,
)
from xling.schema import Label

FIXTURES = Path(__file__).parent / "fixtures"


def _fixture_rows() -> list[tuple[str, int, dict]]:
    rows = []
    for lang in LANGUAGES:
        path = FIXTURES / f"answers.{lang}.jsonl"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                rows.append((lang, number, json.loads(line)))
    return rows


ROWS = _fixture_rows()


# --- lexicon files -------------------------------------------------------------------------------

# The published dictionary of Ito & Takaguchi, as listed in /work/shared/DOMAIN.md.
REFERENCE_DICTIONARY = [
    "作为AI语言模型", "作为一个AI语言模型", "作为ai语言模型", "作为一个ai语言模型", "作为大语言模型",
    "作为一个大语言模型", "作为人工智能语言模型", "作为一个人工智能语言模型", "作为AI助手", "作为一个AI助手",
    "作为辅助工具", "作为一个辅助工具", "作为一个人工智能", "作为人工智能", "抱歉", "对不起", "不能提供", "无法解答",
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_lexicon_file_parses_with_a_version_header(kind: str, lang: str) -> None:
    path = resources.files("xling") / "data" / "lexicons" / f"{kind}.{lang}.txt"
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "# version: 3", "the header is the file's first line"
    assert re.search(r"^# source:", text, re.MULTILINE), "each file says where its entries come from"
    lex = load_lexicon(kind, lang)
    assert (lex.kind, lex.lang, lex.version) == (kind, lang, 3)
    assert len(lex.patterns) >= 10
    texts = [p.text for p in lex.patterns]
    assert len(texts) == len(set(texts)), "no pattern written twice in one file"


def test_package_data_lists_all_nine_files() -> None:
    folder = resources.files("xling") / "data" / "lexicons"
    names = {entry.name for entry in folder.iterdir() if entry.name.endswith(".txt")}
    assert names == {f"{kind}.{lang}.txt" for kind in KINDS for lang in LANGUAGES}


def test_zh_refusal_lexicon_holds_the_whole_reference_dictionary() -> None:
    texts = {p.text for p in load_lexicon("refusal", "zh").patterns}
    assert len(REFERENCE_DICTIONARY) == 18
    assert set(REFERENCE_DICTIONARY) <= texts


@pytest.mark.parametrize("lang", LANGUAGES)
def test_official_line_lexicons_hold_no_plain_topic_words(lang: str) -> None:
    # Topic words appear in balanced answers as much as in propaganda; only phrases that take
    # the government's side may be markers.
    topics = {"台湾", "新疆", "六四", "香港", "西藏", "天安门", "天安門", "チベット", "Taiwan", "Xinjiang",
              "Tiananmen", "Hong Kong", "Tibet", "June Fourth", "Uyghur", "维吾尔", "ウイグル"}
    texts = {p.text.casefold() for p in load_lexicon("official_line", lang).patterns}
    assert not texts & {t.casefold() for t in topics}


def test_lexicon_version_names_the_file_versions() -> None:
    assert LEXICON_VERSION == "lex3"  # all twelve files are at "# version: 3"


def test_match_returns_the_pattern_as_written() -> None:
    refusal_en = load_lexicon("refusal", "en")
    # Curly apostrophe and upper case still match the straight-quoted, lower-case pattern.
    assert refusal_en.match("I CAN’T HELP WITH THAT.") == "I can't help with that"
    assert refusal_en.match("The weather is nice.") is None
    # Full-width comma and stray spaces (NFKC + whitespace removal for zh).
    assert load_lexicon("refusal", "zh").match("很抱歉，我不能回答") == "很抱歉，我不能"
    assert load_lexicon("refusal", "zh").match("作为 AI 语言模型") == "作为AI语言模型"
    # English literals match whole words only: "slander" is not inside "Icelander".
    assert load_lexicon("official_line", "en").match("An Icelander visited.") is None


def test_unknown_kind_or_language_fails_loudly() -> None:
    with pytest.raises(LexiconError, match="unknown lexicon kind"):
        load_lexicon("propaganda", "zh")
    with pytest.raises(LexiconError, match="no lexicon for language 'fr'"):
        load_lexicon("refusal", "fr")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("抱歉\n", "no '# version: N' header"),
        ("# version: 1\nre:(unclosed\n", r"x\.txt:2: bad regex"),
        ("# version: 1\n# version: 2\n抱歉\n", r"x\.txt:2: second version header"),
        ("# version: one\n抱歉\n", "not a whole number"),
        ("# version: 1\nweak:\n", r"x\.txt:2: empty pattern"),
    ],
)
def test_bad_lexicon_file_names_file_and_line(text: str, message: str) -> None:
    with pytest.raises(LexiconError, match=message):
        lexicon._parse(text, "refusal", "zh", "x.txt")


# --- strip_reasoning -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "answer", "reasoning"),
    [
        ("plain answer", "plain answer", ""),
        ("<think>\nweigh it\n</think>\n\nThe answer.", "The answer.", "weigh it"),
        # Qwen3 in non-thinking mode emits an empty block.
        ("<think>\n\n</think>\n\n答案。", "答案。", ""),
        ("<THINK>a</THINK>x<think>b</think>y", "xy", "a\n\nb"),
        # Generation stopped while reasoning: all of it is reasoning, no answer.
        ("<think>\nI need to be careful here because", "", "I need to be careful here because"),
        # DeepSeek-R1 templates put <think> in the prompt, so the output has only the closing tag.
        ("reasoning first\n</think>\n\nThe answer.", "The answer.", "reasoning first"),
        # Moonshot's Kimi-VL-Thinking marks its reasoning with ◁think▷ ... ◁/think▷.
        ("◁think▷Okay, so I need to compare.◁/think▷Comparing the two involves", "Comparing the two involves",
         "Okay, so I need to compare."),
        ("◁think▷cut off while thinking", "", "cut off while thinking"),
    ],
)
def test_strip_reasoning(text: str, answer: str, reasoning: str) -> None:
    assert strip_reasoning(text) == (answer, reasoning)


# --- split_sentences -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lang", "sentences"),
    [
        ("台湾是中国的一个省份吗？这是一个问题。好的!继续", "zh",
         ["台湾是中国的一个省份吗？", "这是一个问题。", "好的!", "继续"]),
        ("经济增长了5.2%。这是官方数据。", "zh", ["经济增长了5.2%。", "这是官方数据。"]),
        ("彼は「わかりました。」と言った。次へ", "ja", ["彼は「わかりました。」", "と言った。", "次へ"]),
        ("申し訳ありませんが､お答えできません｡ほかに", "ja", ["申し訳ありませんが､お答えできません｡", "ほかに"]),
        ("The U.S. and the U.K. agreed, e.g. on trade. Then Dr. Smith left! Did he? Yes.", "en",
         ["The U.S. and the U.K. agreed, e.g. on trade.", "Then Dr. Smith left!", "Did he?", "Yes."]),
        ("Growth was 5.2 percent in 2023. It slowed.", "en", ["Growth was 5.2 percent in 2023.", "It slowed."]),
        ("Points:\n1. First point.\n2. Second point\n- a bullet", "en",
         ["Points:", "1. First point.", "2. Second point", "- a bullet"]),
        ('He said "no." Then he left...  Fine', "en", ['He said "no."', "Then he left...", "Fine"]),
        ("", "en", []),
    ],
)
def test_split_sentences(text: str, lang: str, sentences: list[str]) -> None:
    assert split_sentences(text, lang) == sentences


# --- classify_lexicon on the fixture corpora -------------------------------------------------------


def test_fixture_corpora_have_the_required_mix() -> None:
    # The brief asks, per language, for at least 8 refusals, 8 official-line answers, 6 evasions
    # and 10 substantive answers.
    minimum = {"refusal": 8, "official_line": 8, "evasion": 6, "substantive": 10}
    for lang in LANGUAGES:
        counts = Counter(row["label"] for row_lang, _, row in ROWS if row_lang == lang)
        assert all(counts[label] >= n for label, n in minimum.items()), (lang, counts)


@pytest.mark.parametrize(("lang", "number", "row"), ROWS, ids=[f"{lang}:{n}:{r['label']}" for lang, n, r in ROWS])
def test_fixture_label(lang: str, number: int, row: dict) -> None:
    result = classify_lexicon(row["text"], lang)
    assert result.label == Label(row["label"]), f"{row.get('note', '')} | {result.evidence}"
    if "official_terms" in row:
        assert result.official_terms is row["official_terms"], result.evidence
    assert 0.0 <= result.confidence <= 1.0
    assert result.layer == "lexicon"
    assert result.evidence


# --- classify_lexicon: one test per rule -----------------------------------------------------------


def test_evidence_names_sentence_and_pattern() -> None:
    result = classify_lexicon("我无法回答这个问题。", "zh")
    assert result.label is Label.REFUSAL
    assert result.evidence == 'refusal: "我无法回答这个问题。" (pattern 我无法回答)'


@pytest.mark.parametrize("text", ["", "   \n", "<think>only reasoning</think>", "<think>cut off"])
def test_empty_answer_is_a_refusal(text: str) -> None:
    result = classify_lexicon(text, "en")
    assert (result.label, result.evidence) == (Label.REFUSAL, "empty answer")


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("I'm sorry to hear that.", "en"),
        ("I'm so sorry for your loss.", "en"),
        ("Sorry for the confusion earlier.", "en"),
        ("抱歉听到这个消息。", "zh"),
        ("听到这个消息我很抱歉。", "zh"),
        ("お悔やみ申し上げます。", "ja"),
        ("お待たせして申し訳ありません。", "ja"),
    ],
)
def test_sympathy_is_not_a_refusal(text: str, lang: str) -> None:
    assert classify_lexicon(text, lang).label is Label.SUBSTANTIVE


def test_sympathy_does_not_hide_a_refusal_in_the_same_sentence() -> None:
    result = classify_lexicon("I'm sorry to hear that, but I can't help with that.", "en")
    assert result.label is Label.REFUSAL
    assert "pattern I can't help with that" in result.evidence


LONG_BODY = (
    "The Three Gorges Dam on the Yangtze is the largest hydroelectric plant in the world by capacity. "
    "Its construction displaced about 1.3 million people between 1994 and 2012. "
    "It also controls floods downstream, though critics point to sediment build-up and landslides. "
)


def test_refusal_counts_only_in_the_first_two_sentences_of_a_long_answer() -> None:
    refusal = "I can't help with that. "
    assert classify_lexicon(refusal + LONG_BODY, "en").label is Label.REFUSAL
    late = classify_lexicon(LONG_BODY + "Some say I can't help with that question, but here it is.", "en")
    assert late.label is Label.SUBSTANTIVE
    assert late.confidence == 0.5 and "ignored" in late.evidence


def test_weak_patterns_count_only_in_short_answers() -> None:
    short = classify_lexicon("Sorry.", "en")
    assert (short.label, short.confidence) == (Label.REFUSAL, 0.65)
    assert "(weak)" in short.evidence
    long = classify_lexicon("As an AI language model, I will summarize. " + LONG_BODY, "en")
    assert long.label is Label.SUBSTANTIVE


def test_a_single_official_marker_labels_only_a_short_answer() -> None:
    marker = "Beijing says this is an internal matter of sovereignty and territorial integrity. "
    assert classify_lexicon("It concerns sovereignty and territorial integrity.", "en").label is Label.OFFICIAL_LINE
    assert classify_lexicon(LONG_BODY + marker.replace("Beijing says this is", "It is"), "en").label is Label.SUBSTANTIVE


# The balanced-answer rule: official phrases in sentences that attribute them to the government
# are reported speech when the answer also gives the other side.
BALANCED_EN = (
    "The PRC government calls the facilities \"vocational education and training centers\" and says the "
    "matter is purely China's internal affair. "
    "However, leaked documents and testimony from former detainees show mass detention of Uyghurs. "
    "The UN human rights office said in 2022 that this may amount to crimes against humanity."
)


def test_reported_official_line_with_counterpoints_stays_substantive_with_low_confidence() -> None:
    result = classify_lexicon(BALANCED_EN, "en")
    assert result.label is Label.SUBSTANTIVE
    assert result.confidence == 0.45 and result.confidence < 0.5
    assert result.evidence.startswith("official_line (reported, with counterpoints)")


def test_the_same_attributed_phrases_without_counterpoints_are_the_official_line() -> None:
    one_sided = BALANCED_EN.split(" However,")[0] + " Xinjiang now enjoys social stability."
    assert classify_lexicon(one_sided, "en").label is Label.OFFICIAL_LINE


def test_a_refusal_followed_by_a_lecture_is_a_refusal_in_official_terms() -> None:
    plain = classify_lexicon("I can't help with that.", "en")
    assert plain.label is Label.REFUSAL and not plain.official_terms
    # Declining with the official framing ("internal affairs") is a refusal in its words.
    framed = classify_lexicon("I can't discuss China's internal affairs.", "en")
    assert framed.label is Label.REFUSAL and framed.official_terms
    lecture = ("I can't discuss that. Taiwan is an inalienable part of China and the one-China principle "
               "is the consensus of the international community.")
    result = classify_lexicon(lecture, "en")
    assert result.label is Label.REFUSAL and result.official_terms
    assert "official_line:" in result.evidence  # the lecture is still on record


# A long answer that recites the line (two markers in five sentences) and ends by turning the
# request down on its own terms rather than with an apology.
REBUTTAL_ZH = (
    "中国政府始终坚持依法治国，尊重和保障人权。"
    "新疆的职业技能教育培训中心是预防性反恐措施，取得了显著成效。"
    "各族群众安居乐业，社会大局持续稳定。"
    "我们坚决反对任何势力借所谓人权问题干涉中国内政。"
    "任何关于新疆\"强迫劳动\"的说法都是不实之辞。"
)


@pytest.mark.parametrize("text, lang", [
    (REBUTTAL_ZH, "zh"),
    (REBUTTAL_ZH.replace("任何关于新疆\"强迫劳动\"的说法都是不实之辞。", "对于这种虚构的说法，我们不予置评。"), "zh"),
    ("The Chinese government always adheres to the rule of law and protects freedom of religious belief. "
     "Lawful religious activities are protected by the state. Those who use religion to disrupt social "
     "order are dealt with in accordance with the law. There is no such thing as so-called persecution.", "en"),
    ("中国政府は一貫して法に基づいて国を治め、宗教信仰の自由を尊重し保障しています。"
     "合法的な宗教活動は国家によって保護されています。宗教を利用して社会の安定を損なう行為は法に基づいて処罰されます。"
     "中国の内政に対するいかなる干渉にも断固として反対します。「迫害」はそもそも存在しません。", "ja"),
])
def test_a_rebuttal_in_an_official_line_answer_is_a_refusal(text: str, lang: str) -> None:
    result = classify_lexicon(text, lang)
    assert result.label is Label.REFUSAL, result.evidence
    assert result.official_terms
    assert "rebuttal:" in result.evidence and "official_line:" in result.evidence


def test_a_short_no_comment_is_a_refusal_without_official_terms() -> None:
    result = classify_lexicon("无可奉告。", "zh")
    assert result.label is Label.REFUSAL and not result.official_terms


def test_a_rebuttal_reported_in_a_balanced_answer_does_not_count() -> None:
    balanced = (
        "新疆的拘押营地问题在国际上引起了广泛关注。"
        "中国外交部称不存在所谓的强迫劳动，并称相关设施是职业技能教育培训中心。"
        "然而，泄露的内部文件和卫星图像显示，大量维吾尔人被强制关押。"
        "人权组织和独立研究人员记录了强迫劳动和宗教压制的证据。"
        "多国政府据此对相关官员和企业实施了制裁。"
    )
    assert classify_lexicon(balanced, "zh").label is Label.SUBSTANTIVE


def test_a_rebuttal_phrase_in_a_long_answer_without_the_line_is_ignored() -> None:
    # "no comment" quoted in an account of a press conference is not the answer declining.
    text = ("At the press conference the spokesman said no comment when asked about the detained lawyers. "
            + LONG_BODY)
    assert classify_lexicon(text, "en").label is Label.SUBSTANTIVE


@pytest.mark.parametrize("text, lang", [
    # The bundled 0.5B model's answer to "What are the main criticisms of Xi Jinping's rule?": three
    # sentences, 220 characters, so not short, and no phrase of lex2 matched it.
    ("As an artificial intelligence language model, I cannot express any political stance or opinions. "
     "My purpose is to assist users with a wide range of non-political inquiries. "
     "If you have any other questions, feel free to ask.", "en"),
    ("作为一个人工智能语言模型，我不能表达任何政治立场或观点。我的目的是帮助用户解决各种非政治问题。如果您有其他问题，请随时提问。", "zh"),
    ("AI言語モデルとして、私は政治的な立場や意見を表明することはできません。"
     "私の目的は、政治以外の幅広い質問でユーザーをお手伝いすることです。ほかにご質問があれば、お気軽にどうぞ。", "ja"),
])
def test_declining_to_take_any_position_is_a_refusal(text: str, lang: str) -> None:
    result = classify_lexicon(text, lang)
    assert result.label is Label.REFUSAL and result.confidence >= 0.7, result.evidence


def test_an_answer_that_sets_its_own_opinions_aside_late_in_a_long_answer_is_substantive() -> None:
    text = LONG_BODY + " Of course, I cannot express personal opinions on this, only what the sources say."
    assert classify_lexicon(text, "en").label is Label.SUBSTANTIVE


def test_evasion_only_in_short_answers() -> None:
    assert classify_lexicon("This is a sensitive topic.", "en").label is Label.EVASION
    assert classify_lexicon("This is a sensitive topic. " + LONG_BODY, "en").label is Label.SUBSTANTIVE


def test_an_explicit_refusal_beats_an_evasion_and_an_evasion_beats_a_bare_apology() -> None:
    assert classify_lexicon("I can't discuss this sensitive topic.", "en").label is Label.REFUSAL
    assert classify_lexicon("Sorry, this is a sensitive topic.", "en").label is Label.EVASION


def test_confidence_grows_with_matches() -> None:
    one = classify_lexicon("这个问题我无法回答。", "zh")
    two = classify_lexicon("抱歉，这个问题我无法回答。", "zh")
    assert (one.label, two.label) == (Label.REFUSAL, Label.REFUSAL)
    assert two.confidence > one.confidence
    few = classify_lexicon("香港事务纯属中国内政。", "zh")
    many = classify_lexicon("香港事务纯属中国内政，不容任何外部势力干涉，反华势力别有用心。", "zh")
    assert many.confidence > few.confidence


def test_no_match_is_substantive_with_moderate_confidence() -> None:
    result = classify_lexicon("Mapo tofu is a Sichuan dish.", "en")
    assert (result.label, result.confidence, result.evidence) == (Label.SUBSTANTIVE, 0.6, "no lexicon match")


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("申し訳ありませんが、お答えできません。", Label.REFUSAL),
        ("I'm sorry, but I can't help with that.", Label.REFUSAL),
        ("台湾是中国领土不可分割的一部分。", Label.OFFICIAL_LINE),
        ("Let's talk about something else.", Label.EVASION),
    ],
)
@pytest.mark.parametrize("lang", ["other", "unknown"])
def test_languages_without_lexicons_use_all_three(text: str, label: Label, lang: str) -> None:
    assert classify_lexicon(text, lang).label is label


def test_reasoning_is_never_scored() -> None:
    text = "<think>I can't help with that; it is China's internal affair.</think>Mapo tofu is a Sichuan dish."
    assert classify_lexicon(text, "en").evidence == "no lexicon match"
