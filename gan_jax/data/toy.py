"""Synthetic distributions of the papers.

Every low-dimensional target of the five papers, plus the standard 2-D sets used
to count modes, as a :class:`ToyDistribution`: a frozen description (centres,
widths, weights, bounding box) with a pure, jittable ``sample(key, n)`` so that a
compiled training step draws its toy batches itself, and geometric helpers
(``distance_to_support``, ``nearest_mode``, ``nearest_segment``) that
:mod:`gan_jax.metrics.modes` builds on.

Registered names (``make_toy(name, **overrides)``):

* ``mixture_3d_5``, ``mixture_3d_10``: beta-GAN's 3-D mixtures (fixed seeded
  centres, std 0.05).
* ``cube_frames``: beta-GAN's two nested cubic frames (1-D support in 3-D).
* ``roth_submanifold``: Roth et al.'s 7 Gaussians on a tilted plane in 3-D.
* ``che_circle``: Reg-GAN's 6 Gaussians on a circle of radius 5.
* ``ring_8``, ``grid_25``: the PacGAN/VEEGAN evaluation sets.
* ``mixture_1d``, ``mixture_2d``, ``mixture_3d``: generic mixtures (beta-GAN ran
  1-, 2- and 3-D mixtures; the covariance-controlled SGLD study a multimodal toy)
  with seeded random or circular centres.

Example:

>>> import jax
>>> dist = make_toy("ring_8")
>>> x = jax.jit(dist.sample, static_argnums=1)(jax.random.key(0), 512)
>>> x.shape, str(x.dtype)
((512, 2), 'float32')
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.validation import positive_int as _positive_int

__all__ = [
    "TOY_DATASETS",
    "ToyDistribution",
    "che_circle",
    "cube_frames",
    "gaussian_mixture",
    "grid_25",
    "make_toy",
    "mixture_1d",
    "mixture_2d",
    "mixture_3d",
    "mixture_3d_5",
    "mixture_3d_10",
    "random_centers",
    "ring_8",
    "rotation_matrix",
    "roth_submanifold",
]

# beta-GAN's 3-D mixture centres (the paper gives none; decided here).
# Made once by `random_centers(10, dim=3, low=-0.8, high=0.8, min_distance=0.6,
# seed=0)`: sequential rejection sampling of uniform points in [-0.8, 0.8]^3
# from numpy.random.default_rng(0), a point kept if it is at least
# 12 std = 0.6 from all kept ones. Rejection sampling accepts points in order,
# so the 5-component mixture uses the first five rows (the same call with
# n = 5). Smallest pairwise distance: 0.627 (10 centres), 0.997 (first 5).
# Stored literally so that the data never depends on a random number generator
# version.
_MIXTURE_3D_CENTERS = np.array([
    [0.21913869971432698, -0.36834125797780753, -0.7344423617020885],
    [-0.7735557831543535, 0.5012323827204359, 0.6604089236443549],
    [0.17061724122748778, 0.3671944975743975, 0.06979998634467655],
    [0.6961158780604293, 0.5053656865944516, -0.795618399727763],
    [0.5718468425401111, -0.746263079511257, 0.3674487142879106],
    [-0.5189510070359056, 0.5810862757598185, 0.06633795239854678],
    [0.1846161783700062, -0.18611591318098653, 0.7955358972627378],
    [0.7693365420419682, 0.29686717516911143, 0.24073484202850604],
    [-0.0226634258691375, 0.6231805349584005, 0.6944696255299996],
    [-0.4170088912112766, 0.6023747692971262, -0.706291144311689],
])


# --------------------------------------------------------------------------
# Validation helpers (concrete Python values only).
# --------------------------------------------------------------------------

def _positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
  try:
    v = float(value)
  except (TypeError, ValueError):
    raise ValueError(f"{name} must be a number; got {value!r}") from None
  ok = math.isfinite(v) and (v >= 0 if allow_zero else v > 0)
  if not ok:
    valid = "a finite number >= 0" if allow_zero else "a finite number > 0"
    raise ValueError(f"{name} must be {valid}; got {value!r}")
  return v


def _box(value: Any, name: str = "box") -> tuple[float, float]:
  try:
    low, high = (float(v) for v in value)
  except (TypeError, ValueError):
    raise ValueError(
        f"{name} must be a pair (low, high) of numbers; got {value!r}") from None
  if not (math.isfinite(low) and math.isfinite(high) and low < high):
    raise ValueError(f"{name} needs finite low < high; got {value!r}")
  return low, high


def _weights(weights: Any, m: int) -> np.ndarray:
  """Validated component weights, normalised to sum to 1 (uniform if None)."""
  if weights is None:
    return np.full(m, 1.0 / m)
  w = np.asarray(weights, dtype=np.float64)
  if w.shape != (m,):
    raise ValueError(
        f"weights must have one entry per component, shape ({m},); got shape "
        f"{w.shape}")
  if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
    raise ValueError(
        f"weights must be finite, >= 0 and not all 0; got {w.tolist()}")
  return w / w.sum()


def _readonly(a: Optional[np.ndarray], dtype=np.float64) -> Optional[np.ndarray]:
  if a is None:
    return None
  a = np.array(a, dtype=dtype)  # a private copy, so freezing it is safe
  a.setflags(write=False)
  return a


def _padded_box(centers: np.ndarray, std: float) -> tuple[float, float]:
  """A cube around the centres with room for the noise, rounded outwards."""
  lo, hi = float(centers.min()), float(centers.max())
  pad = max(0.1 * (hi - lo), 5.0 * std)
  return math.floor((lo - pad) * 10) / 10, math.ceil((hi + pad) * 10) / 10


# --------------------------------------------------------------------------
# The distribution object.
# --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class ToyDistribution:
  """A synthetic target: a Gaussian mixture or a union of line segments.

  A mixture has ``centers``; its component ``m`` is ``centers[m] + std * e``
  with ``e`` standard normal in the span of ``noise_basis`` (all of ``R^dim``
  when it is None). A segment distribution (``segments`` set, ``centers`` None)
  is uniform along each segment, a segment of component ``c`` chosen with
  probability ``weights[c] * length / (total length of component c)``, plus
  optional isotropic Gaussian thickness ``std`` (which may then be 0).

  Instances are immutable (their arrays are read-only) and hash by identity,
  so one can be closed over by, or passed as a static argument to, a jitted
  function.

  Attributes:
    name: registry name.
    dim: dimension of a sample.
    centers: ``[M, dim]`` mode centres, or None for segment distributions.
    std: per-direction standard deviation of a component (thickness of the
      segments for segment distributions).
    weights: ``[M]`` component probabilities, summing to 1 (for segment
      distributions one per component, e.g. per cube).
    box: ``(low, high)``: the cube ``[low, high]^dim`` that frames the data, for
      plots, grid occupancy and beta-GAN's uniform stage.
    noise_basis: ``[k, dim]`` orthonormal rows spanning the noise of a mixture
      component (``k < dim`` for a degenerate mixture on a submanifold), or
      None for isotropic noise in all ``dim`` directions.
    segments: ``[E, 2, dim]`` start and end points of the segments, or None.
    segment_component: ``[E]`` component index of each segment, or None.
    params: the arguments of the factory that made it (for logging).
  """
  name: str
  dim: int
  centers: Optional[np.ndarray]
  std: float
  weights: np.ndarray
  box: tuple[float, float]
  noise_basis: Optional[np.ndarray] = None
  segments: Optional[np.ndarray] = None
  segment_component: Optional[np.ndarray] = None
  params: dict = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    set_ = lambda k, v: object.__setattr__(self, k, v)
    set_("dim", _positive_int("dim", self.dim))
    set_("box", _box(self.box))
    set_("weights", _readonly(self.weights))
    set_("centers", _readonly(self.centers))
    set_("noise_basis", _readonly(self.noise_basis))
    set_("segments", _readonly(self.segments))
    set_("segment_component", _readonly(self.segment_component, np.int32))
    set_("params", dict(self.params))
    if (self.centers is None) == (self.segments is None):
      raise ValueError(
          "a ToyDistribution needs exactly one of centers (a mixture) or "
          "segments (a segment distribution)")
    if self.weights.ndim != 1 or not np.isclose(self.weights.sum(), 1.0):
      raise ValueError(f"weights must be a vector summing to 1; got {self.weights}")
    m = self.weights.shape[0]
    if self.centers is not None:
      set_("std", _positive("std", self.std))
      if self.centers.shape != (m, self.dim):
        raise ValueError(
            f"centers must have shape ({m}, {self.dim}) (one row per weight); "
            f"got {self.centers.shape}")
      if self.noise_basis is not None:
        b = self.noise_basis
        if b.ndim != 2 or b.shape[1] != self.dim or b.shape[0] > self.dim:
          raise ValueError(
              f"noise_basis must have shape (k, {self.dim}) with k <= {self.dim};"
              f" got {b.shape}")
        if not np.allclose(b @ b.T, np.eye(b.shape[0]), atol=1e-9):
          raise ValueError("noise_basis rows must be orthonormal")
    else:
      set_("std", _positive("std", self.std, allow_zero=True))
      s, c = self.segments, self.segment_component
      if s.ndim != 3 or s.shape[1:] != (2, self.dim):
        raise ValueError(
            f"segments must have shape (E, 2, {self.dim}); got {s.shape}")
      if c is None or c.shape != (s.shape[0],) or c.min() < 0 or c.max() >= m:
        raise ValueError(
            f"segment_component must give, for each of the {s.shape[0]} "
            f"segments, a component index in [0, {m})")
      if np.any(np.linalg.norm(s[:, 1] - s[:, 0], axis=-1) <= 0):
        raise ValueError("segments must have positive length")
      if self.noise_basis is not None:
        raise ValueError("noise_basis applies to mixtures only")

  def __getstate__(self):
    # Compiled functions are caches, rebuilt on demand; they do not pickle.
    state = dict(self.__dict__)
    state.pop("_compiled_sampler", None)
    state.pop("_compiled_geometry", None)
    return state

  def __setstate__(self, state):
    for k, v in state.items():
      if isinstance(v, np.ndarray):
        v = v.copy()
        v.setflags(write=False)
      object.__setattr__(self, k, v)

  # ---- derived quantities -------------------------------------------------

  @property
  def n_components(self) -> int:
    """Number of mixture components (modes), or of segment groups."""
    return int(self.weights.shape[0])

  @property
  def noise_dim(self) -> int:
    """Dimension of a mixture component's noise (``dim`` unless degenerate)."""
    return self.dim if self.noise_basis is None else int(self.noise_basis.shape[0])

  @property
  def has_centers(self) -> bool:
    return self.centers is not None

  @property
  def segment_weights(self) -> np.ndarray:
    """``[E]`` probability of each segment (segment distributions only)."""
    self._require_segments("segment_weights")
    lengths = np.linalg.norm(self.segments[:, 1] - self.segments[:, 0], axis=-1)
    comp = self.segment_component
    per_comp = np.bincount(comp, weights=lengths, minlength=self.n_components)
    return self.weights[comp] * lengths / per_comp[comp]

  def _require_segments(self, what: str) -> None:
    if self.segments is None:
      raise ValueError(
          f"{what} needs a segment distribution; {self.name!r} is a mixture "
          "(use nearest_mode)")

  # ---- sampling -----------------------------------------------------------

  def sample_with_labels(self, key: jax.Array, n: int
                         ) -> tuple[jax.Array, jax.Array]:
    """Draws ``n`` points and the component each came from.

    Pure JAX; ``n`` must be a static Python int (it fixes the shape).

    Args:
      key: PRNG key.
      n: number of points, ``>= 1``.

    Returns:
      ``(x, labels)``: ``x`` float32 ``[n, dim]``, ``labels`` int32 ``[n]``
      (mixture component, or the segment group, e.g. the cube).
    """
    return self._compiled_sampler(key, _positive_int("n (a static Python int)", n))

  @functools.cached_property
  def _compiled_sampler(self):
    # One compiled program per n instead of a dispatch per operation when
    # called eagerly; inside a caller's jit it is simply inlined.
    return jax.jit(self._sample_with_labels, static_argnums=1)

  def _sample_with_labels(self, key: jax.Array, n: int
                          ) -> tuple[jax.Array, jax.Array]:
    k_choice, k_pos, k_noise = jax.random.split(key, 3)
    with np.errstate(divide="ignore"):
      if self.centers is not None:
        log_p = np.log(self.weights)
      else:
        log_p = np.log(self.segment_weights)
    if np.all(log_p == log_p[0]):
      # Equal weights: a uniform index, far cheaper than the Gumbel draw per
      # component that categorical sampling costs. One 32-bit word modulo the
      # number of components (bias below K / 2**32, ~1e-9 here) takes one
      # random-bits call where ``randint`` takes three (split + two words).
      idx = jax.random.bits(k_choice, (n,), jnp.uint32) % np.uint32(len(log_p))
    else:
      idx = jax.random.categorical(k_choice, jnp.asarray(log_p, jnp.float32),
                                   shape=(n,))
    if self.centers is not None:
      labels = idx
      base = jnp.take(jnp.asarray(self.centers, jnp.float32), idx, axis=0)
      if self.noise_basis is None:
        noise = jax.random.normal(k_noise, (n, self.dim), jnp.float32)
      else:
        basis = jnp.asarray(self.noise_basis, jnp.float32)
        noise = jax.random.normal(k_noise, (n, basis.shape[0]), jnp.float32) @ basis
      x = base + self.std * noise
    else:
      seg = jnp.asarray(self.segments, jnp.float32)
      labels = jnp.take(jnp.asarray(self.segment_component), idx)
      start, end = seg[idx, 0], seg[idx, 1]
      t = jax.random.uniform(k_pos, (n, 1), jnp.float32)
      x = start + t * (end - start)
      if self.std > 0:
        x = x + self.std * jax.random.normal(k_noise, (n, self.dim), jnp.float32)
    return x.astype(jnp.float32), labels.astype(jnp.int32)

  def sample(self, key: jax.Array, n: int) -> jax.Array:
    """Draws ``n`` points, float32 ``[n, dim]``; pure and jittable (``n`` static)."""
    return self.sample_with_labels(key, n)[0]

  # ---- geometry -----------------------------------------------------------

  def _points(self, x: Any) -> jax.Array:
    x = jnp.asarray(x)
    if x.ndim != 2 or x.shape[1] != self.dim:
      raise ValueError(
          f"points must have shape [n, {self.dim}] for {self.name!r}; got "
          f"{x.shape}")
    return x.astype(jnp.result_type(x.dtype, jnp.float32))

  def _center_sq_dists(self, x: jax.Array) -> jax.Array:
    c = jnp.asarray(self.centers, x.dtype)
    # Differences, not |x|^2 + |c|^2 - 2xc, so that points on a centre give 0.
    return jnp.sum(jnp.square(x[:, None, :] - c[None]), axis=-1)

  def _segment_geometry(self, x: jax.Array):
    seg = jnp.asarray(self.segments, x.dtype)
    a, d = seg[:, 0], seg[:, 1] - seg[:, 0]                  # [E, dim]
    rel = x[:, None, :] - a[None]                             # [n, E, dim]
    t = jnp.clip(jnp.sum(rel * d, -1) / jnp.sum(d * d, -1), 0.0, 1.0)
    dist = jnp.linalg.norm(rel - t[..., None] * d, axis=-1)  # [n, E]
    idx = jnp.argmin(dist, axis=-1)
    take = lambda v: jnp.take_along_axis(v, idx[:, None], axis=-1)[:, 0]
    return idx.astype(jnp.int32), take(t), take(dist)

  def _nearest_mode(self, x: jax.Array) -> jax.Array:
    return jnp.argmin(self._center_sq_dists(x), axis=-1).astype(jnp.int32)

  def _distance_to_support(self, x: jax.Array) -> jax.Array:
    if self.centers is None:
      return self._segment_geometry(x)[2]
    return jnp.sqrt(jnp.min(self._center_sq_dists(x), axis=-1))

  @functools.cached_property
  def _compiled_geometry(self):
    return {name: jax.jit(getattr(self, name)) for name in
            ("_segment_geometry", "_nearest_mode", "_distance_to_support")}

  def nearest_mode(self, x: Any) -> jax.Array:
    """Index ``[n]`` (int32) of the nearest mode centre (mixtures only)."""
    if self.centers is None:
      raise ValueError(
          f"{self.name!r} has no mode centres; nearest_mode needs a mixture "
          "(use nearest_segment)")
    return self._compiled_geometry["_nearest_mode"](self._points(x))

  def nearest_segment(self, x: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Nearest segment, position along it and distance to it.

    Args:
      x: points ``[n, dim]``.

    Returns:
      ``(index, t, distance)``, each ``[n]``: the nearest segment's index, the
      parameter ``t`` in ``[0, 1]`` of the closest point ``start + t (end -
      start)`` on it, and the Euclidean distance to that point.
    """
    self._require_segments("nearest_segment")
    return self._compiled_geometry["_segment_geometry"](self._points(x))

  def distance_to_support(self, x: Any) -> jax.Array:
    """Distance ``[n]`` to the nearest mode centre, or to the nearest segment."""
    return self._compiled_geometry["_distance_to_support"](self._points(x))


# --------------------------------------------------------------------------
# Building blocks.
# --------------------------------------------------------------------------

def random_centers(n: int, *, dim: int, low: float, high: float,
                   min_distance: float, seed: int,
                   max_draws: int = 100_000, patience: int = 1000) -> np.ndarray:
  """Seeded centres, uniform in a cube, pairwise at least ``min_distance`` apart.

  Sequential rejection sampling: uniform draws from
  ``numpy.random.default_rng(seed)`` in ``[low, high]^dim``, each kept if it is
  at least ``min_distance`` from every point kept so far, until ``n`` are kept;
  after ``patience`` rejections in a row the kept points are discarded and the
  search starts again (the stream continues). Unless such a restart happens,
  the first ``k`` rows for ``n`` equal the result for ``k``.

  Args:
    n: number of centres.
    dim: dimension.
    low: lower end of the cube.
    high: upper end of the cube.
    min_distance: smallest allowed pairwise distance, ``>= 0``.
    seed: numpy seed.
    max_draws: draws before giving up.
    patience: rejections in a row before a restart.

  Returns:
    ``[n, dim]`` float64 centres.

  Raises:
    ValueError: for bad arguments, or if ``n`` centres could not be placed.
  """
  n, dim = _positive_int("n_components", n), _positive_int("dim", dim)
  low, high = _box((low, high), "center_box")
  min_distance = _positive("min_distance", min_distance, allow_zero=True)
  rng = np.random.default_rng(seed)
  kept = np.empty((0, dim))
  misses = 0
  for _ in range(max_draws):
    c = rng.uniform(low, high, size=dim)
    if kept.shape[0] == 0 or np.min(np.linalg.norm(kept - c, axis=1)) >= min_distance:
      kept, misses = np.vstack([kept, c]), 0
      if kept.shape[0] == n:
        return kept
    else:
      misses += 1
      if misses == patience:
        # The points kept so far leave no room (likely in 1-D): start afresh.
        kept, misses = np.empty((0, dim)), 0
  raise ValueError(
      f"could not place {n} centres in [{low}, {high}]^{dim} at least "
      f"{min_distance} apart in {max_draws} draws; lower n_components or "
      "min_separation, or widen center_box")


def rotation_matrix(axis: Sequence[float], angle: float) -> np.ndarray:
  """Right-handed rotation by ``angle`` about ``axis`` (Rodrigues' formula).

  ``R = I + sin(angle) K + (1 - cos(angle)) K^2`` with ``K`` the cross-product
  matrix of the unit axis.

  Args:
    axis: 3-vector, any non-zero length.
    angle: radians.

  Returns:
    ``[3, 3]`` orthogonal matrix with determinant 1.
  """
  k = np.asarray(axis, dtype=np.float64)
  if k.shape != (3,) or not np.all(np.isfinite(k)) or np.linalg.norm(k) == 0:
    raise ValueError(f"axis must be a finite non-zero 3-vector; got {axis!r}")
  k = k / np.linalg.norm(k)
  cross = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
  angle = float(angle)
  return np.eye(3) + math.sin(angle) * cross + (1 - math.cos(angle)) * cross @ cross


def _circle(n: int, radius: float, dim: int) -> np.ndarray:
  """``n`` points equally spaced on a circle in the first two coordinates
  (angles ``2 pi k / n`` from the first axis); in 1-D, equally spaced on
  ``[-radius, radius]``."""
  if dim == 1:
    return np.linspace(-radius, radius, n)[:, None] if n > 1 else np.zeros((1, 1))
  angles = 2 * np.pi * np.arange(n) / n
  out = np.zeros((n, dim))
  out[:, 0], out[:, 1] = radius * np.cos(angles), radius * np.sin(angles)
  return out


def gaussian_mixture(centers: Any, *, std: float, weights: Any = None,
                     box: Optional[Sequence[float]] = None,
                     noise_basis: Any = None, name: str = "gaussian_mixture",
                     params: Optional[dict] = None) -> ToyDistribution:
  """A mixture of equal-width Gaussians at explicit centres.

  Args:
    centers: ``[M, d]`` mode centres.
    std: standard deviation of each component, ``> 0``.
    weights: ``[M]`` non-negative weights (normalised to sum 1); None: equal.
    box: ``(low, high)`` framing cube; None: the centres' range padded by
      ``max(10% of it, 5 std)``, rounded outwards to 0.1.
    noise_basis: ``[k, d]`` orthonormal rows: noise only in their span.
    name: name of the distribution.
    params: factory arguments to record.

  Returns:
    A :class:`ToyDistribution`.
  """
  c = np.asarray(centers, dtype=np.float64)
  if c.ndim != 2 or c.shape[0] < 1 or not np.all(np.isfinite(c)):
    raise ValueError(f"centers must be a finite [M, d] array; got shape {c.shape}")
  std = _positive("std", std)
  w = _weights(weights, c.shape[0])
  box = _padded_box(c, std) if box is None else _box(box)
  return ToyDistribution(name=name, dim=c.shape[1], centers=c, std=std,
                         weights=w, box=box, noise_basis=noise_basis,
                         params=params or {})


# --------------------------------------------------------------------------
# Registered distributions.
# --------------------------------------------------------------------------

_REGISTRY: dict[str, Callable[..., ToyDistribution]] = {}


def _register(fn: Callable[..., ToyDistribution]) -> Callable[..., ToyDistribution]:
  _REGISTRY[fn.__name__] = fn
  return fn


def _args(frame_locals: dict) -> dict:
  """Factory arguments as plain Python values, for ``ToyDistribution.params``."""
  out = {}
  for k, v in frame_locals.items():
    if isinstance(v, np.ndarray):
      v = v.tolist()
    elif isinstance(v, tuple):
      v = list(v)
    out[k] = v
  return out


@_register
def mixture_3d_5(*, std: float = 0.05, weights: Any = None,
                 box: Sequence[float] = (-1.0, 1.0)) -> ToyDistribution:
  """beta-GAN's 5-component 3-D mixture.

  Fixed seeded centres in ``[-0.8, 0.8]^3`` pairwise at least 12 std (0.6)
  apart, std 0.05, equal weights, framed by beta-GAN's box ``[-1, 1]^3``.

  Args:
    std: component standard deviation.
    weights: ``[5]`` weights; None: equal.
    box: framing cube.

  References:
    Mehrjou, Schölkopf & Saremi, "Annealed Generative Adversarial Networks",
    2017, Sec. 3.1.
  """
  params = _args(locals())
  return gaussian_mixture(_MIXTURE_3D_CENTERS[:5], std=std, weights=weights,
                          box=box, name="mixture_3d_5", params=params)


@_register
def mixture_3d_10(*, std: float = 0.05, weights: Any = None,
                  box: Sequence[float] = (-1.0, 1.0)) -> ToyDistribution:
  """beta-GAN's 10-component 3-D mixture (as :func:`mixture_3d_5`, 10 centres).

  References:
    Mehrjou, Schölkopf & Saremi, "Annealed Generative Adversarial Networks",
    2017, Sec. 3.1 and Fig. 3.
  """
  params = _args(locals())
  return gaussian_mixture(_MIXTURE_3D_CENTERS, std=std, weights=weights,
                          box=box, name="mixture_3d_10", params=params)


def _cube_edges(half_side: float) -> np.ndarray:
  """The 12 edges ``[12, 2, 3]`` of the cube ``[-h, h]^3``: for each axis, the
  four edges parallel to it (the other two coordinates at ``+-h``)."""
  edges = []
  for axis in range(3):
    others = [a for a in range(3) if a != axis]
    for s1 in (-half_side, half_side):
      for s2 in (-half_side, half_side):
        start = np.zeros(3)
        start[others] = (s1, s2)
        end = start.copy()
        start[axis], end[axis] = -half_side, half_side
        edges.append((start, end))
  return np.array(edges)


@_register
def cube_frames(*, half_sides: Sequence[float] = (0.4, 0.8),
                frame_std: float = 0.0, weights: Any = None,
                box: Sequence[float] = (-1.0, 1.0)) -> ToyDistribution:
  """beta-GAN's nested cubic frames: the edges of cubes centred at the origin.

  Points are uniform along the 12 edges of each cube ``[-h, h]^3``. Decision:
  by default each cube's weight is proportional to its total edge length
  (``24 h``), so the data are uniform on the union of all edges (the natural
  "uniform along the edges" measure): 1/3 and 2/3 for the default cubes. Pass
  ``weights=(0.5, 0.5)`` for an equal mixture of the two frames.

  Args:
    half_sides: half side of each cube (default beta-GAN's two, 0.4 and 0.8).
    frame_std: isotropic Gaussian thickness added to the edges, ``>= 0``
      (0: a 1-D support of zero thickness).
    weights: per-cube weights; None: proportional to edge length.
    box: framing cube.

  References:
    Mehrjou, Schölkopf & Saremi, "Annealed Generative Adversarial Networks",
    2017, Sec. 3.1 and Fig. 2.
  """
  params = _args(locals())
  h = np.atleast_1d(np.asarray(half_sides, dtype=np.float64))
  if h.ndim != 1 or h.size < 1 or not np.all(np.isfinite(h)) or np.any(h <= 0):
    raise ValueError(
        f"half_sides must be one or more finite numbers > 0; got {half_sides!r}")
  frame_std = _positive("frame_std", frame_std, allow_zero=True)
  w = _weights(h / h.sum() if weights is None else weights, h.size)
  segments = np.concatenate([_cube_edges(v) for v in h])
  component = np.repeat(np.arange(h.size), 12)
  return ToyDistribution(name="cube_frames", dim=3, centers=None, std=frame_std,
                         weights=w, box=_box(box), segments=segments,
                         segment_component=component, params=params)


@_register
def roth_submanifold(*, n_components: int = 7, std: float = 0.01,
                     radius: float = 1.0, angle: float = math.pi / 4,
                     axis: Sequence[float] = (1.0, -1.0, 0.0),
                     offset: Sequence[float] = (1 / math.sqrt(3),) * 3,
                     weights: Any = None,
                     box: Optional[Sequence[float]] = None) -> ToyDistribution:
  """Roth et al.'s 2-D mixture on a tilted plane in 3-D.

  A 2-D mixture of ``n_components`` Gaussians (std ``std``) with means equally
  spaced on the circle of radius ``radius`` (angles ``2 pi k / M``), embedded in
  the xy plane of 3-D, rotated by ``angle`` about ``axis`` (right-handed,
  Rodrigues) and translated by ``offset``. The noise stays in the plane: the
  mixture is degenerate in 3-D, the dimensional misspecification the
  regularizer targets.

  Args:
    n_components: number of Gaussians.
    std: in-plane standard deviation.
    radius: radius of the circle of means.
    angle: rotation angle in radians.
    axis: rotation axis (normalised here).
    offset: translation applied after the rotation.
    weights: component weights; None: equal.
    box: framing cube; None: fitted to the centres.

  References:
    Roth, Lucchi, Nowozin & Hofmann, "Stabilizing Training of Generative
    Adversarial Networks through Regularization", 2017, Sec. 5.1, App. 7.3.
  """
  params = _args(locals())
  n = _positive_int("n_components", n_components)
  radius = _positive("radius", radius)
  t = np.asarray(offset, dtype=np.float64)
  if t.shape != (3,) or not np.all(np.isfinite(t)):
    raise ValueError(f"offset must be a finite 3-vector; got {offset!r}")
  rot = rotation_matrix(axis, angle)
  centers = _circle(n, radius, 3) @ rot.T + t
  basis = rot[:, :2].T  # the rotated x and y axes span the plane
  return gaussian_mixture(centers, std=std, weights=weights, box=box,
                          noise_basis=basis, name="roth_submanifold",
                          params=params)


@_register
def che_circle(*, n_components: int = 6, std: float = 0.1, radius: float = 5.0,
               weights: Any = None,
               box: Optional[Sequence[float]] = None) -> ToyDistribution:
  """Reg-GAN's toy: Gaussians (std 0.1) equally spaced on a circle of radius 5.

  Args:
    n_components: number of Gaussians.
    std: component standard deviation.
    radius: circle radius.
    weights: component weights; None: equal.
    box: framing square; None: fitted to the centres (``[-6, 6]``).

  References:
    Che, Li, Jacob, Bengio & Li, "Mode Regularized Generative Adversarial
    Networks", 2017, App. C.
  """
  params = _args(locals())
  centers = _circle(_positive_int("n_components", n_components),
                    _positive("radius", radius), 2)
  return gaussian_mixture(centers, std=std, weights=weights, box=box,
                          name="che_circle", params=params)


@_register
def ring_8(*, n_components: int = 8, radius: float = 1.0, std: float = 0.01,
           weights: Any = None,
           box: Optional[Sequence[float]] = None) -> ToyDistribution:
  """The ring: 8 Gaussians (std 0.01) equally spaced on the unit circle.

  Args:
    n_components: number of Gaussians.
    radius: circle radius.
    std: component standard deviation.
    weights: component weights; None: equal.
    box: framing square; None: fitted to the centres (``[-1.2, 1.2]``).

  References:
    Lin, Khetan, Fanti & Oh, "PacGAN: The power of two samples in generative
    adversarial networks", 2018, Table 1.
  """
  params = _args(locals())
  centers = _circle(_positive_int("n_components", n_components),
                    _positive("radius", radius), 2)
  return gaussian_mixture(centers, std=std, weights=weights, box=box,
                          name="ring_8", params=params)


@_register
def grid_25(*, per_side: int = 5, spacing: float = 2.0, std: float = 0.05,
            weights: Any = None,
            box: Optional[Sequence[float]] = None) -> ToyDistribution:
  """The grid: Gaussians (std 0.05) at ``{-4, -2, 0, 2, 4}^2``.

  Centres are ``spacing * (i - (per_side - 1) / 2)`` in each coordinate,
  ordered row-major (first coordinate slowest).

  Args:
    per_side: centres per side (5: 25 modes).
    spacing: distance between neighbouring centres.
    std: component standard deviation.
    weights: ``[per_side**2]`` weights; None: equal.
    box: framing square; None: fitted to the centres (``[-4.8, 4.8]``).

  References:
    Lin, Khetan, Fanti & Oh, "PacGAN: The power of two samples in generative
    adversarial networks", 2018, Table 1.
  """
  params = _args(locals())
  k = _positive_int("per_side", per_side)
  ticks = _positive("spacing", spacing) * (np.arange(k) - (k - 1) / 2)
  centers = np.stack(np.meshgrid(ticks, ticks, indexing="ij"), -1).reshape(-1, 2)
  return gaussian_mixture(centers, std=std, weights=weights, box=box,
                          name="grid_25", params=params)


def _generic_mixture(dim: int, name: str, *, n_components, std, seed, radius,
                     center_box, min_separation, weights, box, params):
  n = _positive_int("n_components", n_components)
  std = _positive("std", std)
  if radius is None:
    low, high = _box(center_box, "center_box")
    min_separation = _positive("min_separation", min_separation, allow_zero=True)
    centers = random_centers(n, dim=dim, low=low, high=high,
                             min_distance=min_separation * std, seed=seed)
    if box is None:
      # Widen the centre cube by an eighth of its width (and by at least 4 std)
      # on each side: the default centre box gives beta-GAN's [-1, 1].
      pad = max(0.125 * (high - low), 4.0 * std)
      box = (low - pad, high + pad)
  else:
    centers = _circle(n, _positive("radius", radius), dim)
  return gaussian_mixture(centers, std=std, weights=weights, box=box,
                          name=name, params=params)


_GENERIC_DOC = """A generic {d}-D Gaussian mixture.

  Centres are either seeded random points (``radius=None``: rejection sampled
  uniformly in ``center_box^{d}``, pairwise at least ``min_separation`` std
  apart, see :func:`random_centers`) or equally spaced {layout}.
  The defaults follow beta-GAN's 3-D toys (std 0.05, centres in
  ``[-0.8, 0.8]``, 12 std apart, box ``[-1, 1]``); ``mixture_3d`` with
  ``n_components`` 5 or 10 and ``seed=0`` reproduces ``mixture_3d_5`` /
  ``mixture_3d_10``. In 1-D the default is 3 components, as at most three
  fit 12 std apart in ``[-0.8, 0.8]``.

  Args:
    n_components: number of Gaussians.
    std: component standard deviation.
    seed: numpy seed of the random centres.
    radius: None for random centres, else the radius of the {radius_doc}.
    center_box: ``(low, high)`` cube of the random centres.
    min_separation: smallest distance between random centres, in std.
    weights: component weights; None: equal.
    box: framing cube; None: ``center_box`` widened by
      ``max(width / 8, 4 std)`` each side (random centres) or fitted to the
      centres (circle).

  References:
    Mehrjou, Schölkopf & Saremi, "Annealed Generative Adversarial Networks",
    2017, Sec. 3.1 (1-D, 2-D and 3-D mixtures).
  """


@_register
def mixture_1d(*, n_components: int = 3, std: float = 0.05, seed: int = 0,
               radius: Optional[float] = None,
               center_box: Sequence[float] = (-0.8, 0.8),
               min_separation: float = 12.0, weights: Any = None,
               box: Optional[Sequence[float]] = None) -> ToyDistribution:
  params = _args(locals())
  return _generic_mixture(1, "mixture_1d", **params, params=params)


@_register
def mixture_2d(*, n_components: int = 5, std: float = 0.05, seed: int = 0,
               radius: Optional[float] = None,
               center_box: Sequence[float] = (-0.8, 0.8),
               min_separation: float = 12.0, weights: Any = None,
               box: Optional[Sequence[float]] = None) -> ToyDistribution:
  params = _args(locals())
  return _generic_mixture(2, "mixture_2d", **params, params=params)


@_register
def mixture_3d(*, n_components: int = 5, std: float = 0.05, seed: int = 0,
               radius: Optional[float] = None,
               center_box: Sequence[float] = (-0.8, 0.8),
               min_separation: float = 12.0, weights: Any = None,
               box: Optional[Sequence[float]] = None) -> ToyDistribution:
  params = _args(locals())
  return _generic_mixture(3, "mixture_3d", **params, params=params)


mixture_1d.__doc__ = _GENERIC_DOC.format(
    d=1, layout="on ``[-radius, radius]``", radius_doc="interval")
mixture_2d.__doc__ = _GENERIC_DOC.format(
    d=2, layout="on a circle (angles ``2 pi k / M``)", radius_doc="circle")
mixture_3d.__doc__ = _GENERIC_DOC.format(
    d=3, layout="on a circle in the xy plane", radius_doc="circle")

TOY_DATASETS: tuple[str, ...] = tuple(sorted(_REGISTRY))


def make_toy(name: str, **overrides: Any) -> ToyDistribution:
  """Builds a registered toy distribution by name.

  Args:
    name: one of :data:`TOY_DATASETS`.
    **overrides: keyword arguments of that distribution's factory (e.g.
      ``std``, ``weights``, ``radius``).

  Returns:
    The :class:`ToyDistribution`.

  Raises:
    ValueError: for an unknown name (listing the valid ones), an unknown
      parameter (listing the factory's), or a bad parameter value.
  """
  if name not in _REGISTRY:
    raise ValueError(
        f"unknown toy distribution {name!r}; valid: {', '.join(TOY_DATASETS)}")
  factory = _REGISTRY[name]
  valid = list(inspect.signature(factory).parameters)
  unknown = sorted(set(overrides) - set(valid))
  if unknown:
    raise ValueError(
        f"unknown parameter(s) {', '.join(unknown)} for toy distribution "
        f"{name!r}; valid: {', '.join(valid)}")
  return factory(**overrides)
