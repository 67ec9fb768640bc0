"""Any OpenAI-compatible chat server (vLLM, Ollama, llama.cpp, SGLang, LM Studio, OpenAI itself).

Addressed as ``openai-api/<server>/<model>``: ``openai-api/vllm/Qwen/Qwen2.5-7B-Instruct`` sends
``model: "Qwen/Qwen2.5-7B-Instruct"`` to the server named by ``VLLM_BASE_URL``. The server name
only picks the environment variables, so one shell can point at several servers at once.

Only the standard library is used (``urllib.request`` and threads): the ``openai`` package would
be one more dependency for a single POST, and its retry and timeout defaults would then decide
what a run measures.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from xling.backends.base import Backend, BackendError, Generation, GenerationConfig, Message, ModelIdentity, Request

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

_OPTIONS = ("base_url", "api_key", "concurrency", "timeout", "max_retries", "backoff")


@dataclass(frozen=True)
class _Settings:
    """The parsed ``-M`` options, with their defaults."""

    base_url: str
    api_key: str | None
    concurrency: int = 4
    timeout: float = 120.0
    max_retries: int = 3
    backoff: float = 1.0


def env_prefix(server: str) -> str:
    """The environment-variable prefix for a server name (``llama-cpp`` -> ``LLAMA_CPP``).

    Args:
        server: The ``<name>`` part of ``openai-api/<name>/<model>``.

    Returns:
        The upper-cased name with every non-alphanumeric character replaced by ``_``.
    """
    return re.sub(r"[^A-Za-z0-9]", "_", server).upper()


def build_payload(model: str, messages: Sequence[Message], config: GenerationConfig, sample: int) -> dict[str, Any]:
    """The JSON body of one ``/chat/completions`` request.

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


def parse_response(obj: Mapping[str, Any]) -> Generation:
    """Turn a ``/chat/completions`` response body into a :class:`Generation`.

    A reasoning trace sent apart from the answer (vLLM and DeepSeek put it in
    ``message.reasoning_content``, some servers in ``message.reasoning``) is put back in front
    of the answer as ``<think>...</think>``, the form a local model writes it in, so the record
    keeps it and the pipeline strips it before scoring in the one place it does so.

    Args:
        obj: The decoded JSON response.

    Returns:
        The answer text, whether the token limit cut it off, and its token count if reported.

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
    text = message.get("content") or ""
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if reasoning and not text.lstrip().startswith("<think>"):
        text = f"<think>{reasoning}</think>{text}"
    usage = obj.get("usage") or {}
    n_tokens = usage.get("completion_tokens")
    return Generation(
        text=text,
        truncated=choice.get("finish_reason") == "length",
        n_tokens=int(n_tokens) if n_tokens is not None else None,
    )


class OpenAIBackend(Backend):
    """A model served behind an OpenAI-compatible ``/chat/completions`` endpoint.

    Options (``-M key=value``):

    * ``base_url``: else ``<NAME>_BASE_URL``, else ``OPENAI_BASE_URL``.
    * ``api_key``: else ``<NAME>_API_KEY``, else ``OPENAI_API_KEY`` when the URL came from
      ``OPENAI_BASE_URL``; local servers need none.
    * ``concurrency``: requests in flight (default 4); also the pipeline's ``batch_size``.
    * ``timeout``: seconds per request (default 120).
    * ``max_retries``: retries on 429, 5xx and connection errors (default 3).
    * ``backoff``: first retry delay in seconds, doubled each retry (default 1); a 429's
      ``Retry-After`` is honoured instead.

    Args:
        model: ``<name>/<model>``, e.g. ``vllm/Qwen/Qwen2.5-7B-Instruct`` or ``ollama/qwen2.5:0.5b``.
        **options: The ``-M`` options, as strings.

    Raises:
        BackendError: The address or an option is malformed, or no base URL is configured.
    """

    def __init__(self, model: str, **options: str) -> None:
        server, sep, served_model = model.partition("/")
        if not sep or not server or not served_model:
            raise BackendError(
                f"model '{PROVIDER}/{model}' does not name a server and a model. Fix: write "
                f"{PROVIDER}/<server>/<model>, e.g. {PROVIDER}/vllm/Qwen/Qwen2.5-7B-Instruct "
                f"(reads VLLM_BASE_URL) or {PROVIDER}/ollama/qwen2.5:0.5b (reads OLLAMA_BASE_URL)"
            )
        self.server = server
        self.model = served_model
        self._settings = _parse_options(server, options)
        self.batch_size = self._settings.concurrency

    @property
    def base_url(self) -> str:
        """The server's base URL, without a trailing slash (``http://host:8000/v1``)."""
        return self._settings.base_url

    @property
    def url(self) -> str:
        """The endpoint every request is POSTed to."""
        return f"{self._settings.base_url}/chat/completions"

    @property
    def identity(self) -> ModelIdentity:
        # The server's weights are not visible from here, so the digest can only name where
        # the answers came from: the server's host and the model name it was asked for. The
        # same name on the same host after a redeploy gets the same digest.
        host = urllib.parse.urlsplit(self._settings.base_url).netloc
        digest = hashlib.sha256(f"{host}/{self.model}".encode()).hexdigest()
        return ModelIdentity(name=f"{PROVIDER}/{self.server}/{self.model}", digest=digest)

    def generate(self, requests: Sequence[Request], config: GenerationConfig) -> list[Generation]:
        """Send the requests, ``concurrency`` at a time, and return the answers in order.

        Raises:
            BackendError: A request failed after its retries, or the server's answer is not a
                chat completion. Requests not yet started are cancelled.
        """
        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=self._settings.concurrency, thread_name_prefix="xling-http") as pool:
            futures: list[Future[Generation]] = [pool.submit(self._complete, r, config) for r in requests]
            try:
                return [f.result() for f in futures]
            except BaseException:
                for f in futures:
                    f.cancel()
                raise

    def _complete(self, request: Request, config: GenerationConfig) -> Generation:
        payload = build_payload(self.model, request.messages, config, request.sample)
        obj = self._post(payload)
        try:
            return parse_response(obj)
        except ValueError as err:
            raise BackendError(f"{self.url} answered something that is not a chat completion: {err}. "
                               "Fix: check that the base URL points at an OpenAI-compatible server") from err

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        settings = self._settings
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if settings.api_key:
            headers["Authorization"] = f"Bearer {settings.api_key}"
        attempt = 0
        while True:
            http_request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(http_request, timeout=settings.timeout) as response:
                    raw = response.read()
            except urllib.error.HTTPError as err:
                detail = _error_detail(err)
                retryable = err.code == 429 or err.code >= 500
                if not retryable or attempt >= settings.max_retries:
                    raise BackendError(self._http_message(err.code, detail, attempt)) from err
                delay = _retry_after(err.headers.get("Retry-After")) if err.code == 429 else None
            except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError) as err:
                # URLError wraps refused connections and DNS failures; a read that runs past
                # the timeout raises socket.timeout (an alias of TimeoutError) directly.
                if attempt >= settings.max_retries:
                    raise BackendError(self._unreachable_message(err, attempt)) from err
                delay = None
            else:
                try:
                    obj = json.loads(raw)
                except ValueError as err:
                    raise BackendError(f"{self.url} answered with something that is not JSON ({raw[:200]!r}). "
                                       "Fix: check that the base URL points at an OpenAI-compatible server "
                                       "(it usually ends in /v1)") from err
                if not isinstance(obj, dict):
                    raise BackendError(f"{self.url} answered with JSON that is not an object ({raw[:200]!r})")
                return obj
            time.sleep(delay if delay is not None else settings.backoff * 2**attempt)
            attempt += 1

    def _fix_url(self) -> str:
        prefix = env_prefix(self.server)
        return f"set {prefix}_BASE_URL or pass -M base_url=..."

    def _http_message(self, status: int, detail: str, retries: int) -> str:
        prefix = env_prefix(self.server)
        where = f"POST {self.url} returned HTTP {status}"
        if retries:
            where += f" after {retries} retries"
        where += f": {detail}" if detail else ""
        if status in (401, 403):
            fix = f"check the API key: set {prefix}_API_KEY or pass -M api_key=..."
        elif status == 404:
            fix = (f"check the base URL (it usually ends in /v1; {self._fix_url()}) and that the server "
                   f"serves a model named '{self.model}' (GET {self.base_url}/models lists them)")
        elif status == 429:
            fix = "the server is rate-limiting: lower -M concurrency=... or raise -M max_retries=..."
        elif status >= 500:
            fix = "the server failed: check its log (out of memory? model still loading?) and retry"
        else:
            fix = "the server rejected the request: check the message above (unknown model? too many tokens?)"
        return f"{where}. Fix: {fix}"

    def _unreachable_message(self, err: BaseException, retries: int) -> str:
        reason = getattr(err, "reason", err)
        return (f"cannot reach {self.url} ({reason}) after {retries} retries. Fix: is the server running? "
                f"If it listens elsewhere, {self._fix_url()}; a slow server may need -M timeout=...")


def _parse_options(server: str, options: Mapping[str, str]) -> _Settings:
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise BackendError(f"unknown option(s) {', '.join(unknown)} for {PROVIDER}. Fix: use -M with one of "
                           f"{', '.join(_OPTIONS)}")
    prefix = env_prefix(server)
    own_url = options.get("base_url") or os.environ.get(f"{prefix}_BASE_URL")
    base_url = own_url or os.environ.get("OPENAI_BASE_URL") or (_OPENAI_URL if prefix == "OPENAI" else "")
    if not base_url:
        example = _TYPICAL_URLS.get(server.lower(), "http://localhost:8000/v1")
        raise BackendError(f"no base URL for the server '{server}'. Fix: set {prefix}_BASE_URL (e.g. "
                           f"export {prefix}_BASE_URL={example}) or pass -M base_url={example}")
    scheme = urllib.parse.urlsplit(base_url).scheme
    if scheme not in ("http", "https"):
        # urllib would also open file:// and ftp:// URLs; a model server is never one.
        raise BackendError(f"base URL '{base_url}' is not http(s). Fix: {prefix}_BASE_URL or -M base_url= "
                           f"must look like {_TYPICAL_URLS.get(server.lower(), 'http://localhost:8000/v1')}")
    api_key = options.get("api_key") or os.environ.get(f"{prefix}_API_KEY")
    if not api_key and (not own_url or prefix == "OPENAI"):
        # OPENAI_API_KEY goes only to the OPENAI_BASE_URL server (or OpenAI itself): sending it
        # to whatever VLLM_BASE_URL names would hand an OpenAI secret to another host.
        api_key = os.environ.get("OPENAI_API_KEY")
    return _Settings(
        base_url=base_url.rstrip("/"),
        api_key=api_key or None,
        concurrency=_number(options, "concurrency", int, 4, minimum=1),
        timeout=_number(options, "timeout", float, 120.0, minimum=0.001),
        max_retries=_number(options, "max_retries", int, 3, minimum=0),
        backoff=_number(options, "backoff", float, 1.0, minimum=0.0),
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


def _error_detail(err: urllib.error.HTTPError) -> str:
    """The server's own error message, which usually names the problem (unknown model, ...)."""
    try:
        raw = err.read(2000)
    except OSError:
        return ""
    try:
        obj = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace").strip()[:300]
    if isinstance(obj, dict):
        error = obj.get("error", obj)
        if isinstance(error, dict):
            return str(error.get("message") or error)[:300]
        return str(error)[:300]
    return str(obj)[:300]


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header in seconds, capped so a run cannot stall."""
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), 60.0)
    except ValueError:
        return None  # an HTTP date; fall back to exponential backoff
