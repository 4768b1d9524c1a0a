"""Optimizers picked by name from a config: optax aliases and gan_jax's samplers.

A player's optimizer is described by a flat mapping such as
``{'name': 'adam', 'learning_rate': 1e-3, 'b1': 0.5}`` and becomes one
``optax.GradientTransformation``. Besides the optimizer's own hyper-parameters
three cross-cutting keys are understood:

* ``weight_decay``: a Gaussian prior / L2 decay, chained *before* the optimizer
  with ``optax.add_decayed_weights`` (for the Langevin samplers this is the
  ``-log p(theta)`` term of the posterior energy).
* ``clip``: WGAN weight clipping, ``gan_jax.transforms.clip_params`` chained
  *last* so that the updated parameters land in ``[-clip, clip]``.
* ``learning_rate`` may be a number or a schedule mapping
  (``{'name': 'linear', ...}``, see ``gan_jax.schedules.make_schedule``).
"""

from __future__ import annotations

import inspect
import numbers
from typing import Any, Callable, Mapping

import optax

from gan_jax import schedules
from gan_jax import transforms

# Each entry builds the core transformation from its keyword arguments.
OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "sgd": optax.sgd,
    "momentum": lambda learning_rate, momentum=0.9, nesterov=False: optax.sgd(
        learning_rate, momentum=momentum, nesterov=nesterov),
    "adam": optax.adam,
    "adamw": optax.adamw,
    "rmsprop": optax.rmsprop,
    "sgld": transforms.sgld,
    "cc_sgld": transforms.cc_sgld,
    "psgld": transforms.psgld,
}

# Samplers draw noise from a key kept in their state; the game seeds them.
SAMPLERS = ("sgld", "cc_sgld", "psgld")

_COMMON_KEYS = ("name", "weight_decay", "clip")


def _learning_rate(value: Any, field: str):
  if isinstance(value, numbers.Real):
    if value <= 0:
      raise ValueError(f"{field}.learning_rate must be positive, got {value}")
    return value
  try:
    return schedules.get_schedule(value)
  except (ValueError, TypeError) as e:
    raise ValueError(f"{field}.learning_rate: {e}") from e


def make_optimizer(spec: Mapping[str, Any], *, field: str = "optimizer",
                   seed: int = 0, data_size: int | None = None) -> optax.GradientTransformation:
  """Builds the optax transformation a config mapping describes.

  Args:
    spec: mapping with ``name`` (one of ``OPTIMIZERS``), the optimizer's
      keyword arguments, and optionally ``weight_decay`` and ``clip``.
    field: the config path of ``spec``, used in error messages.
    seed: the RNG seed for samplers (SGLD and relatives) unless ``spec`` sets
      ``key`` itself.
    data_size: the training set's size ``N``, used by samplers whose
      ``data_size`` is ``'auto'`` (their posterior is ``exp(-N * mean loss)``).

  Returns:
    An ``optax.GradientTransformation``.

  Raises:
    ValueError: unknown optimizer name or keyword, naming the valid choices.
  """
  spec = spec.to_dict() if hasattr(spec, "to_dict") else dict(spec)  # ConfigDict
  name = spec.get("name")
  if name not in OPTIMIZERS:
    raise ValueError(f"{field}.name: unknown optimizer {name!r}; valid: "
                     f"{', '.join(sorted(OPTIMIZERS))}")
  kwargs = {k: v for k, v in spec.items() if k not in _COMMON_KEYS}
  if "learning_rate" not in kwargs:
    raise ValueError(f"{field}.learning_rate is required for {name!r}")
  kwargs["learning_rate"] = _learning_rate(kwargs["learning_rate"], field)
  if name in SAMPLERS:
    kwargs.setdefault("key", seed)
    if kwargs.get("data_size") == "auto":
      if data_size is None:
        raise ValueError(f"{field}.data_size='auto' needs a data set of known size; this "
                         "data is a distribution: give the number of examples N explicitly")
      kwargs["data_size"] = data_size
  factory = OPTIMIZERS[name]
  accepted = _accepted_keywords(factory)
  if accepted is not None:
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
      raise ValueError(f"{field}: unknown keyword(s) {unknown} for optimizer "
                       f"{name!r}; valid: {', '.join(sorted(accepted))}, "
                       f"{', '.join(_COMMON_KEYS[1:])}")
  chain = []
  weight_decay = spec.get("weight_decay", 0.0) or 0.0
  if weight_decay:
    chain.append(optax.add_decayed_weights(weight_decay))
  try:
    chain.append(factory(**kwargs))
  except (TypeError, ValueError) as e:
    raise ValueError(f"{field}: {e}") from e
  clip = spec.get("clip", 0.0) or 0.0
  if clip:
    chain.append(transforms.clip_params(clip))
  return chain[0] if len(chain) == 1 else optax.chain(*chain)


def _accepted_keywords(factory) -> set[str] | None:
  try:
    params = inspect.signature(factory).parameters
  except (TypeError, ValueError):
    return None
  if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
    return None
  return set(params)
