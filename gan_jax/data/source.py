"""What a game needs from a data set: a pure batch-drawing function.

A ``DataSource`` separates the arrays (kept on the device, passed to the
compiled step as an argument so they are never baked into the program as
constants) from the pure function that draws a batch from them. Toy
distributions have no arrays: their batches are sampled inside the step.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class DataSource:
  """A batch sampler usable inside a compiled step.

  Attributes:
    name: data set name.
    shape: shape of one example, without the batch dimension.
    draw: ``draw(key, arrays, n) -> [n, *shape] float32`` (and labels, if
      ``has_labels``: ``(x, y)``), pure and jittable.
    arrays: pytree of device arrays ``draw`` reads (empty for toys).
    has_labels: whether ``draw`` also returns integer labels.
    num_classes: number of label values, 0 without labels.
    size: number of examples in the data set (``None`` for distributions),
      the ``N`` a Langevin sampler's posterior needs.
    info: the object describing the data (e.g. a ``ToyDistribution``) for
      metrics and plots.
    refill: for streaming sources (``gan_jax.data.stream``), ``refill(c)``
      returns the arrays of compiled call ``c`` (host memory; same shapes as
      ``arrays``, which hold call 0's); ``None``: the arrays never change.
  """
  name: str
  shape: tuple[int, ...]
  draw: Callable[..., Any]
  arrays: Any = dataclasses.field(default_factory=dict)
  has_labels: bool = False
  num_classes: int = 0
  size: int | None = None
  info: Any = None
  refill: Callable[[int], Any] | None = None


def from_toy(dist) -> DataSource:
  """Wraps a ``gan_jax.data.toy.ToyDistribution``."""

  def draw(key, arrays, n):
    del arrays
    return dist.sample(key, n)

  return DataSource(name=dist.name, shape=(dist.dim,), draw=draw, info=dist)


def from_arrays(name: str, images: jax.Array, labels: jax.Array | None = None, *,
                num_classes: int = 0, scale: Callable[[jax.Array], jax.Array] | None = None,
                info: Any = None) -> DataSource:
  """Draws uniform minibatches (with replacement) from arrays kept on device.

  Images may be stored compactly (e.g. uint8) and converted by ``scale`` inside
  the step, so a data set of images occupies a quarter of the float memory.
  """
  scale = scale or (lambda x: x.astype(jnp.float32))
  arrays = {"x": images}
  if labels is not None:
    arrays["y"] = labels

  def draw(key, arrays, n):
    idx = jax.random.randint(key, (n,), 0, arrays["x"].shape[0])
    x = scale(jnp.take(arrays["x"], idx, axis=0))
    if labels is None:
      return x
    return x, jnp.take(arrays["y"], idx, axis=0).astype(jnp.int32)

  return DataSource(name=name, shape=tuple(images.shape[1:]), draw=draw,
                    arrays=arrays, has_labels=labels is not None,
                    num_classes=num_classes, size=int(images.shape[0]), info=info)
