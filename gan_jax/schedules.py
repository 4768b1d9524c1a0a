"""Annealing schedules as optax schedules.

Every annealed quantity in gan_jax (the beta-GAN temperature, the Roth et al.
regularizer weight gamma, the instance-noise sigma, the blur width, the SGLD
step size) is an
``optax.Schedule``: a pure function ``step -> value`` that is jittable and accepts
a traced integer step, so a compiled train step can evaluate it from the step
counter in its state. Where optax already has the schedule, the factory here is a
validating wrapper around it; the few written by hand say why.

Factories can also be picked by name, as configs do::

  >>> from gan_jax import schedules
  >>> sigma = schedules.make_schedule(
  ...     'linear', init_value=1.0, end_value=0.0, transition_steps=100)
  >>> float(sigma(50))
  0.5
"""

from __future__ import annotations

import contextlib
import inspect
import math
import numbers
import threading
from collections.abc import Callable, Mapping
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = [
    "SCHEDULES",
    "beta_levels",
    "beta_schedule",
    "beta_schedule_length",
    "constant",
    "cosine_anneal",
    "exponential_anneal",
    "gamma_decay",
    "get_schedule",
    "linear_anneal",
    "make_schedule",
    "polynomial_decay",
    "replica_schedule",
    "replica_value",
    "replica_values",
    "SWEEPABLE_PARAMETERS",
]


# ----------------------------------------------------------------------------
# Validation helpers (only concrete Python/NumPy values are checked).


def _is_concrete(value: Any) -> bool:
  return not isinstance(value, jax.core.Tracer)


def _check_int(name: str, value: Any, *, minimum: int) -> int:
  if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
    raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
  if value < minimum:
    raise ValueError(f"{name} must be an integer >= {minimum}; got {value}")
  return int(value)


def _check_finite(name: str, value: Any) -> None:
  if _is_concrete(value) and not np.all(np.isfinite(np.asarray(value))):
    raise ValueError(f"{name} must be a finite number; got {value!r}")


def _exact_end(schedule: optax.Schedule, *, end_step: int,
               end_value: Any) -> optax.Schedule:
  """``schedule``, but exactly ``end_value`` from ``end_step`` on.

  optax's schedules compute ``count / transition_steps``, which XLA may compile
  as ``count * (1 / transition_steps)``: the end value is then missed by an ulp,
  and a noise level "annealed to 0" can come out slightly negative.
  """

  def held(step):
    return jnp.where(jnp.asarray(step) >= end_step, end_value, schedule(step))

  return held


# ----------------------------------------------------------------------------
# beta-GAN temperature schedule.


def beta_levels(*, beta_1: float, beta_K: float, K: int) -> np.ndarray:  # pylint: disable=invalid-name
  """The K inverse temperatures of beta-GAN's annealing stage.

  ``beta_k = beta_1 * alpha**k`` for ``k = 0..K-1`` with
  ``alpha = (beta_K / beta_1)**(1/K)``, exactly as Algorithm 1 of the paper
  writes it. Note the consequence: the last level is ``beta_K / alpha``, one
  geometric step short of ``beta_K``; the data stage (``beta = inf``) follows it.

  Args:
    beta_1: first (hottest) level, ``0 < beta_1 <= beta_K``.
    beta_K: the level the geometric ladder is aimed at.
    K: number of levels, an integer ``>= 1``.

  Returns:
    A float64 NumPy array of shape ``[K]``, increasing (constant when
    ``beta_1 == beta_K``).

  Raises:
    ValueError: if the arguments are outside the ranges above.

  References:
    Mehrjou, Schölkopf & Saremi, "Annealed Generative Adversarial Networks", 2017 (Algorithm 1).
  """
  K = _check_int("K", K, minimum=1)  # pylint: disable=invalid-name
  for name, value in (("beta_1", beta_1), ("beta_K", beta_K)):
    if not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
      raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
  if beta_1 > beta_K:
    raise ValueError(
        f"beta_1 ({beta_1}) must not exceed beta_K ({beta_K}); the levels "
        "increase from beta_1 towards beta_K")
  alpha = (beta_K / beta_1)**(1.0 / K)
  return beta_1 * alpha**np.arange(K, dtype=np.float64)


def beta_schedule_length(*, K: int = 20, steps_per_level: int,  # pylint: disable=invalid-name
                         uniform_steps: int) -> int:
  """Number of annealing steps of :func:`beta_schedule` before ``beta = inf``.

  Args:
    K: number of levels.
    steps_per_level: steps spent at each level.
    uniform_steps: steps of the initial uniform stage (``beta = 0``).

  Returns:
    ``uniform_steps + K * steps_per_level``: the first step that sees raw data.
  """
  K = _check_int("K", K, minimum=1)  # pylint: disable=invalid-name
  steps_per_level = _check_int("steps_per_level", steps_per_level, minimum=1)
  uniform_steps = _check_int("uniform_steps", uniform_steps, minimum=0)
  return uniform_steps + K * steps_per_level


def beta_schedule(*, beta_1: float = 0.1, beta_K: float = 10.0, K: int = 20,  # pylint: disable=invalid-name
                  steps_per_level: int, uniform_steps: int) -> optax.Schedule:
  """beta-GAN's inverse-temperature schedule (piecewise constant).

  * ``step < uniform_steps``: ``0`` (the uniform stage);
  * ``uniform_steps + k n <= step < uniform_steps + (k + 1) n``:
    ``beta_levels(...)[k]``, ``k = 0..K-1``;
  * ``step >= uniform_steps + K n``: ``inf`` (raw data);

  with ``n = steps_per_level``. The first raw-data step is
  :func:`beta_schedule_length` (also stored as the attribute ``data_start`` of
  the returned function). Feed the value to
  :func:`gan_jax.perturb.heated_sample`, which treats ``0`` and ``inf`` exactly.

  Written by hand: optax's ``piecewise_constant_schedule`` is multiplicative (it
  cannot leave 0 nor reach inf) and ``join_schedules`` would chain ``K + 1``
  selects; a table lookup is one gather.

  Args:
    beta_1: first level (paper default 0.1).
    beta_K: target of the geometric ladder (paper default 10).
    K: number of levels (paper default 20).
    steps_per_level: steps per level, ``>= 1``.
    uniform_steps: steps of the uniform stage, ``>= 0``.

  Returns:
    A schedule returning float32 scalars (for a scalar step).

  References:
    Mehrjou, Schölkopf & Saremi, "Annealed Generative Adversarial Networks", 2017 (Algorithm 1).
  """
  levels = beta_levels(beta_1=beta_1, beta_K=beta_K, K=K)
  data_start = beta_schedule_length(
      K=K, steps_per_level=steps_per_level, uniform_steps=uniform_steps)
  # Table: [0, levels..., inf]; index 0 for the uniform stage, K + 1 for data.
  table = np.concatenate([[0.0], levels, [np.inf]]).astype(np.float32)

  def schedule(step):
    step = jnp.asarray(step)
    # Integer arithmetic keeps block boundaries exact for any step count.
    offset = step.astype(jnp.int32) - uniform_steps
    level = jnp.floor_divide(jnp.maximum(offset, 0), steps_per_level)
    index = jnp.where(offset < 0, 0, jnp.minimum(level, K) + 1)
    return jnp.asarray(table)[index]

  schedule.data_start = data_start
  return schedule


# ----------------------------------------------------------------------------
# Roth et al. regularizer weight.


def gamma_decay(*, gamma_0: float, total_steps: int,
                decay: float = 0.01) -> optax.Schedule:
  """Roth et al.'s annealed regularizer weight ``gamma_0 * decay**(t/T)``.

  Continuous (not staircase) exponential decay over ``T = total_steps``, built on
  ``optax.exponential_decay``. Decision: after ``total_steps`` the value is
  *clamped* at ``gamma_0 * decay`` (the paper anneals "to a small non-zero
  value" over the run; a run that continues past ``T`` keeps that value rather
  than decaying further). Steps before 0 give ``gamma_0``.

  Args:
    gamma_0: initial weight, ``>= 0`` (paper: 2.0 for image GANs).
    total_steps: ``T``, the run length in steps, ``>= 1``.
    decay: overall factor reached at ``T``, ``0 < decay <= 1`` (default 0.01).

  Returns:
    A schedule (float32 values).

  References:
    Roth, Lucchi, Nowozin & Hofmann, "Stabilizing Training of Generative
    Adversarial Networks through Regularization", 2017.
  """
  _check_finite("gamma_0", gamma_0)
  if _is_concrete(gamma_0) and np.any(np.asarray(gamma_0) < 0):
    raise ValueError(f"gamma_0 must be >= 0; got {gamma_0}")
  total_steps = _check_int("total_steps", total_steps, minimum=1)
  if not isinstance(decay, numbers.Real) or not 0 < decay <= 1:
    raise ValueError(f"decay must be a number in (0, 1]; got {decay!r}")
  decayed = optax.exponential_decay(
      init_value=gamma_0, transition_steps=total_steps, decay_rate=decay,
      end_value=gamma_0 * decay)
  return _exact_end(decayed, end_step=total_steps, end_value=gamma_0 * decay)


# ----------------------------------------------------------------------------
# Generic annealing (instance-noise sigma, blur width, ...).


def constant(value: float) -> optax.Schedule:
  """A constant schedule (``optax.constant_schedule``; returns ``value`` as is)."""
  return optax.constant_schedule(value)


def _check_anneal(init_value, end_value, transition_steps, begin_step):
  _check_finite("init_value", init_value)
  _check_finite("end_value", end_value)
  _check_int("transition_steps", transition_steps, minimum=1)
  _check_int("begin_step", begin_step, minimum=0)


def linear_anneal(*, init_value: float, end_value: float = 0.0,
                  transition_steps: int, begin_step: int = 0) -> optax.Schedule:
  """Linear interpolation from ``init_value`` to ``end_value``.

  ``init_value`` before ``begin_step``, linear over ``transition_steps`` steps,
  ``end_value`` from ``begin_step + transition_steps`` on
  (``optax.linear_schedule``, with the end value returned exactly: compiled,
  optax's ramp can miss it by an ulp and cross 0).

  Args:
    init_value: value up to ``begin_step``.
    end_value: value from ``begin_step + transition_steps`` on (default 0).
    transition_steps: length of the ramp, ``>= 1``.
    begin_step: first step of the ramp, ``>= 0``.

  Returns:
    A schedule.

  References:
    Sonderby et al., "Amortised MAP Inference for Image Super-resolution", 2017
    (instance noise annealed to zero).
  """
  _check_anneal(init_value, end_value, transition_steps, begin_step)
  ramp = optax.linear_schedule(
      init_value=init_value, end_value=end_value,
      transition_steps=transition_steps, transition_begin=begin_step)
  return _exact_end(ramp, end_step=begin_step + transition_steps, end_value=end_value)


def exponential_anneal(*, init_value: float, end_value: float = 0.0,
                       transition_steps: int, begin_step: int = 0,
                       decay_rate: Optional[float] = None) -> optax.Schedule:
  """Exponential (geometric) annealing, in one of two modes.

  * ``decay_rate=None`` (geometric interpolation): the value goes from
    ``init_value`` to ``end_value`` through the geometric path
    ``init * (end/init)**((t - begin)/transition_steps)`` and stays at
    exactly ``end_value`` afterwards. Both ends must be ``> 0``: a geometric path never
    reaches 0, so ``end_value=0`` (the default) is rejected in this mode.
  * ``decay_rate`` given: ``init * decay_rate**((t - begin)/transition_steps)``
    for all ``t >= begin`` (the value is multiplied by ``decay_rate`` every
    ``transition_steps`` steps), with ``end_value`` a floor (a ceiling if
    ``decay_rate > 1``) where the decay stops. With ``end_value=0`` it decays
    towards 0 forever; to switch to exactly 0 at some step, join it with
    ``constant(0.0)`` through ``optax.join_schedules``.

  Both modes are ``optax.exponential_decay``; ``init_value`` holds before
  ``begin_step``.

  Args:
    init_value: value up to ``begin_step``.
    end_value: end point (geometric mode) or bound (decay-rate mode).
    transition_steps: ``>= 1``; length of the path, or the period of one
      ``decay_rate`` factor.
    begin_step: first step of the decay, ``>= 0``.
    decay_rate: ``> 0`` or ``None`` (see above).

  Returns:
    A schedule.
  """
  _check_anneal(init_value, end_value, transition_steps, begin_step)
  if decay_rate is None:
    if not (init_value > 0 and end_value > 0):
      raise ValueError(
          "exponential_anneal without decay_rate interpolates geometrically and "
          f"needs init_value > 0 and end_value > 0; got init_value={init_value}, "
          f"end_value={end_value}. Pass decay_rate=<factor per transition_steps> "
          "to decay towards end_value (e.g. 0) instead.")
    return _exact_end(
        optax.exponential_decay(
            init_value=init_value, transition_steps=transition_steps,
            decay_rate=end_value / init_value, transition_begin=begin_step,
            end_value=end_value),
        end_step=begin_step + transition_steps, end_value=end_value)
  if not isinstance(decay_rate, numbers.Real) or not 0 < decay_rate < math.inf:
    raise ValueError(f"decay_rate must be a finite number > 0 or None; got {decay_rate!r}")
  return optax.exponential_decay(
      init_value=init_value, transition_steps=transition_steps,
      decay_rate=decay_rate, transition_begin=begin_step, end_value=end_value)


def cosine_anneal(*, init_value: float, end_value: float = 0.0,
                  transition_steps: int, begin_step: int = 0) -> optax.Schedule:
  """Half-cosine path from ``init_value`` to ``end_value``.

  ``end + (init - end) * (1 + cos(pi * s / transition_steps)) / 2`` with
  ``s = clip(t - begin_step, 0, transition_steps)``. Built on
  ``optax.cosine_decay_schedule``, which alone cannot start at 0 or delay the
  start; the shift and offset are added here.

  Args:
    init_value: value up to ``begin_step``.
    end_value: value from ``begin_step + transition_steps`` on (default 0).
    transition_steps: ``>= 1``.
    begin_step: ``>= 0``.

  Returns:
    A schedule.

  References:
    Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm
    Restarts", 2017 (the cosine shape).
  """
  _check_anneal(init_value, end_value, transition_steps, begin_step)
  unit = optax.cosine_decay_schedule(init_value=1.0, decay_steps=transition_steps)

  def schedule(step):
    # The optax schedule clamps only above; before the start hold init_value.
    s = jnp.maximum(jnp.asarray(step) - begin_step, 0)
    return end_value + (init_value - end_value) * unit(s)

  return _exact_end(schedule, end_step=begin_step + transition_steps, end_value=end_value)


# ----------------------------------------------------------------------------
# Langevin step size.


def polynomial_decay(*, a: float, b: float, gamma: float = 0.55) -> optax.Schedule:
  """SGLD's polynomially decaying step size ``a * (b + t) ** -gamma``.

  ``t`` is the step count (0 at the first update). With ``gamma`` in
  ``(0.5, 1]`` the steps satisfy the Robbins-Monro conditions (their sum
  diverges, the sum of their squares does not) under which SGLD converges to
  the posterior without a Metropolis correction; Welling & Teh's default
  exponent is 0.55. Written by hand: ``optax.polynomial_schedule`` interpolates
  between two values over a fixed number of steps and cannot decay forever.

  Args:
    a: scale, a finite number ``> 0``.
    b: offset, a finite number ``> 0`` (so that the first step is finite).
    gamma: decay exponent, a finite number ``>= 0`` (0 gives the constant
      ``a * b ** 0 = a``).

  Returns:
    A schedule (float32 values).

  Raises:
    ValueError: if an argument is outside its range.

  References:
    Welling & Teh, "Bayesian Learning via Stochastic Gradient Langevin
    Dynamics", 2011.

  Example:
    >>> schedule = polynomial_decay(a=1.0, b=1.0, gamma=1.0)
    >>> print(float(schedule(0)), float(schedule(3)))
    1.0 0.25
  """
  for name, value, low_open in (("a", a, True), ("b", b, True), ("gamma", gamma, False)):
    _check_finite(name, value)
    if _is_concrete(value) and (np.any(np.asarray(value) <= 0) if low_open
                                else np.any(np.asarray(value) < 0)):
      raise ValueError(f"{name} must be {'> 0' if low_open else '>= 0'}; got {value!r}")

  def schedule(step):
    t = jnp.asarray(step, jnp.float32)
    return a * (b + t) ** (-jnp.asarray(gamma, jnp.float32))

  return schedule


# ----------------------------------------------------------------------------
# A value per replica: one number that differs between the replicas of one
# mapped program (a sweep, ``train.sweep_field``). The game is built once, with
# a ``replica_value`` schedule in the swept field's place; the mapped step
# traces each replica's step inside ``replica_values`` with that replica's
# value (a tracer under ``jax.vmap``, a constant slice when unrolled). optax
# has no notion of a value that varies along a mapped axis of the caller,
# hence this small trace-time scope.

_SCOPE = threading.local()


@contextlib.contextmanager
def replica_values(values: Mapping[str, Any]):
  """Within the block, ``replica_value(name)`` schedules return ``values[name]``.

  The values are read when a schedule is *called*, so the block must enclose
  the tracing of the function that calls it (a compiled program keeps what it
  read). Blocks nest; the innermost one naming a value wins.
  """
  stack = _SCOPE.__dict__.setdefault("stack", [])
  stack.append(dict(values))
  try:
    yield
  finally:
    stack.pop()


def replica_value(name: str) -> optax.Schedule:
  """A schedule whose value is the current replica's ``name`` (see ``replica_values``).

  Raises at call time outside a ``replica_values`` block naming ``name``: a
  swept number has no single value to fall back on.
  """

  def schedule(count):
    del count  # the same value at every step
    for values in reversed(getattr(_SCOPE, "stack", [])):
      if name in values:
        return jnp.asarray(values[name])
    raise RuntimeError(
        f"{name} takes a value per replica (a sweep) and was read outside a replica's "
        "function; call it inside schedules.replica_values({...}) naming it")

  return schedule


# The numbers of each schedule its factory takes traced, so that a sweep may
# give them a value per replica (``replica_schedule``): those the factory
# checks only when concrete and computes with in jnp. Step counts are not
# among them (they are checked as Python integers), nor the ends of the
# geometric ``exponential`` path (whose positivity is checked eagerly).
SWEEPABLE_PARAMETERS: dict[str, tuple[str, ...]] = {
    "constant": ("value",),
    "linear": ("init_value", "end_value"),
    "cosine": ("init_value", "end_value"),
    "gamma_decay": ("gamma_0",),
    "polynomial": ("a", "b", "gamma"),
}


def replica_schedule(spec: Mapping[str, Any], parameter: str, name: str,
                     value: Any = None) -> optax.Schedule:
  """The schedule ``spec`` (a mapping with a ``name``) with one of its numbers
  per replica: ``parameter`` takes the value ``replica_value(name)`` reads, or
  ``value`` when given (one replica's schedule, usable anywhere).

  Without ``value`` the schedule is built at call time, inside the replica's
  trace, from the replica's value (``SWEEPABLE_PARAMETERS`` lists the numbers a
  factory takes traced).
  """
  spec = dict(spec.to_dict() if hasattr(spec, "to_dict") else spec)
  allowed = SWEEPABLE_PARAMETERS.get(spec.get("name"), ())
  if parameter not in allowed:
    raise ValueError(f"schedule {spec.get('name')!r}: {parameter!r} cannot take a value per "
                     f"replica; valid: {', '.join(allowed) or 'none'}")
  if value is not None:  # one replica's schedule: built (and checked) now
    return get_schedule({**spec, parameter: value})
  read = replica_value(name)

  def schedule(count):
    return get_schedule({**spec, parameter: read(count)})(count)

  return schedule


# ----------------------------------------------------------------------------
# Registry.

SCHEDULES: dict[str, Callable[..., optax.Schedule]] = {
    "constant": constant,
    "linear": linear_anneal,
    "exponential": exponential_anneal,
    "cosine": cosine_anneal,
    "beta": beta_schedule,
    "gamma_decay": gamma_decay,
    "polynomial": polynomial_decay,
}


def make_schedule(name: str, **kwargs: Any) -> optax.Schedule:
  """Builds the schedule registered as ``name`` with keyword arguments.

  Args:
    name: one of ``SCHEDULES`` (constant, linear, exponential, cosine, beta,
      gamma_decay, polynomial).
    **kwargs: the factory's arguments.

  Returns:
    An ``optax.Schedule``.

  Raises:
    ValueError: for an unknown name, or arguments the factory does not take /
      misses (the message lists the factory's parameters).
  """
  if name not in SCHEDULES:
    raise ValueError(
        f"unknown schedule {name!r}; valid: {', '.join(sorted(SCHEDULES))}")
  factory = SCHEDULES[name]
  signature = inspect.signature(factory)
  try:
    signature.bind(**kwargs)
  except TypeError as e:
    raise ValueError(
        f"bad arguments for schedule {name!r} ({e}); its parameters: "
        f"{', '.join(signature.parameters)}") from None
  return factory(**kwargs)


def is_schedule_spec(value: Any) -> bool:
  """Whether a config value is a schedule mapping (a ``dict`` or
  ``ConfigDict`` naming one of ``SCHEDULES``), not a number."""
  return ((isinstance(value, Mapping) or hasattr(value, "to_dict"))
          and value.get("name") in SCHEDULES)


def get_schedule(config: Any = None, /, **kwargs: Any) -> optax.Schedule:
  """A schedule from a config entry.

  Accepts, for convenience in configs:

  * a mapping (dict or ``ml_collections.ConfigDict``) with key ``name`` and the
    factory's arguments, optionally updated by ``kwargs``;
  * only keyword arguments, ``name`` among them;
  * a number: a constant schedule;
  * a callable: returned unchanged (already a schedule).

  Args:
    config: see above.
    **kwargs: see above.

  Returns:
    An ``optax.Schedule``.

  Raises:
    ValueError: as :func:`make_schedule`, or when no ``name`` is given.
  """
  if callable(config) and not isinstance(config, Mapping) and not kwargs:
    return config
  if isinstance(config, numbers.Real) and not isinstance(config, bool) and not kwargs:
    return constant(config)
  if config is None:
    spec = {}
  elif hasattr(config, "to_dict"):  # ml_collections.ConfigDict
    spec = dict(config.to_dict())
  elif isinstance(config, Mapping):
    spec = dict(config)
  else:
    raise ValueError(
        "a schedule config must be a mapping with a 'name', a number or a "
        f"schedule function; got {config!r}")
  spec.update(kwargs)
  if "name" not in spec:
    raise ValueError(
        f"schedule config needs a 'name'; valid: {', '.join(sorted(SCHEDULES))}")
  name = spec.pop("name")
  return make_schedule(name, **spec)
