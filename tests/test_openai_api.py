"""OpenAIBackend: request building and parsing as pure functions, then HTTP against a real loopback server."""

from __future__ import annotations

import json
from typing import Any, Callable, Iterator

import pytest

from xling.backends import create_backend, helper_options, on_models_server
from xling.backends.base import BackendError, Generation, GenerationConfig, Message, Request
from xling.backends.openai_api import OpenAIBackend, StreamAssembler, build_payload, env_prefix, parse_response, server_settings
from xling.schema import Outcome

from openai_server import OpenAIServer, Reply  # noqa: E402 - tests/ is on the path under pytest

CONFIG = GenerationConfig(temperature=0.5, top_p=0.9, max_new_tokens=64, seed=7)
MESSAGES = (Message("system", "用中文回答如下问题"), Message("user", "台湾的政治地位是什么？"))


# --- pure functions -------------------------------------------------------------------------

def test_build_payload_carries_config_and_offsets_seed_by_sample() -> None:
    payload = build_payload("Qwen/Qwen2.5-7B-Instruct", MESSAGES, CONFIG, sample=2)
    assert payload == {
        "model": "Qwen/Qwen2.5-7B-Instruct",
        "messages": [{"role": "system", "content": "用中文回答如下问题"},
                     {"role": "user", "content": "台湾的政治地位是什么？"}],
        "temperature": 0.5,
        "top_p": 0.9,
        "max_tokens": 64,
        "seed": 9,  # config.seed 7 + sample 2
        "n": 1,
    }
    # It must survive JSON unchanged (the body is sent as UTF-8 JSON).
    assert json.loads(json.dumps(payload)) == payload


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # A plain vLLM answer.
        ({"choices": [{"message": {"role": "assistant", "content": "答案"}, "finish_reason": "stop"}],
          "usage": {"completion_tokens": 3}},
         Generation("答案", truncated=False, n_tokens=3, finish_reason="stop")),
        # Cut off by max_tokens: finish_reason "length".
        ({"choices": [{"message": {"content": "部分"}, "finish_reason": "length"}]},
         Generation("部分", truncated=True, n_tokens=None, finish_reason="length")),
        # vLLM/DeepSeek reasoning parser: the trace comes apart and is put back as <think>.
        ({"choices": [{"message": {"content": "答", "reasoning_content": "想"}, "finish_reason": "stop"}]},
         Generation("<think>想</think>答", finish_reason="stop")),
        # Some servers call the field "reasoning"; content None when only reasoning came back.
        ({"choices": [{"message": {"content": None, "reasoning": "r"}, "finish_reason": "length"}]},
         Generation("<think>r</think>", truncated=True, finish_reason="length")),
        # The trace already inline is not doubled.
        ({"choices": [{"message": {"content": "<think>x</think>y", "reasoning_content": "x"}}]},
         Generation("<think>x</think>y")),
    ],
)
def test_parse_response(body: dict[str, Any], expected: Generation) -> None:
    assert parse_response(body) == expected


@pytest.mark.parametrize("body", [{}, {"choices": []}, {"choices": [{}]}, {"error": {"message": "x"}},
                                  {"choices": [{"message": "text"}]}])
def test_parse_response_rejects_bodies_without_a_message(body: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="choices"):
        parse_response(body)


def test_env_prefix() -> None:
    assert env_prefix("vllm") == "VLLM"
    assert env_prefix("llama-cpp") == "LLAMA_CPP"


# --- construction ---------------------------------------------------------------------------

@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No base URL, key or proxy from the developer's shell leaks into a test."""
    for name in ("VLLM_BASE_URL", "VLLM_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_KEY", "LOCAL_BASE_URL",
                 "LOCAL_API_KEY", "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    return monkeypatch


def test_a_judge_or_translator_takes_only_the_options_meant_for_it() -> None:
    options = {"batch_size": "4", "concurrency": "16", "base_url": "http://10.0.0.1:8000/v1", "api_key": "k"}
    # A local model's batch size does not stop a server judge; the model's server is not the judge's.
    assert helper_options("openai-api/judges/llama", options, ["hf/bundled:qwen"]) == {"concurrency": "16"}
    assert helper_options("openai-api/vllm/llama", options, ["openai-api/vllm/qwen"]) == {
        "concurrency": "16", "base_url": "http://10.0.0.1:8000/v1", "api_key": "k"}  # the same server
    assert helper_options("hf/bundled:qwen", options, ["openai-api/vllm/qwen"]) == {"batch_size": "4"}
    assert on_models_server("openai-api/vllm/llama", ["hf/x", "openai-api/vllm/qwen"])
    assert not on_models_server("openai-api/judges/llama", ["openai-api/vllm/qwen"])
    with pytest.raises(BackendError, match="no such option for openai-api"):
        create_backend("openai-api/vllm/qwen", {"batch_size": "4", "base_url": "http://127.0.0.1:1/v1"})


def test_missing_base_url_names_the_variable(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(BackendError, match=r"set VLLM_BASE_URL .*http://localhost:8000/v1"):
        OpenAIBackend("vllm/Qwen/Qwen2.5-7B-Instruct")
    with pytest.raises(BackendError, match=r"or pass -M base_url=http://localhost:8000/v1$"):
        server_settings("vllm/Qwen/Qwen2.5-7B-Instruct", {})
    # A judge on a server no compared model is on: -M base_url would name the models' server.
    with pytest.raises(BackendError, match=r"VLLM_BASE_URL=\S+\) \(-M base_url is the compared models' server"):
        server_settings("vllm/Qwen/Qwen2.5-7B-Instruct", {}, url_option=False)


def test_address_without_server_is_rejected(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(BackendError, match="openai-api/<server>/<model>"):
        OpenAIBackend("gpt-4o")


def test_options_and_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("VLLM_BASE_URL", "http://gpu-box:8000/v1/")
    clean_env.setenv("VLLM_API_KEY", "k1")
    clean_env.setenv("OPENAI_API_KEY", "not-for-vllm")
    backend = create_backend("openai-api/vllm/Qwen/Qwen2.5-7B-Instruct", {"concurrency": "6"})
    assert isinstance(backend, OpenAIBackend)
    assert backend.url == "http://gpu-box:8000/v1/chat/completions"  # trailing slash dropped
    assert backend._settings.concurrency == 6 and backend.batch_size == 24  # judges and translators: 4 per slot
    assert backend.identity.name == "openai-api/vllm/Qwen/Qwen2.5-7B-Instruct"
    assert backend._settings.api_key == "k1"
    # The option beats the environment.
    assert OpenAIBackend("vllm/m", base_url="http://other:1/v1").base_url == "http://other:1/v1"
    # OPENAI_API_KEY is not sent to a server named by VLLM_BASE_URL...
    clean_env.delenv("VLLM_API_KEY")
    assert OpenAIBackend("vllm/m")._settings.api_key is None
    # ...but is, when the URL itself falls back to OPENAI_BASE_URL.
    clean_env.delenv("VLLM_BASE_URL")
    clean_env.setenv("OPENAI_BASE_URL", "http://proxy:4000/v1")
    assert OpenAIBackend("vllm/m")._settings.api_key == "not-for-vllm"


def test_parse_response_content_filter_is_blocked_not_an_empty_answer() -> None:
    blocked = parse_response({"choices": [{"message": {"content": ""}, "finish_reason": "content_filter"}]})
    assert blocked.outcome is Outcome.BLOCKED and blocked.finish_reason == "content_filter"
    assert "empty completion" in blocked.cause
    partial = parse_response({"choices": [{"message": {"content": "The massacre"}, "finish_reason": "content_filter"}]})
    assert partial.outcome is Outcome.BLOCKED and partial.text == "The massacre" and "after 12 characters" in partial.cause


def test_gemini_block_reasons_are_blocked_as_a_finish_reason_or_as_the_whole_completion() -> None:
    # A gateway passes Gemini's reason on as the finish reason; some hand it over as the text.
    for finish, content in (("SAFETY", ""), ("PROHIBITED_CONTENT", ""), ("stop", "SAFETY"), ("stop", " SAFETY\n")):
        got = parse_response({"choices": [{"message": {"content": content}, "finish_reason": finish}]})
        assert got.outcome is Outcome.BLOCKED and "content filter" in got.cause, (finish, content)
    answer = parse_response({"choices": [{"message": {"content": "Safety first: the dam failed."}, "finish_reason": "stop"}]})
    assert answer.outcome is Outcome.ANSWER


def test_stream_assembler_joins_chunks_reasoning_and_usage() -> None:
    assembler = StreamAssembler()
    for line in [": keep-alive", 'data: {"choices": [{"delta": {"role": "assistant", "reasoning_content": "想"}}]}', "",
                 'data: {"choices": [{"delta": {"content": "答"}}]}',
                 'data: {"choices": [{"delta": {"content": "案"}, "finish_reason": "length"}]}',
                 'data: {"choices": [], "usage": {"completion_tokens": 4}}']:
        assert assembler.feed(line) is None
    assert not assembler.done and assembler.complete  # a finish_reason is enough
    assert assembler.feed("data: [DONE]") is None and assembler.done
    assert assembler.generation() == Generation("<think>想</think>答案", truncated=True, n_tokens=4, finish_reason="length")
    assert StreamAssembler().feed('data: {"error": {"code": "content_filter"}}') == {"error": {"code": "content_filter"}}


def test_identity_is_server_name_model_and_revision_not_the_address(clean_env: pytest.MonkeyPatch) -> None:
    a = OpenAIBackend("vllm/m", base_url="http://127.0.0.1:8000/v1").identity
    assert a.name == "openai-api/vllm/m"
    # The same deployment reached another way, or with other transport options, is the same model.
    for other in ({"base_url": "http://localhost:8001/v1/"}, {"base_url": "http://a:1/v1,http://b:2/v1"},
                  {"base_url": "http://127.0.0.1:8000/v1", "concurrency": "64", "timeout": "5", "api_key": "k"}):
        assert OpenAIBackend("vllm/m", **other).identity == a
    assert a.digest != OpenAIBackend("vllm/m2", base_url="http://127.0.0.1:8000/v1").identity.digest
    assert a.digest != OpenAIBackend("ollama/m", base_url="http://127.0.0.1:8000/v1").identity.digest
    assert a.digest != OpenAIBackend("vllm/m", base_url="http://127.0.0.1:8000/v1", revision="awq-2025-01").identity.digest


def test_transport_options_change_neither_run_directory_nor_keys(clean_env: pytest.MonkeyPatch) -> None:
    from xling.config import CompareConfig

    base = CompareConfig(models=("openai-api/vllm/m",), model_options=(("base_url", "http://127.0.0.1:8000/v1"),
                                                                          ("concurrency", "16")))
    moved = CompareConfig(models=("openai-api/vllm/m",), model_options=(("base_url", "http://localhost:9/v1,http://x:1/v1"),
                                                                           ("concurrency", "8"), ("max_retries", "9")))
    assert base.run_dir() == moved.run_dir()
    revised = CompareConfig(models=("openai-api/vllm/m",), model_options=(("revision", "r2"),))
    assert revised.run_dir() != base.run_dir()


@pytest.mark.parametrize(
    ("options", "match"),
    [({"concurrency": "0"}, "concurrency"), ({"timeout": "soon"}, "timeout"), ({"retries": "2"}, "unknown option"),
     ({"base_url": "file:///etc/passwd"}, "not an http"), ({"stream": "maybe"}, "stream"),
     ({"concurrency": "2", "max_connections": "3"}, "both")],
)
def test_bad_options(clean_env: pytest.MonkeyPatch, options: dict[str, str], match: str) -> None:
    options = {"base_url": "http://127.0.0.1:9/v1", **options}
    with pytest.raises(BackendError, match=match):
        OpenAIBackend("local/m", **options)


# --- a real server on loopback --------------------------------------------------------------

def _request(text: str, sample: int = 0) -> Request:
    return Request(messages=(Message("user", text),), sample=sample)


@pytest.fixture
def serve(clean_env: pytest.MonkeyPatch) -> Iterator[Callable[..., OpenAIServer]]:
    servers: list[OpenAIServer] = []

    def start(behave: Callable[[dict, int], Reply] | None = None, port: int = 0) -> OpenAIServer:
        servers.append(OpenAIServer(behave, port))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.mark.parametrize("stream", ["true", "false"])
def test_generate_against_local_server(serve: Callable[..., OpenAIServer], stream: str) -> None:
    server = serve()
    backend = OpenAIBackend("local/tiny-model", base_url=server.base_url, timeout="5", concurrency="3",
                            api_key="secret", stream=stream)
    try:
        texts = [f"问题{i}" for i in range(7)]
        out = backend.generate([_request(t, sample=i % 2) for i, t in enumerate(texts)], CONFIG)
        # In order despite 3 requests in flight; seed = 7 + sample.
        assert [g.text for g in out] == [f"{t[::-1]}|{7 + i % 2}" for i, t in enumerate(texts)]
        assert [g.n_tokens for g in out] == [len(g.text) for g in out]
        assert {(g.outcome, g.finish_reason, g.truncated) for g in out} == {(Outcome.ANSWER, "stop", False)}
        assert {r["model"] for r in server.bodies} == {"tiny-model"}
        assert all(r.get("stream", False) == (stream == "true") for r in server.bodies)
        short = GenerationConfig(max_new_tokens=4, seed=0)
        assert backend.generate([_request("abc")], short) == [
            Generation("cba|0", truncated=True, n_tokens=5, finish_reason="length")]
        assert backend.generate([], CONFIG) == []
        # Keep-alive: 8 requests over at most 3 connections.
        assert server.connections <= 3
    finally:
        backend.close()


def test_api_key_is_sent_only_when_configured(serve: Callable[..., OpenAIServer]) -> None:
    server = serve()
    assert OpenAIBackend("local/m", base_url=server.base_url, api_key="secret")._headers()["Authorization"] == "Bearer secret"
    assert "Authorization" not in OpenAIBackend("local/m", base_url=server.base_url)._headers()


def test_401_stops_the_run_with_a_clear_error(serve: Callable[..., OpenAIServer]) -> None:
    server = serve(lambda body, n: Reply(status=401, error={"message": "Invalid API key"}))
    backend = OpenAIBackend("vllm/m", base_url=server.base_url, timeout="5", backoff="0.01")
    with pytest.raises(BackendError) as caught:
        backend.generate([_request("hi")], CONFIG)
    backend.close()
    message = str(caught.value)
    assert f"POST {server.base_url}/chat/completions returned HTTP 401: Invalid API key" in message
    assert "set VLLM_API_KEY" in message and "rerun the same command to resume" in message
    assert len(server.bodies) == 1  # a bad key is not retried


def test_404_points_at_the_base_url(serve: Callable[..., OpenAIServer]) -> None:
    server = serve()
    root = server.base_url.removesuffix("/v1")  # the common mistake: a base URL without /v1
    backend = OpenAIBackend("vllm/m", base_url=root, timeout="5")
    with pytest.raises(BackendError, match=r"HTTP 404.*usually ends in /v1.*set VLLM_BASE_URL"):
        backend.generate([_request("hi")], CONFIG)
    backend.close()


def test_unreachable_server(clean_env: pytest.MonkeyPatch) -> None:
    import socket

    # A port that was free a moment ago: nothing listens there, so the connection is refused.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = OpenAIBackend("vllm/m", base_url=f"http://127.0.0.1:{port}/v1", timeout="5",
                            max_retries="1", backoff="0.01")
    with pytest.raises(BackendError, match=rf"cannot reach http://127.0.0.1:{port}/v1.*after 1 retries.*"
                                           r"is the server running\?.*VLLM_BASE_URL"):
        backend.generate([_request("hi"), _request("ho")], CONFIG)
    backend.close()


def test_the_proxy_environment_is_read_once_per_replica(monkeypatch) -> None:
    from xling.backends.openai_api import _proxy_for

    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert _proxy_for("https://api.openai.com/v1") is None
    monkeypatch.setenv("https_proxy", "http://proxy.corp:3128")
    monkeypatch.setenv("no_proxy", "gpu0.lan")
    assert _proxy_for("https://api.openai.com/v1") == "http://proxy.corp:3128"
    assert _proxy_for("http://gpu0.lan:8000/v1") is None  # http: no http_proxy set, and exempt anyway
    assert _proxy_for("https://gpu0.lan:8000/v1") is None
