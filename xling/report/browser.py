"""The answer browser of index.html: every answer in one table a reader filters by model,
language, label, topic and flag, and opens to read the question in every language, the original,
its back-translation, the label and why.

Safety: the answers travel as JSON inside <script type="application/json"> (which the browser
never runs) with every "<" written as \\u003c, so no answer can close the element; the script
puts them on the page with textContent only, never as markup.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from xling.report._common import FLAG_NAMES, answer_label_name, category_name, lang_name, ordered_langs, ordered_models


def browser_data(report: Mapping[str, Any]) -> dict[str, Any]:
    """The records, trimmed to what the page shows, with the flags each one is part of."""
    flags: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for flag in report.get("flags") or []:
        for lang in flag.get("langs") or []:
            key = (str(flag.get("model")), str(flag.get("prompt_id")), str(lang))
            name = FLAG_NAMES.get(str(flag.get("type")), str(flag.get("type")))
            if name not in flags[key]:
                flags[key].append(name)
    questions: dict[str, dict[str, str]] = defaultdict(dict)
    answers = []
    for r in report.get("records") or []:
        model, pid, lang = str(r.get("model")), str(r.get("prompt_id")), str(r.get("lang"))
        questions[pid].setdefault(lang, str(r.get("prompt") or ""))
        outcome = str(r.get("outcome") or "answer")
        label = answer_label_name(r) if outcome == "answer" else f"{outcome.capitalize()} ({r.get('outcome_cause') or 'no answer'})"
        answers.append({
            "model": model, "id": pid, "lang": lang, "sample": r.get("sample"),
            "category": category_name(str(r.get("category") or "?")), "label": label,
            "answer_lang": str(r.get("answer_lang") or lang), "text": str(r.get("text") or ""),
            "back": str(r.get("back_translation") or ""), "why": str(r.get("evidence") or ""),
            "confidence": r.get("confidence"), "missing": [str(f) for f in r.get("key_facts_missing") or []],
            "flags": flags.get((model, pid, lang), []),
        })
    langs = ordered_langs(report)
    return {"answers": answers, "questions": questions, "models": ordered_models(report),
            "langs": {x: f"{lang_name(x)} ({x})" for x in langs}}


def json_for_script(data: Any) -> str:
    """JSON that is safe inside a <script> element: no "<" (so no "</script>" or "<!--")."""
    text = json.dumps(data, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


_JS = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("xling-data").textContent);
  var rows = data.answers;
  var byId = function (id) { return document.getElementById(id); };
  var filters = {model: byId("f-model"), lang: byId("f-lang"), label: byId("f-label"),
                 category: byId("f-category"), flag: byId("f-flag")};
  function fill(select, values, names) {
    values.forEach(function (v) {
      var o = document.createElement("option"); o.value = v; o.textContent = names ? names[v] || v : v;
      select.appendChild(o);
    });
  }
  function uniq(get) {
    var seen = {}, out = [];
    rows.forEach(function (r) { [].concat(get(r)).forEach(function (v) { if (!seen[v]) { seen[v] = 1; out.push(v); } }); });
    return out.sort();
  }
  fill(filters.model, data.models);
  fill(filters.lang, Object.keys(data.langs), data.langs);
  fill(filters.label, uniq(function (r) { return r.label; }));
  fill(filters.category, uniq(function (r) { return r.category; }));
  fill(filters.flag, ["(any flag)", "(no flag)"].concat(uniq(function (r) { return r.flags; })));
  function keep(r) {
    var f = filters;
    if (f.model.value && r.model !== f.model.value) return false;
    if (f.lang.value && r.lang !== f.lang.value) return false;
    if (f.label.value && r.label !== f.label.value) return false;
    if (f.category.value && r.category !== f.category.value) return false;
    if (f.flag.value === "(any flag)") return r.flags.length > 0;
    if (f.flag.value === "(no flag)") return r.flags.length === 0;
    if (f.flag.value && r.flags.indexOf(f.flag.value) < 0) return false;
    return true;
  }
  function cell(tr, text, cls) {
    var td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td);
  }
  function show(r) {
    var panel = byId("answer-panel"); panel.hidden = false;
    byId("p-title").textContent = r.id + " \u00b7 " + data.langs[r.lang] + " \u00b7 sample " + r.sample + " \u00b7 " + r.model;
    var q = byId("p-questions"); q.textContent = "";
    Object.keys(data.langs).forEach(function (lang) {
      var text = (data.questions[r.id] || {})[lang]; if (!text) return;
      var li = document.createElement("li"); var b = document.createElement("b");
      b.textContent = data.langs[lang] + ": "; li.appendChild(b); li.appendChild(document.createTextNode(text));
      li.lang = lang; q.appendChild(li);
    });
    byId("p-original").textContent = r.text || "(empty answer)";
    byId("p-original").lang = r.answer_lang;
    byId("p-back").textContent = r.back && r.back !== r.text ? r.back : (r.answer_lang === "en" ? "Written in English; no translation needed." : "No back-translation stored.");
    byId("p-label").textContent = r.label + (typeof r.confidence === "number" ? " (confidence " + r.confidence.toFixed(2) + ")" : "");
    byId("p-why").textContent = r.why || "\u2013";
    byId("p-flags").textContent = r.flags.length ? r.flags.join("; ") : "none";
    byId("p-missing").textContent = r.missing.length ? r.missing.join("; ") : "none";
    panel.scrollIntoView({block: "nearest"});
  }
  function render() {
    var body = byId("answers-body"); body.textContent = "";
    var shown = rows.filter(keep);
    shown.forEach(function (r) {
      var tr = document.createElement("tr"); tr.tabIndex = 0;
      cell(tr, r.model); cell(tr, r.id); cell(tr, data.langs[r.lang] || r.lang); cell(tr, String(r.sample));
      cell(tr, r.category); cell(tr, r.label); cell(tr, r.flags.join("; ") || "\u2013");
      cell(tr, r.text.length > 140 ? r.text.slice(0, 140) + "\u2026" : r.text, "text-cell");
      tr.addEventListener("click", function () { show(r); });
      tr.addEventListener("keydown", function (e) { if (e.key === "Enter") show(r); });
      body.appendChild(tr);
    });
    byId("answers-count").textContent = shown.length + " of " + rows.length + " answers";
  }
  Object.keys(filters).forEach(function (k) { filters[k].addEventListener("change", render); });
  byId("f-reset").addEventListener("click", function () {
    Object.keys(filters).forEach(function (k) { filters[k].value = ""; }); render();
  });
  byId("p-close").addEventListener("click", function () { byId("answer-panel").hidden = true; });
  render();
})();
"""

BROWSER_CSS = """
.filters { display:flex; flex-wrap:wrap; gap:.6rem 1rem; align-items:end; margin:.6rem 0; }
.filters label { display:flex; flex-direction:column; font-size:.85rem; color:var(--muted); }
.filters select { min-width:9rem; padding:.2rem; }
#answers-table { width:100%; }
#answers-table td, #answers-table th { text-align:left; }
#answers-table tbody tr { cursor:pointer; }
#answers-table tbody tr:hover, #answers-table tbody tr:focus { background:#eef3fb; }
.text-cell { min-width:18rem; max-width:30rem; overflow-wrap:anywhere; }
.answers-scroll { max-height:32rem; overflow:auto; border:1px solid var(--line); }
#answer-panel { border:2px solid var(--low); border-radius:6px; padding:.8rem 1rem; margin:1rem 0; background:#fbfcff; }
#answer-panel pre { white-space:pre-wrap; overflow-wrap:anywhere; font-family:inherit; background:var(--soft);
                    padding:.5rem .7rem; border-radius:4px; margin:.2rem 0 .6rem; }
"""


def render_browser(report: Mapping[str, Any]) -> list[str]:
    """The "Every answer" section: filters, the table, the answer panel, the data and the script."""
    n = len(report.get("records") or [])
    selects = "".join(
        f"<label>{html.escape(title)}<select id=\"f-{key}\"><option value=\"\">all</option></select></label>"
        for key, title in (("model", "Model"), ("lang", "Language asked"), ("label", "Label"),
                           ("category", "Topic"), ("flag", "Divergence flag")))
    return [
        "<section id=\"answers\"><h2>Every answer</h2>",
        "<p>Filter the answers, then click one (or press Enter on it) to read the question in every language,"
        " the original answer, its back-translation, its label and why.</p>",
        "<noscript><p class=\"warn\">The answer browser needs JavaScript; the tables and divergences above"
        " do not.</p></noscript>",
        f"<div class=\"filters\">{selects}<button id=\"f-reset\" type=\"button\">Show all</button>"
        f"<span id=\"answers-count\" class=\"muted\">{n} answers</span></div>",
        "<div id=\"answer-panel\" hidden><h3 id=\"p-title\"></h3>"
        "<h4>The question in every language</h4><ul id=\"p-questions\" class=\"tight\"></ul>"
        "<div class=\"pair\"><div><h5>Original</h5><pre id=\"p-original\"></pre></div>"
        "<div><h5>Back-translation into English</h5><pre id=\"p-back\" lang=\"en\"></pre></div></div>"
        "<p><b>Label:</b> <span id=\"p-label\"></span></p><p><b>Why:</b> <span id=\"p-why\"></span></p>"
        "<p><b>Divergence flags:</b> <span id=\"p-flags\"></span></p>"
        "<p><b>Key facts left out:</b> <span id=\"p-missing\"></span></p>"
        "<button id=\"p-close\" type=\"button\">Close</button></div>",
        "<div class=\"answers-scroll\"><table id=\"answers-table\"><thead><tr><th>Model</th><th>Question</th>"
        "<th>Language</th><th>Sample</th><th>Topic</th><th>Label</th><th>Flags</th><th>Answer</th></tr></thead>"
        "<tbody id=\"answers-body\"></tbody></table></div>",
        f"<script type=\"application/json\" id=\"xling-data\">{json_for_script(browser_data(report))}</script>",
        f"<script>{_JS}</script>",
        "</section>",
    ]
