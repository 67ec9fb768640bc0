"""ArgosTranslator against a real Argos package that the test builds and installs itself.

No package index is reachable here, so the test makes the package the way Argos packages are
made: a SentencePiece model and an OpenNMT-style translation model (a tiny, randomly
initialised transformers MarianMTModel converted by CTranslate2's TransformersConverter),
zipped with a metadata.json into an .argosmodel file and installed with
``argostranslate.package.install_from_path``. The model's output bias is set so that it always
emits the piece "▁yes", which makes the (otherwise meaningless) translations predictable: every
sentence becomes "yes yes ...".
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Callable, Iterator

import pytest

from xling.translate import create_translator
from xling.translate.argos import MAX_SENTENCE_CHARS, ArgosTranslator, install_fix, split_sentences
from xling.translate.base import TranslatorError
from xling.translate.identity import FakeTranslator, NoTranslator

# Training text for the SentencePiece model: a few zh / ja / en sentences, so that "▁yes" becomes
# one piece and the zh and ja test sentences tokenize into known pieces.
CORPUS = ["你好世界。", "今天天气很好。", "こんにちは世界。", "今日は良い天気です。", "yes hello world",
          "the weather is good today", "yes yes yes"] * 3
FAVOURED_PIECE = "▁yes"


# --- the pure parts -------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("你好。世界！", ["你好。", "世界！"]),
        # Closing quotes stay with their sentence; ？ ends one.
        ("他说：“走吧。”然后呢？好", ["他说：“走吧。”", "然后呢？", "好"]),
        ("今日は良い天気です。散歩しましょう", ["今日は良い天気です。", "散歩しましょう"]),
        # A period splits only before a space, so "3.5" and "U.S." stay whole.
        ("GDP grew 3.5 percent in the U.S. last year. Then", ["GDP grew 3.5 percent in the U.S.", "last year.", "Then"]),
        ("", []),
        ("   ", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_split_sentences_cuts_long_sentences_at_a_comma() -> None:
    clause = "很" * 150 + "，"  # 151 characters ending in a comma
    parts = split_sentences(clause * 3 + "好。")
    assert all(len(p) <= MAX_SENTENCE_CHARS for p in parts)
    assert parts[0] == clause and "".join(parts) == clause * 3 + "好。"  # nothing lost or reordered


def test_install_fix_names_the_argospm_packages() -> None:
    assert install_fix([("zh", "en"), ("ja", "en")]) == (
        "install the zh->en and ja->en packages: argospm update && argospm install translate-zh_en "
        "translate-ja_en, or use --translator llm")


def test_identity_translators() -> None:
    assert NoTranslator().translate(["你好", "x"], "zh") == ["你好", "x"]
    assert NoTranslator().name == "none"
    fake = create_translator("fake")
    assert isinstance(fake, FakeTranslator) and fake.name == "fake"
    assert fake.translate(["你好", "こんにちは"], "zh") == ["[zh->en] 你好", "[zh->en] こんにちは"]
    assert fake.translate(["hi"], "en") == ["hi"]


# --- a real package -------------------------------------------------------------------------

def _build_model(workdir: Path) -> tuple[Path, Path]:
    """A SentencePiece model and a tiny CTranslate2 Marian model that always says "yes"."""
    spm = pytest.importorskip("sentencepiece")
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    converters = pytest.importorskip("ctranslate2.converters")

    sp_path = workdir / "sentencepiece.model"
    buffer = io.BytesIO()
    # Marian's vocabulary layout: </s> is 0, <unk> is 1, and <pad> (added below) is last.
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS), model_writer=buffer, vocab_size=60, model_type="bpe",
        character_coverage=1.0, pad_id=-1, bos_id=-1, eos_id=0, unk_id=1, hard_vocab_limit=False,
        minloglevel=2,
    )
    sp_path.write_bytes(buffer.getvalue())
    processor = spm.SentencePieceProcessor(model_file=str(sp_path))
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    assert FAVOURED_PIECE in pieces

    hf_dir = workdir / "hf"
    hf_dir.mkdir()
    n = len(pieces)
    torch.manual_seed(0)
    config = transformers.MarianConfig(
        vocab_size=n + 1, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=256,
        pad_token_id=n, eos_token_id=0, decoder_start_token_id=n,
    )
    model = transformers.MarianMTModel(config)
    with torch.no_grad():
        # A bias of 100 on one logit outweighs anything 16-dimensional random weights produce.
        model.final_logits_bias[0, pieces.index(FAVOURED_PIECE)] = 100.0
    model.save_pretrained(hf_dir)
    shutil.copy(sp_path, hf_dir / "source.spm")
    shutil.copy(sp_path, hf_dir / "target.spm")
    (hf_dir / "vocab.json").write_text(json.dumps({**{p: i for i, p in enumerate(pieces)}, "<pad>": n}))
    transformers.MarianTokenizer(source_spm=str(hf_dir / "source.spm"), target_spm=str(hf_dir / "target.spm"),
                                 vocab=str(hf_dir / "vocab.json")).save_pretrained(hf_dir)
    ct2_dir = workdir / "ct2"
    converters.TransformersConverter(str(hf_dir)).convert(str(ct2_dir))
    return sp_path, ct2_dir


@pytest.fixture(scope="module")
def make_package(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Path]:
    """Builds .argosmodel files for ``(from_code, version)``, all sharing one tiny model."""
    pytest.importorskip("argostranslate")
    pytest.importorskip("ctranslate2")
    workdir = tmp_path_factory.mktemp("argos-build")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")  # the model is local; never reach for the hub
        sp_path, ct2_dir = _build_model(workdir)
    names = {"zh": "Chinese", "ja": "Japanese"}

    def make(from_code: str, version: str) -> Path:
        name = f"translate-{from_code}_en-{version.replace('.', '_')}"
        archive = workdir / f"{name}.argosmodel"
        if archive.exists():  # built for an earlier test of this module
            return archive
        root = workdir / "pkg" / name
        shutil.copytree(ct2_dir, root / "model")
        shutil.copy(sp_path, root / "sentencepiece.model")
        (root / "metadata.json").write_text(json.dumps({
            "package_version": version, "argos_version": "1.9", "from_code": from_code, "to_code": "en",
            "from_name": names[from_code], "to_name": "English", "type": "translate",
        }))
        with zipfile.ZipFile(archive, "w") as zf:
            for path in sorted(root.rglob("*")):
                zf.write(path, path.relative_to(root.parent).as_posix())
        return archive

    return make


@pytest.fixture
def install(make_package: Callable[[str, str], Path], tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], None]]:
    """Installs packages into this test's own Argos directories, never the user's."""
    for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    packages_dir = tmp_path / "argos-packages"
    packages_dir.mkdir()
    monkeypatch.setenv("ARGOS_PACKAGES_DIR", str(packages_dir))
    # argostranslate.settings reads the environment once, at import; if an earlier test imported
    # it, point the already-loaded settings at this test's directory too.
    from argostranslate import package, settings

    monkeypatch.setattr(settings, "package_data_dir", packages_dir)
    monkeypatch.setattr(settings, "package_dirs", [packages_dir])

    def do_install(from_code: str, version: str) -> None:
        package.install_from_path(make_package(from_code, version))

    yield do_install


def _all_yes(text: str) -> bool:
    words = text.split()
    return bool(words) and set(words) == {"yes"}


def test_translates_with_installed_packages(install: Callable[[str, str], None]) -> None:
    install("zh", "1.9")
    install("ja", "1.7")
    translator = create_translator("argos")
    assert isinstance(translator, ArgosTranslator)
    assert translator.name == "argos:zh-en@1.9,ja-en@1.7"

    zh = ["你好世界。今天天气很好。", "第一段。\n\n第二段！", ""]
    out = translator.translate(zh, "zh")
    assert len(out) == 3
    assert _all_yes(out[0])
    # Paragraphs survive: one line per input line, the empty line stays empty.
    assert out[1].split("\n")[1] == "" and _all_yes(out[1].split("\n")[0]) and _all_yes(out[1].split("\n")[2])
    assert out[2] == ""
    ja = translator.translate(["今日は良い天気です。"], "ja")
    assert len(ja) == 1 and _all_yes(ja[0])
    # Same input, same output: beam search is deterministic.
    assert translator.translate(zh, "zh") == out
    # English needs no translation.
    assert translator.translate(["Already English."], "en") == ["Already English."]
    translator.close()


def test_missing_pair_is_an_error_only_when_needed(install: Callable[[str, str], None]) -> None:
    install("zh", "1.9")
    translator = ArgosTranslator()
    assert translator.name == "argos:zh-en@1.9"
    assert _all_yes(translator.translate(["你好。"], "zh")[0])
    with pytest.raises(TranslatorError, match=r"no Argos Translate package for ja->en.*"
                                              r"argospm install translate-ja_en, or use --translator llm"):
        translator.translate(["こんにちは。"], "ja")
    # A translator only for ja cannot be built at all.
    with pytest.raises(TranslatorError, match="argospm install translate-ja_en"):
        create_translator("argos:ja")


def test_newest_package_version_wins(install: Callable[[str, str], None]) -> None:
    install("zh", "1.9")
    install("zh", "1.10")  # 1.10 > 1.9 as versions, though not as strings
    assert ArgosTranslator("zh").name == "argos:zh-en@1.10"


def test_nothing_installed(install: Callable[[str, str], None]) -> None:
    with pytest.raises(TranslatorError, match=r"zh->en and ja->en packages: argospm update && argospm install "
                                              r"translate-zh_en translate-ja_en, or use --translator llm"):
        ArgosTranslator()
