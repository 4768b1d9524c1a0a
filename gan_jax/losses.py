"""GAN objectives as pure functions of discriminator logits.

Every loss takes the raw discriminator output (the logit ``psi`` of
``D = sigmoid(psi)``, the critic value ``f`` of a Wasserstein or hinge critic, or
the variational output ``v`` of an f-GAN) and returns a scalar to be *minimized*.
Expectations are batch means over all elements, so logits of shape ``[B]`` and
``[B, 1]`` give the same value. Optional ``real_weights`` / ``fake_weights`` turn
the means into weighted means ``sum(w * l) / sum(w)``: exact expectations over a
finite set (``w`` a probability vector), importance weights, or masks that drop
padded examples (``w = 0``; a masked entry does not enter the value even if its
loss term is infinite).

Log-probabilities are computed with ``jax.nn.log_sigmoid`` / ``jax.nn.softplus``,
never ``log(sigmoid(.))``, so that values and gradients stay finite however
confident the discriminator is. The identities used throughout are
``log D = log_sigmoid(psi) = -softplus(-psi)`` and
``log(1 - D) = log_sigmoid(-psi) = -softplus(psi)``.

Objectives can be picked by name through :func:`get_objective`, which returns an
:class:`Objective` pair of discriminator and generator losses.

References:
  Goodfellow et al., "Generative Adversarial Nets", 2014.
  Nowozin, Cseke & Tomioka, "f-GAN: Training Generative Neural Samplers using
  Variational Divergence Minimization", 2016.
  Arjovsky & Bottou, "Towards Principled Methods for Training Generative
  Adversarial Networks", 2017.
  Arjovsky, Chintala & Bottou, "Wasserstein GAN", 2017.
  Mao et al., "Least Squares Generative Adversarial Networks", 2017.
  Lim & Ye, "Geometric GAN", 2017 (hinge loss).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

__all__ = [
    "DIVERGENCES",
    "OBJECTIVES",
    "Objective",
    "fgan_activation",
    "fgan_conjugate",
    "fgan_conjugate_activation",
    "fgan_conjugate_curvature",
    "fgan_discriminator_loss",
    "fgan_generator_loss",
    "fgan_penalty_weight",
    "get_objective",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "jensen_shannon",
    "kl_divergence",
    "least_squares_discriminator_loss",
    "least_squares_generator_loss",
    "minimax_discriminator_loss",
    "minimax_generator_loss",
    "non_saturating_generator_loss",
    "optimal_discriminator_logit",
    "wasserstein_discriminator_loss",
    "wasserstein_generator_loss",
]

_LOG2 = math.log(2.0)

# f-divergences of the f-GAN family (Nowozin et al., 2016, Table 2).
DIVERGENCES = ("kl", "reverse_kl", "pearson", "squared_hellinger", "js", "gan")


# --------------------------------------------------------------------------
# Helpers.
# --------------------------------------------------------------------------


def _as_float(x: ArrayLike) -> jax.Array:
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    x = x.astype(jnp.result_type(float))
  return x


def _mean(values: jax.Array, weights: Optional[ArrayLike]) -> jax.Array:
  """Mean of ``values`` over all elements, or the ``weights``-weighted mean.

  Weights align with the leading axes of ``values`` (a ``[B]`` weight vector
  weighs the rows of ``[B, 1]`` logits) and broadcast over the rest.
  """
  if weights is None:
    return jnp.mean(values)
  w = jnp.asarray(weights, dtype=values.dtype)
  if w.ndim > values.ndim:
    raise ValueError(
        f"weights of shape {w.shape} have more axes than the logits of shape "
        f"{values.shape}; valid: a shape that is a leading part of the logits' "
        "shape (e.g. [B] for logits [B] or [B, 1])")
  w = jnp.reshape(w, w.shape + (1,) * (values.ndim - w.ndim))
  try:
    shape = jnp.broadcast_shapes(w.shape, values.shape)
  except ValueError:
    shape = None
  if shape != values.shape:
    raise ValueError(
        f"weights of shape {weights.shape if hasattr(weights, 'shape') else w.shape}"
        f" do not fit logits of shape {values.shape}; valid: a shape that is a "
        "leading part of the logits' shape (e.g. [B] for logits [B] or [B, 1])")
  w = jnp.broadcast_to(w, values.shape)
  # Masked entries may hold infinite loss terms; select them away before the
  # product so that 0 * inf does not turn the value (or the gradient with
  # respect to the weights) into NaN.
  kept = jnp.where(w != 0, values, jnp.zeros_like(values))
  return jnp.sum(w * kept) / jnp.sum(w)


def _check_divergence(divergence: Any) -> None:
  if divergence not in DIVERGENCES:
    raise ValueError(
        f"unknown divergence {divergence!r}; valid: {', '.join(DIVERGENCES)}")


# --------------------------------------------------------------------------
# Minimax / non-saturating (Goodfellow et al., 2014).
# --------------------------------------------------------------------------


def minimax_discriminator_loss(
    real_logits: ArrayLike,
    fake_logits: ArrayLike,
    *,
    real_weights: Optional[ArrayLike] = None,
    fake_weights: Optional[ArrayLike] = None,
) -> jax.Array:
  """Cross-entropy discriminator loss ``-E_P[log D] - E_Q[log(1 - D)]``.

  Shared by the minimax (saturating) and the non-saturating game. With
  ``D = sigmoid(psi)`` it equals ``E_P[softplus(-psi)] + E_Q[softplus(psi)]``,
  finite with finite gradients for any finite logits. Its gradient with respect
  to a fake logit ``psi_i`` of a batch of ``B`` is ``sigmoid(psi_i) / B``.

  Args:
    real_logits: discriminator logits on data samples, any shape (e.g. ``[B]``
      or ``[B, 1]``).
    fake_logits: discriminator logits on generated samples, any shape.
    real_weights: optional weights of the real examples (see module docstring).
    fake_weights: optional weights of the fake examples.

  Returns:
    The scalar loss. At the optimal discriminator its negative is
    ``2 JSD(P || Q) - 2 log 2``.

  Example:
    >>> import jax.numpy as jnp
    >>> loss = minimax_discriminator_loss(jnp.zeros(4), jnp.zeros(4))
    >>> round(float(loss), 4)  # 2 log 2: D = 1/2 everywhere
    1.3863

  References:
    Goodfellow et al., "Generative Adversarial Nets", 2014.
  """
  real_logits, fake_logits = _as_float(real_logits), _as_float(fake_logits)
  return (_mean(jax.nn.softplus(-real_logits), real_weights)
          + _mean(jax.nn.softplus(fake_logits), fake_weights))


def minimax_generator_loss(
    fake_logits: ArrayLike,
    *,
    fake_weights: Optional[ArrayLike] = None,
) -> jax.Array:
  """Saturating generator loss ``E_Q[log(1 - D)] = -E_Q[softplus(psi)]``.

  The generator's side of Goodfellow's zero-sum game. Its gradient
  ``-sigmoid(psi) / B`` per logit vanishes where the discriminator confidently
  rejects the samples (``psi -> -inf``), the saturation the non-saturating loss
  avoids. With the discriminator fixed at its optimum, its gradient with respect
  to the generator equals the gradient of ``2 JSD(P || Q)``.

  Args:
    fake_logits: discriminator logits on generated samples, any shape.
    fake_weights: optional weights of the fake examples.

  Returns:
    The scalar loss.

  References:
    Goodfellow et al., "Generative Adversarial Nets", 2014.
  """
  fake_logits = _as_float(fake_logits)
  return -_mean(jax.nn.softplus(fake_logits), fake_weights)


def non_saturating_generator_loss(
    fake_logits: ArrayLike,
    *,
    fake_weights: Optional[ArrayLike] = None,
) -> jax.Array:
  """Non-saturating (``-log D`` trick) generator loss ``-E_Q[log D]``.

  Computed as ``E_Q[softplus(-psi)]``; its gradient ``-sigmoid(-psi) / B`` per
  logit stays large where the discriminator rejects the samples. Arjovsky &
  Bottou (2017, Thm. 2.5) show that with the discriminator fixed at its optimum
  its gradient equals the gradient of ``KL(Q || P) - 2 JSD(Q || P)``.

  Args:
    fake_logits: discriminator logits on generated samples, any shape.
    fake_weights: optional weights of the fake examples.

  Returns:
    The scalar loss.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> g = jax.grad(non_saturating_generator_loss)(jnp.array([-100.0, 0.0]))
    >>> [round(float(x), 4) for x in g]  # -sigmoid(-psi) / B: no saturation
    [-0.5, -0.25]

  References:
    Goodfellow et al., "Generative Adversarial Nets", 2014.
    Arjovsky & Bottou, "Towards Principled Methods for Training Generative
    Adversarial Networks", 2017.
  """
  fake_logits = _as_float(fake_logits)
  return _mean(jax.nn.softplus(-fake_logits), fake_weights)


# --------------------------------------------------------------------------
# Critic losses: Wasserstein, hinge, least squares.
# --------------------------------------------------------------------------


def wasserstein_discriminator_loss(
    real_logits: ArrayLike,
    fake_logits: ArrayLike,
    *,
    real_weights: Optional[ArrayLike] = None,
    fake_weights: Optional[ArrayLike] = None,
) -> jax.Array:
  """Wasserstein critic loss ``E_Q[f] - E_P[f]`` on raw critic outputs ``f``.

  Minimizing it over 1-Lipschitz critics (enforced elsewhere: weight clipping or
  a gradient penalty) gives minus the Wasserstein-1 distance.

  Args:
    real_logits: critic outputs on data samples, any shape.
    fake_logits: critic outputs on generated samples, any shape.
    real_weights: optional weights of the real examples.
    fake_weights: optional weights of the fake examples.

  Returns:
    The scalar loss.

  References:
    Arjovsky, Chintala & Bottou, "Wasserstein GAN", 2017.
  """
  real_logits, fake_logits = _as_float(real_logits), _as_float(fake_logits)
  return _mean(fake_logits, fake_weights) - _mean(real_logits, real_weights)


def wasserstein_generator_loss(
    fake_logits: ArrayLike,
    *,
    fake_weights: Optional[ArrayLike] = None,
) -> jax.Array:
  """Wasserstein generator loss ``-E_Q[f]``.

  Args:
    fake_logits: critic outputs on generated samples, any shape.
    fake_weights: optional weights of the fake examples.

  Returns:
    The scalar loss.

  References:
    Arjovsky, Chintala & Bottou, "Wasserstein GAN", 2017.
  """
  fake_logits = _as_float(fake_logits)
  return -_mean(fake_logits, fake_weights)


def hinge_discriminator_loss(
    real_logits: ArrayLike,
    fake_logits: ArrayLike,
    *,
    real_weights: Optional[ArrayLike] = None,
    fake_weights: Optional[ArrayLike] = None,
) -> jax.Array:
  """Hinge discriminator loss ``E_P[relu(1 - f)] + E_Q[relu(1 + f)]``.

  Args:
    real_logits: discriminator outputs on data samples, any shape.
    fake_logits: discriminator outputs on generated samples, any shape.
    real_weights: optional weights of the real examples.
    fake_weights: optional weights of the fake examples.

  Returns:
    The scalar loss.

  References:
    Lim & Ye, "Geometric GAN", 2017.
  """
  real_logits, fake_logits = _as_float(real_logits), _as_float(fake_logits)
  return (_mean(jax.nn.relu(1.0 - real_logits), real_weights)
          + _mean(jax.nn.relu(1.0 + fake_logits), fake_weights))


def hinge_generator_loss(
    fake_logits: ArrayLike,
    *,
    fake_weights: Optional[ArrayLike] = None,
) -> jax.Array:
  """Hinge-GAN generator loss ``-E_Q[f]``.

  Args:
    fake_logits: discriminator outputs on generated samples, any shape.
    fake_weights: optional weights of the fake examples.

  Returns:
    The scalar loss.

  References:
    Lim & Ye, "Geometric GAN", 2017.
  """
  return wasserstein_generator_loss(fake_logits, fake_weights=fake_weights)


def least_squares_discriminator_loss(
    real_logits: ArrayLike,
    fake_logits: ArrayLike,
    *,
    real_weights: Optional[ArrayLike] = None,
    fake_weights: Optional[ArrayLike] = None,
) -> jax.Array:
  """Least-squares discriminator loss ``0.5 E_P[(f - 1)^2] + 0.5 E_Q[f^2]``.

  Targets 1 for data and 0 for samples, on the raw output ``f`` (no sigmoid).

  Args:
    real_logits: discriminator outputs on data samples, any shape.
    fake_logits: discriminator outputs on generated samples, any shape.
    real_weights: optional weights of the real examples.
    fake_weights: optional weights of the fake examples.

  Returns:
    The scalar loss.

  References:
    Mao et al., "Least Squares Generative Adversarial Networks", 2017.
  """
  real_logits, fake_logits = _as_float(real_logits), _as_float(fake_logits)
  return (0.5 * _mean(jnp.square(real_logits - 1.0), real_weights)
          + 0.5 * _mean(jnp.square(fake_logits), fake_weights))


def least_squares_generator_loss(
    fake_logits: ArrayLike,
    *,
    fake_weights: Optional[ArrayLike] = None,
) -> jax.Array:
  """Least-squares generator loss ``0.5 E_Q[(f - 1)^2]``.

  Args:
    fake_logits: discriminator outputs on generated samples, any shape.
    fake_weights: optional weights of the fake examples.

  Returns:
    The scalar loss.

  References:
    Mao et al., "Least Squares Generative Adversarial Networks", 2017.
  """
  fake_logits = _as_float(fake_logits)
  return 0.5 * _mean(jnp.square(fake_logits - 1.0), fake_weights)


# --------------------------------------------------------------------------
# f-GAN (Nowozin et al., 2016).
# --------------------------------------------------------------------------
#
# Generator functions f (D_f(P || Q) = E_Q[f(p / q)]), for reference:
#   kl                 u log u
#   reverse_kl         -log u
#   pearson            (u - 1)^2
#   squared_hellinger  (sqrt(u) - 1)^2
#   js                 u log u - (u + 1) log((u + 1) / 2)   (D_f = 2 JSD)
#   gan                u log u - (u + 1) log(u + 1)         (D_f = 2 JSD - 2 log 2)

_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "kl": lambda v: v,
    "reverse_kl": lambda v: -jnp.exp(-v),
    "pearson": lambda v: v,
    "squared_hellinger": lambda v: -jnp.expm1(-v),
    "js": lambda v: _LOG2 + jax.nn.log_sigmoid(v),
    "gan": jax.nn.log_sigmoid,
}

# f*(g_f(v)) simplified by hand so that no cancellation or overflow happens
# inside the composite; what overflow remains is that of the true value.
_CONJUGATE_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "kl": lambda v: jnp.exp(v - 1.0),
    "reverse_kl": lambda v: v - 1.0,
    "pearson": lambda v: 0.25 * jnp.square(v) + v,
    "squared_hellinger": jnp.expm1,
    "js": lambda v: jax.nn.softplus(v) - _LOG2,
    "gan": jax.nn.softplus,
}

# f*''(g_f(v)); for js and gan sigmoid(v) / sigmoid(-v)^2 is formed in log space.
_CURVATURES: dict[str, Callable[[jax.Array], jax.Array]] = {
    "kl": lambda v: jnp.exp(v - 1.0),
    "reverse_kl": lambda v: jnp.exp(2.0 * v),
    "pearson": lambda v: jnp.full_like(v, 0.5),
    "squared_hellinger": lambda v: 2.0 * jnp.exp(3.0 * v),
    "js": lambda v: jnp.exp(jax.nn.log_sigmoid(v)
                            - 2.0 * jax.nn.log_sigmoid(-v)),
    "gan": lambda v: jnp.exp(jax.nn.log_sigmoid(v)
                             - 2.0 * jax.nn.log_sigmoid(-v)),
}


def _twice_exp(v: jax.Array) -> jax.Array:
  # 2 exp(v) as (2 exp(v/2)) exp(v/2): exp(v + log 2) would round the shifted
  # exponent, and 2 * exp(v) loses the values just above the smallest normal
  # float where exp(v) alone is subnormal (flushed to 0 on CPU). Both halves
  # stay normal, and the product over- or underflows only where 2 exp(v) does.
  half = jnp.exp(0.5 * v)
  return (2.0 * half) * half


# f*''(g_f(v)) * g_f'(v)^2, the weight of ||grad_x v||^2 in Roth's f-GAN
# regularizer, simplified by hand: for reverse_kl, squared_hellinger, js and gan
# one factor grows exponentially in v while the other vanishes, so either alone
# overflows or underflows long before their product does.
_PENALTY_WEIGHTS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "kl": lambda v: jnp.exp(v - 1.0),
    "reverse_kl": jnp.ones_like,
    "pearson": lambda v: jnp.full_like(v, 0.5),
    "squared_hellinger": _twice_exp,
    "js": jax.nn.sigmoid,
    "gan": jax.nn.sigmoid,
}


def _conjugate_in_domain(
    t: jax.Array,
    inside: jax.Array,
    safe_t: float,
    formula: Callable[[jax.Array], jax.Array],
) -> jax.Array:
  # The convex conjugate is +inf outside its effective domain. The inner where
  # keeps the formula off invalid inputs so that no NaN reaches the gradient.
  value = formula(jnp.where(inside, t, safe_t))
  return jnp.where(inside, value, jnp.inf)


_CONJUGATES: dict[str, Callable[[jax.Array], jax.Array]] = {
    "kl": lambda t: jnp.exp(t - 1.0),
    "reverse_kl": lambda t: _conjugate_in_domain(
        t, t < 0, -1.0, lambda s: -1.0 - jnp.log(-s)),
    "pearson": lambda t: 0.25 * jnp.square(t) + t,
    "squared_hellinger": lambda t: _conjugate_in_domain(
        t, t < 1, 0.0, lambda s: s / (1.0 - s)),
    # -log(2 - e^t) = -log 2 - log(-expm1(t - log 2)): accurate near t = log 2.
    "js": lambda t: _conjugate_in_domain(
        t, t < _LOG2, 0.0, lambda s: -_LOG2 - jnp.log(-jnp.expm1(s - _LOG2))),
    "gan": lambda t: _conjugate_in_domain(
        t, t < 0, -1.0, lambda s: -jnp.log(-jnp.expm1(s))),
}


def fgan_activation(v: ArrayLike, *, divergence: str) -> jax.Array:
  """Output activation ``T = g_f(v)`` mapping a raw output into ``dom f*``.

  ============================  ======================
  divergence                    ``g_f(v)``
  ============================  ======================
  ``kl``                        ``v``
  ``reverse_kl``                ``-exp(-v)``
  ``pearson``                   ``v``
  ``squared_hellinger``         ``1 - exp(-v)``
  ``js``                        ``log 2 - softplus(-v)``
  ``gan``                       ``-softplus(-v)``
  ============================  ======================

  Args:
    v: raw discriminator outputs, any shape.
    divergence: one of :data:`DIVERGENCES`.

  Returns:
    ``g_f(v)``, same shape as ``v``. For ``reverse_kl`` and
    ``squared_hellinger`` it is ``-inf`` where ``exp(-v)`` overflows
    (``v < -88`` in float32).

  Raises:
    ValueError: if ``divergence`` is unknown.

  References:
    Nowozin, Cseke & Tomioka, "f-GAN", 2016, Table 2.
  """
  _check_divergence(divergence)
  return _ACTIVATIONS[divergence](_as_float(v))


def fgan_conjugate(t: ArrayLike, *, divergence: str) -> jax.Array:
  """Fenchel conjugate ``f*(t)`` of the divergence's generator function ``f``.

  ============================  ======================  ================
  divergence                    ``f*(t)``               domain
  ============================  ======================  ================
  ``kl``                        ``exp(t - 1)``          all ``t``
  ``reverse_kl``                ``-1 - log(-t)``        ``t < 0``
  ``pearson``                   ``t^2 / 4 + t``         all ``t``
  ``squared_hellinger``         ``t / (1 - t)``         ``t < 1``
  ``js``                        ``-log(2 - exp(t))``    ``t < log 2``
  ``gan``                       ``-log(1 - exp(t))``    ``t < 0``
  ============================  ======================  ================

  Outside its domain the conjugate is ``+inf`` (the supremum defining it is
  unbounded), and so is the value returned there; the gradient there is 0. In
  losses prefer :func:`fgan_conjugate_activation`, which evaluates
  ``f*(g_f(v))`` without first rounding ``g_f(v)`` onto the domain boundary.

  Args:
    t: points ``T``, any shape.
    divergence: one of :data:`DIVERGENCES`.

  Returns:
    ``f*(t)``, same shape as ``t``.

  Raises:
    ValueError: if ``divergence`` is unknown.

  References:
    Nowozin, Cseke & Tomioka, "f-GAN", 2016, Table 2.
  """
  _check_divergence(divergence)
  return _CONJUGATES[divergence](_as_float(t))


def fgan_conjugate_activation(v: ArrayLike, *, divergence: str) -> jax.Array:
  """The composite ``f*(g_f(v))`` in a closed form that is stable in ``v``.

  ============================  =========================
  divergence                    ``f*(g_f(v))``
  ============================  =========================
  ``kl``                        ``exp(v - 1)``
  ``reverse_kl``                ``v - 1``
  ``pearson``                   ``v^2 / 4 + v``
  ``squared_hellinger``         ``exp(v) - 1``
  ``js``                        ``softplus(v) - log 2``
  ``gan``                       ``softplus(v)``
  ============================  =========================

  Composing :func:`fgan_conjugate` with :func:`fgan_activation` instead would
  round ``g_f(v)`` onto the boundary of the conjugate's domain for large ``v``
  (e.g. ``log_sigmoid(20) == 0`` in float32) and return ``inf``.

  Args:
    v: raw discriminator outputs, any shape.
    divergence: one of :data:`DIVERGENCES`.

  Returns:
    ``f*(g_f(v))``, same shape as ``v``. Exact wherever the value is
    representable; for ``kl`` and ``squared_hellinger`` it is ``+inf`` where the
    true value exceeds the float range (``v > 88`` in float32).

  Raises:
    ValueError: if ``divergence`` is unknown.

  Example:
    >>> import jax.numpy as jnp
    >>> float(fgan_conjugate_activation(jnp.float32(100.0), divergence="gan"))
    100.0
    >>> float(fgan_conjugate(fgan_activation(jnp.float32(100.0), divergence="gan"),
    ...                      divergence="gan"))
    inf

  References:
    Nowozin, Cseke & Tomioka, "f-GAN", 2016, Table 2.
  """
  _check_divergence(divergence)
  return _CONJUGATE_ACTIVATIONS[divergence](_as_float(v))


def fgan_conjugate_curvature(v: ArrayLike, *, divergence: str) -> jax.Array:
  """Second derivative of the conjugate at the activation, ``f*''(g_f(v))``.

  The weight of ``||grad_x T||^2`` in the f-GAN gradient-norm regularizer of
  Roth et al. (2017), ``E_Q[f*''(T) ||grad_x T||^2]``. Closed forms in ``v``:
  ``kl`` ``exp(v - 1)``, ``reverse_kl`` ``exp(2 v)``, ``pearson`` ``1/2``,
  ``squared_hellinger`` ``2 exp(3 v)``, ``js`` and ``gan``
  ``sigmoid(v) / sigmoid(-v)^2``. Values grow exponentially in ``v`` and are
  ``+inf`` where the true value overflows (from ``v`` of about 44 for
  ``reverse_kl``, ``js`` and ``gan``), while ``||grad_x T||^2`` vanishes as
  fast: to evaluate the regularizer use :func:`fgan_penalty_weight`, the
  weight of ``||grad_x v||^2``, whose value stays moderate.

  Args:
    v: raw discriminator outputs, any shape.
    divergence: one of :data:`DIVERGENCES`.

  Returns:
    ``f*''(g_f(v))``, same shape as ``v``.

  Raises:
    ValueError: if ``divergence`` is unknown.

  References:
    Roth et al., "Stabilizing Training of Generative Adversarial Networks
    through Regularization", 2017.
  """
  _check_divergence(divergence)
  return _CURVATURES[divergence](_as_float(v))


def fgan_penalty_weight(v: ArrayLike, *, divergence: str) -> jax.Array:
  """Weight ``f*''(g_f(v)) g_f'(v)^2`` of ``||grad_x v||^2`` in Roth's f-GAN regularizer.

  Roth et al.'s regularizer is ``E_Q[f*''(T) ||grad_x T||^2]`` with
  ``T = g_f(v)``. By the chain rule ``grad_x T = g_f'(v) grad_x v``, so it is
  ``E_Q[w(v) ||grad_x v||^2]`` with the weight returned here. Derived from the
  table of :func:`fgan_activation` and :func:`fgan_conjugate`:

  ============================  =====================  ===================  ================
  divergence                    ``f*''(g_f(v))``       ``g_f'(v)^2``        weight ``w(v)``
  ============================  =====================  ===================  ================
  ``kl``                        ``exp(v - 1)``         ``1``                ``exp(v - 1)``
  ``reverse_kl``                ``exp(2 v)``           ``exp(-2 v)``        ``1``
  ``pearson``                   ``1/2``                ``1``                ``1/2``
  ``squared_hellinger``         ``2 exp(3 v)``         ``exp(-2 v)``        ``2 exp(v)``
  ``js``                        ``s(v) / s(-v)^2``     ``s(-v)^2``          ``s(v)``
  ``gan``                       ``s(v) / s(-v)^2``     ``s(-v)^2``          ``s(v)``
  ============================  =====================  ===================  ================

  (``s`` the logistic sigmoid; for ``js`` ``exp(g_f(v)) = 2 s(v)``, for ``gan``
  ``exp(g_f(v)) = s(v)``.) Evaluating the two factors separately fails in
  float32 although the product is moderate: ``g_f(v)`` rounds onto the edge of
  the conjugate's domain (``log_sigmoid(20) == 0``), where ``f*''`` is infinite,
  and ``exp(2 v) * exp(-2 v)`` becomes ``inf * 0`` from ``v`` of about 45 on.

  Args:
    v: raw discriminator outputs (logits), any shape.
    divergence: one of :data:`DIVERGENCES`.

  Returns:
    ``w(v)``, same shape and dtype as ``v``, finite and accurate to a few
    float ulps wherever the true value is representable. Where it is not, the
    value is what the true one rounds to: ``+inf`` for ``kl`` above
    ``v = 1 + log(max float)`` (89.7 in float32) and for ``squared_hellinger``
    above ``log(max float / 2)`` (88.0), as :func:`fgan_discriminator_loss`
    is for the same logits (its fake term grows as ``exp(v - 1)`` and
    ``exp(v) - 1``); a clipped finite weight would silently change the
    regularizer, an infinite one is caught by the training loop's check of
    non-finite losses. Below the smallest normal float (``v`` under about -87
    for ``kl``, ``js``, ``gan``) the weight underflows towards 0.

  Raises:
    ValueError: if ``divergence`` is unknown.

  Example:
    >>> import jax.numpy as jnp
    >>> v = jnp.array([0.0, 20.0, 100.0])
    >>> print(fgan_penalty_weight(v, divergence="gan"))
    [0.5 1.  1. ]
    >>> print(fgan_penalty_weight(v, divergence="reverse_kl"))
    [1. 1. 1.]

  References:
    Roth, Lucchi, Nowozin & Hofmann, "Stabilizing Training of Generative
    Adversarial Networks through Regularization", 2017.
    Nowozin, Cseke & Tomioka, "f-GAN", 2016, Table 2.
  """
  _check_divergence(divergence)
  return _PENALTY_WEIGHTS[divergence](_as_float(v))


def fgan_discriminator_loss(
    real_v: ArrayLike,
    fake_v: ArrayLike,
    *,
    divergence: str,
    real_weights: Optional[ArrayLike] = None,
    fake_weights: Optional[ArrayLike] = None,
) -> jax.Array:
  """f-GAN variational loss ``-(E_P[T] - E_Q[f*(T)])`` with ``T = g_f(v)``.

  Its minimum over all functions ``T`` is ``-D_f(P || Q)``, reached at
  ``T = f'(p / q)``. The ``gan`` divergence gives exactly
  :func:`minimax_discriminator_loss`, ``js`` the same minus ``2 log 2``.

  Numerics: for ``js``, ``gan`` and ``pearson`` value and gradient are finite
  for any finite ``v``. For ``kl``, ``reverse_kl`` and ``squared_hellinger`` the
  true loss grows like ``exp(|v|)``; it is computed exactly wherever it is
  representable (float32: ``|v|`` up to about 88) and is ``+inf`` beyond, never
  NaN.

  Args:
    real_v: raw discriminator outputs on data samples, any shape.
    fake_v: raw discriminator outputs on generated samples, any shape.
    divergence: one of :data:`DIVERGENCES`.
    real_weights: optional weights of the real examples.
    fake_weights: optional weights of the fake examples.

  Returns:
    The scalar loss.

  Raises:
    ValueError: if ``divergence`` is unknown.

  References:
    Nowozin, Cseke & Tomioka, "f-GAN", 2016, eq. (6).
  """
  _check_divergence(divergence)
  real_v, fake_v = _as_float(real_v), _as_float(fake_v)
  real_t = _ACTIVATIONS[divergence](real_v)
  fake_conj = _CONJUGATE_ACTIVATIONS[divergence](fake_v)
  return -_mean(real_t, real_weights) + _mean(fake_conj, fake_weights)


def fgan_generator_loss(
    fake_v: ArrayLike,
    *,
    divergence: str,
    non_saturating: bool = True,
    fake_weights: Optional[ArrayLike] = None,
) -> jax.Array:
  """f-GAN generator loss: ``-E_Q[T]`` (non-saturating) or ``-E_Q[f*(T)]``.

  The saturating form is the generator's side of the saddle point; the
  non-saturating one (Nowozin et al., Sec. 3.2) is the analogue of the
  ``-log D`` trick (for ``gan`` they coincide with
  :func:`non_saturating_generator_loss` and :func:`minimax_generator_loss`).
  Numerics as in :func:`fgan_discriminator_loss`.

  Args:
    fake_v: raw discriminator outputs on generated samples, any shape.
    divergence: one of :data:`DIVERGENCES`.
    non_saturating: use ``-E_Q[T]`` if true, else ``-E_Q[f*(T)]``.
    fake_weights: optional weights of the fake examples.

  Returns:
    The scalar loss.

  Raises:
    ValueError: if ``divergence`` is unknown.

  References:
    Nowozin, Cseke & Tomioka, "f-GAN", 2016, Sec. 3.2.
  """
  _check_divergence(divergence)
  fake_v = _as_float(fake_v)
  if non_saturating:
    return -_mean(_ACTIVATIONS[divergence](fake_v), fake_weights)
  return -_mean(_CONJUGATE_ACTIVATIONS[divergence](fake_v), fake_weights)


# --------------------------------------------------------------------------
# Discrete-distribution helpers for the theory (Arjovsky & Bottou, 2017).
# --------------------------------------------------------------------------


def kl_divergence(p: ArrayLike, q: ArrayLike) -> jax.Array:
  """``KL(p || q) = sum p log(p / q)`` of discrete distributions, in nats.

  Reduces over the last axis (leading axes batch). ``0 log 0 = 0``; the value is
  ``+inf`` where ``p > 0`` and ``q = 0``. ``p`` and ``q`` should each sum to 1.

  Args:
    p: probabilities, shape ``[..., K]``.
    q: probabilities, shape broadcastable with ``p``.

  Returns:
    The divergence, shape ``[...]``.

  Example:
    >>> import jax.numpy as jnp
    >>> round(float(kl_divergence(jnp.array([0.5, 0.5, 0.0]),
    ...                           jnp.array([0.25, 0.25, 0.5]))), 4)  # log 2
    0.6931
  """
  p, q = _as_float(p), _as_float(q)
  return jnp.sum(jax.scipy.special.xlogy(p, p) - jax.scipy.special.xlogy(p, q),
                 axis=-1)


def jensen_shannon(p: ArrayLike, q: ArrayLike) -> jax.Array:
  """Jensen-Shannon divergence ``KL(p || m) / 2 + KL(q || m) / 2``, ``m = (p + q) / 2``.

  In nats, between 0 and ``log 2`` (disjoint supports). Reduces over the last
  axis.

  Args:
    p: probabilities, shape ``[..., K]``.
    q: probabilities, shape broadcastable with ``p``.

  Returns:
    The divergence, shape ``[...]``.
  """
  p, q = _as_float(p), _as_float(q)
  m = 0.5 * (p + q)
  return 0.5 * kl_divergence(p, m) + 0.5 * kl_divergence(q, m)


def optimal_discriminator_logit(
    p_data: ArrayLike, p_model: ArrayLike) -> jax.Array:
  """Logit of the optimal discriminator ``D* = p_data / (p_data + p_model)``.

  ``psi* = log p_data - log p_model``: ``+inf`` off the model's support,
  ``-inf`` off the data's, and 0 (``D* = 1/2``, an arbitrary choice that does
  not change any loss) where both densities vanish. For the ``js`` and ``gan``
  f-GANs it is also the optimal raw output ``v``.

  Args:
    p_data: data density or probabilities, any shape.
    p_model: model density or probabilities, same shape.

  Returns:
    ``psi*``, same shape.

  References:
    Goodfellow et al., "Generative Adversarial Nets", 2014, Prop. 1.
  """
  p_data, p_model = _as_float(p_data), _as_float(p_model)
  both_zero = (p_data == 0) & (p_model == 0)
  logit = jnp.log(jnp.where(both_zero, 1.0, p_data)) - jnp.log(
      jnp.where(both_zero, 1.0, p_model))
  return logit


# --------------------------------------------------------------------------
# Registry.
# --------------------------------------------------------------------------


class Objective(NamedTuple):
  """A discriminator loss and a generator loss that play one game.

  Attributes:
    discriminator: ``(real_logits, fake_logits, **weights) -> scalar``.
    generator: ``(fake_logits, **weights) -> scalar``.
  """

  discriminator: Callable[..., jax.Array]
  generator: Callable[..., jax.Array]


def _fixed(discriminator, generator):
  def make(**kwargs):
    del kwargs  # Validated by get_objective: these objectives take none.
    return Objective(discriminator, generator)
  return make


def _fgan(divergence):
  def make(non_saturating=True):
    if not isinstance(non_saturating, (bool, np.bool_)):
      raise ValueError(
          f"non_saturating must be a Python bool, got {non_saturating!r}; "
          "valid: True, False")
    return Objective(
        functools.partial(fgan_discriminator_loss, divergence=divergence),
        functools.partial(fgan_generator_loss, divergence=divergence,
                          non_saturating=bool(non_saturating)))
  return make


_REGISTRY: dict[str, tuple[Callable[..., Objective], tuple[str, ...]]] = {
    "minimax": (_fixed(minimax_discriminator_loss, minimax_generator_loss), ()),
    "non_saturating": (_fixed(minimax_discriminator_loss,
                              non_saturating_generator_loss), ()),
    "wasserstein": (_fixed(wasserstein_discriminator_loss,
                           wasserstein_generator_loss), ()),
    "hinge": (_fixed(hinge_discriminator_loss, hinge_generator_loss), ()),
    "least_squares": (_fixed(least_squares_discriminator_loss,
                             least_squares_generator_loss), ()),
}
for _d in DIVERGENCES:
  _REGISTRY["fgan_" + _d] = (_fgan(_d), ("non_saturating",))
del _d

# Names accepted by get_objective.
OBJECTIVES = tuple(_REGISTRY)


def get_objective(name: str, **kwargs: Any) -> Objective:
  """Looks up a GAN objective by name.

  Args:
    name: one of :data:`OBJECTIVES`: ``minimax`` (saturating generator),
      ``non_saturating`` (``-log D`` generator), ``wasserstein``, ``hinge``,
      ``least_squares``, or ``fgan_<divergence>`` for a divergence in
      :data:`DIVERGENCES`.
    **kwargs: options of the objective; only the f-GAN objectives take one,
      ``non_saturating`` (bool, default True) choosing the generator loss
      ``-E_Q[T]`` over ``-E_Q[f*(T)]``.

  Returns:
    The :class:`Objective` pair of pure loss functions.

  Raises:
    ValueError: for an unknown name or divergence (the message lists the valid
      ones) or an option the objective does not take.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> objective = get_objective("fgan_js", non_saturating=False)
    >>> loss = jax.jit(objective.generator)(jnp.ones(3))  # -(softplus(1) - log 2)
    >>> round(float(loss), 4)
    -0.6201
  """
  if name not in _REGISTRY:
    if isinstance(name, str) and name.startswith("fgan_"):
      raise ValueError(
          f"unknown f-GAN divergence {name[len('fgan_'):]!r} in objective "
          f"{name!r}; valid divergences: {', '.join(DIVERGENCES)} "
          f"(objective names: {', '.join(OBJECTIVES)})")
    raise ValueError(
        f"unknown objective {name!r}; valid: {', '.join(OBJECTIVES)}")
  make, options = _REGISTRY[name]
  unknown = sorted(set(kwargs) - set(options))
  if unknown:
    raise ValueError(
        f"objective {name!r} got unknown option(s) {', '.join(unknown)}; "
        f"valid: {', '.join(options) if options else 'none'}")
  return make(**kwargs)
