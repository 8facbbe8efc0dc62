"""``medsyn release dataset DIR`` and ``medsyn release kg``: build the upload folder, validate it, push it."""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from pathlib import Path

from medsyn.config import parse_args

logger = logging.getLogger(__name__)

__all__ = ["dataset_main", "kg_main"]


def _staging(out: str | None, name: str) -> Path:
    return Path(out) if out else Path(tempfile.mkdtemp(prefix=f"medsyn-{name}-"))


def _push(folder: Path, repo_id: str, public: bool, dry_run: bool, what: str) -> None:
    from medsyn.hub import upload

    if dry_run:
        print(f"dry run: {folder} is what would be pushed to {repo_id}")
        return
    print(upload(folder, repo_id, "dataset", private=not public, commit_message=f"Release {what} with medsyn"))


def dataset_main(argv: list[str] | None = None) -> int:
    """Build, validate and push a folder of generated notes as a Hub dataset."""
    from medsyn.errors import ConfigError
    from medsyn.release.notes import (
        DatasetReleaseArgs,
        build_dataset_release,
        read_notes_source,
        validate_dataset_release,
    )

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-"):  # the positional DIR
        argv = ["--source", argv[0], *argv[1:]]
    (args,) = parse_args([DatasetReleaseArgs], argv, description=dataset_main.__doc__, prog="medsyn release dataset")
    if not args.source:
        raise ConfigError("give the folder to release: medsyn release dataset DIR --repo_id USER/NAME")
    source = Path(args.source)
    already_built = (source / "README.md").exists() and not (source / "shards").exists()
    if already_built and not args.out:
        read_notes_source(source)  # a release folder: validated again and pushed as it is
        folder = source
    else:
        folder = _staging(args.out, "ru-notes")
        stats = build_dataset_release(args, folder)
        logger.info("built %s: %s", folder, json.dumps(stats["counts"]))
    report = validate_dataset_release(folder)
    print(json.dumps({"folder": str(folder), "configs": report}, ensure_ascii=False, indent=2))
    _push(folder, args.repo_id, args.public, args.dry_run, "synthetic notes")
    return 0


def kg_main(argv: list[str] | None = None) -> int:
    """Build, validate and push the knowledge graph as a Hub dataset."""
    from medsyn.release.kg import KGReleaseArgs, build_kg_release, validate_kg_release

    (args,) = parse_args([KGReleaseArgs], argv, description=kg_main.__doc__, prog="medsyn release kg")
    folder = _staging(args.out, "kg")
    build_kg_release(args, folder)
    report = validate_kg_release(folder)
    print(json.dumps({"folder": str(folder), "configs": report}, ensure_ascii=False, indent=2))
    _push(folder, args.repo_id, args.public, args.dry_run, "the knowledge graph")
    return 0
