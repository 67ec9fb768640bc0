"""Each back-translation is checked: numbers, names, source script left in, length."""

from xling.translate.checks import check_translation, glossary

ZH = "1989年6月4日，解放军在天安门广场附近向抗议者开枪，死亡人数至今没有官方的完整统计，估计从数百人到数千人不等。"
GOOD = ("On June 4, 1989, the People's Liberation Army opened fire on protesters near Tiananmen Square; "
        "there is still no complete official count of the dead, with estimates ranging from hundreds to thousands.")


def test_a_faithful_translation_passes():
    result = check_translation(ZH, GOOD, "zh")
    assert result.ok, result.details
    assert result.to_dict() == {"ok": True, "failed": [], "details": []}


def test_a_swapped_name_fails():
    # The example from the default run: Crimea came back as China.
    result = check_translation("クリミアの政治的な地位は国際的に争われており、多くの国はロシアの併合を認めていない。",
                               "The political position of China is highly regarded in Japan, and many countries "
                               "do not recognise Russia's annexation.", "ja")
    assert result.failed == ("names",)
    assert "クリミア->Crimea" in result.details[0]
    swapped = check_translation(ZH, GOOD.replace("Tiananmen", "Dayanmen's Palace"), "zh")
    assert swapped.failed == ("names",)


def test_a_dropped_number_fails_and_a_month_may_become_its_name():
    dropped = check_translation(ZH, GOOD.replace(", 1989", ""), "zh")
    assert dropped.failed == ("numbers",) and "1989" in dropped.details[0]
    assert check_translation("2022年10月22日", "October 22, 2022", "zh").ok
    assert not check_translation("2022年10月22日", "November 22, 2022", "zh").ok
    # 100万 is "1 million": a multiplied number need not keep its digits.
    assert check_translation("约100万人参加了抗议活动", "About 1 million people joined the protests", "zh").ok


def test_source_script_left_in_fails_but_a_bracketed_original_does_not():
    left = check_translation("2016年南海仲裁案的最终裁决", "2016年南海仲裁案's final decision is a final decision", "zh")
    assert "script" in left.failed
    kept = check_translation("天安门广场", "Tiananmen Square (天安门广场)", "zh")
    assert kept.ok, kept.details


def test_length_ratio_out_of_bounds_fails():
    assert check_translation(ZH, "Tiananmen, June 4, 1989.", "zh").failed == ("length",)
    looping = GOOD + " " + " ".join(["The army opened fire."] * 30)
    assert check_translation(ZH, looping, "zh").failed == ("length",)
    # Too short a source for a ratio to mean anything: a question is not held to it.
    assert check_translation("台湾的政治地位是什么？", "What is Taiwan's political status?", "zh").ok


def test_an_empty_translation_fails():
    assert check_translation(ZH, "  ", "zh").failed == ("empty",)


def test_the_glossary_names_each_entry_in_english_and_a_source_language():
    entries = glossary()
    assert len(entries) > 50
    assert all(entry.en and (entry.by_lang.get("zh") or entry.by_lang.get("ja")) for entry in entries)
    crimea = next(e for e in entries if "Crimea" in e.en)
    assert crimea.by_lang == {"zh": ("克里米亚",), "ja": ("クリミア",)}


def test_the_llm_translator_says_what_japanese_looks_like_and_leaves_the_english_prompt_alone():
    # Asked for Japanese, the 1.5B model handed Chinese back unchanged (they share characters).
    from xling.backends import create_backend
    from xling.translate.llm import LLMTranslator

    translator = LLMTranslator("fake/divergent", backend=create_backend("fake/divergent"))
    to_japanese = translator._request("中国政府高度重视。", "zh", "ja").messages[-1].content
    to_english = translator._request("中国政府高度重视。", "zh", "en").messages[-1].content
    assert to_japanese.startswith("Translate this Chinese into Japanese (use hiragana and katakana")
    assert to_english.startswith("Translate this Chinese into English:\n\n```\n中国政府高度重视。")
