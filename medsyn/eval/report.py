"""Run folders for evaluations: metrics JSON, a markdown report, PNG plots and the resolved config.

A run folder is ``<out_dir>/<name>-<YYYYmmdd-HHMMSS>/`` and holds ``metrics.json``, ``report.md``, ``config.yaml``
and the plots. Plots use matplotlib's Agg backend, so they work without a display.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from medsyn.plots import pyplot

__all__ = [
    "run_path",
    "write_json",
    "classify_table",
    "classify_markdown",
    "plot_upsampling",
    "plot_code_gain",
    "quality_markdown",
    "plot_quality",
]

logger = logging.getLogger(__name__)

SUBSET_TITLES = {
    "overall": "all codes",
    "rare_quartile": "rarest quartile of codes (train)",
    "low_recall": "lowest-recall quartile of codes (train cross-validation)",
}


def run_path(out_dir: str | Path, name: str) -> Path:
    """Where a new run folder goes: ``out_dir/name-timestamp/`` (written whole with :func:`~medsyn.paths.staged_dir`)."""
    return Path(out_dir) / f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented UTF-8 JSON."""
    path = Path(path)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def _pm(stat: dict[str, float], n_runs: int) -> str:
    return f"{100 * stat['mean']:.2f} ± {100 * stat['std']:.2f}" if n_runs > 1 else f"{100 * stat['mean']:.2f}"


def classify_table(summary: dict, subset: str = "overall") -> str:
    """A markdown table of acc@1 / hit@3 / macro-F1 (percent, mean ± std over seeds) per setting for one subset."""
    lines = [
        "| setting | real | synthetic | acc@1 | hit@3 | macro-F1 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in summary["settings"]:
        k = len(s["runs"])
        m = s["summary"][subset]
        lines.append(
            f"| {s['name']} | {s['n_real']:.0f} | {s['n_synthetic']:.0f} | {_pm(m['acc@1'], k)} "
            f"| {_pm(m['hit@3'], k)} | {_pm(m['macro_f1'], k)} |"
        )
    return "\n".join(lines)


def gain_table(summary: dict) -> str:
    """Markdown: acc@1 and hit@3 gain of each setting over the baseline, per subset, with 95% bootstrap intervals."""
    lines = [
        "| setting | subset | acc@1 gain [95% CI] | hit@3 gain [95% CI] |",
        "| --- | --- | ---: | ---: |",
    ]
    others = [s for s in summary["settings"] if s["name"] != summary["baseline"]]
    if not others:
        return f"Only `{summary['baseline']}` was run, so there is nothing to compare; add settings (--settings)."
    for s in others:
        for subset in ("overall", "rare_quartile", "low_recall"):
            cells = [
                f"{100 * g['diff']:+.2f} [{100 * g['lo']:+.2f}, {100 * g['hi']:+.2f}]"
                for g in (s["vs_baseline"][subset]["acc@1"], s["vs_baseline"][subset]["hit@3"])
            ]
            lines.append(f"| {s['name']} | {subset} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def classify_markdown(summary: dict, config: dict, plots: list[str]) -> str:
    """The markdown report of a ``medsyn eval classify`` run."""
    seeds = sorted({r["seed"] for s in summary["settings"] for r in s["runs"]})
    hard = summary["hard_codes"]
    parts = [
        "# ICD-10 code prediction (RuMedTop3)",
        "",
        f"Model: `{config.get('model')}`; train `{config.get('train')}`, scored on `{config.get('eval')}`"
        + (
            f" ({summary['eval_half']} half: "
            + ("recipes and thresholds are chosen here" if summary["eval_half"] == "select" else "untouched by choice")
            + ")"
            if summary.get("eval_half", "all") != "all"
            else ""
        )
        + "; "
        f"synthetic notes: `{config.get('synthetic')}`; seeds {seeds}. Values are percent, mean ± std over seeds.",
        "",
    ]
    for subset in ("overall", "rare_quartile", "low_recall"):
        extra = "" if subset == "overall" else f" ({len(hard[subset])} codes)"
        parts += [f"## {SUBSET_TITLES[subset]}{extra}", "", classify_table(summary, subset), ""]
    if summary.get("warnings"):
        parts += ["## Warnings", ""] + [f"- {w}" for w in summary["warnings"]] + [""]
    source = summary.get("low_recall_source", "dev (biased)")
    parts += [
        f"## Gain over `{summary['baseline']}`",
        "",
        "Per dev note, seed-averaged, resampled 2,000 times (paired bootstrap over notes; the interval does not",
        f"include seed variance). The low-recall codes are chosen on {source}"
        + (", not on the dev notes they are scored on." if source.startswith("train") else "."),
        "",
        gain_table(summary),
        "",
        "## Hard codes",
        "",
        f"- rarest quartile in train: {', '.join(hard['rare_quartile'])}",
        f"- lowest recall of the all-real classifier ({source}): {', '.join(hard['low_recall'])}",
        "",
        "## Plots",
        "",
    ]
    parts += [f"![{p}]({p})" for p in plots]
    return "\n".join(parts) + "\n"


def plot_upsampling(summary: dict, path: str | Path) -> Path:
    """Bars of acc@1 / hit@3 / macro-F1 per setting with std error bars, one panel per code subset."""
    plt = pyplot()
    settings = summary["settings"]
    metrics = ("acc@1", "hit@3", "macro_f1")
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2), sharey=False)
    x = np.arange(len(settings))
    width = 0.27
    for ax, subset in zip(axes, ("overall", "rare_quartile", "low_recall")):
        for j, metric in enumerate(metrics):
            means = [100 * s["summary"][subset][metric]["mean"] for s in settings]
            stds = [100 * s["summary"][subset][metric]["std"] for s in settings]
            ax.bar(x + (j - 1) * width, means, width, yerr=stds, capsize=2, label=metric)
        ax.set_xticks(x)
        ax.set_xticklabels([s["name"].replace(" + ", "\n+ ") for s in settings], rotation=60, fontsize=7)
        ax.set_title(SUBSET_TITLES[subset], fontsize=10)
        ax.set_ylabel("percent (mean ± std over seeds)")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("RuMedTop3 dev by training-set setting")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_code_gain(summary: dict, path: str | Path) -> Path:
    """Per-code recall gain over the baseline against the code's number of real training notes.

    With the baseline alone, its per-code recall instead, so that every run folder shows where the codes stand.
    """
    per_code = summary["per_code"]
    names = sorted({k for v in per_code.values() for k in v} - {"train_count", "baseline_recall"})
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    if not names:
        xs = [per_code[c]["train_count"] for c in per_code]
        ys = [100 * per_code[c]["baseline_recall"] for c in per_code]
        ax.scatter(xs, ys, s=14, alpha=0.6, label=f"{summary['baseline']} (mean {np.mean(ys):.1f})")
        ax.set_ylabel("dev recall (percent)")
        ax.set_title("Per-code recall against the code's real training notes")
    for name in names:
        codes = [c for c in per_code if name in per_code[c]]
        xs = [per_code[c]["train_count"] for c in codes]
        ys = [100 * (per_code[c][name] - per_code[c]["baseline_recall"]) for c in codes]
        ax.scatter(xs, ys, s=14, alpha=0.6, label=f"{name} (mean {np.mean(ys):+.1f})")
    if names:
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_ylabel(f"dev recall gain over '{summary['baseline']}' (points)")
        ax.set_title("Per-code gain")
    ax.set_xscale("log")
    ax.set_xlabel("real training notes of the code (log scale)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def quality_markdown(report: dict, config: dict, plots: list[str]) -> str:
    """The markdown report of a ``medsyn eval quality`` run."""
    pf, real, syn, cp = (
        report["prompt_following"],
        report["realism"]["real"],
        report["realism"]["synthetic"],
        report["copying"],
    )
    lines = [
        "# Note quality and privacy",
        "",
        f"Synthetic notes: `{config.get('source')}` ({report['n_notes']}); real reference: "
        f"`{config.get('real')}` ({report['n_real']}). Computed in {report['seconds']:.1f} s.",
        "",
        "## Prompt following",
        "",
    ]
    if pf.get("available"):
        lines += [
            f"Mean share of requested symptoms found in the note (lemma match): **{pf['mean_coverage']:.3f}** "
            f"(median {pf['median_coverage']:.3f}; {pf['share_full']:.1%} of notes mention all of them).",
        ]
    else:
        lines += [f"Not available: {pf['reason']}."]
    lines += [
        "",
        "## Realism and diversity",
        "",
        "| | real | synthetic |",
        "| --- | ---: | ---: |",
    ]
    for key, label, fmt in [
        ("chars_mean", "characters per note, mean", ".1f"),
        ("chars_median", "characters per note, median", ".0f"),
        ("words_mean", "words per note, mean", ".1f"),
        ("vocab_size", "vocabulary (word types)", ".0f"),
        ("type_token_ratio", "type/token ratio", ".3f"),
        ("distinct_1", "distinct-1", ".3f"),
        ("distinct_2", "distinct-2", ".3f"),
        ("self_bleu", "self-BLEU-4 (lower = more diverse)", ".3f"),
    ]:
        lines.append(f"| {label} | {real[key]:{fmt}} | {syn[key]:{fmt}} |")
    lines += [
        "",
        f"Synthetic words found in the real vocabulary: {report['realism']['in_real_vocab']:.1%}; "
        f"real words the synthetic notes use: {report['realism']['real_vocab_covered']:.1%}.",
        "",
        "## Copying and privacy",
        "",
        f"Each note's word {cp['ngram']}-grams are looked up in an index of the real notes' n-grams. "
        f"**copy score** = share of the note's {cp['ngram']}-grams found in its single closest real note; "
        f"**LCS** = longest common run of words with that note. A note is a near-copy when copy score ≥ "
        f"{cp['threshold_copy_score']} or LCS ≥ {cp['threshold_lcs_words']} words.",
        "",
        "| | vs closest real train note | vs its style example |",
        "| --- | ---: | ---: |",
        _copy_row("copy score, mean", "copy_score_mean", ".3f", cp),
        _copy_row("copy score, 99th percentile", "copy_score_p99", ".3f", cp),
        _copy_row("copy score, max", "copy_score_max", ".3f", cp),
        _copy_row("LCS words, mean", "lcs_mean", ".2f", cp),
        _copy_row("LCS words, max", "lcs_max", ".0f", cp),
        _copy_row("near-copies", "near_copies", "d", cp),
        _copy_row("near-copy share", "near_copy_share", ".2%", cp),
        "",
    ]
    if "real_notes_contained" in cp:
        lines += [
            f"Notes that carry most (≥ 80%) of one real note's {cp['ngram']}-grams inside them, whatever their own "
            f"length: {cp['real_notes_contained']} (the generation filter drops these too).",
            "",
        ]
    if cp.get("real_vs_real"):
        rr = cp["real_vs_real"]
        lines += [
            f"For scale, real dev notes against real train notes: copy score mean {rr['copy_score_mean']:.3f}, "
            f"near-copies {rr['near_copies']} of {rr['n']:.0f} ({rr['near_copy_share']:.2%}).",
            "",
        ]
    if cp["examples"]:
        lines += ["Closest near-copies:", ""]
        for ex in cp["examples"]:
            lines.append(
                f"- `{ex['id']}` (copy {ex['copy_score']:.2f}, LCS {ex['lcs']}): «{ex['note'][:160]}» "
                f"≈ real `{ex['real_id']}` «{ex['real'][:160]}»"
            )
        lines.append("")
    lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def _copy_row(label: str, key: str, fmt: str, cp: dict) -> str:
    cells = [format(cp[side][key], fmt) if cp.get(side) else "n/a" for side in ("train", "example")]
    return f"| {label} | {cells[0]} | {cells[1]} |"


def plot_quality(per_note: dict[str, list[float]], real_lengths: list[int], path: str | Path) -> Path:
    """Histograms: note length (real vs synthetic), copy score, and symptom coverage when known."""
    plt = pyplot()
    panels = 3 if per_note.get("coverage") else 2
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4))
    axes[0].hist(real_lengths, bins=40, alpha=0.5, density=True, label="real")
    axes[0].hist(per_note["chars"], bins=40, alpha=0.5, density=True, label="synthetic")
    axes[0].set_xlabel("characters per note")
    axes[0].legend()
    axes[1].hist(per_note["copy_score"], bins=40, color="tab:red", alpha=0.7)
    axes[1].set_xlabel("copy score vs closest real note")
    axes[1].set_yscale("log")
    if panels == 3:
        axes[2].hist(per_note["coverage"], bins=20, color="tab:green", alpha=0.7)
        axes[2].set_xlabel("share of requested symptoms in the note")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def consistency_markdown(result: dict, source: str, plots: list[str]) -> str:
    """The markdown report of ``medsyn eval consistency``: k, the share dropped overall, at other k and per code."""
    lines = [
        "# Consistency filtering",
        "",
        f"Notes of `{source}` that passed the other checks: {result['notes_checked']}. A linear classifier trained on "
        f"real notes only ranks the codes of each; a note is kept when its code is in the top **k = "
        f"{result['top_k']}**. Dropped: **{result['dropped']}** ({result['share_dropped']:.1%}).",
        "",
        "| k | " + " | ".join(result["share_dropped_at_k"]) + " |",
        "| --- |" + " ---: |" * len(result["share_dropped_at_k"]),
        "| share dropped | " + " | ".join(f"{v:.1%}" for v in result["share_dropped_at_k"].values()) + " |",
        "",
        "## Per code",
        "",
        "| code | real notes | notes | dropped | share dropped |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for code, c in sorted(result["per_code"].items(), key=lambda kv: (kv[1]["real_notes"], kv[0])):
        lines.append(f"| {code} | {c['real_notes']} | {c['notes']} | {c['dropped']} | {c['share_dropped']:.0%} |")
    lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def consistency_card(source: str, result: dict) -> str:
    """The dataset card body of a folder filtered post hoc."""
    return (
        "# medsyn synthetic Russian clinical notes, consistency-filtered\n\n"
        f"The notes of `{Path(source).name}`, each scored by a linear classifier trained on real RuMedTop3 notes only; "
        f"a note is kept when its code is in the classifier's top {result['top_k']} and it passed the generation "
        f"filter. {result['dropped']} of {result['notes_checked']} notes ({result['share_dropped']:.1%}) were dropped "
        "by this check; each verdict is in `filter_reasons`. `consistency.md` has the share dropped per code.\n\n"
        "**These notes are synthetic and not medical advice.**\n"
    )


def plot_consistency(result: dict, path: str | Path) -> Path:
    """Share of notes dropped per code against the code's number of real notes."""
    plt = pyplot()
    per_code = result["per_code"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    xs = [max(c["real_notes"], 1) for c in per_code.values()]
    ys = [100 * c["share_dropped"] for c in per_code.values()]
    sizes = [8 + 2 * c["notes"] for c in per_code.values()]
    ax.scatter(xs, ys, s=sizes, alpha=0.6)
    for code, x, y in zip(per_code, xs, ys):
        ax.annotate(code, (x, y), fontsize=6, alpha=0.7)
    ax.set_xscale("log")
    ax.set_xlabel("real training notes of the code (log scale)")
    ax.set_ylabel(f"notes dropped at top-{result['top_k']} (%)")
    ax.set_title(f"Consistency filtering: {result['share_dropped']:.1%} dropped overall (marker size: notes)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
