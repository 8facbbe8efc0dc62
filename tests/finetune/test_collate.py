from __future__ import annotations

import pytest

from medsyn.finetune.collate import IGNORE_INDEX, PackedCollator, PaddedCollator, label_positions, tokenize_example
from medsyn.prompts import INSTRUCTION_WRITE

ROW = {"instruction": INSTRUCTION_WRITE, "input": "пациент, жалобы: кашель", "output": "Кашель третий день."}


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_tokenize_example_labels_answer_only(tokenizer):
    ex = tokenize_example(tokenizer, ROW, max_seq_length=128)
    n_prompt = sum(label == IGNORE_INDEX for label in ex["labels"])
    assert ex["labels"][:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert ex["labels"][n_prompt:] == ex["input_ids"][n_prompt:]
    assert ex["input_ids"][-1] == tokenizer.eos_token_id
    assert "Кашель третий день." in tokenizer.decode(ex["input_ids"][n_prompt:])
    assert tokenizer.decode(ex["input_ids"][:n_prompt]).rstrip().endswith("### Ответ:")


def test_tokenize_example_cuts_long_answers_and_drops_long_prompts(tokenizer):
    n_prompt = tokenize_example(tokenizer, ROW, 1000)["labels"].count(IGNORE_INDEX)
    ex = tokenize_example(tokenizer, dict(ROW, output="боль " * 200), max_seq_length=n_prompt + 16)
    assert len(ex["input_ids"]) == n_prompt + 16 and ex["input_ids"][-1] != tokenizer.eos_token_id
    assert tokenize_example(tokenizer, ROW, max_seq_length=n_prompt + 4) is None


def test_packed_collator_resets_positions_and_masks_boundaries():
    examples = [
        {"input_ids": [5, 6, 7, 8], "labels": [-100, -100, 7, 8]},
        {"input_ids": [9, 10, 11], "labels": [9, 10, 11]},  # first token labelled: the collator must mask it
        {"input_ids": [12, 13], "labels": [-100, 13]},
    ]
    batch = PackedCollator()(examples)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9, 10, 11, 12, 13]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 0, 1, 2, 0, 1]]
    assert batch["labels"].tolist() == [[-100, -100, 7, 8, -100, 10, 11, -100, 13]]
    assert "attention_mask" not in batch and batch["num_examples"] == 3
    positions, targets = label_positions(batch["labels"])
    # the last token of one example never predicts the first token of the next
    assert 3 not in positions.tolist() and 6 not in positions.tolist()
    assert targets.tolist() == [7, 8, 10, 11, 13]


def test_packed_batch_has_no_padding(tokenizer, instruction_dir):
    from medsyn.finetune.collate import tokenize_rows
    from medsyn.finetune.data import load_instruction_split

    examples = tokenize_rows(tokenizer, load_instruction_split(instruction_dir, "train")[:8], 128)
    batch = PackedCollator()(examples)
    assert batch["input_ids"].shape[1] == sum(len(e["input_ids"]) for e in examples)
    assert (batch["input_ids"] == tokenizer.pad_token_id).sum() == 0


def test_packed_logits_match_separate_forward_passes(tiny_model_dir):
    """Packing is exact: no token attends across an example boundary."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="sdpa").eval()
    examples = [{"input_ids": list(range(5, 5 + n)), "labels": list(range(5, 5 + n))} for n in (7, 4, 9)]
    batch = PackedCollator()(examples)
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits[0]
        separate = torch.cat(
            [model(input_ids=torch.tensor([e["input_ids"]]), use_cache=False).logits[0] for e in examples]
        )
    torch.testing.assert_close(packed, separate, atol=1e-5, rtol=1e-4)


def test_padded_collator_masks_padding():
    batch = PaddedCollator(pad_token_id=0, pad_to=5)([{"input_ids": [3, 4], "labels": [-100, 4]}])
    assert batch["input_ids"].tolist() == [[3, 4, 0, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 0, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 4, -100, -100, -100]]
