"""Tests of medsyn.serving.sim: the simulated OpenAI-compatible engine and the fault-injecting proxy, on loopback."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from medsyn.backends.endpoint import http_client_module
from medsyn.serving.sim import FaultProxy, SimulatedEngine
from tests.conftest import free_port, sim_process

WORDS = {"жалобы", "на", "боль", "в", "пояснице", "слабость", "кашель", "головная", "температура"}


def _run(coro_fn):
    """Run ``coro_fn(client)`` with an HTTP client, in a fresh event loop."""

    async def go():
        async with http_client_module().AsyncClient(timeout=10) as client:
            return await coro_fn(client)

    return asyncio.run(go())


async def _engine(**kw) -> SimulatedEngine:
    return await SimulatedEngine(**({"ttft": 0.0, "tokens_per_s": 5000.0} | kw)).start()


def test_the_engine_lists_its_model_on_the_port_it_was_given():
    port = free_port()

    async def check(client):
        engine = await _engine(port=port, model="sim-gemma")
        try:
            assert engine.port == port and engine.url == f"http://127.0.0.1:{port}"
            answer = await client.get(f"{engine.url}/v1/models")
            assert answer.status_code == 200
            assert answer.json() == {
                "object": "list",
                "data": [{"id": "sim-gemma", "object": "model", "owned_by": "sim"}],
            }
            missing = await client.get(f"{engine.url}/v2/nothing")
            assert (missing.status_code, missing.json()) == (404, {"error": "not found"})
            assert engine.requests == 2
        finally:
            await engine.stop()

    _run(check)


def test_port_zero_picks_a_free_port():
    async def check(client):
        engine = await _engine()
        try:
            assert engine.port > 0
            assert (await client.get(f"{engine.url}/v1/models")).status_code == 200
        finally:
            await engine.stop()

    _run(check)


def test_a_completion_is_deterministic_per_seed():
    async def check(client):
        engine = await _engine()
        try:
            url = f"{engine.url}/v1/completions"
            body = {"model": "sim", "prompt": "Жалобы на " * 8, "max_tokens": 6, "seed": 7}
            first = (await client.post(url, json=body, headers={"Authorization": "Bearer key-1"})).json()
            again = (await client.post(url, json=body)).json()
            other = (await client.post(url, json=body | {"seed": 8})).json()
        finally:
            await engine.stop()
        assert first["object"] == "text_completion" and first["model"] == "sim"
        (choice,) = first["choices"]
        assert choice["index"] == 0 and choice["finish_reason"] == "length"
        words = choice["text"].split(" ")
        assert len(words) == 6 and set(words) <= WORDS
        assert first["usage"] == {"prompt_tokens": len("Жалобы на " * 8) // 4, "completion_tokens": 6}
        assert again["choices"][0]["text"] == choice["text"]
        assert other["choices"][0]["text"] != choice["text"]
        assert engine.authorizations == {"Bearer key-1"}

    _run(check)


def test_latency_follows_ttft_and_decode_speed():
    async def check(client):
        engine = await _engine(ttft=0.05, tokens_per_s=40.0)
        try:
            started = time.monotonic()
            await client.post(f"{engine.url}/v1/completions", json={"prompt": "x", "max_tokens": 8, "seed": 1})
            one = time.monotonic() - started
            started = time.monotonic()
            await asyncio.gather(
                *(client.post(f"{engine.url}/v1/completions", json={"prompt": "x", "max_tokens": 8}) for _ in range(4))
            )
            four = time.monotonic() - started
        finally:
            await engine.stop()
        assert 0.25 <= one < 2.0  # 0.05 + 8 / 40
        assert four < 2 * one  # concurrent requests do not slow each other

    _run(check)


def test_chat_completions_and_a_base_model():
    async def check(client):
        chat = await _engine()
        base = await _engine(chat_template=False)
        body = {"messages": [{"role": "user", "content": "Жалобы"}], "max_tokens": 3, "seed": 2}
        try:
            answer = (await client.post(f"{chat.url}/v1/chat/completions", json=body)).json()
            refused = await client.post(f"{base.url}/v1/chat/completions", json=body)
            text_ok = await client.post(f"{base.url}/v1/completions", json={"prompt": "Жалобы", "max_tokens": 3})
        finally:
            await chat.stop()
            await base.stop()
        assert answer["object"] == "chat.completion"
        message = answer["choices"][0]["message"]
        assert message["role"] == "assistant" and len(message["content"].split(" ")) == 3
        assert refused.status_code == 500
        assert "tokenizer.chat_template is not set" in refused.json()["detail"]
        assert text_ok.status_code == 200

    _run(check)


def test_a_streamed_completion_joins_to_the_plain_one():
    async def check(client):
        engine = await _engine()
        body = {"prompt": "Жалобы", "max_tokens": 5, "seed": 11}
        try:
            plain = (await client.post(f"{engine.url}/v1/completions", json=body)).json()["choices"][0]["text"]
            streamed = await client.post(f"{engine.url}/v1/completions", json=body | {"stream": True})
            chat = await client.post(
                f"{engine.url}/v1/chat/completions",
                json={"messages": [{"role": "user", "content": "x"}], "max_tokens": 5, "seed": 11, "stream": True},
            )
        finally:
            await engine.stop()
        assert streamed.headers["content-type"] == "text/event-stream"
        events = [e for e in streamed.text.split("\n\n") if e]
        assert events[-1] == "data: [DONE]" and len(events) == 6
        pieces = [json.loads(e.removeprefix("data: "))["choices"][0]["text"] for e in events[:-1]]
        assert "".join(pieces) == plain and pieces[1].startswith(" ")
        chat_events = [e for e in chat.text.split("\n\n") if e][:-1]
        assert "".join(json.loads(e[6:])["choices"][0]["delta"]["content"] for e in chat_events) == plain

    _run(check)


def test_the_fault_proxy_answers_500_then_forwards():
    async def check(client):
        engine = await _engine()
        proxy = await FaultProxy(engine.url, lambda i: "500" if i == 0 else None, port=free_port()).start()
        body = {"prompt": "Жалобы", "max_tokens": 4, "seed": 3}
        try:
            crashed = await client.post(f"{proxy.url}/v1/completions", json=body)
            models = await client.get(f"{proxy.url}/v1/models")
            forwarded = await client.post(f"{proxy.url}/v1/completions", json=body)
            direct = await client.post(f"{engine.url}/v1/completions", json=body)
        finally:
            if proxy._client is not None:
                await proxy._client.aclose()
            await proxy.stop()
            await engine.stop()
        assert crashed.status_code == 500
        assert crashed.json() == {"error": "model worker crashed: CUDA error: device-side assert triggered"}
        assert models.status_code == 200 and models.json()["data"][0]["id"] == "sim"
        assert forwarded.status_code == 200 and forwarded.json()["choices"] == direct.json()["choices"]
        assert proxy.posts == 2 and proxy.log == ["500", "forward", "forward"]
        assert engine.requests == 3  # the 500 never reached the engine

    _run(check)


@pytest.mark.parametrize(
    ("fault", "status", "body"),
    [
        ("429", 429, b'{"error": "overloaded"}'),
        ("503", 503, b'{"error": "unavailable"}'),
        ("400", 400, b'{"error": "bad request: prompt too long"}'),
        ("malformed", 200, b'{"choices": [{"text": '),
    ],
)
def test_the_fault_proxy_answers_each_fault(fault, status, body):
    async def check(client):
        engine = await _engine()
        proxy = await FaultProxy(engine.url, lambda i: fault).start()
        try:
            answer = await client.post(f"{proxy.url}/v1/completions", json={"prompt": "x"})
        finally:
            await proxy.stop()
            await engine.stop()
        assert (answer.status_code, answer.content) == (status, body)
        assert (answer.headers.get("retry-after") == "1") is (fault == "429")
        assert engine.requests == 0 and proxy.log == [fault]

    _run(check)


def test_the_fault_proxy_drops_and_stalls():
    httpx = http_client_module()

    async def check(client):
        engine = await _engine()
        faults = {0: "drop", 1: "stall"}
        proxy = await FaultProxy(engine.url, faults.get, stall_s=1.0).start()
        try:
            with pytest.raises(httpx.TransportError):
                await client.post(f"{proxy.url}/v1/completions", json={"prompt": "x"})
            started = time.monotonic()
            with pytest.raises(httpx.TimeoutException):
                await client.post(f"{proxy.url}/v1/completions", json={"prompt": "x"}, timeout=0.2)
            assert time.monotonic() - started < 0.9
        finally:
            await proxy.stop()
            await engine.stop()
        assert proxy.log == ["drop", "stall"]

    _run(check)


def test_python_m_medsyn_serving_sim_serves_on_its_port():
    port = free_port()
    proc = sim_process(port, tokens_per_s=1000.0)
    try:
        client = http_client_module()
        answer = client.post(
            f"http://127.0.0.1:{port}/v1/completions", json={"prompt": "x", "max_tokens": 2, "seed": 1}, timeout=10
        )
        assert answer.status_code == 200 and len(answer.json()["choices"][0]["text"].split(" ")) == 2
    finally:
        proc.terminate()
        proc.wait(timeout=10)
