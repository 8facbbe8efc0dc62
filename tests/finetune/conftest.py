"""Fixtures for the fine-tuning tests: a small instruction dataset and one short run on the tiny Llama."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from medsyn.text import phrase_keys, text_keys

LEXICON = ["боль в спине", "головная боль", "кашель", "температура", "слабость", "тошнота", "боль в горле", "насморк"]


class FakeExtractor:
    """Finds the lexicon's symptoms by lemma keys, like the graph's extractor, without building a graph."""

    def extract(self, text: str) -> list[str]:
        keys = text_keys(text)
        return [s for s in LEXICON if phrase_keys(s) <= keys]


@pytest.fixture(scope="session")
def fake_extractor() -> FakeExtractor:
    return FakeExtractor()


@pytest.fixture(scope="session")
def instruction_dir(tmp_path_factory: pytest.TempPathFactory, real_notes, fake_extractor) -> Path:
    """An instruction dataset folder built from 300 train and 60 dev-like notes."""
    from medsyn.finetune.data import build_instruction_rows, write_instruction_dataset

    rng = random.Random(0)
    splits, counts = {}, {}
    for split, notes in (("train", real_notes[:300]), ("dev", real_notes[-60:])):
        splits[split], counts[split] = build_instruction_rows(notes, fake_extractor, rng, continue_fraction=0.3)
    return write_instruction_dataset(tmp_path_factory.mktemp("instructions"), splits, counts, {"seed": 0})


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and a second OpenMP thread stalls when other jobs share the cores."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """Accelerate keeps one global state per process; each test that builds an Accelerator starts from scratch."""
    from accelerate.state import AcceleratorState, PartialState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)
    PartialState._reset_state()


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir) -> Path:
    """The tiny Llama re-initialised with larger weights, so that LoRA on attention alone can move its logits.

    With the default initializer_range (0.02) the frozen LM head bounds every logit near zero and no adapter can
    bring the loss much below log(vocab); a wider init makes "the loss fell" a meaningful assertion.
    """
    import shutil

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    path = tmp_path_factory.mktemp("tiny-llama-wide")
    config = AutoConfig.from_pretrained(tiny_model_dir)
    config.initializer_range = 0.2
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(path)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (tiny_model_dir / name).exists():
            shutil.copy(tiny_model_dir / name, path / name)
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, tiny_lm_dir, instruction_dir):
    """One short LoRA run of the tiny Llama: ``(TrainResult, args)``."""
    from medsyn.finetune.args import DataArguments, ModelArguments, TrainArguments
    from medsyn.finetune.train import train

    model_args = ModelArguments(model_name_or_path=str(tiny_lm_dir), lora_r=8, lora_alpha=16, lora_dropout=0.0)
    data_args = DataArguments(dataset=str(instruction_dir), max_seq_length=128, max_eval_samples=32)
    train_args = TrainArguments(
        output_dir=str(tmp_path_factory.mktemp("run")),
        learning_rate=1e-2,
        warmup_ratio=0.0,
        max_steps=20,
        per_device_train_batch_size=8,
        gradient_accumulation_steps=2,
        mixed_precision="no",
        logging_steps=5,
        save_steps=10,
        num_threads=1,
    )
    result = train(model_args, data_args, train_args, command="accelerate launch scripts/finetune.py --max_steps 20")
    return result, (model_args, data_args, train_args)
