"""Gradient penalties on the discriminator's input gradients.

Every penalty is a pure function of a discriminator *function* ``d_fn(x) -> logits``
(``x`` a batch ``[B, ...]``, logits ``[B]`` or ``[B, 1]``), so it works with any
Flax module: the caller closes over the variables,

>>> import flax.linen as nn
>>> import jax, jax.numpy as jnp
>>> model = nn.Dense(1)
>>> x = jnp.ones((4, 3))
>>> variables = model.init(jax.random.key(0), x)
>>> value, diagnostics = r1_penalty(lambda x: model.apply(variables, x), x)
>>> value.shape, diagnostics['logits_real'].shape
((), (4,))

Conventions shared by all penalties:

* Input gradients are taken per example as ``jax.grad`` of ``sum(logits)`` with
  respect to the input batch. This is the per-example gradient when examples are
  independent, which is what a penalty assumes. (With batch-dependent layers such
  as batch norm in training mode it is the gradient of the batch sum, the usual
  practical choice; the critic of WGAN-GP should have no batch norm anyway.)
* The logits are obtained in the same forward pass as the input gradient and are
  returned in the diagnostics (``'logits_real'``/``'logits_fake'``) so a caller can
  reuse them in its loss instead of running the discriminator again.
* The returned value is the *unweighted* regularizer; the game multiplies it by its
  weight (``gamma / 2`` for Roth and R1/R2, ``lambda`` for WGAN-GP/DRAGAN/CT).
* With ``has_aux=True`` the discriminator function returns ``(logits, aux)`` (for
  example the batch statistics a Flax ``apply(..., mutable=['batch_stats'])``
  returns) and the aux is returned under ``diagnostics['d_aux']``.
* The value is differentiable with respect to anything ``d_fn`` closes over: the
  parameter gradient of an input-gradient penalty is a gradient of a gradient
  (double backprop), which JAX derives automatically.

Precision, for discriminators that compute in bfloat16 (``dtype='bfloat16'`` in
``gan_jax.models``, which casts its inputs itself):

* Inputs are promoted to at least float32 before ``d_fn`` sees them (bfloat16
  real or fake batches, WGAN-GP's interpolates, DRAGAN's perturbed points), so
  input gradients are taken with respect to float32 inputs and come back in
  float32.
* Logits (and CT's features) are promoted to at least float32 as ``d_fn``
  returns them, so Roth's weights, the CT gaps and every diagnostic are
  computed from float32 logits.
* Squared gradient norms are reduced in at least float32.
* Norms (WGAN-GP, DRAGAN, CT's feature distance, the ``grad_norm``
  diagnostics) use a guarded square root: ``sqrt(s)`` for ``s > 0`` and 0 at an
  exact ``s = 0`` with derivative 0 there (a subgradient of the norm at 0)
  instead of ``sqrt``'s infinite one, whose product with the zero derivative of
  ``s`` would be NaN. The value is exact everywhere, unbiased by any epsilon.
  An exact zero is ordinary: a ReLU critic with every unit inactive around an
  interpolate, or two CT passes with identical dropout masks.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import losses

Array = jax.Array
Diagnostics = dict[str, Any]
PenaltyOutput = tuple[Array, Diagnostics]


# --------------------------------------------------------------------------------------
# Shared helpers.


def _float_dtype(*xs) -> Any:
  dtype = jnp.result_type(*xs)
  # Random interpolation weights need a floating dtype even for integer images;
  # bfloat16 batches are promoted (see "Precision" above).
  if not jnp.issubdtype(dtype, jnp.inexact):
    return jnp.result_type(float)
  return jnp.promote_types(dtype, jnp.float32)


def _full_precision(x: Array) -> Array:
  """``x`` in at least float32 (bfloat16 and float16 are promoted)."""
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.inexact):
    return x
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def _check_batch(x: Array, name: str) -> None:
  if jnp.ndim(x) < 1:
    raise ValueError(
        f"{name} must be a batch of shape [B, ...] with at least one axis; got shape "
        f"{jnp.shape(x)}")


def _check_same_trailing_shape(real: Array, fake: Array) -> None:
  _check_batch(real, "real")
  _check_batch(fake, "fake")
  if jnp.shape(real)[1:] != jnp.shape(fake)[1:]:
    raise ValueError(
        "real and fake must have the same per-example (trailing) shape; got real "
        f"{jnp.shape(real)} and fake {jnp.shape(fake)}")


def _check_same_shape(real: Array, fake: Array) -> None:
  _check_same_trailing_shape(real, fake)
  if jnp.shape(real) != jnp.shape(fake):
    raise ValueError(
        "real and fake must have the same shape (same batch size) to be interpolated "
        f"example by example; got real {jnp.shape(real)} and fake {jnp.shape(fake)}")


def _flat_logits(logits: Array, batch_size: int, name: str) -> Array:
  shape = jnp.shape(logits)
  ok = (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)) and shape[0] == batch_size
  if not ok:
    raise ValueError(
        f"the discriminator must return logits of shape [B] or [B, 1] with B = "
        f"{batch_size} (the batch size of {name}); got logits of shape {shape}")
  return _full_precision(jnp.reshape(logits, (batch_size,)))


def _check_divergence(divergence: Any) -> None:
  if divergence not in losses.DIVERGENCES:
    raise ValueError(
        f"unknown divergence {divergence!r}; valid: {', '.join(losses.DIVERGENCES)}")


def _squared_norms(g: Array) -> Array:
  """Per-example squared Euclidean norm over all trailing axes, in at least float32."""
  g = _full_precision(g)
  return jnp.sum(jnp.square(jnp.reshape(g, (g.shape[0], -1))), axis=1)


def _safe_sqrt(sq: Array) -> Array:
  """``sqrt(sq)``, with value and derivative 0 at an exact ``sq = 0``.

  ``sqrt`` has an infinite derivative at 0 (a zero input gradient, or identical
  dropout passes in CT); chained with the zero derivative of ``sq = |g|^2`` it
  gives NaN. The inner ``where`` keeps the untaken branch's derivative finite,
  the outer one selects 0 there; every other point is exact.
  """
  positive = sq > 0
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def _split_output(out: Any, has_aux: bool) -> tuple[Array, Any]:
  if not has_aux:
    return out, None
  if not (isinstance(out, (tuple, list)) and len(out) == 2):
    raise ValueError(
        "with has_aux=True the discriminator must return a pair (logits, aux); got "
        f"{type(out).__name__}")
  return out[0], out[1]


def _logits_and_input_grad(
    d_fn: Callable[..., Any],
    x: Array,
    *,
    has_aux: bool,
    name: str,
) -> tuple[Array, Array, Any]:
  """One forward pass giving the logits and their per-example input gradient.

  Args:
    d_fn: discriminator function ``x -> logits`` (or ``(logits, aux)``).
    x: input batch ``[B, ...]``.
    has_aux: whether ``d_fn`` returns ``(logits, aux)``.
    name: name of ``x`` for error messages.

  Returns:
    ``(logits [B], grad [B, ...], aux)`` where ``grad`` is the gradient of
    ``sum(logits)`` w.r.t. ``x``; ``x`` is promoted to at least float32 first
    and the logits as they leave ``d_fn``, so both are at least float32.
  """
  batch_size = jnp.shape(x)[0]
  x = _full_precision(x)

  def fn(inputs):
    logits, aux = _split_output(d_fn(inputs), has_aux)
    logits = _flat_logits(logits, batch_size, name)
    return logits, aux

  logits, vjp_fn, aux = jax.vjp(fn, x, has_aux=True)
  (grad,) = vjp_fn(jnp.ones_like(logits))
  return logits, grad, aux


def _with_aux(diagnostics: Diagnostics, aux: Any, has_aux: bool) -> Diagnostics:
  if has_aux:
    diagnostics["d_aux"] = aux
  return diagnostics


# --------------------------------------------------------------------------------------
# Roth et al.: noise-induced regularizers.


def roth_js_penalty(
    d_fn: Callable[[Array], Any],
    real: Array,
    fake: Array,
    *,
    has_aux: bool = False,
) -> PenaltyOutput:
  """Roth et al.'s gradient-norm regularizer for the JS (standard) GAN.

  ``Omega_JS = E_P[(1 - D(x))^2 ||grad_x psi(x)||^2] + E_Q[D(x)^2 ||grad_x psi(x)||^2]``
  with ``D = sigmoid(psi)`` and ``psi`` the discriminator logit. The weights are
  computed from the logits as ``(1 - D)^2 = sigmoid(-psi)^2`` and
  ``D^2 = sigmoid(psi)^2``, exact for saturated logits, and always from logits in
  at least float32 (a bfloat16 discriminator's are promoted). The discriminator loss is
  ``loss_D + (gamma / 2) * Omega_JS``; ``gamma`` (default 2.0 for images, annealed;
  0.1 on the 3-D toy) is applied by the caller.

  Args:
    d_fn: discriminator ``x -> logits`` (``[B]`` or ``[B, 1]``), or
      ``x -> (logits, aux)`` with ``has_aux=True``.
    real: data batch ``[B_P, ...]``.
    fake: generated batch ``[B_Q, ...]`` with the same trailing shape.
    has_aux: whether ``d_fn`` returns ``(logits, aux)``. ``d_fn`` is evaluated
      twice, first on ``real`` then on ``fake``; ``'d_aux'`` is the aux of the
      second (fake) call.

  Returns:
    ``(omega, diagnostics)``: the unweighted scalar ``Omega_JS`` and a dict with
    ``'logits_real'`` ``[B_P]``, ``'logits_fake'`` ``[B_Q]``, ``'grad_norm_real'``,
    ``'grad_norm_fake'`` (mean per-example ``||grad_x psi||``) and ``'d_aux'`` if
    ``has_aux``.

  Raises:
    ValueError: if ``real`` and ``fake`` differ in trailing shape or the logits do
      not have shape ``[B]``/``[B, 1]``.

  References:
    Roth, Lucchi, Nowozin, Hofmann, "Stabilizing Training of Generative Adversarial
    Networks through Regularization", NeurIPS 2017.
  """
  _check_same_trailing_shape(real, fake)
  logits_real, grad_real, _ = _logits_and_input_grad(
      d_fn, real, has_aux=has_aux, name="real")
  logits_fake, grad_fake, aux = _logits_and_input_grad(
      d_fn, fake, has_aux=has_aux, name="fake")
  sq_real = _squared_norms(grad_real)
  sq_fake = _squared_norms(grad_fake)
  omega = (jnp.mean(jnp.square(jax.nn.sigmoid(-logits_real)) * sq_real)
           + jnp.mean(jnp.square(jax.nn.sigmoid(logits_fake)) * sq_fake))
  diagnostics = {
      "logits_real": logits_real,
      "logits_fake": logits_fake,
      "grad_norm_real": jnp.mean(_safe_sqrt(sq_real)),
      "grad_norm_fake": jnp.mean(_safe_sqrt(sq_fake)),
  }
  return omega, _with_aux(diagnostics, aux, has_aux)


def conjugate_second_derivative(t: Array, *, divergence: str) -> Array:
  """Second derivative ``f*''(t)`` of the f-GAN conjugate, elementwise.

  Obtained by differentiating ``gan_jax.losses.fgan_conjugate`` twice with
  ``jax.grad`` (vectorized with ``jax.vmap``), so it always agrees with the
  conjugate the losses use. It is a function of ``T``; :func:`roth_fgan_penalty`
  does not use it, because ``T = g_f(v)`` rounds onto the domain's edge (where
  ``f*''`` is infinite) for confident logits; it uses the closed form
  ``gan_jax.losses.fgan_penalty_weight`` in ``v`` instead.

  Args:
    t: points in the conjugate's domain (any shape).
    divergence: one of the f-GAN divergences of ``gan_jax.losses``.

  Returns:
    ``f*''(t)``, same shape as ``t``.

  References:
    Nowozin, Cseke, Tomioka, "f-GAN: Training Generative Neural Samplers using
    Variational Divergence Minimization", NeurIPS 2016.
  """
  _check_divergence(divergence)
  t = jnp.asarray(t)
  if not jnp.issubdtype(t.dtype, jnp.inexact):
    t = t.astype(_float_dtype(t))

  def conjugate(s):
    return losses.fgan_conjugate(s, divergence=divergence)

  second = jax.vmap(jax.grad(jax.grad(conjugate)))
  return jnp.reshape(second(jnp.ravel(t)), t.shape)


def roth_fgan_penalty(
    d_fn: Callable[[Array], Any],
    fake: Array,
    *,
    divergence: str,
    has_aux: bool = False,
) -> PenaltyOutput:
  """Roth et al.'s gradient-norm regularizer for a general f-GAN.

  ``Omega_f = E_Q[f*''(T(x)) ||grad_x T(x)||^2]`` with ``T = g_f(v)`` the f-GAN
  output activation ``gan_jax.losses.fgan_activation`` of the logits ``v`` and
  ``f*''`` the second derivative of the conjugate
  ``gan_jax.losses.fgan_conjugate``. The discriminator loss is
  ``loss_D + (gamma / 2) * Omega_f``, ``gamma`` applied by the caller.

  Computed as ``E_Q[w(v) ||grad_x v||^2]``: since ``grad_x T = g_f'(v) grad_x v``
  the weight is ``w(v) = f*''(g_f(v)) g_f'(v)^2``, evaluated in closed form in
  ``v`` by ``gan_jax.losses.fgan_penalty_weight`` (e.g. ``sigmoid(v)`` for
  ``gan`` and ``js``, 1 for ``reverse_kl``), from the logits promoted to at least
  float32 (as a bfloat16 discriminator's are). Through ``T`` the computation would
  break down for confident fakes in float32: ``T`` rounds onto the edge of the
  conjugate's domain, where ``f*''`` is infinite, while ``||grad_x T||^2``
  underflows (from logits of about 20, 0 or NaN instead of a weight near 1).
  The value is finite for all finite logits except where the exact weight
  exceeds the float range (``kl`` beyond ``v`` of about 89.7,
  ``squared_hellinger`` beyond 88.0; see ``fgan_penalty_weight``).

  Args:
    d_fn: discriminator ``x -> logits`` (``[B]`` or ``[B, 1]``), or
      ``x -> (logits, aux)`` with ``has_aux=True``.
    fake: generated batch ``[B, ...]``.
    divergence: f-divergence name accepted by ``gan_jax.losses`` ('kl',
      'reverse_kl', 'pearson', 'squared_hellinger', 'js', 'gan').
    has_aux: whether ``d_fn`` returns ``(logits, aux)``; the aux of its single
      call is returned as ``'d_aux'``.

  Returns:
    ``(omega, diagnostics)``: the unweighted scalar ``Omega_f`` and a dict with
    ``'logits_fake'`` (the logits ``v``, ``[B]``), ``'t_fake'`` (``T``, ``[B]``),
    ``'grad_norm_fake'`` (mean ``||grad_x v||``, as in the other penalties),
    ``'weight_fake'`` (mean ``w(v)``) and ``'d_aux'`` if ``has_aux``.

  Raises:
    ValueError: for an unknown divergence or logits of the wrong shape.

  References:
    Roth, Lucchi, Nowozin, Hofmann, "Stabilizing Training of Generative Adversarial
    Networks through Regularization", NeurIPS 2017.
    Nowozin, Cseke, Tomioka, "f-GAN", NeurIPS 2016.
  """
  _check_divergence(divergence)
  _check_batch(fake, "fake")
  logits, grad, aux = _logits_and_input_grad(d_fn, fake, has_aux=has_aux, name="fake")
  sq = _squared_norms(grad)
  weight = losses.fgan_penalty_weight(logits, divergence=divergence)
  omega = jnp.mean(weight * sq)
  diagnostics = {
      "logits_fake": logits,
      "t_fake": losses.fgan_activation(logits, divergence=divergence),
      "grad_norm_fake": jnp.mean(_safe_sqrt(sq)),
      "weight_fake": jnp.mean(weight),
  }
  return omega, _with_aux(diagnostics, aux, has_aux)


# --------------------------------------------------------------------------------------
# Wasserstein-critic penalties.


def wgan_gp_penalty(
    d_fn: Callable[[Array], Any],
    real: Array,
    fake: Array,
    key: Array,
    *,
    target_norm: float | Array = 1.0,
    has_aux: bool = False,
) -> PenaltyOutput:
  """WGAN-GP two-sided gradient penalty on random interpolates.

  ``E[(||grad_x f(x_hat)||_2 - target_norm)^2]`` with
  ``x_hat = e * real + (1 - e) * fake`` and one ``e ~ U[0, 1]`` per example,
  drawn as ``jax.random.uniform(key, (B, 1, ..., 1), dtype)`` (one call, ``key``
  used as is) and broadcast over the trailing axes; ``dtype`` is the batches' float
  dtype promoted to at least float32, so the interpolates are float32 even for
  bfloat16 batches. The norm is the guarded square root of the module's
  "Precision" notes: exact, and with a finite parameter gradient where
  ``grad f(x_hat)`` is exactly 0 (the penalty's derivative in the norm is then
  taken as 0, a subgradient). Loss weight ``lambda`` (10 in the paper) applied
  by the caller.

  Args:
    d_fn: critic ``x -> scores`` (``[B]`` or ``[B, 1]``), or ``x -> (scores, aux)``
      with ``has_aux=True``.
    real: data batch ``[B, ...]``.
    fake: generated batch of the same shape.
    key: PRNG key for the interpolation weights.
    target_norm: the gradient norm the penalty pulls towards (may be traced).
    has_aux: whether ``d_fn`` returns ``(scores, aux)``; the aux of its single call
      (on ``x_hat``) is returned as ``'d_aux'``.

  Returns:
    ``(penalty, diagnostics)``: the unweighted scalar penalty and a dict with
    ``'logits_interp'`` (critic on ``x_hat``, ``[B]``), ``'grad_norm'`` (mean
    ``||grad f(x_hat)||``) and ``'d_aux'`` if ``has_aux``.

  Raises:
    ValueError: if ``real`` and ``fake`` differ in shape or the scores have the
      wrong shape.

  References:
    Gulrajani, Ahmed, Arjovsky, Dumoulin, Courville, "Improved Training of
    Wasserstein GANs", NeurIPS 2017.
  """
  _check_same_shape(real, fake)
  dtype = _float_dtype(real, fake)
  batch_size = jnp.shape(real)[0]
  e = jax.random.uniform(key, (batch_size,) + (1,) * (jnp.ndim(real) - 1), dtype)
  x_hat = e * real + (1 - e) * fake
  logits, grad, aux = _logits_and_input_grad(
      d_fn, x_hat, has_aux=has_aux, name="the interpolates")
  norms = _safe_sqrt(_squared_norms(grad))
  penalty = jnp.mean(jnp.square(norms - target_norm))
  diagnostics = {"logits_interp": logits, "grad_norm": jnp.mean(norms)}
  return penalty, _with_aux(diagnostics, aux, has_aux)


def ct_penalty(
    d_fn_features: Callable[[Array, Array], tuple[Array, Array]],
    real: Array,
    key: Array,
    *,
    margin: float | Array = 0.0,
    feature_weight: float | Array = 0.1,
    first_pass: tuple[Array, Array] | None = None,
) -> PenaltyOutput:
  """CT-GAN consistency term from two dropout-perturbed passes over real data.

  ``CT = E[max(0, |f(x') - f(x'')| + feature_weight * ||h(x') - h(x'')||_2 - margin)]``
  where ``x'`` and ``x''`` denote two passes of the stochastic critic on the same
  real batch with independent dropout masks and ``h`` its penultimate features.
  The keys of the two passes are ``key_1, key_2 = jax.random.split(key)``, in that
  order. Scores and features are promoted to at least float32 before their
  differences are taken, and the feature distance is the guarded square root of the
  module's "Precision" notes, so identical passes (equal dropout masks, or no
  dropout) give a gap of exactly 0 with a finite, zero derivative. Loss weight
  ``lambda_CT`` (2 in the paper) applied by the caller.

  Args:
    d_fn_features: stochastic critic ``(x, key) -> (scores, features)`` with scores
      ``[B]`` or ``[B, 1]`` and features ``[B, ...]`` (norm over all trailing axes);
      ``key`` drives its dropout.
    real: data batch ``[B, ...]``.
    key: PRNG key, split into the two passes' keys.
    margin: the margin ``M'`` (0 in the paper; may be traced).
    feature_weight: weight of the feature distance (0.1 in the paper; may be
      traced).
    first_pass: optional ``(scores, features)`` of a pass of the same critic on
      ``real`` already made with a dropout mask independent of ``key`` (the
      discriminator loss's own real pass, which CT-GAN's implementation reuses);
      then it is ``x'`` and only ``x''`` is computed, with ``key_2``. This
      saves one pass and leaves the expectation unchanged.

  Returns:
    ``(ct, diagnostics)``: the unweighted scalar consistency term and a dict with
    ``'logits_real'`` (scores of the first pass, ``[B]``), ``'logits_real_second'``
    (second pass), ``'logit_gap'`` (mean ``|f(x') - f(x'')|``) and
    ``'feature_gap'`` (mean ``||h(x') - h(x'')||``).

  Raises:
    ValueError: if the scores or features do not have batch size ``B``.

  References:
    Wei, Gong, Liu, Lu, Wang, "Improving the Improved Training of Wasserstein GANs:
    A Consistency Term and Its Dual Effect", ICLR 2018.
  """
  _check_batch(real, "real")
  batch_size = jnp.shape(real)[0]
  key_1, key_2 = jax.random.split(key)
  logits_1, features_1 = (d_fn_features(real, key_1) if first_pass is None
                          else first_pass)
  logits_2, features_2 = d_fn_features(real, key_2)
  logits_1 = _flat_logits(logits_1, batch_size, "real")
  logits_2 = _flat_logits(logits_2, batch_size, "real")
  for features in (features_1, features_2):
    if jnp.ndim(features) < 1 or jnp.shape(features)[0] != batch_size:
      raise ValueError(
          f"the critic must return features of shape [B, ...] with B = {batch_size} "
          f"(the batch size of real); got features of shape {jnp.shape(features)}")
  features_1, features_2 = _full_precision(features_1), _full_precision(features_2)
  logit_gap = jnp.abs(logits_1 - logits_2)
  feature_gap = _safe_sqrt(_squared_norms(features_1 - features_2))
  ct = jnp.mean(jax.nn.relu(logit_gap + feature_weight * feature_gap - margin))
  diagnostics = {
      "logits_real": logits_1,
      "logits_real_second": logits_2,
      "logit_gap": jnp.mean(logit_gap),
      "feature_gap": jnp.mean(feature_gap),
  }
  return ct, diagnostics


# --------------------------------------------------------------------------------------
# Zero-centred and local penalties.


def r1_penalty(
    d_fn: Callable[[Array], Any],
    real: Array,
    *,
    has_aux: bool = False,
) -> PenaltyOutput:
  """R1: squared input-gradient norm of the logit on the data.

  ``R1 = E_P[||grad_x psi(x)||^2]``; the discriminator loss adds
  ``(gamma / 2) * R1``, ``gamma`` applied by the caller.

  Args:
    d_fn: discriminator ``x -> logits`` (``[B]`` or ``[B, 1]``), or
      ``x -> (logits, aux)`` with ``has_aux=True``.
    real: data batch ``[B, ...]``.
    has_aux: whether ``d_fn`` returns ``(logits, aux)``; the aux of its single
      call is returned as ``'d_aux'``.

  Returns:
    ``(r1, diagnostics)``: the unweighted scalar and a dict with
    ``'logits_real'`` ``[B]``, ``'grad_norm_real'`` (mean ``||grad_x psi||``) and
    ``'d_aux'`` if ``has_aux``.

  References:
    Mescheder, Geiger, Nowozin, "Which Training Methods for GANs do actually
    Converge?", ICML 2018.
  """
  _check_batch(real, "real")
  logits, grad, aux = _logits_and_input_grad(d_fn, real, has_aux=has_aux, name="real")
  sq = _squared_norms(grad)
  diagnostics = {"logits_real": logits, "grad_norm_real": jnp.mean(_safe_sqrt(sq))}
  return jnp.mean(sq), _with_aux(diagnostics, aux, has_aux)


def r2_penalty(
    d_fn: Callable[[Array], Any],
    fake: Array,
    *,
    has_aux: bool = False,
) -> PenaltyOutput:
  """R2: squared input-gradient norm of the logit on generated samples.

  ``R2 = E_Q[||grad_x psi(x)||^2]``; the discriminator loss adds
  ``(gamma / 2) * R2``, ``gamma`` applied by the caller.

  Args:
    d_fn: discriminator ``x -> logits`` (``[B]`` or ``[B, 1]``), or
      ``x -> (logits, aux)`` with ``has_aux=True``.
    fake: generated batch ``[B, ...]``.
    has_aux: whether ``d_fn`` returns ``(logits, aux)``; the aux of its single
      call is returned as ``'d_aux'``.

  Returns:
    ``(r2, diagnostics)``: the unweighted scalar and a dict with
    ``'logits_fake'`` ``[B]``, ``'grad_norm_fake'`` and ``'d_aux'`` if ``has_aux``.

  References:
    Mescheder, Geiger, Nowozin, "Which Training Methods for GANs do actually
    Converge?", ICML 2018.
  """
  _check_batch(fake, "fake")
  logits, grad, aux = _logits_and_input_grad(d_fn, fake, has_aux=has_aux, name="fake")
  sq = _squared_norms(grad)
  diagnostics = {"logits_fake": logits, "grad_norm_fake": jnp.mean(_safe_sqrt(sq))}
  return jnp.mean(sq), _with_aux(diagnostics, aux, has_aux)


def dragan_penalty(
    d_fn: Callable[[Array], Any],
    real: Array,
    key: Array,
    *,
    c: float | Array = 0.5,
    target_norm: float | Array = 1.0,
    has_aux: bool = False,
) -> PenaltyOutput:
  """DRAGAN gradient penalty in a noisy neighbourhood of the data.

  ``E[(||grad_x f(x + delta)|| - target_norm)^2]`` with
  ``delta = c * std(real) * u``, ``std`` the standard deviation over *all* entries
  of the batch (a scalar, as in the authors' code) and ``u ~ U[0, 1]`` elementwise,
  drawn as ``jax.random.uniform(key, real.shape, dtype)`` (one call, ``key`` used
  as is), ``dtype`` the batch's float dtype promoted to at least float32. The norm
  is the guarded square root of the module's "Precision" notes (finite parameter
  gradient where the input gradient is exactly 0). Loss weight ``lambda`` (10)
  applied by the caller.

  Args:
    d_fn: discriminator ``x -> logits`` (``[B]`` or ``[B, 1]``), or
      ``x -> (logits, aux)`` with ``has_aux=True``.
    real: data batch ``[B, ...]``.
    key: PRNG key for the perturbation.
    c: perturbation scale relative to the data's standard deviation (may be traced).
    target_norm: the gradient norm the penalty pulls towards (may be traced).
    has_aux: whether ``d_fn`` returns ``(logits, aux)``; the aux of its single call
      (on the perturbed batch) is returned as ``'d_aux'``.

  Returns:
    ``(penalty, diagnostics)``: the unweighted scalar penalty and a dict with
    ``'logits_perturbed'`` ``[B]``, ``'grad_norm'`` (mean) and ``'d_aux'`` if
    ``has_aux``.

  References:
    Kodali, Abernethy, Hays, Kira, "On Convergence and Stability of GANs",
    arXiv:1705.07215, 2017.
  """
  real = jnp.asarray(real)
  _check_batch(real, "real")
  dtype = _float_dtype(real)
  u = jax.random.uniform(key, jnp.shape(real), dtype)
  real = real.astype(dtype)
  perturbed = real + c * jnp.std(real) * u
  logits, grad, aux = _logits_and_input_grad(
      d_fn, perturbed, has_aux=has_aux, name="real")
  norms = _safe_sqrt(_squared_norms(grad))
  penalty = jnp.mean(jnp.square(norms - target_norm))
  diagnostics = {"logits_perturbed": logits, "grad_norm": jnp.mean(norms)}
  return penalty, _with_aux(diagnostics, aux, has_aux)


# --------------------------------------------------------------------------------------
# Lazy regularization.


def _check_every(every: Any) -> None:
  if isinstance(every, jax.core.Tracer):
    return  # A traced period cannot be checked at trace time.
  is_integer = (isinstance(every, (int, np.integer))
                or (hasattr(every, "dtype") and np.ndim(every) == 0
                    and jnp.issubdtype(every.dtype, jnp.integer)))
  if isinstance(every, bool) or not is_integer or int(every) < 1:
    raise ValueError(f"every must be an integer >= 1; got {every!r}")


def lazy_penalty(
    penalty_fn: Callable[[], PenaltyOutput],
    step: int | Array,
    *,
    every: int,
    weight: float | Array,
) -> PenaltyOutput:
  """Lazy regularization: evaluate a penalty only every ``every`` steps.

  Returns ``(weight * every * value, diagnostics)`` on steps with
  ``step % every == 0`` and ``(0, zeros)`` otherwise, where ``zeros`` has the
  structure, shapes and dtypes of the penalty's diagnostics. Scaling by ``every``
  keeps the expected regularization per step equal to ``weight * value``. The
  choice is a ``jax.lax.cond``, so under ``jit`` with a traced ``step`` the
  penalty (and its double backprop) is computed only on the steps that use it.

  On skipped steps every diagnostic is zero, including a ``'d_aux'`` (such as
  batch statistics): take state updates from the discriminator's loss pass, not
  from a lazy penalty.

  Args:
    penalty_fn: zero-argument closure returning ``(value, diagnostics)``, e.g.
      ``lambda: r1_penalty(lambda x: model.apply(params, x), real)``; gradients
      flow to whatever it closes over.
    step: the discriminator step counter (Python int or traced integer).
    every: the period ``k >= 1`` (a Python integer).
    weight: the penalty weight, e.g. ``gamma / 2`` (may be traced).

  Returns:
    ``(weighted_value, diagnostics)``.

  Raises:
    ValueError: if ``every`` is not an integer ``>= 1``.

  References:
    Karras, Laine, Aittala, Hellsten, Lehtinen, Aila, "Analyzing and Improving the
    Image Quality of StyleGAN", CVPR 2020.
  """
  _check_every(every)
  out_shape = jax.eval_shape(penalty_fn)

  def skip():
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), out_shape)

  value, diagnostics = jax.lax.cond(
      jnp.asarray(step) % every == 0, penalty_fn, skip)
  # Scaling outside the cond keeps both branches' dtypes identical whatever the
  # dtype of `weight`; a skipped step stays exactly 0.
  return value * (weight * every), diagnostics


# --------------------------------------------------------------------------------------
# Registry.

PENALTIES: dict[str, Callable[..., PenaltyOutput]] = {
    "roth_js": roth_js_penalty,
    "roth_fgan": roth_fgan_penalty,
    "wgan_gp": wgan_gp_penalty,
    "ct": ct_penalty,
    "r1": r1_penalty,
    "r2": r2_penalty,
    "dragan": dragan_penalty,
}


def get_penalty(name: str) -> Callable[..., PenaltyOutput]:
  """Returns the penalty function registered under ``name``.

  Args:
    name: one of the keys of :data:`PENALTIES`.

  Returns:
    The penalty function.

  Raises:
    ValueError: for an unknown name, listing the valid ones.
  """
  try:
    return PENALTIES[name]
  except (KeyError, TypeError):
    raise ValueError(
        f"unknown penalty {name!r}; valid: {', '.join(sorted(PENALTIES))}") from None
