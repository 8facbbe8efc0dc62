"""Tokenisation with answer-only labels, and padding-free packing of examples into one row.

An example is the instruction prompt (``### Задание … ### Ответ:``) followed by the answer and EOS. Only the answer
and EOS are learned: prompt tokens get label ``-100``.

:class:`PackedCollator` concatenates a micro-batch into a single row with no padding at all. ``position_ids``
restart at 0 for each example; with no ``attention_mask``, transformers reads those restarts as sequence boundaries
and builds a block-diagonal causal mask (flash-attention's varlen kernels do the same on GPU), so no token attends
across examples. The first token of every example is labelled ``-100`` so the last token of one example is never
trained to predict the start of the next.

:class:`PaddedCollator` is the usual right-padded batch, kept as the baseline for the benchmark.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from medsyn.prompts import render_instruction

__all__ = ["IGNORE_INDEX", "tokenize_example", "tokenize_rows", "PackedCollator", "PaddedCollator", "label_positions"]

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100


def tokenize_example(tokenizer: Any, row: Mapping[str, Any], max_seq_length: int) -> dict[str, list[int]] | None:
    """Tokenise one ``{instruction, input, output}`` row with labels on the answer only.

    The prompt and the answer are tokenised separately, exactly as generation will see the prompt; an answer that
    does not fit in ``max_seq_length`` is cut (then it has no EOS).

    Args:
        tokenizer: a transformers tokenizer with an EOS token.
        row: a row of the instruction dataset.
        max_seq_length: the longest example, in tokens.

    Returns:
        ``{"input_ids", "labels"}``, or ``None`` when the prompt leaves fewer than 8 tokens for the answer.
    """
    prompt = render_instruction(row["instruction"], row["input"])
    prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    answer_ids = tokenizer(" " + row["output"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    room = max_seq_length - len(prompt_ids)
    if room < 8:
        return None
    answer_ids = answer_ids[:room]
    return {"input_ids": prompt_ids + answer_ids, "labels": [IGNORE_INDEX] * len(prompt_ids) + answer_ids}


def tokenize_rows(
    tokenizer: Any, rows: Sequence[Mapping[str, Any]], max_seq_length: int
) -> list[dict[str, list[int]]]:
    """Tokenise rows with :func:`tokenize_example`, logging how many were dropped or cut."""
    out, dropped, cut = [], 0, 0
    for row in rows:
        example = tokenize_example(tokenizer, row, max_seq_length)
        if example is None:
            dropped += 1
            continue
        cut += example["input_ids"][-1] != tokenizer.eos_token_id
        out.append(example)
    logger.info(
        "tokenised %d examples (%d dropped: prompt too long; %d answers cut at %d tokens)",
        len(out),
        dropped,
        cut,
        max_seq_length,
    )
    return out


@dataclass
class PackedCollator:
    """Pack a list of tokenised examples into one padding-free row.

    Returns a dict of ``[1, total_tokens]`` long tensors: ``input_ids``, ``position_ids`` (restarting per example)
    and ``labels`` (``-100`` on prompts and on each example's first token), plus ``num_examples``.

    Example:
        >>> batch = PackedCollator()([{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]},
        ...                           {"input_ids": [8, 9], "labels": [-100, 9]}])
        >>> batch["position_ids"].tolist()
        [[0, 1, 2, 0, 1]]
    """

    def __call__(self, examples: Sequence[Mapping[str, list[int]]]) -> dict[str, Any]:
        import torch

        ids: list[int] = []
        pos: list[int] = []
        labels: list[int] = []
        for ex in examples:
            n = len(ex["input_ids"])
            ids += ex["input_ids"]
            pos += range(n)
            labels += [IGNORE_INDEX] + list(ex["labels"][1:])
        return {
            "input_ids": torch.tensor([ids], dtype=torch.long),
            "position_ids": torch.tensor([pos], dtype=torch.long),
            "labels": torch.tensor([labels], dtype=torch.long),
            "num_examples": len(examples),
        }


@dataclass
class PaddedCollator:
    """Right-pad a list of tokenised examples to ``pad_to`` (or the longest), with an attention mask.

    Args:
        pad_token_id: the id written into padding (its labels are ``-100``).
        pad_to: a fixed length to pad and cut to, or ``None`` for the longest example.
    """

    pad_token_id: int
    pad_to: int | None = None

    def __call__(self, examples: Sequence[Mapping[str, list[int]]]) -> dict[str, Any]:
        import torch

        length = self.pad_to or max(len(ex["input_ids"]) for ex in examples)
        ids, mask, labels = [], [], []
        for ex in examples:
            x, y = list(ex["input_ids"][:length]), list(ex["labels"][:length])
            pad = length - len(x)
            ids.append(x + [self.pad_token_id] * pad)
            mask.append([1] * len(x) + [0] * pad)
            labels.append(y + [IGNORE_INDEX] * pad)
        return {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "attention_mask": torch.tensor(mask, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            "num_examples": len(examples),
        }


def label_positions(labels: Any) -> tuple[Any, Any]:
    """Where the next-token loss is taken: positions ``t`` whose target ``labels[t + 1]`` is not ``-100``.

    Args:
        labels: a ``[batch, seq]`` long tensor.

    Returns:
        ``(positions, targets)``: for a single row, 1-D indices into the sequence and their target ids; for several
        rows, a ``[batch, seq]`` boolean mask and the flat targets.
    """
    import torch

    shifted = torch.cat([labels[:, 1:], torch.full_like(labels[:, :1], IGNORE_INDEX)], dim=1)
    keep = shifted != IGNORE_INDEX
    if labels.shape[0] == 1:
        positions = keep[0].nonzero().squeeze(-1)
        return positions, shifted[0, positions]
    return keep, shifted[keep]
