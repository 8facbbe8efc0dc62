"""Publish a trained adapter folder to the Hugging Face Hub.

    python hub/push_adapter.py --adapter runs/gemma-3-270m-ru-notes --repo_id USER/gemma-3-270m-ru-notes

Builds the upload folder (adapter, tokenizer, card, recipe, metrics; tokens redacted), validates it (the card's
metadata parses, PEFT loads the adapter onto its base model when ``--check_load`` is set) and uploads it. The token
comes only from ``HF_TOKEN`` or ``hf auth login``. ``--dry_run`` stops after validation and prints the folder.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

from medsyn.config import parse_args
from medsyn.hub import build_upload_folder, push_adapter, validate_upload_folder


@dataclass
class PushArgs:
    adapter: str = field(default="runs/gemma-3-270m-ru-notes", metadata={"help": "a finished scripts/finetune.py run"})
    repo_id: str | None = field(default=None, metadata={"help": "the Hub repository, e.g. USER/NAME"})
    private: bool = field(default=True, metadata={"help": "create the repository as private"})
    staging: str | None = field(default=None, metadata={"help": "where to build the upload folder"})
    check_load: bool = field(default=False, metadata={"help": "load the base model and the adapter with PEFT"})
    dry_run: bool = field(default=False, metadata={"help": "build and validate only; upload nothing"})


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S", level="INFO")
    (args,) = parse_args([PushArgs], argv, description=__doc__)
    staging = args.staging or f"{args.adapter}/upload"
    folder = build_upload_folder(args.adapter, staging)
    base = None
    if args.check_load:
        from medsyn.models import load_model_and_tokenizer

        base, _ = load_model_and_tokenizer(None, dtype="float32", device="cpu")
    meta = validate_upload_folder(folder, base_model=base)
    logging.info("upload folder %s is valid (base_model %s)", folder, meta["base_model"])
    if args.dry_run or not args.repo_id:
        print(folder)
        return 0
    print(push_adapter(args.adapter, args.repo_id, private=args.private, staging=staging))
    return 0


if __name__ == "__main__":
    sys.exit(main())
