"""Input perturbations for the discriminator.

Three ways to make the discriminator's task smoother, each a pure function of a
PRNG key and a batch whose strength may be a traced scalar read from a schedule
(:mod:`gan_jax.schedules`) inside a compiled step:

* :func:`heated_sample`: beta-GAN's "heated" data, the data diffused with
  ``N(0, I/beta)`` inside a box with reflecting walls; ``beta = 0`` is uniform,
  ``beta = inf`` the data.
* :func:`instance_noise`: additive Gaussian noise, for real and fake inputs alike.
* :func:`gaussian_blur`: coarse-graining of images by a Gaussian blur.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "blur_radius",
    "gaussian_blur",
    "heated_sample",
    "instance_noise",
    "reflect_into_box",
]


def _concrete(value: Any) -> Optional[np.ndarray]:
  """``value`` as a NumPy array if known at trace time, else None."""
  if isinstance(value, jax.core.Tracer):
    return None
  return np.asarray(value)


def _float_dtype(x: jax.Array):
  return x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32


def _check_nonnegative(name: str, value: Any, *, allow_inf: bool) -> None:
  v = _concrete(value)
  if v is None:
    return
  bad = np.isnan(v) | (v < 0)
  if not allow_inf:
    bad |= np.isinf(v)
  if np.any(bad):
    valid = "a number >= 0 (inf allowed)" if allow_inf else "a finite number >= 0"
    raise ValueError(f"{name} must be {valid}; got {value}")


def _check_box(low: float, high: float) -> None:
  lo, hi = _concrete(low), _concrete(high)
  if lo is None or hi is None:
    return
  if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo < hi)):
    raise ValueError(
        f"the box needs finite low < high; got low={low}, high={high}")


def reflect_into_box(y: jax.Array, *, low: float = -1.0,
                     high: float = 1.0) -> jax.Array:
  """Folds points into ``[low, high]`` by mirror reflection at the walls.

  The fold is periodic with period ``2 (high - low)``: a point is moved by a
  whole number of periods and, if it then lies in the mirrored half, reflected.
  This is what repeated reflection at both walls produces, computed in closed
  form, so it is exact for arbitrarily large displacements. Points inside the
  box are unchanged; the map is 1-Lipschitz, so reflection never moves a point
  further from any point of the box.

  Args:
    y: array of any shape.
    low: lower wall.
    high: upper wall, ``> low``.

  Returns:
    Array of ``y``'s shape with every entry in ``[low, high]``.
  """
  _check_box(low, high)
  width = high - low
  u = jnp.mod(y - low, 2 * width)
  # u in [0, 2w] (float rounding can give exactly 2w): [0, w] stays, (w, 2w]
  # is mirrored.
  folded = low + jnp.where(u > width, 2 * width - u, u)
  return jnp.clip(folded, low, high)


def heated_sample(key: jax.Array, x: jax.Array, beta: Any, *,
                  low: float = -1.0, high: float = 1.0) -> jax.Array:
  """Samples beta-GAN's heated data ``p(x; beta)`` around a data batch.

  Each entry becomes ``x + N(0, 1/beta)``, reflected at the walls of the box
  ``[low, high]^d`` (diffusion in a closed vase): as ``beta -> 0``
  the law tends to ``Uniform[low, high]^d`` and at ``beta = inf`` it is the
  data. The two ends are handled exactly: ``beta = 0`` draws the uniform
  directly (independent of ``x``) and ``beta = inf`` returns ``x`` unchanged.

  ``beta`` may be traced (a schedule's value inside ``jit``). All three cases
  are computed and selected with ``jnp.where``; the unused branches see safe
  values, so neither the output nor gradients (w.r.t. ``x`` or ``beta``)
  contain NaNs from ``1/0`` or ``inf * 0``.

  Randomness: ``k_noise, k_uniform = jax.random.split(key)``; the Gaussian is
  ``jax.random.normal(k_noise, x.shape)`` and the uniform
  ``jax.random.uniform(k_uniform, x.shape, minval=low, maxval=high)``.

  Args:
    key: PRNG key.
    x: data batch ``[B, ...]`` inside the box.
    beta: inverse temperature, a scalar (or an array broadcastable to ``x``)
      ``>= 0``, ``inf`` allowed.
    low: lower wall of the box.
    high: upper wall of the box, ``> low``.

  Returns:
    Array with ``x``'s shape (and floating dtype), every entry in
    ``[low, high]``.

  Raises:
    ValueError: for a concrete negative or NaN ``beta``, or ``low >= high``.

  References:
    Mehrjou, Schölkopf & Saremi, "Annealed Generative Adversarial Networks", 2017.
  """
  _check_box(low, high)
  _check_nonnegative("beta", beta, allow_inf=True)
  x = jnp.asarray(x)
  dtype = _float_dtype(x)
  x = x.astype(dtype)
  k_noise, k_uniform = jax.random.split(key)
  noise = jax.random.normal(k_noise, x.shape, dtype)
  uniform = jax.random.uniform(k_uniform, x.shape, dtype, minval=low, maxval=high)

  beta = jnp.asarray(beta, dtype)
  safe_beta = jnp.where((beta > 0) & jnp.isfinite(beta), beta, 1.0)
  diffused = reflect_into_box(x + noise * jax.lax.rsqrt(safe_beta), low=low, high=high)
  out = jnp.where(beta == 0, uniform, jnp.where(jnp.isinf(beta), x, diffused))
  return out.astype(dtype)


def instance_noise(key: jax.Array, x: jax.Array, sigma: Any) -> jax.Array:
  """Adds instance noise ``x + sigma * N(0, I)``.

  Apply it to real and generated inputs of the discriminator alike, with
  ``sigma`` annealed to 0 by a schedule. ``sigma`` may be traced; ``sigma = 0``
  returns ``x`` exactly (``x + 0 * noise``).

  Args:
    key: PRNG key; the noise is ``jax.random.normal(key, x.shape)``.
    x: array of any shape.
    sigma: noise standard deviation, ``>= 0`` (scalar or broadcastable).

  Returns:
    Array of ``x``'s shape and floating dtype.

  Raises:
    ValueError: for a concrete negative, NaN or infinite ``sigma``.

  References:
    Sonderby et al., "Amortised MAP Inference for Image Super-resolution", 2017;
    Arjovsky & Bottou, "Towards Principled Methods for Training Generative
    Adversarial Networks", 2017 (Corollary 3.2).
  """
  _check_nonnegative("sigma", sigma, allow_inf=False)
  x = jnp.asarray(x)
  dtype = _float_dtype(x)
  x = x.astype(dtype)
  noise = jax.random.normal(key, x.shape, dtype)
  return (x + jnp.asarray(sigma, dtype) * noise).astype(dtype)


def blur_radius(max_sigma: float) -> int:
  """Kernel radius ``ceil(3 * max_sigma)`` for blurs up to ``max_sigma`` pixels.

  A radius of three standard deviations drops less than 0.3% of the Gaussian's
  mass (renormalized away). Pass it to :func:`gaussian_blur` when ``sigma`` is
  traced, so the kernel shape is static.

  Args:
    max_sigma: largest blur std in pixels, a concrete finite number ``>= 0``.

  Returns:
    Non-negative Python int.
  """
  if isinstance(max_sigma, jax.core.Tracer):
    raise ValueError(
        "blur_radius needs a concrete max_sigma (a Python number), not a traced value")
  _check_nonnegative("max_sigma", max_sigma, allow_inf=False)
  return int(math.ceil(3.0 * float(max_sigma)))


def gaussian_blur(images: jax.Array, sigma: Any, *,
                  radius: Optional[int] = None) -> jax.Array:
  """Blurs NHWC images with an isotropic Gaussian of std ``sigma`` pixels.

  Separable: one depthwise 1-D convolution along the height and one along the
  width (``feature_group_count = C``, each channel blurred on its own). The
  kernel is ``exp(-t^2 / (2 sigma^2))`` on ``t = -radius..radius``, normalized
  to sum 1. Output has the input's size. Edges: half-sample symmetric padding
  (``... b a | a b c ... | c b ...``, i.e. ``jnp.pad(mode='symmetric')``, the same
  as ``scipy.ndimage``'s ``mode='reflect'``); it keeps a constant image constant
  and behaves like an image continuing mirrored beyond its border.

  ``sigma`` may be traced (annealed towards 0 inside ``jit``): then the kernel
  size cannot depend on it and ``radius`` must be given, e.g.
  ``blur_radius(max_sigma)``. ``sigma = 0`` is exactly the identity (one-hot
  kernel, division guarded, and the input selected as is).

  Args:
    images: ``[N, H, W, C]`` array.
    sigma: blur std in pixels, ``>= 0``.
    radius: kernel half-width (int ``>= 0``); default ``blur_radius(sigma)``,
      which needs a concrete ``sigma``.

  Returns:
    Blurred images, same shape and floating dtype.

  Raises:
    ValueError: for images that are not 4-D, a concrete negative ``sigma``, a
      bad ``radius``, or a traced ``sigma`` without ``radius``.

  References:
    The Langevin-trained ("Bayesian") discriminator with blur coarse-graining.
  """
  images = jnp.asarray(images)
  if images.ndim != 4:
    raise ValueError(
        f"gaussian_blur expects NHWC images of rank 4; got shape {images.shape}")
  if jnp.ndim(sigma) != 0:
    raise ValueError(f"sigma must be a scalar; got shape {jnp.shape(sigma)}")
  _check_nonnegative("sigma", sigma, allow_inf=False)
  if radius is None:
    if _concrete(sigma) is None:
      raise ValueError(
          "gaussian_blur with a traced sigma needs a static radius; pass "
          "radius=blur_radius(max_sigma) for the largest sigma of the schedule")
    radius = blur_radius(float(sigma))
  if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
    raise ValueError(f"radius must be an integer >= 0; got {radius!r}")
  radius = int(radius)

  dtype = _float_dtype(images)
  images = images.astype(dtype)
  if radius == 0:
    return images  # A one-tap normalized kernel is the identity for any sigma.

  sigma = jnp.asarray(sigma, jnp.float32)
  positive = sigma > 0
  safe_sigma = jnp.where(positive, sigma, 1.0)
  t = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
  weights = jnp.where(positive, jnp.exp(-0.5 * jnp.square(t / safe_sigma)),
                      (t == 0).astype(jnp.float32))
  # The centre tap is 1 in both branches, so the sum is >= 1.
  kernel = (weights / jnp.sum(weights)).astype(dtype)

  channels = images.shape[-1]
  padded = jnp.pad(images, ((0, 0), (radius, radius), (radius, radius), (0, 0)),
                   mode="symmetric")
  # Padding both axes first and then convolving with VALID is the same as
  # pad-blur-pad-blur: the vertical pass on the mirrored columns gives the
  # mirrored columns of the vertically blurred image.
  blurred = padded
  for shape in ((2 * radius + 1, 1), (1, 2 * radius + 1)):
    k = jnp.broadcast_to(kernel.reshape(shape + (1, 1)), shape + (1, channels))
    blurred = jax.lax.conv_general_dilated(
        blurred, k, window_strides=(1, 1), padding="VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=channels,
        # Default precision may drop to bfloat16 passes on TPU / TF32 on GPU.
        precision=jax.lax.Precision.HIGHEST)
  return jnp.where(positive, blurred, images)
