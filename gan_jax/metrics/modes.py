"""Mode-coverage and two-sample statistics for toy distributions.

All functions take samples as arrays (NumPy or JAX, e.g. a checkpoint's
generator output) and compute in float64 NumPy, so they run standalone, outside
any compiled step:

* :func:`mode_statistics`: modes captured, high-quality share and the KL of the
  mode histogram, for mixtures with known centres (ring, grid, beta-GAN
  mixtures, ...).
* :func:`published_mode_statistics`: the same quantities by the published
  protocol of PacGAN's and VEEGAN's code (nearest mode in std units, a mode
  captured by one high-quality sample), for comparison with their tables.
* :func:`support_statistics`: high-quality share and coverage for supports
  without centres (beta-GAN's cubic frames).
* :func:`grid_occupancy` and :func:`uniform_occupancy_reference`: how much of a
  box a sample set fills, against the closed form for true uniform samples
  (beta-GAN's uniform stage and its "frozen noise" failure).
* :func:`energy_distance` and :func:`mmd_rbf`: unbiased two-sample distances.
* :func:`toy_metrics`: all of the above that apply to a ``ToyDistribution``, as a
  flat dict of floats for JSON logs.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Union

import numpy as np

from gan_jax.validation import positive_int as _pos_int

__all__ = [
    "PUBLISHED_PROTOCOL_SAMPLES",
    "energy_distance",
    "grid_occupancy",
    "mmd_rbf",
    "mode_statistics",
    "published_mode_statistics",
    "support_statistics",
    "toy_metrics",
    "uniform_occupancy_reference",
]

# Added to the true weights inside the logarithm of the KL, so a generated mode
# of true weight 0 gives a large finite value rather than inf.
_KL_EPS = 1e-12
# Rows per block of a pairwise computation: bounds memory at ~_CHUNK * m floats.
_CHUNK = 2048


def _samples(x: Any, name: str = "samples", dim: Optional[int] = None) -> np.ndarray:
  a = np.asarray(x, dtype=np.float64)
  if a.ndim != 2 or a.shape[0] < 1:
    raise ValueError(f"{name} must be a non-empty [n, d] array; got shape {a.shape}")
  if dim is not None and a.shape[1] != dim:
    raise ValueError(f"{name} must have {dim} columns; got shape {a.shape}")
  return a


def _nonneg(name: str, value: Any, *, positive: bool = False) -> float:
  try:
    v = float(value)
  except (TypeError, ValueError):
    raise ValueError(f"{name} must be a number; got {value!r}") from None
  if not math.isfinite(v) or v < 0 or (positive and v == 0):
    raise ValueError(
        f"{name} must be a finite number {'>' if positive else '>='} 0; got {value!r}")
  return v


def _weights(weights: Any, m: int) -> np.ndarray:
  if weights is None:
    return np.full(m, 1.0 / m)
  w = np.asarray(weights, dtype=np.float64)
  if w.shape != (m,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
    raise ValueError(
        f"weights must be {m} finite non-negative numbers, not all 0; got {weights!r}")
  return w / w.sum()


def _sq_dists(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """Squared Euclidean distances ``[n, m]`` (expansion, clipped at 0)."""
  d2 = (np.sum(x * x, 1)[:, None] + np.sum(y * y, 1)[None, :] - 2.0 * x @ y.T)
  return np.maximum(d2, 0.0)


def _blockwise_sum(x: np.ndarray, y: Optional[np.ndarray],
                   fn: Callable[[np.ndarray], np.ndarray]) -> float:
  """``sum_ij fn(|x_i - y_j|^2)`` in row blocks; ``y=None``: over ``i != j`` of x."""
  total = 0.0
  for i in range(0, x.shape[0], _CHUNK):
    block = x[i:i + _CHUNK]
    if y is None:
      d2 = _sq_dists(block, x)
      # Drop the diagonal exactly: the expansion leaves ~1e-16 there, whose
      # square root (1e-8) would bias a distance sum.
      keep = np.ones(d2.shape, bool)
      rows = np.arange(block.shape[0])
      keep[rows, i + rows] = False
      total += float(np.sum(fn(d2[keep])))
    else:
      total += float(np.sum(fn(_sq_dists(block, y))))
  return total


def _nearest_center(x: np.ndarray, centers: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
  idx = np.empty(x.shape[0], np.int64)
  dist = np.empty(x.shape[0])
  for i in range(0, x.shape[0], _CHUNK):
    # Differences, not the expansion: exact for points near a centre.
    d2 = np.sum(np.square(x[i:i + _CHUNK, None, :] - centers[None]), -1)
    idx[i:i + _CHUNK] = np.argmin(d2, -1)
    dist[i:i + _CHUNK] = np.sqrt(np.min(d2, -1))
  return idx, dist


def _histogram_kl(counts: np.ndarray, weights: np.ndarray) -> float:
  """``KL(counts / sum || weights)``; NaN when there are no counts."""
  total = counts.sum()
  if total == 0:
    return float("nan")
  p = counts / total
  nz = p > 0
  return float(np.sum(p[nz] * (np.log(p[nz]) - np.log(weights[nz] + _KL_EPS))))


def _captured(counts: np.ndarray, weights: np.ndarray, *, capture_share: float,
              min_count: int) -> np.ndarray:
  need = np.maximum(min_count, capture_share * counts.sum() * weights)
  return counts >= need


def mode_statistics(samples: Any, centers: Any, std: Any, weights: Any = None, *,
                    quality_threshold: float = 3.0, capture_share: float = 0.25,
                    min_count: int = 1) -> dict[str, Any]:
  """Modes captured, high-quality share and mode-histogram KL of a sample set.

  Each sample is assigned to its nearest centre. It is *high quality* (HQ) if
  it lies within ``quality_threshold * std`` of that centre (the PacGAN / VEEGAN
  convention with threshold 3). Only HQ samples enter the mode histogram
  ``counts``.

  Capture rule ("expected-share rule"): mode ``m`` is captured iff
  ``counts[m] >= max(min_count, capture_share * n_hq * weights[m])``, i.e. it
  holds at least ``capture_share`` (default a quarter) of the HQ samples it
  would hold under the true weights, and at least ``min_count`` samples. The
  relative threshold adapts to the sample size and to unequal weights; set
  ``capture_share=0`` and ``min_count=k`` for a fixed-count rule.

  ``kl_mode_histogram`` is ``KL(p || w) = sum_m p_m log(p_m / (w_m + eps))``
  with ``p`` the normalised HQ histogram, ``w`` the true weights and
  ``eps = 1e-12`` (terms with ``p_m = 0`` are 0; ``eps`` only keeps a generated
  mode of true weight 0 finite). Under the true distribution its expectation is
  about ``(M - 1) / (2 n_hq)``. NaN when no sample is HQ.

  Args:
    samples: ``[n, d]`` samples.
    centers: ``[M, d]`` mode centres.
    std: component standard deviation, a scalar or ``[M]`` per mode.
    weights: ``[M]`` true mode weights (normalised here); None: equal.
    quality_threshold: HQ radius in units of ``std``.
    capture_share: fraction of a mode's expected HQ count it must hold.
    min_count: least HQ count of a captured mode, ``>= 1``.

  Returns:
    Dict with ``modes_captured`` (int), ``n_modes`` (int),
    ``high_quality_share`` (float), ``kl_mode_histogram`` (float),
    ``n_high_quality`` (int), ``mode_counts`` (``[M]`` int array of HQ samples
    per mode) and ``captured`` (``[M]`` bool array).

  References:
    Lin, Khetan, Fanti & Oh, "PacGAN", 2018, Sec. 5.1; Srivastava et al.,
    "VEEGAN", 2017, Sec. 5.1.
  """
  c = _samples(centers, "centers")
  x = _samples(samples, dim=c.shape[1])
  m = c.shape[0]
  s = np.broadcast_to(np.asarray(std, dtype=np.float64), (m,))
  if not np.all(np.isfinite(s)) or np.any(s <= 0):
    raise ValueError(f"std must be finite and > 0 (scalar or one per mode); got {std!r}")
  w = _weights(weights, m)
  threshold = _nonneg("quality_threshold", quality_threshold, positive=True)
  capture_share = _nonneg("capture_share", capture_share)
  min_count = _pos_int("min_count", min_count)

  idx, dist = _nearest_center(x, c)
  hq = dist <= threshold * s[idx]   # NaN samples compare False: never HQ
  counts = np.bincount(idx[hq], minlength=m)
  captured = _captured(counts, w, capture_share=capture_share, min_count=min_count)
  return {
      "modes_captured": int(captured.sum()),
      "n_modes": m,
      "high_quality_share": float(hq.mean()),
      "kl_mode_histogram": _histogram_kl(counts, w),
      "n_high_quality": int(hq.sum()),
      "mode_counts": counts,
      "captured": captured,
  }


# Generated samples scored per evaluation in PacGAN's and VEEGAN's 2-D tables.
PUBLISHED_PROTOCOL_SAMPLES = 2500


def _nearest_center_std_units(x: np.ndarray, centers: np.ndarray, std: np.ndarray
                              ) -> tuple[np.ndarray, np.ndarray]:
  """Nearest centre and distance to it in diagonal Mahalanobis units."""
  idx = np.empty(x.shape[0], np.int64)
  dist = np.empty(x.shape[0])
  for i in range(0, x.shape[0], _CHUNK):
    z = (x[i:i + _CHUNK, None, :] - centers[None]) / std[None]
    d2 = np.sum(z * z, -1)
    idx[i:i + _CHUNK] = np.argmin(d2, -1)
    dist[i:i + _CHUNK] = np.sqrt(np.min(d2, -1))
  return idx, dist


def published_mode_statistics(samples: Any, centers: Any, std: Any, weights: Any = None, *,
                              quality_threshold: float = 3.0) -> dict[str, Any]:
  """Mode statistics by the published protocol of PacGAN (and VEEGAN).

  The protocol of PacGAN's evaluation code (``MetricLogger``), which VEEGAN's
  follows: draw ``PUBLISHED_PROTOCOL_SAMPLES`` (2,500) generated samples (the
  caller passes them; the count is not enforced, it is returned as
  ``n_samples``); measure each sample's distance to every mode in std units,
  ``sqrt(sum_k ((x_k - c_mk) / s_mk)^2)`` (a diagonal Mahalanobis distance);
  a sample is *high quality* (HQ) if the distance to its nearest mode in these
  units is below ``quality_threshold`` (strictly, as in that code); a mode is
  *captured* if it is the nearest mode of at least one HQ sample.

  Unlike :func:`mode_statistics` the nearest mode is chosen in std units (the
  same choice for a common isotropic std) and one HQ sample captures a mode,
  so the count grows with the number of samples: compare it with published
  numbers only at 2,500 samples.

  ``kl_mode_histogram`` is, as in :func:`mode_statistics`, ``KL(p || w)`` of
  the normalised HQ mode histogram ``p`` against the true weights ``w`` (the
  generated histogram first; PacGAN's code logs a Jensen-Shannon divergence to
  uniform weights instead, which this does not report). NaN when no sample is
  HQ.

  Args:
    samples: ``[n, d]`` generated samples (2,500 for the protocol); samples
      with NaN or inf are never HQ.
    centers: ``[M, d]`` mode centres.
    std: standard deviation of the components: a scalar, ``[M]`` (one per
      mode) or ``[M, d]`` (per mode and coordinate, the diagonal of each
      covariance).
    weights: ``[M]`` true mode weights (normalised here); None: equal.
    quality_threshold: HQ radius in std units (3 in the papers).

  Returns:
    Dict with ``protocol`` (``'pacgan'``), ``modes_captured`` (int),
    ``n_modes`` (int), ``n_samples`` (int), ``high_quality_share`` (float),
    ``n_high_quality`` (int), ``kl_mode_histogram`` (float), ``mode_counts``
    (``[M]`` int array of HQ samples per mode) and ``captured`` (``[M]`` bool
    array).

  References:
    Lin, Khetan, Fanti & Oh, "PacGAN: The power of two samples in generative
    adversarial networks", NeurIPS 2018, Sec. 5.1 and Table 1; Srivastava,
    Valkov, Russell, Gutmann & Sutton, "VEEGAN", NeurIPS 2017, Sec. 5.1.
  """
  c = _samples(centers, "centers")
  x = _samples(samples, dim=c.shape[1])
  m, d = c.shape
  s = np.asarray(std, dtype=np.float64)
  if s.ndim == 1 and s.shape == (m,):
    s = s[:, None]
  if s.ndim > 2 or (s.ndim >= 1 and s.shape not in ((m, 1), (m, d))):
    raise ValueError(
        f"std must be a scalar, [M] = [{m}] (one per mode) or [M, d] = [{m}, {d}] (per "
        f"mode and coordinate); got shape {np.shape(std)}")
  s = np.broadcast_to(s, (m, d))
  if not np.all(np.isfinite(s)) or np.any(s <= 0):
    raise ValueError(f"std must be finite and > 0 everywhere; got {std!r}")
  w = _weights(weights, m)
  threshold = _nonneg("quality_threshold", quality_threshold, positive=True)

  idx, dist = _nearest_center_std_units(x, c, s)
  hq = dist < threshold   # NaN samples compare False: never HQ
  counts = np.bincount(idx[hq], minlength=m)
  captured = counts >= 1
  return {
      "protocol": "pacgan",
      "modes_captured": int(captured.sum()),
      "n_modes": m,
      "n_samples": int(x.shape[0]),
      "high_quality_share": float(hq.mean()),
      "n_high_quality": int(hq.sum()),
      "kl_mode_histogram": _histogram_kl(counts, w),
      "mode_counts": counts,
      "captured": captured,
  }


def _default_support_threshold(dist) -> float:
  low, high = dist.box
  return 3.0 * dist.std if dist.std > 0 else 0.01 * (high - low)


def support_statistics(samples: Any, dist, threshold: Optional[float] = None, *,
                       bins_per_segment: int = 10, capture_share: float = 0.25,
                       min_count: int = 1) -> dict[str, float]:
  """Quality and coverage of samples of a support without centres (segments).

  A sample is high quality (HQ) if its distance to the support (nearest
  segment, e.g. cube edge) is at most ``threshold``. Coverage: each segment is
  cut into ``bins_per_segment`` equal pieces and each HQ sample is placed by
  its closest point on the support; a segment or piece is *hit* if it holds at
  least ``min_count`` HQ samples. Components (e.g. the cubes) are *captured*
  by the same expected-share rule as modes in :func:`mode_statistics`.

  Args:
    samples: ``[n, dim]`` samples.
    dist: a segment ``ToyDistribution`` (e.g. ``make_toy("cube_frames")``).
    threshold: HQ distance; None: ``3 * dist.std`` if the support has
      thickness, else 1% of the box width (0.02 for ``[-1, 1]``).
    bins_per_segment: pieces per segment for ``bin_coverage``.
    capture_share: as in :func:`mode_statistics`, for components.
    min_count: least HQ count of a hit segment/piece or captured component.

  Returns:
    Flat dict of floats: ``high_quality_share``, ``mean_distance_to_support``,
    ``segment_coverage`` (share of segments hit), ``bin_coverage`` (share of
    pieces hit), ``components_captured``, ``n_components`` and
    ``kl_component_histogram`` (KL of the HQ histogram over components vs the
    true weights, as in :func:`mode_statistics`).

  References:
    Mehrjou, Schölkopf & Saremi, "Annealed Generative Adversarial Networks",
    2017, Sec. 3.1 (the cubic frames).
  """
  if getattr(dist, "segments", None) is None:
    raise ValueError(
        "support_statistics needs a segment distribution (e.g. cube_frames); "
        "for a mixture use mode_statistics")
  x = _samples(samples, dim=dist.dim)
  threshold = (_default_support_threshold(dist) if threshold is None
               else _nonneg("threshold", threshold))
  bins = _pos_int("bins_per_segment", bins_per_segment)
  capture_share = _nonneg("capture_share", capture_share)
  min_count = _pos_int("min_count", min_count)

  idx, t, d = (np.asarray(a) for a in dist.nearest_segment(x))
  hq = d <= threshold
  n_seg = dist.segments.shape[0]
  seg_counts = np.bincount(idx[hq], minlength=n_seg)
  piece = np.minimum((t[hq] * bins).astype(np.int64), bins - 1)
  bin_counts = np.bincount(idx[hq] * bins + piece, minlength=n_seg * bins)
  comp_counts = np.bincount(np.asarray(dist.segment_component)[idx[hq]],
                            minlength=dist.n_components)
  w = np.asarray(dist.weights, dtype=np.float64)
  captured = _captured(comp_counts, w, capture_share=capture_share,
                       min_count=min_count)
  return {
      "high_quality_share": float(hq.mean()),
      "mean_distance_to_support": float(np.mean(d)),
      "segment_coverage": float(np.mean(seg_counts >= min_count)),
      "bin_coverage": float(np.mean(bin_counts >= min_count)),
      "components_captured": float(captured.sum()),
      "n_components": float(dist.n_components),
      "kl_component_histogram": _histogram_kl(comp_counts, w),
  }


def grid_occupancy(samples: Any, *, low: Any, high: Any, bins: int) -> float:
  """Share of the cells of a regular grid over a box that hold a sample.

  The box ``[low, high]`` (per coordinate) is cut into ``bins`` equal intervals
  per axis, ``C = bins ** d`` cells. Samples outside the box (or not finite)
  occupy nothing; a sample on the upper wall counts in the last cell.

  Args:
    samples: ``[n, d]`` samples.
    low: lower corner, scalar or ``[d]``.
    high: upper corner, scalar or ``[d]``, ``> low``.
    bins: intervals per axis, ``>= 1``.

  Returns:
    Occupied cells divided by ``C``.

  References:
    Mehrjou, Schölkopf & Saremi, "Annealed Generative Adversarial Networks",
    2017, Sec. 2 (the uniform stage and frozen-noise collapse).
  """
  x = _samples(samples)
  d = x.shape[1]
  lo = np.broadcast_to(np.asarray(low, dtype=np.float64), (d,))
  hi = np.broadcast_to(np.asarray(high, dtype=np.float64), (d,))
  if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo < hi)):
    raise ValueError(f"grid_occupancy needs finite low < high; got low={low}, high={high}")
  bins = _pos_int("bins", bins)
  inside = np.all((x >= lo) & (x <= hi), axis=1)
  cells = np.minimum(((x[inside] - lo) / (hi - lo) * bins).astype(np.int64), bins - 1)
  occupied = np.unique(cells, axis=0).shape[0] if cells.shape[0] else 0
  return occupied / (bins ** d)  # Python int: exact even when bins**d is huge


def uniform_occupancy_reference(n: int, dim: int, bins: int) -> float:
  """Expected :func:`grid_occupancy` of ``n`` i.i.d. uniform samples in the box.

  Each of the ``C = bins ** dim`` cells is empty with probability
  ``(1 - 1/C) ** n``, so the expected occupied share is ``1 - (1 - 1/C) ** n``
  (computed as ``-expm1(n log1p(-1/C))``, accurate for large ``C``).

  Args:
    n: number of samples.
    dim: dimension.
    bins: intervals per axis.

  Returns:
    The expected share of occupied cells.
  """
  n, dim, bins = _pos_int("n", n), _pos_int("dim", dim), _pos_int("bins", bins)
  cells = bins ** dim
  if cells == 1:
    return 1.0
  if cells > 2 ** 1000:
    # 1/C is beyond float range; then n/C (exact int division) is the share
    # to within a relative n/C.
    return n / cells
  return float(-math.expm1(n * math.log1p(-1.0 / cells)))


def energy_distance(x: Any, y: Any) -> float:
  """Unbiased estimate of the energy distance between two sample sets.

  ``E(P, Q) = 2 E|X - Y| - E|X - X'| - E|Y - Y'|`` (Euclidean norms), zero iff
  ``P = Q``. The within-set means are U-statistics over distinct pairs, so the
  estimate is unbiased and may be slightly negative when ``P = Q``.

  Args:
    x: ``[n, d]`` samples of ``P``, ``n >= 2``.
    y: ``[m, d]`` samples of ``Q``, ``m >= 2``.

  Returns:
    The estimate (float).

  References:
    Székely & Rizzo, "Energy statistics: A class of statistics based on
    distances", 2013.
  """
  x, y = _samples(x, "x"), _samples(y, "y")
  _check_pair(x, y)
  n, m = x.shape[0], y.shape[0]
  e_xy = _blockwise_sum(x, y, np.sqrt) / (n * m)
  e_xx = _blockwise_sum(x, None, np.sqrt) / (n * (n - 1))
  e_yy = _blockwise_sum(y, None, np.sqrt) / (m * (m - 1))
  return 2.0 * e_xy - e_xx - e_yy


def _check_pair(x: np.ndarray, y: np.ndarray) -> None:
  if x.shape[1] != y.shape[1]:
    raise ValueError(f"x and y need the same dimension; got {x.shape} and {y.shape}")
  if x.shape[0] < 2 or y.shape[0] < 2:
    raise ValueError(
        f"unbiased estimators need at least 2 samples per set; got {x.shape[0]} "
        f"and {y.shape[0]}")


def _median_bandwidth(x: np.ndarray, y: np.ndarray, max_points: int = 1000) -> float:
  z = np.concatenate([x[:max_points], y[:max_points]])
  d2 = _sq_dists(z, z)[np.triu_indices(z.shape[0], 1)]
  h = float(np.sqrt(np.median(d2)))
  return h if h > 0 else 1.0


def mmd_rbf(x: Any, y: Any, *, bandwidth: Union[float, str]) -> float:
  """Unbiased estimate of the squared MMD with a Gaussian (RBF) kernel.

  ``MMD^2 = E k(X, X') + E k(Y, Y') - 2 E k(X, Y)`` with
  ``k(a, b) = exp(-|a - b|^2 / (2 h^2))``, the within-set terms averaged over
  distinct pairs (the U-statistic ``MMD_u^2``, which may be slightly negative).

  Args:
    x: ``[n, d]`` samples, ``n >= 2``.
    y: ``[m, d]`` samples, ``m >= 2``.
    bandwidth: ``h > 0``, or ``"median"`` for the median pairwise distance of
      the pooled samples (first 1000 of each set).

  Returns:
    The estimate (float).

  References:
    Gretton, Borgwardt, Rasch, Schölkopf & Smola, "A Kernel Two-Sample Test",
    2012, Lemma 6.
  """
  x, y = _samples(x, "x"), _samples(y, "y")
  _check_pair(x, y)
  if isinstance(bandwidth, str):
    if bandwidth != "median":
      raise ValueError(f"bandwidth must be a number > 0 or 'median'; got {bandwidth!r}")
    h = _median_bandwidth(x, y)
  else:
    h = _nonneg("bandwidth", bandwidth, positive=True)
  kernel = lambda d2: np.exp(-d2 / (2.0 * h * h))
  n, m = x.shape[0], y.shape[0]
  k_xx = _blockwise_sum(x, None, kernel) / (n * (n - 1))
  k_yy = _blockwise_sum(y, None, kernel) / (m * (m - 1))
  k_xy = _blockwise_sum(x, y, kernel) / (n * m)
  return k_xx + k_yy - 2.0 * k_xy


def toy_metrics(samples: Any, dist, *, reference: Any = None,
                quality_threshold: float = 3.0, capture_share: float = 0.25,
                occupancy_bins: int = 10,
                mmd_bandwidth: Union[float, str] = "median") -> dict[str, float]:
  """Every statistic of this module that applies to a ``ToyDistribution``.

  Mixtures get :func:`mode_statistics` (with the distribution's centres, std
  and weights), segment supports :func:`support_statistics`; both get the mean
  distance to the support and the grid occupancy of ``dist.box`` with its
  uniform reference; with ``reference`` samples (held-out draws of ``dist``)
  also :func:`energy_distance` and :func:`mmd_rbf`.

  Args:
    samples: ``[n, dist.dim]`` generated samples.
    dist: the target ``ToyDistribution``.
    reference: optional ``[m, dist.dim]`` samples of ``dist``.
    quality_threshold: HQ radius in std units (mixtures).
    capture_share: capture rule share (see :func:`mode_statistics`).
    occupancy_bins: grid intervals per axis over ``dist.box``.
    mmd_bandwidth: bandwidth for :func:`mmd_rbf`.

  Returns:
    Flat dict of Python floats (JSON-ready; NaN where undefined).
  """
  x = _samples(samples, dim=dist.dim)
  out: dict[str, float] = {}
  if dist.centers is not None:
    stats = mode_statistics(x, dist.centers, dist.std, dist.weights,
                            quality_threshold=quality_threshold,
                            capture_share=capture_share)
    for key in ("modes_captured", "n_modes", "high_quality_share",
                "kl_mode_histogram"):
      out[key] = float(stats[key])
    out["mean_distance_to_support"] = float(np.mean(_nearest_center(x, dist.centers)[1]))
  else:
    out.update(support_statistics(x, dist, capture_share=capture_share))
  low, high = dist.box
  out["grid_occupancy"] = grid_occupancy(x, low=low, high=high, bins=occupancy_bins)
  out["grid_occupancy_uniform_reference"] = uniform_occupancy_reference(
      x.shape[0], dist.dim, occupancy_bins)
  if reference is not None:
    r = _samples(reference, "reference", dim=dist.dim)
    out["energy_distance"] = energy_distance(x, r)
    out["mmd_rbf"] = mmd_rbf(x, r, bandwidth=mmd_bandwidth)
  return out
