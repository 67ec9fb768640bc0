"""The one interface every model backend implements: turn chat requests into answers."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, replace
from typing import Callable, Iterator, Sequence, TypeVar

from xling.schema import Outcome

# -M options that change only how requests travel, never what the model answers: they are left
# out of record keys and of the default run directory, so lowering the concurrency after a 429
# or adding a replica resumes the same run.
TRANSPORT_OPTIONS = frozenset({"base_url", "api_key", "concurrency", "max_connections", "timeout",
                               "connect_timeout", "max_retries", "backoff", "stream"})


@dataclass(frozen=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class GenerationConfig:
    """What changes an answer. Everything here is part of each record's key."""

    temperature: float = 0.7
    top_p: float = 0.95
    max_new_tokens: int = 256
    seed: int = 0

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Request:
    """One answer to produce: a conversation and which sample of it this is.

    ``prompt_id`` and ``lang`` name the question; live backends ignore them, the replay backend
    looks answers up by them. ``max_new_tokens`` lowers the config's token cap for this request
    alone (a translation's length follows its source's): a server applies it per request, a
    local model to each batch as the largest cap in it.
    """

    messages: tuple[Message, ...]
    sample: int = 0
    prompt_id: str = ""
    lang: str = ""
    max_new_tokens: int | None = None


@dataclass(frozen=True)
class Generation:
    """A backend's answer: the raw text and whether the token limit cut it off.

    ``outcome`` says whether the model answered at all: a request the provider's filter blocked
    or that failed for good comes back as a Generation too (empty text, the cause in ``cause``),
    so one bad request never stops a run.
    """

    text: str
    truncated: bool = False
    n_tokens: int | None = None
    outcome: Outcome = Outcome.ANSWER
    cause: str = ""
    finish_reason: str = ""


def reopen_reasoning(prompt: str, answer: str) -> str:
    """The answer with its reasoning tag put back where the prompt opened it.

    Some chat templates open the reasoning block in the prompt (DeepSeek-R1's distills end it with
    "<think>\n"): the model's output then starts inside the block and only closes it. With the tag
    put back in front, an output the token limit cut off mid-thought is reasoning, not an answer
    (xling.detect.lexicon.strip_reasoning).
    """
    if prompt.rstrip().endswith("<think>") and not answer.lstrip().startswith("<think>"):
        return f"<think>{answer}"
    return answer


@dataclass(frozen=True)
class ModelIdentity:
    """Names a model exactly: the address the user gave and a digest of its weights or revision."""

    name: str
    digest: str

    def __str__(self) -> str:
        return f"{self.name}@{self.digest[:12]}" if self.digest else self.name


class Backend(ABC):
    """A model that answers chat requests.

    Subclasses implement :meth:`generate`; ``batch_size`` tells the pipeline how many requests
    to hand over at once (a local model batches them, an HTTP backend sends them concurrently).
    """

    batch_size: int = 8

    @property
    @abstractmethod
    def identity(self) -> ModelIdentity:
        """The model's name and digest, part of every record key."""

    @abstractmethod
    def generate(self, requests: Sequence[Request], config: GenerationConfig) -> list[Generation]:
        """Answer each request, in order."""

    def generate_stream(self, requests: Sequence[Request],
                        config: GenerationConfig) -> Iterator[list[tuple[int, Generation]]]:
        """Answer the requests, yielding ``(index, generation)`` pairs as they finish, in groups.

        The caller commits each group as it comes. A local model answers a batch at a time, so
        this default yields one group per ``batch_size``; a server backend overrides it to keep
        its connections busy and yield whatever has arrived every few hundred milliseconds.
        """
        for start in range(0, len(requests), self.batch_size):
            batch = requests[start:start + self.batch_size]
            yield list(enumerate(self.generate(batch, batch_config(batch, config)), start))

    def stats(self) -> dict[str, float]:
        """Live figures for the progress line (answers/s, in flight, retries...); none by default."""
        return {}

    def load(self) -> None:  # noqa: B027 - optional hook
        """Load weights or open connections now (else on the first generate)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release memory or connections."""


def batch_config(batch: Sequence[Request], config: GenerationConfig) -> GenerationConfig:
    """The config for one batch of a local model: the largest of its requests' own token caps,
    when every request has one, under the config's."""
    caps = [r.max_new_tokens for r in batch]
    if not caps or None in caps:
        return config
    return replace(config, max_new_tokens=min(config.max_new_tokens, max(caps)))


In = TypeVar("In")
Out = TypeVar("Out")


def map_groups(stream: Iterator[list[tuple[int, In]]],
               convert: Callable[[list[tuple[int, In]]], list[tuple[int, Out]]],
               first: list[tuple[int, Out]] | None = None) -> Iterator[list[tuple[int, Out]]]:
    """``stream`` (from :meth:`Backend.generate_stream`) with each group converted, after
    ``first`` (results known without asking).

    An error thrown in by the caller (Ctrl-C while it saves a group) is passed on to ``stream``,
    so what arrived meanwhile still comes out, converted, before the error is raised again.
    """
    try:
        if first:
            yield first
        for group in stream:
            yield convert(group)
    except GeneratorExit:
        raise
    except BaseException as err:
        try:
            rest = stream.throw(err)
        except BaseException:  # noqa: BLE001 - ``err`` is the error to report
            raise err from None
        yield convert(rest)
        raise
    finally:
        stream.close()


class BackendError(RuntimeError):
    """A backend that cannot be created or cannot answer, with the fix in its message."""
