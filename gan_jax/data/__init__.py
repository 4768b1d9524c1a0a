"""Data for gan_jax: synthetic toy distributions (and, alongside, image sets).

Toy distributions are built by name from a registry::

  dist = gan_jax.data.make_toy("ring_8", std=0.02)
  x = dist.sample(key, 512)

``TOY_DATASETS`` lists the registered names.
"""

from gan_jax.data.toy import TOY_DATASETS
from gan_jax.data.toy import ToyDistribution
from gan_jax.data.toy import make_toy

__all__ = ["TOY_DATASETS", "ToyDistribution", "make_toy"]
