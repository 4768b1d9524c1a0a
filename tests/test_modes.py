"""Tests for gan_jax.metrics.modes: mode coverage, occupancy, two-sample distances."""

import functools
import json
import math

from absl.testing import absltest
from absl.testing import parameterized
import jax
import numpy as np
from scipy import stats

import gan_jax.data as data
from gan_jax.metrics import modes

N = 20_000
KEY = jax.random.key(42)


@functools.lru_cache(maxsize=None)
def _dist(name, **overrides):
  return data.make_toy(name, **overrides)


@functools.lru_cache(maxsize=None)
def _draw(name, n=N, seed=42):
  x, labels = _dist(name).sample_with_labels(jax.random.key(seed), n)
  return np.asarray(x, np.float64), np.asarray(labels)


def _kl_bound(n_modes, n):
  """A bound on KL(empirical histogram || truth) for n true samples.

  2 n KL is the G-test statistic, asymptotically chi^2 with M - 1 dof, so KL
  exceeds chi2.ppf(1 - 1e-6, M - 1) / (2 n) with probability ~1e-6.
  """
  return stats.chi2.ppf(1 - 1e-6, n_modes - 1) / (2 * n)



def assert_bad_arguments(test, fn, kwargs, message):
  """``fn(samples, centers, std, **rest)`` on a small valid call changed by ``kwargs`` fails."""
  args = dict(samples=np.zeros((3, 1)), centers=np.zeros((2, 1)), std=0.1)
  args.update(kwargs)
  samples, centers, std = args.pop("samples"), args.pop("centers"), args.pop("std")
  with test.assertRaisesRegex(ValueError, message):
    fn(samples, centers, std, **args)

class ModeStatisticsTest(parameterized.TestCase):

  @parameterized.parameters("grid_25", "ring_8", "mixture_3d_10", "mixture_3d_5",
                            "roth_submanifold", "che_circle", "mixture_1d")
  def test_true_samples(self, name):
    dist = _dist(name)
    x, _ = _draw(name)
    s = modes.mode_statistics(x, dist.centers, dist.std, dist.weights)
    m = dist.n_components
    self.assertEqual(s["modes_captured"], m)
    self.assertEqual(s["n_modes"], m)
    self.assertTrue(np.all(s["captured"]))
    # HQ share: P(chi^2_k <= 9) for a k-dim Gaussian within 3 std (k = 2 for the
    # in-plane noise of the Roth set). Binomial sd sqrt(p (1-p) / N); 5 sd.
    p = stats.chi2.cdf(9, dist.noise_dim)
    self.assertAlmostEqual(s["high_quality_share"], p,
                           delta=5 * math.sqrt(p * (1 - p) / N))
    self.assertEqual(s["n_high_quality"], int(s["mode_counts"].sum()))
    self.assertEqual(s["mode_counts"].shape, (m,))
    self.assertGreaterEqual(s["kl_mode_histogram"], 0.0)
    self.assertLess(s["kl_mode_histogram"], _kl_bound(m, s["n_high_quality"]))

  def test_unequal_weights(self):
    w = np.arange(1, 9) / 36
    dist = _dist("ring_8", weights=tuple(w))
    x = np.asarray(dist.sample(KEY, N))
    s = modes.mode_statistics(x, dist.centers, dist.std, w)
    self.assertEqual(s["modes_captured"], 8)
    self.assertLess(s["kl_mode_histogram"], _kl_bound(8, s["n_high_quality"]))
    # Against equal weights the same samples are far off: KL(w || uniform).
    s_eq = modes.mode_statistics(x, dist.centers, dist.std)
    kl_w = float(np.sum(w * np.log(w * 8)))
    self.assertAlmostEqual(s_eq["kl_mode_histogram"], kl_w, delta=0.02)

  @parameterized.parameters("grid_25", "mixture_3d_10", "ring_8")
  def test_two_modes_only(self, name):
    dist = _dist(name)
    x, labels = _draw(name)
    keep = labels < 2
    s = modes.mode_statistics(x[keep], dist.centers, dist.std)
    self.assertEqual(s["modes_captured"], 2)
    np.testing.assert_array_equal(s["captured"], np.arange(dist.n_components) < 2)
    # KL = log(M/2) + KL(empirical 2-mode split || (1/2, 1/2)), the second term
    # ~ chi^2_1 / (2 n) and >= 0.
    excess = s["kl_mode_histogram"] - math.log(dist.n_components / 2)
    self.assertGreaterEqual(excess, -1e-12)
    self.assertLess(excess, _kl_bound(2, s["n_high_quality"]))

  def test_capture_rule_boundary(self):
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    # Points on the centres: all HQ. n_hq = 320 + k, expected per mode ~80, so
    # the rule "count >= 0.25 * n_hq * w_m" needs about 20.
    for k, captured in ((21, 4), (19, 3)):
      counts = np.array([100, 100, 100, k])
      x = np.repeat(centers, counts, axis=0)
      s = modes.mode_statistics(x, centers, 0.1)
      need = 0.25 * counts.sum() / 4
      self.assertEqual(k >= need, captured == 4)
      self.assertEqual(s["modes_captured"], captured)
    # A fixed-count rule: capture_share=0, min_count=20.
    x = np.repeat(centers, [100, 100, 20, 19], axis=0)
    s = modes.mode_statistics(x, centers, 0.1, capture_share=0.0, min_count=20)
    self.assertEqual(s["modes_captured"], 3)

  def test_quality_threshold_and_kl_by_hand(self):
    centers = np.array([[0.0], [10.0]])
    # Distances 2.9, 0 and 0 std from mode 0; 0 std from mode 1; 3.1 std (not HQ).
    x = np.array([[0.29], [0.0], [0.0], [10.0], [9.69]])
    s = modes.mode_statistics(x, centers, 0.1)
    np.testing.assert_array_equal(s["mode_counts"], [3, 1])
    self.assertAlmostEqual(s["high_quality_share"], 4 / 5)
    want = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    self.assertAlmostEqual(s["kl_mode_histogram"], want, places=10)
    # Per-mode std: with std 0.2 around mode 1 the far point is HQ (1.55 std).
    s = modes.mode_statistics(x, centers, [0.1, 0.2])
    np.testing.assert_array_equal(s["mode_counts"], [3, 2])
    s = modes.mode_statistics(x, centers, 0.1, quality_threshold=4.0)
    np.testing.assert_array_equal(s["mode_counts"], [3, 2])

  def test_no_high_quality_samples(self):
    s = modes.mode_statistics(np.full((5, 2), 100.0), np.zeros((3, 2)), 0.1)
    self.assertEqual(s["modes_captured"], 0)
    self.assertEqual(s["high_quality_share"], 0.0)
    self.assertTrue(math.isnan(s["kl_mode_histogram"]))

  def test_zero_weight_mode_is_finite(self):
    centers = np.array([[0.0], [10.0]])
    x = np.array([[0.0], [10.0]])
    s = modes.mode_statistics(x, centers, 0.1, weights=[1.0, 0.0])
    self.assertTrue(np.isfinite(s["kl_mode_histogram"]))
    self.assertGreater(s["kl_mode_histogram"], 10.0)

  def test_non_finite_samples_are_not_high_quality(self):
    x = np.array([[0.0], [np.nan], [np.inf]])
    s = modes.mode_statistics(x, np.zeros((1, 1)), 0.1)
    self.assertAlmostEqual(s["high_quality_share"], 1 / 3)

  @parameterized.named_parameters(
      ("std", dict(std=0.0), "std must be"),
      ("weights", dict(weights=[1.0]), "weights must be 2"),
      ("threshold", dict(quality_threshold=-1.0), "quality_threshold"),
      ("share", dict(capture_share=float("nan")), "capture_share"),
      ("min_count", dict(min_count=0), "min_count"),
      ("dim", dict(samples=np.zeros((3, 2))), "1 columns"),
  )
  def test_bad_arguments(self, kwargs, message):
    assert_bad_arguments(self, modes.mode_statistics, kwargs, message)


class SupportStatisticsTest(absltest.TestCase):

  def test_true_frames(self):
    dist = _dist("cube_frames")
    x, _ = _draw("cube_frames")
    s = modes.support_statistics(x, dist)
    self.assertEqual(s["high_quality_share"], 1.0)
    self.assertLess(s["mean_distance_to_support"], 1e-6)
    self.assertEqual(s["segment_coverage"], 1.0)
    # 240 pieces, >= 55 expected points in each: all hit.
    self.assertEqual(s["bin_coverage"], 1.0)
    self.assertEqual(s["components_captured"], 2.0)
    self.assertLess(s["kl_component_histogram"], _kl_bound(2, N))

  def test_inner_cube_only(self):
    dist = _dist("cube_frames")
    x = np.asarray(_dist("cube_frames", weights=(1.0, 0.0)).sample(KEY, 4000))
    s = modes.support_statistics(x, dist)
    self.assertEqual(s["segment_coverage"], 0.5)
    self.assertEqual(s["bin_coverage"], 0.5)
    self.assertEqual(s["components_captured"], 1.0)
    # All mass on the cube of weight 1/3: KL = log 3.
    self.assertAlmostEqual(s["kl_component_histogram"], math.log(3), places=9)

  def test_off_support(self):
    dist = _dist("cube_frames")
    x = np.random.default_rng(0).uniform(-1, 1, size=(4000, 3))
    s = modes.support_statistics(x, dist, threshold=0.02)
    # Uniform points within 0.02 of 24 edges (tubes of volume pi 0.02^2 * 14.4
    # out of 8): ~0.2%; allow 1%.
    self.assertLess(s["high_quality_share"], 0.01)
    s_wide = modes.support_statistics(x, dist, threshold=10.0)
    self.assertEqual(s_wide["high_quality_share"], 1.0)

  def test_needs_segments(self):
    with self.assertRaisesRegex(ValueError, "segment distribution"):
      modes.support_statistics(np.zeros((2, 2)), _dist("ring_8"))


class GridOccupancyTest(parameterized.TestCase):

  def test_by_hand(self):
    x = np.array([[0.1, 0.1], [0.2, 0.2], [0.9, 0.1], [1.0, 1.0], [1.5, 0.5]])
    # Cells (0,0) twice, (1,0), (1,1) for the point on the upper wall; the
    # point outside is ignored: 3 of 4 cells.
    self.assertEqual(modes.grid_occupancy(x, low=0.0, high=1.0, bins=2), 0.75)
    # Per-axis box [0, 2] x [-2, 2]: cells (0,1) three times and (1,1) twice.
    self.assertEqual(modes.grid_occupancy(x, low=[0.0, -2.0], high=[2.0, 2.0], bins=2),
                     0.5)

  def test_reference_closed_form(self):
    self.assertAlmostEqual(modes.uniform_occupancy_reference(1, 2, 10), 1 / 100)
    self.assertAlmostEqual(modes.uniform_occupancy_reference(500, 2, 20),
                           1 - (1 - 1 / 400) ** 500, places=12)
    self.assertEqual(modes.uniform_occupancy_reference(7, 3, 1), 1.0)
    # A huge grid (MNIST-sized) does not overflow: ~ n / C.
    np.testing.assert_allclose(modes.uniform_occupancy_reference(1000, 784, 2),
                               1000 / 2 ** 784, rtol=1e-9)
    self.assertEqual(modes.uniform_occupancy_reference(1000, 784, 10), 0.0)
    x = np.random.default_rng(0).uniform(size=(10, 784))
    self.assertEqual(modes.grid_occupancy(x, low=0.0, high=1.0, bins=2), 10 / 2 ** 784)

  @parameterized.parameters((300, 2, 20), (2000, 3, 10), (50, 1, 30))
  def test_uniform_samples_match_reference(self, n, dim, bins):
    x = np.random.default_rng(n).uniform(-1, 1, size=(n, dim))
    got = modes.grid_occupancy(x, low=-1.0, high=1.0, bins=bins)
    want = modes.uniform_occupancy_reference(n, dim, bins)
    # Exact variance of the number of empty cells among C for n uniform balls:
    # C(C-1)(1-2/C)^n + C(1-1/C)^n - C^2(1-1/C)^(2n). Allow 5 sd of the share.
    c = bins ** dim
    var = (c * (c - 1) * (1 - 2 / c) ** n + c * (1 - 1 / c) ** n
           - c * c * (1 - 1 / c) ** (2 * n))
    self.assertAlmostEqual(got, want, delta=5 * math.sqrt(var) / c)

  def test_collapsed_samples(self):
    # "Frozen noise": a generator that maps all noise near one point.
    x = np.random.default_rng(1).normal(0.3, 0.01, size=(2000, 3))
    got = modes.grid_occupancy(x, low=-1.0, high=1.0, bins=10)
    self.assertLessEqual(got, 8 / 1000)
    self.assertGreater(modes.uniform_occupancy_reference(2000, 3, 10), 0.8)

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, "low < high"):
      modes.grid_occupancy(np.zeros((2, 2)), low=1.0, high=0.0, bins=2)
    with self.assertRaisesRegex(ValueError, "bins must be an integer >= 1"):
      modes.grid_occupancy(np.zeros((2, 2)), low=0.0, high=1.0, bins=0)


def _expected_abs_normal(mu, s):
  """E|W| for W ~ N(mu, s^2) (folded normal mean)."""
  return (s * math.sqrt(2 / math.pi) * math.exp(-mu * mu / (2 * s * s))
          + mu * (1 - 2 * stats.norm.cdf(-mu / s)))


class TwoSampleTest(parameterized.TestCase):

  REPS, n = 20, 400

  def _replicates(self, fn, shift):
    rng = np.random.default_rng(7)
    vals = []
    for _ in range(self.REPS):
      x = rng.normal(size=(self.n, self.dim))
      y = rng.normal(size=(self.n, self.dim)) + shift
      vals.append(fn(x, y))
    # The mean of REPS independent estimates has sd ~ sample sd / sqrt(REPS).
    return np.mean(vals), np.std(vals, ddof=1) / math.sqrt(self.REPS)

  def test_energy_distance_closed_form(self):
    self.dim = 1
    # X ~ N(0,1), Y ~ N(mu,1): E|X-Y| = E|N(mu, 2)|, E|X-X'| = E|N(0, 2)|.
    for mu in (0.0, 1.0):
      want = 2 * _expected_abs_normal(mu, math.sqrt(2)) - 2 * _expected_abs_normal(
          0.0, math.sqrt(2))
      mean, se = self._replicates(modes.energy_distance, mu)
      self.assertAlmostEqual(mean, want, delta=5 * se)
      if mu:
        self.assertGreater(mean, 20 * se)  # clearly > 0

  def test_mmd_closed_form(self):
    self.dim, h = 2, 1.0
    shift = np.array([1.0, 0.0])
    # Gaussian smoothing: E k(X, Y) = (h^2/(h^2+2))^(d/2) exp(-|delta|^2/(2(h^2+2))).
    a = (h * h / (h * h + 2)) ** (self.dim / 2)
    for delta in (0.0 * shift, shift):
      want = 2 * a * (1 - math.exp(-np.sum(delta ** 2) / (2 * (h * h + 2))))
      mean, se = self._replicates(
          functools.partial(modes.mmd_rbf, bandwidth=h), delta)
      self.assertAlmostEqual(mean, want, delta=5 * se)

  def test_unbiased_estimators_by_brute_force(self):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(4, 3)) + 0.5
    dist = lambda a, b: np.linalg.norm(a - b)
    pairs = lambda a: [(i, j) for i in range(len(a)) for j in range(len(a)) if i != j]
    e_xy = np.mean([dist(a, b) for a in x for b in y])
    e_xx = np.mean([dist(x[i], x[j]) for i, j in pairs(x)])
    e_yy = np.mean([dist(y[i], y[j]) for i, j in pairs(y)])
    self.assertAlmostEqual(modes.energy_distance(x, y), 2 * e_xy - e_xx - e_yy, places=10)
    k = lambda a, b: math.exp(-np.sum((a - b) ** 2) / (2 * 0.7 ** 2))
    mmd = (np.mean([k(x[i], x[j]) for i, j in pairs(x)])
           + np.mean([k(y[i], y[j]) for i, j in pairs(y)])
           - 2 * np.mean([k(a, b) for a in x for b in y]))
    self.assertAlmostEqual(modes.mmd_rbf(x, y, bandwidth=0.7), mmd, places=10)

  def test_same_toy_distribution(self):
    dist = _dist("grid_25")
    x = np.asarray(dist.sample(jax.random.key(1), 1000))
    y = np.asarray(dist.sample(jax.random.key(2), 1000))
    collapsed = x[np.asarray(dist.nearest_mode(x)) < 5]
    # Under P = Q the unbiased statistic is degenerate, of order
    # E|X - X'| / n ~ 4 / 1000; a generator stuck on 5 of 25 modes is at O(1).
    same = modes.energy_distance(x, y)
    diff = modes.energy_distance(collapsed, y)
    self.assertLess(abs(same), 0.05)
    self.assertGreater(diff, 20 * abs(same) + 0.5)
    self.assertGreater(modes.mmd_rbf(collapsed, y, bandwidth="median"),
                       20 * abs(modes.mmd_rbf(x, y, bandwidth="median")))

  def test_bad_arguments(self):
    x = np.zeros((3, 2))
    with self.assertRaisesRegex(ValueError, "same dimension"):
      modes.energy_distance(x, np.zeros((3, 3)))
    with self.assertRaisesRegex(ValueError, "at least 2 samples"):
      modes.energy_distance(x, np.zeros((1, 2)))
    with self.assertRaisesRegex(ValueError, "bandwidth must be .*'median'"):
      modes.mmd_rbf(x, x, bandwidth="mean")
    with self.assertRaisesRegex(ValueError, "bandwidth must be a finite number > 0"):
      modes.mmd_rbf(x, x, bandwidth=0.0)


class ToyMetricsTest(parameterized.TestCase):

  @parameterized.parameters(*data.TOY_DATASETS)
  def test_true_samples(self, name):
    dist = _dist(name)
    x, _ = _draw(name)
    ref, _ = _draw(name, seed=43)
    out = modes.toy_metrics(x[:2000], dist, reference=ref[:2000])
    json.dumps(out)
    self.assertTrue(all(type(v) is float for v in out.values()))
    if dist.centers is not None:
      self.assertEqual(out["modes_captured"], out["n_modes"])
      self.assertIn("kl_mode_histogram", out)
    else:
      self.assertEqual(out["segment_coverage"], 1.0)
      self.assertEqual(out["components_captured"], 2.0)
    # Under P = Q the unbiased energy distance is a degenerate U-statistic of
    # order E|X - X'| (1/n + 1/m); allow 10 times that.
    spread = np.mean(np.linalg.norm(ref[:500, None] - ref[None, 500:1000], axis=-1))
    self.assertLess(abs(out["energy_distance"]), 10 * spread * (2 / 2000))
    self.assertLessEqual(out["grid_occupancy"], 1.0)
    self.assertEqual(
        out["grid_occupancy_uniform_reference"],
        modes.uniform_occupancy_reference(2000, dist.dim, 10))

  def test_collapsed_generator(self):
    dist = _dist("grid_25")
    x, labels = _draw("grid_25")
    out = modes.toy_metrics(x[labels == 3], dist)
    self.assertEqual(out["modes_captured"], 1.0)
    self.assertAlmostEqual(out["kl_mode_histogram"], math.log(25), places=9)
    self.assertNotIn("energy_distance", out)


class PublishedModeProtocolTest(parameterized.TestCase):
  """PacGAN's / VEEGAN's protocol: nearest mode in std units, one HQ sample captures."""

  def test_known_counts(self):
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    std = 0.1
    # 5 samples on mode 0, 3 on mode 1, 2 at 2.9 std from mode 2, 4 at 3.5 std
    # from mode 3 (not HQ: mode 3 is not captured) and 1 far from every mode.
    x = np.concatenate([
        np.repeat(centers[:1], 5, axis=0),
        np.repeat(centers[1:2], 3, axis=0),
        np.repeat(centers[2:3] + [0.29, 0.0], 2, axis=0),
        np.repeat(centers[3:4] + [0.0, -0.35], 4, axis=0),
        [[5.0, 5.0]],
    ])
    s = modes.published_mode_statistics(x, centers, std)
    self.assertEqual(s["protocol"], "pacgan")
    np.testing.assert_array_equal(s["mode_counts"], [5, 3, 2, 0])
    np.testing.assert_array_equal(s["captured"], [True, True, True, False])
    self.assertEqual(s["modes_captured"], 3)
    self.assertEqual(s["n_modes"], 4)
    self.assertEqual(s["n_samples"], 15)
    self.assertEqual(s["n_high_quality"], 10)
    self.assertEqual(s["high_quality_share"], 10 / 15)
    p = np.array([5, 3, 2]) / 10
    want = float(np.sum(p * np.log(p / 0.25)))  # KL(generated || true), zero terms dropped
    self.assertAlmostEqual(s["kl_mode_histogram"], want, places=10)
    # One HQ sample captures a mode here; mode_statistics' expected-share rule
    # needs 0.25 * 301 / 4 ~ 19 of them.
    x1 = np.concatenate([np.repeat(centers[:3], 100, axis=0), centers[3:4]])
    self.assertEqual(modes.published_mode_statistics(x1, centers, std)["modes_captured"], 4)
    self.assertEqual(modes.mode_statistics(x1, centers, std)["modes_captured"], 3)

  def test_mode_hit_only_by_low_quality_sample_is_not_captured(self):
    centers = np.array([[0.0], [10.0]])
    x = np.array([[0.0], [0.0], [10.35]])   # 3.5 std from mode 1
    s = modes.published_mode_statistics(x, centers, 0.1)
    np.testing.assert_array_equal(s["captured"], [True, False])
    self.assertEqual(s["modes_captured"], 1)
    self.assertAlmostEqual(s["kl_mode_histogram"], math.log(2), places=10)
    # With threshold 4 the same sample is HQ and captures mode 1.
    s = modes.published_mode_statistics(x, centers, 0.1, quality_threshold=4.0)
    self.assertEqual(s["modes_captured"], 2)

  def test_threshold_is_strict(self):
    # Exactly 3 std (representable: std 1) is not HQ in PacGAN's code (dis < 3).
    s = modes.published_mode_statistics(np.array([[3.0], [2.5]]), np.zeros((1, 1)), 1.0)
    self.assertEqual(s["n_high_quality"], 1)

  def test_nearest_mode_in_std_units(self):
    # Euclidean nearest is mode 0 (distance 1 vs 2), but in std units mode 1
    # is nearer (1 / 0.1 = 10 vs 2 / 1 = 2): the sample is HQ for mode 1.
    centers = np.array([[0.0], [3.0]])
    x = np.array([[1.0]])
    s = modes.published_mode_statistics(x, centers, [0.1, 1.0])
    np.testing.assert_array_equal(s["mode_counts"], [0, 1])
    # Per-coordinate std [M, d] (a diagonal covariance): 2.5, 0.25, 3.5 and 2.9
    # std away, so three HQ samples; with the isotropic 0.1 only the first two.
    x = np.array([[0.25, 0.0], [0.0, 0.25], [0.35, 0.0], [0.0, 2.9]])
    s = modes.published_mode_statistics(x, np.zeros((1, 2)), [[0.1, 1.0]])
    self.assertEqual(s["n_high_quality"], 3)
    s = modes.published_mode_statistics(x, np.zeros((1, 2)), 0.1)
    self.assertEqual(s["n_high_quality"], 2)

  def test_true_samples_capture_every_mode(self):
    for name in ("ring_8", "grid_25"):
      dist = _dist(name)
      x = _draw(name)[0][:modes.PUBLISHED_PROTOCOL_SAMPLES]   # the cached draws
      s = modes.published_mode_statistics(x, dist.centers, dist.std, dist.weights)
      self.assertEqual(s["modes_captured"], dist.n_components)
      p = stats.chi2.cdf(9, 2)
      n = modes.PUBLISHED_PROTOCOL_SAMPLES
      self.assertAlmostEqual(s["high_quality_share"], p, delta=5 * math.sqrt(p * (1 - p) / n))
      self.assertLess(s["kl_mode_histogram"], _kl_bound(dist.n_components, s["n_high_quality"]))

  def test_non_finite_samples_are_not_high_quality(self):
    x = np.array([[0.0], [np.nan], [np.inf]])
    s = modes.published_mode_statistics(x, np.zeros((1, 1)), 0.1)
    self.assertEqual(s["n_high_quality"], 1)

  @parameterized.named_parameters(
      ("std_zero", dict(std=0.0), "std must be finite and > 0"),
      ("std_shape", dict(std=np.ones(3)), r"std must be a scalar, \[M\]"),
      ("weights", dict(weights=[1.0]), "weights must be 2"),
      ("threshold", dict(quality_threshold=0.0), "quality_threshold"),
      ("dim", dict(samples=np.zeros((3, 2))), "1 columns"),
  )
  def test_bad_arguments(self, kwargs, message):
    assert_bad_arguments(self, modes.published_mode_statistics, kwargs, message)


if __name__ == "__main__":
  absltest.main()
