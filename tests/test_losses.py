"""Tests of gan_jax.losses: closed forms, numerics, f-GAN duality and GAN theory."""
import decimal
import doctest

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np
from scipy import optimize
from scipy import spatial
from scipy import stats

from gan_jax import losses

LOG2 = np.log(2.0)

# Reference formulas in float64 numpy, written naively from the methods table.
def _sig(x):
  return 1.0 / (1.0 + np.exp(-x))


NP_ACTIVATION = {
    "kl": lambda v: v,
    "reverse_kl": lambda v: -np.exp(-v),
    "pearson": lambda v: v,
    "squared_hellinger": lambda v: 1.0 - np.exp(-v),
    "js": lambda v: LOG2 - np.log1p(np.exp(-v)),
    "gan": lambda v: -np.log1p(np.exp(-v)),
}
NP_CONJUGATE = {
    "kl": lambda t: np.exp(t - 1.0),
    "reverse_kl": lambda t: -1.0 - np.log(-t),
    "pearson": lambda t: t**2 / 4.0 + t,
    "squared_hellinger": lambda t: t / (1.0 - t),
    "js": lambda t: -np.log(2.0 - np.exp(t)),
    "gan": lambda t: -np.log(1.0 - np.exp(t)),
}
# Generator functions f with D_f(P || Q) = sum_x q f(p / q) (Nowozin et al.).
NP_F = {
    "kl": lambda u: u * np.log(u),
    "reverse_kl": lambda u: -np.log(u),
    "pearson": lambda u: (u - 1.0)**2,
    "squared_hellinger": lambda u: (np.sqrt(u) - 1.0)**2,
    "js": lambda u: u * np.log(u) - (u + 1.0) * np.log((u + 1.0) / 2.0),
    "gan": lambda u: u * np.log(u) - (u + 1.0) * np.log(u + 1.0),
}
# Optimal raw output v* = g_f^{-1}(f'(p / q)), inverted by hand per divergence.
NP_OPTIMAL_V = {
    "kl": lambda r: 1.0 + np.log(r),            # f' = 1 + log u, g = id
    "reverse_kl": np.log,                       # f' = -1/u = -exp(-v)
    "pearson": lambda r: 2.0 * (r - 1.0),       # f' = 2 (u - 1), g = id
    "squared_hellinger": lambda r: 0.5 * np.log(r),  # f' = 1 - u^-1/2
    "js": np.log,                               # f' = log(2u / (1 + u))
    "gan": np.log,                              # f' = log(u / (1 + u))
}

REAL = np.array([-2.0, -0.5, 0.3, 1.7], np.float32)
FAKE = np.array([-1.2, 0.0, 0.8, 2.5, -3.0, 0.4], np.float32)

NP_D = {
    "minimax": lambda r, f: -np.mean(np.log(_sig(r))) - np.mean(np.log(1 - _sig(f))),
    "wasserstein": lambda r, f: np.mean(f) - np.mean(r),
    "hinge": lambda r, f: (np.mean(np.maximum(0, 1 - r))
                           + np.mean(np.maximum(0, 1 + f))),
    "least_squares": lambda r, f: 0.5 * np.mean((r - 1)**2) + 0.5 * np.mean(f**2),
}
NP_G = {
    "minimax": lambda f: np.mean(np.log(1 - _sig(f))),
    "non_saturating": lambda f: -np.mean(np.log(_sig(f))),
    "wasserstein": lambda f: -np.mean(f),
    "hinge": lambda f: -np.mean(f),
    "least_squares": lambda f: 0.5 * np.mean((f - 1)**2),
}
D_FNS = {
    "minimax": losses.minimax_discriminator_loss,
    "wasserstein": losses.wasserstein_discriminator_loss,
    "hinge": losses.hinge_discriminator_loss,
    "least_squares": losses.least_squares_discriminator_loss,
}
G_FNS = {
    "minimax": losses.minimax_generator_loss,
    "non_saturating": losses.non_saturating_generator_loss,
    "wasserstein": losses.wasserstein_generator_loss,
    "hinge": losses.hinge_generator_loss,
    "least_squares": losses.least_squares_generator_loss,
}
STABLE_OBJECTIVES = ("minimax", "non_saturating", "wasserstein", "hinge",
                     "least_squares", "fgan_js", "fgan_gan", "fgan_pearson")
EXPONENTIAL_DIVERGENCES = ("kl", "reverse_kl", "squared_hellinger")


def _random_distribution(rng, k):
  # Full support, bounded away from 0, so every log ratio is moderate.
  return (rng.dirichlet(np.ones(k)) * 0.9 + 0.1 / k).astype(np.float32)


def _all_finite(tree):
  return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(tree))


def _no_nan(tree):
  return all(not bool(jnp.any(jnp.isnan(x))) for x in jax.tree.leaves(tree))


class ClosedFormTest(parameterized.TestCase):

  @parameterized.parameters(*D_FNS)
  def test_discriminator_loss(self, name):
    want = NP_D[name](REAL.astype(np.float64), FAKE.astype(np.float64))
    got = D_FNS[name](REAL, FAKE)
    self.assertEqual(got.shape, ())
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # [B, 1] logits, the usual output of a Dense(1) head, average the same way.
    np.testing.assert_allclose(D_FNS[name](REAL[:, None], FAKE[:, None]), want,
                               rtol=1e-6)

  @parameterized.parameters(*G_FNS)
  def test_generator_loss(self, name):
    want = NP_G[name](FAKE.astype(np.float64))
    np.testing.assert_allclose(G_FNS[name](FAKE), want, rtol=1e-6)
    np.testing.assert_allclose(G_FNS[name](FAKE[:, None]), want, rtol=1e-6)

  @parameterized.parameters(*losses.DIVERGENCES)
  def test_fgan_losses(self, divergence):
    g, fstar = NP_ACTIVATION[divergence], NP_CONJUGATE[divergence]
    r, f = REAL.astype(np.float64), FAKE.astype(np.float64)
    np.testing.assert_allclose(
        losses.fgan_activation(FAKE, divergence=divergence), g(f), rtol=1e-6)
    np.testing.assert_allclose(
        losses.fgan_conjugate_activation(FAKE, divergence=divergence),
        fstar(g(f)), rtol=1e-5)
    np.testing.assert_allclose(
        losses.fgan_discriminator_loss(REAL, FAKE, divergence=divergence),
        -(np.mean(g(r)) - np.mean(fstar(g(f)))), rtol=1e-5)
    np.testing.assert_allclose(
        losses.fgan_generator_loss(FAKE, divergence=divergence),
        -np.mean(g(f)), rtol=1e-5)
    np.testing.assert_allclose(
        losses.fgan_generator_loss(FAKE, divergence=divergence,
                                   non_saturating=False),
        -np.mean(fstar(g(f))), rtol=1e-5)

  def test_integer_logits_are_promoted(self):
    np.testing.assert_allclose(
        losses.minimax_discriminator_loss(jnp.array([0, 0]), jnp.array([0])),
        2 * LOG2, rtol=1e-6)


class WeightsTest(parameterized.TestCase):

  def test_unit_weights_give_the_mean(self):
    for name, fn in D_FNS.items():
      with self.subTest(name):
        np.testing.assert_allclose(
            fn(REAL, FAKE, real_weights=np.ones(4), fake_weights=np.ones(6)),
            fn(REAL, FAKE), rtol=1e-6)

  def test_weighted_expectation(self):
    w = np.array([0.1, 0.2, 0.3, 0.4, 0.0, 0.0], np.float32)
    want = np.sum(w * np.log1p(np.exp(-FAKE.astype(np.float64)))) / w.sum()
    np.testing.assert_allclose(
        losses.non_saturating_generator_loss(FAKE, fake_weights=w), want,
        rtol=1e-6)
    # Weights of shape [B] weigh the rows of [B, 1] logits.
    np.testing.assert_allclose(
        losses.non_saturating_generator_loss(FAKE[:, None], fake_weights=w),
        want, rtol=1e-6)
    # Unnormalized weights are normalized.
    np.testing.assert_allclose(
        losses.non_saturating_generator_loss(FAKE, fake_weights=7 * w), want,
        rtol=1e-6)

  def test_zero_weight_masks_an_infinite_term(self):
    fake = jnp.array([0.5, -1.0, 200.0])  # exp(199) overflows float32.
    w = jnp.array([1.0, 1.0, 0.0])
    got = losses.fgan_discriminator_loss(
        jnp.zeros(2), fake, divergence="kl", fake_weights=w)
    want = np.mean(np.exp(np.array([0.5, -1.0]) - 1.0))
    np.testing.assert_allclose(got, want, rtol=1e-6)
    grad_w = jax.grad(lambda w: losses.fgan_discriminator_loss(
        jnp.zeros(2), fake, divergence="kl", fake_weights=w))(w)
    self.assertTrue(_all_finite(grad_w))

  def test_bad_weight_shape(self):
    with self.assertRaisesRegex(ValueError, r"weights of shape \(5,\).*valid"):
      losses.wasserstein_generator_loss(FAKE, fake_weights=np.ones(5))
    with self.assertRaisesRegex(ValueError, "more axes"):
      losses.wasserstein_generator_loss(FAKE, fake_weights=np.ones((6, 1)))


class StabilityTest(parameterized.TestCase):
  """Losses and gradients at saturated logits (float32)."""

  EXTREME = jnp.array([-100.0, -3.0, 0.0, 5.0, 100.0])

  def _losses_and_grads(self, objective, real, fake):
    d_val, d_grad = jax.value_and_grad(objective.discriminator, argnums=(0, 1))(
        real, fake)
    g_val, g_grad = jax.value_and_grad(objective.generator)(fake)
    return d_val, d_grad, g_val, g_grad

  @parameterized.parameters(*STABLE_OBJECTIVES)
  def test_finite_at_100(self, name):
    variants = [{}] if not name.startswith("fgan_") else [
        {"non_saturating": True}, {"non_saturating": False}]
    for kwargs in variants:
      objective = losses.get_objective(name, **kwargs)
      out = self._losses_and_grads(objective, self.EXTREME, self.EXTREME[::-1])
      self.assertTrue(_all_finite(out), f"{name} {kwargs}: {out}")

  @parameterized.parameters(*EXPONENTIAL_DIVERGENCES)
  def test_exponential_divergences(self, divergence):
    for non_saturating in (True, False):
      objective = losses.get_objective("fgan_" + divergence,
                                       non_saturating=non_saturating)
      moderate = jnp.array([-80.0, -3.0, 0.0, 5.0, 80.0])
      out = self._losses_and_grads(objective, moderate, moderate[::-1])
      self.assertTrue(_all_finite(out), f"{divergence}: {out}")
      out = self._losses_and_grads(objective, self.EXTREME, self.EXTREME[::-1])
      self.assertTrue(_no_nan(out), f"{divergence}: {out}")
      # Beyond float range the true value is +inf (D) and never -inf there.
      self.assertEqual(float(out[0]), np.inf)

  def test_exponential_values_exact_where_representable(self):
    v = jnp.array([80.0, -80.0])
    b = v.shape[0]
    # kl: d/dv_fake of E_Q[exp(v - 1)] is exp(v - 1) / B.
    grad = jax.grad(losses.fgan_discriminator_loss, argnums=1)(
        v, v, divergence="kl")
    np.testing.assert_allclose(grad, np.exp(np.array([79.0, -81.0])) / b,
                               rtol=1e-5)
    # reverse_kl: -E_P[-exp(-v)] at v = -80 is exp(80) / B.
    np.testing.assert_allclose(
        losses.fgan_discriminator_loss(v, v, divergence="reverse_kl"),
        (np.exp(80.0) + np.exp(-80.0)) / b + (79.0 - 81.0) / b, rtol=1e-5)
    # squared_hellinger: E_Q[expm1(v)].
    np.testing.assert_allclose(
        losses.fgan_generator_loss(v, divergence="squared_hellinger",
                                   non_saturating=False),
        -np.mean(np.expm1(np.array([80.0, -80.0]))), rtol=1e-5)

  def test_exact_gradients_at_100(self):
    v = np.array([-100.0, -20.0, 0.0, 20.0, 100.0], np.float32)
    b = v.size
    v64 = v.astype(np.float64)
    # Denormal results may flush to zero on CPU, hence the tiny atol.
    tol = dict(rtol=1e-6, atol=1e-30)
    d_real, d_fake = jax.grad(losses.minimax_discriminator_loss,
                              argnums=(0, 1))(v, v)
    np.testing.assert_allclose(d_fake, _sig(v64) / b, **tol)
    np.testing.assert_allclose(d_real, -_sig(-v64) / b, **tol)
    np.testing.assert_allclose(
        jax.grad(losses.non_saturating_generator_loss)(v), -_sig(-v64) / b,
        **tol)
    np.testing.assert_allclose(
        jax.grad(losses.minimax_generator_loss)(v), -_sig(v64) / b, **tol)
    # Values: softplus(100) = 100 exactly in float32.
    np.testing.assert_allclose(
        losses.minimax_discriminator_loss(v, v),
        np.mean(np.logaddexp(0, -v64)) + np.mean(np.logaddexp(0, v64)),
        rtol=1e-6)
    np.testing.assert_allclose(
        jax.grad(losses.fgan_discriminator_loss, argnums=0)(
            v, v, divergence="js"), -_sig(-v64) / b, **tol)


class FganTest(parameterized.TestCase):

  @parameterized.parameters(*losses.DIVERGENCES)
  def test_composite_equals_conjugate_of_activation(self, divergence):
    v = jnp.linspace(-8.0, 8.0, 33)
    composite = losses.fgan_conjugate_activation(v, divergence=divergence)
    naive = losses.fgan_conjugate(
        losses.fgan_activation(v, divergence=divergence), divergence=divergence)
    both = np.isfinite(composite) & np.isfinite(naive)
    self.assertTrue(np.all(both))  # on [-8, 8] both forms are representable
    # float32 rounding of g_f(v) near the domain edge costs up to ~1e-4 (js).
    np.testing.assert_allclose(composite, naive, rtol=2e-4, atol=1e-5)
    # The composite also has the right derivative, g_f'(v) f*'(g_f(v)).
    np.testing.assert_allclose(
        jax.vmap(jax.grad(lambda x: losses.fgan_conjugate_activation(
            x, divergence=divergence)))(v),
        jax.vmap(jax.grad(lambda x: losses.fgan_conjugate(
            losses.fgan_activation(x, divergence=divergence),
            divergence=divergence)))(v),
        rtol=2e-3, atol=1e-5)

  @parameterized.parameters(
      ("kl", [-1.0, 0.0, 1.0, 2.0]),
      ("reverse_kl", [-3.0, -1.0, -0.5]),
      ("pearson", [-1.5, 0.0, 2.0]),
      ("squared_hellinger", [-2.0, 0.0, 0.5]),
      ("js", [-2.0, 0.0, 0.5]),
      ("gan", [-3.0, -1.0, -0.2]),
  )
  def test_conjugate_is_the_legendre_transform_of_f(self, divergence, ts):
    f = NP_F[divergence]
    for t in ts:
      # f* (t) = sup_u t u - f(u); concave in u, maximizer below 10 for these t.
      res = optimize.minimize_scalar(lambda u: -(t * u - f(u)),
                                     bounds=(1e-9, 10.0), method="bounded",
                                     options={"xatol": 1e-10})
      np.testing.assert_allclose(
          losses.fgan_conjugate(np.float32(t), divergence=divergence), -res.fun,
          rtol=1e-5, atol=1e-6, err_msg=f"{divergence} t={t}")

  @parameterized.parameters(
      ("reverse_kl", 0.5), ("squared_hellinger", 1.5), ("js", 1.0), ("gan", 0.1))
  def test_conjugate_is_inf_outside_domain(self, divergence, t):
    self.assertEqual(float(losses.fgan_conjugate(t, divergence=divergence)),
                     np.inf)
    self.assertEqual(
        float(jax.grad(lambda x: losses.fgan_conjugate(
            x, divergence=divergence))(t)), 0.0)

  @parameterized.parameters(*losses.DIVERGENCES)
  def test_curvature(self, divergence):
    v = jnp.linspace(-3.0, 3.0, 13)
    t = losses.fgan_activation(v, divergence=divergence)
    second = jax.vmap(jax.grad(jax.grad(
        lambda s: losses.fgan_conjugate(s, divergence=divergence))))(t)
    np.testing.assert_allclose(
        losses.fgan_conjugate_curvature(v, divergence=divergence), second,
        rtol=1e-3)

  def test_gan_and_js_match_the_minimax_game(self):
    d = losses.minimax_discriminator_loss(REAL, FAKE)
    np.testing.assert_allclose(
        losses.fgan_discriminator_loss(REAL, FAKE, divergence="gan"), d,
        rtol=1e-6)
    np.testing.assert_allclose(
        losses.fgan_discriminator_loss(REAL, FAKE, divergence="js"),
        d - 2 * LOG2, rtol=1e-6)
    np.testing.assert_allclose(
        losses.fgan_generator_loss(FAKE, divergence="gan"),
        losses.non_saturating_generator_loss(FAKE), rtol=1e-6)
    np.testing.assert_allclose(
        losses.fgan_generator_loss(FAKE, divergence="gan", non_saturating=False),
        losses.minimax_generator_loss(FAKE), rtol=1e-6)

  @parameterized.parameters(*losses.DIVERGENCES)
  def test_optimal_critic_gives_minus_the_divergence(self, divergence):
    rng = np.random.default_rng(0)
    p, q = _random_distribution(rng, 7), _random_distribution(rng, 7)
    p64, q64 = p.astype(np.float64), q.astype(np.float64)
    v_star = NP_OPTIMAL_V[divergence](p64 / q64).astype(np.float32)
    d_f = np.sum(q64 * NP_F[divergence](p64 / q64))

    def loss(v):
      return losses.fgan_discriminator_loss(
          v, v, divergence=divergence, real_weights=p, fake_weights=q)

    np.testing.assert_allclose(loss(v_star), -d_f, rtol=1e-4, atol=1e-6)
    # v* is a stationary point (the minimum): -p g' + q g' f*'(g) = 0.
    np.testing.assert_allclose(jax.grad(loss)(v_star), 0.0, atol=1e-6)
    # Named divergences, as the f-GAN paper states them.
    named = {
        "kl": float(losses.kl_divergence(p, q)),
        "reverse_kl": float(losses.kl_divergence(q, p)),
        "pearson": np.sum((p64 - q64)**2 / q64),
        "squared_hellinger": np.sum((np.sqrt(p64) - np.sqrt(q64))**2),
        "js": 2 * float(losses.jensen_shannon(p, q)),
        "gan": 2 * float(losses.jensen_shannon(p, q)) - 2 * LOG2,
    }[divergence]
    np.testing.assert_allclose(d_f, named, rtol=1e-5, atol=1e-7)

  def test_unknown_divergence(self):
    for fn in (losses.fgan_activation, losses.fgan_conjugate,
               losses.fgan_conjugate_activation, losses.fgan_conjugate_curvature,
               losses.fgan_generator_loss):
      with self.assertRaisesRegex(
          ValueError, "unknown divergence 'tv'; valid: kl, reverse_kl, pearson, "
          "squared_hellinger, js, gan"):
        fn(FAKE, divergence="tv")
    with self.assertRaisesRegex(ValueError, "unknown divergence 'tv'"):
      losses.fgan_discriminator_loss(REAL, FAKE, divergence="tv")


class DiscreteTheoryTest(parameterized.TestCase):
  """Arjovsky & Bottou (2017) on distributions over K points, exact sums."""

  K = 6

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(1)
    self.p = _random_distribution(rng, self.K)
    self.theta0 = rng.normal(size=self.K).astype(np.float32)
    self.q0 = jax.nn.softmax(self.theta0)

  def test_divergences_match_scipy(self):
    rng = np.random.default_rng(2)
    p, q = rng.dirichlet(np.ones(5), size=3), rng.dirichlet(np.ones(5), size=3)
    np.testing.assert_allclose(losses.kl_divergence(p, q),
                               stats.entropy(p, q, axis=-1), rtol=1e-5)
    np.testing.assert_allclose(
        losses.jensen_shannon(p, q),
        spatial.distance.jensenshannon(p, q, axis=-1)**2, rtol=1e-4)

  def test_divergence_edge_cases(self):
    half = jnp.array([0.5, 0.5, 0.0])
    other = jnp.array([0.0, 0.0, 1.0])
    np.testing.assert_allclose(
        losses.kl_divergence(half, jnp.array([0.25, 0.25, 0.5])), LOG2,
        rtol=1e-6)
    self.assertEqual(float(losses.kl_divergence(other, half)), np.inf)
    self.assertEqual(float(losses.kl_divergence(half, half)), 0.0)
    np.testing.assert_allclose(losses.jensen_shannon(half, other), LOG2,
                               rtol=1e-6)

  def test_optimal_discriminator_logit(self):
    p = jnp.array([0.5, 0.0, 0.5, 0.0])
    q = jnp.array([0.25, 0.5, 0.0, 0.0])
    got = losses.optimal_discriminator_logit(p, q)
    np.testing.assert_array_equal(np.isinf(got), [False, True, True, False])
    np.testing.assert_allclose(got[0], LOG2, rtol=1e-6)
    self.assertLess(float(got[1]), 0)
    self.assertGreater(float(got[2]), 0)
    self.assertEqual(float(got[3]), 0.0)
    # D* = sigmoid(psi*) = p / (p + q) wherever p + q > 0.
    np.testing.assert_allclose(jax.nn.sigmoid(got[:3]), [2 / 3, 0.0, 1.0],
                               rtol=1e-6)

  def test_minimax_value_at_optimum(self):
    p, q = self.p, self.q0
    psi = losses.optimal_discriminator_logit(p, q)

    def value(psi):  # E_P log D + E_Q log(1 - D)
      return -losses.minimax_discriminator_loss(
          psi, psi, real_weights=p, fake_weights=q)

    np.testing.assert_allclose(
        value(psi), 2 * losses.jensen_shannon(p, q) - 2 * LOG2, rtol=1e-5)
    # psi* maximizes the value pointwise.
    np.testing.assert_allclose(jax.grad(value)(psi), 0.0, atol=1e-6)
    self.assertLess(float(value(psi + 0.3)), float(value(psi)))

  def test_minus_log_d_gradient(self):
    # Thm. 2.5: with D* fixed at theta0, grad E_Q[-log D*] =
    # grad [KL(Q || P) - 2 JSD(Q || P)].
    psi0 = losses.optimal_discriminator_logit(self.p, self.q0)

    def generator_loss(theta):
      return losses.non_saturating_generator_loss(
          psi0, fake_weights=jax.nn.softmax(theta))

    def divergence(theta):
      q = jax.nn.softmax(theta)
      return (losses.kl_divergence(q, self.p)
              - 2 * losses.jensen_shannon(q, self.p))

    want = jax.jit(jax.grad(divergence))(self.theta0)
    self.assertGreater(float(jnp.max(jnp.abs(want))), 1e-2)  # not trivial
    np.testing.assert_allclose(jax.jit(jax.grad(generator_loss))(self.theta0), want,
                               rtol=1e-4, atol=1e-6)

  def test_saturating_gradient_is_the_jsd_gradient(self):
    # With D* fixed, grad E_Q[log(1 - D*)] = grad 2 JSD(P || Q).
    psi0 = losses.optimal_discriminator_logit(self.p, self.q0)
    got = jax.grad(lambda th: losses.minimax_generator_loss(
        psi0, fake_weights=jax.nn.softmax(th)))(self.theta0)
    want = jax.grad(lambda th: 2 * losses.jensen_shannon(
        self.p, jax.nn.softmax(th)))(self.theta0)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


class RegistryTest(parameterized.TestCase):

  def test_names(self):
    self.assertEqual(
        losses.OBJECTIVES,
        ("minimax", "non_saturating", "wasserstein", "hinge", "least_squares")
        + tuple("fgan_" + d for d in losses.DIVERGENCES))

  @parameterized.parameters(*losses.OBJECTIVES)
  def test_every_objective_jits(self, name):
    objective = losses.get_objective(name)
    self.assertIsInstance(objective, losses.Objective)
    d = jax.jit(objective.discriminator)(REAL, FAKE)
    g = jax.jit(objective.generator)(FAKE)
    self.assertEqual(d.shape, ())
    self.assertEqual(g.shape, ())
    np.testing.assert_allclose(d, objective.discriminator(REAL, FAKE),
                               rtol=1e-6)
    np.testing.assert_allclose(g, objective.generator(FAKE), rtol=1e-6)

  def test_objectives_pick_the_right_functions(self):
    for name, d_fn, g_fn in [
        ("minimax", "minimax", "minimax"),
        ("non_saturating", "minimax", "non_saturating"),
        ("wasserstein", "wasserstein", "wasserstein"),
        ("hinge", "hinge", "hinge"),
        ("least_squares", "least_squares", "least_squares")]:
      objective = losses.get_objective(name)
      np.testing.assert_allclose(objective.discriminator(REAL, FAKE),
                                 NP_D[d_fn](REAL, FAKE), rtol=1e-5)
      np.testing.assert_allclose(objective.generator(FAKE), NP_G[g_fn](FAKE),
                                 rtol=1e-5)
    g = NP_ACTIVATION["kl"](FAKE.astype(np.float64))
    np.testing.assert_allclose(losses.get_objective("fgan_kl").generator(FAKE),
                               -np.mean(g), rtol=1e-5)
    np.testing.assert_allclose(
        losses.get_objective("fgan_kl", non_saturating=False).generator(FAKE),
        -np.mean(np.exp(g - 1)), rtol=1e-5)
    # Weights pass through the registry's functions.
    w = np.array([1, 0, 0, 0, 0, 0], np.float32)
    np.testing.assert_allclose(
        losses.get_objective("wasserstein").generator(FAKE, fake_weights=w),
        -FAKE[0], rtol=1e-6)

  def test_unknown_name_lists_valid_names(self):
    with self.assertRaises(ValueError) as ctx:
      losses.get_objective("vanilla")
    message = str(ctx.exception)
    self.assertIn("unknown objective 'vanilla'", message)
    for name in losses.OBJECTIVES:
      self.assertIn(name, message)

  def test_unknown_fgan_divergence_lists_divergences(self):
    with self.assertRaisesRegex(
        ValueError, "unknown f-GAN divergence 'tv'.*valid divergences: kl, "
        "reverse_kl, pearson, squared_hellinger, js, gan"):
      losses.get_objective("fgan_tv")

  def test_bad_options(self):
    with self.assertRaisesRegex(ValueError, "unknown option.*valid: none"):
      losses.get_objective("minimax", non_saturating=True)
    with self.assertRaisesRegex(ValueError,
                                "unknown option.*gamma.*valid: non_saturating"):
      losses.get_objective("fgan_js", gamma=1.0)
    with self.assertRaisesRegex(ValueError, "non_saturating must be"):
      losses.get_objective("fgan_js", non_saturating="yes")


# ---------------------------------------------------------------------------
# Roth's f-GAN regularizer weight f*''(g_f(v)) g_f'(v)^2, against the table
# composed step by step in 80-digit decimal arithmetic: g_f(v), then the hand
# second derivative of the table's conjugate at that point, times g_f'(v)^2.
# Nothing is simplified, so the reference shares no closed form with the code.

_D = decimal.Decimal
# Distance of t from the edge of each conjugate's domain (inf: no edge).
_DOMAIN_EDGE = {"kl": None, "reverse_kl": 0.0, "pearson": None,
                "squared_hellinger": 1.0, "js": LOG2, "gan": 0.0}


def _dec_softplus(x):
  return (1 + x.exp()).ln()


def _dec_sigmoid(x):
  return 1 / (1 + (-x).exp())


DEC_ACTIVATION = {
    "kl": lambda v: v,
    "reverse_kl": lambda v: -(-v).exp(),
    "pearson": lambda v: v,
    "squared_hellinger": lambda v: 1 - (-v).exp(),
    "js": lambda v: _D(2).ln() - _dec_softplus(-v),
    "gan": lambda v: -_dec_softplus(-v),
}
DEC_ACTIVATION_DERIVATIVE = {
    "kl": lambda v: _D(1),
    "reverse_kl": lambda v: (-v).exp(),
    "pearson": lambda v: _D(1),
    "squared_hellinger": lambda v: (-v).exp(),
    "js": lambda v: _dec_sigmoid(-v),
    "gan": lambda v: _dec_sigmoid(-v),
}
# f*''(t), differentiated by hand from the table (checked by finite
# differences of NP_CONJUGATE below).
DEC_CONJUGATE_SECOND = {
    "kl": lambda t: (t - 1).exp(),
    "reverse_kl": lambda t: 1 / (t * t),
    "pearson": lambda t: _D("0.5"),
    "squared_hellinger": lambda t: 2 / (1 - t) ** 3,
    "js": lambda t: 2 * t.exp() / (2 - t.exp()) ** 2,
    "gan": lambda t: t.exp() / (1 - t.exp()) ** 2,
}


def _dec_eval(fn, x):
  """``fn`` at each float in ``x`` (taken exactly), in 80 digits, as float64."""
  out = []
  with decimal.localcontext() as ctx:
    ctx.prec = 80
    for value in np.asarray(x, np.float64).ravel():
      out.append(float(fn(_D(float(value)))))
  return np.reshape(out, np.shape(x))


def dec_penalty_weight(v, divergence):
  """Reference weight at each float ``v``, as float64 (inf beyond its range).

  At v = 100 the edge distance 1 - exp(g_f(v)) is about 4e-44: 80 digits keep
  more than 30 of them.
  """
  def weight(d):
    t = DEC_ACTIVATION[divergence](d)
    return DEC_CONJUGATE_SECOND[divergence](t) * DEC_ACTIVATION_DERIVATIVE[divergence](d) ** 2
  return _dec_eval(weight, v)


# Every half unit from -100 to 100, and the float range edges of kl (89.72) and
# squared_hellinger (88.03) from both sides.
WEIGHT_GRID = np.concatenate([np.arange(-100.0, 100.5, 0.5),
                              [-87.5, 87.9, 88.1, 89.6, 89.8]])


class PenaltyWeightTest(parameterized.TestCase):
  """fgan_penalty_weight, the weight of ||grad v||^2 in Roth's f-GAN regularizer."""

  @parameterized.parameters(*losses.DIVERGENCES)
  def test_hand_second_derivatives_by_finite_differences(self, divergence):
    # Central differences in float64 of the table's conjugate and activation at
    # moderate v, the step a small fraction of the distance to the domain's
    # edge (truncation about 1e-7, rounding about 1e-9 relative).
    v = np.linspace(-3.0, 3.0, 13)
    t = NP_ACTIVATION[divergence](v)
    edge = _DOMAIN_EDGE[divergence]
    scale = 1.0 + np.abs(t) if edge is None else np.minimum(1.0 + np.abs(t), edge - t)
    h = 1e-3 * scale
    conj = NP_CONJUGATE[divergence]
    fd_second = (conj(t + h) - 2 * conj(t) + conj(t - h)) / h**2
    hand_second = _dec_eval(DEC_CONJUGATE_SECOND[divergence], t)
    np.testing.assert_allclose(fd_second, hand_second, rtol=1e-5)
    act = NP_ACTIVATION[divergence]
    fd_first = (act(v + 1e-5) - act(v - 1e-5)) / 2e-5
    hand_first = _dec_eval(DEC_ACTIVATION_DERIVATIVE[divergence], v)
    np.testing.assert_allclose(fd_first, hand_first, rtol=1e-7)

  @parameterized.parameters(*losses.DIVERGENCES)
  def test_float32_from_minus_100_to_100(self, divergence):
    v = WEIGHT_GRID.astype(np.float32)
    got = np.asarray(losses.fgan_penalty_weight(v, divergence=divergence))
    self.assertEqual(got.dtype, np.float32)
    ref = dec_penalty_weight(v, divergence)
    info = np.finfo(np.float32)
    normal = (ref >= info.tiny) & (ref <= info.max)
    # Inside the float range: relative agreement (a few ulps; exp(v - 1) can
    # round its shifted exponent, a relative error below |v| 2^-24) and finite.
    self.assertTrue(np.all(np.isfinite(got[ref <= info.max])), msg=divergence)
    np.testing.assert_allclose(got[normal], ref[normal], rtol=1e-5, err_msg=divergence)
    # Below it, underflow towards 0; above it, +inf (what the value rounds to).
    below = ref < info.tiny
    np.testing.assert_allclose(got[below], ref[below], rtol=0, atol=info.tiny)
    np.testing.assert_array_equal(got[ref > info.max], np.inf)
    self.assertTrue(np.all(got >= 0))
    # The regularizer's own derivative through v is finite where the value is.
    grad = np.asarray(jax.vmap(jax.grad(
        lambda x: losses.fgan_penalty_weight(x, divergence=divergence)))(v))
    self.assertTrue(np.all(np.isfinite(grad[ref <= info.max / 2])), msg=divergence)

  @parameterized.parameters(*losses.DIVERGENCES)
  def test_float64(self, divergence):
    with jax.enable_x64(True):
      v = WEIGHT_GRID
      got = np.asarray(losses.fgan_penalty_weight(v, divergence=divergence))
      self.assertEqual(got.dtype, np.float64)
    np.testing.assert_allclose(got, dec_penalty_weight(v, divergence), rtol=1e-13)

  def test_known_values_and_errors(self):
    # js and gan weigh by D = sigmoid(v), reverse_kl by 1 and pearson by 1/2.
    v = np.array([-2.0, 0.0, 20.0, 45.0, 100.0], np.float32)
    for divergence in ("js", "gan"):
      np.testing.assert_allclose(losses.fgan_penalty_weight(v, divergence=divergence),
                                 _sig(v.astype(np.float64)), rtol=1e-6)
    np.testing.assert_array_equal(losses.fgan_penalty_weight(v, divergence="reverse_kl"), 1.0)
    np.testing.assert_array_equal(losses.fgan_penalty_weight(v, divergence="pearson"), 0.5)
    with self.assertRaisesRegex(ValueError, "unknown divergence 'tv'"):
      losses.fgan_penalty_weight(v, divergence="tv")


class DocTest(absltest.TestCase):

  def test_docstring_examples(self):
    result = doctest.testmod(losses, optionflags=doctest.ELLIPSIS)
    self.assertGreater(result.attempted, 5)
    self.assertEqual(result.failed, 0)


if __name__ == "__main__":
  absltest.main()
