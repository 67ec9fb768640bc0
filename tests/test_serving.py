"""Serving at scale against real loopback servers: no batch barrier, faults, kills, replicas, outcomes.

Every fault test goes through ``pipeline.generate_missing`` into a real store and ends with every
planned record present exactly once, as an answer or as a recorded outcome, and no traceback.
Delays are tens of milliseconds, so the whole file runs in seconds.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from openai_server import AZURE_FILTER, OPENAI_FILTER, OpenAIServer, Reply, echo  # noqa: E402 - tests/ on the path
from xling.backends.base import BackendError, GenerationConfig, Message, Request
from xling.backends.openai_api import OpenAIBackend
from xling.config import CompareConfig
from xling.pipeline import Planned, generate_missing, summarise
from xling.schema import Label, Outcome, Prompt, Record
from xling.store import Store, StoredGeneration

CONFIG = CompareConfig(generation=GenerationConfig(max_new_tokens=64, seed=0))


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def serve() -> Iterator[Callable[..., OpenAIServer]]:
    servers: list[OpenAIServer] = []

    def start(behave: Callable[[dict, int], Reply] | None = None, port: int = 0) -> OpenAIServer:
        servers.append(OpenAIServer(behave, port))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _planned(n: int) -> list[Planned]:
    out = []
    for i in range(n):
        prompt = Prompt(id=f"q{i:03d}", lang="en", category="history", variant="direct", text=f"question {i:03d}")
        out.append(Planned(f"key{i:03d}", "openai-api/local/m", prompt, 0,
                           Request((Message("user", prompt.text),), 0, prompt.id, "en")))
    return out


def _rows(store_path: Path) -> list[tuple]:
    with sqlite3.connect(store_path) as db:
        return db.execute("SELECT key, outcome, outcome_cause, finish_reason, raw_text FROM generations"
                          " ORDER BY key").fetchall()


def _backend(server_or_url, **options: str) -> OpenAIBackend:
    url = server_or_url if isinstance(server_or_url, str) else server_or_url.base_url
    defaults = {"timeout": "2", "backoff": "0.01", "max_retries": "4", "concurrency": "4"}
    return OpenAIBackend("local/m", base_url=url, **{**defaults, **options})


def _run(backend: OpenAIBackend, planned: list[Planned], path: Path, config: CompareConfig = CONFIG,
         progress=lambda stage, done, total: None) -> dict:
    with Store(path) as store:
        try:
            return generate_missing(backend, planned, store, config, progress)
        finally:
            backend.close()


def _expected(planned: Planned) -> str:
    return echo({"messages": [{"content": planned.prompt.text}], "seed": 0})


# --- no batch barrier -----------------------------------------------------------------------

def test_a_slow_request_does_not_hold_back_the_others(serve, tmp_path: Path) -> None:
    # One answer takes 1.2 s, 40 take 20 ms. With 4 connections a batch-at-a-time client needs
    # >= 1.2 s for the first batch and commits nothing before; here the other three slots keep
    # working, and answers reach the store while the slow one is still out.
    server = serve(lambda body, n: Reply(delay=1.2 if "000" in body["messages"][-1]["content"] else 0.02))
    planned = _planned(41)
    committed_at: list[tuple[float, int]] = []
    start = time.monotonic()
    summary = _run(_backend(server, timeout="5"), planned, tmp_path / "x.sqlite",
                   progress=lambda stage, done, total: committed_at.append((time.monotonic() - start, done)))
    elapsed = time.monotonic() - start
    rows = _rows(tmp_path / "x.sqlite")
    assert len(rows) == 41 and {r[1] for r in rows} == {"answer"}
    assert summary == {"generated": 41, "blocked": 0, "failed": 0, "causes": []}
    assert server.max_in_flight == 4
    # 40 fast answers over 3 free slots (~0.3 s) are committed long before the slow one is done.
    assert any(t < 1.0 and done >= 30 for t, done in committed_at)
    assert elapsed < 2.0  # a batch barrier would need ~1.2 s + 9 batches of 20 ms or more: not less
    assert server.connections <= 4  # keep-alive
    # Live figures ride on the progress line.
    assert any("ans/s" in stage and "in flight" in stage for stage in (s for s in _stages(server, tmp_path)))


def _stages(server, tmp_path) -> list[str]:
    stages: list[str] = []
    _run(_backend(server), _planned(3), tmp_path / "stages.sqlite",
         progress=lambda stage, done, total: stages.append(stage))
    return stages


# --- faults ---------------------------------------------------------------------------------

def _faults(body: dict, n: int) -> Reply:
    """Each question's first attempt fails in its own way; the retry answers."""
    question = int(body["messages"][-1]["content"].split()[-1])
    first = body["messages"][-1]["content"] not in _faults.seen
    _faults.seen.add(body["messages"][-1]["content"])
    if question == 0:
        return Reply(status=400, error=AZURE_FILTER)  # blocked, every time
    if question == 1:
        return Reply(status=400, error=OPENAI_FILTER)
    if question == 2:
        return Reply(text="", finish_reason="content_filter")
    if question == 3:
        return Reply(status=400, error={"message": "maximum context length is 4096 tokens", "code": "context_length"})
    if not first:
        return Reply(delay=0.005)
    return {4: Reply(status=500, error={"message": "CUDA out of memory"}),
            5: Reply(status=429, retry_after="0.05", error={"message": "slow down"}),
            6: Reply(status=503, retry_after="0.05", error={"message": "model loading"}),
            7: Reply(fault="stall", stall=3.0),
            8: Reply(fault="drop"),
            9: Reply(fault="truncate"),
            10: Reply(status=502),
            }.get(question, Reply(delay=0.005))


@pytest.mark.parametrize("stream", ["true", "false"])
def test_every_fault_ends_as_an_answer_or_an_outcome_exactly_once(serve, tmp_path: Path, stream: str) -> None:
    _faults.seen = set()
    server = serve(_faults)
    planned = _planned(16)
    summary = _run(_backend(server, timeout="0.4", stream=stream), planned, tmp_path / "x.sqlite")
    rows = {r[0]: r for r in _rows(tmp_path / "x.sqlite")}
    assert sorted(rows) == sorted(p.key for p in planned)  # every record, once (key is the primary key)
    outcomes = {p.prompt.id: rows[p.key][1] for p in planned}
    assert [outcomes[f"q{i:03d}"] for i in range(4)] == ["blocked", "blocked", "blocked", "failed"]
    assert all(outcomes[f"q{i:03d}"] == "answer" for i in range(4, 16))
    for p in planned[4:]:
        assert rows[p.key][4] == _expected(p)  # the retried answer, whole
    cause = {p.prompt.id: rows[p.key][2] for p in planned}
    assert "content filter" in cause["q000"] and "content_filter" in cause["q000"]
    assert "content_policy_violation" in cause["q001"]
    assert "finish_reason content_filter" in cause["q002"] and rows[planned[2].key][3] == "content_filter"
    assert "HTTP 400" in cause["q003"] and "context length" in cause["q003"]
    assert summary["blocked"] == 3 and summary["failed"] == 1 and len(summary["causes"]) == 3
    # Blocked and client errors are not retried; each faulty question is asked exactly twice.
    asked = [b["messages"][-1]["content"] for b in server.bodies]
    assert [asked.count(f"question {i:03d}") for i in range(11)] == [1, 1, 1, 1] + [2] * 7


def test_a_long_streamed_answer_is_not_cut_off_by_the_timeout(serve, tmp_path: Path) -> None:
    # Five chunks 0.15 s apart: 0.75 s in all, longer than the 0.4 s timeout, which bounds the
    # silence between chunks. The answer comes whole from one request, not re-sent on a timeout.
    server = serve(lambda body, n: Reply(chunk_delay=0.15))
    _run(_backend(server, timeout="0.4"), _planned(1), tmp_path / "x.sqlite")
    rows = _rows(tmp_path / "x.sqlite")
    assert [(r[1], r[4]) for r in rows] == [("answer", _expected(_planned(1)[0]))] and len(server.bodies) == 1


def test_retry_after_is_honoured(serve, tmp_path: Path) -> None:
    times: list[float] = []

    def limited(body: dict, n: int) -> Reply:
        times.append(time.monotonic())
        return Reply(status=429, retry_after="0.3") if n == 0 else Reply()

    server = serve(limited)
    _run(_backend(server, backoff="0"), _planned(1), tmp_path / "x.sqlite")
    assert len(times) == 2 and times[1] - times[0] >= 0.28


def test_retries_exhausted_is_a_failed_record_and_the_run_completes(serve, tmp_path: Path) -> None:
    server = serve(lambda body, n: Reply(status=503, error={"message": "model still loading"})
                   if body["messages"][-1]["content"].endswith("1") else Reply())
    planned = _planned(4)
    summary = _run(_backend(server, max_retries="2"), planned, tmp_path / "x.sqlite")
    rows = {r[0]: r for r in _rows(tmp_path / "x.sqlite")}
    assert len(rows) == 4
    assert rows["key001"][1] == "failed" and "HTTP 503: model still loading (gave up after 2 retries" in rows["key001"][2]
    assert summary["failed"] == 1 and summary["causes"] == [rows["key001"][2]]
    assert [b["messages"][-1]["content"] for b in server.bodies].count("question 001") == 3


def test_retry_errors_asks_again_only_what_failed_or_was_blocked(serve, tmp_path: Path) -> None:
    state = {"filter": True}
    server = serve(lambda body, n: Reply(status=400, error=AZURE_FILTER)
                   if state["filter"] and body["messages"][-1]["content"].endswith("2") else Reply())
    planned = _planned(5)
    path = tmp_path / "x.sqlite"
    _run(_backend(server), planned, path)
    assert dict((r[0], r[1]) for r in _rows(path))["key002"] == "blocked"
    asked = len(server.bodies)
    # A plain rerun has nothing to do: the blocked record is a result too.
    assert _run(_backend(server), planned, path)["generated"] == 0 and len(server.bodies) == asked
    state["filter"] = False
    again = CompareConfig(generation=CONFIG.generation, retry_errors=True)
    assert _run(_backend(server), planned, path, config=again)["generated"] == 1
    assert [b["messages"][-1]["content"] for b in server.bodies[asked:]] == ["question 002"]
    rows = {r[0]: r for r in _rows(path)}
    assert rows["key002"][1:4] == ("answer", "", "stop") and len(rows) == 5


def test_an_answer_is_never_overwritten(tmp_path: Path) -> None:
    with Store(tmp_path / "x.sqlite") as store:
        store.put_generations([StoredGeneration("k", "m", "q", "en", 0, "first", False, 1)])
        store.put_generations([StoredGeneration("k", "m", "q", "en", 0, "", False, None, "failed", "boom")])
        assert store.get_generations(["k"])["k"].raw_text == "first"


def test_old_database_gets_the_outcome_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE generations (key TEXT PRIMARY KEY, model TEXT NOT NULL, prompt_id TEXT NOT NULL,"
                   " lang TEXT NOT NULL, sample INTEGER NOT NULL, raw_text TEXT NOT NULL, truncated INTEGER NOT NULL,"
                   " n_tokens INTEGER, created TEXT NOT NULL DEFAULT 'x')")
        db.execute("INSERT INTO generations (key, model, prompt_id, lang, sample, raw_text, truncated) VALUES"
                   " ('k', 'm', 'q', 'en', 0, 'old answer', 0)")
    with Store(path) as store:
        old = store.get_generations(["k"])["k"]
        assert (old.raw_text, old.outcome, old.outcome_cause, old.finish_reason) == ("old answer", "answer", "", "")
        assert store.done_keys(retry_errors=True) == {"k"}


# --- servers that die -----------------------------------------------------------------------

def test_server_killed_and_restarted_mid_run(serve, tmp_path: Path) -> None:
    server = serve(lambda body, n: Reply(delay=0.03))
    port = server.port
    planned = _planned(60)

    def kill_and_restart() -> None:
        while len(server.bodies) < 15:
            time.sleep(0.005)
        server.kill()  # in-flight requests lose their connections; new ones are refused
        time.sleep(0.4)
        server.start()

    killer = threading.Thread(target=kill_and_restart)
    killer.start()
    summary = _run(_backend(server, backoff="0.05", max_retries="8"), planned, tmp_path / "x.sqlite")
    killer.join(timeout=10)
    assert server.port == port
    rows = _rows(tmp_path / "x.sqlite")
    assert len(rows) == 60 and {r[1] for r in rows} == {"answer"}
    assert {r[4] for r in rows} == {_expected(p) for p in planned}
    assert summary["failed"] == 0


def test_two_replicas_one_dies(serve, tmp_path: Path) -> None:
    alive = serve(lambda body, n: Reply(delay=0.01))
    dying = serve(lambda body, n: Reply(delay=0.01))
    planned = _planned(40)

    def kill() -> None:
        while len(dying.bodies) < 5:
            time.sleep(0.002)
        dying.kill()

    killer = threading.Thread(target=kill)
    killer.start()
    start = time.monotonic()
    # A long backoff: with the other replica up, a failed request goes there without waiting.
    backend = _backend(f"{alive.base_url},{dying.base_url}", backoff="5", max_retries="3")
    summary = _run(backend, planned, tmp_path / "x.sqlite")
    killer.join(timeout=10)
    rows = _rows(tmp_path / "x.sqlite")
    assert len(rows) == 40 and {r[1] for r in rows} == {"answer"} and summary["failed"] == 0
    assert len(dying.bodies) >= 5 and len(alive.bodies) >= 35  # spread, then moved over
    assert time.monotonic() - start < 4.0


def test_interrupted_run_keeps_every_answer_received(serve, tmp_path: Path) -> None:
    server = serve(lambda body, n: Reply(delay=0.05))
    planned = _planned(100)
    path = tmp_path / "x.sqlite"
    calls = {"n": 0}

    def interrupt(stage: str, done: int, total: int) -> None:
        calls["n"] += 1
        if calls["n"] == 4:  # after the first commit
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(_backend(server), planned, path, progress=interrupt)
    kept = len(_rows(path))
    assert 0 < kept < 100
    # Every answer the server finished sending is in the store, bar those still on the wire
    # when the interrupt came: more than the group being committed when it struck.
    assert server.answered - 4 <= kept <= server.answered
    # The rerun resumes: only the rest is asked.
    asked = len(server.bodies)
    _run(_backend(server), planned, path)
    assert len(_rows(path)) == 100 and len(server.bodies) - asked == 100 - kept


def test_a_fatal_error_keeps_the_answers_already_received(serve, tmp_path: Path) -> None:
    server = serve(lambda body, n: Reply(status=401, error={"message": "key revoked"}) if n >= 10 else Reply())
    path = tmp_path / "x.sqlite"
    with pytest.raises(BackendError, match="key revoked.*rerun the same command to resume"):
        _run(_backend(server, concurrency="1"), _planned(20), path)
    assert len(_rows(path)) == 10


# --- what the reports count -----------------------------------------------------------------

def _record(sample: int, label: Label, outcome: Outcome = Outcome.ANSWER, lang: str = "zh") -> Record:
    return Record(key=f"k{lang}{sample}", model="m", prompt_id="q", lang=lang, sample=sample, category="history",
                  variant="direct", prompt="p", text="" if outcome is not Outcome.ANSWER else "text",
                  reasoning="", truncated=False, answer_lang=lang, back_translation="", label=label,
                  confidence=1.0, evidence="", outcome=outcome)


def test_blocked_and_failed_are_their_own_rates_not_refusals() -> None:
    from xling.divergence import find_flags

    records = [_record(0, Label.SUBSTANTIVE), _record(1, Label.UNCERTAIN, Outcome.BLOCKED),
               _record(2, Label.UNCERTAIN, Outcome.BLOCKED), _record(3, Label.UNCERTAIN, Outcome.FAILED)]
    records += [_record(i, Label.SUBSTANTIVE, lang="en") for i in range(4)]
    summary, by_category = summarise(records, ["m"], ["zh", "en"])
    zh = summary[0]
    assert zh["n"] == 1 and zh["requests"] == 4
    assert zh["rates"]["refusal"]["k"] == 0 and zh["rates"]["substantive"]["k"] == 1
    assert zh["rates"]["substantive"]["n"] == 1
    assert (zh["rates"]["blocked"]["k"], zh["rates"]["blocked"]["n"]) == (2, 4)
    assert (zh["rates"]["failed"]["k"], zh["rates"]["failed"]["n"]) == (1, 4)
    assert by_category[0]["non_substantive"]["k"] == 0
    # A language where the provider blocked most requests is not a refusal asymmetry.
    assert find_flags(records, [], {}, ["zh", "en"]) == []
    only_blocked = [r for r in records if r.lang == "en"] + [_record(1, Label.UNCERTAIN, Outcome.BLOCKED)]
    assert find_flags(only_blocked, [], {}, ["zh", "en"]) == []


# --- the whole pipeline against a server ----------------------------------------------------

def test_compare_through_a_server_reports_blocked_apart_and_retries_them_when_asked(serve, tmp_path: Path) -> None:
    from xling.pipeline import compare

    state = {"filter": True}

    def behave(body: dict, n: int) -> Reply:
        system, question = body["messages"][0]["content"], body["messages"][-1]["content"]
        if state["filter"] and "中文" in system and len(question) % 2 == 0:
            return Reply(status=400, error=AZURE_FILTER)
        if state["filter"] and "中文" in system:
            return Reply(text="", finish_reason="content_filter")
        return Reply(text="This is a long and substantive answer about the history of the question asked.")

    server = serve(behave)
    config = CompareConfig(models=("openai-api/local/m",), model_options=(("base_url", server.base_url),
                                                                          ("backoff", "0.01")),
                           samples=1, out=tmp_path / "run", translator="fake", embedder_translated="fake",
                           embedder_original="fake")
    report = compare(config)
    records = report["records"]
    assert len(records) == len({r["key"] for r in records}) == 14 * 3
    zh = [r for r in records if r["lang"] == "zh"]
    assert {r["outcome"] for r in zh} == {"blocked"} and all(r["outcome_cause"] for r in zh)
    assert {r["finish_reason"] for r in zh} == {"content_filter"}
    assert {r["outcome"] for r in records if r["lang"] != "zh"} == {"answer"}
    assert all(r["finish_reason"] == "stop" for r in records if r["lang"] != "zh")
    cell = next(s for s in report["summary"] if s["lang"] == "zh")
    assert cell["rates"]["blocked"]["k"] == 14 and cell["rates"]["refusal"]["k"] == 0
    assert not any(f["langs"][0] == "zh" or "zh" in f["langs"] for f in report["flags"])
    assert any("14 of 42 requests blocked by the provider" in p for p in report["request_outcomes"])
    assert not report["input_problems"]
    # A rerun with another concurrency and --retry-errors resumes the same directory and asks
    # only what was blocked.
    asked = len(server.bodies)
    state["filter"] = False
    again = compare(CompareConfig(**{**config.__dict__, "retry_errors": True,
                                     "model_options": config.model_options + (("concurrency", "2"),)}))
    assert len(server.bodies) - asked == 14
    assert {r["outcome"] for r in again["records"]} == {"answer"} and len(again["records"]) == 42


# --- back-translation and judging: the same stream, no batch barrier ------------------------

def _slow_one(marker: str) -> Callable[[dict, int], Reply]:
    """One request (its last message contains ``marker``) takes 1.2 s, the others 20 ms."""
    return lambda body, n: Reply(delay=1.2 if marker in body["messages"][-1]["content"] else 0.02)


def test_back_translation_through_a_server_has_no_batch_barrier(serve, tmp_path: Path) -> None:
    from xling.pipeline import translate_cached
    from xling.translate.llm import LLMTranslator

    server = serve(_slow_one("文本000"))
    translator = LLMTranslator("openai-api/local/m", backend=_backend(server, timeout="5"))
    texts = {"zh": [f"文本{i:03d}" for i in range(25)], "ja": [f"テキスト{i:03d}" for i in range(16)]}
    committed_at: list[tuple[float, int]] = []
    start = time.monotonic()
    with Store(tmp_path / "x.sqlite") as store:
        result = translate_cached(translator, store, texts,
                                  lambda stage, done, total: committed_at.append((time.monotonic() - start, done)))
        elapsed = time.monotonic() - start
        assert len(result) == 41 and all(result.values())
        # Both sources share the connections: the Japanese texts do not wait for the slow Chinese one.
        assert server.max_in_flight == 4
        assert any(t < 1.0 and done >= 30 for t, done in committed_at)
        assert elapsed < 2.0  # batches of 4 x 4 per source would need 1.2 s + 2 more rounds at least
        assert len(store.get_translations(translator.name, "zh", texts["zh"])) == 25
    translator.backend.close()


def test_judging_through_a_server_has_no_batch_barrier_and_does_not_cache_blocked(serve, tmp_path: Path) -> None:
    from xling.pipeline import judge_records

    def behave(body: dict, n: int) -> Reply:
        content = body["messages"][-1]["content"]
        if "answer 001" in content:
            return Reply(status=400, error=OPENAI_FILTER)
        return Reply(text='{"label": "evasion", "reason": "r"}', delay=1.2 if "answer 000" in content else 0.02)

    server = serve(behave)
    backend = _backend(server, timeout="5")
    records = [Record(key=f"k{i:03d}", model="m", prompt_id=f"q{i}", lang="en", sample=0, category="history",
                      variant="direct", prompt="What happened?", text=f"answer {i:03d}", reasoning="",
                      truncated=False, answer_lang="en", back_translation="", label=Label.SUBSTANTIVE,
                      confidence=1.0, evidence="offline") for i in range(41)]
    committed_at: list[tuple[float, int]] = []
    start = time.monotonic()
    with Store(tmp_path / "x.sqlite") as store:
        judged, panel = judge_records(["openai-api/local/m"], records, store, {"openai-api/local/m": backend}, {},
                                      lambda stage, done, total: committed_at.append((time.monotonic() - start, done)))
        elapsed = time.monotonic() - start
        assert [r.label for r in judged].count(Label.EVASION) == 40
        assert judged[1].label is Label.UNCERTAIN and "blocked" in judged[1].evidence
        assert server.max_in_flight == 4
        assert any(t < 1.0 and done >= 30 for t, done in committed_at)
        assert elapsed < 2.0
        # The blocked request got no verdict: it is not cached, so a rerun asks again (and only it).
        asked = len(server.bodies)
        judge_records(["openai-api/local/m"], records, store, {"openai-api/local/m": backend}, {},
                      lambda *a: None)
        assert len(server.bodies) - asked == 1
    backend.close()


def test_interrupted_back_translation_keeps_what_arrived(serve, tmp_path: Path) -> None:
    from xling.pipeline import translate_cached
    from xling.translate.llm import LLMTranslator

    server = serve(lambda body, n: Reply(delay=0.05))
    translator = LLMTranslator("openai-api/local/m", backend=_backend(server))
    texts = {"zh": [f"文本{i:03d}" for i in range(100)]}
    calls = {"n": 0}

    def interrupt(stage: str, done: int, total: int) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt

    with Store(tmp_path / "x.sqlite") as store:
        with pytest.raises(KeyboardInterrupt):
            translate_cached(translator, store, texts, interrupt)
        kept = len(store.get_translations(translator.name, "zh", texts["zh"]))
        assert 0 < kept < 100 and server.answered - 4 <= kept <= server.answered
    translator.backend.close()


def test_a_judge_and_a_translator_take_the_options_meant_for_them(serve, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A translator on the compared model's server reaches it through -M base_url (it had no base
    URL before); a judge on another server reads its own JUDGES_BASE_URL, and the local model's
    -M batch_size does not stop it (it did, after every answer had been generated)."""
    from xling.pipeline import compare

    def behave(body: dict, n: int) -> Reply:
        if body["model"] == "judge":
            return Reply(text='{"label": "evasion", "reason": "r"}')
        return Reply(text="A long and substantive answer about the history of the question asked.")

    models_server, judges_server = serve(behave), serve(behave)
    monkeypatch.delenv("LOCAL_BASE_URL", raising=False)
    monkeypatch.setenv("JUDGES_BASE_URL", judges_server.base_url)
    fake = dict(samples=1, embedder_translated="fake", embedder_original="fake")
    translated = compare(CompareConfig(models=("openai-api/local/m",),
                                       model_options=(("base_url", models_server.base_url),),
                                       translator="llm:openai-api/local/translator", out=tmp_path / "a", **fake))
    assert {b["model"] for b in models_server.bodies} == {"m", "translator"}
    assert all(r["back_translation"] for r in translated["records"] if r["lang"] != "en")
    judged = compare(CompareConfig(models=("fake/echo",), model_options=(("batch_size", "2"),), translator="fake",
                                   judges=("openai-api/judges/judge",), out=tmp_path / "b", **fake))
    assert {b["model"] for b in judges_server.bodies} == {"judge"}
    assert len(judges_server.bodies) == len(judged["records"])
    assert {r["label"] for r in judged["records"] if r["outcome"] == "answer"} == {"evasion"}
