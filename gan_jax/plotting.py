"""Figures a GAN researcher would otherwise draw by hand.

Every function takes NumPy arrays or Python lists (no JAX needed) and returns a
``matplotlib.figure.Figure`` built with the object-oriented API only: no
``pyplot``, no global backend or figure registry. So the figures can be built
headless, in several threads at once and inside a training loop without leaking
memory (nothing keeps a reference to a figure once the caller drops it), and a
notebook displays a returned ``Figure`` as it is. :func:`save_figure` writes one
to disk atomically.

  >>> import numpy as np
  >>> from gan_jax import plotting
  >>> steps = np.arange(0, 100, 10)
  >>> fig = plotting.curves_figure(
  ...     steps, {'d_real': np.linspace(0.9, 0.5, 10),
  ...             'd_fake': np.linspace(0.1, 0.5, 10)}, boundaries=[50])
  >>> len(fig.axes[0].lines)  # two curves and one stage boundary
  3
"""

from __future__ import annotations

import math
import numbers
import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np
from matplotlib.figure import Figure

__all__ = [
    "curves_figure",
    "image_grid_figure",
    "losses_figure",
    "mode_histogram_figure",
    "occupancy_figure",
    "samples_figure",
    "save_figure",
    "schedules_figure",
    "sweep_curves_figure",
]

ArrayLike = Any

_DPI = 110
_SAVE_FORMATS = ("png", "pdf", "svg")
_PANEL = 2.8  # inches per panel side
_DATA_COLOR = "0.75"
_SAMPLE_COLOR = "C0"
_CENTER_COLOR = "C3"
_BOUNDARY_STYLE = dict(color="0.35", linestyle=":", linewidth=1.0)

# Display names of the metrics the games report.
_LABELS = {
    "d_real": "D(real)",
    "d_fake": "D(fake)",
    "d_fake_gen": "D(G(z)), G step",
    "d_loss": "D loss",
    "g_loss": "G loss",
    "penalty": "penalty",
    "penalty_weighted": "weighted penalty",
    "d_grad_norm": "|grad D|",
    "g_grad_norm": "|grad G|",
}

# (panel title, metric names, log y axis) of losses_figure.
_LOSS_PANELS = (
    ("discriminator loss", ("d_loss",), False),
    ("generator loss", ("g_loss",), False),
    ("penalty", ("penalty", "penalty_weighted"), False),
    ("gradient norms", ("d_grad_norm", "g_grad_norm"), True),
)


# ----------------------------------------------------------------------------
# Saving.


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = _DPI) -> str:
  """Writes ``fig`` to ``path`` atomically, creating parent directories.

  The image is rendered into a temporary file next to ``path`` and moved over
  it with ``os.replace``, so a reader (or a crash mid-write) never sees a
  half-written file: ``path`` holds either the previous image or the new one.

  Args:
    fig: the figure.
    path: destination; the suffix picks the format (``.png``, ``.pdf`` or
      ``.svg``; no suffix means PNG).
    dpi: resolution of raster output.

  Returns:
    ``path`` as a string.

  Raises:
    ValueError: for another suffix or a non-positive ``dpi``.
  """
  path = os.fspath(path)
  suffix = os.path.splitext(path)[1].lower().lstrip(".")
  fmt = suffix or "png"
  if fmt not in _SAVE_FORMATS:
    raise ValueError(f"unsupported figure format {suffix!r} in {path!r}; "
                     f"valid: {', '.join(_SAVE_FORMATS)}")
  if not isinstance(dpi, numbers.Real) or not dpi > 0:
    raise ValueError(f"dpi must be a number > 0; got {dpi!r}")
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
  try:
    # mkstemp creates the file private (0600); give it an ordinary file's mode.
    os.chmod(tmp, os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644)
    with os.fdopen(fd, "wb") as f:
      fig.savefig(f, format=fmt, dpi=dpi)
      f.flush()
      # Data on disk before the rename, or a power cut could leave an empty file.
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  return path


# ----------------------------------------------------------------------------
# Input helpers.


def _new_figure(nrows: int, ncols: int, *, panel=(_PANEL, _PANEL), squeeze=False, **kw):
  fig = Figure(figsize=(panel[0] * ncols, panel[1] * nrows), layout="constrained")
  axes = fig.subplots(nrows, ncols, squeeze=squeeze, **kw)
  return fig, axes


def _grid_figure(nrows: int, ncols: int, *, panel=(_PANEL, _PANEL)):
  # Fixed margins instead of the constrained layout: for grids of like panels
  # (one per seed) it looks the same and renders in about half the time.
  height = panel[1] * nrows + 0.6
  fig = Figure(figsize=(panel[0] * ncols, height))
  axes = fig.subplots(nrows, ncols, squeeze=False)
  fig.subplots_adjust(left=0.5 / (panel[0] * ncols), right=1 - 0.15 / (panel[0] * ncols),
                      bottom=0.45 / height, top=1 - 0.8 / height, wspace=0.3, hspace=0.5)
  return fig, axes


def _title(fig: Figure, title: str) -> None:
  """The figure's title; on a fixed-margin grid, 0.1 inch below the top edge."""
  if fig.get_layout_engine() is None:
    fig.suptitle(title, y=1 - 0.1 / fig.get_figheight(), va="top")
  else:
    fig.suptitle(title)


def _series(name: str, values: ArrayLike, length: Optional[int] = None) -> np.ndarray:
  """A float vector; ``None`` entries become NaN (a gap in the line)."""
  if isinstance(values, (list, tuple)):
    values = [np.nan if v is None else v for v in values]
  arr = np.asarray(values, dtype=np.float64)
  if arr.ndim == 0:
    arr = arr[None]
  if arr.ndim != 1:
    raise ValueError(f"{name} must be a 1-D sequence of numbers; got shape {arr.shape}")
  if length is not None and arr.shape[0] != length:
    raise ValueError(f"{name} has {arr.shape[0]} values but steps has {length}; "
                     "every series must have one value per step")
  return arr


def _steps(steps: Optional[ArrayLike], length: Optional[int]) -> np.ndarray:
  if steps is None:
    if length is None:
      raise ValueError("steps is None and no series gives a length; pass steps")
    return np.arange(length, dtype=np.float64)
  return _series("steps", steps)


def _first_length(series: Mapping[str, Any], names) -> Optional[int]:
  for name in names:
    if name in series:
      return len(_series(name, series[name]))
  return None


def _points(name: str, x: ArrayLike) -> np.ndarray:
  """A point cloud as a float ``[n, d]`` array (1-D input means ``d = 1``)."""
  arr = np.asarray(x, dtype=np.float64)
  if arr.ndim == 1:
    arr = arr[:, None]
  if arr.ndim != 2 or arr.shape[1] < 1:
    raise ValueError(f"{name} must have shape [n, d] (or [n] for d = 1); got {arr.shape}")
  return arr


def _check_positive_int(name: str, value: Any) -> int:
  if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
    raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
  return int(value)


def _subsample(x: np.ndarray, max_points: int, seed: int) -> np.ndarray:
  # A fixed seed keeps successive figures of one run comparable; a random (not
  # strided) subset because samples are often ordered by mode.
  if x.shape[0] <= max_points:
    return x
  idx = np.random.default_rng(seed).choice(x.shape[0], size=max_points, replace=False)
  return x[np.sort(idx)]


def _evenly_spaced(n: int, k: int) -> np.ndarray:
  """Up to ``k`` indices into ``range(n)``, evenly spaced, first and last included."""
  if n <= k:
    return np.arange(n)
  return np.unique(np.round(np.linspace(0, n - 1, k)).astype(int))


def _box_limits(box: Any, d: int) -> Optional[np.ndarray]:
  """``box`` as per-coordinate ``[d, 2]`` limits: a pair ``(a, b)`` or a ``[d, 2]`` array."""
  if box is None:
    return None
  arr = np.asarray(box, dtype=np.float64)
  if arr.shape == (2,):
    arr = np.tile(arr, (d, 1))
  elif arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < d:
    raise ValueError(f"box must be a pair (low, high) or an array of shape [{d}, 2]; "
                     f"got shape {arr.shape}")
  arr = arr[:d]
  if not np.all(np.isfinite(arr)) or np.any(arr[:, 0] >= arr[:, 1]):
    raise ValueError(f"box limits must be finite with low < high; got {arr.tolist()}")
  return arr


def _mark_boundaries(ax, boundaries, label) -> None:
  for i, b in enumerate(boundaries or ()):
    ax.axvline(float(b), label=label if i == 0 and label else None, **_BOUNDARY_STYLE)


def _empty_panel(ax, message: str) -> None:
  ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes,
          fontsize=9, color="0.4", wrap=True)
  ax.set_xticks([])
  ax.set_yticks([])


# ----------------------------------------------------------------------------
# Samples.


def samples_figure(snapshots: Sequence[tuple[int, ArrayLike]] | Mapping[int, ArrayLike],
                   data: ArrayLike, *, centers: Optional[ArrayLike] = None,
                   box: Any = None, title: Optional[str] = None, max_points: int = 2000,
                   max_snapshots: int = 6) -> Figure:
  """Generator samples at several training steps against the data.

  The layout follows the dimension ``d`` of the samples:

  * ``d = 1``: one histogram panel per snapshot (data filled grey, samples as a
    coloured outline, mode centres as ``x`` on the axis);
  * ``d = 2``: one scatter panel per snapshot (data light grey, samples
    coloured, centres as ``x``, ``box`` as the axis limits);
  * ``d = 3``: one row per snapshot with the projections on (x1, x2), (x1, x3)
    and (x2, x3);
  * ``d > 3``: as ``d = 3`` on the first three coordinates, with a note.

  Non-finite samples (a diverged generator) are left out and counted in the
  panel title.

  Args:
    snapshots: ``(step, samples)`` pairs (or a ``{step: samples}`` mapping) in
      training order; ``samples`` of shape ``[n, d]`` (or ``[n]`` for ``d = 1``).
    data: reference samples ``[m, d]``.
    centers: optional mode centres ``[k, d]``.
    box: optional axis limits, a pair ``(a, b)`` for the box ``[a, b]^d`` or a
      ``[d, 2]`` array of per-coordinate limits.
    title: optional figure title.
    max_points: at most this many points of each cloud are drawn (a fixed random
      subset), which keeps the file small.
    max_snapshots: at most this many snapshots are drawn, evenly spaced and
      always including the first and the last.

  Returns:
    The figure.

  Raises:
    ValueError: for empty ``snapshots``, mismatched dimensions or bad limits.

  References:
    Mehrjou, Schölkopf & Saremi, "Annealed Generative Adversarial Networks", 2017 (Figs. 1-2).
  """
  items = list(snapshots.items() if isinstance(snapshots, Mapping) else snapshots)
  if not items:
    raise ValueError("snapshots is empty; pass at least one (step, samples) pair")
  max_points = _check_positive_int("max_points", max_points)
  max_snapshots = _check_positive_int("max_snapshots", max_snapshots)
  data = _points("data", data)
  d = data.shape[1]
  chosen = []
  for i in _evenly_spaced(len(items), max_snapshots):
    step, samples = items[i]
    samples = _points(f"samples at step {step}", samples)
    if samples.shape[1] != d:
      raise ValueError(f"samples at step {step} have dimension {samples.shape[1]} but data "
                       f"has {d}; they must match")
    chosen.append((step, samples))
  if centers is not None:
    centers = _points("centers", centers)
    if centers.shape[1] != d:
      raise ValueError(f"centers have dimension {centers.shape[1]} but data has {d}; "
                       "they must match")
  limits = _box_limits(box, min(d, 3))
  data = _subsample(data, max_points, seed=0)

  if d == 1:
    fig = _samples_1d(chosen, data, centers, limits, max_points)
  else:
    fig = _samples_projections(chosen, data, centers, limits, max_points)
  if d > 3:
    fig.supxlabel(f"first 3 of {d} coordinates shown", fontsize=9, color="0.3")
  if title:
    _title(fig, title)
  return fig


def _finite_rows(x: np.ndarray) -> tuple[np.ndarray, int]:
  keep = np.all(np.isfinite(x), axis=1)
  return x[keep], int(x.shape[0] - keep.sum())


def _snapshot_title(step, dropped: int, suffix: str = "") -> str:
  text = f"step {step}{suffix}"
  return text + (f" ({dropped} non-finite)" if dropped else "")


def _samples_1d(chosen, data, centers, limits, max_points) -> Figure:
  fig, axes = _new_figure(1, len(chosen), panel=(_PANEL, 0.8 * _PANEL))
  data_1d, _ = _finite_rows(data)
  for (step, samples), ax in zip(chosen, axes[0]):
    samples, dropped = _finite_rows(_subsample(samples, max_points, seed=1))
    if limits is not None:
      lo, hi = limits[0]
    else:
      both = np.concatenate([data_1d[:, 0], samples[:, 0]])
      lo, hi = (both.min(), both.max()) if both.size else (-1.0, 1.0)
      if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    bins = np.linspace(lo, hi, 51)
    if data_1d.size:
      ax.hist(data_1d[:, 0], bins=bins, density=True, histtype="stepfilled",
              color=_DATA_COLOR, label="data")
    if samples.size:
      ax.hist(samples[:, 0], bins=bins, density=True, histtype="step",
              color=_SAMPLE_COLOR, linewidth=1.5, label="samples")
    if centers is not None:
      ax.plot(centers[:, 0], np.zeros(len(centers)), "x", color=_CENTER_COLOR,
              clip_on=False, label="centres")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("x")
    ax.set_title(_snapshot_title(step, dropped), fontsize=10)
  axes[0, 0].set_ylabel("density")
  axes[0, -1].legend(fontsize=8, loc="upper right")
  return fig


def _samples_projections(chosen, data, centers, limits, max_points) -> Figure:
  d = data.shape[1]
  pairs = [(0, 1)] if d == 2 else [(0, 1), (0, 2), (1, 2)]
  # Like panels on a grid: fixed margins (the constrained layout's extent
  # searches over 18 panels took most of a run's figure time).
  if d == 2:
    fig, axes = _grid_figure(1, len(chosen))
    rows = [[ax] for ax in axes[0]]
  else:
    fig, axes = _grid_figure(len(chosen), len(pairs))
    rows = list(axes)
  for (step, samples), row in zip(chosen, rows):
    samples, dropped = _finite_rows(_subsample(samples, max_points, seed=1))
    for (i, j), ax in zip(pairs, row):
      ax.scatter(data[:, i], data[:, j], s=3, color=_DATA_COLOR, linewidths=0,
                 rasterized=True, label="data")
      ax.scatter(samples[:, i], samples[:, j], s=3, color=_SAMPLE_COLOR, alpha=0.6,
                 linewidths=0, rasterized=True, label="samples")
      if centers is not None:
        ax.plot(centers[:, i], centers[:, j], "x", color=_CENTER_COLOR, markersize=6,
                label="centres")
      if limits is not None:
        ax.set_xlim(*limits[i])
        ax.set_ylim(*limits[j])
        ax.set_aspect("equal", adjustable="box")
      ax.set_xlabel(f"x{i + 1}", labelpad=1)
      ax.set_ylabel(f"x{j + 1}", labelpad=1)
      suffix = "" if d == 2 else f": x{i + 1}-x{j + 1}"
      ax.set_title(_snapshot_title(step, dropped, suffix), fontsize=10)
  handles, labels = rows[-1][-1].get_legend_handles_labels()
  rows[-1][-1].legend(handles, labels, fontsize=7, loc="upper right", markerscale=2)
  return fig


def seed_samples_figure(samples: Sequence[tuple[Any, ArrayLike]], data: Optional[ArrayLike]
                        = None, *, centers: Optional[ArrayLike] = None, box: Any = None,
                        title: Optional[str] = None, max_points: int = 1000,
                        images_per_seed: int = 16) -> Figure:
  """Small multiples: one panel per seed of the same run, at the same step.

  Points (``[n, d]``) are drawn over the data as in :func:`samples_figure`
  (``d = 1`` a histogram, ``d >= 2`` the (x1, x2) projection); images
  (``[n, H, W, C]``) as a mosaic of the first ``images_per_seed``.

  Args:
    samples: ``(seed, samples)`` pairs.
    data: reference points ``[m, d]`` (points only; ignored for images).
    centers: optional mode centres ``[k, d]``.
    box: optional axis limits (as :func:`samples_figure`).
    title: optional figure title.
    max_points: at most this many points of each cloud are drawn.
    images_per_seed: images shown per seed.

  Returns:
    The figure, one axes per seed.

  Raises:
    ValueError: for no samples or samples of different shapes.
  """
  items = list(samples)
  if not items:
    raise ValueError("samples is empty; pass at least one (seed, samples) pair")
  shapes = {np.shape(x)[1:] for _, x in items}
  if len(shapes) != 1:
    raise ValueError(f"every seed's samples must have one shape; got {sorted(shapes)}")
  cols = min(len(items), 5)
  rows = math.ceil(len(items) / cols)
  fig, axes = _grid_figure(rows, cols, panel=(0.8 * _PANEL, 0.8 * _PANEL))
  flat = list(axes.reshape(-1))
  image = len(shapes.pop()) >= 2
  if not image:
    data = None if data is None else _subsample(_points("data", data), max_points, seed=0)
    limits = _box_limits(box, min(data.shape[1] if data is not None else 2, 3))
  for (seed, x), ax in zip(items, flat):
    if image:
      arr = np.asarray(x, np.float64)[:images_per_seed]
      arr = arr if arr.ndim == 4 else arr[..., None]
      n, h, w, c = arr.shape
      ncol = math.ceil(math.sqrt(n))
      nrows = math.ceil(n / ncol)
      mosaic = np.ones((nrows * (h + 1) + 1, ncol * (w + 1) + 1, c))
      arr = (np.clip(np.nan_to_num(arr, nan=0.0), -1.0, 1.0) + 1.0) / 2.0
      for k in range(n):
        top, left = 1 + (k // ncol) * (h + 1), 1 + (k % ncol) * (w + 1)
        mosaic[top:top + h, left:left + w] = arr[k]
      ax.imshow(mosaic[..., 0] if c == 1 else mosaic, cmap="gray" if c == 1 else None,
                vmin=0.0, vmax=1.0, interpolation="nearest")
      ax.set_axis_off()
      ax.set_title(f"seed {seed}", fontsize=9)
      continue
    pts, dropped = _finite_rows(_subsample(_points(f"samples of seed {seed}", x), max_points,
                                           seed=1))
    if pts.shape[1] == 1:
      both = pts[:, 0] if data is None else np.concatenate([data[:, 0], pts[:, 0]])
      lo, hi = limits[0] if limits is not None else (both.min(), both.max())
      bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 41)
      if data is not None:
        ax.hist(data[:, 0], bins=bins, density=True, histtype="stepfilled", color=_DATA_COLOR)
      ax.hist(pts[:, 0], bins=bins, density=True, histtype="step", color=_SAMPLE_COLOR)
    else:
      if data is not None:
        ax.scatter(data[:, 0], data[:, 1], s=2, color=_DATA_COLOR, linewidths=0,
                   rasterized=True)
      ax.scatter(pts[:, 0], pts[:, 1], s=2, color=_SAMPLE_COLOR, alpha=0.6, linewidths=0,
                 rasterized=True)
      if centers is not None:
        c = _points("centers", centers)
        ax.plot(c[:, 0], c[:, 1], "x", color=_CENTER_COLOR, markersize=4)
      if limits is not None:
        ax.set_xlim(*limits[0])
        ax.set_ylim(*limits[1])
        ax.set_aspect("equal", adjustable="box")
    ax.set_title(f"seed {seed}" + (f" ({dropped} non-finite)" if dropped else ""), fontsize=9)
  for ax in flat[len(items):]:
    ax.set_axis_off()
  if title:
    _title(fig, title)
  return fig


# ----------------------------------------------------------------------------
# Images.


def image_grid_figure(images: ArrayLike, *, nrow: Optional[int] = None,
                      title: Optional[str] = None, padding: int = 2) -> Figure:
  """Images in a grid, as a single mosaic (one axes, however many images).

  Args:
    images: ``[n, H, W, C]`` with ``C`` 1 (grey) or 3 (RGB), or ``[n, H, W]``
      (grey); values in ``[-1, 1]`` (the generator's tanh range). Values outside
      are clipped; NaN is drawn as mid-grey (0).
    nrow: images per row of the grid (as in torchvision's ``make_grid``);
      default ``ceil(sqrt(n))``, a near-square grid.
    title: optional figure title.
    padding: white pixels between images, ``>= 0``.

  Returns:
    The figure; ``fig.axes[0].images[0]`` holds the mosaic.

  Raises:
    ValueError: for another shape, channel count or a bad ``nrow``/``padding``.
  """
  arr = np.asarray(images, dtype=np.float64)
  if arr.ndim == 3:
    arr = arr[..., None]
  if arr.ndim != 4 or arr.shape[0] < 1:
    raise ValueError(f"images must have shape [n, H, W, C] or [n, H, W] with n >= 1; "
                     f"got {np.shape(images)}")
  n, h, w, c = arr.shape
  if c not in (1, 3):
    raise ValueError(f"images must have 1 (grey) or 3 (RGB) channels; got {c}")
  ncol = math.ceil(math.sqrt(n)) if nrow is None else _check_positive_int("nrow", nrow)
  ncol = min(ncol, n)
  if isinstance(padding, bool) or not isinstance(padding, numbers.Integral) or padding < 0:
    raise ValueError(f"padding must be an integer >= 0; got {padding!r}")
  rows = math.ceil(n / ncol)
  arr = (np.clip(np.nan_to_num(arr, nan=0.0), -1.0, 1.0) + 1.0) / 2.0

  mosaic = np.ones((rows * (h + padding) + padding, ncol * (w + padding) + padding, c))
  for k in range(n):
    top = padding + (k // ncol) * (h + padding)
    left = padding + (k % ncol) * (w + padding)
    mosaic[top:top + h, left:left + w] = arr[k]

  height_px, width_px = mosaic.shape[:2]
  # Scale so the long side is 3-10 inches whatever the image size.
  scale = min(10.0, max(3.0, max(height_px, width_px) / 40.0)) / max(height_px, width_px)
  fig = Figure(figsize=(width_px * scale + 0.2, height_px * scale + (0.5 if title else 0.2)),
               layout="constrained")
  ax = fig.subplots()
  if c == 1:
    ax.imshow(mosaic[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
  else:
    ax.imshow(mosaic, interpolation="nearest")
  ax.set_axis_off()
  if title:
    _title(fig, title)
  return fig


# ----------------------------------------------------------------------------
# Training curves.


def curves_figure(steps: Optional[ArrayLike], history: Mapping[str, ArrayLike], *,
                  keys: Sequence[str] = ("d_real", "d_fake"),
                  boundaries: Optional[Sequence[float]] = None,
                  boundary_label: Optional[str] = None, logy: bool = False,
                  title: Optional[str] = None,
                  bands: Optional[Mapping[str, ArrayLike]] = None) -> Figure:
  """Metrics over training on one axes, with optional stage boundaries.

  The default keys give beta-GAN's Fig. 3: the discriminator's mean output on
  real and on generated samples, with the stages of the beta schedule as
  vertical dotted lines. A balanced game keeps both near 1/2; D(real) -> 1 and
  D(fake) -> 0 means the discriminator has won.

  Args:
    steps: step of each entry (``None``: 0, 1, 2, ...).
    history: metric name -> values, one per step. NaN (or ``None``) entries
      leave gaps in the line.
    keys: metrics to draw; names missing from ``history`` are skipped.
    boundaries: steps at which to draw vertical dotted lines (stage changes).
    boundary_label: legend entry of the boundary lines.
    logy: logarithmic y axis (non-positive values are hidden).
    title: optional axes title.
    bands: metric name -> half-widths (e.g. the standard error over seeds of
      a mean curve), drawn as a shaded band ``value +- half-width``.

  Returns:
    The figure (one axes; its ``lines`` are the curves then the boundaries).

  Raises:
    ValueError: if a drawn series and ``steps`` differ in length.

  References:
    Mehrjou, Schölkopf & Saremi, "Annealed Generative Adversarial Networks", 2017 (Fig. 3).
  """
  present = [k for k in keys if k in history]
  x = _steps(steps, _first_length(history, present) or 0)
  fig, axes = _new_figure(1, 1, panel=(6.0, 3.5))
  ax = axes[0, 0]
  for key in present:
    y = _series(key, history[key], len(x))
    line, = ax.plot(x, y, label=_LABELS.get(key, key), linewidth=1.2)
    if bands is not None and key in bands:
      half = _series(f"{key} band", bands[key], len(x))
      ax.fill_between(x, y - half, y + half, color=line.get_color(), alpha=0.2, linewidth=0)
  if not present:
    _empty_panel(ax, f"none of {', '.join(keys)} recorded")
  _mark_boundaries(ax, boundaries, boundary_label)
  if logy:
    ax.set_yscale("log", nonpositive="mask")
  ax.set_xlabel("step")
  if title:
    ax.set_title(title)
  if ax.get_legend_handles_labels()[0]:
    ax.legend(fontsize=8)
  return fig


def _mean_and_se(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """NaN-aware mean and standard error over the first axis (SE 0 for one value)."""
  finite = np.isfinite(values)
  n = finite.sum(axis=0)
  with np.errstate(invalid="ignore", divide="ignore"):
    mean = np.where(n > 0, np.nansum(values, axis=0) / np.maximum(n, 1), np.nan)
    dev = np.where(finite, values - mean, 0.0)
    var = (dev ** 2).sum(axis=0) / np.maximum(n - 1, 1)
    se = np.where(n > 1, np.sqrt(var / np.maximum(n, 1)), np.where(n == 1, 0.0, np.nan))
  return mean, se


def _metric_panels(names: Sequence[str]) -> tuple[Figure, list]:
  """A grid of up to 4 columns, one panel per metric (a note if there is none)."""
  cols = max(1, min(len(names), 4))
  rows = max(1, math.ceil(len(names) / cols))
  fig, axes = _grid_figure(rows, cols, panel=(3.6, 2.9))
  flat = list(axes.reshape(-1))
  if not names:
    _empty_panel(flat[0], "no metrics recorded")
  return fig, flat


def _finish_metric_panels(fig: Figure, flat: list, names: Sequence[str],
                          title: Optional[str]) -> Figure:
  """Hides the unused panels, puts the legend in the last used one, titles."""
  for ax in flat[len(names):] if names else flat[1:]:
    ax.set_axis_off()
  if names:
    flat[len(names) - 1].legend(fontsize=6, loc="best")
  if title:
    _title(fig, title)
  return fig


def seed_curves_figure(steps: Optional[ArrayLike], per_seed: Mapping[str, ArrayLike], *,
                       seeds: Sequence[Any], keys: Optional[Sequence[str]] = None,
                       boundaries: Optional[Sequence[float]] = None,
                       title: Optional[str] = None, show_mean: bool = True) -> Figure:
  """Metrics of a run of several seeds: every seed and their mean with a band.

  One panel per metric: each seed as a thin line, the mean over seeds as a
  thick line and mean +- one standard error (``std / sqrt(S)``, ``ddof = 1``,
  over the seeds with a finite value at that step) as a shaded band.

  Args:
    steps: step of each entry (``None``: 0, 1, 2, ...).
    per_seed: metric name -> values ``[S, T]`` (seed, step); NaN leaves gaps.
    seeds: the S run seeds, for the legend.
    keys: metrics to draw, in order (default: all of ``per_seed``); names
      missing from ``per_seed`` are skipped.
    boundaries: steps at which to draw vertical dotted lines (stage changes).
    title: optional figure title.
    show_mean: draw the mean and its band (False for replicas that are not
      draws of one condition, e.g. a sweep's: ``sweep_curves_figure``).

  Returns:
    The figure, one axes per drawn metric (a note panel if none applies).

  Raises:
    ValueError: if a series is not ``[S, T]`` with S the number of seeds and T
      the number of steps.
  """
  names = [k for k in (per_seed if keys is None else keys) if k in per_seed]
  seeds = list(seeds)
  arrays = {}
  for k in names:
    a = np.asarray(per_seed[k], dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != len(seeds):
      raise ValueError(f"{k!r}: expected values of shape [seeds={len(seeds)}, steps], got "
                       f"{a.shape}")
    arrays[k] = a
  length = next(iter(arrays.values())).shape[1] if arrays else 0
  x = _steps(steps, length)
  for k, a in arrays.items():
    if a.shape[1] != len(x):
      raise ValueError(f"{k!r} has {a.shape[1]} steps but steps has {len(x)}; they must match")
  fig, flat = _metric_panels(names)
  for k, ax in zip(names, flat):
    a = arrays[k]
    for i, seed in enumerate(seeds):
      ax.plot(x, a[i], linewidth=0.7, alpha=0.45, label=f"seed {seed}")
    if show_mean:
      mean, se = _mean_and_se(a)
      ax.fill_between(x, mean - se, mean + se, color="k", alpha=0.18, linewidth=0,
                      label="mean +- SE")
      ax.plot(x, mean, color="k", linewidth=1.8, label=f"mean of {len(seeds)}")
    _mark_boundaries(ax, boundaries, None)
    ax.set_title(_LABELS.get(k, k), fontsize=10)
    ax.set_xlabel("step")
  return _finish_metric_panels(fig, flat, names, title)


def sweep_curves_figure(steps: Optional[ArrayLike],
                        groups: Mapping[str, Mapping[str, ArrayLike]], *,
                        keys: Optional[Sequence[str]] = None,
                        title: Optional[str] = None) -> Figure:
  """Metrics of a sweep: per swept value, the mean over its seeds with a band.

  One panel per metric; each value is one colour: its seeds' mean as a line
  and mean +- one standard error (as :func:`seed_curves_figure` computes them)
  as a shaded band.

  Args:
    steps: step of each entry (``None``: 0, 1, 2, ...).
    groups: value label (e.g. ``'gamma=0.1'``) -> metric name -> values
      ``[S, T]`` of that value's S seeds (S may differ between values).
    keys: metrics to draw, in order (default: those of the first group);
      names no group has are skipped.
    title: optional figure title.

  Returns:
    The figure (a note panel if no metric applies).

  Raises:
    ValueError: if a series is not ``[S, T]`` with T the number of steps.
  """
  labels = list(groups)
  first = groups[labels[0]] if labels else {}
  names = [k for k in (first if keys is None else keys)
           if any(k in groups[g] for g in labels)]
  arrays = {}
  for g in labels:
    for k in names:
      if k in groups[g]:
        a = np.asarray(groups[g][k], dtype=np.float64)
        if a.ndim != 2:
          raise ValueError(f"{g!r}, {k!r}: expected values of shape [seeds, steps], got "
                           f"{a.shape}")
        arrays[g, k] = a
  length = next(iter(arrays.values())).shape[1] if arrays else 0
  x = _steps(steps, length)
  for (g, k), a in arrays.items():
    if a.shape[1] != len(x):
      raise ValueError(f"{g!r}, {k!r} has {a.shape[1]} steps but steps has {len(x)}; they "
                       "must match")
  fig, flat = _metric_panels(names)
  colors = [f"C{i % 10}" for i in range(len(labels))]  # matplotlib's default cycle
  for k, ax in zip(names, flat):
    for g, color in zip(labels, colors):
      if (g, k) not in arrays:
        continue
      a = arrays[g, k]
      mean, se = _mean_and_se(a)
      ax.fill_between(x, mean - se, mean + se, color=color, alpha=0.2, linewidth=0)
      ax.plot(x, mean, color=color, linewidth=1.6, label=f"{g} ({a.shape[0]} seeds)")
    ax.set_title(_LABELS.get(k, k), fontsize=10)
    ax.set_xlabel("step")
  return _finish_metric_panels(fig, flat, names, title)


def losses_figure(steps: Optional[ArrayLike], history: Mapping[str, ArrayLike]) -> Figure:
  """Losses, penalty and gradient norms over training, one panel each.

  Panels, each drawn only if one of its metrics is in ``history``: ``d_loss``;
  ``g_loss``; ``penalty`` and ``penalty_weighted``; ``d_grad_norm`` and
  ``g_grad_norm`` on a log axis (gradient norms span decades when a game
  diverges or a penalty bites).

  Args:
    steps: step of each entry (``None``: 0, 1, 2, ...).
    history: metric name -> values, one per step; other names are ignored.

  Returns:
    The figure, one axes per drawn panel (a single note panel if none applies).

  Raises:
    ValueError: if a drawn series and ``steps`` differ in length.
  """
  panels = [(t, [k for k in names if k in history], log)
            for t, names, log in _LOSS_PANELS]
  panels = [p for p in panels if p[1]]
  names = [k for _, ks, _ in panels for k in ks]
  x = _steps(steps, _first_length(history, names) if names else 0)
  fig, axes = _new_figure(1, max(1, len(panels)), panel=(3.6, 2.9))
  if not panels:
    _empty_panel(axes[0, 0], "no loss metrics recorded")
    return fig
  for (panel_title, keys, log), ax in zip(panels, axes[0]):
    for key in keys:
      ax.plot(x, _series(key, history[key], len(x)), label=_LABELS.get(key, key),
              linewidth=1.0)
    if log:
      ax.set_yscale("log", nonpositive="mask")
    ax.set_title(panel_title, fontsize=10)
    ax.set_xlabel("step")
    if len(keys) > 1:
      ax.legend(fontsize=8)
  return fig


# ----------------------------------------------------------------------------
# Schedules.


def schedules_figure(steps: ArrayLike, schedules: Mapping[str, Any], *,
                     log_names: Optional[Sequence[str]] = None,
                     title: Optional[str] = None) -> Figure:
  """Annealed quantities over training, one panel per schedule.

  A schedule is drawn on a log axis when named in ``log_names`` or, by default,
  when its name starts with ``beta`` or it takes the value ``+inf``. On a log
  axis ``+inf`` (beta-GAN's raw-data stage) is drawn as markers along the top
  edge annotated ``data`` and ``0`` (the uniform stage) along the bottom edge
  annotated ``uniform``; a non-log axis marks ``+inf`` at the top as ``inf``.

  Args:
    steps: the steps at which the schedules are given.
    schedules: name -> values at ``steps``, or name -> a schedule function
      (``step -> value``, e.g. an optax schedule), which is evaluated at
      ``steps``.
    log_names: names to draw on a log axis (default: automatic, see above).
    title: optional figure title.

  Returns:
    The figure, one axes per schedule.

  Raises:
    ValueError: for no schedules or a series whose length differs from ``steps``.

  References:
    Mehrjou, Schölkopf & Saremi, "Annealed Generative Adversarial Networks", 2017 (Algorithm 1).
  """
  if not schedules:
    raise ValueError("schedules is empty; pass at least one name -> values entry")
  x = _series("steps", steps)
  fig, axes = _new_figure(1, len(schedules), panel=(3.6, 2.9))
  for (name, values), ax in zip(schedules.items(), axes[0]):
    if callable(values):
      values = _evaluate_schedule(values, x)
    y = _series(name, values, len(x))
    posinf = y == np.inf
    is_beta = str(name).lower().startswith("beta")
    log = (name in log_names) if log_names is not None else (is_beta or bool(posinf.any()))
    finite = np.where(np.isfinite(y), y, np.nan)
    if log:
      zero = y == 0
      # Log axes cannot show 0 or inf: they become labelled markers at the edges.
      ax.plot(x, np.where(finite > 0, finite, np.nan), drawstyle="steps-post", linewidth=1.2)
      ax.set_yscale("log")
      if not np.any(finite > 0):
        ax.set_ylim(0.1, 10.0)
      _edge_markers(ax, x[zero], 0.02, "uniform" if is_beta else "0")
    else:
      ax.plot(x, finite, linewidth=1.2)
    _edge_markers(ax, x[posinf], 0.98, "data" if is_beta else "inf")
    ax.set_title(str(name), fontsize=10)
    ax.set_xlabel("step")
  if title:
    _title(fig, title)
  return fig


def _evaluate_schedule(fn, x: np.ndarray) -> np.ndarray:
  ints = x.astype(np.int64)
  try:
    out = np.asarray(fn(ints), dtype=np.float64)
  except (TypeError, ValueError):
    out = None  # Python control flow on the step: a schedule for scalar steps only.
  if out is None or out.shape != x.shape:
    out = np.asarray([float(fn(int(s))) for s in ints])
  return out


def _edge_markers(ax, xs: np.ndarray, y_axes: float, label: str) -> None:
  """Markers at the given steps at a fixed height in axes coordinates."""
  if xs.size == 0:
    return
  transform = ax.get_xaxis_transform()  # x in data, y in axes fraction
  ax.plot(xs, np.full(xs.shape, y_axes), "|", color="C1", markersize=6,
          transform=transform, clip_on=False)
  ax.annotate(label, xy=(xs[len(xs) // 2], y_axes), xycoords=transform,
              xytext=(0, -10 if y_axes > 0.5 else 4), textcoords="offset points",
              ha="center", fontsize=8, color="C1")


# ----------------------------------------------------------------------------
# Diagnostics.


def occupancy_figure(steps: Optional[ArrayLike], occupied_share: ArrayLike,
                     reference_share: ArrayLike, *,
                     boundaries: Optional[Sequence[float]] = None,
                     title: Optional[str] = None) -> Figure:
  """Grid occupancy of generator samples against that of true uniform samples.

  During beta-GAN's uniform stage the generator should fill the box; the share
  of grid cells its samples occupy, compared with the share the same number of
  uniform samples would occupy, shows whether it does (the paper's "frozen
  noise" check: a generator that stays collapsed stays far below the line).

  Args:
    steps: step of each measurement (``None``: 0, 1, 2, ...).
    occupied_share: share of cells occupied by generator samples, in [0, 1].
    reference_share: the share for uniform samples, a number (horizontal line)
      or one value per step.
    boundaries: optional steps of stage changes (vertical dotted lines).
    title: optional axes title.

  Returns:
    The figure (one axes).

  Raises:
    ValueError: if the series and ``steps`` differ in length.

  References:
    Mehrjou, Schölkopf & Saremi, "Annealed Generative Adversarial Networks", 2017 (Fig. 4).
  """
  occupied = _series("occupied_share", occupied_share)
  x = _steps(steps, len(occupied))
  occupied = _series("occupied_share", occupied, len(x))
  fig, axes = _new_figure(1, 1, panel=(5.5, 3.3))
  ax = axes[0, 0]
  ax.plot(x, occupied, marker=".", linewidth=1.2, label="generator")
  reference = np.asarray(reference_share, dtype=np.float64)
  if reference.ndim == 0:
    ax.axhline(float(reference), color="k", linestyle="--", linewidth=1.0,
               label="uniform samples")
  else:
    ax.plot(x, _series("reference_share", reference, len(x)), color="k", linestyle="--",
            linewidth=1.0, label="uniform samples")
  _mark_boundaries(ax, boundaries, None)
  ax.set_ylim(0.0, 1.05)
  ax.set_xlabel("step")
  ax.set_ylabel("share of grid cells occupied")
  if title:
    ax.set_title(title)
  ax.legend(fontsize=8, loc="lower right")
  return fig


def mode_histogram_figure(counts: ArrayLike, weights: Optional[ArrayLike] = None, *,
                          title: Optional[str] = None) -> Figure:
  """Samples per mode as bars against the counts the mode weights predict.

  The expectation ``n * w_i / sum(w)`` is drawn as a black step line with a
  band of two binomial standard deviations ``2 sqrt(n p_i (1 - p_i))``: bars
  outside the band are over- or under-represented beyond sampling noise. Modes
  without a sample are marked with a red ``x``.

  Args:
    counts: number of generated samples assigned to each mode, ``[k]``.
    weights: mode weights ``[k]`` (default equal weights).
    title: optional axes title (default: modes hit and samples counted).

  Returns:
    The figure (one axes).

  Raises:
    ValueError: for negative counts, bad weights or mismatched lengths.
  """
  counts = _series("counts", counts)
  k = counts.shape[0]
  if k == 0 or not np.all(np.isfinite(counts)) or np.any(counts < 0):
    raise ValueError("counts must be a non-empty sequence of finite numbers >= 0")
  if weights is None:
    p = np.full(k, 1.0 / k)
  else:
    w = _series("weights", weights)
    if w.shape[0] != k:
      raise ValueError(f"weights has {w.shape[0]} entries but counts has {k}; they must match")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
      raise ValueError("weights must be finite, >= 0 and not all 0")
    p = w / w.sum()
  n = counts.sum()
  expected = n * p
  spread = 2.0 * np.sqrt(n * p * (1.0 - p))
  x = np.arange(k)

  fig, axes = _new_figure(1, 1, panel=(min(12.0, max(4.5, 0.25 * k)), 3.2))
  ax = axes[0, 0]
  ax.bar(x, counts, width=0.8, color=_SAMPLE_COLOR, label="samples")
  ax.fill_between(x, np.maximum(expected - spread, 0.0), expected + spread, step="mid",
                  color="0.2", alpha=0.15, linewidth=0, label="expected +- 2 sd")
  ax.step(x, expected, where="mid", color="k", linewidth=1.0, label="expected")
  missing = x[counts == 0]
  if missing.size:
    ax.plot(missing, np.zeros(missing.size), "x", color=_CENTER_COLOR, clip_on=False,
            label="no samples")
  ax.set_xlim(-0.6, k - 0.4)
  ax.set_xlabel("mode")
  ax.set_ylabel("samples")
  hit = int(np.count_nonzero(counts))
  ax.set_title(title or f"{hit} of {k} modes hit, {int(round(n))} samples", fontsize=10)
  ax.legend(fontsize=8)
  return fig


# ----------------------------------------------------------------------------
# Probes (gan_jax.metrics.probes).


def gradient_norms_figure(curves: Mapping[str, Mapping[str, ArrayLike]], *,
                          title: Optional[str] = None) -> Figure:
  """Generator-gradient norms against discriminator iterations, log scale.

  Arjovsky & Bottou's Figs. 2-3: with the generator frozen and a discriminator
  trained from scratch, the minimax gradient (``log(1 - D)``) vanishes while
  the ``-log D`` gradient does not; instance noise keeps both alive. One panel
  per generator loss; one line (mean) with a band (+- one std over batches)
  per curve, e.g. one per noise level.

  Args:
    curves: label (e.g. ``"sigma=0"``) -> mapping with ``iterations`` and
      ``minimax_mean``, ``minimax_std``, ``non_saturating_mean``,
      ``non_saturating_std`` (the fields of ``probes.GradientCurves``).
    title: optional figure title.

  Returns:
    The figure: two axes (minimax, non-saturating), one line per curve each.

  Raises:
    ValueError: for no curves or series of mismatched length.

  References:
    Arjovsky & Bottou, "Towards Principled Methods for Training Generative
    Adversarial Networks", 2017, Figs. 2-3.
  """
  if not curves:
    raise ValueError("curves is empty; pass at least one label -> curve entry")
  fig, axes = _new_figure(1, 2, panel=(4.2, 3.2))
  panels = (("minimax", "minimax: log(1 - D)"), ("non_saturating", "non-saturating: -log D"))
  for (name, panel_title), ax in zip(panels, axes[0]):
    for i, (label, curve) in enumerate(curves.items()):
      x = _series("iterations", curve["iterations"])
      mean = _series(f"{name}_mean", curve[f"{name}_mean"], len(x))
      std = _series(f"{name}_std", curve[f"{name}_std"], len(x))
      color = f"C{i % 10}"
      ax.plot(x, mean, color=color, linewidth=1.2, label=str(label))
      # The band's lower edge may reach 0, which a log axis cannot show: clip
      # it at a small fraction of the mean instead.
      ax.fill_between(x, np.maximum(mean - std, 1e-3 * np.abs(mean)), mean + std,
                      color=color, alpha=0.2, linewidth=0)
    ax.set_yscale("log", nonpositive="mask")
    ax.set_xlabel("discriminator iterations")
    ax.set_ylabel("generator gradient norm")
    ax.set_title(panel_title, fontsize=10)
    ax.legend(fontsize=8)
  if title:
    _title(fig, title)
  return fig


def third_party_figure(sigmas: ArrayLike, counts: ArrayLike, *, n_test: Optional[int] = None,
                       mode_counts: Optional[ArrayLike] = None,
                       test_counts: Optional[ArrayLike] = None,
                       title: Optional[str] = None) -> Figure:
  """Test examples a noisy third-party discriminator flags, per noise level.

  Left: flagged count against sigma (Che et al.'s report; with ``n_test`` a
  second axis gives the share). Right, for toy mixtures: flagged test examples
  per mode, grouped bars by sigma, against the test examples each mode holds
  (outline): modes whose bar fills the outline are the ones the generator
  misses.

  Args:
    sigmas: noise levels ``[s]``.
    counts: flagged test examples at each level ``[s]``.
    n_test: number of test examples (adds the share axis).
    mode_counts: optional ``[s, M]`` flagged examples per mode and level.
    test_counts: optional ``[M]`` test examples per mode.
    title: optional figure title.

  Returns:
    The figure: one axes, or two with ``mode_counts``.

  Raises:
    ValueError: for mismatched lengths.

  References:
    Che, Li, Jacob, Bengio & Li, "Mode Regularized Generative Adversarial
    Networks", 2017, Sec. 4.1.
  """
  s = _series("sigmas", sigmas)
  c = _series("counts", counts, len(s))
  per_mode = None if mode_counts is None else np.asarray(mode_counts, dtype=np.float64)
  if per_mode is not None and (per_mode.ndim != 2 or per_mode.shape[0] != len(s)):
    raise ValueError(f"mode_counts must have shape [{len(s)}, modes]; got {per_mode.shape}")
  fig, axes = _new_figure(1, 1 if per_mode is None else 2, panel=(4.2, 3.2))
  ax = axes[0, 0]
  ax.plot(s, c, marker="o", linewidth=1.2, color=_SAMPLE_COLOR)
  ax.set_xlabel("sigma (input noise of the third-party D)")
  ax.set_ylabel("flagged test examples")
  # Room above the largest count, and a visible axis when nothing is flagged.
  ax.set_ylim(0.0, max(1.0, 1.1 * float(np.nanmax(c, initial=0.0))))
  ax.set_title("test examples on missed modes", fontsize=10)
  if n_test:
    n_test = _check_positive_int("n_test", n_test)
    share = ax.secondary_yaxis("right", functions=(lambda v: v / n_test, lambda v: v * n_test))
    share.set_ylabel("share of test set")
  if per_mode is not None:
    ax = axes[0, 1]
    m = per_mode.shape[1]
    x = np.arange(m)
    width = 0.8 / len(s)
    for i, sigma in enumerate(s):
      ax.bar(x - 0.4 + width * (i + 0.5), per_mode[i], width=width, color=f"C{i % 10}",
             label=f"sigma={sigma:g}")
    if test_counts is not None:
      t = _series("test_counts", test_counts, m)
      ax.bar(x, t, width=0.9, fill=False, edgecolor="k", linewidth=0.8, label="test examples")
    ax.set_xticks(x)
    ax.set_xlabel("mode (nearest centre)")
    ax.set_ylabel("flagged test examples")
    ax.set_title("flagged examples per mode", fontsize=10)
    # Outside the axes: inside it would hide the bars of some mode.
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
  if title:
    _title(fig, title)
  return fig


def cross_test_figure(fp: ArrayLike, fn: ArrayLike, *, labels: Sequence[str],
                      title: Optional[str] = None) -> Figure:
  """Roth et al.'s cross-test table as an annotated heatmap.

  Rows are the runs' discriminators, columns the runs' samples (false-positive
  rate: samples taken for real), with a last column for the false-negative rate
  on test data (test data taken for fake). Cells are coloured from 0 (white)
  to 1 and carry their value.

  Args:
    fp: ``[R, R]`` false-positive rates, ``fp[i, j]`` discriminator ``i`` on
      samples of run ``j``.
    fn: ``[R]`` false-negative rates on test data.
    labels: ``R`` run names.
    title: optional axes title.

  Returns:
    The figure (one axes; its image is the ``[R, R + 1]`` table).

  Raises:
    ValueError: for mismatched shapes.

  References:
    Roth, Lucchi, Nowozin & Hofmann, "Stabilizing Training of Generative
    Adversarial Networks through Regularization", 2017, Sec. 4.
  """
  fp = np.asarray(fp, dtype=np.float64)
  r = len(labels)
  if fp.shape != (r, r):
    raise ValueError(f"fp must have shape [{r}, {r}] (one row and column per label); "
                     f"got {fp.shape}")
  fn = _series("fn", fn, r)
  table = np.concatenate([fp, fn[:, None]], axis=1)
  fig, axes = _new_figure(1, 1, panel=(1.4 * (r + 1) + 1.8, 1.0 * r + 1.4))
  ax = axes[0, 0]
  ax.imshow(table, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
  for i in range(r):
    for j in range(r + 1):
      v = table[i, j]
      ax.text(j, i, f"{v:.3f}", ha="center", va="center", fontsize=10,
              color="white" if v > 0.6 else "black")
  ax.axvline(r - 0.5, color="k", linewidth=1.5)
  ax.set_xticks(np.arange(r + 1))
  ax.set_xticklabels([f"FP on samples\nof {name}" for name in labels] + ["FN on\ntest data"],
                     fontsize=8)
  ax.set_yticks(np.arange(r))
  ax.set_yticklabels([f"D of {name}" for name in labels], fontsize=8)
  ax.set_title(title or "cross-test: share classified wrongly", fontsize=10)
  return fig


__all__.extend(["cross_test_figure", "gradient_norms_figure", "third_party_figure"])
