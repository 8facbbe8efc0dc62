import pytest

from medsyn.backends import GenerationParams
from medsyn.backends.endpoint import http_client_module
from medsyn.backends.engines import detect_engine, engine_fields, list_models, probe_chat
from medsyn.serving.sim import SimulatedEngine
from tests.backends.test_endpoint import _Loop


def test_engine_fields_follow_each_engine():
    p = GenerationParams(top_k=40, repetition_penalty=1.2, stop=["a", "b", "c", "d", "e", "f"])
    vllm = engine_fields("vllm", p, chat=False)
    assert vllm["top_k"] == 40 and vllm["repetition_penalty"] == 1.2 and len(vllm["stop"]) == 6
    tgi = engine_fields("tgi", p, chat=False)
    assert len(tgi["stop"]) == 4 and "top_k" not in tgi and tgi["repetition_penalty"] == 1.2
    assert "repetition_penalty" not in engine_fields("tgi", p, chat=True)
    assert engine_fields("llama.cpp", p, chat=True)["repeat_penalty"] == 1.2
    hf = engine_fields("transformers", p, chat=False)
    assert hf["frequency_penalty"] == pytest.approx(0.2) and "top_k" not in hf
    assert set(engine_fields("openai", p, chat=True)) == {"max_tokens", "temperature", "top_p", "stop"}
    greedy = engine_fields("vllm", GenerationParams(temperature=0.0), chat=False)
    assert "top_p" not in greedy and "top_k" not in greedy


@pytest.mark.parametrize("chat_template", [True, False])
def test_the_chat_probe_tells_a_chat_model_from_a_base_model(chat_template):
    loop = _Loop()
    try:
        engine = loop.run(SimulatedEngine(ttft=0.0, chat_template=chat_template).start())
        with http_client_module().Client(timeout=5) as client:
            ids, listed = list_models(client.get(f"{engine.url}/v1/models"))
            assert ids == ["sim"] and detect_engine(client, engine.url, listed) == "openai"
            probe = probe_chat(client, engine.url, "sim")
        assert probe.takes_chat is chat_template
        assert chat_template or probe.detail.startswith("HTTP 500: ") and "chat_template" in probe.detail
        loop.run(engine.stop())
    finally:
        loop.close()


def test_the_chat_probe_cannot_tell_when_nothing_answers():
    from tests.conftest import free_port

    with http_client_module().Client(timeout=2) as client:
        probe = probe_chat(client, f"http://127.0.0.1:{free_port()}", None)
    assert probe.takes_chat is None and "Connect" in probe.detail


def test_a_list_that_is_not_a_model_list_reads_as_empty():
    class Answer:
        def __init__(self, status, body):
            self.status_code, self._body = status, body

        def json(self):
            return self._body

    assert list_models(Answer(404, {})) == ([], [])
    assert list_models(Answer(200, {"data": [{"no_id": 1}]})) == ([], [])
    assert list_models(Answer(200, {"data": [{"id": "m", "owned_by": "vllm"}]}))[0] == ["m"]
