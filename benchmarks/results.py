"""Write one benchmark's table into benchmarks/RESULTS.md without touching the other benchmarks' sections.

Each benchmark owns the text between ``<!-- begin:NAME -->`` and ``<!-- end:NAME -->``; running it again replaces
only that section.
"""

from __future__ import annotations

import platform
import re
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = "# Benchmark results\n\nEach section is written by the benchmark script it names; re-run the script to refresh it.\n"


def machine_summary() -> str:
    """A one-line description of where a benchmark ran."""
    import os

    line = f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}"
    try:
        import torch

        line += f", torch {torch.__version__}"
        if torch.cuda.is_available():
            line += f", {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return line


def write_section(name: str, markdown: str, path: Path = RESULTS) -> Path:
    """Replace (or append) the section called ``name`` in RESULTS.md with ``markdown``."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = (
        f"<!-- begin:{name} -->\n{markdown.rstrip()}\n\n_Written {stamp} on {machine_summary()}._\n<!-- end:{name} -->"
    )
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    pattern = re.compile(rf"<!-- begin:{re.escape(name)} -->.*?<!-- end:{re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: body, text) if pattern.search(text) else text.rstrip() + "\n\n" + body + "\n"
    path.write_text(text, encoding="utf-8")
    return path
