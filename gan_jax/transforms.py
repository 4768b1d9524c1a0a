"""Langevin samplers and weight clipping as optax gradient transformations.

Every factory here returns a plain :class:`optax.GradientTransformation` (or
:class:`optax.GradientTransformationExtraArgs`), so the transforms compose with
``optax.chain``, ``optax.MultiSteps`` and ``optax.inject_hyperparams`` and run
under ``jax.jit``. The module depends on jax and optax only, so it can be
copied into another project as it is.

Samplers (the update is *added* to the parameters, optax convention):

* :func:`sgld` -- stochastic gradient Langevin dynamics (Welling & Teh, 2011).
* :func:`cc_sgld` -- SGLD whose injected noise follows a running estimate of the
  gradient covariance (covariance-controlled noise, after Leimkuhler & Shang,
  2016), or that injects only the variance the minibatch noise lacks.
* :func:`psgld` -- RMSProp-preconditioned SGLD (Li et al., 2016).

Constraint:

* :func:`clip_params` -- WGAN weight clipping (Arjovsky et al., 2017) as the
  last link of a chain.

Scale convention shared by the samplers. With gradients ``g = grad U`` of an
energy ``U`` the samplers target ``exp(-U / temperature)``. A training loop that
differentiates the *mean* minibatch loss ``L`` over a data set of ``N`` examples
passes ``data_size=N``: the posterior energy is ``U = N * L - log p(theta)``,
and the sampler makes the update it would make for the gradients ``N g`` of
``U`` with ``data_size=1`` and a rescaled step (``learning_rate / N`` for
:func:`sgld` and :func:`cc_sgld`; for :func:`psgld`, whose preconditioner
scales as one over the gradients, the same step with its ``eps`` times ``N``).
With gradients of the summed energy ``U`` keep ``data_size=1``. What that does
to the injected noise depends on where the noise level comes from:

* :func:`sgld`, :func:`psgld` and :func:`cc_sgld` with ``mode="complement"``
  set it from the step and the temperature: ``data_size=N`` is the same as
  temperature ``temperature / N``, the noise variance is divided by ``N``.
* :func:`cc_sgld` with ``mode="full"`` measures it from the gradients' own
  covariance ``I_t``. Rescaled to ``U`` the gradients' covariance grows by
  ``N^2`` while the step shrinks by ``N``, so ``data_size=N`` *multiplies*
  the injected variance ``eps_t T I_t`` by ``N``; it is no temperature.

A Gaussian prior ``log p(theta)`` is weight decay: put
``optax.add_decayed_weights`` before the sampler in a chain (its coefficient is
then on the same scale as the gradients).

:func:`injected_noise_std` reads the noise level a sampler injected at its last
update out of any (nested) optimizer state, for plotting, and
:func:`noise_to_drift_ratio` its size relative to the gradient step.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import optax

__all__ = [
    "CCSGLDState",
    "PSGLDState",
    "SGLDState",
    "cc_sgld",
    "clip_params",
    "injected_noise_std",
    "noise_to_drift_ratio",
    "psgld",
    "sgld",
]

KeyOrSeed = Union[int, jax.Array]
Scalar = Union[float, int, jax.Array]

_CC_MODES = ("full", "complement")


# ----------------------------------------------------------------------------
# Argument checking. Only concrete values can be checked: under jit (and inside
# optax.inject_hyperparams' update) the hyper-parameters are tracers.


def _concrete(value: Any) -> Optional[float]:
  """Returns ``value`` as a Python float if it is a concrete scalar, else None."""
  if callable(value):
    return None
  try:
    return float(value)
  except (TypeError, jax.errors.ConcretizationTypeError,
          jax.errors.TracerArrayConversionError):
    return None


def _check_range(name: str, value: Any, *, low: float,
                 high: float = math.inf, low_open: bool = False,
                 high_open: bool = False) -> None:
  """Raises ValueError if the concrete ``value`` lies outside the interval."""
  v = _concrete(value)
  if v is None:
    return
  too_low = v <= low if low_open else v < low
  too_high = v >= high if high_open else v > high
  if too_low or too_high or math.isnan(v):
    left = "(" if low_open else "["
    right = ")" if high_open or high == math.inf else "]"
    high_txt = "inf" if high == math.inf else f"{high:g}"
    raise ValueError(
        f"{name}={v:g} is out of range; valid: {name} in "
        f"{left}{low:g}, {high_txt}{right}")


def _check_learning_rate(learning_rate: Any) -> None:
  _check_range("learning_rate", learning_rate, low=0.0)


def _check_common(learning_rate: Any, temperature: Any, data_size: Any) -> None:
  _check_learning_rate(learning_rate)
  _check_range("temperature", temperature, low=0.0)
  _check_range("data_size", data_size, low=1.0)


def _is_typed_key(key: Any) -> bool:
  return isinstance(key, jax.Array) and jnp.issubdtype(
      key.dtype, jax.dtypes.prng_key)


def _check_key(key: Any) -> None:
  """Raises ValueError unless ``key`` is an int seed, a typed or a raw key."""
  if isinstance(key, int) and not isinstance(key, bool):
    return
  if isinstance(key, jax.Array):
    if _is_typed_key(key):
      return
    if jnp.issubdtype(key.dtype, jnp.integer) and key.ndim <= 1:
      return  # An integer seed array or a raw uint32 key.
  raise ValueError(
      f"key={key!r} is not a valid key; valid: an int seed, a typed key "
      "(jax.random.key) or a raw uint32 key (jax.random.PRNGKey)")


def _canonical_key(key: KeyOrSeed) -> jax.Array:
  """An int seed becomes a typed key; a typed or raw key is kept as given."""
  _check_key(key)
  if _is_typed_key(key):
    return key
  if isinstance(key, jax.Array) and key.ndim == 1:
    return key  # Raw key: splitting and sampling accept it directly.
  return jax.random.key(key)


def _step_size(learning_rate: optax.ScalarOrSchedule,
               count: jax.Array) -> jax.Array:
  return learning_rate(count) if callable(learning_rate) else learning_rate


def _rms(tree_of_variances: Any) -> jax.Array:
  """RMS standard deviation: sqrt of the mean of a tree of variances."""
  leaves = jax.tree.leaves(tree_of_variances)
  size = sum(leaf.size for leaf in leaves)
  if size == 0:
    return jnp.zeros([], jnp.float32)
  total = sum(jnp.sum(leaf.astype(jnp.float32)) for leaf in leaves)
  return jnp.sqrt(total / size)


def _as_float32(x: Any) -> jax.Array:
  return jnp.asarray(x, jnp.float32)


def _drift_rms(drift: Any) -> jax.Array:
  """RMS over every parameter of the deterministic part of an update."""
  return _rms(jax.tree.map(lambda d: jnp.square(d.astype(jnp.float32)), drift))


# ----------------------------------------------------------------------------
# SGLD.


class SGLDState(NamedTuple):
  """State of :func:`sgld`.

  Attributes:
    count: Number of updates made so far (int32 scalar); the step-size
      schedule is evaluated at it.
    key: PRNG key, split on every update.
    noise_std: Standard deviation of the Gaussian noise added to each
      coordinate at the last update, ``sqrt(2 eps_t T / N)`` (float32 scalar;
      0 before the first update).
    drift_rms: Root mean square, over every parameter, of the drift
      ``eps_t g`` of the last update (float32 scalar; 0 before the first).
  """

  count: jax.Array
  key: jax.Array
  noise_std: jax.Array
  drift_rms: jax.Array


def sgld(
    learning_rate: optax.ScalarOrSchedule,
    *,
    temperature: Scalar = 1.0,
    data_size: Scalar = 1,
    key: KeyOrSeed = 0,
) -> optax.GradientTransformation:
  r"""Stochastic gradient Langevin dynamics.

  The update for gradients ``g`` is

  .. math::
    u = -\epsilon_t g + \sqrt{2 \epsilon_t T / N}\; \xi,
    \qquad \xi \sim \mathcal N(0, I),

  with ``eps_t = learning_rate(t)``, ``T = temperature`` and ``N = data_size``.
  For ``g = grad U`` and small steps the parameters are distributed as
  ``exp(-U / (T / N))``.

  Scale: for a gradient ``g`` of the *mean* minibatch loss ``L`` over a data set
  of ``N`` examples, pass ``data_size=N``; the target is then
  ``exp(-N L / T)``, the tempered posterior with energy
  ``U = N * L - log p(theta)``, i.e. the mean loss sampled at temperature
  ``T / N``. The update is identical to the one made with gradients of the
  summed energy ``N * L``, step size ``learning_rate / N`` and ``data_size=1``;
  so a caller that passes gradients of ``U`` itself leaves ``data_size=1``. A
  Gaussian prior is weight decay: chain ``optax.add_decayed_weights`` before
  this transform (with mean-loss gradients its coefficient is
  ``1 / (N * prior_variance)``).

  Each leaf receives noise from its own key (the state's key is split per update
  and per leaf) in the leaf's dtype. Numeric hyper-parameters may be arrays, so
  the transform works with ``optax.inject_hyperparams``.

  Args:
    learning_rate: Step size ``eps_t``: a scalar or an ``optax.Schedule`` of the
      update count, e.g. Welling & Teh's ``a (b + t)^-0.55``
      (``gan_jax.schedules.polynomial_decay``, ``'polynomial'`` in configs).
    temperature: ``T >= 0``; 1 samples the posterior, 0 is plain SGD.
    data_size: ``N >= 1``, the number of examples whose mean loss was
      differentiated (1 for gradients of the summed energy).
    key: An int seed, a typed key (``jax.random.key``) or a raw key.

  Returns:
    An ``optax.GradientTransformation`` with state :class:`SGLDState`.

  References:
    Welling & Teh, `Bayesian Learning via Stochastic Gradient Langevin
    Dynamics <https://icml.cc/2011/papers/398_icmlpaper.pdf>`_, 2011.

  Example:
    >>> import jax.numpy as jnp, optax
    >>> from gan_jax import transforms
    >>> opt = optax.chain(
    ...     optax.add_decayed_weights(1e-3),
    ...     transforms.sgld(lambda t: 1e-2 * (1.0 + t) ** -0.55,
    ...                     data_size=1000, key=0))
    >>> params = jnp.zeros(3)
    >>> state = opt.init(params)
    >>> updates, state = opt.update(jnp.ones(3), state, params)
    >>> print(updates.shape, float(transforms.injected_noise_std(state)) > 0)
    (3,) True
  """
  _check_common(learning_rate, temperature, data_size)
  _check_key(key)

  def init_fn(params):
    del params
    return SGLDState(count=jnp.zeros([], jnp.int32),
                     key=_canonical_key(key),
                     noise_std=jnp.zeros([], jnp.float32),
                     drift_rms=jnp.zeros([], jnp.float32))

  def update_fn(updates, state, params=None):
    del params
    eps = _step_size(learning_rate, state.count)
    std = jnp.sqrt(2.0 * eps * temperature / data_size)
    new_key, noise_key = jax.random.split(state.key)
    noise = optax.tree.random_like(noise_key, updates, jax.random.normal)
    drift_rms = _drift_rms(jax.tree.map(lambda g: eps * g, updates))
    updates = jax.tree.map(
        lambda g, xi: (-eps * g + std * xi).astype(g.dtype), updates, noise)
    return updates, SGLDState(count=optax.safe_increment(state.count),
                              key=new_key, noise_std=_as_float32(std),
                              drift_rms=drift_rms)

  return optax.GradientTransformation(init_fn, update_fn)


# ----------------------------------------------------------------------------
# Covariance-controlled SGLD.


class CCSGLDState(NamedTuple):
  """State of :func:`cc_sgld`.

  Attributes:
    count: Number of updates made so far (int32 scalar).
    key: PRNG key, split on every update.
    grad_mean: Exponential moving average of the gradients.
    grad_second_moment: Exponential moving average of the squared gradients.
    running_covariance: ``I_t``, the running (equal-weight) average of the
      diagonal gradient-covariance estimates ``V_1 .. V_t``; same tree as the
      parameters.
    noise_std: Root mean square, over every parameter, of the standard
      deviation of the noise injected at the last update (float32 scalar).
    drift_rms: Root mean square, over every parameter, of the drift
      ``eps_t g`` of the last update (float32 scalar).
  """

  count: jax.Array
  key: jax.Array
  grad_mean: Any
  grad_second_moment: Any
  running_covariance: Any
  noise_std: jax.Array
  drift_rms: jax.Array


def cc_sgld(
    learning_rate: optax.ScalarOrSchedule,
    *,
    temperature: Scalar = 1.0,
    data_size: Scalar = 1,
    mode: str = "full",
    variance_decay: Scalar = 0.99,
    key: KeyOrSeed = 0,
) -> optax.GradientTransformationExtraArgs:
  r"""SGLD with covariance-controlled noise.

  Keeps ``I_t = (1 - 1/t) I_{t-1} + (1/t) V_t`` (``t`` from 1), the running
  average of a diagonal estimate ``V_t`` of the covariance of the incoming
  gradients, and makes the update

  * ``mode="full"`` (Bayesian-discriminator paper, eqs. 10-11):
    ``u = -eps_t g + sqrt(eps_t) eta_t``, ``eta_t ~ N(0, T N I_t)``. The
    injected noise follows the gradient noise and drops as training settles.
    The factor ``T N`` is 1 at the defaults (the paper's form); it makes the
    temperature scale the injected variance and keeps the ``data_size``
    convention of :func:`sgld`: mean-loss gradients with ``data_size=N`` and
    step ``eps`` give the same update as summed-energy gradients with
    ``data_size=1`` and step ``eps / N``. The covariance of those summed
    gradients is ``N^2 I_t``, so ``data_size=N`` multiplies the injected
    variance by ``N`` (it does not divide it, as a temperature ``T / N``
    would): per coordinate the noise std is ``sqrt(eps_t T N I_t)``, ``N
    sqrt(I_t / 2)`` times SGLD's ``sqrt(2 eps_t T / N)`` at the same step.
    Choose the step with that in mind (:func:`noise_to_drift_ratio`).
  * ``mode="complement"`` (after Ahn et al., 2012): inject only the variance
    the minibatch noise lacks for SGLD at temperature ``T / N``,
    ``max(2 eps_t T / N - eps_t^2 I_t, 0)`` per coordinate, so that gradient
    noise plus injected noise add up to the Langevin variance ``2 eps_t T / N``
    wherever the gradient noise is small enough.

  ``V_t`` is by default the exponential-moving-average variance of the
  gradients, ``max(m2 - m^2, 0)`` with ``m``, ``m2`` the EMAs (decay
  ``variance_decay``, bias-corrected as in Adam) of ``g`` and ``g^2``. Note that
  it also sees the change of the true gradient as the parameters move; this
  is small when the EMA window is short compared with the sampler's mixing
  time. A caller with per-example gradients passes the variance of the
  gradient estimate itself (per-example variance divided by the batch size),
  as the extra argument ``grad_variance``:
  ``opt.update(grads, state, params, grad_variance=var_tree)``. The transform is
  an ``optax.GradientTransformationExtraArgs``; ``optax.chain`` forwards the
  argument and drops it for transforms that do not take it.

  Args:
    learning_rate: Step size ``eps_t``: a scalar or an ``optax.Schedule``.
    temperature: ``T >= 0``.
    data_size: ``N >= 1``; see :func:`sgld` for the scale convention.
    mode: ``"full"`` or ``"complement"``.
    variance_decay: EMA decay in ``(0, 1)`` of the default variance estimate.
    key: An int seed, a typed key (``jax.random.key``) or a raw key.

  Returns:
    An ``optax.GradientTransformationExtraArgs`` with state
    :class:`CCSGLDState`.

  Raises:
    ValueError: For an unknown ``mode`` or an out-of-range concrete
      hyper-parameter.

  References:
    The Langevin-trained ("Bayesian") discriminator with blur coarse-graining,
    eqs. (10)-(11).
    Leimkuhler & Shang, `Adaptive Thermostats for Noisy Gradient Systems
    <https://arxiv.org/abs/1505.06800>`_, 2016.
    Ahn, Korattikara & Welling, `Bayesian Posterior Sampling via Stochastic
    Gradient Fisher Scoring <https://arxiv.org/abs/1206.6380>`_, 2012.

  Example:
    >>> import jax.numpy as jnp, optax
    >>> from gan_jax import transforms
    >>> opt = transforms.cc_sgld(1e-2, mode="complement", key=0)
    >>> params = {"w": jnp.zeros(3)}
    >>> state = opt.init(params)
    >>> grads = {"w": jnp.ones(3)}
    >>> updates, state = opt.update(grads, state, params,
    ...                             grad_variance={"w": jnp.full(3, 4.0)})
    >>> print(state.running_covariance["w"])
    [4. 4. 4.]
  """
  if mode not in _CC_MODES:
    raise ValueError(
        f"unknown mode {mode!r}; valid: {', '.join(_CC_MODES)}")
  _check_common(learning_rate, temperature, data_size)
  _check_range("variance_decay", variance_decay, low=0.0, high=1.0,
               low_open=True, high_open=True)
  _check_key(key)

  def init_fn(params):
    return CCSGLDState(count=jnp.zeros([], jnp.int32),
                       key=_canonical_key(key),
                       grad_mean=optax.tree.zeros_like(params),
                       grad_second_moment=optax.tree.zeros_like(params),
                       running_covariance=optax.tree.zeros_like(params),
                       noise_std=jnp.zeros([], jnp.float32),
                       drift_rms=jnp.zeros([], jnp.float32))

  def update_fn(updates, state, params=None, *, grad_variance=None,
                **extra_args):
    del params, extra_args
    count = optax.safe_increment(state.count)
    t = jnp.asarray(count, jnp.float32)
    decay = variance_decay

    grad_mean = jax.tree.map(
        lambda m, g: (decay * m + (1 - decay) * g).astype(m.dtype),
        state.grad_mean, updates)
    grad_second_moment = jax.tree.map(
        lambda m2, g: (decay * m2 + (1 - decay) * g * g).astype(m2.dtype),
        state.grad_second_moment, updates)
    if grad_variance is None:
      # Bias correction: the EMAs start at zero.
      correction = 1 - decay ** t
      grad_variance = jax.tree.map(
          lambda m, m2: jnp.maximum(
              m2 / correction - jnp.square(m / correction), 0.0),
          grad_mean, grad_second_moment)
    running_covariance = jax.tree.map(
        lambda i, v: ((1 - 1 / t) * i + v / t).astype(i.dtype),
        state.running_covariance, grad_variance)

    eps = _step_size(learning_rate, state.count)
    if mode == "full":
      variance = jax.tree.map(
          lambda i: eps * temperature * data_size * i, running_covariance)
    else:
      variance = jax.tree.map(
          lambda i: jnp.maximum(
              2 * eps * temperature / data_size - eps * eps * i, 0.0),
          running_covariance)

    new_key, noise_key = jax.random.split(state.key)
    noise = optax.tree.random_like(noise_key, updates, jax.random.normal)
    new_updates = jax.tree.map(
        lambda g, var, xi: (-eps * g + jnp.sqrt(var) * xi).astype(g.dtype),
        updates, variance, noise)
    return new_updates, CCSGLDState(
        count=count, key=new_key, grad_mean=grad_mean,
        grad_second_moment=grad_second_moment,
        running_covariance=running_covariance, noise_std=_rms(variance),
        drift_rms=_drift_rms(jax.tree.map(lambda g: eps * g, updates)))

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


# ----------------------------------------------------------------------------
# Preconditioned SGLD.


class PSGLDState(NamedTuple):
  """State of :func:`psgld`.

  Attributes:
    count: Number of updates made so far (int32 scalar).
    key: PRNG key, split on every update.
    nu: Exponential moving average of the squared gradients (RMSProp's
      second moment; not bias-corrected, as in the paper).
    noise_std: Root mean square, over every parameter, of the standard
      deviation of the noise injected at the last update (float32 scalar).
    drift_rms: Root mean square, over every parameter, of the preconditioned
      drift ``eps_t G g`` of the last update (float32 scalar).
  """

  count: jax.Array
  key: jax.Array
  nu: Any
  noise_std: jax.Array
  drift_rms: jax.Array


def psgld(
    learning_rate: optax.ScalarOrSchedule,
    *,
    decay: Scalar = 0.99,
    eps: Scalar = 1e-5,
    temperature: Scalar = 1.0,
    data_size: Scalar = 1,
    key: KeyOrSeed = 0,
) -> optax.GradientTransformation:
  r"""Preconditioned SGLD with an RMSProp preconditioner.

  With ``v_t = decay v_{t-1} + (1 - decay) g^2`` and the diagonal
  preconditioner ``G = 1 / (eps + sqrt(v_t))`` the update is

  .. math::
    u = -\epsilon_t G g + \sqrt{2 \epsilon_t (T / N) G}\; \xi,
    \qquad \xi \sim \mathcal N(0, I).

  The drift term ``Gamma(theta)`` that the parameter dependence of ``G`` calls
  for is neglected, as in the paper (its effect vanishes as ``decay -> 1``).

  Scale: as for :func:`sgld`, ``data_size=N`` with mean-loss gradients targets
  ``exp(-N L / T)``. Because ``G`` scales as one over the gradients, the update
  for mean-loss gradients with ``data_size=N`` equals the update for summed
  gradients with ``data_size=1``, the *same* ``learning_rate`` and ``eps``
  multiplied by ``N``.

  Args:
    learning_rate: Step size ``eps_t``: a scalar or an ``optax.Schedule``.
    decay: EMA decay in ``(0, 1)`` of the squared gradients.
    eps: ``eps > 0`` added to ``sqrt(v)``; bounds the preconditioner.
    temperature: ``T >= 0``.
    data_size: ``N >= 1``.
    key: An int seed, a typed key (``jax.random.key``) or a raw key.

  Returns:
    An ``optax.GradientTransformation`` with state :class:`PSGLDState`.

  References:
    Li, Chen, Carlson & Carin, `Preconditioned Stochastic Gradient Langevin
    Dynamics for Deep Neural Networks <https://arxiv.org/abs/1512.07666>`_,
    2016.

  Example:
    >>> import jax.numpy as jnp
    >>> from gan_jax import transforms
    >>> opt = transforms.psgld(1e-3, temperature=0.0, key=0)
    >>> params = jnp.zeros(2)
    >>> state = opt.init(params)
    >>> updates, state = opt.update(jnp.array([1.0, -4.0]), state, params)
    >>> print(updates.round(4))  # G g = g / (0.1 |g|) on the first step
    [-0.01  0.01]
  """
  _check_common(learning_rate, temperature, data_size)
  _check_range("decay", decay, low=0.0, high=1.0, low_open=True,
               high_open=True)
  _check_range("eps", eps, low=0.0, low_open=True)
  _check_key(key)

  def init_fn(params):
    return PSGLDState(count=jnp.zeros([], jnp.int32),
                      key=_canonical_key(key),
                      nu=optax.tree.zeros_like(params),
                      noise_std=jnp.zeros([], jnp.float32),
                      drift_rms=jnp.zeros([], jnp.float32))

  def update_fn(updates, state, params=None):
    del params
    nu = jax.tree.map(
        lambda v, g: (decay * v + (1 - decay) * g * g).astype(v.dtype),
        state.nu, updates)
    preconditioner = jax.tree.map(lambda v: 1 / (eps + jnp.sqrt(v)), nu)
    step = _step_size(learning_rate, state.count)
    variance = jax.tree.map(
        lambda p: 2 * step * temperature / data_size * p, preconditioner)
    new_key, noise_key = jax.random.split(state.key)
    noise = optax.tree.random_like(noise_key, updates, jax.random.normal)
    new_updates = jax.tree.map(
        lambda g, p, var, xi: (-step * p * g + jnp.sqrt(var) * xi).astype(
            g.dtype),
        updates, preconditioner, variance, noise)
    drift = jax.tree.map(lambda g, p: step * p * g, updates, preconditioner)
    return new_updates, PSGLDState(
        count=optax.safe_increment(state.count), key=new_key, nu=nu,
        noise_std=_rms(variance), drift_rms=_drift_rms(drift))

  return optax.GradientTransformation(init_fn, update_fn)


# ----------------------------------------------------------------------------
# Weight clipping.


def _land_inside(param: jax.Array, update: jax.Array,
                 clip_value: Scalar) -> jax.Array:
  """Update ``d`` with ``param + d`` in ``[-c, c]`` in the parameter's dtype."""
  dtype = param.dtype
  c = jnp.asarray(clip_value, dtype)
  target = jnp.clip(param + update.astype(dtype), -c, c)
  delta = target - param
  # ``param + (target - param)`` can round one ulp past the wall; nudge the
  # update towards the inside until the sum, as optax.apply_updates computes
  # it, lands in the box. Two nudges suffice: each moves the sum by at least
  # one ulp of the sum's magnitude.
  for _ in range(2):
    landed = param + delta
    delta = jnp.where(landed > c, jnp.nextafter(delta, jnp.asarray(-jnp.inf,
                                                                   dtype)),
                      delta)
    delta = jnp.where(landed < -c, jnp.nextafter(delta, jnp.asarray(jnp.inf,
                                                                    dtype)),
                      delta)
  return delta.astype(update.dtype)


def clip_params(clip_value: Scalar) -> optax.GradientTransformation:
  """Weight clipping: updates that land the parameters in ``[-c, c]``.

  Returns updates ``u'`` with ``params + u' = clip(params + u, -c, c)`` for
  incoming updates ``u``, so ``optax.apply_updates`` yields clipped parameters.
  In floating point the sum is never outside ``[-c, c]`` and differs from the
  clipped value by at most the float spacing at ``|params| + c`` (an update
  can be no finer).
  It acts on *updates*, not gradients: put it LAST in a chain, after the
  optimizer, e.g. ``optax.chain(optax.rmsprop(5e-5), clip_params(0.01))`` for
  the WGAN critic. ``c`` is rounded to each parameter's dtype.

  Args:
    clip_value: Half-width ``c > 0`` of the box.

  Returns:
    An ``optax.GradientTransformation`` (stateless) whose update needs
    ``params``.

  Raises:
    ValueError: If ``clip_value <= 0`` (concrete values), or at update time if
      ``params`` is None.

  References:
    Arjovsky, Chintala & Bottou, `Wasserstein GAN
    <https://arxiv.org/abs/1701.07875>`_, 2017.

  Example:
    >>> import jax.numpy as jnp, optax
    >>> from gan_jax import transforms
    >>> opt = optax.chain(optax.sgd(1.0), transforms.clip_params(0.01))
    >>> params = jnp.array([0.0, 0.005])
    >>> state = opt.init(params)
    >>> updates, state = opt.update(jnp.array([1.0, -0.001]), state, params)
    >>> print(optax.apply_updates(params, updates))
    [-0.01   0.006]
  """
  _check_range("clip_value", clip_value, low=0.0, low_open=True)

  def init_fn(params):
    del params
    return optax.EmptyState()

  def update_fn(updates, state, params=None):
    if params is None:
      raise ValueError(
          "clip_params needs the parameters: call update(updates, state, "
          "params) with params not None")
    updates = jax.tree.map(
        lambda u, p: _land_inside(p, u, clip_value), updates, params)
    return updates, state

  return optax.GradientTransformation(init_fn, update_fn)


# ----------------------------------------------------------------------------
# Reading the injected noise level.

_SAMPLER_STATES = (SGLDState, CCSGLDState, PSGLDState)


def _sampler_state(opt_state: Any) -> Any:
  """The first sampler state in ``opt_state`` (tree-flattening order), or None."""
  found = [
      node for node in jax.tree.leaves(
          opt_state, is_leaf=lambda x: isinstance(x, _SAMPLER_STATES))
      if isinstance(node, _SAMPLER_STATES)
  ]
  return found[0] if found else None


def injected_noise_std(opt_state: Any) -> Optional[jax.Array]:
  """The noise level a sampler injected at its last update, for plotting.

  Searches ``opt_state`` (any nesting of ``optax.chain``, ``optax.MultiSteps``,
  ``optax.inject_hyperparams``, ``optax.multi_transform`` ... states) for the
  state of :func:`sgld`, :func:`cc_sgld` or :func:`psgld`.

  Args:
    opt_state: An optimizer state.

  Returns:
    The ``noise_std`` of the first sampler state found (in tree-flattening
    order), a float32 scalar; None if there is none.

  Example:
    >>> import jax.numpy as jnp, optax
    >>> from gan_jax import transforms
    >>> opt = optax.MultiSteps(transforms.sgld(0.5, key=0), every_k_schedule=1)
    >>> params = jnp.zeros(2)
    >>> state = opt.init(params)
    >>> _, state = opt.update(jnp.ones(2), state, params)
    >>> print(float(transforms.injected_noise_std(state)))
    1.0
    >>> print(transforms.injected_noise_std(optax.adam(1e-3).init(params)))
    None
  """
  state = _sampler_state(opt_state)
  return None if state is None else state.noise_std


def noise_to_drift_ratio(opt_state: Any) -> Optional[jax.Array]:
  """How much larger a sampler's injected noise was than its drift, last update.

  The ratio ``noise_std / drift_rms`` of the sampler state found as in
  :func:`injected_noise_std`: the RMS over all parameters of the injected
  noise's standard deviation over the RMS of the drift (``eps_t g``, for
  :func:`psgld` ``eps_t G g``). Both are RMS over the same coordinates, so it
  is ``sqrt(E ||noise||^2) / ||drift||`` for the whole parameter vector. For
  :func:`sgld` it is ``sqrt(2 T / (eps_t N)) / rms(g)``. Langevin noise
  dominates single small steps by design: over ``k`` steps a steady drift adds
  up ``k`` times, independent noise only ``sqrt(k)`` times, so the drift
  outweighs the noise after about ``ratio^2`` steps (a million for a ratio of
  1000, more than most training runs).

  Args:
    opt_state: An optimizer state.

  Returns:
    A float32 scalar; None if ``opt_state`` holds no sampler state. A zero
    drift gives 0 if no noise was injected either (e.g. before the first
    update), else the largest float32: a finite stand-in for "noise only",
    so that a logged metric does not trip a training loop's check of
    non-finite values.

  Example:
    >>> import jax.numpy as jnp
    >>> from gan_jax import transforms
    >>> opt = transforms.sgld(0.5, key=0)  # noise std sqrt(2 * 0.5) = 1
    >>> params = jnp.zeros(2)
    >>> _, state = opt.update(jnp.full(2, 4.0), opt.init(params), params)
    >>> print(float(transforms.noise_to_drift_ratio(state)))  # drift 0.5 * 4
    0.5
  """
  state = _sampler_state(opt_state)
  if state is None:
    return None
  noise, drift = state.noise_std, state.drift_rms
  moved = drift > 0
  no_drift = jnp.where(noise > 0, jnp.finfo(jnp.float32).max, 0.0)
  return jnp.where(moved, noise / jnp.where(moved, drift, 1.0), no_drift).astype(jnp.float32)
