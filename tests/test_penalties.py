"""Tests for gan_jax.penalties: closed forms, double backprop, jit/vmap, lazy regularization."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized
from jax.flatten_util import ravel_pytree
from scipy.special import expit

from gan_jax import penalties

DIVERGENCES = ("kl", "reverse_kl", "pearson", "squared_hellinger", "js", "gan")

# Hand tables (Nowozin et al. 2016) in float64 numpy.
_ACTIVATION = {
    "kl": lambda v: v,
    "reverse_kl": lambda v: -np.exp(-v),
    "pearson": lambda v: v,
    "squared_hellinger": lambda v: 1 - np.exp(-v),
    "js": lambda v: np.log(2) - np.logaddexp(0, -v),
    "gan": lambda v: -np.logaddexp(0, -v),
}
_ACTIVATION_DERIVATIVE = {
    "kl": lambda v: np.ones_like(v),
    "reverse_kl": lambda v: np.exp(-v),
    "pearson": lambda v: np.ones_like(v),
    "squared_hellinger": lambda v: np.exp(-v),
    "js": lambda v: expit(-v),
    "gan": lambda v: expit(-v),
}
_CONJUGATE_SECOND = {
    "kl": lambda t: np.exp(t - 1),
    "reverse_kl": lambda t: 1 / t**2,
    "pearson": lambda t: np.full_like(t, 0.5),
    "squared_hellinger": lambda t: 2 / (1 - t) ** 3,
    "js": lambda t: 2 * np.exp(t) / (2 - np.exp(t)) ** 2,
    "gan": lambda t: np.exp(t) / (1 - np.exp(t)) ** 2,
}
# Points inside each conjugate's domain, including some near its edge.
_DOMAIN_POINTS = {
    "kl": [-3.0, -0.5, 0.0, 1.0, 2.5],
    "reverse_kl": [-5.0, -1.0, -0.3, -0.01],
    "pearson": [-4.0, -1.0, 0.0, 2.0],
    "squared_hellinger": [-3.0, 0.0, 0.5, 0.9, 0.99],
    "js": [-4.0, -1.0, 0.0, 0.5, 0.69],
    "gan": [-5.0, -1.0, -0.1, -0.001],
}


# --------------------------------------------------------------------------------------
# Discriminators with known input gradients (float64 numpy parameters).

_RNG = np.random.default_rng(0)
_W = _RNG.normal(size=(2, 3))          # linear psi on inputs [B, 2, 3]
_B_LIN = 0.3
_D = 4
_M = _RNG.normal(size=(_D, _D))
_A = 0.5 * (_M + _M.T)                 # symmetric, so grad psi = A x + b
_B_QUAD = _RNG.normal(size=_D)


def linear_psi(x, keepdims=False):
  out = jnp.sum(x * _W, axis=(1, 2)) + _B_LIN
  return out[:, None] if keepdims else out


def quadratic_psi(x):
  return 0.5 * jnp.einsum("bi,ij,bj->b", x, _A, x) + x @ _B_QUAD + 0.1


def np_quadratic_psi(x):
  return 0.5 * np.einsum("bi,ij,bj->b", x, _A, x) + x @ _B_QUAD + 0.1


def np_quadratic_grad(x):
  return x @ _A + _B_QUAD


def sq_norms(g):
  return np.sum(np.reshape(g, (g.shape[0], -1)) ** 2, axis=1)


class AnalyticTest(parameterized.TestCase):
  """Every penalty against numpy formulas for linear and quadratic discriminators."""

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(1)
    self.real_lin = rng.normal(size=(5, 2, 3))
    self.fake_lin = rng.normal(size=(7, 2, 3))
    self.real_quad = rng.normal(size=(6, _D))
    self.fake_quad = rng.normal(size=(6, _D))
    self.key = jax.random.key(3)

  @parameterized.parameters(False, True)
  def test_roth_js_linear(self, keepdims):
    with jax.enable_x64(True):
      value, diag = penalties.roth_js_penalty(
          lambda x: linear_psi(x, keepdims), self.real_lin, self.fake_lin)
      psi_r = np.sum(self.real_lin * _W, axis=(1, 2)) + _B_LIN
      psi_f = np.sum(self.fake_lin * _W, axis=(1, 2)) + _B_LIN
      w2 = np.sum(_W**2)
      expected = np.mean((1 - expit(psi_r)) ** 2 * w2) + np.mean(expit(psi_f) ** 2 * w2)
      np.testing.assert_allclose(value, expected, rtol=1e-12)
      np.testing.assert_allclose(diag["logits_real"], psi_r, rtol=1e-12)
      np.testing.assert_allclose(diag["logits_fake"], psi_f, rtol=1e-12)
      np.testing.assert_allclose(diag["grad_norm_real"], np.sqrt(w2), rtol=1e-12)

  def test_roth_js_quadratic(self):
    with jax.enable_x64(True):
      value, diag = penalties.roth_js_penalty(quadratic_psi, self.real_quad, self.fake_quad)
      psi_r, psi_f = np_quadratic_psi(self.real_quad), np_quadratic_psi(self.fake_quad)
      g_r = sq_norms(np_quadratic_grad(self.real_quad))
      g_f = sq_norms(np_quadratic_grad(self.fake_quad))
      expected = np.mean((1 - expit(psi_r)) ** 2 * g_r) + np.mean(expit(psi_f) ** 2 * g_f)
      np.testing.assert_allclose(value, expected, rtol=1e-12)
      np.testing.assert_allclose(diag["grad_norm_fake"], np.mean(np.sqrt(g_f)), rtol=1e-12)

  def test_roth_js_saturated_logits_float32(self):
    # sigmoid(-psi)^2 keeps the data term exact where 1 - sigmoid(psi) rounds to 0
    # (in float32 from psi ~ 17 on): at psi = 30 it is 8.8e-27, not 0.
    def d_fn(x):
      return 60.0 * jnp.sum(x, axis=1)

    real = jnp.ones((3, 2), jnp.float32)
    value, _ = penalties.roth_js_penalty(d_fn, real, -real)
    expected = np.mean(expit(-120.0) ** 2 * 7200.0) + np.mean(expit(-120.0) ** 2 * 7200.0)
    self.assertTrue(np.isfinite(value))
    np.testing.assert_allclose(value, expected, atol=1e-30)
    real_at_edge = jnp.full((3, 2), 0.25, jnp.float32)   # psi = 30 on real, -30 on fake
    value, _ = penalties.roth_js_penalty(d_fn, real_at_edge, -real_at_edge)
    np.testing.assert_allclose(value, 2 * expit(-30.0) ** 2 * 7200.0, rtol=1e-4)

  @parameterized.parameters(*DIVERGENCES)
  def test_conjugate_second_derivative_matches_hand_table(self, divergence):
    with jax.enable_x64(True):
      t = np.array(_DOMAIN_POINTS[divergence])
      got = penalties.conjugate_second_derivative(t, divergence=divergence)
      np.testing.assert_allclose(got, _CONJUGATE_SECOND[divergence](t), rtol=1e-9)
      self.assertEqual(got.shape, t.shape)
    # Also in float32, on a 2-D array, away from the domain edges.
    t32 = np.array(_DOMAIN_POINTS[divergence][:3], np.float32).reshape(3, 1)
    got32 = penalties.conjugate_second_derivative(t32, divergence=divergence)
    self.assertEqual(got32.dtype, jnp.float32)
    np.testing.assert_allclose(got32, _CONJUGATE_SECOND[divergence](t32.astype(float)),
                               rtol=1e-4)

  @parameterized.parameters(*DIVERGENCES)
  def test_roth_fgan_quadratic(self, divergence):
    with jax.enable_x64(True):
      fake = self.fake_quad
      value, diag = penalties.roth_fgan_penalty(quadratic_psi, fake, divergence=divergence)
      v = np_quadratic_psi(fake)
      t = _ACTIVATION[divergence](v)
      grad_t_sq = _ACTIVATION_DERIVATIVE[divergence](v) ** 2 * sq_norms(np_quadratic_grad(fake))
      expected = np.mean(_CONJUGATE_SECOND[divergence](t) * grad_t_sq)
      np.testing.assert_allclose(value, expected, rtol=1e-10)
      np.testing.assert_allclose(diag["logits_fake"], v, rtol=1e-12)
      np.testing.assert_allclose(diag["t_fake"], t, rtol=1e-12)
      # As in the other penalties: the norm of the logit's input gradient.
      np.testing.assert_allclose(diag["grad_norm_fake"],
                                 np.mean(np.sqrt(sq_norms(np_quadratic_grad(fake)))),
                                 rtol=1e-10)
      weight = _CONJUGATE_SECOND[divergence](t) * _ACTIVATION_DERIVATIVE[divergence](v) ** 2
      np.testing.assert_allclose(diag["weight_fake"], np.mean(weight), rtol=1e-10)

  def test_roth_fgan_gan_equals_d_weighted_r2(self):
    # For 'gan', f*''(T) |g'(v)|^2 = D / (1 - D)^2 * (1 - D)^2 = D: Omega = E_Q[D ||grad psi||^2].
    with jax.enable_x64(True):
      value, _ = penalties.roth_fgan_penalty(linear_psi, self.fake_lin, divergence="gan")
      psi = np.sum(self.fake_lin * _W, axis=(1, 2)) + _B_LIN
      np.testing.assert_allclose(value, np.mean(expit(psi)) * np.sum(_W**2), rtol=1e-10)

  @parameterized.product(divergence=DIVERGENCES, logit=(20.0, 45.0, 100.0))
  def test_roth_fgan_confident_fakes_float32(self, divergence, logit):
    # A linear discriminator of unit input gradient, psi(x) = u . x + b, at fakes
    # with logit v: Omega_f = f*''(g_f(v)) g_f'(v)^2, exactly the weight. Through
    # T in float32 this was 0 for js and squared_hellinger from v = 20 on (exact:
    # about 1 and 2 e^20 = 9.7e8) and NaN for gan and reverse_kl from about 45 on.
    exact = {
        "kl": np.exp(logit - 1), "reverse_kl": 1.0, "pearson": 0.5,
        "squared_hellinger": 2 * np.exp(logit), "js": expit(logit), "gan": expit(logit),
    }[divergence]
    u = jnp.array([0.6, 0.0, -0.8], jnp.float32)
    params = {"u": u, "b": jnp.float32(0.5)}

    def omega(p):
      fake = (logit - 0.5) * jnp.stack([u, u])   # two fakes, each at logit v
      return penalties.roth_fgan_penalty(
          lambda x: x @ p["u"] + p["b"], fake, divergence=divergence)

    value, diag = omega(params)
    self.assertEqual(value.dtype, jnp.float32)
    np.testing.assert_allclose(diag["logits_fake"], logit, rtol=1e-6)
    if exact > np.finfo(np.float32).max:
      # kl and squared_hellinger at v = 100: e^99 and 2 e^100 exceed float32.
      self.assertEqual(float(value), np.inf)
      return
    np.testing.assert_allclose(value, exact, rtol=1e-5)
    np.testing.assert_allclose(diag["weight_fake"], exact, rtol=1e-5)
    np.testing.assert_allclose(diag["grad_norm_fake"], 1.0, rtol=1e-6)
    # The parameter gradient (double backprop) is finite too.
    grads = jax.grad(lambda p: omega(p)[0])(params)
    self.assertTrue(all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads)))

  def test_r1_r2(self):
    with jax.enable_x64(True):
      r1, d1 = penalties.r1_penalty(quadratic_psi, self.real_quad)
      r2, d2 = penalties.r2_penalty(quadratic_psi, self.fake_quad)
      np.testing.assert_allclose(r1, np.mean(sq_norms(np_quadratic_grad(self.real_quad))),
                                 rtol=1e-12)
      np.testing.assert_allclose(r2, np.mean(sq_norms(np_quadratic_grad(self.fake_quad))),
                                 rtol=1e-12)
      np.testing.assert_allclose(d1["logits_real"], np_quadratic_psi(self.real_quad),
                                 rtol=1e-12)
      np.testing.assert_allclose(d2["logits_fake"], np_quadratic_psi(self.fake_quad),
                                 rtol=1e-12)
      r1_lin, _ = penalties.r1_penalty(lambda x: linear_psi(x, True), self.real_lin)
      np.testing.assert_allclose(r1_lin, np.sum(_W**2), rtol=1e-12)

  @parameterized.parameters(0.5, 1.0, 3.0)
  def test_wgan_gp_linear_is_independent_of_interpolation(self, target):
    with jax.enable_x64(True):
      real, fake = self.real_lin[:5], self.fake_lin[:5]
      value, diag = penalties.wgan_gp_penalty(linear_psi, real, fake, self.key,
                                              target_norm=target)
      norm = np.sqrt(np.sum(_W**2))
      np.testing.assert_allclose(value, (norm - target) ** 2, rtol=1e-12)
      np.testing.assert_allclose(diag["grad_norm"], norm, rtol=1e-12)

  def test_wgan_gp_quadratic_reproduces_interpolates(self):
    with jax.enable_x64(True):
      real, fake = self.real_quad, self.fake_quad
      value, diag = penalties.wgan_gp_penalty(quadratic_psi, real, fake, self.key)
      # The documented draw: one uniform per example, broadcast over trailing axes.
      e = np.asarray(jax.random.uniform(self.key, (6, 1), jnp.float64))
      self.assertTrue(np.all((e >= 0) & (e < 1)))
      x_hat = e * real + (1 - e) * fake
      norms = np.sqrt(sq_norms(np_quadratic_grad(x_hat)))
      np.testing.assert_allclose(value, np.mean((norms - 1) ** 2), rtol=1e-12)
      np.testing.assert_allclose(diag["logits_interp"], np_quadratic_psi(x_hat), rtol=1e-12)

  def test_wgan_gp_broadcasts_one_weight_per_example(self):
    # psi(x) = 0.5 ||x||^2 has grad x; with real = 1, fake = 0 every entry of
    # x_hat equals that example's e, so ||grad|| = e * sqrt(6).
    with jax.enable_x64(True):
      real, fake = np.ones((4, 2, 3)), np.zeros((4, 2, 3))
      _, diag = penalties.wgan_gp_penalty(
          lambda x: 0.5 * jnp.sum(x**2, axis=(1, 2)), real, fake, self.key)
      e = np.asarray(jax.random.uniform(self.key, (4, 1, 1), jnp.float64)).ravel()
      np.testing.assert_allclose(diag["grad_norm"], np.mean(e) * np.sqrt(6), rtol=1e-12)

  @parameterized.parameters(0.5, 2.0)
  def test_dragan_quadratic_reproduces_perturbation(self, c):
    with jax.enable_x64(True):
      real = self.real_quad
      value, diag = penalties.dragan_penalty(quadratic_psi, real, self.key, c=c,
                                             target_norm=0.7)
      u = np.asarray(jax.random.uniform(self.key, real.shape, jnp.float64))
      perturbed = real + c * np.std(real) * u
      norms = np.sqrt(sq_norms(np_quadratic_grad(perturbed)))
      np.testing.assert_allclose(value, np.mean((norms - 0.7) ** 2), rtol=1e-12)
      np.testing.assert_allclose(diag["logits_perturbed"], np_quadratic_psi(perturbed),
                                 rtol=1e-12)
      lin, _ = penalties.dragan_penalty(linear_psi, self.real_lin, self.key, c=c)
      np.testing.assert_allclose(lin, (np.sqrt(np.sum(_W**2)) - 1) ** 2, rtol=1e-12)

  @parameterized.parameters((0.0, 0.1), (0.0, 1.0), ("median", 0.1))
  def test_ct_reproduces_dropout_passes(self, margin, feature_weight):
    w = np.array([0.5, -1.0, 2.0, 0.3])

    def critic(x, key):
      mask = jax.random.bernoulli(key, 0.5, x.shape) / 0.5
      h = mask * x
      return h @ w, h

    with jax.enable_x64(True):
      real = self.real_quad
      key_1, key_2 = jax.random.split(self.key)
      m1 = np.asarray(jax.random.bernoulli(key_1, 0.5, real.shape)) / 0.5
      m2 = np.asarray(jax.random.bernoulli(key_2, 0.5, real.shape)) / 0.5
      h1, h2 = m1 * real, m2 * real
      per_example = (np.abs(h1 @ w - h2 @ w)
                     + feature_weight * np.sqrt(sq_norms(h1 - h2)))
      if margin == "median":
        margin = float(np.median(per_example))  # so that about half are clipped to 0
      value, diag = penalties.ct_penalty(critic, real, self.key, margin=margin,
                                         feature_weight=feature_weight)
      np.testing.assert_allclose(value, np.mean(np.maximum(per_example - margin, 0)),
                                 rtol=1e-12)
      np.testing.assert_allclose(diag["logits_real"], h1 @ w, rtol=1e-12)
      np.testing.assert_allclose(diag["logits_real_second"], h2 @ w, rtol=1e-12)

  def test_ct_first_pass_replaces_the_first_dropout_pass(self):
    # Given the first pass (the loss's own pass on real), CT computes only the
    # second, with split(key)[1]: the same value and gradient as its own two passes.
    w0 = jnp.array([0.5, -1.0, 2.0, 0.3])

    def critic(w):
      def fn(x, key):
        h = jax.random.bernoulli(key, 0.5, x.shape) / 0.5 * x
        return h @ w, h
      return fn

    key_1, _ = jax.random.split(self.key)
    calls = []

    def value(w, shared):
      fn = critic(w)
      counted = lambda x, k: (calls.append(1), fn(x, k))[1]
      first = fn(self.real_quad, key_1) if shared else None
      return penalties.ct_penalty(counted, self.real_quad, self.key, first_pass=first)[0]

    own, own_grad = jax.value_and_grad(value)(w0, False)
    self.assertLen(calls, 2)
    calls.clear()
    shared, shared_grad = jax.value_and_grad(value)(w0, True)
    self.assertLen(calls, 1)
    np.testing.assert_allclose(shared, own, rtol=1e-6)
    np.testing.assert_allclose(shared_grad, own_grad, rtol=1e-6)

  def test_ct_identical_passes_give_zero_and_finite_gradient(self):
    # A critic without dropout: h(x') = h(x''), CT = 0 and its gradient is 0, not NaN.
    def value(w):
      return penalties.ct_penalty(lambda x, k: (x @ w, x), self.real_quad, self.key)[0]

    w = jnp.ones(_D)
    self.assertEqual(float(value(w)), 0.0)
    np.testing.assert_array_equal(jax.grad(value)(w), np.zeros(_D))


# --------------------------------------------------------------------------------------
# Parameter gradients of a tiny Flax MLP: double backprop against finite differences.


class MLP(nn.Module):
  """Tanh MLP returning ([B, 1] logits, penultimate features)."""
  hidden: int = 6
  dropout_rate: float = 0.0

  @nn.compact
  def __call__(self, x, *, deterministic=True):
    h = jnp.tanh(nn.Dense(self.hidden)(x))
    h = nn.Dropout(self.dropout_rate, deterministic=deterministic)(h)
    h = jnp.tanh(nn.Dense(self.hidden)(h))
    return nn.Dense(1)(h), h


_MLP = MLP()
_DROPOUT_MLP = MLP(dropout_rate=0.3)


def _penalty_of_params(name):
  """Returns f(params, real, fake, key) -> (value, diagnostics) for a penalty."""

  def d_fn(params):
    return lambda x: _MLP.apply(params, x)[0]

  if name == "roth_js":
    return lambda p, r, f, k: penalties.roth_js_penalty(d_fn(p), r, f)
  if name.startswith("roth_fgan_"):
    div = name[len("roth_fgan_"):]
    return lambda p, r, f, k: penalties.roth_fgan_penalty(d_fn(p), f, divergence=div)
  if name == "wgan_gp":
    return lambda p, r, f, k: penalties.wgan_gp_penalty(d_fn(p), r, f, k)
  if name == "r1":
    return lambda p, r, f, k: penalties.r1_penalty(d_fn(p), r)
  if name == "r2":
    return lambda p, r, f, k: penalties.r2_penalty(d_fn(p), f)
  if name == "dragan":
    return lambda p, r, f, k: penalties.dragan_penalty(d_fn(p), r, k)
  if name == "ct":
    return lambda p, r, f, k: penalties.ct_penalty(
        lambda x, key: _DROPOUT_MLP.apply(p, x, deterministic=False, rngs={"dropout": key}),
        r, k)
  raise AssertionError(name)


# r2 shares r1's code path on the other batch; roth_fgan's divergence only changes
# elementwise maps, checked analytically above.
_GRADIENT_CASES = ("roth_js", "roth_fgan_gan", "wgan_gp", "r1", "dragan", "ct")


def _init_params(key, dim=3):
  params = _MLP.init(key, jnp.zeros((1, dim)))
  return jax.tree.map(lambda p: p.astype(jnp.float64), params)


class ParameterGradientTest(parameterized.TestCase):

  @parameterized.parameters(*_GRADIENT_CASES)
  def test_grad_matches_finite_differences_jit_and_vmap(self, name):
    with jax.enable_x64(True):
      fn = _penalty_of_params(name)
      rng = np.random.default_rng(7)
      real = jnp.asarray(rng.normal(size=(5, 3)))
      fake = jnp.asarray(rng.normal(size=(5, 3)))
      key = jax.random.key(11)
      params = _init_params(jax.random.key(0))
      flat, unravel = ravel_pytree(params)
      # Central differences in float64: truncation ~h^2, rounding ~1e-16/h.
      h = 1e-5
      directions = rng.normal(size=(3, flat.size))
      directions /= np.linalg.norm(directions, axis=1, keepdims=True)
      shifted = np.concatenate([flat + h * directions, flat - h * directions])
      # Three parameter sets paired with three input batches and keys, for vmap.
      stacked = jax.vmap(_init_params)(jax.random.split(jax.random.key(1), 3))
      reals = jnp.asarray(rng.normal(size=(3, 5, 3)))
      fakes = jnp.asarray(rng.normal(size=(3, 5, 3)))
      keys = jax.random.split(jax.random.key(2), 3)

      def value(p, r, f, k):
        return fn(p, r, f, k)[0]

      grad_jit = jax.jit(jax.grad(value))

      @jax.jit
      def fd_and_batched(shifted, stacked, reals, fakes, keys):
        at_shifted = jax.vmap(lambda v: value(unravel(v), real, fake, key))(shifted)
        return at_shifted, jax.vmap(jax.grad(value))(stacked, reals, fakes, keys)

      grad = ravel_pytree(grad_jit(params, real, fake, key))[0]
      self.assertGreater(float(jnp.linalg.norm(grad)), 1e-8)  # not trivially zero
      at_shifted, batched = fd_and_batched(shifted, stacked, reals, fakes, keys)
      fd = (at_shifted[:3] - at_shifted[3:]) / (2 * h)
      np.testing.assert_allclose(directions @ grad, fd, rtol=1e-6, atol=1e-9)
      for i in range(3):
        single = grad_jit(jax.tree.map(lambda a: a[i], stacked), reals[i], fakes[i], keys[i])
        np.testing.assert_allclose(ravel_pytree(jax.tree.map(lambda a: a[i], batched))[0],
                                   ravel_pytree(single)[0], rtol=1e-10, atol=1e-14)


# --------------------------------------------------------------------------------------
# has_aux with batch norm in training mode.


class BNDisc(nn.Module):

  @nn.compact
  def __call__(self, x):
    h = nn.Dense(4)(x)
    h = nn.BatchNorm(use_running_average=False, momentum=0.5)(h)
    return nn.Dense(1)(jnp.tanh(h))


class HasAuxTest(parameterized.TestCase):

  # r1 and r2 go through the same single-pass helper as wgan_gp and dragan.
  @parameterized.parameters("roth_js", "roth_fgan", "wgan_gp", "dragan")
  def test_batch_norm_stats_are_returned(self, name):
    model = BNDisc()
    rng = np.random.default_rng(3)
    real = jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)
    fake = jnp.asarray(rng.normal(size=(6, 3)) + 2.0, jnp.float32)
    key = jax.random.key(5)
    variables = model.init(jax.random.key(0), real)
    params, stats = variables["params"], variables["batch_stats"]

    def d_fn_aux(p):
      return lambda x: model.apply({"params": p, "batch_stats": stats}, x,
                                   mutable=["batch_stats"])

    def d_fn(p):
      return lambda x: d_fn_aux(p)(x)[0]

    calls = {
        "roth_js": (lambda f, a: penalties.roth_js_penalty(f, real, fake, has_aux=a),
                    lambda: fake),
        "roth_fgan": (lambda f, a: penalties.roth_fgan_penalty(
            f, fake, divergence="js", has_aux=a), lambda: fake),
        "wgan_gp": (lambda f, a: penalties.wgan_gp_penalty(f, real, fake, key, has_aux=a),
                    lambda: (lambda e: e * real + (1 - e) * fake)(
                        jax.random.uniform(key, (6, 1), jnp.float32))),
        "dragan": (lambda f, a: penalties.dragan_penalty(f, real, key, has_aux=a),
                   lambda: real + 0.5 * jnp.std(real)
                   * jax.random.uniform(key, real.shape, jnp.float32)),
    }
    call, last_input = calls[name]

    @jax.jit
    def run(p):
      value, diag = call(d_fn_aux(p), True)
      plain, plain_diag = call(d_fn(p), False)
      grads = jax.grad(lambda q: call(d_fn_aux(q), True)[0])(p)
      return value, diag, plain, plain_diag, grads

    value, diag, plain, plain_diag, grads = run(params)
    _, expected_aux = model.apply({"params": params, "batch_stats": stats}, last_input(),
                                  mutable=["batch_stats"])
    chex_tree_allclose(self, diag["d_aux"], expected_aux, rtol=1e-5, atol=1e-6)
    # The statistics moved (momentum 0.5 from mean 0 / var 1).
    self.assertGreater(
        float(jnp.max(jnp.abs(diag["d_aux"]["batch_stats"]["BatchNorm_0"]["mean"]))), 1e-3)
    np.testing.assert_allclose(value, plain, rtol=1e-5)
    self.assertNotIn("d_aux", plain_diag)
    self.assertTrue(all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads)))
    self.assertGreater(max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(grads)), 0)


def chex_tree_allclose(test, a, b, **kw):
  test.assertEqual(jax.tree.structure(a), jax.tree.structure(b))
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(x, y, **kw)


# --------------------------------------------------------------------------------------
# Lazy regularization.


class LazyPenaltyTest(parameterized.TestCase):

  def test_value_every_k_steps_under_jit_and_skipped_computation(self):
    real = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)), jnp.float32)
    params = _MLP.init(jax.random.key(0), real)
    evaluations = []

    def penalty(p):
      value, diag = penalties.r1_penalty(lambda x: _MLP.apply(p, x)[0], real)
      # Fires only when the penalty branch actually runs.
      jax.debug.callback(lambda: evaluations.append(1))
      return value, diag

    @jax.jit
    def lazy(p, step):
      return penalties.lazy_penalty(lambda: penalty(p), step, every=3, weight=0.25)

    full_value, full_diag = penalties.r1_penalty(lambda x: _MLP.apply(params, x)[0], real)
    evaluations.clear()
    for step in range(7):
      value, diag = lazy(params, jnp.asarray(step, jnp.int32))
      jax.block_until_ready(value)
      self.assertEqual(jax.tree.structure(diag), jax.tree.structure(full_diag))
      if step % 3 == 0:
        np.testing.assert_allclose(value, 3 * 0.25 * full_value, rtol=1e-5)
        np.testing.assert_allclose(diag["logits_real"], full_diag["logits_real"], rtol=1e-5)
      else:
        self.assertEqual(float(value), 0.0)
        for leaf in jax.tree.leaves(diag):
          np.testing.assert_array_equal(leaf, np.zeros_like(leaf))
    jax.effects_barrier()
    self.assertLen(evaluations, 3)  # steps 0, 3 and 6 only

  def test_gradient_flows_and_traced_weight(self):
    real = jnp.asarray(np.random.default_rng(1).normal(size=(4, 3)), jnp.float32)
    params = _MLP.init(jax.random.key(1), real)

    def penalty(p):
      return penalties.r1_penalty(lambda x: _MLP.apply(p, x)[0], real)

    @jax.jit
    def grads(p, step, w):
      lazy = jax.grad(lambda p: penalties.lazy_penalty(lambda: penalty(p), step, every=4,
                                                       weight=w)[0])
      return lazy(p), jax.grad(lambda p: penalty(p)[0])(p)

    # One compilation: the step is traced.
    on, grad_full = grads(params, jnp.int32(8), jnp.float32(0.5))
    off, _ = grads(params, jnp.int32(9), jnp.float32(0.5))
    chex_tree_allclose(self, on, jax.tree.map(lambda g: 4 * 0.5 * g, grad_full),
                       rtol=1e-5, atol=1e-7)
    self.assertTrue(any(float(jnp.max(jnp.abs(g))) > 0 for g in jax.tree.leaves(on)))
    for g in jax.tree.leaves(off):
      np.testing.assert_array_equal(g, np.zeros_like(g))

  def test_every_one_always_applies_with_python_step(self):
    value, _ = penalties.lazy_penalty(lambda: (jnp.float32(2.0), {}), 5, every=1,
                                      weight=3.0)
    self.assertEqual(float(value), 6.0)

  @parameterized.parameters(0, -2, 2.5, True, "3", None)
  def test_bad_every(self, every):
    with self.assertRaisesRegex(ValueError, "every must be an integer >= 1"):
      penalties.lazy_penalty(lambda: (jnp.float32(1.0), {}), 0, every=every, weight=1.0)


# --------------------------------------------------------------------------------------
# Errors and registry.


class ErrorsAndRegistryTest(parameterized.TestCase):

  def test_unknown_divergence(self):
    x = jnp.ones((2, 3))
    with self.assertRaisesRegex(ValueError, r"unknown divergence 'foo'; valid: kl, "):
      penalties.roth_fgan_penalty(lambda x: x.sum(1), x, divergence="foo")
    with self.assertRaisesRegex(ValueError, "unknown divergence"):
      penalties.conjugate_second_derivative(x, divergence="chi")

  def test_mismatched_trailing_shapes(self):
    real, fake = jnp.ones((4, 3)), jnp.ones((4, 2))
    for call in (lambda: penalties.roth_js_penalty(lambda x: x.sum(1), real, fake),
                 lambda: penalties.wgan_gp_penalty(lambda x: x.sum(1), real, fake,
                                                   jax.random.key(0))):
      with self.assertRaisesRegex(ValueError, r"real \(4, 3\) and fake \(4, 2\)"):
        call()

  def test_wgan_gp_needs_equal_batch(self):
    with self.assertRaisesRegex(ValueError, r"same shape.*real \(4, 3\) and fake \(5, 3\)"):
      penalties.wgan_gp_penalty(lambda x: x.sum(1), jnp.ones((4, 3)), jnp.ones((5, 3)),
                                jax.random.key(0))

  def test_roth_js_allows_different_batch_sizes(self):
    value, diag = penalties.roth_js_penalty(lambda x: x.sum(1), jnp.ones((4, 3)),
                                            jnp.ones((2, 3)))
    self.assertEqual(diag["logits_fake"].shape, (2,))
    self.assertTrue(np.isfinite(value))

  @parameterized.parameters(
      (lambda x: jnp.stack([x.sum(1), x.sum(1)], 1), r"got logits of shape \(4, 2\)"),
      (lambda x: x.sum(), r"got logits of shape \(\)"),
      (lambda x: x[:2].sum(1), r"B = 4 .*got logits of shape \(2,\)"),
  )
  def test_bad_logit_shapes(self, d_fn, message):
    with self.assertRaisesRegex(ValueError, message):
      penalties.r1_penalty(d_fn, jnp.ones((4, 3)))

  def test_has_aux_requires_pair(self):
    with self.assertRaisesRegex(ValueError, "has_aux=True"):
      penalties.r2_penalty(lambda x: x.sum(1), jnp.ones((4, 3)), has_aux=True)

  def test_ct_bad_features(self):
    with self.assertRaisesRegex(ValueError, r"features of shape \(3, 2\)"):
      penalties.ct_penalty(lambda x, k: (x.sum(1), x[:3, :2]), jnp.ones((4, 3)),
                           jax.random.key(0))

  def test_registry(self):
    self.assertEqual(set(penalties.PENALTIES),
                     {"roth_js", "roth_fgan", "wgan_gp", "ct", "r1", "r2", "dragan"})
    self.assertIs(penalties.get_penalty("r1"), penalties.r1_penalty)
    self.assertIs(penalties.get_penalty("wgan_gp"), penalties.wgan_gp_penalty)
    with self.assertRaisesRegex(ValueError,
                                "unknown penalty 'gp'; valid: ct, dragan, r1, r2, "
                                "roth_fgan, roth_js, wgan_gp"):
      penalties.get_penalty("gp")


if __name__ == "__main__":
  absltest.main()
