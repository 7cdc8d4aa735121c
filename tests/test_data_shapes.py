"""lib.data.shapes: the generated images, their labels, captions and chance levels."""
import numpy as np
import pytest

from lib.data.shapes import COLOURS, SHAPES, answer_for, chance_accuracy, make_shapes


def test_shapes_dataset():
    ds = make_shapes(200, seed=0)
    again = make_shapes(200, seed=0)
    assert np.array_equal(ds.images, again.images)
    assert ds.images.shape == (200, 24, 24, 3) and ds.images.dtype == np.float32
    assert 0 <= ds.images.min() and ds.images.max() <= 1
    assert set(np.unique(ds.colour)) == set(range(len(COLOURS)))
    assert set(np.unique(ds.shape)) == set(range(len(SHAPES)))
    # the mask sits in the labelled quadrant and the shape has its colour
    for i in range(50):
        ys, xs = np.nonzero(ds.masks[i])
        assert len(ys) >= 8
        top, left = ds.position[i] in (0, 1), ds.position[i] in (0, 2)
        assert (ys.mean() < 12) == top and (xs.mean() < 12) == left
        mean_col = ds.images[i][ds.masks[i]].mean(0)
        assert np.abs(mean_col - np.array(list(COLOURS.values())[ds.colour[i]])).max() < 0.2
    assert ds.caption(0) == f"a {ds.labels(0)[0]} {ds.labels(0)[1]} at the {ds.labels(0)[2]}"
    assert answer_for("shape", "red", "cross", "top left") == "cross"
    with pytest.raises(ValueError):
        answer_for("size", "red", "cross", "top left")
    with pytest.raises(ValueError):
        make_shapes(0)
    with pytest.raises(ValueError):
        make_shapes(3, size=18)
    assert chance_accuracy(np.array([0, 0, 1, 2])) == 0.5
    with pytest.raises(ValueError):
        chance_accuracy(np.array([]))
