"""Publishing to the Hugging Face Hub: adapters, and (through :mod:`medsyn.release`) datasets.

Every upload is a folder built first on disk and checked before anything is sent, so tests can verify exactly what
would be published without a network. Adapters use :func:`build_upload_folder` and :func:`validate_upload_folder`;
datasets are staged by :mod:`medsyn.release`. Both end in :func:`upload`, the one place that talks to the Hub: it
scans the folder for tokens, creates the repository (private unless told otherwise) and uploads the folder. The
token comes only from the environment (``HF_TOKEN``) or the ``hf auth login`` cache; it is never logged, and any
token-like string is redacted from the files that are uploaded.

Example:
    >>> redact("token hf_abcdefghijklmnopqrstuvwxyz0123 leaked")
    'token hf_*** leaked'
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from medsyn.errors import MedsynError, require

__all__ = [
    "redact",
    "get_token",
    "find_tokens",
    "upload",
    "build_upload_folder",
    "validate_upload_folder",
    "push_adapter",
    "UPLOAD_FILES",
]

logger = logging.getLogger(__name__)

_TOKEN = re.compile(r"hf_[A-Za-z0-9]{16,}")
UPLOAD_FILES = (
    "adapter_config.json",
    "adapter_model.safetensors",
    "README.md",
    "finetune.yaml",
    "metrics.json",
    "eval.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "chat_template.jinja",
)
"""Files copied into the upload folder when present (checkpoints and logs stay behind)."""
REQUIRED_FILES = ("adapter_config.json", "adapter_model.safetensors", "README.md")
TEXT_SUFFIXES = (".md", ".json", ".yaml", ".yml", ".txt", ".jinja")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Replace Hugging Face tokens (``hf_…``), the current ``HF_TOKEN`` and any given ``secrets`` with ``***``."""
    for secret in (*secrets, os.environ.get("HF_TOKEN", ""), os.environ.get("HUGGING_FACE_HUB_TOKEN", "")):
        if secret and len(secret) >= 8:
            text = text.replace(secret, "***")
    return _TOKEN.sub("hf_***", text)


def get_token() -> str | None:
    """The Hub token from ``HF_TOKEN`` / ``HUGGING_FACE_HUB_TOKEN`` or the login cache; never from a file of ours."""
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if token:
        return token
    try:
        from huggingface_hub import get_token as hf_get_token

        return hf_get_token()
    except ImportError:  # pragma: no cover - huggingface_hub is a core dependency
        return None


def build_upload_folder(adapter_dir: str | Path, out: str | Path) -> Path:
    """Copy what is published (adapter, tokenizer, card, recipe, metrics) from a training run into ``out``.

    Text files are redacted on the way (:func:`redact`).

    Args:
        adapter_dir: the ``output_dir`` of ``scripts/finetune.py`` (or any folder with a PEFT adapter and card).
        out: the folder to build; emptied first.

    Returns:
        ``out``.
    """
    adapter_dir, out = Path(adapter_dir), Path(out)
    missing = [f for f in REQUIRED_FILES if not (adapter_dir / f).exists()]
    if missing:
        raise MedsynError(f"{adapter_dir} lacks {missing}; pass the output_dir of a finished scripts/finetune.py run")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in UPLOAD_FILES:
        src = adapter_dir / name
        if not src.exists():
            continue
        if src.suffix in TEXT_SUFFIXES:
            (out / name).write_text(redact(src.read_text(encoding="utf-8")), encoding="utf-8")
        else:
            shutil.copy2(src, out / name)
    return out


def validate_upload_folder(folder: str | Path, base_model: Any = None) -> dict[str, Any]:
    """Check an upload folder: required files, card metadata, no tokens, and (optionally) that PEFT loads it.

    Args:
        folder: a folder from :func:`build_upload_folder`.
        base_model: a loaded base ``PreTrainedModel`` to put the adapter on; skipped when ``None``.

    Returns:
        The card's metadata as a dict.

    Raises:
        MedsynError: listing every problem found.
    """
    from huggingface_hub import ModelCard

    folder = Path(folder)
    problems = [f"missing {f}" for f in REQUIRED_FILES if not (folder / f).exists()]
    meta: dict[str, Any] = {}
    if (folder / "README.md").exists():
        meta = ModelCard.load(folder / "README.md").data.to_dict()
        if meta.get("library_name") != "peft":
            problems.append(f"card library_name is {meta.get('library_name')!r}, expected 'peft'")
        if not meta.get("base_model"):
            problems.append("card has no base_model")
    if (folder / "adapter_config.json").exists():
        config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
        if meta.get("base_model") and config.get("base_model_name_or_path") != meta["base_model"]:
            problems.append(
                f"adapter base_model_name_or_path {config.get('base_model_name_or_path')!r} differs from the card's "
                f"base_model {meta['base_model']!r}"
            )
    problems += [f"{name} contains something that looks like a Hub token" for name in find_tokens(folder)]
    if base_model is not None and not problems:
        peft = require("peft", "train", "Validating an adapter")
        try:
            peft.PeftModel.from_pretrained(base_model, folder)
        except (OSError, ValueError, KeyError, RuntimeError) as err:
            problems.append(f"PEFT could not load the adapter: {err}")
    if problems:
        raise MedsynError(f"upload folder {folder} is not valid: " + "; ".join(problems))
    return meta


def find_tokens(folder: str | Path) -> list[str]:
    """The files under ``folder`` (relative paths) whose text holds a Hub token or the current token's value."""
    folder = Path(folder)
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix in TEXT_SUFFIXES:
            text = path.read_text(encoding="utf-8", errors="replace")
        elif path.suffix == ".parquet":
            text = path.read_bytes().decode("utf-8", errors="replace")  # dictionary pages hold strings verbatim
        else:
            continue
        if redact(text) != text:
            found.append(str(path.relative_to(folder)))
    return found


def upload(
    folder: str | Path,
    repo_id: str,
    repo_type: str = "model",
    private: bool = True,
    commit_message: str = "Upload with medsyn",
) -> str:
    """Create ``repo_id`` (private unless ``private=False``) and upload ``folder`` to it; returns the repo URL.

    Raises:
        MedsynError: the folder holds something that looks like a token, or there is no token to push with.
    """
    from huggingface_hub import HfApi

    leaked = find_tokens(folder)
    if leaked:
        raise MedsynError(f"refusing to upload {folder}: {leaked} contain something that looks like a Hub token")
    token = get_token()
    if not token:
        raise MedsynError(
            f"no Hugging Face token to push to {repo_id}: set HF_TOKEN in the environment or run 'hf auth login'"
        )
    api = HfApi(token=token)
    url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type=repo_type)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type=repo_type, commit_message=commit_message)
    logger.info("pushed %s to %s (%s)", folder, redact(str(url)), "private" if private else "public")
    return redact(str(url))


def push_adapter(
    adapter_dir: str | Path,
    repo_id: str,
    private: bool = True,
    staging: str | Path | None = None,
    commit_message: str = "Upload LoRA adapter trained with medsyn",
) -> str:
    """Build, validate and upload an adapter folder to ``repo_id``; returns the repository URL.

    The token is read with :func:`get_token` and passed straight to ``huggingface_hub``; it is never logged.
    """
    adapter_dir = Path(adapter_dir)
    folder = build_upload_folder(adapter_dir, staging or adapter_dir / "upload")
    validate_upload_folder(folder)
    return upload(folder, repo_id, "model", private=private, commit_message=commit_message)
