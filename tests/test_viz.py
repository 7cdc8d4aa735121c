"""lib.viz: palette, style and helpers."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lib import viz  # noqa: E402


def test_palette_is_the_seeds():
    assert viz.PALETTE == {"blue": "#71CCF5", "yellow": "#FFE699", "purple": "#C0BFDE", "pink": "#F0ADB7"}


def test_use_style_sets_cycle():
    viz.use_style()
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    assert colors[:2] == [viz.DARK["blue"], viz.DARK["pink"]]


def test_curve_with_band_returns_mean_and_validates():
    fig, ax = plt.subplots()
    runs = np.array([[0.0, 1.0, 2.0], [2.0, 3.0, 4.0]])
    mean = viz.curve_with_band(ax, [1, 2, 3], runs, "x")
    np.testing.assert_allclose(mean, [1.0, 2.0, 3.0])
    assert ax.get_lines()[0].get_label() == "x (n=2)"
    with pytest.raises(ValueError, match="points"):
        viz.curve_with_band(ax, [1, 2], runs, "x")
    with pytest.raises(ValueError, match="band"):
        viz.curve_with_band(ax, [1, 2, 3], runs, "x", band="iqr")
    plt.close(fig)


def test_finish_requires_labels():
    fig, ax = plt.subplots()
    ax.plot([0, 1], label="a")
    viz.finish(ax, "t", "x (s)", "y (m)")
    assert ax.get_title() == "t" and ax.get_legend() is not None
    with pytest.raises(ValueError, match="title"):
        viz.finish(ax, "", "x", "y")
    with pytest.raises(TypeError, match="Axes"):
        viz.finish("not axes", "t", "x", "y")
    plt.close(fig)


def test_heatmap_validates_labels():
    fig, ax = plt.subplots()
    viz.heatmap(ax, np.eye(2), ["a", "b"], ["c", "d"])
    with pytest.raises(ValueError, match="2-D"):
        viz.heatmap(ax, np.ones(3))
    with pytest.raises(ValueError, match="x labels"):
        viz.heatmap(ax, np.eye(2), ["a"])
    plt.close(fig)


def test_loglog_slope():
    x = np.array([1.0, 10.0, 100.0])
    assert viz.loglog_slope(x, 3 * x**-0.5) == pytest.approx(-0.5)
    with pytest.raises(ValueError, match="positive"):
        viz.loglog_slope([1, 2], [0, 1])
