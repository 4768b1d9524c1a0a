"""Pieces every game shares: schedules from configs, model application with
mutable collections, and input perturbations of what a discriminator sees."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax import perturb
from gan_jax import schedules

PERTURBATIONS = ("none", "heat", "instance_noise", "blur")


def make_schedule(spec: Any, field: str) -> Callable[[jax.Array], jax.Array]:
  """A number is a constant schedule; a mapping names a ``schedules`` factory.

  Errors name the config ``field``.
  """
  try:
    return schedules.get_schedule(spec)
  except (TypeError, ValueError) as e:
    raise ValueError(f"{field}: {e}") from e


def split_variables(variables) -> tuple[Any, dict]:
  """Flax variables -> (params, other collections such as batch_stats)."""
  variables = dict(variables)
  return variables.pop("params"), variables


def init_module(module: nn.Module, key: jax.Array, x: jax.Array, **kwargs):
  """(params, collections) of a module initialised on ``x`` in inference mode."""
  return split_variables(module.init({"params": key, "dropout": key}, x, train=False,
                                     **kwargs))


def apply_model(module: nn.Module, params, collections: Mapping[str, Any], x, *,
                train: bool, rngs=None, keep_updates: bool = True, **kwargs):
  """Applies a module; returns ``(output, collections)``.

  In training mode mutable collections (batch statistics) are updated and
  returned when ``keep_updates``; otherwise the given collections come back
  unchanged, which is what a pass that must not move running averages wants.
  """
  variables = {"params": params, **collections}
  if train and collections:
    out, updates = module.apply(variables, x, train=True, rngs=rngs,
                                mutable=list(collections), **kwargs)
    return out, (updates if keep_updates else collections)
  return module.apply(variables, x, train=train, rngs=rngs, **kwargs), collections


@dataclasses.dataclass(frozen=True)
class Perturbation:
  """What the discriminator sees: perturbed real and generated inputs.

  Attributes:
    name: ``'none'``; ``'heat'`` (beta-GAN: only the data is heated, the level
      is beta); ``'instance_noise'`` (Gaussian noise of std level on real and
      generated inputs); ``'blur'`` (Gaussian blur of std level pixels on
      both, for images).
    kwargs: extra arguments (``low``/``high`` box for heat, ``radius`` for blur).
  """
  name: str = "none"
  kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    if self.name not in PERTURBATIONS:
      raise ValueError(f"game.perturbation.name: unknown perturbation {self.name!r}; "
                       f"valid: {', '.join(PERTURBATIONS)}")

  def check_data(self, shape: tuple[int, ...], data_name: str) -> None:
    if self.name == "blur" and len(shape) != 3:
      raise ValueError("game.perturbation.name='blur' needs images [H, W, C]; data "
                       f"{data_name!r} has example shape {shape}")

  def pair(self, key, real, fake, level):
    """Perturbed (real, fake) for a discriminator update."""
    kw = dict(self.kwargs)
    if self.name == "heat":
      return perturb.heated_sample(key, real, level, **kw), fake
    if self.name == "instance_noise":
      real_key, fake_key = jax.random.split(key)
      return (perturb.instance_noise(real_key, real, level),
              perturb.instance_noise(fake_key, fake, level))
    if self.name == "blur":
      return perturb.gaussian_blur(real, level, **kw), perturb.gaussian_blur(fake, level, **kw)
    return real, fake

  def fake(self, key, fake, level):
    """The perturbation generated samples see in a generator update."""
    if self.name == "instance_noise":
      return perturb.instance_noise(jax.random.split(key)[1], fake, level)
    if self.name == "blur":
      return perturb.gaussian_blur(fake, level, **dict(self.kwargs))
    return fake
