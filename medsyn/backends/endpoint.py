"""Served generation: one backend for every OpenAI-compatible engine (TGI, vLLM, SGLang, llama.cpp, transformers).

Chat prompts go to ``/v1/chat/completions`` and plain-text prompts (base models, adapter models trained on the
instruction format) to ``/v1/completions``, which all of these engines serve. One asynchronous HTTP client carries
both routes and their streams. Requests are routed across endpoints by :class:`~medsyn.backends.routing.Router`,
retried with backoff on 429, 5xx, timeouts, dropped connections and malformed bodies, and fail for good on other
4xx answers. When most recent requests get the very same 5xx answer, the router stops the run and quotes it.

At :meth:`EndpointBackend.load` each endpoint is asked which models it serves and which engine it runs
(:mod:`medsyn.backends.engines`), and, when the prompt format is ``auto``, whether its model takes chat requests;
a model served without a chat template gets text prompts.

The API key comes only from ``MEDSYN_API_KEY`` or ``HF_TOKEN``; it is sent as a bearer token and never logged,
recorded or written.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsyn.backends.base import Backend, Generation, GenerationParams, Prompt, clean_generation
from medsyn.backends.engines import ENGINES, detect_engine, engine_fields, list_models, probe_chat
from medsyn.backends.routing import EndpointState, Router, backoff_delay
from medsyn.errors import BackendError, ConfigError, RequestFailed, require
from medsyn.models import DEFAULT_MODEL

__all__ = ["EndpointBackend", "read_endpoints", "http_client_module"]

logger = logging.getLogger(__name__)


@dataclass
class _Fault(Exception):
    """One failed try, classified by what the router does next.

    ``outcome`` is ``overload`` (a 429: the endpoint's concurrency is cut, and the request retried), ``failure``
    (5xx, timeout, dropped connection, malformed body: counted against the endpoint's health, and retried) or
    ``fatal`` (any other 4xx: the request itself is wrong and fails at once).
    """

    outcome: str
    kind: str
    message: str
    retry_after: float | None = None


def read_fleet(values: list[str]) -> dict[str, int | None]:
    """``{url: its own max in flight, or None}`` from ``--endpoint`` values.

    Each value is a URL or a fleet file: one endpoint per line, ``URL [max_in_flight]``, ``#`` starting a comment.
    An endpoint without a number takes ``--max_concurrency``.
    """
    entries: list[tuple[str, int | None, str]] = []  # (url, limit, where it was read)
    for value in values:
        path = Path(value)
        if value.startswith(("http://", "https://")) or not path.is_file():
            entries.append((value, None, "--endpoint"))
            continue
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if len(words) > 2 or (len(words) == 2 and not (words[1].isdigit() and int(words[1]) >= 1)):
                raise ConfigError(
                    f"{path}:{lineno} is {line.strip()!r}; a fleet line is URL [max_in_flight], e.g. "
                    "http://10.0.0.7:8000 32"
                )
            entries.append((words[0], int(words[1]) if len(words) == 2 else None, f"{path}:{lineno}"))
    fleet: dict[str, int | None] = {}
    for url, limit, where in entries:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"endpoint {url!r} ({where}) is not an http(s) URL nor a file of URLs; pass e.g. "
                "--endpoint http://127.0.0.1:8000"
            )
        cleaned = url.rstrip("/").removesuffix("/v1")
        if cleaned in fleet:
            raise ConfigError(f"the endpoint {cleaned} is listed twice ({where})")
        fleet[cleaned] = limit
    return fleet


def read_endpoints(values: list[str]) -> list[str]:
    """The URLs of :func:`read_fleet`."""
    return list(read_fleet(values))


def _proxy_for(url: str) -> str | None:
    """The proxy that the environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``) names for ``url``, if any."""
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def _mtime(path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def http_client_module() -> Any:
    """The HTTP library that huggingface_hub uses (``httpx2`` for huggingface_hub >= 2, else ``httpx``)."""
    try:
        import httpx2

        return httpx2
    except ImportError:
        return require("httpx", "serve", "Served generation")


def _api_key() -> str | None:
    return os.environ.get("MEDSYN_API_KEY") or os.environ.get("HF_TOKEN") or None


def _headers() -> dict[str, str]:
    key = _api_key()
    return {"Authorization": f"Bearer {key}"} if key else {}


class EndpointBackend(Backend):
    """Generate on one or many OpenAI-compatible served endpoints.

    Args:
        endpoints: base URLs (``http://host:port``), or files of URLs.
        model: the model name as served (vLLM checks it); ``None`` takes the one that ``/v1/models`` lists.
        prompt_format: ``chat`` (chat completions), ``text`` (``/v1/completions``) or ``auto`` (chat when the
            served model takes chat requests, found at load).
        engine: ``auto`` (found at load) or one of :data:`~medsyn.backends.engines.ENGINES`.
        max_concurrency: requests in flight per endpoint, at most.
        timeout: seconds per request.
        max_retries: retries per request after the first try.
        give_up_after: seconds with every endpoint failing before the run stops.
    """

    name = "endpoint"
    in_process = False
    # A served model with no chat template is taken to be one trained on medsyn's instruction format, as
    # ``medsyn serve`` serves it; a chat model gets the example-guided prompt.
    text_template = "instruction"

    def __init__(
        self,
        endpoints: list[str],
        model: str | None = None,
        prompt_format: str = "auto",
        engine: str = "auto",
        max_concurrency: int = 16,
        timeout: float = 120.0,
        max_retries: int = 5,
        give_up_after: float = 300.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
    ) -> None:
        if prompt_format not in ("auto", "chat", "text"):
            raise ConfigError(f"prompt_format must be auto, chat or text for an endpoint, got {prompt_format!r}")
        if engine != "auto" and engine not in ENGINES:
            raise ConfigError(f"engine must be auto or one of {sorted(ENGINES)}, got {engine!r}")
        if max_concurrency < 1 or max_retries < 0 or timeout <= 0:
            raise ConfigError("max_concurrency >= 1, max_retries >= 0 and timeout > 0 are required")
        self.sources = list(endpoints)
        self.max_concurrency = max_concurrency
        fleet = self._resolve(read_fleet(self.sources))
        self.urls = list(fleet)
        self._fleet_files = {v: _mtime(v) for v in self.sources if not v.startswith(("http://", "https://"))}
        self.model = model
        self.prompt_format = prompt_format
        self.chat = prompt_format == "chat"
        self.engine = engine
        self.engines: dict[str, str] = {}
        self.served: dict[str, str | None] = {}
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.router = Router([EndpointState(u, c) for u, c in fleet.items()], give_up_after=give_up_after)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sessions: dict[str, Any] = {}  # one connection pool per endpoint, made on first use
        self._tls: Any = None
        self._fields: dict[tuple[str, bool], tuple[GenerationParams, dict[str, Any]]] = {}

    @classmethod
    def from_config(cls, config: Any, adapter: str | None = None, template: str = "auto") -> EndpointBackend:
        # A served model has its adapter merged or loaded by the server; medsyn's default name means "as served".
        model = None if config.model in ("", DEFAULT_MODEL, "auto") else config.model
        prompt_format = config.prompt_format
        if prompt_format == "auto" and template == "instruction":
            prompt_format = "text"  # the instruction format is plain text, whatever the model takes
        return cls(
            endpoints=config.endpoint,
            model=model,
            prompt_format=prompt_format,
            engine=config.engine,
            max_concurrency=config.max_concurrency,
            timeout=config.timeout,
            max_retries=config.max_retries,
        )

    def label(self) -> str:
        served = sorted({m for m in self.served.values() if m})
        return f"endpoint {', '.join(self.urls)} ({', '.join(served) or 'model unknown'})"

    def job_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        served = sorted({m for m in self.served.values() if m})
        if served:  # unknown while no endpoint answers; then left out rather than compared
            fields["served_model"] = served[0] if len(served) == 1 else served
        return fields | {"prompt_format": "chat" if self.chat else "text"}

    # ----------------------------------------------------------------- set-up

    def load(self) -> None:
        """Ask each endpoint what it serves and runs, and whether it takes chat; fail early on a wrong model name."""
        httpx = http_client_module()
        reachable = 0
        probes: list[tuple[str, Any]] = []
        for url in self.urls:
            try:
                with httpx.Client(timeout=min(self.timeout, 10.0), headers=_headers()) as client:
                    ids, listed = list_models(client.get(f"{url}/v1/models"))
                    engine = self.engine if self.engine != "auto" else detect_engine(client, url, listed)
                    served = self.model or (ids[0] if ids else None)
                    if self.model and ids and self.model not in ids:
                        raise BackendError(
                            f"endpoint {url} serves {ids}, not {self.model!r}; pass --model with one of those names"
                        )
                    if self.prompt_format != "text":
                        probes.append((url, probe_chat(client, url, served)))
            except httpx.TransportError as err:
                # Not fatal: the router retries it and the run stops early if no endpoint ever answers.
                logger.warning(
                    "endpoint %s did not answer at start (%s); it stays in rotation", url, type(err).__name__
                )
                self.engines[url], self.served[url] = self._unknown_engine, self.model
                continue
            reachable += 1
            self.engines[url], self.served[url] = engine, served
            logger.info("endpoint %s: engine %s, model %s", url, engine, served)
        logger.info("%d of %d endpoints answered at start", reachable, len(self.urls))
        self._settle_format(probes)

    def _settle_format(self, probes: list[tuple[str, Any]]) -> None:
        """Chat or text, from what the endpoints said to one chat request each (see ``probe_chat``)."""
        refused = [(url, p.detail) for url, p in probes if p.takes_chat is False]
        if self.prompt_format == "chat" and refused:
            url, detail = refused[0]
            raise BackendError(
                f"endpoint {url} takes no chat requests ({detail}); pass --prompt_format text (or leave it auto), "
                "or serve a model with a chat template"
            )
        if self.prompt_format == "auto":
            self.chat = not refused
            if refused:
                url, detail = refused[0]
                logger.warning(
                    "endpoint %s takes no chat requests (%s); sending text prompts to /v1/completions", url, detail
                )

    @property
    def max_in_flight(self) -> int:  # type: ignore[override]
        """The fleet's capacity now: each endpoint's own limit, or ``max_concurrency``."""
        return self.router.capacity

    def _resolve(self, fleet: dict[str, int | None]) -> dict[str, int]:
        return {url: limit or self.max_concurrency for url, limit in fleet.items()}

    def refresh(self, force: bool = False) -> bool:
        """Re-read the fleet files when one changed (or ``force``, on SIGHUP): endpoints join and leave the run.

        A file that cannot be read or parsed leaves the fleet as it is, with a warning. Returns whether it changed.
        """
        if not self._fleet_files:
            return False
        mtimes = {v: _mtime(v) for v in self._fleet_files}
        if not force and mtimes == self._fleet_files:
            return False
        self._fleet_files = mtimes
        try:
            fleet = self._resolve(read_fleet(self.sources))
        except (OSError, ConfigError) as err:
            logger.warning("the fleet was not changed: %s", err)
            return False
        joined, left = self.router.update(fleet)
        engines = Counter(self.engines.values()).most_common(1)
        served = Counter(m for m in self.served.values() if m).most_common(1)
        for url in joined:  # a fleet serves one model on one kind of engine: a newcomer is taken to be like the rest
            self.engines.setdefault(url, engines[0][0] if engines else self._unknown_engine)
            self.served.setdefault(url, self.model or (served[0][0] if served else None))
        self.urls = list(fleet)
        if joined or left:
            logger.info(
                "fleet: %d joined%s, %d leaving%s; %d endpoints, %d requests in flight at most",
                len(joined),
                f" ({', '.join(joined[:4])}{' …' if len(joined) > 4 else ''})" if joined else "",
                len(left),
                f" ({', '.join(left[:4])}{' …' if len(left) > 4 else ''}; their requests in flight finish)"
                if left
                else "",
                len(fleet),
                self.max_in_flight,
            )
        return bool(joined or left)

    @property
    def _unknown_engine(self) -> str:
        """The engine assumed for an endpoint that has not said which it is: the one named, else plain OpenAI."""
        return self.engine if self.engine != "auto" else "openai"

    def _ensure_session(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        self._loop = loop
        self.router.rebind()
        self._sessions = {}

    def _session(self, url: str) -> Any:
        """The endpoint's own connection pool (aiohttp, made on first use on the running loop).

        aiohttp parses HTTP in C: about 0.5 ms of CPU per request against 1.8 ms for httpx, which matters at 4,096
        requests in flight. The router bounds the requests in flight, so the pool itself does not.
        """
        session = self._sessions.get(url)
        if session is None:
            session = self._sessions[url] = self._client(url, read_timeout=None)
        return session

    def _client(self, url: str, read_timeout: float | None) -> Any:
        import aiohttp

        # A plain client, not huggingface_hub's session: its offline switch (HF_HUB_OFFLINE) guards the Hub,
        # and would refuse requests to the user's own servers, loopback included. The proxy settings
        # (HTTP_PROXY, NO_PROXY…) are read once per endpoint here: aiohttp's trust_env reads them per request,
        # which costs more CPU than the request.
        timeout = aiohttp.ClientTimeout(total=None if read_timeout else self.timeout, sock_read=read_timeout)
        if self._tls is None:  # one TLS context: loading the system's certificates costs about 35 ms a context
            import ssl

            self._tls = ssl.create_default_context()
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60, ssl=self._tls)
        return aiohttp.ClientSession(connector=connector, headers=_headers(), timeout=timeout, proxy=_proxy_for(url))

    async def aclose(self) -> None:
        sessions, self._sessions, self._loop = self._sessions, {}, None
        for session in sessions.values():
            await session.close()

    # ----------------------------------------------------------------- requests

    def generate(
        self,
        prompts: list[Prompt],
        params: GenerationParams,
        seed: int | None = None,
        seeds: list[int] | None = None,
    ) -> list[Generation]:
        """Blocking batch call for callers without an event loop; runs the requests concurrently."""
        seeds = seeds or [seed if seed is not None else 0] * len(prompts)

        async def run() -> list[Generation]:
            try:
                return list(await asyncio.gather(*(self.agenerate(p, params, s) for p, s in zip(prompts, seeds))))
            finally:
                await self.aclose()

        return asyncio.run(run())

    async def agenerate(self, prompt: Prompt, params: GenerationParams, seed: int | None = None) -> Generation:
        """One note, routed and retried; raises :class:`~medsyn.errors.RequestFailed` when it fails for good."""
        self._ensure_session()
        key = hash(prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False))
        last: _Fault | None = None
        url = ""
        for retry in range(self.max_retries + 1):
            endpoint = await self.router.acquire()
            url = endpoint.url
            outcome, error, answered = "neutral", "", True
            try:
                generation = await self._send(url, prompt, params, seed)
                outcome = "ok"
                generation.meta["endpoint_retries"] = retry
                return generation
            except _Fault as fault:
                last, outcome, error = fault, fault.outcome, f"{fault.kind}: {fault.message}"
                answered = fault.kind not in ("connection", "timeout")
                if fault.outcome == "fatal":
                    outcome = "neutral"  # a 4xx is about the request, not the endpoint's health
                    raise RequestFailed(fault.message, fault.kind, url, retry + 1) from None
            finally:
                await self.router.release(endpoint, outcome, error, answered, key)
            if retry < self.max_retries:
                delay = backoff_delay(retry, self.backoff_base, self.backoff_cap, last.retry_after if last else None)
                logger.debug("retry %d of a request to %s in %.2f s after %s", retry + 1, url, delay, error)
                await asyncio.sleep(delay)
        assert last is not None
        raise RequestFailed(
            f"gave up after {self.max_retries + 1} tries: {last.message}", last.kind, url, self.max_retries + 1
        )

    def stream(self, prompt: Prompt, params: GenerationParams, seed: int | None = None) -> Iterator[str]:
        """Yield one note's text as the server streams it (``"stream": true``, server-sent events).

        The endpoints are tried in turn until one answers; an HTTP error, a dropped connection or a timeout before
        the first piece moves on to the next one, and :class:`~medsyn.errors.RequestFailed` says why when none
        answers. It runs the asynchronous stream on an event loop of its own, so call it where no loop runs (a
        worker thread, as Gradio's handlers are).
        """
        loop = asyncio.new_event_loop()
        pieces = self.astream(prompt, params, seed)
        try:
            while True:
                try:
                    yield loop.run_until_complete(pieces.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            loop.run_until_complete(pieces.aclose())
            loop.close()

    async def astream(self, prompt: Prompt, params: GenerationParams, seed: int | None = None) -> AsyncIterator[str]:
        """The pieces of one streamed note, as :meth:`stream` yields them."""
        last: _Fault | None = None
        for url in self.urls:
            async with self._client(
                url, read_timeout=self.timeout
            ) as client:  # a long note streams for long: no total
                route, payload, _, _ = self._request(url, prompt, params, seed)
                started = False
                try:
                    async with client.post(f"{url}{route}", json=payload | {"stream": True}) as response:
                        if response.status >= 400:
                            body = await response.text(errors="replace")
                            raise _http_fault(response.status, response.headers.get("retry-after"), body)
                        async for raw in response.content:
                            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                            piece = _sse_piece(line, route.endswith("chat/completions"))
                            if piece is None:
                                break
                            if piece:
                                started = True
                                yield piece
                    return
                except Exception as err:  # noqa: BLE001 - classified once, as for agenerate
                    fault = err if isinstance(err, _Fault) else self._classify(err)
                    if started:  # what was shown cannot be taken back: no other endpoint takes over mid-note
                        raise RequestFailed(
                            f"the stream from {url} broke: {fault.message}", fault.kind, url, 1
                        ) from None
                    last = fault
                logger.warning("streaming from %s failed: %s", url, last.message)
        assert last is not None
        raise RequestFailed(last.message, last.kind, self.urls[-1], len(self.urls))

    def _request(
        self, url: str, prompt: Prompt, params: GenerationParams, seed: int | None
    ) -> tuple[str, dict[str, Any], str, str | None]:
        """The route and JSON payload of one request to ``url``, with the engine and served model they are for."""
        engine = self.engines.get(url) or self._unknown_engine
        served = self.served.get(url, self.model)
        chat = not isinstance(prompt, str)
        cached = self._fields.get((engine, chat))
        if cached is None or cached[0] is not params:  # mapped once per engine and sampling parameters
            cached = self._fields[(engine, chat)] = (params, engine_fields(engine, params, chat))
        fields = dict(cached[1])
        if seed is not None:
            fields["seed"] = int(seed)
        payload = {"messages": prompt} if chat else {"prompt": prompt}
        payload |= fields | ({"model": served} if served else {})
        return ("/v1/chat/completions" if chat else "/v1/completions"), payload, engine, served

    async def _send(self, url: str, prompt: Prompt, params: GenerationParams, seed: int | None) -> Generation:
        route, payload, engine, served = self._request(url, prompt, params, seed)
        started = time.perf_counter()
        try:
            async with self._session(url).post(f"{url}{route}", json=payload) as response:
                status, retry_after, body = response.status, response.headers.get("retry-after"), await response.read()
        except Exception as err:  # noqa: BLE001 - classified here, once, for every engine and route
            raise self._classify(err) from None
        if status >= 400:
            raise _http_fault(status, retry_after, body.decode("utf-8", errors="replace"))
        text, finish, usage = _read_completion(body, chat=not isinstance(prompt, str))
        text, stopped = clean_generation(text, params.stop)
        meta = {
            "endpoint": url,
            "engine": engine,
            "served_model": served,
            "request_params": {k: v for k, v in payload.items() if k not in ("prompt", "messages", "model")},
            "latency_s": round(time.perf_counter() - started, 3),
        }
        finish = "stop" if stopped else finish
        return Generation(
            text, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0), finish, meta
        )

    def _classify(self, err: Exception) -> _Fault:
        import aiohttp

        name = type(err).__name__
        if isinstance(err, TimeoutError | asyncio.TimeoutError) or "Timeout" in name:
            return _Fault("failure", "timeout", f"no answer within {self.timeout:g} s")
        if isinstance(err, aiohttp.ClientConnectorError):  # no connection at all: refused, unreachable, no such host
            code = getattr(err.os_error, "errno", None)
            return _Fault("failure", "connection", f"cannot connect: {os.strerror(code) if code else err.os_error}")
        if isinstance(err, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError | ConnectionError | OSError):
            return _Fault("failure", "connection", f"{name}: {err}".strip())
        if isinstance(err, ValueError | KeyError | TypeError | AttributeError | IndexError):
            return _Fault("failure", "malformed", f"unreadable body ({name}: {err})"[:240])
        return _Fault("failure", "error", f"{name}: {err}"[:240])


def _read_completion(body: bytes, chat: bool) -> tuple[str, str, dict[str, Any]]:
    """The text, finish reason and usage of a completion or chat completion body."""
    try:
        data = json.loads(body)
        choice = data["choices"][0]
        text = choice["message"]["content"] if chat else choice["text"]
        if not isinstance(text, str):
            raise TypeError("the text is not a string")
    except (ValueError, KeyError, IndexError, TypeError) as err:
        text = body[:120].decode("utf-8", errors="replace")
        raise _Fault("failure", "malformed", f"unreadable completion body ({err}): {text!r}") from None
    return text, choice.get("finish_reason") or "stop", data.get("usage") or {}


def _http_fault(status: int, retry_after: str | None, text: str) -> _Fault:
    detail = " ".join(str(text).split())[:200]
    if status == 429:
        return _Fault("overload", "http_429", f"HTTP 429 (overloaded): {detail}", _seconds(retry_after))
    if status == 408 or status >= 500:
        return _Fault("failure", f"http_{status}", f"HTTP {status}: {detail}", _seconds(retry_after))
    return _Fault("fatal", f"http_{status}", f"HTTP {status}: {detail}")


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date; the backoff schedule is a fine stand-in


def _sse_piece(line: str, chat: bool) -> str | None:
    """The text of one server-sent event line (``data: {...}``): ``""`` for none, ``None`` at ``data: [DONE]``."""
    if not line.startswith("data:"):
        return ""
    data = line[5:].strip()
    if data == "[DONE]":
        return None
    try:
        choices = json.loads(data).get("choices") or []
    except (ValueError, AttributeError):
        raise _Fault("failure", "malformed", f"unreadable stream event: {data[:120]!r}") from None
    if not choices:
        return ""  # a usage-only event
    piece = (choices[0].get("delta") or {}).get("content") if chat else choices[0].get("text")
    return piece or ""
