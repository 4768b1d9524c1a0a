"""Sample-set fidelity and diversity metrics on feature vectors or raw coordinates.

Each function compares a set of real points with a set of generated points,
given as ``[n, d]`` arrays: classifier features of images (as for the Frechet
distance in :mod:`gan_jax.metrics.scores`) or the coordinates of toy samples.
All compute in float64 NumPy and run standalone, outside any compiled step.

* :func:`kid`: Kernel Inception Distance, the unbiased squared MMD with a cubic
  polynomial kernel, averaged over random subsets.
* :func:`precision_recall`: improved precision and recall from k-nearest
  neighbour balls (Kynkaanniemi et al.).
* :func:`density_coverage`: density and coverage from the real set's balls
  (Naeem et al.).
* :func:`prdc`: all four in one pass over the distances.

The neighbour metrics never hold a full distance matrix: distances are formed
in row blocks of about ``2**22`` entries, so two sets of 10,000 points need a
few tens of megabytes.

References:
  Binkowski, Sutherland, Arbel & Gretton, "Demystifying MMD GANs", ICLR 2018.
  Kynkaanniemi, Karras, Laine, Lehtinen & Aila, "Improved Precision and Recall
  Metric for Assessing Generative Models", NeurIPS 2019.
  Naeem, Oh, Uh, Choi & Yoo, "Reliable Fidelity and Diversity Metrics for
  Generative Models", ICML 2020.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional, Sequence

import numpy as np

from gan_jax.validation import positive_int as _pos_int

__all__ = [
    "density_coverage",
    "kid",
    "kid_subset_indices",
    "nearest_neighbour_radii",
    "polynomial_mmd2",
    "prdc",
    "precision_recall",
]

# Entries of one block of a distance or kernel matrix: 32 MB of float64, so a
# 10k x 10k comparison stays far below a gigabyte with its temporaries.
_BLOCK_ENTRIES = 2 ** 22


def _points(x: Any, name: str) -> np.ndarray:
  try:
    a = np.asarray(x, dtype=np.float64)
  except (TypeError, ValueError):
    raise ValueError(f"{name} must be a numeric [n, d] array; got {type(x).__name__}") from None
  if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
    raise ValueError(
        f"{name} must be a 2-D [n, d] array with n >= 1 points of d >= 1 coordinates "
        f"(flatten images or pass features); got shape {a.shape}")
  finite = np.all(np.isfinite(a), axis=1)
  if not np.all(finite):
    raise ValueError(
        f"{name} must hold finite values; {int(np.count_nonzero(~finite))} of its "
        f"{a.shape[0]} rows contain NaN or inf")
  return a


def _point_pair(real: Any, fake: Any, real_name: str,
                fake_name: str) -> tuple[np.ndarray, np.ndarray]:
  x, y = _points(real, real_name), _points(fake, fake_name)
  if x.shape[1] != y.shape[1]:
    raise ValueError(
        f"{real_name} and {fake_name} must have the same number of columns (feature "
        f"dimension); got shapes {x.shape} and {y.shape}")
  return x, y


def _neighbour_k(name: str, k: Any, **sets: np.ndarray) -> int:
  k = _pos_int(name, k)
  for set_name, a in sets.items():
    if k >= a.shape[0]:
      raise ValueError(
          f"{name} must be smaller than the number of points of {set_name} (the k-th "
          f"neighbour excludes the point itself, so 1 <= {name} <= n - 1); got "
          f"{name}={k} with {a.shape[0]} points")
  return k


def _row_blocks(n_rows: int, n_cols: int) -> Iterator[slice]:
  step = max(1, _BLOCK_ENTRIES // max(n_cols, 1))
  for start in range(0, n_rows, step):
    yield slice(start, min(start + step, n_rows))


def _transposed(b: np.ndarray) -> np.ndarray:
  # A contiguous [d, m] copy: NumPy's matmul with a transposed view is several
  # times slower for few columns.
  return np.ascontiguousarray(b.T)


def _sq_dists(a: np.ndarray, b_t: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
  """Squared distances ``[len(a), m]`` to ``b = b_t.T`` by the expansion, >= 0."""
  d2 = a @ b_t
  d2 *= -2.0  # in place throughout: one block-sized buffer, not four
  d2 += np.sum(a * a, axis=1)[:, None]
  d2 += b_sq[None, :]
  return np.maximum(d2, 0.0, out=d2)


def _sq_radii(x: np.ndarray, ks: Sequence[int]) -> np.ndarray:
  """Squared distance of each point to its k-th nearest other point, ``[len(ks), n]``."""
  n = x.shape[0]
  x_sq, x_t = np.sum(x * x, axis=1), _transposed(x)
  out = np.empty((len(ks), n))
  kth = sorted({k - 1 for k in ks})
  for s in _row_blocks(n, n):
    d2 = _sq_dists(x[s], x_t, x_sq)
    rows = np.arange(s.stop - s.start)
    # The point is not its own neighbour; an exact duplicate elsewhere is.
    d2[rows, s.start + rows] = np.inf
    part = np.partition(d2, kth, axis=1)
    for j, k in enumerate(ks):
      out[j, s] = part[:, k - 1]
  return out


def nearest_neighbour_radii(points: Any, *, k: int) -> np.ndarray:
  """Distance of each point to its ``k``-th nearest neighbour in the same set.

  The point itself does not count (an exact duplicate of it does), so the
  radius of a ball that holds the point and ``k`` others.

  Args:
    points: ``[n, d]`` finite points.
    k: neighbour rank, ``1 <= k <= n - 1``.

  Returns:
    ``[n]`` float64 radii.
  """
  x = _points(points, "points")
  k = _neighbour_k("k", k, points=x)
  return np.sqrt(_sq_radii(x, (k,))[0])


def prdc(real: Any, fake: Any, *, k_precision_recall: int = 3,
         k_density_coverage: int = 5) -> dict[str, float]:
  """Precision, recall, density and coverage of generated points, in one pass.

  With real points ``X_1..X_N``, generated points ``Y_1..Y_M`` and ``r_k(P)``
  the distance of ``P`` to its k-th nearest neighbour in its own set (the point
  itself excluded), a point lies in a ball when its distance to the centre is
  ``<=`` the radius (closed balls, as in the papers):

  * precision: share of ``Y_j`` in some ball ``B(X_i, r_k(X_i))``;
  * recall: share of ``X_i`` in some ball ``B(Y_j, r_k(Y_j))``;
  * density: ``(1 / (k M)) sum_j sum_i 1[|Y_j - X_i| <= r_k(X_i)]``;
  * coverage: share of ``X_i`` whose ball ``B(X_i, r_k(X_i))`` holds some
    ``Y_j``.

  Precision and recall use ``k = k_precision_recall`` (3 in Kynkaanniemi et
  al.), density and coverage ``k = k_density_coverage`` (5 in Naeem et al.).
  Set both to the same ``k`` to reproduce the authors' package ``prdc``
  (``compute_prdc(real, fake, nearest_k=k)``), which differs only on ties: it
  tests ``distance < radius``, so a point exactly on a sphere is outside
  there and inside here. Ties matter for a set against itself: each real ball
  then holds its centre and its k neighbours, so density is ``(k + 1) / k``
  here (1 in the package) when no distances tie.

  Distances come from the expansion ``|a|^2 + |b|^2 - 2 a.b`` in row blocks.

  Args:
    real: ``[N, d]`` real points (features or coordinates), finite.
    fake: ``[M, d]`` generated points, finite.
    k_precision_recall: neighbour rank for precision and recall.
    k_density_coverage: neighbour rank for density and coverage.

  Returns:
    Dict of floats ``precision``, ``recall``, ``density``, ``coverage``.

  Raises:
    ValueError: for arrays that are not ``[n, d]``, have different ``d`` or
      non-finite values, or a ``k`` that is not an integer in ``[1, n - 1]``
      for the sets it applies to.

  References:
    Kynkaanniemi, Karras, Laine, Lehtinen & Aila, "Improved Precision and
    Recall Metric for Assessing Generative Models", NeurIPS 2019, Sec. 2;
    Naeem, Oh, Uh, Choi & Yoo, "Reliable Fidelity and Diversity Metrics for
    Generative Models", ICML 2020, Sec. 3.
  """
  x, y = _point_pair(real, fake, "real", "fake")
  k_pr = _neighbour_k("k_precision_recall", k_precision_recall, real=x, fake=y)
  k_dc = _neighbour_k("k_density_coverage", k_density_coverage, real=x)
  return _ball_statistics(x, y, k_pr, k_dc)


def _ball_statistics(x: np.ndarray, y: np.ndarray, k_pr: Optional[int],
                     k_dc: Optional[int]) -> dict[str, float]:
  """The metrics of :func:`prdc` whose ``k`` is given (None: skipped)."""
  n, m = x.shape[0], y.shape[0]
  ks = [k for k in (k_pr, k_dc) if k is not None]
  r2 = dict(zip(ks, _sq_radii(x, ks)))
  s2_pr = _sq_radii(y, (k_pr,))[0] if k_pr is not None else None
  # Squared distances against squared radii: the same comparisons as on
  # distances, without the ties a square root can create.
  y_sq, y_t = np.sum(y * y, axis=1), _transposed(y)
  fake_in_real = np.zeros(m, bool)
  real_in_fake = np.empty(n, bool)
  ball_counts = np.zeros(m, np.int64)
  covered = np.empty(n, bool)
  for s in _row_blocks(n, m):
    d2 = _sq_dists(x[s], y_t, y_sq)
    if k_pr is not None:
      fake_in_real |= np.any(d2 <= r2[k_pr][s, None], axis=0)
      real_in_fake[s] = np.any(d2 <= s2_pr[None, :], axis=1)
    if k_dc is not None:
      inside = d2 <= r2[k_dc][s, None]
      ball_counts += np.count_nonzero(inside, axis=0)
      covered[s] = np.any(inside, axis=1)
  out = {}
  if k_pr is not None:
    out["precision"] = float(fake_in_real.mean())
    out["recall"] = float(real_in_fake.mean())
  if k_dc is not None:
    out["density"] = float(ball_counts.sum() / (k_dc * m))
    out["coverage"] = float(covered.mean())
  return out


def precision_recall(real: Any, fake: Any, *, k: int = 3) -> dict[str, float]:
  """Improved precision and recall with k-nearest-neighbour balls.

  Precision is the share of generated points inside the real manifold (the
  union of closed balls around the real points, radius the distance to the
  k-th nearest other real point); recall the share of real points inside the
  generated manifold. See :func:`prdc` for the conventions.

  Args:
    real: ``[N, d]`` real points, finite.
    fake: ``[M, d]`` generated points, finite.
    k: neighbour rank, ``1 <= k < min(N, M)``.

  Returns:
    Dict of floats ``precision`` and ``recall``.

  References:
    Kynkaanniemi, Karras, Laine, Lehtinen & Aila, "Improved Precision and
    Recall Metric for Assessing Generative Models", NeurIPS 2019.
  """
  x, y = _point_pair(real, fake, "real", "fake")
  return _ball_statistics(x, y, _neighbour_k("k", k, real=x, fake=y), None)


def density_coverage(real: Any, fake: Any, *, k: int = 5) -> dict[str, float]:
  """Density and coverage of generated points against the real points' balls.

  With ``r_i`` the distance of real ``X_i`` to its k-th nearest other real
  point: density ``= (1 / (k M)) sum_j sum_i 1[|Y_j - X_i| <= r_i]`` (about 1
  for a generator matching the data, above 1 where it crowds dense regions),
  coverage ``= (1 / N) sum_i 1[exists j: |Y_j - X_i| <= r_i]``. See
  :func:`prdc` for the conventions.

  Args:
    real: ``[N, d]`` real points, finite.
    fake: ``[M, d]`` generated points, finite.
    k: neighbour rank, ``1 <= k < N``.

  Returns:
    Dict of floats ``density`` and ``coverage``.

  References:
    Naeem, Oh, Uh, Choi & Yoo, "Reliable Fidelity and Diversity Metrics for
    Generative Models", ICML 2020.
  """
  x, y = _point_pair(real, fake, "real", "fake")
  return _ball_statistics(x, y, None, _neighbour_k("k", k, real=x))


def _kernel_sum(a: np.ndarray, b: np.ndarray, *, drop_diagonal: bool) -> float:
  """``sum_ij (a_i . b_j / d + 1)^3`` in row blocks; ``drop_diagonal``: ``i != j``."""
  d = a.shape[1]
  b_t = _transposed(b)
  total = 0.0
  for s in _row_blocks(a.shape[0], b.shape[0]):
    t = a[s] @ b_t
    t /= d
    t += 1.0
    # A product into a new array: ``** 3`` and an in-place ``t *= t * t`` are
    # both several times slower in NumPy.
    k = t * t * t
    if drop_diagonal:
      rows = np.arange(s.stop - s.start)
      # Zero the computed diagonal itself, not a recomputed copy of it, so the
      # off-diagonal sum carries no rounding difference.
      k[rows, s.start + rows] = 0.0
    total += float(np.sum(k))
  return total


def polynomial_mmd2(x: Any, y: Any) -> float:
  """Unbiased squared MMD with KID's kernel ``k(a, b) = (a.b / d + 1)^3``.

  ``MMD_u^2 = sum_{i != j} k(x_i, x_j) / (n (n - 1)) + sum_{i != j} k(y_i,
  y_j) / (m (m - 1)) - 2 sum_{i, j} k(x_i, y_j) / (n m)``, ``d`` the number of
  columns. Unbiased, so it may be slightly negative when both sets come from
  one distribution.

  Args:
    x: ``[n, d]`` points, ``n >= 2``, finite.
    y: ``[m, d]`` points, ``m >= 2``, finite.

  Returns:
    The estimate (float).

  References:
    Binkowski, Sutherland, Arbel & Gretton, "Demystifying MMD GANs", ICLR
    2018; Gretton et al., "A Kernel Two-Sample Test", JMLR 2012, Lemma 6.
  """
  a, b = _point_pair(x, y, "x", "y")
  if a.shape[0] < 2 or b.shape[0] < 2:
    raise ValueError(f"x and y need at least 2 points each (the unbiased estimate drops "
                     f"i = j); got {a.shape[0]} and {b.shape[0]}")
  return _polynomial_mmd2(a, b)


def _polynomial_mmd2(a: np.ndarray, b: np.ndarray) -> float:
  n, m = a.shape[0], b.shape[0]
  k_xx = _kernel_sum(a, a, drop_diagonal=True) / (n * (n - 1))
  k_yy = _kernel_sum(b, b, drop_diagonal=True) / (m * (m - 1))
  k_xy = _kernel_sum(a, b, drop_diagonal=False) / (n * m)
  return k_xx + k_yy - 2.0 * k_xy


def kid_subset_indices(n_real: int, n_fake: int, *, subset_size: int = 1000,
                       num_subsets: int = 100, seed: int = 0
                       ) -> tuple[np.ndarray, np.ndarray]:
  """The random subsets :func:`kid` draws, as index arrays.

  The subset size is ``min(subset_size, n_real, n_fake)``: a size larger than a
  set is capped at that set's size. Each subset is drawn without replacement,
  independently of the others, from ``numpy.random.default_rng(seed)``: for
  each subset in turn first the real indices, then the generated ones.

  Args:
    n_real: number of real points.
    n_fake: number of generated points.
    subset_size: requested points per subset and set, ``>= 2``.
    num_subsets: number of subsets, ``>= 1``.
    seed: seed of the draws.

  Returns:
    ``(real_idx, fake_idx)``, int arrays ``[num_subsets, size]``.
  """
  n_real, n_fake = _pos_int("n_real", n_real), _pos_int("n_fake", n_fake)
  subset_size, num_subsets = _pos_int("subset_size", subset_size), _pos_int(
      "num_subsets", num_subsets)
  size = min(subset_size, n_real, n_fake)
  if size < 2:
    raise ValueError(
        f"KID needs subsets of at least 2 points (subset_size >= 2 and both sets of >= 2 "
        f"points); got subset_size={subset_size}, n_real={n_real}, n_fake={n_fake}")
  rng = np.random.default_rng(seed)
  real_idx = np.empty((num_subsets, size), np.int64)
  fake_idx = np.empty((num_subsets, size), np.int64)
  for i in range(num_subsets):
    real_idx[i] = rng.choice(n_real, size, replace=False)
    fake_idx[i] = rng.choice(n_fake, size, replace=False)
  return real_idx, fake_idx


def kid(real_features: Any, fake_features: Any, *, subset_size: int = 1000,
        num_subsets: int = 100, seed: int = 0) -> dict[str, float]:
  """Kernel Inception Distance: unbiased polynomial-kernel MMD^2 over subsets.

  For each of ``num_subsets`` pairs of random subsets (one of the real, one of
  the generated features, :func:`kid_subset_indices`), the unbiased
  :func:`polynomial_mmd2` with ``k(a, b) = (a.b / d + 1)^3``; KID is their mean.
  The subset size is ``min(subset_size, N, M)``: when a set is smaller than
  ``subset_size`` the subsets are capped at its size (then every subset of
  that set is the whole set, permuted), and the size used is returned as
  ``kid_subset_size``. ``kid_std`` is the standard deviation of the subset
  estimates (``ddof=0``): the spread of one subset's estimate, not the standard
  error of the mean (the subsets overlap).

  For images this project passes its own classifier's features (no Inception
  network is available), so values compare only between runs scored with the
  same classifier, not with published KIDs.

  Args:
    real_features: ``[N, d]`` real features, finite.
    fake_features: ``[M, d]`` generated features, finite.
    subset_size: points per subset, ``>= 2`` (1000 in Binkowski et al.).
    num_subsets: subsets averaged, ``>= 1`` (100 here, as METHODS §6).
    seed: seed of the subset draws.

  Returns:
    Dict with floats ``kid`` (mean) and ``kid_std``, and ints
    ``kid_subset_size`` and ``kid_num_subsets``.

  References:
    Binkowski, Sutherland, Arbel & Gretton, "Demystifying MMD GANs", ICLR
    2018.
  """
  x, y = _point_pair(real_features, fake_features, "real_features", "fake_features")
  real_idx, fake_idx = kid_subset_indices(x.shape[0], y.shape[0], subset_size=subset_size,
                                          num_subsets=num_subsets, seed=seed)
  values = np.array([_polynomial_mmd2(x[i], y[j]) for i, j in zip(real_idx, fake_idx)])
  return {"kid": float(values.mean()), "kid_std": float(values.std()),
          "kid_subset_size": int(real_idx.shape[1]), "kid_num_subsets": int(len(values))}
