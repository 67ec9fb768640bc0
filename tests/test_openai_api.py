"""OpenAIBackend: request building and parsing as pure functions, then HTTP against a real loopback server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

import pytest

from xling.backends import create_backend
from xling.backends.base import BackendError, Generation, GenerationConfig, Message, Request
from xling.backends.openai_api import OpenAIBackend, build_payload, env_prefix, parse_response

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
         Generation("答案", truncated=False, n_tokens=3)),
        # Cut off by max_tokens: finish_reason "length".
        ({"choices": [{"message": {"content": "部分"}, "finish_reason": "length"}]},
         Generation("部分", truncated=True, n_tokens=None)),
        # vLLM/DeepSeek reasoning parser: the trace comes apart and is put back as <think>.
        ({"choices": [{"message": {"content": "答", "reasoning_content": "想"}, "finish_reason": "stop"}]},
         Generation("<think>想</think>答")),
        # Some servers call the field "reasoning"; content None when only reasoning came back.
        ({"choices": [{"message": {"content": None, "reasoning": "r"}, "finish_reason": "length"}]},
         Generation("<think>r</think>", truncated=True)),
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


def test_missing_base_url_names_the_variable(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(BackendError, match=r"set VLLM_BASE_URL .*http://localhost:8000/v1"):
        OpenAIBackend("vllm/Qwen/Qwen2.5-7B-Instruct")


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
    assert backend.batch_size == 6
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


def test_identity_digest_depends_on_host_and_model_only(clean_env: pytest.MonkeyPatch) -> None:
    a = OpenAIBackend("vllm/m", base_url="http://host-a:8000/v1").identity
    same_place = OpenAIBackend("local/m", base_url="http://host-a:8000/v1/").identity
    assert (a.name, same_place.name) == ("openai-api/vllm/m", "openai-api/local/m")
    assert same_place.digest == a.digest  # the server's label does not change where answers come from
    assert a.digest != OpenAIBackend("vllm/m", base_url="http://host-b:8000/v1").identity.digest
    assert a.digest != OpenAIBackend("vllm/m2", base_url="http://host-a:8000/v1").identity.digest


@pytest.mark.parametrize(
    ("options", "match"),
    [({"concurrency": "0"}, "concurrency"), ({"timeout": "soon"}, "timeout"), ({"retries": "2"}, "unknown option"),
     ({"base_url": "file:///etc/passwd"}, "not http")],
)
def test_bad_options(clean_env: pytest.MonkeyPatch, options: dict[str, str], match: str) -> None:
    options = {"base_url": "http://127.0.0.1:9/v1", **options}
    with pytest.raises(BackendError, match=match):
        OpenAIBackend("local/m", **options)


# --- a real server on loopback --------------------------------------------------------------

Handler = Callable[[BaseHTTPRequestHandler, dict[str, Any]], tuple[int, dict[str, Any]]]


class _Server:
    """A ThreadingHTTPServer on 127.0.0.1 whose answer to each POST is decided by ``handle``."""

    def __init__(self, handle: Handler) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        lock = threading.Lock()
        outer = self

        class RequestHandler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    outer.requests.append(body)
                    outer.headers.append(dict(self.headers))
                    status, answer = handle(self, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out and left is what some tests are about

        self.httpd = Server(("127.0.0.1", 0), RequestHandler)
        self.httpd.daemon_threads = True
        self.httpd.timeout = 5
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def serve(clean_env: pytest.MonkeyPatch) -> Iterator[Callable[[Handler], _Server]]:
    servers: list[_Server] = []

    def start(handle: Handler) -> _Server:
        server = _Server(handle)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def _echo(handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Answer with the last user message reversed and its seed; "length" when max_tokens < 5."""
    if handler.path != "/v1/chat/completions":
        return 404, {"error": {"message": f"no route {handler.path}"}}
    text = body["messages"][-1]["content"][::-1]
    return 200, {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": f"{text}|{body['seed']}"},
                     "finish_reason": "length" if body["max_tokens"] < 5 else "stop"}],
        "usage": {"completion_tokens": len(text)},
    }


def _request(text: str, sample: int = 0) -> Request:
    return Request(messages=(Message("user", text),), sample=sample)


def test_generate_against_local_server(serve: Callable[[Handler], _Server]) -> None:
    server = serve(_echo)
    backend = OpenAIBackend("local/tiny-model", base_url=server.base_url, timeout="5", concurrency="3",
                            api_key="secret")
    texts = [f"问题{i}" for i in range(7)]
    out = backend.generate([_request(t, sample=i % 2) for i, t in enumerate(texts)], CONFIG)
    # In order despite 3 requests in flight; seed = 7 + sample.
    assert [g.text for g in out] == [f"{t[::-1]}|{7 + i % 2}" for i, t in enumerate(texts)]
    assert [g.n_tokens for g in out] == [3] * 7  # len("问题i")
    assert not any(g.truncated for g in out)
    assert {r["model"] for r in server.requests} == {"tiny-model"}
    assert {h["Authorization"] for h in server.headers} == {"Bearer secret"}

    short = GenerationConfig(max_new_tokens=4, seed=0)
    assert backend.generate([_request("abc")], short) == [Generation("cba|0", truncated=True, n_tokens=3)]
    assert backend.generate([], CONFIG) == []


@pytest.mark.parametrize("status", [500, 429])
def test_retries_then_succeeds(serve: Callable[[Handler], _Server], status: int) -> None:
    calls = {"n": 0}

    def flaky(handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        calls["n"] += 1
        if calls["n"] <= 2:
            return status, {"error": {"message": "CUDA out of memory" if status == 500 else "slow down"}}
        return _echo(handler, body)

    server = serve(flaky)
    backend = OpenAIBackend("local/m", base_url=server.base_url, timeout="5", max_retries="3", backoff="0.01")
    assert backend.generate([_request("hi")], CONFIG)[0].text == "ih|7"
    assert calls["n"] == 3  # two failures, then the 200


def test_timeout(serve: Callable[[Handler], _Server]) -> None:
    import time

    def slow(handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        time.sleep(1.0)
        return _echo(handler, body)

    server = serve(slow)
    backend = OpenAIBackend("vllm/m", base_url=server.base_url, timeout="0.2", max_retries="0")
    with pytest.raises(BackendError, match=r"cannot reach .*timed out.*-M timeout="):
        backend.generate([_request("hi")], CONFIG)


def test_gives_up_after_max_retries(serve: Callable[[Handler], _Server]) -> None:
    server = serve(lambda handler, body: (503, {"error": {"message": "model still loading"}}))
    backend = OpenAIBackend("local/m", base_url=server.base_url, timeout="5", max_retries="2", backoff="0.01")
    with pytest.raises(BackendError) as caught:
        backend.generate([_request("hi")], CONFIG)
    message = str(caught.value)
    assert f"{server.base_url}/chat/completions" in message
    assert "HTTP 503 after 2 retries" in message and "model still loading" in message
    assert len(server.requests) == 3  # the first try and two retries


def test_401_is_a_clear_error_without_retries(serve: Callable[[Handler], _Server]) -> None:
    server = serve(lambda handler, body: (401, {"error": {"message": "Invalid API key"}}))
    backend = OpenAIBackend("vllm/m", base_url=server.base_url, timeout="5", backoff="0.01")
    with pytest.raises(BackendError) as caught:
        backend.generate([_request("hi")], CONFIG)
    message = str(caught.value)
    assert f"POST {server.base_url}/chat/completions returned HTTP 401: Invalid API key" in message
    assert "set VLLM_API_KEY" in message
    assert len(server.requests) == 1  # a bad key is not retried


def test_404_points_at_the_base_url(serve: Callable[[Handler], _Server]) -> None:
    server = serve(_echo)
    root = server.base_url.removesuffix("/v1")  # the common mistake: a base URL without /v1
    backend = OpenAIBackend("vllm/m", base_url=root, timeout="5")
    with pytest.raises(BackendError, match=r"HTTP 404.*usually ends in /v1.*set VLLM_BASE_URL"):
        backend.generate([_request("hi")], CONFIG)


def test_unreachable_server(clean_env: pytest.MonkeyPatch) -> None:
    import socket

    # A port that was free a moment ago: nothing listens there, so the connection is refused.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = OpenAIBackend("vllm/m", base_url=f"http://127.0.0.1:{port}/v1", timeout="5",
                            max_retries="1", backoff="0.01")
    with pytest.raises(BackendError, match=rf"cannot reach http://127.0.0.1:{port}/v1/chat/completions .*"
                                           r"is the server running\?.*VLLM_BASE_URL"):
        backend.generate([_request("hi")], CONFIG)
