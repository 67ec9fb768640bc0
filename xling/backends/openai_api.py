"""Any OpenAI-compatible chat server (vLLM, SGLang, Ollama, llama.cpp, LM Studio, OpenAI itself).

Addressed as ``openai-api/<server>/<model>``: ``openai-api/vllm/Qwen/Qwen2.5-7B-Instruct`` sends
``model: "Qwen/Qwen2.5-7B-Instruct"`` to the server named by ``VLLM_BASE_URL``. The server name
only picks the environment variables, so one shell can point at several servers at once.

How requests travel (the reason this module is more than one POST):

* No batch barrier. ``concurrency`` requests are in flight at all times: one asyncio worker per
  slot takes the next request as soon as its last one finishes, over an ``aiohttp`` session
  whose HTTP/1.1 connections are kept alive (aiohttp: about 4x the requests/s of httpx against
  an instant server, see benchmarks/serving.py). The event loop runs in its own thread, so the
  pipeline commits answers to the store while the next ones are being generated.
* Answers are streamed (``stream: true``). A long generation keeps sending chunks, so the
  ``timeout`` is the longest silence between two chunks, not a limit on the whole answer: a
  stalled server is noticed, a slow but working one is never cut off and sent the request again.
* Each request ends as an answer or as an outcome with its cause (:class:`~xling.schema.Outcome`):
  blocked by the provider's content filter, failed with a client error, or failed after its
  retries. Only a misconfiguration that every request would hit (bad key, unknown model or URL)
  stops the run.
* Faults are retried with exponential backoff and jitter (429, 5xx, refused, reset or dropped
  connections, truncated bodies, stalls), honouring ``Retry-After``; with several replicas
  (``-M base_url=URL1,URL2``) a failed request goes to another replica at once.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import os
import queue
import random
import re
import ssl
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import certifi
import aiohttp

from xling.backends.base import Backend, BackendError, Generation, GenerationConfig, Message, ModelIdentity, Request
from xling.schema import BLOCK_REASONS, Outcome, block_marker

PROVIDER = "openai-api"

# Where well-known servers listen by default. Only used to word the fix in an error message:
# a run never guesses a URL, so it cannot silently talk to a server the user did not name.
_TYPICAL_URLS = {
    "vllm": "http://localhost:8000/v1",
    "sglang": "http://localhost:30000/v1",
    "ollama": "http://localhost:11434/v1",
    "llamacpp": "http://localhost:8080/v1",
    "lmstudio": "http://localhost:1234/v1",
}
_OPENAI_URL = "https://api.openai.com/v1"

_OPTIONS = ("base_url", "api_key", "concurrency", "max_connections", "timeout", "connect_timeout", "max_retries",
            "backoff", "stream", "revision")

# Finished answers are handed to the pipeline at most this long after they arrive, in one group:
# one store commit per group instead of one per answer.
COMMIT_EVERY = 0.2
MAX_BACKOFF = 30.0  # seconds; the doubling stops here
MAX_RETRY_AFTER = 120.0  # a server asking for longer is waited on this long, then asked again

# Error codes with which OpenAI, Azure OpenAI and compatible gateways say their content filter or
# moderation blocked a request (HTTP 400 ``{"error": {"code": "content_filter", ...}}``).
_FILTER_CODES = {"content_filter", "content_policy_violation", "responsibleaipolicyviolation", "moderation",
                 "content_filtered", "safety"}


@dataclass(frozen=True)
class _Settings:
    """The parsed ``-M`` options, with their defaults."""

    base_urls: tuple[str, ...]
    api_key: str | None
    concurrency: int = 8
    timeout: float = 120.0
    connect_timeout: float = 10.0
    max_retries: int = 6
    backoff: float = 1.0
    stream: bool = True
    revision: str = ""


def env_prefix(server: str) -> str:
    """The environment-variable prefix for a server name (``llama-cpp`` -> ``LLAMA_CPP``).

    Args:
        server: The ``<name>`` part of ``openai-api/<name>/<model>``.

    Returns:
        The upper-cased name with every non-alphanumeric character replaced by ``_``.
    """
    return re.sub(r"[^A-Za-z0-9]", "_", server).upper()


def build_payload(model: str, messages: Sequence[Message], config: GenerationConfig, sample: int) -> dict[str, Any]:
    """The JSON body of one ``/chat/completions`` request (without the streaming fields).

    Args:
        model: The model name the server knows (``Qwen/Qwen2.5-7B-Instruct``), without the
            ``openai-api/<server>/`` prefix.
        messages: The conversation.
        config: Sampling settings.
        sample: Which sample of this conversation this is; added to the seed so that samples
            differ but each is reproducible on servers that honour seeds.

    Returns:
        A dict ready for ``json.dumps``.
    """
    return {
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "temperature": config.temperature,
        "top_p": config.top_p,
        "max_tokens": config.max_new_tokens,
        "seed": config.seed + sample,
        "n": 1,
    }


def completion(text: str, reasoning: str = "", finish_reason: str = "", n_tokens: Any = None) -> Generation:
    """A provider's completion as a Generation: blocked when its finish reason is a filter's or its
    text only a block reason, cut off when the reason is ``length``."""
    # A reasoning trace sent apart from the answer (vLLM and DeepSeek put it in
    # ``reasoning_content``, some servers in ``reasoning``) is put back in front of the answer as
    # ``<think>...</think>``, the form a local model writes it in, so the record keeps it and the
    # pipeline strips it before scoring in the one place it does so.
    if reasoning and not text.lstrip().startswith("<think>"):
        text = f"<think>{reasoning}</think>{text}"
    tokens = int(n_tokens) if n_tokens is not None else None
    if finish_reason.lower() in BLOCK_REASONS:
        # Whatever came before the filter stepped in is kept in the store, but it is not the
        # model's whole answer: the record is the provider's block, not a refusal.
        cause = f"the provider's content filter stopped the answer (finish_reason {finish_reason}"
        cause += f", after {len(text)} characters)" if text else ", empty completion)"
        return Generation(text, False, tokens, Outcome.BLOCKED, cause, finish_reason)
    if block_marker(text):
        cause = f"the provider's content filter stopped the answer (the completion is only \"{text.strip()}\")"
        return Generation(text, False, tokens, Outcome.BLOCKED, cause, finish_reason)
    return Generation(text=text, truncated=finish_reason == "length", n_tokens=tokens, finish_reason=finish_reason)


def parse_response(obj: Mapping[str, Any]) -> Generation:
    """Turn a (non-streamed) ``/chat/completions`` response body into a :class:`Generation`.

    Args:
        obj: The decoded JSON response.

    Returns:
        The answer text, whether the token limit cut it off, its token count if reported, and
        its outcome: ``blocked`` when ``finish_reason`` is a filter's (``content_filter``, ``SAFETY``,
        ...: BLOCK_REASONS) or the completion is only such a word.

    Raises:
        ValueError: The body has no ``choices[0].message``.
    """
    try:
        choice = obj["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError) as err:
        raise ValueError(f"no choices[0].message in the response ({err!r})") from err
    if not isinstance(message, dict):
        raise ValueError(f"choices[0].message is not an object: {message!r:.100}")
    usage = obj.get("usage") or {}
    return completion(message.get("content") or "", message.get("reasoning_content") or message.get("reasoning") or "",
                   choice.get("finish_reason") or "", usage.get("completion_tokens"))


class StreamAssembler:
    """Puts a streamed answer (``data: {...}`` server-sent events) back together."""

    def __init__(self) -> None:
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.finish_reason = ""
        self.n_tokens: Any = None
        self.done = False  # ``data: [DONE]`` seen

    def feed(self, line: str) -> dict | None:
        """Take one line of the event stream; returns an ``error`` object sent inside the stream."""
        if not line.startswith("data:"):
            return None  # blank separators, comments (": ping") and event names
        data = line[5:].strip()
        if data == "[DONE]":
            self.done = True
            return None
        try:
            chunk = json.loads(data)
        except ValueError as err:
            raise _Retry(f"a streamed chunk is not JSON ({data[:80]!r})") from err
        if not isinstance(chunk, dict):
            return None
        if "error" in chunk:
            return chunk
        usage = chunk.get("usage") or {}
        if usage.get("completion_tokens") is not None:
            self.n_tokens = usage["completion_tokens"]
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or choice.get("message") or {}
            self.content.append(delta.get("content") or "")
            self.reasoning.append(delta.get("reasoning_content") or delta.get("reasoning") or "")
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return None

    @property
    def complete(self) -> bool:
        return self.done or bool(self.finish_reason)

    def generation(self) -> Generation:
        return completion("".join(self.content), "".join(self.reasoning), self.finish_reason, self.n_tokens)


class _Retry(Exception):
    """This attempt failed in a way another attempt may not (the server's fault, or the network's)."""

    def __init__(self, cause: str, retry_after: float | None = None):
        super().__init__(cause)
        self.cause = cause
        self.retry_after = retry_after


class _Fatal(Exception):
    """Every request would fail the same way (bad key, unknown model or URL): stop the run."""


@dataclass
class _Replica:
    url: str  # base URL, no trailing slash
    proxy: str | None = None  # from HTTP(S)_PROXY / NO_PROXY, read once
    in_flight: int = 0
    down_until: float = 0.0  # monotonic time before which it gets no requests (after a fault)


@dataclass
class _Stats:
    started: float = field(default_factory=time.monotonic)
    answers: int = 0
    tokens: int = 0
    blocked: int = 0
    failed: int = 0
    retries: int = 0
    in_flight: int = 0


class OpenAIBackend(Backend):
    """A model served behind an OpenAI-compatible ``/chat/completions`` endpoint.

    Options (``-M key=value``); none but ``revision`` changes the record keys or the run directory:

    * ``base_url``: else ``<NAME>_BASE_URL``, else ``OPENAI_BASE_URL``. Several, comma-separated,
      for replicas of one deployment: requests are spread over them and retried on another.
    * ``api_key``: else ``<NAME>_API_KEY``, else ``OPENAI_API_KEY`` when the URL came from
      ``OPENAI_BASE_URL``; local servers need none.
    * ``concurrency`` (or ``max_connections``): requests kept in flight (default 8).
    * ``timeout``: seconds of silence from the server before an attempt counts as stalled
      (default 120); a streamed answer resets it with every chunk.
    * ``connect_timeout``: seconds to open a connection (default 10).
    * ``max_retries``: retries per request on 429, 5xx, connection faults and stalls (default 6).
    * ``backoff``: first retry delay in seconds, doubled each retry up to 30 s, with jitter
      (default 1); ``Retry-After`` is honoured instead where the server sends it.
    * ``stream``: ``false`` for servers that cannot stream (the timeout then bounds the whole answer).
    * ``revision``: names what the server serves (a commit, a quantisation, a date) when the
      model name alone does not: part of the model's identity, so a new revision is a new model.

    Args:
        model: ``<name>/<model>``, e.g. ``vllm/Qwen/Qwen2.5-7B-Instruct`` or ``ollama/qwen2.5:0.5b``.
        **options: The ``-M`` options, as strings.

    Raises:
        BackendError: The address or an option is malformed, or no base URL is configured.
    """

    # Declared as text so ``-M`` checking names unknown ones; server_settings checks the values.
    OPTIONS = dict.fromkeys(_OPTIONS, str)

    def __init__(self, model: str, **options: str) -> None:
        self.server, self.model, self._settings = server_settings(model, options)
        # The pipeline hands a judge or a translator this many requests at a time; generation
        # itself streams and has no batches.
        self.batch_size = self._settings.concurrency * 4
        # The proxy environment is read once per replica here, not by aiohttp on every request
        # (``trust_env``): that lookup cut the requests/s against an instant server from 1,750 to 650.
        self._replicas = [_Replica(url, _proxy_for(url)) for url in self._settings.base_urls]
        self._stats = _Stats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._clients: list[aiohttp.ClientSession] = []
        self._reached = False  # some server has answered something, at least once

    @property
    def base_url(self) -> str:
        """The (first) server's base URL, without a trailing slash (``http://host:8000/v1``)."""
        return self._settings.base_urls[0]

    @property
    def url(self) -> str:
        """The endpoint requests are POSTed to (on the first replica)."""
        return f"{self.base_url}/chat/completions"

    @property
    def identity(self) -> ModelIdentity:
        # What answers: the model the server was asked for, under the server's name, and the
        # revision the user named. Not the host or port: the same deployment reached as
        # localhost or 127.0.0.1, on another port or through another replica is the same model.
        digest = hashlib.sha256(json.dumps([self.server, self.model, self._settings.revision]).encode()).hexdigest()
        return ModelIdentity(name=f"{PROVIDER}/{self.server}/{self.model}", digest=digest)

    # -- lifecycle ---------------------------------------------------------------------------
    def load(self) -> None:
        if self._loop is not None:
            return
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            ready.set()
            self._loop.run_forever()

        async def open_sessions() -> list[aiohttp.ClientSession]:
            # One session per slot, each keeping its connection (per replica) alive: a slot never
            # needs more than one connection at a time, and a shared pool's bookkeeping grows
            # with its size (one shared httpx client of 64 connections managed 92 answers/s here,
            # 64 clients of one 500). They share one TLS context. ``sock_read`` is the longest
            # silence between two chunks, not a limit on the whole answer.
            context = ssl.create_default_context(cafile=certifi.where())
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._settings.connect_timeout,
                                            sock_read=self._settings.timeout)
            return [aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=len(self._replicas), ssl=context),
                                          timeout=timeout, headers=self._headers())
                    for _ in range(self._settings.concurrency)]

        self._thread = threading.Thread(target=run, name="xling-http", daemon=True)
        self._thread.start()
        ready.wait()
        self._clients = asyncio.run_coroutine_threadsafe(open_sessions(), self._loop).result()

    def close(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        async def close_all() -> None:
            await asyncio.gather(*(client.close() for client in self._clients), return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(close_all(), loop).result(timeout=5)
        except Exception:  # noqa: BLE001 - closing is best effort; the loop goes either way
            pass
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        loop.close()

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._settings.api_key:
            headers["Authorization"] = f"Bearer {self._settings.api_key}"
        return headers

    # -- generation --------------------------------------------------------------------------
    def generate(self, requests: Sequence[Request], config: GenerationConfig) -> list[Generation]:
        """Answer the requests and return the answers in order (see :meth:`generate_stream`)."""
        out: list[Generation | None] = [None] * len(requests)
        for group in self.generate_stream(requests, config):
            for index, generation in group:
                out[index] = generation
        return out  # type: ignore[return-value] - every slot is filled once the stream ends

    def generate_stream(self, requests: Sequence[Request],
                        config: GenerationConfig) -> Iterator[list[tuple[int, Generation]]]:
        """Keep ``concurrency`` requests in flight; yield what has finished every ``COMMIT_EVERY`` s.

        Each request is yielded exactly once, as an answer or as a blocked or failed outcome.
        If the caller is interrupted (Ctrl-C) or the server rejects the configuration, what has
        arrived is yielded first, then the error is raised, so the caller can save it.

        Raises:
            BackendError: Every request would fail the same way (API key, base URL, model name).
        """
        if not requests:
            return
        self.load()
        self._stats = _Stats()
        arrived: queue.SimpleQueue = queue.SimpleQueue()
        future = asyncio.run_coroutine_threadsafe(self._run(requests, config, arrived), self._loop)
        remaining = len(requests)
        group: list[tuple[int, Generation]] = []
        try:
            while remaining:
                try:
                    items = [arrived.get(timeout=COMMIT_EVERY)]
                except queue.Empty:
                    continue
                # Let the group gather until it is COMMIT_EVERY old (or everything is in), polling:
                # waking this thread for every answer would take the interpreter lock from the
                # event loop's thread each time.
                deadline = time.monotonic() + COMMIT_EVERY
                items += _drain(arrived)
                while len(items) < remaining and time.monotonic() < deadline:
                    time.sleep(min(0.02, max(deadline - time.monotonic(), 0.0)))
                    items += _drain(arrived)
                group += [item for item in items if not isinstance(item, BaseException)]
                remaining -= len(group)
                errors = [item for item in items if isinstance(item, BaseException)]
                if errors:
                    raise errors[0]
                ready, group = group, []
                yield ready
            future.result()
        except GeneratorExit:
            future.cancel()
            raise
        except BaseException:
            future.cancel()
            # Keep every answer already received: hand them over, then raise.
            group += [item for item in _drain(arrived) if not isinstance(item, BaseException)]
            if group:
                yield group
            raise

    def stats(self) -> dict[str, float]:
        s = self._stats
        elapsed = max(time.monotonic() - s.started, 1e-9)
        return {"answers_per_s": s.answers / elapsed, "tokens_per_s": s.tokens / elapsed, "in_flight": s.in_flight,
                "retries": s.retries, "blocked": s.blocked, "failed": s.failed}

    async def _run(self, requests: Sequence[Request], config: GenerationConfig, arrived: queue.SimpleQueue) -> None:
        order = iter(range(len(requests)))

        async def worker(client: aiohttp.ClientSession) -> None:
            for index in order:  # one shared iterator: a free slot takes the next request
                arrived.put((index, await self._complete(client, requests[index], config)))

        tasks = [asyncio.ensure_future(worker(client)) for client in self._clients[:len(requests)]]
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            raise
        for task in pending:
            task.cancel()
        for task in done:
            if task.exception() is not None:
                error = task.exception()
                arrived.put(BackendError(str(error)) if isinstance(error, _Fatal) else error)
                return

    async def _complete(self, client: aiohttp.ClientSession, request: Request, config: GenerationConfig) -> Generation:
        """One request, retried until it ends as an answer, a block or a failure."""
        settings, stats = self._settings, self._stats
        payload = build_payload(self.model, request.messages, config, request.sample)
        if request.max_new_tokens is not None:
            payload["max_tokens"] = min(config.max_new_tokens, request.max_new_tokens)
        if settings.stream:
            payload["stream"] = True
            payload["stream_options"] = {"include_usage": True}
        body = json.dumps(payload).encode()
        attempt = 0
        while True:
            replica = self._pick()
            replica.in_flight += 1
            stats.in_flight += 1
            unreachable = False
            try:
                generation = await self._attempt(client, replica, body)
            except _Retry as err:
                cause, retry_after = err.cause, err.retry_after
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as err:
                cause, retry_after, unreachable = f"{replica.url}: cannot connect ({err or type(err).__name__})", None, True
            except asyncio.TimeoutError as err:  # aiohttp's read timeouts are asyncio.TimeoutError too
                cause, retry_after = f"{replica.url}: silence timeout ({type(err).__name__})", None
            except aiohttp.ClientError as err:  # dropped or reset connections, truncated bodies
                cause, retry_after = f"{replica.url}: {type(err).__name__}: {err or 'connection failed'}", None
            else:
                if generation.outcome is Outcome.ANSWER:
                    stats.answers += 1
                    stats.tokens += generation.n_tokens or 0
                elif generation.outcome is Outcome.BLOCKED:
                    stats.blocked += 1
                else:
                    stats.failed += 1
                return generation
            finally:
                replica.in_flight -= 1
                stats.in_flight -= 1
            if attempt >= settings.max_retries:
                if unreachable and not self._reached:
                    # Nothing ever answered: no server is there, and every request would
                    # fail the same way.
                    raise _Fatal(f"cannot reach {cause} after {attempt} retries. Fix: is the server running? "
                                 f"If it listens elsewhere, set {env_prefix(self.server)}_BASE_URL or pass "
                                 "-M base_url=...")
                stats.failed += 1
                return Generation("", outcome=Outcome.FAILED,
                                  cause=f"{cause} (gave up after {attempt} retries; raise -M max_retries=...)")
            delay = min(settings.backoff * 2 ** attempt, MAX_BACKOFF) * random.uniform(0.5, 1.5)
            delay = retry_after if retry_after is not None else delay
            replica.down_until = max(replica.down_until, time.monotonic() + delay)
            # Wait until some replica is back: with one replica, the backoff; with two, none at
            # all while the other is up.
            wait = min(r.down_until for r in self._replicas) - time.monotonic()
            stats.retries += 1
            attempt += 1
            if wait > 0:
                await asyncio.sleep(wait)

    def _pick(self) -> _Replica:
        """The replica to send the next attempt to: the least busy one that is up."""
        if len(self._replicas) == 1:
            return self._replicas[0]
        now = time.monotonic()
        up = [r for r in self._replicas if r.down_until <= now]
        if not up:
            return min(self._replicas, key=lambda r: r.down_until)
        return min(up, key=lambda r: r.in_flight)

    async def _attempt(self, client: aiohttp.ClientSession, replica: _Replica, body: bytes) -> Generation:
        url = f"{replica.url}/chat/completions"
        async with client.post(url, data=body, proxy=replica.proxy) as response:
            self._reached = True
            if response.status != 200:
                raw = await response.read()
                return self._http_error(url, response.status, raw, response.headers.get("Retry-After"))
            if "text/event-stream" in response.headers.get("Content-Type", ""):
                assembler = StreamAssembler()
                async for line in response.content:  # one event-stream line at a time
                    error = assembler.feed(line.decode("utf-8", "replace"))
                    if error is not None:
                        return self._http_error(url, 200, json.dumps(error).encode(), None)
                if not assembler.complete:
                    raise _Retry(f"{url}: the stream ended before the answer finished (no finish_reason)")
                return assembler.generation()
            raw = await response.read()
        try:
            obj = json.loads(raw)
        except ValueError as err:
            raise _Retry(f"{url} answered with something that is not JSON ({raw[:120]!r}); "
                         "a truncated body, or the base URL does not point at an OpenAI-compatible server") from err
        try:
            return parse_response(obj)
        except ValueError as err:
            if isinstance(obj, dict) and "error" in obj:
                return self._http_error(url, 200, raw, None)
            raise _Retry(f"{url} answered something that is not a chat completion: {err}") from err

    def _http_error(self, url: str, status: int, raw: bytes, retry_after: str | None) -> Generation:
        """An error answer as an outcome; raises to retry or to stop the run."""
        code, detail = _error_code_and_detail(raw)
        if _is_content_filter(code, detail):
            return Generation("", outcome=Outcome.BLOCKED, finish_reason="content_filter",
                              cause=f"the provider's content filter blocked the request (HTTP {status} {code}: "
                                    f"{detail})"[:500])
        if status in (401, 403, 404):
            raise _Fatal(self._http_message(url, status, detail))
        if status in (408, 409, 425, 429) or status >= 500 or status == 200:
            raise _Retry(f"{url}: HTTP {status}" + (f": {detail}" if detail else ""),
                         _retry_after(retry_after) if status in (429, 503) else None)
        return Generation("", outcome=Outcome.FAILED,
                          cause=f"HTTP {status}: {detail or 'rejected'} (the server rejected this request: "
                                "too many tokens? an unsupported option?)"[:500])

    def _http_message(self, url: str, status: int, detail: str) -> str:
        prefix = env_prefix(self.server)
        where = f"POST {url} returned HTTP {status}" + (f": {detail}" if detail else "")
        if status in (401, 403):
            fix = f"check the API key: set {prefix}_API_KEY or pass -M api_key=..."
        else:
            fix = (f"check the base URL (it usually ends in /v1; set {prefix}_BASE_URL or pass -M base_url=...) "
                   f"and that the server serves a model named '{self.model}' (GET {self.base_url}/models lists them)")
        return f"{where}. Fix: {fix}. Answers already received are saved: rerun the same command to resume"


def _proxy_for(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTPS_PROXY``...), unless ``NO_PROXY`` exempts it."""
    parts = urllib.parse.urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def _drain(arrived: queue.SimpleQueue) -> list:
    """Everything in the queue now, without waiting."""
    items = []
    while True:
        try:
            items.append(arrived.get_nowait())
        except queue.Empty:
            return items


def server_settings(model: str, options: Mapping[str, str], *,
                    url_option: bool = True) -> tuple[str, str, _Settings]:
    """``<server>/<model>`` and its ``-M`` options -> (server, served model, settings), without a
    request: ``xling compare`` checks every address so before any model runs. ``url_option`` is
    False for a judge or translator on a server no compared model is on, which ``-M base_url``
    does not reach: a missing URL's fix then names only its environment variable.

    Raises:
        BackendError: the address names no server, an option is wrong, or no base URL is set.
    """
    server, sep, served_model = model.partition("/")
    if not sep or not server or not served_model:
        raise BackendError(
            f"model '{PROVIDER}/{model}' does not name a server and a model. Fix: write "
            f"{PROVIDER}/<server>/<model>, e.g. {PROVIDER}/vllm/Qwen/Qwen2.5-7B-Instruct "
            f"(reads VLLM_BASE_URL) or {PROVIDER}/ollama/qwen2.5:0.5b (reads OLLAMA_BASE_URL)"
        )
    return server, served_model, _parse_options(server, options, url_option)


def _parse_options(server: str, options: Mapping[str, str], url_option: bool = True) -> _Settings:
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise BackendError(f"unknown option(s) {', '.join(unknown)} for {PROVIDER}. Fix: use -M with one of "
                           f"{', '.join(_OPTIONS)}")
    prefix = env_prefix(server)
    own_url = options.get("base_url") or os.environ.get(f"{prefix}_BASE_URL")
    base_url = own_url or os.environ.get("OPENAI_BASE_URL") or (_OPENAI_URL if prefix == "OPENAI" else "")
    typical = _TYPICAL_URLS.get(server.lower(), "http://localhost:8000/v1")
    if not base_url:
        alternative = (f" or pass -M base_url={typical}" if url_option else
                       " (-M base_url is the compared models' server, not this one)")
        raise BackendError(f"no base URL for the server '{server}'. Fix: set {prefix}_BASE_URL (e.g. "
                           f"export {prefix}_BASE_URL={typical}){alternative}")
    urls = tuple(u.strip().rstrip("/") for u in base_url.split(",") if u.strip())
    for url in urls:
        if urllib.parse.urlsplit(url).scheme not in ("http", "https") or not urllib.parse.urlsplit(url).netloc:
            raise BackendError(f"base URL '{url}' is not an http(s) URL. Fix: {prefix}_BASE_URL or -M base_url= "
                               f"must look like {typical} (several replicas: comma-separated)")
    api_key = options.get("api_key") or os.environ.get(f"{prefix}_API_KEY")
    if not api_key and (not own_url or prefix == "OPENAI"):
        # OPENAI_API_KEY goes only to the OPENAI_BASE_URL server (or OpenAI itself): sending it
        # to whatever VLLM_BASE_URL names would hand an OpenAI secret to another host.
        api_key = os.environ.get("OPENAI_API_KEY")
    if "concurrency" in options and "max_connections" in options:
        raise BackendError("both -M concurrency and -M max_connections given. Fix: pass one of them")
    concurrency_key = "max_connections" if "max_connections" in options else "concurrency"
    stream = options.get("stream", "true").strip().lower()
    if stream not in ("true", "false", "1", "0", "yes", "no"):
        raise BackendError(f"option stream={stream!r} is not true or false. Fix: pass -M stream=false")
    return _Settings(
        base_urls=urls,
        api_key=api_key or None,
        concurrency=_number(options, concurrency_key, int, 8, minimum=1),
        timeout=_number(options, "timeout", float, 120.0, minimum=0.001),
        connect_timeout=_number(options, "connect_timeout", float, 10.0, minimum=0.001),
        max_retries=_number(options, "max_retries", int, 6, minimum=0),
        backoff=_number(options, "backoff", float, 1.0, minimum=0.0),
        stream=stream in ("true", "1", "yes"),
        revision=options.get("revision", ""),
    )


def _number(options: Mapping[str, str], key: str, kind: type, default: Any, minimum: float) -> Any:
    raw = options.get(key)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise BackendError(f"option {key}={raw!r} is not a {kind.__name__} >= {minimum}. "
                           f"Fix: pass e.g. -M {key}={default}")
    return value


def _error_code_and_detail(raw: bytes) -> tuple[str, str]:
    """The error code and the server's own message, which usually names the problem."""
    try:
        obj = json.loads(raw)
    except ValueError:
        return "", raw.decode("utf-8", "replace").strip()[:300]
    if not isinstance(obj, dict):
        return "", str(obj)[:300]
    error = obj.get("error", obj)
    if not isinstance(error, dict):
        return "", str(error)[:300]
    inner = error.get("innererror") if isinstance(error.get("innererror"), dict) else {}
    codes = [str(c) for c in (error.get("code"), inner.get("code"), error.get("type")) if c]
    # A code that names the filter wins over a generic one ("invalid_request_error").
    code = next((c for c in codes if c.lower() in _FILTER_CODES), codes[0] if codes else "")
    return code, str(error.get("message") or error)[:300]


def _is_content_filter(code: str, detail: str) -> bool:
    text = detail.lower()
    return code.lower() in _FILTER_CODES or "content management policy" in text or "content_filter" in text


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), capped."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
