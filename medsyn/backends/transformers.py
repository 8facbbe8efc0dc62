"""Local generation with transformers: any causal LM id or path, an optional PEFT adapter, batched with left padding."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from medsyn.backends.base import Backend, Generation, GenerationParams, Prompt, clean_generation
from medsyn.errors import BackendError, RequestFailed

__all__ = ["TransformersBackend"]

logger = logging.getLogger(__name__)


class TransformersBackend(Backend):
    """Generate with a local ``AutoModelForCausalLM``.

    Args:
        model: a Hub id, a local folder, or ``None`` for the embedded Gemma 3 270M.
        adapter: a PEFT adapter folder or id, merged into the model.
        dtype: ``auto``, ``bfloat16``, ``float16`` or ``float32``.
        device: ``cpu``, ``cuda``…; CUDA when available if ``None``.
        prompt_format: ``auto`` (chat messages when the tokenizer has a chat template), ``chat`` or ``text``.
        batch_size: the most prompts per forward batch when requests arrive one by one (:meth:`agenerate`).

    With ``seeds`` (one per prompt), each row samples from its own generator, so a note depends on its prompt
    and seed, not on which other prompts share its batch.
    """

    name = "transformers"

    def __init__(
        self,
        model: str | None = None,
        adapter: str | None = None,
        dtype: str = "auto",
        device: str | None = None,
        prompt_format: str = "auto",
        batch_size: int = 8,
    ) -> None:
        if prompt_format not in ("auto", "chat", "text"):
            raise BackendError(f"prompt_format must be auto, chat or text, got {prompt_format!r}")
        self.model_id = model
        self.adapter = adapter
        self.dtype = dtype
        self.device = device
        self.prompt_format = prompt_format
        self.batch_size = batch_size
        self.max_in_flight = 2 * batch_size  # one batch running, the next one filling
        self.model: Any = None
        self.tokenizer: Any = None
        self._stops: dict[tuple[str, ...], Any] = {}

    @classmethod
    def from_config(cls, config: Any, adapter: str | None = None, template: str = "auto") -> TransformersBackend:
        return cls(
            model=config.model,
            adapter=adapter,
            dtype=config.dtype,
            device=config.device,
            prompt_format=config.prompt_format,
            batch_size=config.batch_size,
        )

    @classmethod
    def check(cls, config: Any) -> None:
        from medsyn.models import check_model_path

        check_model_path(config.model)

    def job_fields(self) -> dict[str, Any]:
        return {"dtype": self.dtype}

    async def agenerate(self, prompt: Prompt, params: GenerationParams, seed: int | None = None) -> Generation:
        """One note from the batches in flight; the model's error on it becomes :class:`RequestFailed`."""
        try:
            return await super().agenerate(prompt, params, seed)
        except (RequestFailed, asyncio.CancelledError):
            raise
        except Exception as err:  # noqa: BLE001 - a local model's error fails the task, not the run
            raise RequestFailed(str(err), type(err).__name__) from err

    def load(self) -> None:
        from medsyn.models import load_model_and_tokenizer

        self.model, self.tokenizer = load_model_and_tokenizer(self.model_id, self.adapter, self.dtype, self.device)
        has_template = getattr(self.tokenizer, "chat_template", None) is not None
        if self.prompt_format == "chat" and not has_template:
            raise BackendError(
                f"prompt_format 'chat' needs a tokenizer with a chat template; {self.model_id!r} has none"
            )
        self.chat = self.prompt_format == "chat" or (self.prompt_format == "auto" and has_template)
        logger.info(
            "loaded %s on %s (%s prompts)",
            self.model_id or "the default model",
            self.model.device,
            "chat" if self.chat else "text",
        )

    def restrict_vocab(self, texts: Iterable[str], extra: Iterable[str] = ()) -> int:
        """Write only the tokens that ``texts`` and ``extra`` use (:func:`medsyn.models.restrict_output_vocab`).

        Returns the number of tokens kept.
        """
        from medsyn.models import restrict_output_vocab

        if self.model is None:
            raise BackendError("call load() before restrict_vocab()")
        kept = restrict_output_vocab(self.model, self.tokenizer, texts, extra)
        logger.info("output vocabulary narrowed to the %d tokens the real notes use", kept)
        return kept

    def _render(self, prompt: Prompt) -> str:
        if isinstance(prompt, str):
            return prompt
        return self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)

    def _encode(self, prompts: list[Prompt]) -> Any:
        if self.model is None:
            raise BackendError("call load() before generate()")
        texts = [self._render(p) for p in prompts]
        # Chat templates already start with BOS; adding it again would shift the model off its training format.
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=not self.chat)
        return batch.to(self.model.device)

    def _sampling(self, params: GenerationParams, seeds: list[int] | None) -> dict[str, Any]:
        sample = params.temperature > 0
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            "do_sample": sample,
            "repetition_penalty": params.repetition_penalty,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if sample and seeds is not None:
            # Greedy decoding over logits that a per-row sampler has reduced to the one token it drew.
            kwargs.update(do_sample=False, logits_processor=[_per_row_sampler(params, seeds, self.model.device)])
        elif sample:
            kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=params.top_k or None)
        return kwargs

    def _run(self, batch: Any, kwargs: dict[str, Any], params: GenerationParams) -> Any:
        import torch

        criteria = [*kwargs.pop("stopping_criteria", [])]
        stop = self._stop_criteria(tuple(params.stop)) if params.stop else None
        with torch.inference_mode():
            # Stopping at a stop string saves the tokens after it; the text is cut there anyway.
            return self.model.generate(**batch, **kwargs, stopping_criteria=criteria + ([stop] if stop else []))

    def _stop_criteria(self, stop: tuple[str, ...]) -> Any:
        """One ``StopStringCriteria`` per set of stop strings: building it reads and sorts the whole vocabulary
        (about 1 s for Gemma's 262k tokens), so it is built once, not per batch. ``None`` when the tokenizer cannot
        express the strings; the text is then cut after generation."""
        if stop not in self._stops:
            from transformers import StopStringCriteria

            try:
                self._stops[stop] = StopStringCriteria(self.tokenizer, list(stop))
            except ValueError as err:
                if "Stop string" not in str(err):
                    raise
                logger.warning("the tokenizer cannot express the stop strings; cutting the text after generation")
                self._stops[stop] = None
        return self._stops[stop]

    def generate(
        self,
        prompts: list[Prompt],
        params: GenerationParams,
        seed: int | None = None,
        seeds: list[int] | None = None,
    ) -> list[Generation]:
        import torch

        batch = self._encode(prompts)
        eos = self._eos_ids()
        if seeds is not None:  # per-row seeds: the loop that drops each row once it is done
            rows = _decode_rows(self.model, self.tokenizer, batch, params, seeds, eos)
        else:
            if seed is not None:
                torch.manual_seed(seed)
            out = self._run(batch, self._sampling(params, None), params)
            width = batch["input_ids"].shape[1]
            pad = self.tokenizer.pad_token_id
            rows = [[t for t in row[width:].tolist() if pad is None or t != pad] for row in out]
        results = []
        for new, mask in zip(rows, batch["attention_mask"]):
            raw = self.tokenizer.decode(new, skip_special_tokens=True)
            text, stopped = clean_generation(raw, params.stop)
            finish = "stop" if stopped or any(t in eos for t in new) else "length"
            results.append(Generation(text, int(mask.sum()), len(new), finish))
        return results

    def _eos_ids(self) -> set[int]:
        ids = self.model.generation_config.eos_token_id
        ids = set(ids if isinstance(ids, list) else [] if ids is None else [ids])
        return ids | ({self.tokenizer.eos_token_id} - {None})

    def stream(self, prompt: Prompt, params: GenerationParams, seed: int | None = None) -> Iterator[str]:
        """Yield the note's text as the model writes it (``TextIteratorStreamer`` over a generation thread).

        With a seed the note is the one :meth:`generate` gives with ``seeds=[seed]``. Closing the iterator stops
        the generation thread at its next token.
        """
        from transformers import StoppingCriteria, TextIteratorStreamer

        batch = self._encode([prompt])
        kwargs = self._sampling(params, None if seed is None else [seed])
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        stop = threading.Event()
        failure: list[BaseException] = []

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **_: Any) -> bool:
                return stop.is_set()

        def work() -> None:
            try:
                self._run(batch, kwargs | {"streamer": streamer, "stopping_criteria": [_Stop()]}, params)
            except Exception as err:  # noqa: BLE001 - raised again in the reading thread below
                failure.append(err)
                streamer.end()

        thread = threading.Thread(target=work, name="medsyn-stream", daemon=True)
        thread.start()
        try:
            yield from streamer
        finally:
            stop.set()
            thread.join()
        if failure:
            raise failure[0]

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model_id, "adapter": self.adapter}

    def label(self) -> str:
        from medsyn.models import adapter_label, model_label

        adapter = adapter_label(self.adapter)
        return model_label(self.model_id) + (f" + LoRA adapter {adapter}" if adapter else "") + ", in-process"


def _sample_rows(scores: Any, params: GenerationParams, generators: list[Any]) -> Any:
    """One token per row, each row drawn with its own generator (temperature, top-k, then top-p); argmax at T=0.

    Top-k comes first with ``torch.topk`` and top-p works on those k candidates only: the same distribution as
    transformers' warpers in the same order, without sorting the whole vocabulary (262k tokens for Gemma) per step.
    """
    import torch

    if params.temperature <= 0:
        return scores.argmax(-1)
    logits = scores.float() / params.temperature
    if params.top_k and params.top_k < logits.shape[-1]:
        values, index = logits.topk(params.top_k, dim=-1)
    else:
        values, index = logits.sort(dim=-1, descending=True)
    probs = torch.softmax(values, dim=-1)
    if params.top_p < 1:
        # keep the smallest head whose mass reaches top_p (the first token always stays)
        probs = probs.masked_fill(probs.cumsum(-1) - probs >= params.top_p, 0.0)
    picked = torch.cat([torch.multinomial(p, 1, generator=g) for p, g in zip(probs, generators)])
    return index.gather(1, picked.view(-1, 1)).view(-1)


def _per_row_sampler(params: GenerationParams, seeds: list[int], device: Any) -> Any:
    """:func:`_sample_rows` as a logits processor for ``generate`` (the streamed note): the drawn token is the only
    one left, so greedy decoding picks it."""
    import torch
    from transformers import LogitsProcessor

    generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]

    class PerRowSampler(LogitsProcessor):
        def __call__(self, input_ids: Any, scores: Any) -> Any:
            token = _sample_rows(scores, params, generators).view(-1, 1)
            return torch.full_like(scores, float("-inf")).scatter_(1, token, 0.0)

    return PerRowSampler()


def _decode_rows(
    model: Any, tokenizer: Any, batch: Any, params: GenerationParams, seeds: list[int], eos: set[int]
) -> list[list[int]]:
    """Sample a left-padded batch, each row with its own seed, and drop a row from the batch once it ends.

    A row ends at an end-of-sequence token, at a stop string or at ``max_new_tokens``. ``generate`` goes on
    computing finished rows until the last one ends; on a CPU a row costs the same whether or not it is done, and a
    batch of notes whose median is 49 tokens runs to the longest one's 120-160. Here the cache, mask and positions
    keep only the rows still writing. Each row's tokens are those ``generate`` with :func:`_per_row_sampler` and
    ``repetition_penalty`` draws (the same logits, up to float rounding of a smaller batch).

    Returns each row's new token ids (its end-of-sequence token included).
    """
    import torch
    from torch import nn
    from transformers import DynamicCache

    device = batch["input_ids"].device
    generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]
    ids, mask = batch["input_ids"], batch["attention_mask"]
    history = ids.clone()  # the rows' tokens so far (the penalty's context)
    positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache(config=model.config)
    live = list(range(len(seeds)))
    new: list[list[int]] = [[] for _ in seeds]
    tail = max((len(s) for s in params.stop), default=0) + 2
    step_ids, step_pos = ids, positions
    with torch.inference_mode():
        for _ in range(params.max_new_tokens):
            out = model(
                input_ids=step_ids,
                attention_mask=mask,
                position_ids=step_pos,
                cache=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            scores = out.logits[:, -1, :].float()
            if params.repetition_penalty != 1.0:  # over the row's tokens, its left padding left out as in generate
                width = scores.shape[-1]
                where = history.masked_fill(mask == 0, width)
                seen = nn.functional.pad(scores, (0, 1)).gather(1, where)
                seen = torch.where(seen < 0, seen * params.repetition_penalty, seen / params.repetition_penalty)
                scores = nn.functional.pad(scores, (0, 1)).scatter(1, where, seen)[:, :width]
            token = _sample_rows(scores, params, [generators[r] for r in live])
            keep = []
            for i, (row, t) in enumerate(zip(live, token.tolist())):
                new[row].append(t)
                text = tokenizer.decode(new[row][-tail:]) if params.stop else ""
                if t not in eos and not any(s in text for s in params.stop):
                    keep.append(i)
            if not keep:
                break
            history = torch.cat([history, token.view(-1, 1)], dim=1)
            step_pos = positions[:, -1:] + 1
            positions = torch.cat([positions, step_pos], dim=1)
            mask = torch.cat([mask, mask.new_ones(len(live), 1)], dim=1)
            step_ids = token.view(-1, 1)
            if len(keep) < len(live):
                index = torch.tensor(keep, device=device)
                cache.batch_select_indices(index)
                history, positions, mask, step_ids = history[index], positions[index], mask[index], step_ids[index]
                step_pos = step_pos[index]
                live = [live[i] for i in keep]
    return new
