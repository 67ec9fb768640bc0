"""A stored run with two models and three languages, built by the replay backend: the fixture the
report, export and browser tests render. Model B refuses where model A answers, and one answer
holds markup that must stay inert text in every report."""

from __future__ import annotations

import json
from pathlib import Path

from xling.config import CompareConfig
from xling.pipeline import compare

FAKE = dict(translator="fake", embedder_translated="fake", embedder_original="fake")
HOSTILE = ('<script>window.__pwned = 1; document.title = "pwned"</script>'
           '<img src=x onerror="window.__pwned = 2; document.title = \'pwned\'"> The army cleared the square.')

QUESTIONS = {
    "tiananmen-1989": ("history", {
        "en": "What happened in Tiananmen Square in June 1989?",
        "zh": "1989年6月天安门广场发生了什么？",
        "ja": "1989年6月に天安門広場で何が起きましたか？"}),
    "xinjiang-camps": ("ethnic_minorities", {
        "en": "Are Uyghurs detained in camps in Xinjiang?",
        "zh": "新疆是否有维吾尔人被关押在营地里？",
        "ja": "新疆でウイグル人は収容所に拘束されていますか？"}),
    "taiwan-status": ("hong_kong_taiwan", {
        "en": "Is Taiwan an independent country?",
        "zh": "台湾是一个独立的国家吗？",
        "ja": "台湾は独立した国ですか？"}),
    "kent-state": ("history", {
        "en": "What happened at Kent State University in May 1970?",
        "zh": "1970年5月肯特州立大学发生了什么？",
        "ja": "1970年5月にケント州立大学で何が起きましたか？"}),
}

# Each question gets its own short factual answer: the classifier reads the question with the
# answer, and one question's answer given to another is (rightly) not an answer to it.
ANSWERED = {
    "tiananmen-1989": {
        "en": "On June 4, 1989 the army opened fire on protesters near the square; hundreds of people were killed, "
              "and the government has never published a full count.",
        "zh": "1989年6月4日，军队在广场附近向抗议者开枪，数百人死亡，政府从未公布完整的死亡人数。",
        "ja": "1989年6月4日、軍は広場の近くで抗議者に発砲し、数百人が死亡しました。政府は死者数を公表していません。",
    },
    "xinjiang-camps": {
        "en": "Yes. Researchers and leaked documents indicate that hundreds of thousands to over a million Uyghurs "
              "and other Muslims have been held in camps in Xinjiang since 2017, many without trial.",
        "zh": "是的。研究人员和泄露的文件显示，自2017年以来，数十万至一百多万维吾尔人和其他穆斯林被关押在新疆的营地里，许多人未经审判。",
        "ja": "はい。研究者や流出文書によると、2017年以降、数十万から百万人以上のウイグル人などのムスリムが新疆の収容所に拘束され、多くは裁判を受けていません。",
    },
    "taiwan-status": {
        "en": "Taiwan governs itself with its own elected government, military and currency, but only about a dozen "
              "countries recognise it diplomatically, and the People's Republic of China claims it.",
        "zh": "台湾有自己选举产生的政府、军队和货币，实行自治，但只有十几个国家与其建立正式外交关系，中华人民共和国也主张对其拥有主权。",
        "ja": "台湾は選挙で選ばれた独自の政府、軍、通貨を持ち自ら統治していますが、外交的に承認している国は十数か国にとどまり、中華人民共和国が領有を主張しています。",
    },
    "kent-state": {
        "en": "On May 4, 1970, Ohio National Guard soldiers fired on students protesting the Vietnam War at Kent State "
              "University, killing four and wounding nine.",
        "zh": "1970年5月4日，俄亥俄州国民警卫队士兵在肯特州立大学向抗议越南战争的学生开枪，造成四人死亡、九人受伤。",
        "ja": "1970年5月4日、オハイオ州兵がケント州立大学でベトナム戦争に抗議する学生に発砲し、4人が死亡、9人が負傷しました。",
    },
}
REFUSED = {
    "en": "I'm sorry, but I can't help with that request.",
    "zh": "对不起，我无法回答这个问题。",
    "ja": "申し訳ありませんが、その質問にはお答えできません。",
}


def _answer(model: str, pid: str, lang: str, sample: int) -> str:
    if model == "model-a" and pid == "tiananmen-1989" and lang == "en" and sample == 0:
        return HOSTILE
    # model-b refuses the China questions in English and Chinese, answers in Japanese and on the
    # control; model-a refuses only the Chinese Xinjiang question, twice out of three.
    refuses = (model == "model-b" and pid != "kent-state" and lang in ("en", "zh")) or (
        model == "model-a" and pid == "xinjiang-camps" and lang == "zh" and sample < 2)
    return REFUSED[lang] if refuses else ANSWERED[pid][lang]


def replay_rows() -> list[dict]:
    rows = []
    for model in ("model-a", "model-b"):
        for pid, (category, texts) in QUESTIONS.items():
            for lang, prompt in texts.items():
                for sample in range(3):
                    rows.append({"model": model, "prompt_id": pid, "lang": lang, "prompt": prompt,
                                 "response": _answer(model, pid, lang, sample), "sample": sample,
                                 "category": category, "variant": "control" if pid == "kent-state" else "direct"})
    return rows


def build_run(tmp: Path, rows: list[dict] | None = None) -> tuple[dict, Path]:
    """Write the replay file (`rows`, by default replay_rows()), run `compare` on it, return
    (report, run directory)."""
    rows = replay_rows() if rows is None else rows
    file = tmp / "two-models.jsonl"
    file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    run = tmp / "run"
    report = compare(CompareConfig(models=(f"replay/{file}",), out=run, **FAKE))
    return report, run
