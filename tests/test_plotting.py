"""Tests for gan_jax.plotting: layout, drawn data, atomic saving, no pyplot."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from gan_jax import plotting

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _rng(seed=0):
  return np.random.default_rng(seed)


def _assert_png(path):
  with open(path, "rb") as f:
    assert f.read(8) == PNG_SIGNATURE
  leftovers = [n for n in os.listdir(os.path.dirname(path)) if n.endswith(".tmp")]
  assert not leftovers


def _titles(fig):
  return [ax.get_title() for ax in fig.axes]


# ----------------------------------------------------------------------------
# samples_figure


@pytest.mark.parametrize("d, n_snapshots, expected_axes", [
    (1, 3, 3),  # one histogram per snapshot
    (2, 3, 3),  # one scatter per snapshot
    (3, 3, 9),  # three projections per snapshot
    (5, 2, 6),  # first three coordinates, as d = 3
])
def test_samples_figure_layout(tmp_path, d, n_snapshots, expected_axes):
  rng = _rng()
  data = rng.uniform(-1, 1, (300, d))
  snaps = [(100 * i, rng.normal(size=(200, d))) for i in range(n_snapshots)]
  fig = plotting.samples_figure(snaps, data, centers=rng.uniform(-1, 1, (4, d)),
                                box=(-1.0, 1.0), title=f"d={d}")
  assert len(fig.axes) == expected_axes
  for step, _ in snaps:
    assert any(t.startswith(f"step {step}") for t in _titles(fig))
  for ax in fig.axes:
    np.testing.assert_allclose(ax.get_xlim(), (-1.0, 1.0))
  if d > 3:
    assert "first 3 of 5" in fig.get_supxlabel()
  path = plotting.save_figure(fig, tmp_path / f"samples_{d}.png")
  _assert_png(path)


def test_samples_figure_keeps_first_and_last_snapshots_evenly_spaced():
  rng = _rng()
  snaps = [(1000 * i, rng.normal(size=(20, 2))) for i in range(10)]
  fig = plotting.samples_figure(snaps, rng.normal(size=(50, 2)))
  # linspace(0, 9, 6) rounded: indices 0, 2, 4, 5, 7, 9.
  assert _titles(fig) == [f"step {s}" for s in (0, 2000, 4000, 5000, 7000, 9000)]
  fig = plotting.samples_figure(snaps, rng.normal(size=(50, 2)), max_snapshots=2)
  assert _titles(fig) == ["step 0", "step 9000"]


def test_samples_figure_draws_the_projections_of_the_samples():
  rng = _rng(1)
  samples = rng.normal(size=(40, 3))
  data = rng.normal(size=(60, 3))
  fig = plotting.samples_figure([(7, samples)], data, centers=np.eye(3))
  for ax, (i, j) in zip(fig.axes, [(0, 1), (0, 2), (1, 2)]):
    data_points, sample_points = (c.get_offsets() for c in ax.collections)
    np.testing.assert_allclose(data_points, data[:, [i, j]])
    np.testing.assert_allclose(sample_points, samples[:, [i, j]])
    centre_line, = ax.lines
    np.testing.assert_allclose(centre_line.get_xdata(), np.eye(3)[:, i])
    np.testing.assert_allclose(centre_line.get_ydata(), np.eye(3)[:, j])
    assert ax.get_xlabel() == f"x{i + 1}" and ax.get_ylabel() == f"x{j + 1}"


def test_samples_figure_subsamples_and_counts_non_finite():
  rng = _rng(2)
  samples = rng.normal(size=(500, 2))
  samples[:5] = np.nan
  fig = plotting.samples_figure([(3, samples)], rng.normal(size=(800, 2)), max_points=100)
  ax, = fig.axes
  data_points, sample_points = (c.get_offsets() for c in ax.collections)
  assert len(data_points) == 100
  # 100 drawn at random out of 500, NaN rows among them removed and counted.
  assert len(sample_points) <= 100
  assert np.all(np.isfinite(sample_points))
  dropped = 100 - len(sample_points)
  assert ax.get_title() == "step 3" + (f" ({dropped} non-finite)" if dropped else "")


def test_samples_figure_1d_histograms_are_densities():
  rng = _rng(3)
  data = rng.normal(size=1000) * 0.3
  samples = rng.uniform(-1, 1, 500)
  fig = plotting.samples_figure([(0, samples)], data, centers=[[0.0]], box=(-1.0, 1.0))
  ax, = fig.axes
  bins = np.linspace(-1, 1, 51)  # 50 bins over the box
  data_poly, sample_poly = ax.patches
  for poly, x in ((data_poly, data), (sample_poly, samples)):
    heights = np.histogram(x, bins=bins, density=True)[0]
    np.testing.assert_allclose(np.sum(heights) * 0.04, 1.0, rtol=1e-12)
    np.testing.assert_allclose(poly.get_xy()[:, 1].max(), heights.max(), rtol=1e-12)
  centre, = ax.lines
  np.testing.assert_allclose(centre.get_xdata(), [0.0])


@pytest.mark.parametrize("kwargs, message", [
    (dict(snapshots=[], data=np.zeros((3, 2))), "snapshots is empty"),
    (dict(snapshots=[(0, np.zeros((3, 3)))], data=np.zeros((3, 2))),
     "dimension 3 but data has 2"),
    (dict(snapshots=[(0, np.zeros((3, 2)))], data=np.zeros((3, 2)),
          centers=np.zeros((2, 3))), "centers have dimension 3"),
    (dict(snapshots=[(0, np.zeros((3, 2)))], data=np.zeros((3, 2)), box=(1.0, -1.0)),
     "low < high"),
    (dict(snapshots=[(0, np.zeros((3, 2)))], data=np.zeros((3, 2)), box=np.zeros((2, 3))),
     r"pair \(low, high\)"),
    (dict(snapshots=[(0, np.zeros((3, 2)))], data=np.zeros((3, 2)), max_points=0),
     "max_points must be an integer >= 1"),
    (dict(snapshots=[(0, np.zeros((3, 2)))], data=np.zeros((2, 2, 2))),
     r"shape \[n, d\]"),
])
def test_samples_figure_errors(kwargs, message):
  with pytest.raises(ValueError, match=message):
    plotting.samples_figure(kwargs.pop("snapshots"), kwargs.pop("data"), **kwargs)


# ----------------------------------------------------------------------------
# image_grid_figure


@pytest.mark.parametrize("channels", [1, 3])
def test_image_grid_mosaic(tmp_path, channels):
  rng = _rng(4)
  images = rng.uniform(-1.5, 1.5, (7, 5, 4, channels))
  fig = plotting.image_grid_figure(images, nrow=3, title="grid", padding=1)
  ax, = fig.axes
  mosaic = np.asarray(ax.images[0].get_array())
  # 3 images per row -> 3 rows; each cell image plus one padding pixel, plus the border.
  assert mosaic.shape[:2] == (3 * 6 + 1, 3 * 5 + 1)
  assert mosaic.ndim == (2 if channels == 1 else 3)
  expected = (np.clip(images, -1, 1) + 1) / 2
  if channels == 1:
    expected = expected[..., 0]
  # Image 4 (0-based) sits in row 1, column 1.
  np.testing.assert_allclose(mosaic[1 + 6:1 + 6 + 5, 1 + 5:1 + 5 + 4], expected[4])
  np.testing.assert_allclose(mosaic[0], 1.0)  # padding is white
  if channels == 1:
    assert ax.images[0].get_cmap().name == "gray"
    assert ax.images[0].get_clim() == (0.0, 1.0)
  _assert_png(plotting.save_figure(fig, tmp_path / f"grid{channels}.png"))


def test_image_grid_default_is_near_square_and_accepts_3d():
  fig = plotting.image_grid_figure(np.zeros((10, 4, 4)), padding=0)
  mosaic = np.asarray(fig.axes[0].images[0].get_array())
  assert mosaic.shape == (3 * 4, 4 * 4)  # ceil(sqrt(10)) = 4 per row
  # Unused cells stay white; used ones hold 0 -> mid grey.
  np.testing.assert_allclose(mosaic[:4, :4], 0.5)
  np.testing.assert_allclose(mosaic[8:, 8:], 1.0)


@pytest.mark.parametrize("images, kwargs, message", [
    (np.zeros((2, 4, 4, 2)), {}, "1 \\(grey\\) or 3 \\(RGB\\) channels; got 2"),
    (np.zeros((4, 4)), {}, r"shape \[n, H, W, C\]"),
    (np.zeros((2, 4, 4, 1)), dict(nrow=0), "nrow must be an integer >= 1"),
    (np.zeros((2, 4, 4, 1)), dict(padding=-1), "padding must be an integer >= 0"),
])
def test_image_grid_errors(images, kwargs, message):
  with pytest.raises(ValueError, match=message):
    plotting.image_grid_figure(images, **kwargs)


# ----------------------------------------------------------------------------
# curves_figure and losses_figure


def _history(n=50):
  steps = np.arange(n) * 10
  decay = np.exp(-np.arange(n) / 10)
  return steps, {
      "d_real": 0.5 + 0.4 * decay, "d_fake": 0.5 - 0.4 * decay,
      "d_loss": 1.0 + decay, "g_loss": list(2.0 - decay),
      "penalty": 0.1 * decay, "penalty_weighted": 0.2 * decay,
      "d_grad_norm": 10.0 * decay, "g_grad_norm": 1.0 + 0 * decay,
  }


def test_curves_with_boundaries(tmp_path):
  steps, history = _history()
  boundaries = [100, 200, 300]
  fig = plotting.curves_figure(steps, history, boundaries=boundaries,
                               boundary_label="beta stage", title="D outputs")
  ax, = fig.axes
  assert len(ax.lines) == 2 + len(boundaries)
  np.testing.assert_allclose(ax.lines[0].get_ydata(), history["d_real"])
  np.testing.assert_allclose(ax.lines[1].get_xdata(), steps)
  for line, b in zip(ax.lines[2:], boundaries):
    np.testing.assert_allclose(line.get_xdata(), [b, b])
    assert line.get_linestyle() == ":"
  labels = ax.get_legend_handles_labels()[1]
  assert labels == ["D(real)", "D(fake)", "beta stage"]
  _assert_png(plotting.save_figure(fig, tmp_path / "curves.png"))


def test_curves_skip_missing_keys_and_keep_nan_gaps():
  steps, history = _history(6)
  history["d_fake"] = [0.1, None, np.nan, 0.2, 0.3, 0.4]
  fig = plotting.curves_figure(steps, history, keys=("d_fake", "missing"), logy=True)
  ax, = fig.axes
  line, = ax.lines
  y = np.asarray(line.get_ydata(), dtype=float)
  np.testing.assert_array_equal(np.isnan(y), [False, True, True, False, False, False])
  assert ax.get_yscale() == "log"


def test_curves_with_no_present_key_is_an_empty_panel():
  fig = plotting.curves_figure(None, {"other": [1, 2]})
  ax, = fig.axes
  assert not ax.lines and "d_real" in ax.texts[0].get_text()


def test_curves_length_mismatch():
  with pytest.raises(ValueError, match="d_real has 3 values but steps has 2"):
    plotting.curves_figure([0, 1], {"d_real": [1, 2, 3]})


def test_losses_panels(tmp_path):
  steps, history = _history()
  fig = plotting.losses_figure(steps, history)
  assert len(fig.axes) == 4
  assert [ax.get_yscale() for ax in fig.axes] == ["linear"] * 3 + ["log"]
  assert [len(ax.lines) for ax in fig.axes] == [1, 1, 2, 2]
  _assert_png(plotting.save_figure(fig, tmp_path / "losses.png"))
  sub = {k: history[k] for k in ("d_loss", "g_grad_norm")}
  fig = plotting.losses_figure(None, sub)
  assert [ax.get_title() for ax in fig.axes] == ["discriminator loss", "gradient norms"]
  fig = plotting.losses_figure(steps, {})
  assert len(fig.axes) == 1 and not fig.axes[0].lines


# ----------------------------------------------------------------------------
# schedules_figure


def _beta_values(steps):
  # 0 for the uniform stage, a geometric ladder, then inf for the data stage.
  steps = np.asarray(steps)
  level = 0.1 * 10.0**((steps - 20) // 20)
  return np.where(steps < 20, 0.0, np.where(steps >= 80, np.inf, level))


def test_schedules_inf_and_zero_beta_without_warnings(tmp_path):
  steps = np.arange(100)
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    fig = plotting.schedules_figure(
        steps, {"beta": _beta_values(steps), "gamma": 2.0 * 0.99**steps}, title="schedules")
    path = plotting.save_figure(fig, tmp_path / "schedules.png")
  _assert_png(path)
  beta_ax, gamma_ax = fig.axes
  assert beta_ax.get_yscale() == "log" and gamma_ax.get_yscale() == "linear"
  curve = np.asarray(beta_ax.lines[0].get_ydata(), dtype=float)
  # Only the ladder is on the curve; 0 and inf are edge markers.
  np.testing.assert_array_equal(np.isfinite(curve), (steps >= 20) & (steps < 80))
  assert sorted(t.get_text() for t in beta_ax.texts) == ["data", "uniform"]
  marker_steps = {t.get_text(): t.xy[0] for t in beta_ax.texts}
  assert marker_steps["data"] >= 80 and marker_steps["uniform"] < 20
  np.testing.assert_allclose(gamma_ax.lines[0].get_ydata(), 2.0 * 0.99**steps)


def test_schedules_accept_callables():
  steps = np.arange(0, 100, 5)
  scalar_only = lambda s: 0.5 if int(s) < 50 else 0.25  # not vectorised
  fig = plotting.schedules_figure(
      steps, {"beta": _beta_values, "sigma": scalar_only}, log_names=("beta",))
  beta_ax, sigma_ax = fig.axes
  expected = _beta_values(steps)
  curve = np.asarray(beta_ax.lines[0].get_ydata(), dtype=float)
  ladder = np.isfinite(expected) & (expected > 0)
  np.testing.assert_allclose(curve[ladder], expected[ladder])
  np.testing.assert_allclose(sigma_ax.lines[0].get_ydata(), np.where(steps < 50, 0.5, 0.25))
  assert sigma_ax.get_yscale() == "linear"


def test_schedules_errors():
  with pytest.raises(ValueError, match="schedules is empty"):
    plotting.schedules_figure([0, 1], {})
  with pytest.raises(ValueError, match="gamma has 1 values but steps has 2"):
    plotting.schedules_figure([0, 1], {"gamma": [1.0]})


# ----------------------------------------------------------------------------
# occupancy_figure and mode_histogram_figure


def test_occupancy(tmp_path):
  steps = np.arange(0, 500, 50)
  share = np.linspace(0.1, 0.6, len(steps))
  fig = plotting.occupancy_figure(steps, share, 0.63, boundaries=[250], title="uniform stage")
  ax, = fig.axes
  generator, reference, boundary = ax.lines
  np.testing.assert_allclose(generator.get_ydata(), share)
  np.testing.assert_allclose(reference.get_ydata(), [0.63, 0.63])
  np.testing.assert_allclose(boundary.get_xdata(), [250, 250])
  _assert_png(plotting.save_figure(fig, tmp_path / "occupancy.png"))
  fig = plotting.occupancy_figure(steps, share, np.full(len(steps), 0.5))
  np.testing.assert_allclose(fig.axes[0].lines[1].get_ydata(), 0.5)
  with pytest.raises(ValueError, match="reference_share has 2 values"):
    plotting.occupancy_figure(steps, share, [0.1, 0.2])


def test_mode_histogram(tmp_path):
  counts = np.array([30, 0, 10, 20])
  weights = np.array([3.0, 1.0, 1.0, 5.0])
  fig = plotting.mode_histogram_figure(counts, weights)
  ax, = fig.axes
  np.testing.assert_allclose([p.get_height() for p in ax.patches], counts)
  expected_line, missing = ax.lines
  np.testing.assert_allclose(expected_line.get_ydata(), 60 * weights / weights.sum())
  np.testing.assert_allclose(missing.get_xdata(), [1])
  assert ax.get_title() == "3 of 4 modes hit, 60 samples"
  _assert_png(plotting.save_figure(fig, tmp_path / "modes.png"))
  fig = plotting.mode_histogram_figure([5, 5, 5], title="uniform")
  np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), 5.0)
  assert len(fig.axes[0].lines) == 1  # no mode without samples


@pytest.mark.parametrize("counts, weights, message", [
    ([1, -1], None, "counts must be"),
    ([], None, "counts must be"),
    ([1, 2], [1.0], "weights has 1 entries but counts has 2"),
    ([1, 2], [0.0, 0.0], "weights must be finite"),
])
def test_mode_histogram_errors(counts, weights, message):
  with pytest.raises(ValueError, match=message):
    plotting.mode_histogram_figure(counts, weights)


# ----------------------------------------------------------------------------
# save_figure


def test_save_creates_dirs_and_replaces(tmp_path):
  fig = plotting.curves_figure([0, 1], {"d_real": [0.6, 0.5]})
  path = tmp_path / "a" / "b" / "curves.png"
  assert plotting.save_figure(fig, path) == str(path)
  _assert_png(path)
  assert os.stat(path).st_mode & 0o777 == 0o644
  first = path.read_bytes()
  fig = plotting.curves_figure([0, 1, 2], {"d_real": [0.6, 0.5, 0.4]})
  plotting.save_figure(fig, path)
  assert path.read_bytes() != first
  _assert_png(path)


def test_save_failure_leaves_previous_file_and_no_temp(tmp_path):
  path = tmp_path / "fig.png"
  good = plotting.curves_figure([0, 1], {"d_real": [0.6, 0.5]})
  plotting.save_figure(good, path)
  before = path.read_bytes()

  bad = plotting.curves_figure([0, 1], {"d_real": [0.6, 0.5]})

  def crash(f, **kwargs):
    f.write(b"\x89PNG half")
    raise RuntimeError("disk full")

  bad.savefig = crash
  with pytest.raises(RuntimeError, match="disk full"):
    plotting.save_figure(bad, path)
  assert path.read_bytes() == before
  assert sorted(os.listdir(tmp_path)) == ["fig.png"]


def test_save_other_formats_and_errors(tmp_path):
  fig = plotting.curves_figure([0, 1], {"d_real": [0.6, 0.5]})
  with open(plotting.save_figure(fig, tmp_path / "f.svg"), "rb") as f:
    assert b"<svg" in f.read()
  with pytest.raises(ValueError, match="unsupported figure format 'jpg'.*valid: png, pdf, svg"):
    plotting.save_figure(fig, tmp_path / "f.jpg")
  with pytest.raises(ValueError, match="dpi must be a number > 0"):
    plotting.save_figure(fig, tmp_path / "f.png", dpi=0)


def test_no_pyplot_imported(tmp_path):
  code = (
      "import sys, numpy as np\n"
      "from gan_jax import plotting\n"
      "fig = plotting.samples_figure([(0, np.zeros((5, 2)))], np.ones((5, 2)))\n"
      f"plotting.save_figure(fig, {str(tmp_path / 'x.png')!r})\n"
      "print('matplotlib.pyplot' in sys.modules, 'jax' in sys.modules)\n")
  env = dict(os.environ)
  env.pop("MPLBACKEND", None)  # the module must not need a backend chosen for it
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=root, env=env, check=True, timeout=120)
  assert out.stdout.split() == ["False", "False"]


class TestSeedFigures:

  def test_band_is_mean_plus_minus_standard_error(self):
    values = np.array([[0.0, 1.0, np.nan], [2.0, 3.0, 5.0], [4.0, 8.0, 7.0]])
    fig = plotting.seed_curves_figure([10, 20, 30], {"modes_captured": values},
                                      seeds=[0, 1, 2])
    ax = fig.axes[0]
    mean_line = ax.lines[3]  # the three seeds, then the mean
    np.testing.assert_allclose(mean_line.get_ydata(), [2.0, 4.0, 6.0])
    band = ax.collections[0].get_paths()[0].vertices
    se = [np.std([0, 2, 4], ddof=1) / np.sqrt(3), np.std([1, 3, 8], ddof=1) / np.sqrt(3),
          np.std([5, 7], ddof=1) / np.sqrt(2)]
    top = {x: y for x, y in band if x in (10, 20, 30) and y >= [2, 4, 6][[10, 20, 30].index(x)]}
    np.testing.assert_allclose([top[10], top[20], top[30]], np.add([2, 4, 6], se))
    with pytest.raises(ValueError, match=r"shape \[seeds=2, steps\]"):
      plotting.seed_curves_figure([1, 2, 3], {"a": values}, seeds=[0, 1])

  def test_small_multiples_one_panel_per_seed(self):
    rng = np.random.default_rng(0)
    fig = plotting.seed_samples_figure([(s, rng.normal(size=(50, 2))) for s in range(7)],
                                       rng.normal(size=(80, 2)))
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titled == [f"seed {s}" for s in range(7)]
    images = plotting.seed_samples_figure([(s, rng.uniform(-1, 1, (4, 8, 8, 1)))
                                           for s in range(2)])
    assert len(images.axes[0].images) == 1
    with pytest.raises(ValueError, match="one shape"):
      plotting.seed_samples_figure([(0, np.zeros((3, 2))), (1, np.zeros((3, 3)))])
