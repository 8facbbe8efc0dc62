"""Tests of medsyn.plots: the knowledge graph's PNG pictures, drawn on the Agg backend."""

from __future__ import annotations

import struct

import pytest

from medsyn.errors import UnknownCodeError
from medsyn.plots import plot_code_neighbourhood, plot_graph_stats, pyplot

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_pyplot_draws_to_files_only():
    plt = pyplot()
    assert plt.get_backend().lower() == "agg"


def test_plot_code_neighbourhood_writes_a_png(kg, tmp_path):
    open_before = pyplot().get_fignums()  # other tests' figures are theirs
    path = plot_code_neighbourhood(kg, "M54", tmp_path / "plots" / "deep" / "m54.png", top=6)
    assert path == tmp_path / "plots" / "deep" / "m54.png"
    width, height = _png_size(path)
    assert width > 300 and height > 300
    assert path.stat().st_size > 10_000
    assert pyplot().get_fignums() == open_before  # the figure was closed


def test_plot_code_neighbourhood_of_a_leaf_code(kg, tmp_path):
    path = plot_code_neighbourhood(kg, "M54.5", str(tmp_path / "m54_5.png"))
    assert _png_size(path)[0] > 300


def test_plot_code_neighbourhood_refuses_an_unknown_code(kg, tmp_path):
    with pytest.raises(UnknownCodeError):
        plot_code_neighbourhood(kg, "Z99.99", tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_plot_graph_stats_writes_a_png(kg, tmp_path):
    open_before = pyplot().get_fignums()
    path = plot_graph_stats(kg, tmp_path / "stats" / "kg-stats.png")
    assert path == tmp_path / "stats" / "kg-stats.png"
    width, height = _png_size(path)
    assert width > height > 300  # two panels side by side
    assert path.stat().st_size > 10_000
    assert pyplot().get_fignums() == open_before
