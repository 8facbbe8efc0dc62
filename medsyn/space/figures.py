"""Interactive plotly figures of the knowledge graph, drawn by the page's bundled plotly (no CDN)."""

from __future__ import annotations

from typing import Any

from medsyn.space.core import CodeInfo

__all__ = ["neighbourhood_figure", "weights_figure", "shares_figure"]

_SYMPTOM, _RELATED, _CODE = "#c0392b", "#2e6da4", "#b7950b"
_FONT = {"family": "DejaVu Sans, Arial, sans-serif", "size": 12}


def _short(text: str, n: int = 34) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _layout(fig: Any, title: str, height: int) -> None:
    fig.update_layout(
        title={"text": title, "x": 0.01, "font": {"size": 14}},
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        font=_FONT,
        plot_bgcolor="white",
        paper_bgcolor="white",
        hoverlabel={"font": _FONT},
    )


def neighbourhood_figure(info: CodeInfo, top: int = 14, related: int = 6) -> Any:
    """A code's neighbourhood: its top symptoms on the right (marker size and edge width = weight), the
    categories with the most similar symptom profiles on the left (size = cosine similarity)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    symptoms = info.symptoms[:top]
    others = info.related[:related]
    max_w = max((e.weight for e in symptoms), default=1.0) or 1.0

    def column(n: int, x: float) -> list[tuple[float, float]]:
        # one column per side, evenly spaced, so that every label has its own line
        return [(x, 1.0 - 2.0 * i / (n - 1) if n > 1 else 0.0) for i in range(n)]

    sym_xy = column(len(symptoms), 1.0)
    rel_xy = column(len(others), -1.0)
    for (x, y), edge in zip(sym_xy, symptoms):
        width = 1 + 7 * edge.weight / max_w
        fig.add_trace(
            go.Scatter(
                x=[0, x],
                y=[0, y],
                mode="lines",
                line={"color": _SYMPTOM, "width": width},
                opacity=0.45,
                hoverinfo="skip",
                showlegend=False,
            )
        )
    for (x, y), (_, _, sim) in zip(rel_xy, others):
        fig.add_trace(
            go.Scatter(
                x=[0, x],
                y=[0, y],
                mode="lines",
                hoverinfo="skip",
                showlegend=False,
                line={"color": _RELATED, "width": 1 + 4 * sim, "dash": "dot"},
                opacity=0.6,
            )
        )
    if symptoms:
        fig.add_trace(
            go.Scatter(
                x=[x for x, _ in sym_xy],
                y=[y for _, y in sym_xy],
                mode="markers+text",
                name="symptom (size = weight)",
                marker={"size": [10 + 26 * e.weight / max_w for e in symptoms], "color": _SYMPTOM, "opacity": 0.85},
                text=[_short(e.symptom, 36) for e in symptoms],
                textposition="middle right",
                customdata=[[e.symptom, e.weight, e.count] for e in symptoms],
                hovertemplate=(
                    "<b>%{customdata[0]}</b><br>weight %{customdata[1]:.3f}<br>"
                    f"named in %{{customdata[2]}} of {info.n_examples} real notes<extra></extra>"
                ),
            )
        )
    if others:
        fig.add_trace(
            go.Scatter(
                x=[x for x, _ in rel_xy],
                y=[y for _, y in rel_xy],
                mode="markers+text",
                name="related category (size = similarity)",
                marker={"size": [10 + 20 * s for *_, s in others], "color": _RELATED, "symbol": "diamond"},
                text=[f"{c} {_short(n, 24)}" for c, n, _ in others],
                textposition="middle left",
                customdata=[[c, n, s] for c, n, s in others],
                hovertemplate="<b>%{customdata[0]}</b> %{customdata[1]}<br>symptom profile cosine %{customdata[2]:.2f}"
                "<extra></extra>",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=[0],
            y=[0],
            mode="markers+text",
            name="code",
            marker={"size": 46, "color": "#fff5cc", "line": {"color": _CODE, "width": 2}},
            text=[f"<b>{info.category or info.code}</b>"],
            textposition="middle center",
            hovertemplate=f"<b>{info.code}</b> {info.name}<br>{info.n_examples} real notes<extra></extra>",
        )
    )
    # labels need about 230 px on the left and 260 px on the right at the page's usual 660 px
    fig.update_xaxes(visible=False, range=[-3.9, 4.3])
    fig.update_yaxes(visible=False, range=[-1.12, 1.12])
    fig.update_layout(legend={"orientation": "h", "y": -0.02, "x": 0.0})
    title = f"{info.category}: top {len(symptoms)} of {len(info.symptoms)} symptoms, {len(others)} related categories"
    _layout(fig, title, height=520)
    return fig


def weights_figure(kg: Any, weights: dict[str, float], names: dict[str, str]) -> Any:
    """Every category: real notes (x, log) against unique symptoms (y), coloured by its sampling weight w(C)."""
    import plotly.graph_objects as go

    cats = sorted(weights)
    n_exmp = [len(kg.examples(c)) for c in cats]
    n_symp = [len(kg.symptoms(c)) for c in cats]
    fig = go.Figure(
        go.Scatter(
            x=n_exmp,
            y=n_symp,
            mode="markers",
            marker={
                "color": [weights[c] for c in cats],
                "colorscale": "Viridis",
                "size": 9,
                "colorbar": {"title": {"text": "w(C)"}},
            },
            customdata=[[c, _short(names.get(c, ""), 50), weights[c]] for c in cats],
            hovertemplate="<b>%{customdata[0]}</b> %{customdata[1]}<br>%{x} real notes, %{y} symptoms"
            "<br>w(C) = %{customdata[2]:.3f}<extra></extra>",
        )
    )
    fig.update_xaxes(type="log", title="real example notes N_exmp (log)")
    fig.update_yaxes(title="unique symptoms N_symp")
    _layout(fig, f"{len(cats)} categories: w(C) = J3(N_symp)·J3(N_exmp)", height=420)
    return fig


def shares_figure(kg: Any, weights: dict[str, float]) -> Any:
    """The share of real notes against the share of synthetic tasks per category: the weight evens them out."""
    import plotly.graph_objects as go

    cats = sorted(weights, key=lambda c: -len(kg.examples(c)))
    n_exmp = [len(kg.examples(c)) for c in cats]
    total_e, total_w = sum(n_exmp), sum(weights.values())
    fig = go.Figure()
    fig.add_trace(go.Scatter(y=[n / total_e for n in n_exmp], text=cats, name="share of real notes", mode="lines"))
    fig.add_trace(
        go.Scatter(y=[weights[c] / total_w for c in cats], text=cats, name="share of synthetic tasks", mode="lines")
    )
    fig.update_yaxes(type="log", title="share")
    fig.update_xaxes(title="categories, by number of real notes")
    fig.update_traces(hovertemplate="%{text}: %{y:.2%}<extra></extra>")
    fig.update_layout(legend={"x": 0.55, "y": 0.95})
    _layout(fig, "sampling by w(C) gives rare codes a fair share", height=420)
    return fig
