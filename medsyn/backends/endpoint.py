"""Served generation: one backend for every OpenAI-compatible engine (TGI, vLLM, SGLang, llama.cpp, transformers).

Chat prompts go through ``huggingface_hub.AsyncInferenceClient.chat_completion``; plain-text prompts (base models,
adapter models trained on the instruction format) go to the OpenAI-compatible ``/v1/completions`` route, which all
of these engines serve. Requests are routed across endpoints by :class:`~medsyn.backends.routing.Router`, retried
with backoff on 429, 5xx, timeouts, dropped connections and malformed bodies, and fail for good on other 4xx
answers.

Engines differ in the fields they take beyond the OpenAI ones; :data:`ENGINES` says what each is sent, and every
note records the parameters that were actually sent. The engine is found from ``/v1/models`` (and TGI's
``/info``) at :meth:`EndpointBackend.load`, or named with ``engine``.

The API key comes only from ``MEDSYN_API_KEY`` or ``HF_TOKEN``; it is sent as a bearer token and never logged,
recorded or written.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsyn.backends.base import Backend, Generation, GenerationParams, Prompt, clean_generation
from medsyn.backends.routing import EndpointState, Router, backoff_delay
from medsyn.errors import BackendError, ConfigError, require

__all__ = ["ENGINES", "EndpointBackend", "RequestFailed", "read_endpoints", "engine_fields"]

logger = logging.getLogger(__name__)

# What each engine is sent beyond the OpenAI fields (max_tokens, temperature, top_p, seed, stop):
#   extra: how top_k / repetition_penalty travel; max_stop: how many stop strings it takes.
ENGINES: dict[str, dict[str, Any]] = {
    "vllm": {"extra": {"top_k": "top_k", "repetition_penalty": "repetition_penalty"}, "max_stop": None},
    "sglang": {"extra": {"top_k": "top_k", "repetition_penalty": "repetition_penalty"}, "max_stop": None},
    "llama.cpp": {"extra": {"top_k": "top_k", "repetition_penalty": "repeat_penalty"}, "max_stop": None},
    # TGI's OpenAI routes take no top_k; its completions route takes repetition_penalty, and at most 4 stops.
    "tgi": {"extra": {"repetition_penalty": "repetition_penalty"}, "max_stop": 4, "chat_extra": {}},
    # transformers serve refuses unknown fields (422); it maps frequency_penalty to repetition_penalty = 1 + fp.
    "transformers": {"extra": {"repetition_penalty": "frequency_penalty"}, "max_stop": None},
    "openai": {"extra": {}, "max_stop": 4},
}


def engine_fields(engine: str, params: GenerationParams, chat: bool) -> dict[str, Any]:
    """The sampling fields to send to ``engine``, as the engine names them."""
    spec = ENGINES[engine]
    body: dict[str, Any] = {"max_tokens": params.max_new_tokens, "temperature": params.temperature}
    if params.temperature > 0:
        body["top_p"] = params.top_p
    if params.stop:
        body["stop"] = list(params.stop[: spec["max_stop"]] if spec["max_stop"] else params.stop)
    extra = spec.get("chat_extra", spec["extra"]) if chat else spec["extra"]
    if "top_k" in extra and params.top_k and params.temperature > 0:
        body[extra["top_k"]] = params.top_k
    if "repetition_penalty" in extra and params.repetition_penalty != 1.0:
        name = extra["repetition_penalty"]
        body[name] = (
            round(params.repetition_penalty - 1.0, 6) if name == "frequency_penalty" else params.repetition_penalty
        )
    return body


class RequestFailed(BackendError):
    """A request that failed for good (a 4xx answer, or retries exhausted). ``kind`` names the fault."""

    def __init__(self, message: str, kind: str, endpoint: str, attempts: int) -> None:
        super().__init__(message)
        self.kind = kind
        self.endpoint = endpoint
        self.attempts = attempts


@dataclass
class _Fault(Exception):
    """One failed try, classified: ``overload`` (429), ``retry`` (5xx, timeout, connection, malformed) or ``fatal``."""

    outcome: str
    kind: str
    message: str
    retry_after: float | None = None


def read_endpoints(values: list[str]) -> list[str]:
    """URLs from ``--endpoint`` values: each is a URL or a file with one URL per line (``#`` comments)."""
    urls: list[str] = []
    for value in values:
        path = Path(value)
        if not value.startswith(("http://", "https://")) and path.is_file():
            lines = [ln.split("#", 1)[0].strip() for ln in path.read_text(encoding="utf-8").splitlines()]
            urls += [ln for ln in lines if ln]
        else:
            urls.append(value)
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"endpoint {url!r} is not an http(s) URL nor a file of URLs; pass e.g. --endpoint http://127.0.0.1:8000"
            )
    cleaned = [u.rstrip("/").removesuffix("/v1") for u in urls]
    if len(set(cleaned)) != len(cleaned):
        raise ConfigError(f"an endpoint is listed twice: {cleaned}")
    return cleaned


def http_client_module() -> Any:  # public: the serving helpers and the simulated engine use it too
    """The HTTP library that huggingface_hub uses (``httpx2`` for huggingface_hub >= 2, else ``httpx``)."""
    try:
        import httpx2

        return httpx2
    except ImportError:
        return require("httpx", "serve", "Served generation")


def _api_key() -> str | None:
    return os.environ.get("MEDSYN_API_KEY") or os.environ.get("HF_TOKEN") or None


class EndpointBackend(Backend):
    """Generate on one or many OpenAI-compatible served endpoints.

    Args:
        endpoints: base URLs (``http://host:port``), or files of URLs.
        model: the model name as served (vLLM checks it); ``None`` takes the one that ``/v1/models`` lists.
        prompt_format: ``chat`` (chat completions) or ``text`` (``/v1/completions``).
        engine: ``auto`` (found at load) or one of :data:`ENGINES`.
        max_concurrency: requests in flight per endpoint, at most.
        timeout: seconds per request.
        max_retries: retries per request after the first try.
        give_up_after: seconds with every endpoint failing before the run stops.
    """

    name = "endpoint"

    def __init__(
        self,
        endpoints: list[str],
        model: str | None = None,
        prompt_format: str = "text",
        engine: str = "auto",
        max_concurrency: int = 16,
        timeout: float = 120.0,
        max_retries: int = 5,
        give_up_after: float = 300.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
    ) -> None:
        if prompt_format not in ("chat", "text"):
            raise ConfigError(f"prompt_format must be chat or text for an endpoint, got {prompt_format!r}")
        if engine != "auto" and engine not in ENGINES:
            raise ConfigError(f"engine must be auto or one of {sorted(ENGINES)}, got {engine!r}")
        if max_concurrency < 1 or max_retries < 0 or timeout <= 0:
            raise ConfigError("max_concurrency >= 1, max_retries >= 0 and timeout > 0 are required")
        self.urls = read_endpoints(endpoints)
        self.model = model
        self.chat = prompt_format == "chat"
        self.engine = engine
        self.engines: dict[str, str] = {}
        self.served: dict[str, str | None] = {}
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.max_in_flight = max_concurrency * len(self.urls)
        self.router = Router([EndpointState(u, max_concurrency) for u in self.urls], give_up_after=give_up_after)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: Any = None
        self._chat_clients: dict[str, Any] = {}

    # ----------------------------------------------------------------- set-up

    def load(self) -> None:
        """Ask each endpoint which models it serves and which engine it runs; fail early on a wrong model name."""
        httpx = http_client_module()
        headers = self._headers()
        reachable = 0
        for url in self.urls:
            try:
                with httpx.Client(timeout=min(self.timeout, 10.0), headers=headers) as client:
                    models = client.get(f"{url}/v1/models")
                    ids, owners, listed = self._models(models)
                    engine = self.engine if self.engine != "auto" else self._detect(client, url, owners, listed)
            except httpx.TransportError as err:
                # Not fatal: the router retries it and the run stops early if no endpoint ever answers.
                logger.warning(
                    "endpoint %s did not answer at start (%s); it stays in rotation", url, type(err).__name__
                )
                self.engines[url], self.served[url] = self._unknown_engine, self.model
                continue
            reachable += 1
            if self.model and ids and self.model not in ids:
                raise BackendError(
                    f"endpoint {url} serves {ids}, not {self.model!r}; pass --model with one of those names"
                )
            self.engines[url] = engine
            self.served[url] = self.model or (ids[0] if ids else None)
            logger.info("endpoint %s: engine %s, model %s", url, engine, self.served[url])
        logger.info("%d of %d endpoints answered at start", reachable, len(self.urls))

    @property
    def _unknown_engine(self) -> str:
        """The engine assumed for an endpoint that has not said which it is: the one named, else plain OpenAI."""
        return self.engine if self.engine != "auto" else "openai"

    @staticmethod
    def _models(response: Any) -> tuple[list[str], list[str], list[dict[str, Any]]]:
        if response.status_code != 200:
            return [], [], []
        try:
            data = response.json().get("data", [])
            return [m["id"] for m in data], [str(m.get("owned_by", "")) for m in data], data
        except (ValueError, KeyError, TypeError, AttributeError):
            return [], [], []

    @staticmethod
    def _detect(client: Any, url: str, owners: list[str], listed: list[dict[str, Any]]) -> str:
        owner = owners[0].lower() if owners else ""
        if owner in ("vllm", "sglang"):
            return owner
        if owner in ("llamacpp", "llama.cpp"):
            return "llama.cpp"
        if listed and isinstance(listed[0].get("status"), dict):
            return "transformers"  # transformers serve tells whether each model is loaded
        try:
            info = client.get(f"{url}/info")
            if info.status_code == 200 and "model_id" in info.json():
                return "tgi"
        except Exception:  # noqa: BLE001 - any failure means "not TGI"
            pass
        return "openai"

    @staticmethod
    def _headers() -> dict[str, str]:
        key = _api_key()
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _ensure_session(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop and self._session is not None:
            return
        httpx = http_client_module()
        self._loop = loop
        self.router._changed = None  # its condition belongs to the loop it was made on
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=self.max_in_flight)
        # A plain client, not huggingface_hub's session: its offline switch (HF_HUB_OFFLINE) guards the Hub,
        # and would refuse requests to the user's own servers, loopback included.
        self._session = httpx.AsyncClient(headers=self._headers(), timeout=self.timeout, limits=limits)
        self._chat_clients = {}

    def _chat_client(self, url: str) -> Any:
        if url not in self._chat_clients:
            from huggingface_hub import AsyncInferenceClient

            session = self._session

            class _Client(AsyncInferenceClient):
                async def _get_async_client(self) -> Any:  # the shared plain session (see _ensure_session)
                    return session

            self._chat_clients[url] = _Client(base_url=f"{url}/v1", api_key=_api_key(), timeout=self.timeout)
        return self._chat_clients[url]

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.aclose()
        self._session, self._loop, self._chat_clients = None, None, {}

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
        """One note, routed and retried; raises :class:`RequestFailed` when it fails for good."""
        self._ensure_session()
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
                await self.router.release(endpoint, outcome, error, answered)
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
        the first piece moves on to the next one, and :class:`RequestFailed` says why when none answers.
        """
        httpx = http_client_module()
        chat = not isinstance(prompt, str)
        last: _Fault | None = None
        for url in self.urls:
            engine = self.engines.get(url) or self._unknown_engine
            served = self.served.get(url, self.model)
            body = engine_fields(engine, params, chat) | {"stream": True}
            if seed is not None:
                body["seed"] = int(seed)
            body |= {"messages": prompt} if chat else {"prompt": prompt}
            if served:
                body["model"] = served
            route = "/v1/chat/completions" if chat else "/v1/completions"
            started = False
            try:
                with httpx.Client(headers=self._headers(), timeout=self.timeout) as client:
                    with client.stream("POST", f"{url}{route}", json=body) as response:
                        if response.status_code >= 400:
                            response.read()
                            raise self._http_fault(
                                response.status_code, response.headers.get("retry-after"), response.text
                            )
                        for piece in _sse_pieces(response.iter_lines(), chat):
                            started = True
                            yield piece
                return
            except Exception as err:  # noqa: BLE001 - classified once, as for agenerate
                fault = err if isinstance(err, _Fault) else self._classify(err)
                if started:  # what was shown cannot be taken back: no other endpoint takes over mid-note
                    raise RequestFailed(f"the stream from {url} broke: {fault.message}", fault.kind, url, 1) from None
                last = fault
            logger.warning("streaming from %s failed: %s", url, last.message)
        assert last is not None
        raise RequestFailed(last.message, last.kind, self.urls[-1], len(self.urls))

    async def _send(self, url: str, prompt: Prompt, params: GenerationParams, seed: int | None) -> Generation:
        engine = self.engines.get(url) or self._unknown_engine
        served = self.served.get(url, self.model)
        chat = not isinstance(prompt, str)
        body = engine_fields(engine, params, chat)
        if seed is not None:
            body["seed"] = int(seed)
        started = time.perf_counter()
        try:
            if chat:
                text, finish, usage = await self._send_chat(url, served, prompt, body)
            else:
                text, finish, usage = await self._send_text(url, served, prompt, body)
        except _Fault:
            raise
        except Exception as err:  # noqa: BLE001 - classified here, once, for every engine and route
            raise self._classify(err) from None
        text, stopped = clean_generation(text, params.stop)
        meta = {
            "endpoint": url,
            "engine": engine,
            "served_model": served,
            "request_params": body,
            "latency_s": round(time.perf_counter() - started, 3),
        }
        finish = "stop" if stopped else finish
        return Generation(
            text, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0), finish, meta
        )

    async def _send_text(
        self, url: str, served: str | None, prompt: str, body: dict[str, Any]
    ) -> tuple[str, str, dict[str, Any]]:
        payload = {"prompt": prompt, **body} | ({"model": served} if served else {})
        response = await self._session.post(f"{url}/v1/completions", json=payload)
        if response.status_code >= 400:
            raise self._http_fault(response.status_code, response.headers.get("retry-after"), response.text)
        try:
            data = response.json()
            choice = data["choices"][0]
            text = choice["text"]
            if not isinstance(text, str):
                raise TypeError("text is not a string")
        except (ValueError, KeyError, IndexError, TypeError) as err:
            raise _Fault(
                "failure", "malformed", f"unreadable completion body ({err}): {response.text[:120]!r}"
            ) from None
        return text, choice.get("finish_reason") or "stop", data.get("usage") or {}

    async def _send_chat(
        self, url: str, served: str | None, messages: list[dict[str, str]], body: dict[str, Any]
    ) -> tuple[str, str, dict[str, Any]]:
        client = self._chat_client(url)
        known = {"max_tokens", "temperature", "top_p", "seed", "stop"}
        output = await client.chat_completion(
            messages,
            model=served,
            extra_body={k: v for k, v in body.items() if k not in known} or None,
            **{k: v for k, v in body.items() if k in known},
        )
        try:
            choice = output.choices[0]
            text = choice.message.content
            if not isinstance(text, str):
                raise TypeError("message content is not a string")
        except (AttributeError, IndexError, TypeError) as err:
            raise _Fault("failure", "malformed", f"unreadable chat completion ({err})") from None
        usage = output.usage
        tokens = {
            "prompt_tokens": getattr(usage, "prompt_tokens", 0),
            "completion_tokens": getattr(usage, "completion_tokens", 0),
        }
        return text, choice.finish_reason or "stop", tokens

    @staticmethod
    def _http_fault(status: int, retry_after: str | None, text: str) -> _Fault:
        detail = " ".join(str(text).split())[:200]
        if status == 429:
            return _Fault("overload", "http_429", f"HTTP 429 (overloaded): {detail}", _seconds(retry_after))
        if status == 408 or status >= 500:
            return _Fault("failure", f"http_{status}", f"HTTP {status}: {detail}", _seconds(retry_after))
        return _Fault("fatal", f"http_{status}", f"HTTP {status}: {detail}")

    def _classify(self, err: Exception) -> _Fault:
        httpx = http_client_module()
        response = getattr(err, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int) and status >= 400:
            text = ""
            try:
                text = response.text
            except Exception:  # noqa: BLE001 - a streamed body may be unreadable; the status says enough
                pass
            return self._http_fault(status, response.headers.get("retry-after"), text)
        name = type(err).__name__
        if isinstance(err, httpx.TimeoutException) or "Timeout" in name:
            return _Fault("failure", "timeout", f"no answer within {self.timeout:g} s")
        if isinstance(err, httpx.TransportError | ConnectionError | OSError):
            return _Fault("failure", "connection", f"{name}: {err}".strip())
        if isinstance(err, ValueError | KeyError | TypeError | AttributeError | IndexError):
            return _Fault("failure", "malformed", f"unreadable body ({name}: {err})"[:240])
        return _Fault("failure", "error", f"{name}: {err}"[:240])


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date; the backoff schedule is a fine stand-in


def _sse_pieces(lines: Iterator[str], chat: bool) -> Iterator[str]:
    """The text pieces of an OpenAI-style server-sent event stream (``data: {...}`` lines up to ``data: [DONE]``)."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            choices = json.loads(data).get("choices") or []
        except (ValueError, AttributeError):
            raise _Fault("failure", "malformed", f"unreadable stream event: {data[:120]!r}") from None
        if not choices:
            continue  # a usage-only event
        piece = (choices[0].get("delta") or {}).get("content") if chat else choices[0].get("text")
        if piece:
            yield piece
