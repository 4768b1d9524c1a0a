"""Tests for gan_jax.perturb: heated data, instance noise, Gaussian blur."""

import functools

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np
from scipy import ndimage
from scipy import stats

from gan_jax import perturb

# Compiled once per input shape; beta, sigma and the box walls are traced. The
# tests share a few shapes to keep compilation (most of their cost) down.
_heated = jax.jit(perturb.heated_sample)
_noise = jax.jit(perturb.instance_noise)
_blur = jax.jit(perturb.gaussian_blur, static_argnames="radius")
_SMALL, _MID, _BIG = (16, 4), (2000, 3), (20000, 3)


def _reflect_by_loop(y, low, high):
  """Reference: bounce off the walls one reflection at a time (float64)."""
  out = np.array(y, np.float64).ravel()
  for i, v in enumerate(out):
    while v < low or v > high:
      v = 2 * high - v if v > high else 2 * low - v
    out[i] = v
  return out.reshape(np.shape(y))


class ReflectTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ("inside", -1.0, 1.0, 0.3, 0.3),
      ("on_wall", -1.0, 1.0, 1.0, 1.0),
      ("past_upper", -1.0, 1.0, 1.5, 0.5),
      ("past_lower", -1.0, 1.0, -1.5, -0.5),
      ("two_bounces", -1.0, 1.0, 3.5, -0.5),
      ("lands_on_upper", -1.0, 1.0, 5.0, 1.0),
      ("lands_on_lower", -1.0, 1.0, -5.0, -1.0),
      ("shifted_box", 0.0, 3.0, 4.0, 2.0),
      ("shifted_box_below", 0.0, 3.0, -1.0, 1.0),
      ("shifted_box_far", 0.0, 3.0, 13.0, 1.0),
  )
  def test_hand_chosen_points(self, low, high, y, want):
    got = perturb.reflect_into_box(jnp.float32(y), low=low, high=high)
    np.testing.assert_allclose(float(got), want, atol=1e-6)

  def test_matches_repeated_reflection(self):
    y = np.random.default_rng(0).normal(scale=30.0, size=500).astype(np.float32)
    got = perturb.reflect_into_box(jnp.asarray(y), low=-0.5, high=2.0)
    # float32 representation of |y| up to ~100 limits agreement to ~1e-5.
    np.testing.assert_allclose(got, _reflect_by_loop(y, -0.5, 2.0), atol=5e-5)

  def test_bad_box(self):
    with self.assertRaisesRegex(ValueError, r"finite low < high; got low=1.0, high=1.0"):
      perturb.reflect_into_box(jnp.zeros(3), low=1.0, high=1.0)


class HeatedSampleTest(parameterized.TestCase):

  def test_always_in_box(self):
    key = jax.random.key(0)
    rng = np.random.default_rng(1)
    for low, high in ((-1.0, 1.0), (0.0, 3.0)):
      x = rng.uniform(low, high, size=_MID).astype(np.float32)
      x[:10] = low   # on the walls and just inside them
      x[10:20] = high
      x[20:30] = low + 1e-3
      x[30:40] = high - 1e-3
      for beta in (1e-8, 1e-3, 0.5, 10.0, 1e6):  # std from 1e4 down to 1e-3
        s = np.asarray(_heated(key, x, beta, low=low, high=high))
        self.assertTrue(np.all((s >= low) & (s <= high)), msg=f"beta={beta}, box={low, high}")
        key, _ = jax.random.split(key)

  @parameterized.named_parameters(("uniform_branch", 0.0), ("tiny_beta", 1e-6))
  def test_uniform_limit(self, beta):
    # beta = 0 is drawn as a uniform; beta = 1e-6 (std 1000, box width 2) goes
    # through the reflection, whose deviation from uniform is ~exp(-2 pi^2 std^2
    # / period^2), far below what 2000 samples resolve. Kolmogorov-Smirnov per
    # coordinate, Bonferroni over 3 coordinates at overall level 1%.
    x = jnp.full(_MID, 0.7)
    s = np.asarray(_heated(jax.random.key(2), x, beta, low=-1.0, high=1.0))
    for j in range(3):
      p = stats.kstest(s[:, j], stats.uniform(loc=-1.0, scale=2.0).cdf).pvalue
      self.assertGreater(p, 0.01 / 3, msg=f"coordinate {j}")

  def test_beta_zero_ignores_data(self):
    key = jax.random.key(3)
    a = _heated(key, jnp.zeros(_SMALL), 0.0, low=-1.0, high=1.0)
    b = _heated(key, jnp.full(_SMALL, 0.9), 0.0, low=-1.0, high=1.0)
    np.testing.assert_array_equal(a, b)
    _, k_uniform = jax.random.split(key)
    np.testing.assert_array_equal(a, jax.random.uniform(k_uniform, _SMALL, minval=-1.0,
                                                       maxval=1.0))

  def test_beta_inf_is_data(self):
    x = np.random.default_rng(4).uniform(-1.0, 1.0, size=_SMALL).astype(np.float32)
    np.testing.assert_array_equal(_heated(jax.random.key(5), x, jnp.inf, low=-1.0, high=1.0), x)

  def test_large_beta_stays_near_data(self):
    # std = 1/sqrt(1e4) = 0.01. Reflection is 1-Lipschitz and fixes box points,
    # so |sample - x| <= |gaussian step| even at the walls. With 6000 draws,
    # P(max |z| > 5) <= 6000 * 5.7e-7 = 3.4e-3, hence the bound 5/sqrt(beta).
    beta = 1e4
    x = np.random.default_rng(6).uniform(-1.0, 1.0, size=_MID).astype(np.float32)
    x[:50], x[50:100] = 1.0, -1.0
    dx = np.abs(np.asarray(_heated(jax.random.key(7), x, beta, low=-1.0, high=1.0) - x))
    self.assertLessEqual(dx.max(), 5 / np.sqrt(beta))
    # And it does move: P(all 6000 |z| < 1) = 0.68**6000.
    self.assertGreater(dx.max(), 1 / np.sqrt(beta))

  def test_moderate_beta_moments_away_from_walls(self):
    # beta = 100: std 0.1; x in [-0.3, 0.3] is >= 7 std from the walls, so
    # reflections (probability ~1e-12 per draw) do not bias the moments.
    # n = 60000 draws: mean SE = 0.1/sqrt(n) = 4.1e-4, variance relative SE =
    # sqrt(2/n) = 0.58%; tolerances are 5 SE.
    beta, n = 100.0, np.prod(_BIG)
    x = np.random.default_rng(8).uniform(-0.3, 0.3, size=_BIG).astype(np.float32)
    dx = np.asarray(_heated(jax.random.key(9), x, beta, low=-1.0, high=1.0) - x,
                    np.float64).ravel()
    self.assertLess(abs(dx.mean()), 5 * 0.1 / np.sqrt(n))
    np.testing.assert_allclose(dx.var(), 1 / beta, rtol=5 * np.sqrt(2 / n))

  def test_reflected_half_normal_at_the_wall(self):
    # x on the upper wall, std 0.1, lower wall 20 std away: high - sample is
    # |N(0, 0.01)|, mean 0.1 sqrt(2/pi), std 0.1 sqrt(1 - 2/pi). n = 60000,
    # tolerance 5 SE of the mean.
    n, std = np.prod(_BIG), 0.1
    s = np.asarray(_heated(jax.random.key(10), jnp.ones(_BIG), 1 / std**2, low=-1.0,
                           high=1.0), np.float64)
    depth = 1.0 - s
    se = std * np.sqrt(1 - 2 / np.pi) / np.sqrt(n)
    self.assertLess(abs(depth.mean() - std * np.sqrt(2 / np.pi)), 5 * se)
    # Without reflection half the samples would leave the box.
    self.assertTrue(np.all(depth >= 0))

  def test_same_key_reproduces_reflected_noise(self):
    key = jax.random.key(11)
    x = np.array([[0.9, -0.95, 0.0, 0.5], [1.0, -1.0, 0.25, -0.6]] * 8, np.float32)
    beta = 0.25  # std 2: most points bounce, some several times.
    k_noise, _ = jax.random.split(key)
    y = x + np.asarray(jax.random.normal(k_noise, x.shape), np.float64) / np.sqrt(beta)
    want = _reflect_by_loop(y, -1.0, 1.0)
    np.testing.assert_allclose(_heated(key, x, beta, low=-1.0, high=1.0), want, atol=1e-5)
    np.testing.assert_allclose(perturb.heated_sample(key, x, beta), want, atol=1e-5)

  def test_jit_traced_beta_matches_eager(self):
    key = jax.random.key(12)
    x = np.random.default_rng(13).uniform(-1.0, 1.0, size=_SMALL).astype(np.float32)
    for beta in (0.0, 2.0, jnp.inf):
      np.testing.assert_allclose(_heated(key, x, beta, low=-1.0, high=1.0),
                                 perturb.heated_sample(key, x, beta), atol=1e-6)

  def test_gradients_finite(self):
    key = jax.random.key(14)
    x = np.random.default_rng(15).uniform(-1.0, 1.0, size=_SMALL).astype(np.float32)

    def total(x, beta):
      return jnp.sum(perturb.heated_sample(key, x, beta))

    grad_x = jax.jit(jax.grad(total))
    grad_beta = jax.jit(jax.grad(total, argnums=1))
    np.testing.assert_array_equal(grad_x(x, 0.0), 0.0)  # uniform: independent of x
    np.testing.assert_array_equal(grad_x(x, jnp.inf), 1.0)  # identity
    g = np.asarray(grad_x(x, 0.5))
    # The fold is piecewise +-identity.
    self.assertTrue(np.all(np.isin(g, [-1.0, 1.0])), msg=str(g))
    for beta in (0.0, 0.5, 1e3, jnp.inf):
      self.assertTrue(np.isfinite(float(grad_beta(x, jnp.float32(beta)))), msg=f"beta={beta}")

  def test_dtype_and_shape(self):
    x = jnp.zeros((2, 3, 4, 1), jnp.bfloat16)
    s = _heated(jax.random.key(16), x, jnp.float32(3.0))
    self.assertEqual(s.shape, x.shape)
    self.assertEqual(s.dtype, jnp.bfloat16)

  @parameterized.named_parameters(
      ("negative_beta", dict(beta=-0.1), r"beta must be a number >= 0 \(inf allowed\); got -0.1"),
      ("nan_beta", dict(beta=float("nan")), r"beta must be a number >= 0"),
      ("inverted_box", dict(beta=1.0, low=1.0, high=-1.0),
       r"the box needs finite low < high; got low=1.0, high=-1.0"),
  )
  def test_validation(self, kwargs, message):
    with self.assertRaisesRegex(ValueError, message):
      perturb.heated_sample(jax.random.key(0), jnp.zeros((2, 2)), **kwargs)


class InstanceNoiseTest(absltest.TestCase):

  def test_sigma_zero_is_exact(self):
    x = np.random.default_rng(0).normal(size=_SMALL).astype(np.float32)
    np.testing.assert_array_equal(perturb.instance_noise(jax.random.key(1), x, 0.0), x)
    np.testing.assert_array_equal(_noise(jax.random.key(1), x, jnp.float32(0.0)), x)

  def test_same_key_noise(self):
    x = jnp.linspace(-1, 1, 64).reshape(_SMALL)
    key = jax.random.key(2)
    np.testing.assert_allclose(_noise(key, x, 0.3), x + 0.3 * jax.random.normal(key, x.shape),
                               rtol=1e-6, atol=1e-7)

  def test_statistics(self):
    # n = 60000: mean SE = sigma/sqrt(n), variance relative SE = sqrt(2/n);
    # tolerances are 5 SE.
    sigma, n = 0.3, np.prod(_BIG)
    x = jnp.full(_BIG, 2.0)
    dx = np.asarray(_noise(jax.random.key(3), x, sigma) - x, np.float64)
    self.assertLess(abs(dx.mean()), 5 * sigma / np.sqrt(n))
    np.testing.assert_allclose(dx.var(), sigma**2, rtol=5 * np.sqrt(2 / n))

  def test_validation(self):
    with self.assertRaisesRegex(ValueError, r"sigma must be a finite number >= 0; got -1.0"):
      perturb.instance_noise(jax.random.key(0), jnp.zeros(3), -1.0)
    with self.assertRaisesRegex(ValueError, r"sigma must be a finite number >= 0; got inf"):
      perturb.instance_noise(jax.random.key(0), jnp.zeros(3), float("inf"))


def _kernel_1d(sigma, radius):
  t = np.arange(-radius, radius + 1, dtype=np.float64)
  w = np.exp(-0.5 * (t / sigma)**2)
  return w / w.sum()


class GaussianBlurTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.images = np.random.default_rng(0).normal(size=(2, 12, 10, 3)).astype(np.float32)

  def test_blur_radius(self):
    self.assertEqual(perturb.blur_radius(0.0), 0)
    self.assertEqual(perturb.blur_radius(1.0), 3)
    self.assertEqual(perturb.blur_radius(1.1), 4)
    with self.assertRaisesRegex(ValueError, r"max_sigma must be a finite number >= 0; got -2"):
      perturb.blur_radius(-2)

  def test_sigma_zero_is_identity(self):
    blur = jax.jit(functools.partial(perturb.gaussian_blur, radius=4))
    np.testing.assert_array_equal(blur(self.images, jnp.float32(0.0)), self.images)
    np.testing.assert_array_equal(perturb.gaussian_blur(self.images, 0.0), self.images)

  def test_constant_image_unchanged(self):
    images = np.full((1, 7, 9, 2), 0.37, np.float32)
    out = perturb.gaussian_blur(images, 2.5)  # radius 8 > image size
    np.testing.assert_allclose(out, images, rtol=1e-6)
    np.testing.assert_allclose(np.mean(out), 0.37, rtol=1e-6)

  def test_matches_2d_convolution_in_the_interior(self):
    sigma, radius = 1.2, 3
    k2 = np.outer(_kernel_1d(sigma, radius), _kernel_1d(sigma, radius))
    windows = np.lib.stride_tricks.sliding_window_view(
        self.images.astype(np.float64), (2 * radius + 1, 2 * radius + 1), axis=(1, 2))
    # windows: [N, H - 2r, W - 2r, C, kh, kw]
    want = np.einsum("nhwcij,ij->nhwc", windows, k2)
    got = np.asarray(_blur(self.images, sigma, radius=radius))
    np.testing.assert_allclose(got[:, radius:-radius, radius:-radius], want, atol=1e-5)

  @parameterized.named_parameters(
      ("small", 0.6, None), ("default_radius", 1.5, None), ("wide_radius", 1.0, 6),
      ("radius_beyond_image", 4.0, 15))
  def test_matches_scipy_reflect(self, sigma, radius):
    r = perturb.blur_radius(sigma) if radius is None else radius
    # scipy's mode='reflect' is half-sample symmetric, like jnp.pad 'symmetric'.
    want = ndimage.gaussian_filter(self.images.astype(np.float64), sigma, mode="reflect",
                                   radius=r, axes=(1, 2))
    got = (perturb.gaussian_blur(self.images, sigma) if radius is None
           else _blur(self.images, sigma, radius=radius))
    np.testing.assert_allclose(got, want, atol=1e-5)

  def test_traced_sigma_under_jit(self):
    blur = jax.jit(functools.partial(perturb.gaussian_blur, radius=5))
    for sigma in (0.5, 1.7):
      np.testing.assert_allclose(
          blur(self.images, jnp.float32(sigma)),
          perturb.gaussian_blur(self.images, sigma, radius=5), atol=1e-6)

  def test_gradient_in_sigma(self):
    weights = np.random.default_rng(1).normal(size=self.images.shape).astype(np.float32)

    def f(sigma):
      return jnp.sum(weights * perturb.gaussian_blur(self.images, sigma, radius=6))

    grad = jax.jit(jax.grad(f))
    self.assertTrue(np.isfinite(float(grad(jnp.float32(0.0)))))
    # Central difference, h = 1e-2: truncation ~h^2 relative, well inside 1e-2.
    s, h = 1.3, 1e-2
    f = jax.jit(f)
    fd = (float(f(s + h)) - float(f(s - h))) / (2 * h)
    np.testing.assert_allclose(float(grad(jnp.float32(s))), fd, rtol=1e-2)

  @parameterized.named_parameters(
      ("negative_sigma", dict(sigma=-0.5), r"sigma must be a finite number >= 0; got -0.5"),
      ("bad_radius", dict(sigma=1.0, radius=-1), r"radius must be an integer >= 0; got -1"),
      ("float_radius", dict(sigma=1.0, radius=2.5), r"radius must be an integer >= 0; got 2.5"),
      ("vector_sigma", dict(sigma=np.ones(2), radius=2), r"sigma must be a scalar"),
  )
  def test_validation(self, kwargs, message):
    with self.assertRaisesRegex(ValueError, message):
      perturb.gaussian_blur(self.images, **kwargs)

  def test_rank_error(self):
    with self.assertRaisesRegex(ValueError, r"NHWC images of rank 4; got shape \(12, 10, 3\)"):
      perturb.gaussian_blur(self.images[0], 1.0)

  def test_traced_sigma_needs_radius(self):
    with self.assertRaisesRegex(ValueError, r"traced sigma needs a static radius.*blur_radius"):
      jax.jit(perturb.gaussian_blur)(self.images, 1.0)


if __name__ == "__main__":
  absltest.main()
