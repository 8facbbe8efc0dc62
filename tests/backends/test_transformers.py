import pytest

from medsyn.backends import GenerationParams, get_backend
from medsyn.backends.base import clean_generation
from medsyn.errors import BackendError, ConfigError


def test_clean_generation():
    assert clean_generation(" Боль в спине.\n### Задание: x", ["###"]) == ("Боль в спине.", True)
    assert clean_generation("текст", ["###"]) == ("текст", False)
    assert clean_generation("периодически тя\ufffd", []) == ("периодически тя", False)


def test_params_are_validated():
    with pytest.raises(ConfigError, match="top_p"):
        GenerationParams(top_p=0)
    with pytest.raises(ConfigError, match="unknown backend"):
        get_backend("nope")


def test_batched_left_padded_generation_matches_one_by_one(tiny_model_dir):
    backend = get_backend("transformers", model=str(tiny_model_dir), dtype="float32", device="cpu")
    with pytest.raises(BackendError, match="load"):
        backend.generate(["x"], GenerationParams())
    backend.load()
    assert backend.tokenizer.padding_side == "left" and backend.chat is False
    params = GenerationParams(max_new_tokens=12, temperature=0, repetition_penalty=1.0, stop=[])
    prompts = ["Жалобы на боль", "Кашель и насморк в течение трёх дней, слабость"]
    batched = backend.generate(prompts, params)
    single = [backend.generate([p], params)[0] for p in prompts]
    assert [g.text for g in batched] == [g.text for g in single]
    assert all(g.completion_tokens > 0 and g.prompt_tokens > 0 for g in batched)
    assert batched[0].prompt_tokens < batched[1].prompt_tokens


def test_sampling_is_seeded(tiny_model_dir):
    backend = get_backend("transformers", model=str(tiny_model_dir), dtype="float32", device="cpu")
    backend.load()
    params = GenerationParams(max_new_tokens=10, temperature=1.0, stop=[])
    a = backend.generate(["Жалобы"], params, seed=1)[0].text
    assert (
        backend.generate(["Жалобы", "Кашель"], params, seeds=[5, 6])[0].text
        == backend.generate(["Жалобы"], params, seeds=[5])[0].text
    )
    assert a == backend.generate(["Жалобы"], params, seed=1)[0].text
    assert any(backend.generate(["Жалобы"], params, seed=s)[0].text != a for s in range(2, 6))


def test_per_row_sampler_draws_from_the_top_k_and_top_1_is_greedy(tiny_model_dir):
    backend = get_backend("transformers", model=str(tiny_model_dir), dtype="float32", device="cpu")
    backend.load()
    greedy = GenerationParams(max_new_tokens=10, temperature=0, repetition_penalty=1.0, stop=[])
    top1 = GenerationParams(max_new_tokens=10, temperature=1.0, top_k=1, repetition_penalty=1.0, stop=[])
    prompts = ["Жалобы на боль", "Кашель"]
    assert [g.text for g in backend.generate(prompts, top1, seeds=[1, 2])] == [
        g.text for g in backend.generate(prompts, greedy)
    ]
    wide = GenerationParams(max_new_tokens=10, temperature=1.5, top_k=0, top_p=1.0, repetition_penalty=1.0, stop=[])
    texts = {backend.generate(["Кашель"], wide, seeds=[s])[0].text for s in range(6)}
    assert len(texts) > 3  # seeds matter when the distribution is wide


def test_stream_yields_the_seeded_note_piece_by_piece(tiny_model_dir):
    backend = get_backend("transformers", model=str(tiny_model_dir), dtype="float32", device="cpu")
    backend.load()
    params = GenerationParams(max_new_tokens=16, temperature=1.0, stop=[])
    pieces = list(backend.stream("Жалобы на боль", params, seed=11))
    assert len(pieces) > 1  # it streams, not one block at the end
    assert clean_generation("".join(pieces), [])[0] == backend.generate(["Жалобы на боль"], params, seeds=[11])[0].text
    stream = backend.stream("Жалобы на боль", params, seed=11)
    assert next(stream) == pieces[0]
    stream.close()  # stops the generation thread; nothing hangs


def test_a_narrowed_vocabulary_writes_only_its_tokens_with_the_model_s_own_logits(tiny_model_dir):
    import torch

    backend = get_backend("transformers", model=str(tiny_model_dir), dtype="float32", device="cpu")
    with pytest.raises(BackendError, match="load"):
        backend.restrict_vocab(["боль"])
    backend.load()
    tok = backend.tokenizer
    batch = tok(["Жалобы на боль в груди"], return_tensors="pt")
    with torch.inference_mode():
        full = backend.model(**batch).logits[0, -1]
    kept = backend.restrict_vocab(["боль в груди, кашель"], extra=["\n"])
    allowed = set(tok("боль в груди, кашель", add_special_tokens=False)["input_ids"])
    allowed |= set(tok("\n", add_special_tokens=False)["input_ids"]) | set(tok.all_special_ids)
    assert kept == len(allowed) < len(tok) // 10
    with torch.inference_mode():
        narrow = backend.model(**batch).logits[0, -1]
    index = sorted(allowed)
    assert torch.allclose(narrow[index], full[index], atol=1e-5)  # the kept tokens' logits are the model's own
    assert torch.isinf(narrow).sum() == len(tok) - kept
    wide = GenerationParams(max_new_tokens=20, temperature=1.5, top_k=0, top_p=1.0, repetition_penalty=1.0, stop=[])
    prompt = backend._encode(["Жалобы"])
    for seed in range(4):
        out = backend._run(prompt, backend._sampling(wide, [seed]), wide)[0, prompt["input_ids"].shape[1] :]
        assert len(out) > 0 and set(out.tolist()) <= allowed  # sampled wide, yet only from the kept tokens


def test_stop_strings_stop_the_batch_and_their_criteria_are_built_once(tiny_model_dir):
    backend = get_backend("transformers", model=str(tiny_model_dir), dtype="float32", device="cpu")
    backend.load()
    free = GenerationParams(max_new_tokens=40, temperature=0, repetition_penalty=1.0, stop=[])
    text = backend.generate(["Жалобы на боль"], free)[0].text
    stop = next(ch for ch in text[5:] if ch.strip())  # a character the greedy note writes after its start
    params = GenerationParams(max_new_tokens=40, temperature=0, repetition_penalty=1.0, stop=[stop])
    for _ in range(2):
        cut = backend.generate(["Жалобы на боль"], params)[0]
        assert cut.finish_reason == "stop" and stop not in cut.text and text.startswith(cut.text)
        assert cut.completion_tokens < backend.generate(["Жалобы на боль"], free)[0].completion_tokens
    assert list(backend._stops) == [(stop,)]


def test_the_pruning_loop_draws_what_generate_draws_and_a_finished_row_leaves_the_others_alone(tiny_model_dir):
    from medsyn.backends.transformers import _decode_rows

    backend = get_backend("transformers", model=str(tiny_model_dir), dtype="float32", device="cpu")
    backend.load()
    prompts = ["Жалобы на боль", "Кашель и насморк в течение трёх дней, слабость", "Головная боль"]
    for params in (
        GenerationParams(max_new_tokens=14, temperature=0, repetition_penalty=1.3, stop=[]),
        GenerationParams(max_new_tokens=14, temperature=1.2, top_k=50, top_p=0.9, repetition_penalty=1.1, stop=[]),
    ):
        batch = backend._encode(prompts)
        seeds = [3, 4, 5]
        out = backend._run(batch, backend._sampling(params, seeds), params)[:, batch["input_ids"].shape[1] :]
        reference = [[t for t in row if t != backend.tokenizer.pad_token_id] for row in out.tolist()]
        eos = backend._eos_ids()
        assert _decode_rows(backend.model, backend.tokenizer, batch, params, seeds, eos) == reference
        # the first row ends at its fifth token; the other two rows go on to the same tokens as before
        ended = _decode_rows(backend.model, backend.tokenizer, batch, params, seeds, eos | {reference[0][4]})
        first_end = reference[0].index(reference[0][4])
        assert ended[0] == reference[0][: first_end + 1]
        for row, ref in zip(ended[1:], reference[1:]):
            assert row == ref[: next((i + 1 for i, t in enumerate(ref) if t == reference[0][4]), len(ref))]
