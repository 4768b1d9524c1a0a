"""Data for gan_jax: synthetic toy distributions and image sets, as batch sources.

``make_source(config.data)`` is the one factory: it builds the ``DataSource`` a
config names, from the toy registry (``toy.TOY_DATASETS``) or the image sets
(``images.IMAGE_DATASETS``). Dependencies flow one way: ``source`` (what a game
needs from data) knows neither; ``toy`` and ``images`` build on ``source``;
this package's factory composes them. Toy distributions can also be built
alone::

  dist = gan_jax.data.make_toy("ring_8", std=0.02)
  x = dist.sample(key, 512)
"""

from gan_jax.data import images
from gan_jax.data import source as source_lib
from gan_jax.data import toy
from gan_jax.data.source import DataSource
from gan_jax.data.toy import TOY_DATASETS
from gan_jax.data.toy import ToyDistribution
from gan_jax.data.toy import make_toy


def make_source(spec) -> DataSource:
  """The data source a ``config.data`` mapping names.

  ``spec['name']`` is a toy distribution (``gan_jax.data.toy``) or an image set
  (``gan_jax.data.images.IMAGE_DATASETS``, including ``stacked_mnist`` and
  ``compositional_mnist``); every other key is passed to its factory.
  """
  spec = dict(spec)
  name = spec.pop("name", None)
  if name in toy.TOY_DATASETS:
    try:
      return source_lib.from_toy(toy.make_toy(name, **spec))
    except (TypeError, ValueError) as e:
      raise ValueError(f"config.data: {e}") from e
  if name in images.IMAGE_DATASETS:
    if spec.get("max_examples", None) == 0:
      spec["max_examples"] = None  # 0 in a config: the whole split
    try:
      return images.make_image_source(name, **spec)
    except (TypeError, ValueError) as e:
      raise ValueError(f"config.data: {e}") from e
  raise ValueError(f"config.data.name: unknown data set {name!r}; valid: "
                   f"{', '.join(sorted(toy.TOY_DATASETS))} (toy); "
                   f"{', '.join(images.IMAGE_DATASETS)} (images)")


__all__ = ["DataSource", "TOY_DATASETS", "ToyDistribution", "make_source", "make_toy"]
