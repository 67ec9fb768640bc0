"""A real OpenAI-compatible server on 127.0.0.1 for tests and benchmarks/serving.py.

HTTP/1.1 with keep-alive, written on asyncio streams so that one thread serves hundreds of
connections and thousands of requests a second. What it does with each request is decided by
``behave(body, n) -> Reply`` (``n``: the request's number, from 0): answer (streamed when asked),
after a delay, or fail in one of the ways real servers fail. It can be killed (every connection
cut) and restarted on the same port. It runs in a daemon thread and stops with :meth:`close`.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Reply:
    """What the server does with one request."""

    delay: float = 0.0  # seconds before the response starts
    status: int = 200
    error: dict | None = None  # the body's "error" object for a non-200 status
    retry_after: str | None = None
    text: str | None = None  # the answer; None: the last user message reversed, then "|<seed>"
    finish_reason: str | None = None  # None: "length" when max_tokens < 5, else "stop"
    # "drop": close the connection without answering; "truncate": cut the body in the middle;
    # "stall": send the first chunk of a streamed answer, then nothing for ``stall`` seconds.
    fault: str | None = None
    stall: float = 5.0
    chunk_delay: float = 0.0  # seconds between streamed chunks


AZURE_FILTER = {"code": "content_filter", "status": 400, "param": "prompt",
                "message": "The response was filtered due to the prompt triggering Azure OpenAI's content "
                           "management policy.",
                "innererror": {"code": "ResponsibleAIPolicyViolation",
                               "content_filter_result": {"hate": {"filtered": False, "severity": "safe"},
                                                         "violence": {"filtered": True, "severity": "medium"}}}}
OPENAI_FILTER = {"message": "Your request was rejected as a result of our safety system.",
                 "type": "invalid_request_error", "param": None, "code": "content_policy_violation"}


def echo(body: dict) -> str:
    """The default answer: the last user message reversed, then ``|`` and the seed."""
    return f"{body['messages'][-1]['content'][::-1]}|{body.get('seed')}"


class OpenAIServer:
    def __init__(self, behave: Callable[[dict, int], Reply] | None = None, port: int = 0) -> None:
        self.behave = behave or (lambda body, n: Reply())
        self.bodies: list[dict] = []
        self.connections = 0  # TCP connections accepted, over the server's life
        self.in_flight = 0
        self.max_in_flight = 0
        self.answered = 0  # whole answers sent
        self.port = port
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.AbstractServer | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="openai-server", daemon=True)
        self._thread.start()
        self.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _call(self, coroutine: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def start(self) -> None:
        self._call(self._start())

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True,
                                                  backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    def kill(self) -> None:
        """Stop listening and cut every open connection, as a crashed server would."""
        self._call(self._kill())

    async def _kill(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self.kill()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> "OpenAIServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- one connection ------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:] if line)}
                raw = await reader.readexactly(int(headers.get("content-length", "0")))
                if method == "GET":
                    data = json.dumps({"object": "list", "data": [{"id": "m", "object": "model"}]}).encode()
                    await self._send(writer, 200, data)
                    continue
                if path != "/v1/chat/completions":
                    await self._send(writer, 404, json.dumps({"error": {"message": f"no route {path}"}}).encode())
                    continue
                body = json.loads(raw)
                n = len(self.bodies)
                self.bodies.append(body)
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    keep = await self._respond(writer, body, self.behave(body, n))
                finally:
                    self.in_flight -= 1
                if not keep:
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            return
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    async def _send(self, writer: asyncio.StreamWriter, status: int, data: bytes,
                    extra: dict[str, str] | None = None) -> None:
        head = [f"HTTP/1.1 {status} X", "Content-Type: application/json", f"Content-Length: {len(data)}"]
        head += [f"{k}: {v}" for k, v in (extra or {}).items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        await writer.drain()

    async def _respond(self, writer: asyncio.StreamWriter, body: dict, reply: Reply) -> bool:
        """Send the reply; False when the connection must end."""
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.fault == "drop" or (reply.fault == "stall" and not body.get("stream")):
            if reply.fault == "stall":
                await asyncio.sleep(reply.stall)  # nothing at all, then the connection goes
            writer.transport.abort()
            return False
        if reply.status != 200:
            extra = {"Retry-After": reply.retry_after} if reply.retry_after is not None else {}
            await self._send(writer, reply.status, json.dumps({"error": reply.error or {"message": "error"}}).encode(),
                             extra)
            return True
        text = echo(body) if reply.text is None else reply.text
        finish = reply.finish_reason or ("length" if body.get("max_tokens", 99) < 5 else "stop")
        usage = {"prompt_tokens": 5, "completion_tokens": len(text), "total_tokens": 5 + len(text)}
        if not body.get("stream"):
            data = json.dumps({"id": "x", "object": "chat.completion", "usage": usage,
                               "choices": [{"index": 0, "finish_reason": finish,
                                            "message": {"role": "assistant", "content": text}}]}).encode()
            if reply.fault == "truncate":
                head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
                writer.write(head.encode() + data[:len(data) // 2])
                await writer.drain()
                writer.transport.abort()
                return False
            await self._send(writer, 200, data)
            self.answered += 1
            return True
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        step = max(1, len(text) // 3)
        pieces = [text[i:i + step] for i in range(0, len(text), step)] or [""]
        events = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": piece}, "finish_reason": None}]}
                  for piece in pieces]
        events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        events.append({"choices": [], "usage": usage})
        for number, event in enumerate(events):
            self._chunk(writer, f"data: {json.dumps(event)}\n\n".encode())
            await writer.drain()
            if number == 0 and reply.fault in ("stall", "truncate"):
                if reply.fault == "stall":
                    await asyncio.sleep(reply.stall)
                writer.transport.abort()
                return False
            if reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
        self._chunk(writer, b"data: [DONE]\n\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        self.answered += 1
        return True

    @staticmethod
    def _chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
