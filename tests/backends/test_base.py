"""Tests of medsyn.backends.base: sampling parameters, cleaning a generation, request seeds and the micro-batcher."""

from __future__ import annotations

import asyncio
import threading

import pytest

from medsyn.backends.base import Backend, Generation, GenerationParams, MicroBatcher, clean_generation, request_seed
from medsyn.errors import ConfigError


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_new_tokens": 0}, "max_new_tokens must be >= 1, got 0"),
        ({"temperature": -0.1}, "temperature must be >= 0 (0 for greedy), got -0.1"),
        ({"top_p": 0.0}, "top_p must be in (0, 1], got 0.0"),
        ({"top_p": 1.5}, "top_p must be in (0, 1], got 1.5"),
        ({"top_k": -1}, "top_k must be >= 0 (0: no limit), got -1"),
        ({"repetition_penalty": 0.0}, "repetition_penalty must be > 0, got 0.0"),
    ],
)
def test_generation_params_reject_bad_values(kwargs, message):
    with pytest.raises(ConfigError) as err:
        GenerationParams(**kwargs)
    assert str(err.value) == message


def test_generation_params_accept_the_edges_and_round_trip():
    params = GenerationParams(max_new_tokens=1, temperature=0.0, top_p=1.0, top_k=0, repetition_penalty=1.0, stop=[])
    assert params.to_dict() == {
        "max_new_tokens": 1,
        "temperature": 0.0,
        "top_p": 1.0,
        "top_k": 0,
        "repetition_penalty": 1.0,
        "stop": [],
    }
    assert GenerationParams(**params.to_dict()) == params
    assert GenerationParams().stop is not GenerationParams().stop  # each instance has its own list


def test_clean_generation_cuts_at_the_first_stop_string():
    text = "Жалобы на кашель.\n\n### Следующая запись"
    assert clean_generation(text, ["###", "\n\n"]) == ("Жалобы на кашель.", True)
    # the earliest stop wins, whatever its place in the list
    assert clean_generation("а ### б\n\nв", ["\n\n", "###"]) == ("а", True)


def test_clean_generation_without_a_stop_only_strips():
    assert clean_generation("  Боль в пояснице.  \n", ["###"]) == ("Боль в пояснице.", False)
    assert clean_generation("Боль", []) == ("Боль", False)
    assert clean_generation("", ["###"]) == ("", False)
    assert clean_generation("### всё после стопа", ["###"]) == ("", True)


def test_clean_generation_drops_a_cut_multibyte_character():
    assert clean_generation("Жалобы на боль \ufffd", ["###"]) == ("Жалобы на боль", False)
    assert clean_generation("Жалобы\ufffd\ufffd###", ["###"]) == ("Жалобы", True)


def test_request_seed_is_deterministic_and_differs_by_task_and_attempt():
    seed = request_seed(0, "M54-00003-1a2b3c4d5e", 1)
    assert seed == request_seed(0, "M54-00003-1a2b3c4d5e", 1)
    others = {
        request_seed(1, "M54-00003-1a2b3c4d5e", 1),
        request_seed(0, "M54-00004-1a2b3c4d5e", 1),
        request_seed(0, "M54-00003-1a2b3c4d5e", 2),
    }
    assert seed not in others and len(others) == 3
    seeds = [request_seed(7, f"J06-{i:05d}", a) for i in range(200) for a in (1, 2)]
    assert all(0 <= s <= 0x7FFFFFFF for s in seeds)
    assert len(set(seeds)) == len(seeds)


class FakeBackend(Backend):
    """Answers each prompt with its upper-cased text and records every batch it is given."""

    name = "fake"

    def __init__(self, batch_size: int = 8, fail_on: str | None = None) -> None:
        self.batch_size = batch_size
        self.fail_on = fail_on
        self.calls: list[tuple[list, GenerationParams, list | None]] = []
        self.threads: set[str] = set()

    def load(self) -> None:
        return None

    def generate(self, prompts, params, seed=None, seeds=None):
        self.calls.append((list(prompts), params, seeds))
        self.threads.add(threading.current_thread().name)
        if self.fail_on in prompts:
            raise RuntimeError(f"model crashed on {self.fail_on}")
        return [Generation(str(p).upper(), 1, 2, "stop", {"seed": s}) for p, s in zip(prompts, seeds or [])]


def _gather(backend: Backend, requests):
    async def go():
        try:
            return await asyncio.gather(
                *(backend.agenerate(p, params, seed) for p, params, seed in requests), return_exceptions=True
            )
        finally:
            await backend.aclose()

    return asyncio.run(go())


def test_the_micro_batcher_batches_concurrent_requests_in_arrival_order():
    backend = FakeBackend(batch_size=3)
    params = GenerationParams(max_new_tokens=4)
    results = _gather(backend, [(f"n{i}", params, 100 + i) for i in range(7)])
    assert [r.text for r in results] == [f"N{i}" for i in range(7)]
    assert [r.meta["seed"] for r in results] == [100 + i for i in range(7)]
    assert [c[0] for c in backend.calls] == [["n0", "n1", "n2"], ["n3", "n4", "n5"], ["n6"]]
    assert [c[2] for c in backend.calls] == [[100, 101, 102], [103, 104, 105], [106]]
    assert len(backend.threads) == 1 and backend.threads.pop().startswith("medsyn-generate")
    assert backend._batcher is None  # aclose released it


def test_the_micro_batcher_never_mixes_parameters_in_a_batch():
    backend = FakeBackend()
    short, long = GenerationParams(max_new_tokens=4), GenerationParams(max_new_tokens=64)
    same_as_short = GenerationParams(max_new_tokens=4)
    results = _gather(backend, [("a", short, 1), ("b", long, 2), ("c", same_as_short, 3), ("d", long, 4)])
    assert [r.text for r in results] == ["A", "B", "C", "D"]
    assert [(c[0], c[1].max_new_tokens) for c in backend.calls] == [(["a", "c"], 4), (["b", "d"], 64)]


def test_a_failed_batch_fails_each_of_its_requests_and_not_the_next_batch():
    backend = FakeBackend(batch_size=2, fail_on="b")
    params = GenerationParams()
    results = _gather(backend, [("a", params, 1), ("b", params, 2), ("c", params, 3)])
    assert [type(r) for r in results] == [RuntimeError, RuntimeError, Generation]
    assert str(results[0]) == "model crashed on b" and results[0] is results[1]
    assert results[2].text == "C"


def test_a_batcher_is_made_for_each_event_loop():
    backend = FakeBackend()
    params = GenerationParams()

    async def one(prompt):
        gen = await backend.agenerate(prompt, params, 5)
        return gen.text, backend._batcher

    first_text, first = asyncio.run(one("x"))
    second_text, second = asyncio.run(one("y"))
    assert (first_text, second_text) == ("X", "Y")
    assert first is not second and second.loop is not first.loop
    first.close()
    second.close()


def test_micro_batcher_takes_at_least_one_request_per_batch():
    async def make():
        batcher = MicroBatcher(FakeBackend(), max_batch=0)
        batcher.close()
        return batcher.max_batch

    assert asyncio.run(make()) == 1


def test_the_default_stream_label_and_description():
    backend = FakeBackend()
    assert list(backend.stream("жалобы", GenerationParams(), seed=9)) == ["ЖАЛОБЫ"]
    assert backend.calls[-1][2] == [9]
    assert backend.label() == "fake" and backend.describe() == {"backend": "fake"} and backend.job_fields() == {}
    with pytest.raises(NotImplementedError, match="backend 'fake' cannot be built from a config"):
        FakeBackend.from_config(object())
