"""Loopback HTTP helpers for testing and benchmarking served generation, with no dependency beyond asyncio.

- :class:`SimulatedEngine` answers ``/v1/models``, ``/v1/completions`` and ``/v1/chat/completions`` like an
  OpenAI-compatible engine (``"stream": true`` as server-sent events), after a latency of ``ttft + tokens /
  tokens_per_s``. It stands in for a fleet of real
  engines when measuring how many one medsyn process keeps busy.
- :class:`FaultProxy` sits in front of a real server and, request by request, answers 429 with ``Retry-After``,
  503, stalls past the client's timeout, sends malformed JSON, drops the connection, answers 400, or forwards.

Both bind to 127.0.0.1 only. ``python -m medsyn.serving.sim --port 9000`` runs one simulated engine.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["SimulatedEngine", "FaultProxy", "HttpRequest"]

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class HttpRequest:
    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method, self.path, self.headers, self.body = method, path, headers, body

    def json(self) -> Any:
        return json.loads(self.body or b"{}")


async def _read_request(reader: asyncio.StreamReader) -> HttpRequest | None:
    line = await reader.readline()
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    body = await reader.readexactly(int(headers.get("content-length", 0) or 0))
    return HttpRequest(method, path, headers, body)


def _response(
    status: int, body: bytes, headers: dict[str, str] | None = None, content_type: str = "application/json"
) -> bytes:
    head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", f"Content-Length: {len(body)}"]
    head += [f"Content-Type: {content_type}"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class _Server:
    """A keep-alive HTTP/1.1 server on 127.0.0.1 whose subclasses answer in :meth:`handle`."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.server: asyncio.AbstractServer | None = None
        self.requests = 0
        self.authorizations: set[str] = set()  # the Authorization headers seen, for tests of key handling

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> _Server:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, backlog=4096)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            if hasattr(self.server, "close_clients"):
                self.server.close_clients()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                self.requests += 1
                if "authorization" in request.headers:
                    self.authorizations.add(request.headers["authorization"])
                answer = await self.handle(request)
                if answer is None:  # drop the connection without an answer
                    break
                writer.write(answer)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            try:
                writer.close()
            except RuntimeError:  # the loop is closing
                pass

    async def handle(self, request: HttpRequest) -> bytes | None:
        raise NotImplementedError


class SimulatedEngine(_Server):
    """An OpenAI-compatible engine that takes ``ttft + n / tokens_per_s`` seconds per request.

    Args:
        port: 0 picks a free port.
        model: the served model name.
        chat_template: whether the model takes chat requests; without one, chat requests get the HTTP 500 that
            ``transformers serve`` gives for a base model.
        ttft: seconds to the first token.
        tokens_per_s: decode speed of one request (requests do not slow each other, as under batching).
        jitter: each request takes its time times a factor drawn uniformly from ``1 ± jitter`` (from its seed, so
            the same request takes the same time): real engines do not finish a batch's requests all at once.
        script: scripted answers: a request whose prompt holds a key gets that key's text instead of the
            simulated words (``--script FILE``, a JSON object).
    """

    def __init__(
        self,
        port: int = 0,
        model: str = "sim",
        ttft: float = 0.05,
        tokens_per_s: float = 200.0,
        chat_template: bool = True,
        jitter: float = 0.0,
        script: dict[str, str] | None = None,
    ) -> None:
        super().__init__(port)
        self.model, self.ttft, self.tokens_per_s = model, ttft, tokens_per_s
        self.chat_template, self.jitter = chat_template, jitter
        self.script = dict(script or {})

    async def handle(self, request: HttpRequest) -> bytes | None:
        if request.method == "GET" and request.path.startswith("/v1/models"):
            data = {"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "sim"}]}
            return _response(200, json.dumps(data).encode())
        if request.method != "POST" or request.path not in ("/v1/completions", "/v1/chat/completions"):
            return _response(404, b'{"error": "not found"}')
        if request.path == "/v1/chat/completions" and not self.chat_template:
            # what transformers serve answers for a base model: the request is fine, the model cannot take it
            return _response(
                500,
                b'{"detail": "Cannot use chat template functions because tokenizer.chat_template '
                b'is not set and no template argument was passed!"}',
            )
        body = request.json()
        n = int(body.get("max_tokens") or 16)
        seed = str(body.get("seed"))
        digest = hashlib.sha256(seed.encode()).digest()
        factor = 1 + self.jitter * (2 * int.from_bytes(digest[-4:], "big") / 0xFFFFFFFF - 1)
        await asyncio.sleep((self.ttft + n / self.tokens_per_s) * factor)
        words = ["жалобы", "на", "боль", "в", "пояснице", "слабость", "кашель", "головная", "температура"]
        text = " ".join(words[b % len(words)] for b in digest[: min(n, 32)])
        asked = json.dumps(body.get("prompt") or body.get("messages"), ensure_ascii=False)
        text = next((answer for key, answer in self.script.items() if key in asked), text)
        usage = {"prompt_tokens": len(str(body.get("prompt") or body.get("messages"))) // 4, "completion_tokens": n}
        choice: dict[str, Any] = {"index": 0, "finish_reason": "length"}
        if body.get("stream"):
            return _response(200, _sse(text, request.path == "/v1/chat/completions"), content_type="text/event-stream")
        if request.path == "/v1/completions":
            choice["text"] = text
            obj = "text_completion"
        else:
            choice["message"] = {"role": "assistant", "content": text}
            obj = "chat.completion"
        data = {"id": "sim", "object": obj, "created": int(time.time()), "model": self.model, "choices": [choice]}
        return _response(200, json.dumps(data | {"usage": usage}, ensure_ascii=False).encode())


def _sse(text: str, chat: bool) -> bytes:
    """``text`` as an OpenAI-style event stream, one event per word, then ``data: [DONE]``."""
    words = text.split(" ")
    events = []
    for i, word in enumerate(words):
        piece = word if i == 0 else " " + word
        choice = {"index": 0, "delta": {"content": piece}} if chat else {"index": 0, "text": piece}
        events.append("data: " + json.dumps({"choices": [choice]}, ensure_ascii=False))
    return ("\n\n".join([*events, "data: [DONE]"]) + "\n\n").encode()


class FaultProxy(_Server):
    """Forwards to ``upstream`` except where ``fault(i)`` names a fault for the i-th POST (0-based).

    Faults: ``"429"`` (with ``Retry-After: 1``), ``"503"``, ``"500"`` (always the same body), ``"stall"`` (no answer for ``stall_s``), ``"malformed"``
    (200 with a body that is not JSON), ``"drop"`` (close the connection), ``"400"``; ``None`` forwards.
    """

    def __init__(self, upstream: str, fault: Callable[[int], str | None], port: int = 0, stall_s: float = 5.0) -> None:
        super().__init__(port)
        self.upstream, self.fault, self.stall_s = upstream.rstrip("/"), fault, stall_s
        self.posts = 0
        self.log: list[str] = []
        self._client: Any = None

    async def handle(self, request: HttpRequest) -> bytes | None:
        fault = None
        if request.method == "POST":
            fault = self.fault(self.posts)
            self.posts += 1
        self.log.append(fault or "forward")
        if fault == "429":
            return _response(429, b'{"error": "overloaded"}', {"Retry-After": "1"})
        if fault == "503":
            return _response(503, b'{"error": "unavailable"}')
        if fault == "500":
            return _response(500, b'{"error": "model worker crashed: CUDA error: device-side assert triggered"}')
        if fault == "400":
            return _response(400, b'{"error": "bad request: prompt too long"}')
        if fault == "malformed":
            return _response(200, b'{"choices": [{"text": ')
        if fault == "drop":
            return None
        if fault == "stall":
            await asyncio.sleep(self.stall_s)
            return None
        from medsyn.backends.endpoint import http_client_module

        if self._client is None:
            self._client = http_client_module().AsyncClient(timeout=120)
        headers = {"content-type": "application/json"}
        upstream = await self._client.request(
            request.method, self.upstream + request.path, content=request.body, headers=headers
        )
        return _response(upstream.status_code, upstream.content)


async def run_fleet(count: int, fleet_file: str | Path, per_endpoint: int | None = None, **engine: Any) -> None:
    """``count`` simulated engines on as many free ports in this one process and event loop, until cancelled.

    Once all listen, their URLs go to ``fleet_file`` (one ``URL [per_endpoint]`` line each, written whole), so
    that a client can start on it. One loop for the whole fleet keeps its own cost small next to the client's.
    """
    engines = [await SimulatedEngine(**engine).start() for _ in range(count)]
    limit = f" {per_endpoint}" if per_endpoint else ""
    path = Path(fleet_file)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(f"{e.url}{limit}\n" for e in engines), encoding="utf-8")
    tmp.replace(path)
    try:
        await asyncio.Event().wait()
    finally:
        for e in engines:
            await e.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m medsyn.serving.sim", description="simulated engines")
    parser.add_argument("--port", type=int, help="the port of one engine")
    parser.add_argument("--fleet", type=int, help="this many engines on free ports, in one process")
    parser.add_argument("--fleet_file", help="with --fleet: where to write their URLs once they listen")
    parser.add_argument("--per_endpoint", type=int, help="with --fleet: the max in flight written on each line")
    parser.add_argument("--ttft", type=float, default=0.05)
    parser.add_argument("--tokens_per_s", type=float, default=200.0)
    parser.add_argument("--jitter", type=float, default=0.0, help="request times vary by this share either way")
    parser.add_argument("--model", default="sim")
    parser.add_argument("--no_chat_template", action="store_true", help="answer chat requests as a base model")
    parser.add_argument("--script", help="a JSON object {text in the prompt: the answer to give}")
    args = parser.parse_args()
    if (args.port is None) == (args.fleet is None) or (args.fleet is not None and not args.fleet_file):
        parser.error("give --port PORT for one engine, or --fleet N --fleet_file FILE for many")
    engine = dict(model=args.model, ttft=args.ttft, tokens_per_s=args.tokens_per_s, jitter=args.jitter)
    engine["chat_template"] = not args.no_chat_template
    if args.script:
        engine["script"] = json.loads(Path(args.script).read_text(encoding="utf-8"))

    async def one() -> None:
        await SimulatedEngine(args.port, **engine).start()
        await asyncio.Event().wait()

    try:
        asyncio.run(
            one() if args.fleet is None else run_fleet(args.fleet, args.fleet_file, args.per_endpoint, **engine)
        )
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
