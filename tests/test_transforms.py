"""Tests for gan_jax.transforms: sampling statistics, scale conventions, optax composition.

Sampling tests use a quadratic energy U(theta) = 0.5 sum_i (theta_i - mu_i)^2 / s_i^2, whose
Langevin target exp(-U/T) is N(mu, T s^2). The samplers act elementwise, so a parameter array of
shape (n_chains, dim) whose gradient is (theta - mu) / s^2 row by row *is* n_chains independent
chains; the final rows are independent samples. With n samples the sample mean has standard error
sqrt(var/n) and the sample variance has relative standard error sqrt(2/n); tolerances are four of
those (plus a stated bias allowance where the sampler has one).

Discretisation: SGLD on this energy is the AR(1) recursion theta' = a theta + sqrt(2 eps T) xi with
a = 1 - eps/s^2, whose stationary variance is exactly 2 eps T / (1 - a^2) = s^2 T / (1 - eps/(2 s^2)).
That is the reference, so the O(eps) bias is accounted for exactly.
"""

import doctest
import functools
import math
import os
import subprocess
import sys
import textwrap

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax import transforms

MU = jnp.array([1.0, -2.0, 0.5])
S = jnp.array([0.5, 1.0, 1.5])


def _sgld_variance(s, eps, temperature, extra_grad_var=0.0):
  """Exact stationary variance of SGLD on the quadratic (Euler-Maruyama on OU).

  With gradient noise of variance extra_grad_var the per-step noise variance is
  2 eps T + eps^2 extra_grad_var, so the variance is s^2 (T + eps extra/2) / (1 - eps/(2 s^2)).
  """
  return s**2 * (temperature + eps * extra_grad_var / 2) / (1 - eps / (2 * s**2))


def _run_quadratic(make, hparams, key, *, n_chains, n_steps, mu=MU, s=S, grad_scale=1.0,
                   noisy=False, grad_noise=0.0, start_offset=1.0):
  """Runs n_chains independent chains on the quadratic (lax.scan); final params and state.

  The optimizer is make(**hparams, key=...) with traced hyper-parameters, so runs that differ
  only in numbers share one compilation. The gradient fed to it is
  grad_scale * ((theta - mu) / s^2 + grad_noise * z), z ~ N(0, I) when noisy.
  """
  numbers = [jnp.asarray(x, jnp.float32) for x in (grad_scale, grad_noise, start_offset)]
  hparams = {k: jnp.asarray(v, jnp.float32) for k, v in hparams.items()}
  return _run_quadratic_jit(make, hparams, key, mu, s, *numbers, n_chains=n_chains,
                            n_steps=n_steps, noisy=noisy)


@functools.partial(jax.jit, static_argnames=("make", "n_chains", "n_steps", "noisy"))
def _run_quadratic_jit(make, hparams, key, mu, s, grad_scale, grad_noise, start_offset, *,
                       n_chains, n_steps, noisy):
  sampler_key, noise_key = jax.random.split(key)
  opt = make(**hparams, key=sampler_key)
  theta0 = jnp.broadcast_to(mu + start_offset, (n_chains, mu.shape[0]))

  def body(carry, key):
    theta, state = carry
    grad = (theta - mu) / s**2
    if noisy:
      grad = grad + grad_noise * jax.random.normal(key, theta.shape)
    updates, state = opt.update(grad_scale * grad, state, theta)
    return (optax.apply_updates(theta, updates), state), None

  keys = jax.random.split(noise_key, n_steps)
  (theta, state), _ = jax.lax.scan(body, (theta0, opt.init(theta0)), keys)
  return theta, state


def _assert_moments(test, samples, *, mu, var, bias=0.0):
  """Sample mean within 4 standard errors; variance within 4 sqrt(2/n) (+bias) relative."""
  samples = np.asarray(samples, np.float64)
  n = samples.shape[0]
  mean_err = (samples.mean(0) - np.asarray(mu)) / np.sqrt(np.asarray(var) / n)
  test.assertLess(np.max(np.abs(mean_err)), 4.0, msg=f"mean errors in std units: {mean_err}")
  rel = samples.var(0) / np.asarray(var) - 1
  test.assertLess(np.max(np.abs(rel)), 4 * math.sqrt(2 / n) + bias,
                  msg=f"relative variance errors: {rel}")


# The four samplers, for the composition tests. Explicit signatures, since
# optax.inject_hyperparams reads the factory's parameters to find the hyper-parameters.
def _sgld(lr=0.1, temperature=1.0, data_size=1, key=0):
  return transforms.sgld(lr, temperature=temperature, data_size=data_size, key=key)


def _cc_full(lr=0.1, temperature=1.0, data_size=1, key=0):
  return transforms.cc_sgld(lr, temperature=temperature, data_size=data_size, key=key)


def _cc_complement(lr=0.1, temperature=1.0, data_size=1, key=0):
  return transforms.cc_sgld(lr, temperature=temperature, data_size=data_size, mode="complement",
                            key=key)


def _psgld(lr=0.1, temperature=1.0, data_size=1, key=0):
  return transforms.psgld(lr, temperature=temperature, data_size=data_size, key=key)


SAMPLERS = (("sgld", _sgld), ("cc_sgld_full", _cc_full),
            ("cc_sgld_complement", _cc_complement), ("psgld", _psgld))
# The modes of cc_sgld share their state, keys and dtype handling; where a test compiles a lot,
# one mode stands for both.
THREE_SAMPLERS = SAMPLERS[:2] + SAMPLERS[3:]


def _grads(seed, scale=1.0):
  """A small two-leaf gradient pytree."""
  k1, k2 = jax.random.split(jax.random.key(seed))
  return {"w": scale * jax.random.normal(k1, (3, 2)), "b": scale * jax.random.normal(k2, (2,))}


PARAMS = {"w": jnp.full((3, 2), 0.3), "b": jnp.array([0.1, -0.2])}


def _assert_trees_close(a, b, **kw):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), **kw), a, b)


def _trees_equal(a, b):
  return all(jax.tree.leaves(jax.tree.map(lambda x, y: bool(jnp.array_equal(x, y)), a, b)))


def _psgld_slow(lr, temperature=1.0, data_size=1, key=0):
  return transforms.psgld(lr, decay=0.9999, temperature=temperature, data_size=data_size, key=key)


def _warm(opt, state, params=PARAMS, shift=0.0):
  """Two updates with different gradients, so cc_sgld's covariance estimate is non-zero.

  shift adds shift * params to the gradients, as optax.add_decayed_weights(shift) would.
  """
  for step in range(2):
    grads = jax.tree.map(
        lambda p, k=step: jnp.full_like(p, (-1.0)**k * (k + 1)) + shift * p, params)
    _, state = opt.update(grads, state, params)
  return state


class SGLDSamplingTest(parameterized.TestCase):
  """8000 chains: tolerance 4 sqrt(2/8000) = 6.3% relative on the variance."""

  # 400 steps: the slowest coordinate (s=1.5) relaxes at rate eps/s^2 = 0.022 per step, so the
  # start offset of 1 decays to exp(-8.9) ~ 1e-4, far below the standard error 0.017.
  RUN = dict(n_chains=8000, n_steps=400)

  @parameterized.parameters((1.0, 3), (0.25, 4), (4.0, 6))
  def test_samples_tempered_gaussian(self, temperature, seed):
    eps = 0.05
    hp = dict(lr=eps, temperature=temperature, data_size=1.0)
    theta, state = _run_quadratic(_sgld, hp, jax.random.key(seed), **self.RUN)
    _assert_moments(self, theta, mu=MU, var=_sgld_variance(S, eps, temperature))
    np.testing.assert_allclose(state.noise_std, math.sqrt(2 * eps * temperature), rtol=1e-6)
    self.assertEqual(int(state.count), 400)

  def test_mean_loss_gradients_with_data_size_sample_same_target(self):
    # The energy is U = N * L with L the mean loss, so grad L = grad U / N. Step N * eps on
    # grad L with data_size=N is the same chain as step eps on grad U: same target variance.
    # (Forgetting data_size would give N = 100 times the variance.)
    n_data, eps = 100.0, 0.05
    hp = dict(lr=n_data * eps, temperature=1.0, data_size=n_data)
    theta, _ = _run_quadratic(_sgld, hp, jax.random.key(5), grad_scale=1 / n_data, **self.RUN)
    _assert_moments(self, theta, mu=MU, var=_sgld_variance(S, eps, 1.0))

  def test_zero_temperature_is_gradient_descent(self):
    opt = transforms.sgld(0.1, temperature=0.0, key=0)
    grads = _grads(0)
    updates, state = opt.update(grads, opt.init(PARAMS), PARAMS)
    _assert_trees_close(updates, jax.tree.map(lambda g: -0.1 * g, grads), rtol=1e-6)
    self.assertEqual(float(state.noise_std), 0.0)


class DataSizeConventionTest(parameterized.TestCase):
  """Same key: mean-loss gradients with data_size=N give the summed-energy update exactly."""

  @parameterized.named_parameters(
      ("sgld", lambda **kw: transforms.sgld(**kw), True),
      ("cc_full", lambda **kw: transforms.cc_sgld(mode="full", **kw), True),
      ("cc_complement", lambda **kw: transforms.cc_sgld(mode="complement", **kw), True),
      ("psgld", lambda **kw: transforms.psgld(**kw), False),
  )
  def test_mean_and_summed_gradients_agree(self, make, step_scales):
    n_data, eps = 40.0, 0.01
    if step_scales:  # Plain and covariance-controlled SGLD: step N * eps on the mean loss.
      mean_opt = make(learning_rate=n_data * eps, data_size=n_data, key=7)
      sum_opt = make(learning_rate=eps, data_size=1, key=7)
    else:  # pSGLD's preconditioner absorbs the scale: same step, its eps scaled by 1/N.
      mean_opt = make(learning_rate=eps, data_size=n_data, key=7, eps=1e-3 / n_data)
      sum_opt = make(learning_rate=eps, data_size=1, key=7, eps=1e-3)
    mean_state, sum_state = mean_opt.init(PARAMS), sum_opt.init(PARAMS)
    for step in range(4):  # Several steps so that the moving averages matter.
      summed = _grads(step)
      mean = jax.tree.map(lambda g: g / n_data, summed)
      u_mean, mean_state = mean_opt.update(mean, mean_state, PARAMS)
      u_sum, sum_state = sum_opt.update(summed, sum_state, PARAMS)
      _assert_trees_close(u_mean, u_sum, rtol=2e-4, atol=1e-6)
    self.assertGreater(float(sum_state.noise_std), 0.0)

  def test_sgld_update_formula(self):
    # u = -eps g + sqrt(2 eps T / N) xi with xi drawn per leaf from split keys.
    eps, temp, n_data = 0.02, 0.7, 30
    opt = transforms.sgld(eps, temperature=temp, data_size=n_data, key=11)
    grads = _grads(1)
    updates, state = opt.update(grads, opt.init(PARAMS))
    xi = jax.tree.map(lambda u, g: (u + eps * g) / math.sqrt(2 * eps * temp / n_data),
                      updates, grads)
    _, noise_key = jax.random.split(jax.random.key(11))
    expected_xi = optax.tree.random_like(noise_key, grads, jax.random.normal)
    _assert_trees_close(xi, expected_xi, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(state.noise_std, math.sqrt(2 * eps * temp / n_data), rtol=1e-6)


_TRACE_EPS = 0.01


@jax.jit
def _cc_noise_trace(sigmas, key):
  """noise_std after each step of full-mode cc_sgld fed gradients + N(0, sigma_t^2) noise.

  256 chains in 2 dims with weak curvature (s = 2, 3), started at the mode: the true gradient
  barely changes over the EMA window, so V_t ~ sigma_t^2 and the injected std is close to
  sqrt(eps I_t), I_t the running mean of sigma_t^2.
  """
  mu, s = jnp.array([0.5, -1.0]), jnp.array([2.0, 3.0])
  sampler_key, noise_key = jax.random.split(key)
  opt = transforms.cc_sgld(_TRACE_EPS, key=sampler_key)
  theta0 = jnp.broadcast_to(mu, (256, 2))

  def body(carry, x):
    theta, state = carry
    sigma, key = x
    grad = (theta - mu) / s**2 + sigma * jax.random.normal(key, theta.shape)
    updates, state = opt.update(grad, state, theta)
    return (theta + updates, state), transforms.injected_noise_std(state)

  keys = jax.random.split(noise_key, sigmas.shape[0])
  _, noise = jax.lax.scan(body, (theta0, opt.init(theta0)), (sigmas, keys))
  return noise


class CCSGLDTest(parameterized.TestCase):

  def test_injected_noise_tracks_gradient_noise(self):
    eps = _TRACE_EPS
    sigmas = np.concatenate([np.full(300, 0.5), np.full(300, 2.0), np.full(600, 0.1)])
    noise = np.asarray(_cc_noise_trace(jnp.asarray(sigmas, jnp.float32), jax.random.key(1)))
    # Phase 1 (sigma 0.5): within 10% of sqrt(eps sigma^2); the EMA's early bias and the small
    # true-gradient drift each are a few percent of I_t.
    np.testing.assert_allclose(noise[299], math.sqrt(eps * 0.25), rtol=0.1)
    # Phase 2 (sigma 2): rises; I_600 -> (300*0.25 + 300*4)/600 = 2.1 less the EMA's lag.
    self.assertGreater(noise[599], 2.0 * noise[299])
    # Phase 3 (sigma 0.1): I_t is an equal-weight running mean, so it falls slowly but falls.
    self.assertLess(noise[-1], 0.9 * noise[600:].max())
    self.assertLess(noise[-1], noise[599])
    self.assertTrue(np.all(np.diff(noise[800:]) < 0))

  def test_injected_noise_is_proportional_to_gradient_noise(self):
    low = _cc_noise_trace(jnp.full(1200, 0.5, jnp.float32), jax.random.key(2))
    high = _cc_noise_trace(jnp.full(1200, 2.0, jnp.float32), jax.random.key(3))
    # Different keys; ratio 4 up to the percent-level fluctuations of a 512-element RMS.
    np.testing.assert_allclose(high[-1] / low[-1], 4.0, rtol=0.05)
    np.testing.assert_allclose(low[-1], math.sqrt(_TRACE_EPS * 0.25), rtol=0.1)

  def test_complement_corrects_noisy_gradients(self):
    # Gradient noise of variance sigma^2 = T / eps makes plain SGLD's per-step noise 1.5 times
    # the Langevin 2 eps T: its variance is 1.5x the target. cc_sgld(complement) injects only
    # 2 eps T - eps^2 I_t. Bias allowance: I_t also holds the true gradient's spread, at most
    # Var(grad) = T/s^2, which removes at most eps/(2 s^2) of the variance (2% for s = 0.7).
    # The slowest coordinate relaxes at eps/s^2 = 0.014 per step: 500 steps are 7 relaxation
    # times (14 for the variance), so the early transient of I_t is forgotten.
    mu, s, eps, temp = jnp.array([0.3, -0.4]), jnp.array([0.7, 1.2]), 0.02, 1.0
    sigma2 = temp / eps
    run = dict(n_chains=3000, n_steps=500, mu=mu, s=s, noisy=True,
               grad_noise=math.sqrt(sigma2), start_offset=0.0)
    hp = dict(lr=eps, temperature=temp, data_size=1.0)
    target = _sgld_variance(s, eps, temp)
    plain, _ = _run_quadratic(_sgld, hp, jax.random.key(21), **run)
    comp, state = _run_quadratic(_cc_complement, hp, jax.random.key(22), **run)
    # Plain SGLD matches its own closed form with gradient noise; complement mode the target.
    _assert_moments(self, plain, mu=mu, var=_sgld_variance(s, eps, temp, sigma2))
    _assert_moments(self, comp, mu=mu, var=target, bias=float(jnp.max(eps / (2 * s**2))))
    plain_err = np.abs(np.var(plain, 0) / target - 1)
    comp_err = np.abs(np.var(comp, 0) / target - 1)
    self.assertTrue(np.all(comp_err < plain_err / 4), msg=f"{comp_err} vs {plain_err}")
    # I_t estimated the gradient noise variance sigma^2 = 50 (plus at most T/s^2 <= 2.1).
    np.testing.assert_allclose(np.mean(state.running_covariance, 0), sigma2, rtol=0.06)

  def test_given_grad_variance_full_mode_in_chain(self):
    # With a given constant variance v, I_t = v exactly and the injected std is sqrt(eps T N v);
    # the extra argument passes through a plain optax.chain.
    eps, temp, n_data = 0.01, 2.0, 3
    v = jax.tree.map(lambda p: jnp.full_like(p, 0.5), PARAMS)
    opt = optax.chain(optax.add_decayed_weights(1e-3),
                      transforms.cc_sgld(eps, temperature=temp, data_size=n_data, key=0))
    state = opt.init(PARAMS)
    for step in range(3):
      _, state = opt.update(_grads(step), state, PARAMS, grad_variance=v)
    _assert_trees_close(state[1].running_covariance, v, rtol=1e-6)
    np.testing.assert_allclose(transforms.injected_noise_std(state),
                               math.sqrt(eps * temp * n_data * 0.5), rtol=1e-5)

  def test_given_grad_variance_complement(self):
    eps, temp = 0.1, 1.0
    opt = transforms.cc_sgld(eps, temperature=temp, mode="complement", key=0)
    grads = _grads(0)
    # eps^2 v >= 2 eps T: the minibatch noise suffices and nothing is injected.
    v = jax.tree.map(lambda p: jnp.full_like(p, 2.5 / eps), PARAMS)
    updates, state = opt.update(grads, opt.init(PARAMS), PARAMS, grad_variance=v)
    _assert_trees_close(updates, jax.tree.map(lambda g: -eps * g, grads), rtol=1e-6)
    self.assertEqual(float(state.noise_std), 0.0)
    # Otherwise the injected variance is 2 eps T - eps^2 v.
    v = jax.tree.map(lambda p: jnp.full_like(p, 5.0), PARAMS)
    _, state = opt.update(grads, opt.init(PARAMS), PARAMS, grad_variance=v)
    np.testing.assert_allclose(state.noise_std, math.sqrt(2 * eps * temp - eps**2 * 5.0),
                               rtol=1e-5)

  def test_default_variance_estimate(self):
    # Bias-corrected EMA variance after two gradients a, b with decay d: normalised weights
    # (d(1-d), 1-d) / (1-d^2). V_1 = 0 (one sample), so I_2 = (V_1 + V_2) / 2 = V_2 / 2.
    d = 0.9
    opt = transforms.cc_sgld(0.01, variance_decay=d, key=0)
    a, b = jnp.array([1.0, -2.0]), jnp.array([3.0, 0.0])
    state = opt.init(a)
    _, state = opt.update(a, state)
    np.testing.assert_allclose(state.running_covariance, 0.0, atol=1e-6)
    _, state = opt.update(b, state)
    w = np.array([d * (1 - d), 1 - d]) / (1 - d**2)
    mean = w[0] * a + w[1] * b
    var = w[0] * a**2 + w[1] * b**2 - mean**2
    np.testing.assert_allclose(state.running_covariance, var / 2, rtol=1e-5)
    np.testing.assert_allclose(state.noise_std, np.sqrt(0.01 * np.mean(var / 2)), rtol=1e-5)

  def test_unknown_mode(self):
    with self.assertRaisesRegex(ValueError, "unknown mode 'half'; valid: full, complement"):
      transforms.cc_sgld(0.1, mode="half")


class PSGLDTest(parameterized.TestCase):

  def test_samples_gaussian(self):
    # decay 0.9999: the second-moment EMA spans ~1e4 steps, far longer than the chains' mixing
    # time (~1/h < 25 steps), so each chain runs a discretised OU process with a nearly
    # constant step h_i = lr G_i / s^2 and stationary variance s^2 T / (1 - h_i / 2). The
    # reference averages that over chains with G_i from the final state. The neglected drift term
    # (G follows |theta| with a lag) adds a bias of order mixing time / window; allowance 2%.
    # 6000 chains: tolerance 4 sqrt(2/6000) = 7.3% (+2%).
    lr = 0.02
    theta, state = _run_quadratic(_psgld_slow, dict(lr=lr), jax.random.key(8),
                                  n_chains=6000, n_steps=1000)
    precond = 1 / (1e-5 + jnp.sqrt(state.nu))
    var = jnp.mean(S**2 / (1 - lr * precond / (2 * S**2)), 0)
    _assert_moments(self, theta, mu=MU, var=var, bias=0.02)

  def test_update_formula(self):
    lr, decay, eps, temp, n_data = 0.01, 0.9, 1e-3, 0.5, 4
    opt = transforms.psgld(lr, decay=decay, eps=eps, temperature=temp, data_size=n_data, key=5)
    g1, g2 = _grads(1), _grads(2)
    state = opt.init(PARAMS)
    _, state = opt.update(g1, state)
    updates, state = opt.update(g2, state)
    nu = jax.tree.map(lambda a, b: decay * (1 - decay) * a**2 + (1 - decay) * b**2, g1, g2)
    _assert_trees_close(state.nu, nu, rtol=1e-5)
    precond = jax.tree.map(lambda v: 1 / (eps + jnp.sqrt(v)), nu)
    var = jax.tree.map(lambda p: 2 * lr * temp / n_data * p, precond)
    rms = math.sqrt(sum(float(jnp.sum(v)) for v in jax.tree.leaves(var)) / 8)
    np.testing.assert_allclose(state.noise_std, rms, rtol=1e-5)
    # The noise is the same-key normal draw scaled by sqrt(var) per element.
    _, noise_key = jax.random.split(jax.random.split(jax.random.key(5))[0])
    xi = optax.tree.random_like(noise_key, g2, jax.random.normal)
    expected = jax.tree.map(lambda p, g, v, x: -lr * p * g + jnp.sqrt(v) * x, precond, g2, var, xi)
    _assert_trees_close(updates, expected, rtol=1e-4, atol=1e-6)


class ClipParamsTest(parameterized.TestCase):

  def test_params_stay_in_box_with_rmsprop(self):
    c = 0.01
    opt = optax.chain(optax.rmsprop(0.05), transforms.clip_params(c))
    params = {"w": 3.0 * jax.random.normal(jax.random.key(0), (16, 8)),
              "b": jnp.linspace(-1.0, 1.0, 9)}

    @jax.jit
    def run(params):
      def body(carry, key):
        params, state = carry
        grads = jax.tree.map(lambda p: 100.0 * jax.random.normal(key, p.shape), params)
        updates, state = opt.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        worst = jnp.max(jnp.stack([jnp.max(jnp.abs(p)) for p in jax.tree.leaves(params)]))
        return (params, state), worst

      (params, _), worst = jax.lax.scan(
          body, (params, opt.init(params)), jax.random.split(jax.random.key(1), 50))
      return params, worst

    final, worst = run(params)
    self.assertLessEqual(float(jnp.max(worst)), c)  # In the box after every step.
    # Large random gradients push many parameters against the walls.
    self.assertGreater(float(jnp.mean(jnp.abs(final["w"]) == c)), 0.2)

  def test_updates_inside_box_unchanged(self):
    opt = transforms.clip_params(1.0)
    params = jnp.array([0.5, -0.5, 0.9])
    updates = jnp.array([0.1, -0.2, 0.05])
    new, _ = opt.update(updates, opt.init(params), params)
    np.testing.assert_allclose(new, updates, rtol=1e-6)

  def test_lands_on_walls_despite_rounding(self):
    # params + (clip(params + u) - params) can round past the wall. The result must be inside
    # and within one rounding unit of |p| + c of the clipped value (the update's own spacing:
    # no float update can do better).
    c = 0.01
    key_p, key_u = jax.random.split(jax.random.key(3))
    params = jnp.concatenate([jax.random.uniform(key_p, (100000,), minval=-5.0, maxval=5.0),
                              jax.random.uniform(key_p, (100000,), minval=-2 * c, maxval=2 * c)])
    updates = jax.random.normal(key_u, (200000,)) * jnp.repeat(jnp.array([1.0, c]), 100000)
    new, _ = jax.jit(transforms.clip_params(c).update)(updates, optax.EmptyState(), params)
    landed = np.asarray(optax.apply_updates(params, new))
    self.assertLessEqual(float(np.max(np.abs(landed))), c)
    wanted = np.clip(np.asarray(params) + np.asarray(updates), -c, c)
    ulp = np.spacing(np.abs(np.asarray(params)) + c)
    self.assertTrue(np.all(np.abs(landed - wanted) <= ulp))
    # Parameters near the box (second half) nearly all land exactly on the clipped value.
    self.assertGreater(np.mean(landed[100000:] == wanted[100000:]), 0.99)

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, r"clip_value=0 is out of range; valid: .*\(0, inf\)"):
      transforms.clip_params(0.0)
    with self.assertRaisesRegex(ValueError, "clip_value"):
      transforms.clip_params(-0.1)
    opt = transforms.clip_params(0.1)
    with self.assertRaisesRegex(ValueError, "needs the parameters"):
      opt.update(jnp.ones(2), opt.init(jnp.ones(2)), None)


class CompositionTest(parameterized.TestCase):
  """Every sampler in optax.chain / MultiSteps / inject_hyperparams, under jit, with keys.

  States are warmed by two updates first: full-mode cc_sgld injects nothing until it has seen
  gradient variance.
  """

  @parameterized.named_parameters(*SAMPLERS)
  def test_chain_with_weight_decay(self, make):
    # The prior gradient wd * p is added before the sampler sees the gradient.
    wd = 0.3
    opt = optax.chain(optax.add_decayed_weights(wd), make(key=1))
    alone = make(key=1)
    state = _warm(opt, opt.init(PARAMS))
    # In the chain the warm-up gradients were shifted by wd * p too.
    alone_state = _warm(alone, alone.init(PARAMS), shift=wd)
    updates, _ = opt.update(_grads(0), state, PARAMS)
    expected, _ = alone.update(jax.tree.map(lambda g, p: g + wd * p, _grads(0), PARAMS),
                               alone_state, PARAMS)
    _assert_trees_close(updates, expected, rtol=1e-5, atol=1e-7)

  @parameterized.named_parameters(*THREE_SAMPLERS)
  def test_multi_steps(self, make):
    opt = optax.MultiSteps(make(key=2), every_k_schedule=2)
    state = opt.init(PARAMS)
    update = jax.jit(opt.update)  # One compilation of MultiSteps' lax.cond.
    first, state = update(_grads(0), state, PARAMS)
    for leaf in jax.tree.leaves(first):
      np.testing.assert_array_equal(leaf, 0.0)
    self.assertEqual(float(transforms.injected_noise_std(state)), 0.0)  # No inner update yet.
    second, state = update(_grads(1), state, PARAMS)
    inner = make(key=2)
    mean_grad = jax.tree.map(lambda a, b: (a + b) / 2, _grads(0), _grads(1))
    expected, inner_state = inner.update(mean_grad, inner.init(PARAMS), PARAMS)
    _assert_trees_close(second, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(transforms.injected_noise_std(state), inner_state.noise_std,
                               rtol=1e-6)
    self.assertEqual(int(state.inner_opt_state.count), 1)

  @parameterized.named_parameters(*SAMPLERS)
  def test_inject_hyperparams(self, make):
    factory = optax.inject_hyperparams(make)
    opt = factory(lr=0.1, temperature=1.0, key=3)
    # Warm-up does not depend on lr or T for any sampler's statistics, only on the gradients.
    state = _warm(opt, opt.init(PARAMS))
    grads = _grads(0)
    base, _ = opt.update(grads, state, PARAMS)
    # A new learning rate in the state acts like a transform built with it (same key).
    hp = dict(state.hyperparams, lr=jnp.asarray(0.02))
    got, new_state = opt.update(grads, state._replace(hyperparams=hp), PARAMS)
    ref_opt = make(lr=0.02, temperature=1.0, key=3)
    ref, ref_state = ref_opt.update(grads, _warm(ref_opt, ref_opt.init(PARAMS)), PARAMS)
    _assert_trees_close(got, ref, rtol=1e-5, atol=1e-7)
    self.assertFalse(_trees_equal(got, base))
    np.testing.assert_allclose(transforms.injected_noise_std(new_state), ref_state.noise_std,
                               rtol=1e-6)
    # Temperature 0 removes the noise: the update becomes deterministic (independent of key).
    hp = dict(state.hyperparams, temperature=jnp.asarray(0.0))
    cold, cold_state = opt.update(grads, state._replace(hyperparams=hp), PARAMS)
    other = factory(lr=0.1, temperature=0.0, key=99)
    cold_other, _ = other.update(grads, _warm(other, other.init(PARAMS)), PARAMS)
    _assert_trees_close(cold, cold_other, rtol=1e-6)
    self.assertFalse(_trees_equal(cold, base))
    self.assertEqual(float(transforms.injected_noise_std(cold_state)), 0.0)

  @parameterized.named_parameters(*SAMPLERS)
  def test_schedule_learning_rate(self, make):
    # The schedule is read at the step count: steps use eps_0 then eps_1 (checked at T = 0).
    def schedule(t):
      return 0.5 / (1.0 + jnp.asarray(t, jnp.float32))

    opt = make(lr=schedule, temperature=0.0, key=0)
    const = [make(lr=float(schedule(t)), temperature=0.0, key=0) for t in (0, 1)]
    grads = [_grads(0), _grads(1)]
    state = opt.init(PARAMS)
    u0, state = opt.update(grads[0], state, PARAMS)
    u1, state = opt.update(grads[1], state, PARAMS)
    r0, _ = const[0].update(grads[0], const[0].init(PARAMS), PARAMS)
    _, s1 = const[1].update(grads[0], const[1].init(PARAMS), PARAMS)
    r1, _ = const[1].update(grads[1], s1, PARAMS)
    _assert_trees_close(u0, r0, rtol=1e-6)
    _assert_trees_close(u1, r1, rtol=1e-6)
    self.assertFalse(_trees_equal(u1, jax.tree.map(lambda x: x / 2, r0)))

  @parameterized.named_parameters(*SAMPLERS)
  def test_jit_keys_and_reproducibility(self, make):
    opt = make(key=5)
    grads = _grads(0)
    state = _warm(opt, opt.init(PARAMS))
    eager_u, _ = opt.update(grads, state, PARAMS)
    jit_update = jax.jit(opt.update)
    u1, state1 = jit_update(grads, state, PARAMS)
    _assert_trees_close(u1, eager_u, rtol=1e-5, atol=1e-7)
    # The key advances: the same gradient twice gives different updates.
    u2, _ = jit_update(grads, state1, PARAMS)
    self.assertFalse(_trees_equal(u1, u2))
    self.assertFalse(bool(jnp.array_equal(jax.random.key_data(state.key),
                                          jax.random.key_data(state1.key))))
    # The same seed reproduces, as an int, a typed key or a raw key (same key data).
    for key in (5, jax.random.key(5), jax.random.PRNGKey(5)):
      again = make(key=key)
      again_state = _warm(again, again.init(PARAMS))
      u, _ = again.update(grads, again_state, PARAMS)
      _assert_trees_close(u, eager_u, rtol=1e-6)
    self.assertEqual(again_state.key.dtype, jnp.uint32)  # A raw key stays raw.
    # A different seed gives different noise.
    other = make(key=6)
    u_other, _ = other.update(grads, _warm(other, other.init(PARAMS)), PARAMS)
    self.assertFalse(_trees_equal(u_other, eager_u))

  @parameterized.named_parameters(*THREE_SAMPLERS)
  def test_independent_noise_per_leaf_and_dtype(self, make):
    # Two identical leaves with identical gradients must get different noise, in their dtype.
    params = {"a": jnp.zeros(16, jnp.bfloat16), "b": jnp.zeros(16, jnp.bfloat16),
              "c": jnp.zeros(16, jnp.float32)}
    grads = jax.tree.map(jnp.ones_like, params)
    opt = make(lr=0.01, key=0)
    state = _warm(opt, opt.init(params), params)
    updates, state2 = opt.update(grads, state, params)
    self.assertEqual(updates["a"].dtype, jnp.bfloat16)
    self.assertEqual(updates["c"].dtype, jnp.float32)
    self.assertFalse(bool(jnp.array_equal(updates["a"], updates["b"])))
    # The state keeps its dtypes, so it can be a lax.scan carry.
    self.assertEqual(jax.tree.map(lambda x: x.dtype, state),
                     jax.tree.map(lambda x: x.dtype, state2))

  @parameterized.named_parameters(SAMPLERS[0], SAMPLERS[1])  # The key code is shared.
  def test_vmapped_keys(self, make):
    # Keys may be traced: one optimizer per chain under vmap gives independent chains.
    keys = jax.random.split(jax.random.key(0), 4)
    params = jnp.zeros((4, 3))

    def one(key, p):
      opt = make(key=key)
      u, _ = opt.update(jnp.ones(3), _warm(opt, opt.init(p), p), p)
      return u

    updates = jax.jit(jax.vmap(one))(keys, params)
    self.assertFalse(bool(jnp.array_equal(updates[0], updates[1])))


class InjectedNoiseStdTest(absltest.TestCase):

  def test_finds_state_in_nested_wrappers(self):
    eps, temp = 0.08, 0.5
    expected = math.sqrt(2 * eps * temp / 4)
    wrapped = {
        "chain": optax.chain(optax.clip_by_global_norm(1.0),
                             transforms.sgld(eps, temperature=temp, data_size=4, key=0)),
        "multi_steps": optax.MultiSteps(
            optax.chain(optax.add_decayed_weights(0.1),
                        transforms.sgld(eps, temperature=temp, data_size=4, key=0)),
            every_k_schedule=1),
        "inject": optax.inject_hyperparams(transforms.sgld)(
            eps, temperature=temp, data_size=4, key=0),
        "inject_in_chain": optax.chain(optax.inject_hyperparams(transforms.sgld)(
            learning_rate=eps, temperature=temp, data_size=4, key=0), optax.scale(1.0)),
    }
    for name, opt in wrapped.items():
      state = opt.init(PARAMS)
      self.assertEqual(float(transforms.injected_noise_std(state)), 0.0, msg=name)
      _, state = opt.update(_grads(0), state, PARAMS)
      np.testing.assert_allclose(transforms.injected_noise_std(state), expected, rtol=1e-5,
                                 err_msg=name)

  def test_none_without_sampler(self):
    self.assertIsNone(transforms.injected_noise_std(optax.sgd(0.1).init(PARAMS)))
    self.assertIsNone(transforms.injected_noise_std(()))


class NoiseToDriftTest(parameterized.TestCase):
  """noise_to_drift_ratio: RMS injected noise std over RMS drift, known cases."""

  def test_sgld_closed_form(self):
    # std = sqrt(2 eps T / N), drift = eps g: ratio sqrt(2 T / (eps N)) / rms(g).
    eps, temp, n = 0.08, 0.5, 4
    opt = transforms.sgld(eps, temperature=temp, data_size=n, key=0)
    params = jnp.zeros(2)
    state = opt.init(params)
    self.assertEqual(float(transforms.noise_to_drift_ratio(state)), 0.0)  # No update yet.
    _, state = opt.update(jnp.array([3.0, 4.0]), state, params)
    rms_g = math.sqrt((9.0 + 16.0) / 2)
    np.testing.assert_allclose(state.drift_rms, eps * rms_g, rtol=1e-6)
    np.testing.assert_allclose(transforms.noise_to_drift_ratio(state),
                               math.sqrt(2 * temp / (eps * n)) / rms_g, rtol=1e-6)

  @parameterized.parameters(1, 100)
  def test_cc_sgld_full_closed_form(self, n):
    # First update (t = 1): I_1 = V_1 = the given variance, 4 everywhere; the
    # injected variance is eps T N I_1 and the drift eps g with g = 1.
    eps = 0.01
    opt = transforms.cc_sgld(eps, data_size=n, key=0)
    params = {"w": jnp.zeros(3), "b": jnp.zeros(2)}
    grads = jax.tree.map(jnp.ones_like, params)
    variance = jax.tree.map(lambda p: jnp.full_like(p, 4.0), params)
    _, state = opt.update(grads, opt.init(params), params, grad_variance=variance)
    np.testing.assert_allclose(transforms.noise_to_drift_ratio(state),
                               math.sqrt(eps * n * 4.0) / eps, rtol=1e-6)

  def test_psgld_closed_form(self):
    # First update with g = 1: nu = (1 - decay), G = 1 / (eps + sqrt(nu)); the
    # drift is lr G, the noise std sqrt(2 lr G), the ratio sqrt(2 / (lr G)).
    lr, decay, eps = 1e-3, 0.99, 1e-5
    opt = transforms.psgld(lr, decay=decay, eps=eps, key=0)
    params = jnp.zeros(4)
    _, state = opt.update(jnp.ones(4), opt.init(params), params)
    g = 1 / (eps + math.sqrt(1 - decay))
    np.testing.assert_allclose(transforms.noise_to_drift_ratio(state), math.sqrt(2 / (lr * g)),
                               rtol=1e-5)

  @parameterized.named_parameters(SAMPLERS[0], SAMPLERS[1], SAMPLERS[3])
  def test_matches_the_injected_noise(self, make):
    # On 20000 coordinates the drawn noise u + drift has norm sqrt(E||noise||^2)
    # to within 1/sqrt(2 * 20000) = 0.5% (one standard error); tolerance 2%.
    params = jnp.zeros(20_000)
    grads = jax.random.normal(jax.random.key(1), params.shape)
    opt = make(lr=0.01, temperature=0.0, key=3)
    state = _warm(opt, opt.init(params), params)
    drift, _ = opt.update(grads, state, params)   # T = 0: the drift alone, -eps g (or -eps G g)
    noisy = make(lr=0.01, key=3)
    updates, noisy_state = noisy.update(grads, _warm(noisy, noisy.init(params), params), params)
    measured = jnp.linalg.norm(updates - drift) / jnp.linalg.norm(drift)
    np.testing.assert_allclose(transforms.noise_to_drift_ratio(noisy_state), measured, rtol=0.02)

  def test_nested_zero_drift_and_no_sampler(self):
    opt = optax.chain(optax.add_decayed_weights(0.5), transforms.sgld(0.5, key=0))
    params = jnp.ones(3)
    # The drift is of what the sampler receives: g + 0.5 params = 1.5.
    _, state = opt.update(jnp.ones(3), opt.init(params), params)
    np.testing.assert_allclose(transforms.noise_to_drift_ratio(state), 1 / 0.75, rtol=1e-6)
    # No drift: noise only gives a finite stand-in, no noise either gives 0.
    bare = transforms.sgld(0.5, key=0)
    _, state = bare.update(jnp.zeros(3), bare.init(params), params)
    self.assertEqual(float(transforms.noise_to_drift_ratio(state)),
                     float(np.finfo(np.float32).max))
    cold = transforms.sgld(0.5, temperature=0.0, key=0)
    _, state = cold.update(jnp.zeros(3), cold.init(params), params)
    self.assertEqual(float(transforms.noise_to_drift_ratio(state)), 0.0)
    self.assertIsNone(transforms.noise_to_drift_ratio(optax.adam(1e-3).init(params)))


class ValidationTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ("sgld_temperature", lambda: transforms.sgld(0.1, temperature=-1.0),
       r"temperature=-1 is out of range; valid: temperature in \[0, inf\)"),
      ("sgld_data_size", lambda: transforms.sgld(0.1, data_size=0),
       r"data_size=0 is out of range; valid: data_size in \[1, inf\)"),
      ("sgld_learning_rate", lambda: transforms.sgld(-0.1), r"learning_rate=-0.1"),
      ("sgld_array_temperature", lambda: transforms.sgld(0.1, temperature=jnp.asarray(-2.0)),
       r"temperature=-2"),
      ("sgld_key", lambda: transforms.sgld(0.1, key="seed"), r"valid: an int seed, a typed key"),
      ("sgld_float_key", lambda: transforms.sgld(0.1, key=jnp.asarray(1.5)), r"not a valid key"),
      ("cc_decay_one", lambda: transforms.cc_sgld(0.1, variance_decay=1.0),
       r"variance_decay=1 is out of range; valid: variance_decay in \(0, 1\)"),
      ("cc_temperature", lambda: transforms.cc_sgld(0.1, temperature=-0.5), r"temperature"),
      ("cc_data_size", lambda: transforms.cc_sgld(0.1, data_size=0.5), r"data_size"),
      ("psgld_decay", lambda: transforms.psgld(0.1, decay=0.0),
       r"decay=0 is out of range; valid: decay in \(0, 1\)"),
      ("psgld_eps", lambda: transforms.psgld(0.1, eps=0.0), r"eps=0 is out of range"),
      ("psgld_data_size", lambda: transforms.psgld(0.1, data_size=0), r"data_size"),
  )
  def test_bad_arguments(self, build, message):
    with self.assertRaisesRegex(ValueError, message):
      build()

  def test_traced_hyperparameters_are_not_checked(self):
    @jax.jit
    def update(temperature, grads):
      opt = transforms.sgld(0.1, temperature=temperature, key=0)
      return opt.update(grads, opt.init(grads))[0]

    self.assertEqual(update(1.0, jnp.ones(3)).shape, (3,))

  def test_schedule_lives_in_schedules(self):
    # SGLD's polynomial step size is gan_jax.schedules.polynomial_decay
    # (registered as 'polynomial'); transforms stays free of project imports.
    self.assertFalse(hasattr(transforms, "polynomial_schedule"))


class StandaloneTest(absltest.TestCase):

  def test_imports_nothing_else_from_the_project(self):
    script = textwrap.dedent("""
        import sys
        import jax, jax.numpy as jnp, optax
        from gan_jax import transforms
        opt = optax.chain(optax.add_decayed_weights(1e-4),
                          transforms.cc_sgld(1e-2, key=0),
                          transforms.clip_params(1.0))
        params = {"w": jnp.zeros(3)}
        state = opt.init(params)
        for _ in range(2):
          updates, state = opt.update({"w": jnp.ones(3)}, state, params)
          params = optax.apply_updates(params, updates)
        print(float(transforms.injected_noise_std(state)))
        project = sorted(m for m in sys.modules if m.split(".")[0] == "gan_jax")
        assert project == ["gan_jax", "gan_jax.transforms"], project
        banned = sorted(m for m in sys.modules
                        if m.split(".")[0] in ("flax", "tensorflow", "tensorflow_datasets"))
        assert not banned, banned
        print("ok")
        """)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, check=False, cwd=root, env=env)
    self.assertEqual(result.returncode, 0, msg=result.stderr[-3000:])
    self.assertTrue(result.stdout.strip().endswith("ok"), msg=result.stdout)


class DocstringExamplesTest(absltest.TestCase):

  def test_examples_run(self):
    failures, tried = doctest.testmod(transforms, optionflags=doctest.NORMALIZE_WHITESPACE)
    self.assertGreater(tried, 10)
    self.assertEqual(failures, 0)


if __name__ == "__main__":
  absltest.main()
