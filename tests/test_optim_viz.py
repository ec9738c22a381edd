"""dlcourse.optim_viz: do the loss-surface pictures show the loss, the gradient and the path they are given?"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dlcourse.optim_viz import (loss_grid, plot_gradient_field, plot_loss_contours, plot_trajectories,  # noqa: E402
                                plot_trajectory)


def bowl(w1, w2):
    return (w1 - 1.0) ** 2 + 10 * (w2 + 0.5) ** 2


def bowl_gradient(w1, w2):
    return 2 * (w1 - 1.0), 20 * (w2 + 0.5)


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_loss_grid_evaluates_the_loss_at_every_point():
    """Does the grid span the limits, with w1 along the columns, and hold loss(w1, w2) at each point?"""
    grid = loss_grid(bowl, (-2.0, 3.0), (-1.0, 0.0), num=11)
    assert grid.w1.shape == grid.w2.shape == grid.loss.shape == (11, 11)
    assert grid.w1[0, 0] == -2.0 and grid.w1[0, -1] == 3.0 and grid.w2[0, 0] == -1.0 and grid.w2[-1, 0] == 0.0
    assert np.array_equal(grid.w1[0], grid.w1[5]) and np.array_equal(grid.w2[:, 0], grid.w2[:, 7])
    assert np.array_equal(grid.loss, bowl(grid.w1, grid.w2))
    row, col = np.unravel_index(grid.loss.argmin(), grid.loss.shape)
    assert (grid.w1[row, col], grid.w2[row, col]) == (1.0, -0.5)


def test_loss_grid_rejects_a_loss_that_is_not_element_wise():
    """Does a loss that reduces its inputs to one number fail loudly instead of drawing nonsense?"""
    with pytest.raises(ValueError, match="element-wise"):
        loss_grid(lambda w1, w2: float(np.sum(w1 ** 2 + w2 ** 2)), (-1, 1), (-1, 1), num=5)


def test_plot_loss_contours_labels_the_axes_and_covers_the_grid(ax):
    """Are the title, labels and limits set, and do the levels span the loss?"""
    grid = loss_grid(bowl, (-2.0, 3.0), (-1.0, 0.0), num=31)
    filled = plot_loss_contours(ax, grid, title="A bowl", xlabel="$w_1$", ylabel="$w_2$", levels=12)
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("A bowl", "$w_1$", "$w_2$")
    assert ax.get_xlim() == (-2.0, 3.0) and ax.get_ylim() == (-1.0, 0.0)
    assert filled.levels.min() <= grid.loss.min() and filled.levels.max() >= grid.loss.max()


def test_plot_loss_contours_log_levels_are_geometric(ax):
    """With log=True, are the levels evenly spaced on a log scale between the smallest positive and largest loss?"""
    grid = loss_grid(lambda w1, w2: 1e-3 + w1 ** 2 + w2 ** 2, (-3, 3), (-3, 3), num=41)
    filled = plot_loss_contours(ax, grid, title="t", xlabel="x", ylabel="y", levels=8, log=True)
    ratios = filled.levels[1:] / filled.levels[:-1]
    assert len(filled.levels) == 8 and np.allclose(ratios, ratios[0])
    assert np.isclose(filled.levels[0], grid.loss.min()) and np.isclose(filled.levels[-1], grid.loss.max())


def test_plot_gradient_field_draws_the_gradient_at_each_grid_point(ax):
    """Is there one arrow per grid point, pointing along the gradient, with lengths on one common scale?"""
    quiver = plot_gradient_field(ax, bowl_gradient, (-2.0, 2.0), (-1.0, 1.0), num=5)
    assert quiver.N == 25
    feet = quiver.get_offsets()
    d1, d2 = bowl_gradient(feet[:, 0], feet[:, 1])
    assert np.allclose(quiver.U, d1) and np.allclose(quiver.V, d2)
    # The default scale draws the longest arrow one grid cell (1 unit of w1) long.
    assert np.isclose(np.sqrt(quiver.U ** 2 + quiver.V ** 2).max() / quiver.scale, 1.0)


def test_plot_trajectory_draws_every_point_and_marks_start_and_end(ax):
    """Does the path go through every point in order, with a marker on the first and on the last?"""
    path = np.array([[0.0, 1.0], [0.5, 0.2], [0.9, -0.4], [1.0, -0.5]])
    line = plot_trajectory(ax, path, label="descent")
    assert np.array_equal(line.get_xydata(), path) and line.get_label() == "descent"
    markers = [tuple(marker.get_xydata()[0]) for marker in ax.lines[1:]]
    assert markers == [(0.0, 1.0), (1.0, -0.5)]


def test_plot_trajectory_rejects_points_that_are_not_2d(ax):
    """Is a path of 3-D points refused with a message naming the expected shape?"""
    with pytest.raises(ValueError, match=r"\(num_points, 2\)"):
        plot_trajectory(ax, np.zeros((4, 3)))


def test_plot_trajectories_draws_each_path_in_its_colour_and_clips_a_diverging_one(ax):
    """Does every path get its own colour and legend entry, and does a path that flies off stay on the map?"""
    grid = loss_grid(bowl, (-2.0, 3.0), (-1.0, 0.0), num=11)
    plot_loss_contours(ax, grid, title="A bowl", xlabel="$w_1$", ylabel="$w_2$")
    paths = {"slow": [[-1.5, -0.8], [-1.0, -0.7]], "diverging": [[2.0, -0.2], [1e6, -1e9], [np.inf, np.nan]]}
    lines = plot_trajectories(ax, paths)
    assert [line.get_label() for line in lines] == ["slow", "diverging"]
    assert lines[0].get_color() != lines[1].get_color()
    clipped = lines[1].get_xydata()
    assert clipped[1].tolist() == [3.0, -1.0] and np.isfinite(clipped).all()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["slow", "diverging"]
    with pytest.raises(ValueError, match="colours"):
        plot_trajectories(ax, {str(i): [[0, 0]] for i in range(3)}, colors=["red", "blue"])
