"""How busy xling keeps a server: generation throughput next to a bare client, and client overhead.

Against a real loopback server (tests/openai_server.py: asyncio, HTTP/1.1 keep-alive, streamed
answers), in one run, side by side on the same request bodies:

1. Long-tailed latencies (log-normal, median 0.5 s, clipped to 0.2-5 s, then scaled down by
   ``--scale`` so the run takes a minute): answers/s of ``pipeline.generate_missing`` through the
   openai-api backend (store commits included) and of bare ``httpx`` and ``aiohttp`` clients that
   keep N requests in flight, at N = 1, 4, 16, 64; xling's ratio to the faster bare client; and
   the slots busy on average.
2. Client overhead: requests/s against a server that answers at once (64 connections), xling
   streamed and not, next to bare httpx and bare aiohttp (and aiohttp on uvloop when installed).

Usage: python benchmarks/serving.py [--scale 0.1] [--repeat 2] [--overhead-only]
Targets (issue 10): ratio >= 0.95 at 4, 16 and 64 connections; overhead >= 1,000 requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from openai_server import OpenAIServer, Reply  # noqa: E402

from xling.backends.base import GenerationConfig, Message, Request  # noqa: E402
from xling.backends.openai_api import OpenAIBackend, build_payload  # noqa: E402
from xling.config import CompareConfig  # noqa: E402
from xling.pipeline import Planned, generate_missing  # noqa: E402
from xling.schema import Prompt  # noqa: E402
from xling.store import Store  # noqa: E402

GENERATION = GenerationConfig(max_new_tokens=64, seed=0)


def latency(text: str, scale: float) -> float:
    """The same long-tailed latency for the same question, whichever client asks."""
    question = text.split(" ", 1)[-1]  # without the run's tag
    rng = random.Random(hashlib.sha256(question.encode()).digest())
    return min(max(rng.lognormvariate(0.0, 1.0) * 0.5, 0.2), 5.0) * scale


def planned(n: int, tag: str) -> list[Planned]:
    out = []
    for i in range(n):
        # Same-length texts with zero-padded numbers: the pipeline's length sort keeps this order,
        # so both clients send the same bodies in the same order.
        prompt = Prompt(id=f"q{i:05d}", lang="en", category="history", variant="direct", text=f"{tag} question {i:05d}")
        out.append(Planned(f"{tag}{i:05d}", "openai-api/bench/m", prompt, 0,
                           Request((Message("user", prompt.text),), 0, prompt.id, "en")))
    return out


def run_xling(url: str, items: list[Planned], connections: int, stream: bool = True) -> float:
    backend = OpenAIBackend("bench/m", base_url=url, concurrency=str(connections), timeout="60",
                            stream="true" if stream else "false")
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.sqlite") as store:
        start = time.perf_counter()
        generate_missing(backend, items, store, CompareConfig(generation=GENERATION), lambda *a: None)
        elapsed = time.perf_counter() - start
        assert store.count_generations() == len(items)
    backend.close()
    return elapsed


def streamed_bodies(items: list[Planned]) -> list[bytes]:
    """The request bodies xling sends (streamed), for the bare clients to send the same."""
    bodies = []
    for p in items:
        payload = build_payload("m", p.request.messages, GENERATION, p.sample)
        payload.update(stream=True, stream_options={"include_usage": True})
        bodies.append(json.dumps(payload).encode())
    return bodies


def run_bare(url: str, items: list[Planned], connections: int, shared: bool = False) -> float:
    """A bare httpx client keeping ``connections`` requests in flight, reading each streamed
    answer to its end. One client per slot (the faster way, see openai_api.py), or with
    ``shared`` one client with a pool of ``connections``."""
    bodies = streamed_bodies(items)

    async def main() -> float:
        size = connections if shared else 1
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        clients = [httpx.AsyncClient(limits=limits, timeout=60) for _ in range(1 if shared else connections)]
        order = iter(bodies)

        async def worker(client: httpx.AsyncClient) -> None:
            for body in order:
                async with client.stream("POST", f"{url}/chat/completions", content=body,
                                         headers={"Content-Type": "application/json"}) as response:
                    response.raise_for_status()
                    async for _ in response.aiter_lines():
                        pass

        start = time.perf_counter()
        await asyncio.gather(*(worker(clients[i % len(clients)]) for i in range(connections)))
        elapsed = time.perf_counter() - start
        for client in clients:
            await client.aclose()
        return elapsed

    return asyncio.run(main())


def run_bare_aiohttp(url: str, items: list[Planned], connections: int, use_uvloop: bool = False) -> float:
    """The same bare client on aiohttp (one session per slot, one keep-alive connection each),
    to see whether another transport would lift the overhead; ``use_uvloop`` runs it on uvloop."""
    import aiohttp

    bodies = streamed_bodies(items)

    async def main() -> float:
        sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) for _ in range(connections)]
        order = iter(bodies)

        async def worker(session) -> None:
            for body in order:
                async with session.post(f"{url}/chat/completions", data=body,
                                        headers={"Content-Type": "application/json"}) as response:
                    response.raise_for_status()
                    async for _ in response.content:  # line by line, like aiter_lines
                        pass

        start = time.perf_counter()
        await asyncio.gather(*(worker(s) for s in sessions))
        elapsed = time.perf_counter() - start
        for session in sessions:
            await session.close()
        return elapsed

    if use_uvloop:
        import uvloop
        return uvloop.run(main())
    return asyncio.run(main())


def _optional(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def serve_in_child(scale: float | None) -> tuple[str, object]:
    """Start the loopback server in its own process, so that it does not share the client's
    interpreter lock: what is measured is the client. ``scale`` None: answer at once."""
    parent, child = multiprocessing.Pipe()

    def run(conn) -> None:
        behave = (lambda body, n: Reply()) if scale is None else (
            lambda body, n: Reply(delay=latency(body["messages"][-1]["content"], scale)))
        server = OpenAIServer(behave)
        conn.send(server.base_url)
        conn.recv()  # until the parent says stop
        server.close()

    process = multiprocessing.get_context("fork").Process(target=run, args=(child,), daemon=True)
    process.start()
    url = parent.recv()

    def stop() -> None:
        parent.send("stop")
        process.join(timeout=10)

    return url, stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=0.1, help="latency scale (1: 0.2-5 s per answer)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per client and N; the best is kept")
    parser.add_argument("--overhead-requests", type=int, default=4000)
    parser.add_argument("--overhead-only", action="store_true", help="skip the long-tailed table")
    args = parser.parse_args()
    if not args.overhead_only:
        long_tailed(args)
    overhead(args)


def long_tailed(args) -> None:
    scale = args.scale
    url, stop = serve_in_child(scale)
    print(f"long-tailed latencies: median {0.5 * scale:.3f} s, clipped to {0.2 * scale:.3f}-{5 * scale:.2f} s; "
          f"best of {args.repeat} runs each")
    print(f"{'N':>3} {'requests':>8} {'bare httpx':>10} {'bare aiohttp':>12} {'xling ans/s':>11} {'ratio':>6}"
          f" {'xling busy slots':>16}")
    for connections in (1, 4, 16, 64):
        n = max(40, connections * 16)
        best = {"bare": float("inf"), "xling": float("inf"), "aiohttp": float("inf")}
        for run in range(args.repeat):
            # Fresh bodies per run and client (a different tag), with the same latencies for
            # all: the tag does not enter the latency's seed.
            best["bare"] = min(best["bare"], run_bare(url, planned(n, f"b{connections}r{run}"), connections))
            best["xling"] = min(best["xling"], run_xling(url, planned(n, f"x{connections}r{run}"), connections))
            best["aiohttp"] = min(best["aiohttp"], run_bare_aiohttp(url, planned(n, f"a{connections}r{run}"),
                                                                    connections))
        busy = sum(latency(p.prompt.text, scale) for p in planned(n, "x")) / best["xling"]
        # The ratio is against the faster of the two bare clients.
        print(f"{connections:>3} {n:>8} {n / best['bare']:>10.1f} {n / best['aiohttp']:>12.1f} {n / best['xling']:>11.1f} "
              f"{min(best['bare'], best['aiohttp']) / best['xling']:>6.2f} {busy:>13.1f}/{connections:<2}")
    stop()


def overhead(args) -> None:
    url, stop = serve_in_child(None)
    n = args.overhead_requests
    bare = min(run_bare(url, planned(n, f"ob{r}"), 64) for r in range(args.repeat))
    xling = min(run_xling(url, planned(n, f"ox{r}"), 64) for r in range(args.repeat))
    whole = min(run_xling(url, planned(n, f"oj{r}"), 64, stream=False) for r in range(args.repeat))
    print(f"client overhead against an instant server (64 connections, {n} requests, best of {args.repeat}): "
          f"xling {n / xling:,.0f} req/s streamed, {n / whole:,.0f} req/s with -M stream=false; "
          f"bare httpx (streamed) {n / bare:,.0f} req/s")
    # Other transports, bare, on the same bodies: what switching xling's transport could give.
    if _optional("aiohttp"):
        aio = min(run_bare_aiohttp(url, planned(n, f"oa{r}"), 64) for r in range(args.repeat))
        line = f"bare aiohttp (streamed) {n / aio:,.0f} req/s"
        if _optional("uvloop"):
            aiou = min(run_bare_aiohttp(url, planned(n, f"ou{r}"), 64, use_uvloop=True) for r in range(args.repeat))
            line += f", on uvloop {n / aiou:,.0f} req/s"
        print(line)
    stop()


if __name__ == "__main__":
    main()
