"""Both figures: real PNG/PDF files with their captions, readable at 4, 8 and 16 conditions.

The before/after pictures behind these checks are described in the change
that made them; here the properties are checked on the figure objects.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from opaque_knapsack.reports import load_runs, write_figures

from .logfactory import episode, write_log

OKABE_ITO = {"#0072B2", "#E69F00", "#7F7F7F", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000"}


def test_figures_written_as_png_and_pdf(matrix_dir: Path, tmp_path: Path) -> None:
    written = write_figures(load_runs([matrix_dir]), tmp_path / "figs")
    assert set(written) == {
        "cost_performance_png", "cost_performance_pdf", "behaviour_png", "behaviour_pdf",
        "cost_performance_caption", "behaviour_caption",
    }
    for key, path in written.items():
        data = path.read_bytes()
        if key.endswith("caption"):
            continue
        assert len(data) > 5_000, key
        assert data.startswith(b"\x89PNG" if key.endswith("png") else b"%PDF"), key
    caption = written["behaviour_caption"].read_text()
    for name in ("State utilization:", "Re-import rate:", "Context symbol lifespan:", "'0' marks"):
        assert name in caption


def conditions_dir(root: Path, trains: list[str], difficulties: list[str]) -> Path:
    """Logs of len(trains) x 2 runtimes x len(difficulties) conditions, some with zero means."""
    for difficulty, train, runtime in itertools.product(difficulties, trains, ("persistent", "stateless")):
        served = 1.0 if (train, runtime) == ("persistent", "persistent") else 0.0
        tokens = {"persistent": 900, "stateless": 2400}.get(train, 1500) * (2 if difficulty == "medium" else 1)
        episodes = [
            episode(i, 0.8 + 0.01 * i, output_tokens=tokens + 10 * i, state_utilization=served,
                    reimport_rate=0.9 if train == "stateless" else 0.1, symbol_lifespan=2.0 * served)
            for i in range(6)
        ]
        write_log(root / f"{difficulty}_{train}_{runtime}.eval", episodes, model=f"vllm/q:{train}",
                  runtime=runtime, difficulty=difficulty, train=train)
    return root


SIZES = {
    4: (["persistent", "stateless"], ["easy"]),
    8: (["persistent", "stateless"], ["easy", "medium"]),
    16: (["persistent", "stateless", "base", "mixed"], ["easy", "medium"]),
}


@pytest.fixture(scope="module", params=sorted(SIZES))
def sized_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    trains, difficulties = SIZES[request.param]
    runs = load_runs([conditions_dir(tmp_path_factory.mktemp(f"c{request.param}"), trains, difficulties)])
    assert len(runs) == request.param
    return runs


def drawn_texts(fig) -> list:
    """(text, window extent) of every non-empty text the renderer actually draws."""
    from unittest import mock

    from matplotlib.text import Text

    drawn: dict[int, tuple[str, object]] = {}
    original = Text.draw

    def record(self, renderer):  # noqa: ANN001
        original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            drawn[id(self)] = (self.get_text(), self.get_window_extent(renderer))

    with mock.patch.object(Text, "draw", record):
        fig.canvas.draw()
    return list(drawn.values())


def assert_no_overlaps(fig) -> None:
    boxes = drawn_texts(fig)
    assert len(boxes) > 10
    for (a_text, a), (b_text, b) in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), f"{a_text!r} overlaps {b_text!r}"
    legends = [legend.get_window_extent() for legend in fig.legends]
    assert legends
    for legend, ax in itertools.product(legends, fig.axes):
        assert not legend.overlaps(ax.get_window_extent()), "a legend covers a panel"


def colours_of(artists) -> set[str]:
    from matplotlib.colors import to_hex

    return {to_hex(artist.get_facecolor()).upper() for artist in artists}


def test_cost_performance_encodes_conditions_without_labels(sized_runs) -> None:
    import matplotlib.pyplot as plt

    from opaque_knapsack.reports.figures import cost_performance_figure

    fig = cost_performance_figure(sized_runs)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert "output tokens" in ax.get_xlabel() and "optimality (%)" in ax.get_ylabel()
    assert len(ax.texts) == 0  # no point labels to overprint: the legend says it all
    points = [line for line in ax.lines if line.get_marker() not in (None, "None", "", "_", "|")]
    assert len(points) == len(sized_runs)
    markers = {(r.condition.difficulty, line.get_marker()) for r, line in zip(sized_runs, points, strict=True)}
    assert len({m for _, m in markers}) == len({d for d, _ in markers})  # difficulty by marker shape
    fills = {(r.condition.runtime, line.get_markerfacecolor() == "white") for r, line in zip(sized_runs, points, strict=True)}
    assert fills == {("persistent", False), ("stateless", True)}  # runtime by fill, readable in grey
    legend_labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"easy", "persistent-trained", "stateless runtime (open)"} <= set(legend_labels)
    assert_no_overlaps(fig)
    plt.close(fig)


def test_behaviour_is_readable_and_marks_zeros(sized_runs) -> None:
    import matplotlib.pyplot as plt

    from opaque_knapsack.reports.figures import BEHAVIOUR_PANELS, behaviour_figure

    fig = behaviour_figure(sized_runs)
    difficulties = {r.condition.difficulty for r in sized_runs}
    assert len(fig.axes) == 3 * len(difficulties)
    for ax in fig.axes:
        assert all(label.get_rotation() == 0 for label in ax.get_xticklabels())  # flat tick labels
        assert "carried references" not in ax.get_ylabel()
    titles = [ax.get_title().split(" (")[0] for ax in fig.axes[:3]]
    assert titles == [title for _, title, _ in BEHAVIOUR_PANELS]
    state_panel = fig.axes[0]
    zero_bars = [bar for bar in state_panel.patches if bar.get_height() == 0]
    marks = [t for t in state_panel.texts if t.get_text() == "0"]
    assert zero_bars and len(marks) == len(zero_bars)  # every zero bar carries a visible 0
    hatched = {bar.get_hatch() for bar in state_panel.patches}
    assert hatched == {"", "///"}  # stateless runtime hatched, readable in grey
    assert colours_of(state_panel.patches) <= OKABE_ITO
    assert_no_overlaps(fig)
    plt.close(fig)
