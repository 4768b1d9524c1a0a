"""Tests for gan_jax.metrics.fidelity: KID and precision / recall / density / coverage."""

import contextlib
import io
import shutil
import tempfile
import tracemalloc
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import ml_collections
import numpy as np
from prdc import compute_prdc

import gan_jax.data as data
from gan_jax.data.source import from_toy
from gan_jax.metrics import distances
from gan_jax.metrics import fidelity
from gan_jax.metrics import modes
from gan_jax.train import evaluate


def _reference_prdc(real, fake, k):
  # The authors' package prints the set sizes on every call.
  with contextlib.redirect_stdout(io.StringIO()):
    return {name: float(v) for name, v in compute_prdc(real, fake, nearest_k=k).items()}


def _sets(n, m, d, seed, shift=0.3, scale=1.2):
  rng = np.random.default_rng(seed)
  return rng.standard_normal((n, d)), shift + scale * rng.standard_normal((m, d))


def _kernel(a, b):
  return (float(np.dot(a, b)) / len(a) + 1.0) ** 3


def _mmd2_by_loops(x, y):
  """The unbiased estimate written out term by term."""
  n, m = len(x), len(y)
  xx = sum(_kernel(x[i], x[j]) for i in range(n) for j in range(n) if i != j)
  yy = sum(_kernel(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
  xy = sum(_kernel(x[i], y[j]) for i in range(n) for j in range(m))
  return xx / (n * (n - 1)) + yy / (m * (m - 1)) - 2 * xy / (n * m)


def _mmd2_by_matrices(x, y):
  """The same estimate from full kernel matrices with their diagonals removed."""
  d = x.shape[1]
  k_xx, k_yy, k_xy = ((a @ b.T / d + 1.0) ** 3 for a, b in ((x, x), (y, y), (x, y)))
  n, m = len(x), len(y)
  return ((k_xx.sum() - np.trace(k_xx)) / (n * (n - 1))
          + (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1)) - 2 * k_xy.mean())


def _gaussian_kernel_mean(alpha, beta):
  """``E (A.B / d + 1)^3`` for independent ``A ~ N(alpha, I)``, ``B ~ N(beta, I)``.

  With ``s = alpha.beta``: ``E A.B = s``, ``E (A.B)^2 = d + |alpha|^2 +
  |beta|^2 + s^2`` and, from the third moments ``E a_i a_j a_k = alpha_i
  alpha_j alpha_k + alpha_i delta_jk + alpha_j delta_ik + alpha_k delta_ij``,
  ``E (A.B)^3 = s^3 + 3 s (|alpha|^2 + |beta|^2) + (3 d + 6) s``.
  """
  d, s = len(alpha), float(alpha @ beta)
  na, nb = float(alpha @ alpha), float(beta @ beta)
  m2 = d + na + nb + s * s
  m3 = s ** 3 + 3 * s * (na + nb) + (3 * d + 6) * s
  return 1 + 3 * s / d + 3 * m2 / d ** 2 + m3 / d ** 3


class PrdcTest(parameterized.TestCase):

  @parameterized.parameters(
      (200, 300, 3, 3, 0),
      (500, 200, 16, 5, 1),
      (150, 150, 64, 1, 2),
      (400, 250, 2, 10, 3),
      (120, 90, 8, 7, 4),
  )
  def test_matches_authors_package(self, n, m, d, k, seed):
    real, fake = _sets(n, m, d, seed)
    want = _reference_prdc(real, fake, k)
    got = fidelity.prdc(real, fake, k_precision_recall=k, k_density_coverage=k)
    # Shares are counts over a set size: equal exactly when the same points
    # are inside; density is a count over k M.
    for name in ("precision", "recall", "coverage"):
      self.assertEqual(got[name], want[name], name)
    np.testing.assert_allclose(got["density"], want["density"], rtol=1e-12)
    # Not trivial cases: the metrics differ from their limits.
    self.assertTrue(0 < got["precision"] < 1 and 0 < got["coverage"] < 1, got)
    self.assertEqual(fidelity.precision_recall(real, fake, k=k),
                     {"precision": got["precision"], "recall": got["recall"]})
    self.assertEqual(fidelity.density_coverage(real, fake, k=k),
                     {"density": got["density"], "coverage": got["coverage"]})

  def test_separate_ranks_match_package_per_rank(self):
    real, fake = _sets(300, 260, 4, 7)
    got = fidelity.prdc(real, fake)  # the papers' ranks: 3 and 5
    at3, at5 = _reference_prdc(real, fake, 3), _reference_prdc(real, fake, 5)
    self.assertEqual((got["precision"], got["recall"]), (at3["precision"], at3["recall"]))
    self.assertEqual(got["coverage"], at5["coverage"])
    np.testing.assert_allclose(got["density"], at5["density"], rtol=1e-12)

  @parameterized.parameters(1, 3, 5)
  def test_set_against_itself(self, k):
    real, _ = _sets(250, 1, 6, 11)
    got = fidelity.prdc(real, real.copy(), k_precision_recall=k, k_density_coverage=k)
    self.assertEqual((got["precision"], got["recall"], got["coverage"]), (1.0, 1.0, 1.0))
    # Each closed ball holds its centre and its k nearest neighbours (no ties in
    # continuous data), so sum_j sum_i 1[...] = N (k + 1) and density (k + 1) / k.
    self.assertEqual(got["density"], (k + 1) / k)
    # The package tests distance < radius, which drops the k-th neighbour.
    self.assertEqual(_reference_prdc(real, real, k)["density"], 1.0)

  def test_independent_samples_of_one_distribution(self):
    real, fake = _sets(1000, 1000, 2, 5, shift=0.0, scale=1.0)
    got = fidelity.prdc(real, fake)
    # E[mass of a k-NN ball] = k / N, so E density = 1; the shares are high.
    self.assertAlmostEqual(got["density"], 1.0, delta=0.1)
    for name in ("precision", "recall", "coverage"):
      self.assertGreater(got[name], 0.9, name)

  def test_disjoint_far_apart_sets(self):
    real, fake = _sets(100, 80, 3, 6, shift=100.0, scale=1.0)
    self.assertEqual(fidelity.prdc(real, fake),
                     {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0})

  def test_closed_balls_on_ties(self):
    # Real 0, 1, 3 with k = 1: radii 1, 1, 2. Generated -1 lies exactly on the
    # sphere of 0 (all values exact in binary); -6 and -11 are outside every
    # ball; the generated radii (5) reach every real point.
    real, fake = np.array([[0.0], [1.0], [3.0]]), np.array([[-1.0], [-6.0], [-11.0]])
    got = fidelity.prdc(real, fake, k_precision_recall=1, k_density_coverage=1)
    self.assertEqual(got, {"precision": 1 / 3, "recall": 1.0, "density": 1 / 3,
                           "coverage": 1 / 3})
    want = _reference_prdc(real, fake, 1)      # open balls: the tie is outside
    self.assertEqual(want, {"precision": 0.0, "recall": 1.0, "density": 0.0,
                            "coverage": 0.0})

  def test_nearest_neighbour_radii_by_sorting(self):
    x, _ = _sets(60, 1, 3, 8)
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    for k in (1, 2, 59):
      want = [np.sort(np.delete(d[i], i))[k - 1] for i in range(len(x))]
      np.testing.assert_allclose(fidelity.nearest_neighbour_radii(x, k=k), want,
                                 rtol=1e-12, atol=1e-12)
    # A duplicate point is a neighbour at distance 0; the point itself is not.
    dup = np.array([[0.0], [0.0], [5.0]])
    np.testing.assert_array_equal(fidelity.nearest_neighbour_radii(dup, k=1), [0, 0, 5])

  def test_blocks_give_the_same_answer_and_bound_memory(self):
    real, fake = _sets(1200, 1000, 4, 9)
    whole = fidelity.prdc(real, fake)
    # 2**14 entries: blocks of 13 to 16 rows, about a hundred per pass.
    with mock.patch.object(fidelity, "_BLOCK_ENTRIES", 2 ** 14):
      tracemalloc.start()
      try:
        blocked = fidelity.prdc(real, fake)
        peak = tracemalloc.get_traced_memory()[1]
      finally:
        tracemalloc.stop()
    self.assertEqual(blocked, whole)
    full_matrix = 1200 * 1200 * 8  # one float64 distance matrix: 11.5 MB
    self.assertLess(peak, full_matrix / 10)

  @parameterized.named_parameters(
      ("real_1d", dict(real=np.zeros(5)), r"real must be a 2-D \[n, d\] array"),
      ("fake_3d", dict(fake=np.zeros((5, 2, 1))), r"fake must be a 2-D \[n, d\] array"),
      ("empty", dict(real=np.zeros((0, 2))), "n >= 1"),
      ("dims", dict(fake=np.zeros((6, 3))), "same number of columns"),
      ("nan", dict(real=np.array([[0.0, np.nan]] + [[1.0, 2.0]] * 5)),
       "real must hold finite values; 1 of its 6 rows"),
      ("inf", dict(fake=np.array([[np.inf, 0.0]] * 6)), "fake must hold finite values"),
      ("k_real", dict(k_precision_recall=6), r"k_precision_recall must be smaller than "
       r"the number of points of real .*1 <= k_precision_recall <= n - 1"),
      ("k_fake", dict(fake=np.ones((3, 2)), k_precision_recall=3), "points of fake"),
      ("k_dc", dict(k_density_coverage=7), "k_density_coverage must be smaller"),
      ("k_zero", dict(k_density_coverage=0), "k_density_coverage must be an integer >= 1"),
      ("k_float", dict(k_precision_recall=2.5), "k_precision_recall must be an integer"),
  )
  def test_bad_arguments(self, kwargs, message):
    rng = np.random.default_rng(0)
    args = dict(real=rng.standard_normal((6, 2)), fake=rng.standard_normal((6, 2)),
                k_precision_recall=1, k_density_coverage=1)
    args.update(kwargs)
    with self.assertRaisesRegex(ValueError, message):
      fidelity.prdc(args.pop("real"), args.pop("fake"), **args)

  def test_bad_k_of_the_single_metrics(self):
    x = np.zeros((4, 2))
    with self.assertRaisesRegex(ValueError, "k must be smaller than the number of points of "
                                "fake"):
      fidelity.precision_recall(np.ones((10, 2)), x, k=4)
    # density and coverage use only the real set's neighbours.
    self.assertIn("density", fidelity.density_coverage(np.arange(20.0).reshape(10, 2), x[:1],
                                                       k=4))
    with self.assertRaisesRegex(ValueError, "k must be smaller than the number of points of "
                                "real"):
      fidelity.density_coverage(x, x, k=4)


class KidTest(parameterized.TestCase):

  @parameterized.parameters((30, 40, 5, 0), (25, 25, 1, 1), (12, 50, 17, 2))
  def test_unbiased_mmd_by_loops(self, n, m, d, seed):
    x, y = _sets(n, m, d, seed)
    np.testing.assert_allclose(fidelity.polynomial_mmd2(x, y), _mmd2_by_loops(x, y),
                               rtol=1e-12)

  def test_blocked_kernel_sums(self):
    x, y = _sets(300, 200, 6, 3)
    with mock.patch.object(fidelity, "_BLOCK_ENTRIES", 1000):
      blocked = fidelity.polynomial_mmd2(x, y)
    np.testing.assert_allclose(blocked, _mmd2_by_matrices(x, y), rtol=1e-12)

  def test_one_subset_of_whole_sets(self):
    # subset_size >= both sizes: capped, and each subset is a permutation of
    # its whole set, on which the estimate does not depend.
    x, y = _sets(80, 80, 10, 4)
    out = fidelity.kid(x, y, subset_size=1000, num_subsets=1)
    self.assertEqual(out["kid_subset_size"], 80)
    self.assertEqual(out["kid_num_subsets"], 1)
    np.testing.assert_allclose(out["kid"], _mmd2_by_loops(x, y), rtol=1e-12)
    self.assertEqual(out["kid_std"], 0.0)

  def test_many_subsets_from_the_same_draws(self):
    x, y = _sets(400, 300, 12, 5)
    out = fidelity.kid(x, y, subset_size=100, num_subsets=20, seed=3)
    real_idx, fake_idx = fidelity.kid_subset_indices(400, 300, subset_size=100,
                                                     num_subsets=20, seed=3)
    self.assertEqual(real_idx.shape, (20, 100))
    for i, j in zip(real_idx, fake_idx):   # distinct points within a subset
      self.assertEqual(len(set(i)), 100)
      self.assertEqual(len(set(j)), 100)
    self.assertLess(real_idx.max(), 400)
    self.assertLess(fake_idx.max(), 300)
    values = [_mmd2_by_matrices(x[i], y[j]) for i, j in zip(real_idx, fake_idx)]
    np.testing.assert_allclose(out["kid"], np.mean(values), rtol=1e-12)
    np.testing.assert_allclose(out["kid_std"], np.std(values), rtol=1e-10)
    # The seed changes the draws; the same seed repeats them.
    self.assertEqual(fidelity.kid(x, y, subset_size=100, num_subsets=20, seed=3), out)
    self.assertNotEqual(fidelity.kid(x, y, subset_size=100, num_subsets=20, seed=4)["kid"],
                        out["kid"])

  def test_capped_subset_size(self):
    x, y = _sets(50, 200, 3, 6)
    self.assertEqual(fidelity.kid(x, y, num_subsets=2)["kid_subset_size"], 50)

  @parameterized.parameters((0.0, 8), (0.5, 8), (2.0, 4))
  def test_gaussians_against_population_value(self, shift, d):
    rng = np.random.default_rng(7)
    real = rng.standard_normal((600, d))
    fake = shift + rng.standard_normal((2000, d))
    out = fidelity.kid(real, fake, subset_size=300, num_subsets=20)
    alpha, beta = np.zeros(d), np.full(d, shift)
    want = (_gaussian_kernel_mean(alpha, alpha) + _gaussian_kernel_mean(beta, beta)
            - 2 * _gaussian_kernel_mean(alpha, beta))
    # Each subset estimate is unbiased with sd ~ kid_std; their mean (over
    # correlated subsets) has sd at most kid_std, so 4 sd is a ~1e-4 event.
    self.assertLess(abs(out["kid"] - want), 4 * out["kid_std"])
    if shift:  # and the shifted sets are told apart
      self.assertGreater(out["kid"], 4 * out["kid_std"])

  def test_point_masses_closed_form(self):
    # Every real point at a = 0, every generated one at b = 3 (d = 4): all
    # kernel values are constants, k(a, a) = 1, k(b, b) = (36 / 4 + 1)^3 = 1000,
    # k(a, b) = 1, so every subset gives 1 + 1000 - 2 exactly.
    out = fidelity.kid(np.zeros((30, 4)), np.full((40, 4), 3.0), subset_size=20,
                       num_subsets=5)
    self.assertEqual(out["kid"], 999.0)
    self.assertEqual(out["kid_std"], 0.0)

  def test_float32_inputs_are_computed_in_float64(self):
    x, y = _sets(60, 60, 7, 9)
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    self.assertEqual(fidelity.kid(x32, y32, num_subsets=3),
                     fidelity.kid(x32.astype(np.float64), y32.astype(np.float64),
                                  num_subsets=3))

  @parameterized.named_parameters(
      ("ndim", dict(real_features=np.zeros(10)), r"real_features must be a 2-D \[n, d\]"),
      ("dims", dict(fake_features=np.zeros((10, 3))), "same number of columns"),
      ("nan", dict(fake_features=np.full((10, 2), np.nan)),
       "fake_features must hold finite values"),
      ("subset_one", dict(subset_size=1), "KID needs subsets of at least 2 points"),
      ("one_point", dict(real_features=np.zeros((1, 2))), "n_real=1"),
      ("subsets_zero", dict(num_subsets=0), "num_subsets must be an integer >= 1"),
  )
  def test_bad_arguments(self, kwargs, message):
    args = dict(real_features=np.zeros((10, 2)), fake_features=np.ones((10, 2)))
    args.update(kwargs)
    with self.assertRaisesRegex(ValueError, message):
      fidelity.kid(args.pop("real_features"), args.pop("fake_features"), **args)


class _DataGame:
  """A 'generator' that samples the data itself (state unused)."""

  def __init__(self, dist):
    self.dist = dist

  def sample(self, state, key, n):
    del state
    return self.dist.sample(key, n)


class EvaluatorReportTest(absltest.TestCase):
  """The toy evaluator reports these metrics beside the mode statistics."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    # One evaluator (its compiles dominate the cost) with fewer eval samples
    # than the protocol's 2,500, so that it must draw more.
    cls.dist = data.make_toy("ring_8")
    config = ml_collections.ConfigDict({"seed": 0, "train": {"eval_samples": 400},
                                        "game": {"perturbation": None}})
    cls.workdir = tempfile.mkdtemp()
    cls.ev = evaluate.Evaluator(_DataGame(cls.dist), from_toy(cls.dist), config, cls.workdir)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.workdir)
    super().tearDownClass()

  def test_perfect_generator(self):
    out = self.ev.evaluate(None, 0)
    for key in ("precision", "recall", "coverage"):
      self.assertGreater(out[key], 0.8, key)
    self.assertAlmostEqual(out["density"], 1.0, delta=0.2)
    self.assertEqual(out["pacgan_modes"], 8.0)
    self.assertGreater(out["pacgan_high_quality"], 0.97)   # P(chi^2_2 < 9) = 0.989
    self.assertLess(out["pacgan_kl"], 0.02)
    # The protocol scores exactly 2,500 samples: x, then further draws.
    x = self.ev.samples(None, 0)
    p = self.ev.protocol_samples(None, 0, x)
    self.assertEqual(p.shape, (modes.PUBLISHED_PROTOCOL_SAMPLES, 2))
    np.testing.assert_array_equal(p[:400], x)
    self.assertEqual(len(np.unique(p, axis=0)), len(p))   # fresh keys, fresh points
    self.assertEqual(out["pacgan_high_quality"], modes.published_mode_statistics(
        p, self.dist.centers, self.dist.std, self.dist.weights)["high_quality_share"])
    # With more eval samples than that, the first 2,500 are used as they are.
    many = np.arange(6000.0).reshape(3000, 2)
    np.testing.assert_array_equal(self.ev.protocol_samples(None, 0, many), many[:2500])

  def test_diverged_samples_give_nan_not_an_error(self):
    x = np.array(self.ev.samples(None, 0))
    x[3] = np.nan
    out = self.ev.metrics(x)
    for key in ("precision", "recall", "density", "coverage"):
      self.assertTrue(np.isnan(out[key]), key)
    self.assertEqual(out["pacgan_modes"], 8.0)   # the NaN sample is only not HQ


class CompiledDistanceStatisticsTest(absltest.TestCase):
  """metrics.distances (what evaluation reports) against the NumPy references."""

  def test_matches_the_references_one_set_and_stacked_seeds(self):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, 3))
    y = rng.normal(size=(250, 3)) * 1.2 + 0.1
    got = distances.sample_statistics(x, y)
    want = {"energy_distance": modes.energy_distance(x, y),
            "mmd_rbf": modes.mmd_rbf(x, y, bandwidth="median"),
            **fidelity.prdc(y, x, k_precision_recall=3, k_density_coverage=5)}
    for k in distances.KEYS:
      self.assertAlmostEqual(float(got[k]), want[k], delta=1e-12, msg=k)
    stacked = distances.sample_statistics(np.stack([x, x[::-1] + 0.3]), np.stack([y, y]))
    self.assertEqual(stacked["energy_distance"].shape, (2,))
    self.assertAlmostEqual(float(stacked["energy_distance"][1]),
                           modes.energy_distance(x[::-1] + 0.3, y), delta=1e-12)
    self.assertAlmostEqual(float(stacked["coverage"][1]),
                           fidelity.density_coverage(y, x[::-1] + 0.3, k=5)["coverage"],
                           delta=1e-12)
    with self.assertRaisesRegex(ValueError, r"same d and S"):
      distances.sample_statistics(x, y[:, :2])


if __name__ == "__main__":
  absltest.main()
