"""Where medsyn finds its packaged data and keeps its caches.

The cache root is ``$MEDSYN_HOME`` if set, else ``$XDG_CACHE_HOME/medsyn``, else ``~/.cache/medsyn``. It holds the
default knowledge graph (``kg/medsyn-kg.json``) and the converted default model (``models/``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path

__all__ = ["resource_path", "cache_dir", "default_graph_path", "models_dir", "rumedtop3_path", "staged_dir"]


def resource_path(*parts: str) -> Path:
    """Path of a file shipped inside the package under ``medsyn/resources``."""
    return Path(str(files("medsyn").joinpath("resources", *parts)))


def cache_dir() -> Path:
    """The medsyn cache root, created on first use."""
    if os.environ.get("MEDSYN_HOME"):
        root = Path(os.environ["MEDSYN_HOME"])
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "medsyn"
    root.mkdir(parents=True, exist_ok=True)
    return root


def default_graph_path() -> Path:
    """The documented default location of the knowledge graph: ``<cache>/kg/medsyn-kg.json``."""
    return cache_dir() / "kg" / "medsyn-kg.json"


def models_dir() -> Path:
    """Where converted models are cached."""
    path = cache_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def rumedtop3_path(split: str) -> Path:
    """The packaged RuMedTop3 split (``train`` or ``dev``)."""
    if split not in ("train", "dev"):
        raise ValueError(f"RuMedTop3 split must be 'train' or 'dev', got {split!r}")
    return resource_path("rumedtop3", f"{split}_v1.jsonl")


@contextmanager
def staged_dir(final: str | Path) -> Iterator[Path]:
    """A folder that appears at ``final`` whole or not at all.

    The body writes into a hidden sibling (``.NAME.PID.tmp``). When it returns, the sibling takes ``final``'s place
    (an older ``final`` is removed); when it raises (an error, Ctrl-C, a full disk), the sibling is removed and
    ``final`` is left as it was.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = final.with_name(f".{final.name}.{os.getpid()}.old")
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
