"""Both figures are written, non-empty, as real PNG and PDF files."""

from __future__ import annotations

from pathlib import Path

from opaque_knapsack.reports import load_runs, write_figures


def test_figures_written_as_png_and_pdf(matrix_dir: Path, tmp_path: Path) -> None:
    written = write_figures(load_runs([matrix_dir]), tmp_path / "figs")
    assert set(written) == {"cost_performance_png", "cost_performance_pdf", "behaviour_png", "behaviour_pdf"}
    for key, path in written.items():
        data = path.read_bytes()
        assert len(data) > 5_000, key
        assert data.startswith(b"\x89PNG" if key.endswith("png") else b"%PDF"), key


def test_cost_performance_axes(matrix_dir: Path) -> None:
    import matplotlib.pyplot as plt

    from opaque_knapsack.reports.figures import behaviour_figure, cost_performance_figure

    runs = load_runs([matrix_dir])
    fig = cost_performance_figure(runs)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert "output tokens" in ax.get_xlabel() and "optimality (%)" in ax.get_ylabel()
    assert len(ax.texts) == 4  # one label per condition
    plt.close(fig)
    fig = behaviour_figure(runs)
    titles = [a.get_title() for a in fig.axes]
    assert titles == ["State utilization", "Re-import rate", "Context symbol lifespan"]
    hatches = [bar.get_hatch() for bar in fig.axes[1].patches]
    assert hatches == ["", "//", "", "//"]  # stateless runtime hatched
    colours = {bar.get_facecolor() for bar in fig.axes[1].patches}
    assert len(colours) == 2  # one colour per training semantics
    plt.close(fig)
