"""The evaluation's pairwise-distance statistics as one compiled program.

During training a toy run is evaluated every few hundred steps with four
statistics that each need all pairwise distances of two sets of a few
thousand points: the energy distance and the RBF MMD (``modes``) and the
neighbourhood statistics precision / recall / density / coverage
(``fidelity.prdc``). Computed by the NumPy references one after the other,
they cost seconds per evaluation, most of a short run's wall time, and S
times that for a run of S seeds. Here they are one XLA program on the host
CPU in float64 (the same precision as the references, whatever device trains
the model), the distance matrices formed once per pair of sets and fused into
their reductions; only the k-th-neighbour radii and the median bandwidth
(selections, for which NumPy's partition beats XLA's CPU sort) are taken on
the host. The NumPy functions stay the documented reference; tests check this
program against them.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

# Points of each set pooled for the median bandwidth (as modes.mmd_rbf).
_MEDIAN_POINTS = 1000
KEYS = ("energy_distance", "mmd_rbf", "precision", "recall", "density", "coverage")


def _sq_dists(a, b):
  d2 = jnp.sum(a * a, 1)[:, None] + jnp.sum(b * b, 1)[None, :] - 2.0 * a @ b.T
  return jnp.maximum(d2, 0.0)


def _off_diagonal_mean(values):
  n = values.shape[0]
  values = jnp.where(jnp.eye(n, dtype=bool), 0.0, values)
  # Row sums first: a float64 sum of n row sums, not one long running sum.
  return jnp.sum(jnp.sum(values, axis=1)) / (n * (n - 1))


def _mean(values):
  return jnp.sum(jnp.sum(values, axis=1)) / values.size


def _self_distances(x, y):
  # The within-set matrices the neighbour radii come from, and the pooled
  # points' distances for the median bandwidth.
  pool = jnp.concatenate([x[:_MEDIAN_POINTS], y[:_MEDIAN_POINTS]])
  return _sq_dists(x, x), _sq_dists(y, y), _sq_dists(pool, pool)


def _pair_statistics(x, y, d_xx, d_yy, h, r_real_pr, r_fake_pr, r_real_dc, k_dc: int):
  """x: generated [m, d], y: reference (real) [n, d]; as modes / fidelity.prdc."""
  d_xy = _sq_dists(y, x)
  energy = (2.0 * _mean(jnp.sqrt(d_xy)) - _off_diagonal_mean(jnp.sqrt(d_xx))
            - _off_diagonal_mean(jnp.sqrt(d_yy)))
  kernel = lambda d2: jnp.exp(-d2 / (2.0 * h * h))
  mmd = _off_diagonal_mean(kernel(d_xx)) + _off_diagonal_mean(kernel(d_yy)) - 2.0 * _mean(
      kernel(d_xy))
  # Closed balls on squared distances, as fidelity._ball_statistics.
  share = lambda b: jnp.mean(b.astype(jnp.float64))
  precision = share(jnp.any(d_xy <= r_real_pr[:, None], axis=0))
  recall = share(jnp.any(d_xy <= r_fake_pr[None, :], axis=1))
  inside = d_xy <= r_real_dc[:, None]
  density = jnp.sum(jnp.sum(inside, axis=0)).astype(jnp.float64) / (k_dc * x.shape[0])
  coverage = share(jnp.any(inside, axis=1))
  return dict(zip(KEYS, (energy, mmd, precision, recall, density, coverage)))


@functools.lru_cache(maxsize=None)
def _programs(k_dc: int):
  return jax.jit(_self_distances), jax.jit(functools.partial(_pair_statistics, k_dc=k_dc))


def _kth_sq_radii(d2: np.ndarray, ks) -> list[np.ndarray]:
  # NumPy's partition: XLA's CPU sort (top_k, median) is several times slower.
  d2 = np.array(d2)
  np.fill_diagonal(d2, np.inf)  # the point itself is not its own neighbour
  part = np.partition(d2, sorted({k - 1 for k in ks}), axis=1)
  return [part[:, k - 1] for k in ks]


def _one(x, y, k_pr: int, k_dc: int, cpu) -> dict[str, np.ndarray]:
  self_dists, pair = _programs(k_dc)
  x, y = jax.device_put(x, cpu), jax.device_put(y, cpu)
  d_xx_dev, d_yy_dev, d_pool = self_dists(x, y)
  d_xx, d_yy, d_pool = np.asarray(d_xx_dev), np.asarray(d_yy_dev), np.asarray(d_pool)
  h = float(np.sqrt(np.median(d_pool[np.triu_indices(d_pool.shape[0], 1)])))
  h = h if h > 0 else 1.0
  r_real_pr, r_real_dc = _kth_sq_radii(d_yy, (k_pr, k_dc))
  (r_fake_pr,) = _kth_sq_radii(d_xx, (k_pr,))
  out = pair(x, y, d_xx_dev, d_yy_dev, h, r_real_pr, r_fake_pr, r_real_dc)
  return {k: np.asarray(v, np.float64) for k, v in out.items()}


def sample_statistics(samples: Any, reference: Any, *, k_precision_recall: int = 3,
                      k_density_coverage: int = 5) -> dict[str, np.ndarray]:
  """Energy distance, MMD (median bandwidth) and precision / recall / density /
  coverage of generated ``samples`` against ``reference`` points.

  Args:
    samples: ``[m, d]`` generated points, or ``[S, m, d]`` for S seeds.
    reference: ``[n, d]`` (or ``[S, n, d]``) real points; for each seed its own.
    k_precision_recall, k_density_coverage: neighbour ranks (``fidelity.prdc``).

  Returns:
    Each of ``KEYS`` as a float64 array, ``[]`` or ``[S]``: the values of
    ``modes.energy_distance``, ``modes.mmd_rbf(bandwidth='median')`` and
    ``fidelity.prdc`` up to float64 rounding (neighbourhood statistics can
    differ on exact ties only).
  """
  x, y = np.asarray(samples, np.float64), np.asarray(reference, np.float64)
  if x.ndim not in (2, 3) or y.ndim != x.ndim or x.shape[-1] != y.shape[-1] or (
      x.ndim == 3 and x.shape[0] != y.shape[0]):
    raise ValueError(f"samples and reference must be [m, d] and [n, d] (or [S, m, d] and "
                     f"[S, n, d]) with the same d and S; got {x.shape} and {y.shape}")
  cpu = jax.local_devices(backend="cpu")[0]  # this process's own host CPU
  k_pr, k_dc = int(k_precision_recall), int(k_density_coverage)
  with jax.enable_x64(True):
    if x.ndim == 2:
      return _one(x, y, k_pr, k_dc, cpu)
    rows = [_one(a, b, k_pr, k_dc, cpu) for a, b in zip(x, y)]
  return {k: np.stack([r[k] for r in rows]) for k in KEYS}
