"""Latent priors: the noise a generator maps to data."""
from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

PRIORS = ("uniform", "normal")


def _as_shape(shape: int | Sequence[int]) -> tuple[int, ...]:
  if isinstance(shape, int):
    return (shape,)
  return tuple(int(s) for s in shape)


def sample_latent(
    key: jax.Array,
    batch: int,
    shape: int | Sequence[int],
    *,
    prior: str = "uniform",
    low: float = -1.0,
    high: float = 1.0,
    dtype=jnp.float32,
) -> jax.Array:
  """Draws a batch of latent codes from a fixed prior.

  ``'uniform'`` is the beta-GAN and Reg-GAN prior (``U[-1, 1]`` and ``U[0, 1]``
  respectively: set ``low``/``high``); ``'normal'`` is ``N(0, I)`` as in Roth et
  al.'s toy and ignores ``low``/``high``.

  Args:
    key: a PRNG key.
    batch: number of codes.
    shape: shape of one code, an int for a vector or a tuple (a data-shaped
      latent such as ``(64, 64, 3)`` is allowed).
    prior: one of ``PRIORS``.
    low: lower bound of the uniform prior.
    high: upper bound of the uniform prior.
    dtype: floating dtype of the result.

  Returns:
    An array of shape ``[batch, *shape]``.

  Raises:
    ValueError: for an unknown prior, or (concrete) ``low >= high``.

  References:
    Goodfellow et al., Generative Adversarial Nets, 2014.
  """
  full_shape = (batch,) + _as_shape(shape)
  if prior == "uniform":
    if isinstance(low, (int, float)) and isinstance(high, (int, float)):
      if not low < high:
        raise ValueError(
            f"uniform prior needs low < high; got low={low}, high={high}")
    return jax.random.uniform(
        key, full_shape, dtype=dtype, minval=low, maxval=high)
  if prior == "normal":
    return jax.random.normal(key, full_shape, dtype=dtype)
  raise ValueError(
      f"unknown prior {prior!r}; valid: {', '.join(PRIORS)}")
