"""Flax (linen) generators, discriminators and encoders, picked by name.

A config names an architecture and its fields::

  generator = make_generator('dcgan', image_shape=(32, 32, 3), base_features=64)

Generators and discriminators take optional class labels after their input,
``G.apply(v, z, labels)`` and ``D.apply(v, x, labels)``, required exactly when
built with ``num_classes > 0``.

Every module takes ``dtype``, its computation dtype (one of
``COMPUTE_DTYPES``): ``'float32'`` (default) or ``'bfloat16'``, which computes
in bfloat16 on float32 parameters and batch statistics and returns float32
outputs (``gan_jax.models.precision``)::

  critic = make_discriminator('dcgan', layer_norm=True, batch_norm=False,
                              dtype='bfloat16')

A new architecture joins by adding its module class to the registries below.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from gan_jax.models.dcgan import DCGANDiscriminator
from gan_jax.models.dcgan import DCGANEncoder
from gan_jax.models.dcgan import DCGANGenerator
from gan_jax.models.latent import PRIORS
from gan_jax.models.latent import sample_latent
from gan_jax.models.mlp import MLPDiscriminator
from gan_jax.models.mlp import MLPEncoder
from gan_jax.models.mlp import MLPGenerator
from gan_jax.models.precision import COMPUTE_DTYPES
from gan_jax.models.resnet import ResNetDiscriminator
from gan_jax.models.resnet import ResNetEncoder
from gan_jax.models.resnet import ResNetGenerator
from gan_jax.models.resnet import UpsampleConv
from gan_jax.models.upsample import ConvTranspose2x

GENERATORS: dict[str, type] = {
    "mlp": MLPGenerator,
    "dcgan": DCGANGenerator,
    "resnet": ResNetGenerator,
}
DISCRIMINATORS: dict[str, type] = {
    "mlp": MLPDiscriminator,
    "dcgan": DCGANDiscriminator,
    "resnet": ResNetDiscriminator,
}
ENCODERS: dict[str, type] = {
    "mlp": MLPEncoder,
    "dcgan": DCGANEncoder,
    "resnet": ResNetEncoder,
}

# Fields every flax Module has that are not architecture hyper-parameters.
_MODULE_INTERNAL_FIELDS = ("parent", "name")


def module_fields(cls: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
  """The hyper-parameter fields of a flax module class.

  Args:
    cls: a ``flax.linen.Module`` subclass.

  Returns:
    ``(all_fields, required_fields)``, names in declaration order.
  """
  names, required = [], []
  for field in dataclasses.fields(cls):
    if field.name in _MODULE_INTERNAL_FIELDS or not field.init:
      continue
    names.append(field.name)
    if (field.default is dataclasses.MISSING
        and field.default_factory is dataclasses.MISSING):
      required.append(field.name)
  return tuple(names), tuple(required)


def _make(registry: dict[str, type], kind: str, name: str,
          kwargs: dict[str, Any]):
  if name not in registry:
    raise ValueError(
        f"unknown {kind} {name!r}; valid: {', '.join(sorted(registry))}")
  cls = registry[name]
  fields, required = module_fields(cls)
  for key in kwargs:
    if key not in fields:
      raise ValueError(
          f"unknown field {key!r} for {kind} {name!r} ({cls.__name__}); "
          f"valid fields: {', '.join(fields)}")
  missing = [f for f in required if f not in kwargs]
  if missing:
    raise ValueError(
        f"{kind} {name!r} ({cls.__name__}) needs field(s) "
        f"{', '.join(missing)}; valid fields: {', '.join(fields)}")
  return cls(**kwargs)


def make_generator(name: str, /, **kwargs):
  """Builds the generator registered as ``name`` in ``GENERATORS``.

  Args:
    name: registry key: ``'mlp'``, ``'dcgan'`` or ``'resnet'``.
    **kwargs: fields of that module.

  Returns:
    An unbound flax module.

  Raises:
    ValueError: unknown name, unknown or missing field, or a bad field value.
  """
  return _make(GENERATORS, "generator", name, kwargs)


def make_discriminator(name: str, /, **kwargs):
  """Builds the discriminator registered as ``name`` in ``DISCRIMINATORS``.

  Args:
    name: registry key: ``'mlp'``, ``'dcgan'`` or ``'resnet'``.
    **kwargs: fields of that module.

  Returns:
    An unbound flax module.

  Raises:
    ValueError: unknown name, unknown or missing field, or a bad field value.
  """
  return _make(DISCRIMINATORS, "discriminator", name, kwargs)


def make_encoder(name: str, /, **kwargs):
  """Builds the encoder registered as ``name`` in ``ENCODERS``.

  Args:
    name: registry key: ``'mlp'``, ``'dcgan'`` or ``'resnet'``.
    **kwargs: fields of that module.

  Returns:
    An unbound flax module.

  Raises:
    ValueError: unknown name, unknown or missing field, or a bad field value.
  """
  return _make(ENCODERS, "encoder", name, kwargs)


__all__ = [
    "COMPUTE_DTYPES",
    "ConvTranspose2x",
    "DCGANDiscriminator",
    "DCGANEncoder",
    "DCGANGenerator",
    "DISCRIMINATORS",
    "ENCODERS",
    "GENERATORS",
    "MLPDiscriminator",
    "MLPEncoder",
    "MLPGenerator",
    "PRIORS",
    "ResNetDiscriminator",
    "ResNetEncoder",
    "ResNetGenerator",
    "UpsampleConv",
    "make_discriminator",
    "make_encoder",
    "make_generator",
    "module_fields",
    "sample_latent",
]
