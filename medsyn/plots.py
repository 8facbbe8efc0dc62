"""Static pictures (PNG, matplotlib on Agg): the knowledge graph's plots, and :func:`pyplot` for every other plot.

The graph's pictures are a code's neighbourhood and the per-category distributions. Evaluation reports and release
plots draw with the same :func:`pyplot`, so matplotlib is set up in one place. (The Space draws interactive plotly
figures of its own in :mod:`medsyn.space.figures`.)"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from medsyn.kg import MedicalKG

__all__ = ["plot_code_neighbourhood", "plot_graph_stats", "pyplot"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (files only; imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on servers
    import matplotlib.pyplot as plt

    return plt


def plot_code_neighbourhood(kg: MedicalKG, code: str, path: str | Path, top: int = 12) -> Path:
    """Draw a code with its parents and its top symptoms (edge width = weight) to a PNG.

    Args:
        kg: the graph.
        code: a category or code.
        path: the PNG to write.
        top: how many symptoms to draw.
    """
    plt = pyplot()
    entry = kg.entry(code)
    category = kg.category_of(code)
    symptoms = kg.symptoms(category, top=top)
    parents = kg.parents(code)
    fig, ax = plt.subplots(figsize=(11, 8))
    ax.set_axis_off()
    centre = (0.0, 0.0)
    # Parents in a column above, symptoms on a circle around the code.
    for i, parent in enumerate(parents):
        y = 1.35 + 0.3 * i
        ax.annotate("", xy=(0, y - 0.3 if i else 0.12), xytext=(0, y), arrowprops={"arrowstyle": "->", "color": "0.5"})
        ax.text(
            0,
            y,
            f"{parent['code']}: {parent['name'][:50]}",
            ha="center",
            va="center",
            fontsize=8,
            bbox={"boxstyle": "round", "fc": "#e8eef7", "ec": "0.6"},
        )
    max_w = max((e.weight for e in symptoms), default=1.0) or 1.0
    for i, edge in enumerate(symptoms):
        angle = math.pi + math.pi * (i + 0.5) / max(len(symptoms), 1)
        radius = 1.0 if i % 2 == 0 else 1.3  # alternate rings so that neighbouring labels do not overlap
        x, y = 1.25 * radius * math.cos(angle), radius * math.sin(angle)
        ax.plot([centre[0], x], [centre[1], y], color="#c0392b", alpha=0.7, linewidth=0.5 + 5 * edge.weight / max_w)
        ax.text(
            x,
            y,
            f"{edge.symptom}\n(w={edge.weight:.2f}, n={edge.count})",
            ha="center",
            va="center",
            fontsize=7,
            bbox={"boxstyle": "round", "fc": "#fdecea", "ec": "#c0392b"},
        )
    n_examples = len(kg.examples(category))
    ax.text(
        0,
        0,
        f"{entry['code']}\n{entry['name'][:40]}\n{n_examples} real notes",
        ha="center",
        va="center",
        fontsize=10,
        fontweight="bold",
        bbox={"boxstyle": "round", "fc": "#fff5cc", "ec": "#b7950b"},
    )
    ax.set_xlim(-1.9, 1.9)
    ax.set_ylim(-1.5, 1.5 + 0.3 * len(parents))
    ax.set_title(f"medsyn knowledge graph around {entry['code']}: top {len(symptoms)} symptoms by specificity weight")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_graph_stats(kg: MedicalKG, path: str | Path) -> Path:
    """Plot symptoms per category against real examples per category, with each category's sampling weight."""
    from medsyn.sampling import category_weight

    plt = pyplot()
    cats = kg.categories()
    n_symp = [len(kg.symptoms(c)) for c in cats]
    n_exmp = [len(kg.examples(c)) for c in cats]
    weights = [category_weight(s, e) for s, e in zip(n_symp, n_exmp)]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    sc = ax1.scatter(n_exmp, n_symp, c=weights, cmap="viridis", s=25)
    for c, x, y in zip(cats, n_exmp, n_symp):
        if x > 150 or y > 45:
            ax1.annotate(c, (x, y), fontsize=7)
    ax1.set_xscale("log")
    ax1.set_xlabel("real example notes (N_exmp, log scale)")
    ax1.set_ylabel("unique symptoms (N_symp)")
    ax1.set_title(f"{len(cats)} categories")
    fig.colorbar(sc, ax=ax1, label="sampling weight J3(N_symp)·J3(N_exmp)")
    total_e, total_w = sum(n_exmp), sum(weights)
    order = sorted(range(len(cats)), key=lambda i: -n_exmp[i])
    ax2.plot(range(len(cats)), [n_exmp[i] / total_e for i in order], label="share of real notes")
    ax2.plot(range(len(cats)), [weights[i] / total_w for i in order], label="share of synthetic tasks")
    ax2.set_yscale("log")
    ax2.set_xlabel("categories, by number of real notes")
    ax2.set_ylabel("share")
    ax2.set_title("the weight evens out the code distribution")
    ax2.legend()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
