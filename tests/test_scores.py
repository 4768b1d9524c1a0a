"""Classifier scores: closed forms, Frechet distance of Gaussians, 1000-mode coverage, classifier."""

import os

from absl.testing import parameterized
import jax
import numpy as np
from scipy import linalg

from gan_jax.data import images
from gan_jax.metrics import classifier as classifier_lib
from gan_jax.metrics import scores


def _one_hot(labels, k):
  return np.eye(k)[np.asarray(labels)]


class ScoresTest(parameterized.TestCase):

  @parameterized.parameters(2, 10, 1000)
  def test_inception_score_limits(self, k):
    even = _one_hot(np.arange(5 * k) % k, k)  # confident, spread evenly: score K
    self.assertAlmostEqual(scores.inception_score(even), k, places=6)
    collapsed = _one_hot(np.zeros(50, int), k)  # one class only: score 1
    self.assertAlmostEqual(scores.inception_score(collapsed), 1.0, places=9)
    unsure = np.full((50, k), 1.0 / k)  # no confident sample: score 1
    self.assertAlmostEqual(scores.inception_score(unsure), 1.0, places=9)

  def test_inception_score_closed_form(self):
    # Two samples, p(y|x) = (a, 1-a) and (1-a, a): marginal uniform, score
    # exp(log 2 - H(a)).
    a = 0.8
    p = np.array([[a, 1 - a], [1 - a, a]])
    h = -(a * np.log(a) + (1 - a) * np.log(1 - a))
    self.assertAlmostEqual(scores.inception_score(p), np.exp(np.log(2) - h), places=12)

  def test_mode_score(self):
    k = 10
    uniform = np.full(k, 1.0 / k)
    even = _one_hot(np.arange(100) % k, k)
    self.assertAlmostEqual(scores.mode_score(even, uniform), k, places=6)
    # Collapsed to one class: exp(log K - KL(delta || U)) = exp(log K - log K) = 1.
    self.assertAlmostEqual(scores.mode_score(_one_hot(np.zeros(30, int), k), uniform), 1.0,
                           places=6)
    # Even confident predictions but a skewed data distribution lower the score
    # through the marginal's KL: exp(E KL(p(y|x)||d) - KL(q||d)) with q uniform.
    d = np.array([0.5] + [0.5 / (k - 1)] * (k - 1))
    expected = np.exp(np.mean(-np.log(d[np.arange(100) % k])) - np.sum(uniform * np.log(uniform / d)))
    self.assertAlmostEqual(scores.mode_score(even, d), expected, places=6)

  def test_frechet_distance_of_gaussians(self):
    rng = np.random.default_rng(0)
    n, d = 200_000, 3
    s1, s2 = np.array([1.0, 2.0, 0.5]), np.array([0.5, 2.0, 1.5])
    m1, m2 = np.zeros(d), np.array([1.0, -1.0, 0.0])
    a = m1 + s1 * rng.standard_normal((n, d))
    b = m2 + s2 * rng.standard_normal((n, d))
    exact = np.sum((m1 - m2) ** 2) + np.sum((s1 - s2) ** 2)  # diagonal covariances
    # Sampling error of the moments: O(1/sqrt(n)) ~ 0.01 relative.
    self.assertAlmostEqual(scores.frechet_distance(a, b), exact, delta=0.03 * exact)
    self.assertAlmostEqual(scores.frechet_distance(a, a), 0.0, places=6)
    # A rotated full covariance: the distance is rotation-invariant.
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    self.assertAlmostEqual(scores.frechet_distance(a @ q.T, b @ q.T),
                           scores.frechet_distance(a, b), places=6)

  def test_frechet_distance_non_commuting_covariances(self):
    # Features whose sample moments are exactly (mu, S): a whitened draw mapped
    # through a Cholesky factor. S_a and S_b do not commute, so
    # tr((S_a S_b)^1/2) differs from tr(S_a^1/2 S_b^1/2), which the diagonal
    # and rotated cases above cannot tell apart.
    rng = np.random.default_rng(1)
    d, n = 4, 50
    m_a, m_b = rng.standard_normal((2, d, d))
    s_a = m_a @ m_a.T + 0.1 * np.eye(d)
    s_b = m_b @ m_b.T + 0.1 * np.eye(d)
    self.assertGreater(np.abs(s_a @ s_b - s_b @ s_a).max(), 1.0)
    mu_a, mu_b = rng.standard_normal((2, d))

    def with_moments(mu, cov):
      z = rng.standard_normal((n, d))
      z -= z.mean(axis=0)
      z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T
      return mu + z @ np.linalg.cholesky(cov).T

    a, b = with_moments(mu_a, s_a), with_moments(mu_b, s_b)
    cross = np.real(linalg.sqrtm(s_a @ s_b))
    exact = np.sum((mu_a - mu_b) ** 2) + np.trace(s_a + s_b - 2 * cross)
    np.testing.assert_allclose(scores.frechet_distance(a, b), exact, rtol=1e-8)
    np.testing.assert_allclose(scores.frechet_distance(b, a), exact, rtol=1e-8)
    # The product of separate roots would be off by far more than the tolerance.
    wrong = (np.sum((mu_a - mu_b) ** 2) + np.trace(s_a + s_b)
             - 2 * np.trace(np.real(linalg.sqrtm(s_a) @ linalg.sqrtm(s_b))))
    self.assertGreater(abs(wrong - exact), 1e-3 * exact)

  def test_mode_coverage(self):
    w = np.array([0.5, 0.25, 0.25, 0.0])
    out = scores.mode_coverage(np.array([0, 0, 1, 1]), w)
    self.assertEqual(out["modes_covered"], 2)
    self.assertEqual(out["n_modes"], 4)
    self.assertAlmostEqual(out["kl_mode_histogram"], 0.5 * np.log(1.0) + 0.5 * np.log(2.0))

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, "probability vector.*softmax"):
      scores.inception_score(np.array([[2.0, -1.0]]))
    with self.assertRaisesRegex(ValueError, r"\[n, classes\]"):
      scores.inception_score(np.ones(3))
    with self.assertRaisesRegex(ValueError, "data_label_probs.*length 2"):
      scores.mode_score(np.array([[0.5, 0.5]]), np.ones(3) / 3)
    with self.assertRaisesRegex(ValueError, "equal d"):
      scores.frechet_distance(np.ones((3, 2)), np.ones((3, 3)))
    with self.assertRaisesRegex(ValueError, r"modes must lie in \[0, 3\]"):
      scores.mode_coverage(np.array([4]), np.ones(4) / 4)


def _digit_tile(d):
  """A 28 x 28 image in [-1, 1] whose brightness names digit d."""
  return np.full((28, 28), -0.9 + 0.18 * d, np.float32)


def _oracle(x):
  """Classifies the test tiles above from their central pixel."""
  d = np.clip(np.round((x[:, 14, 14, 0] + 0.9) / 0.18), 0, 9).astype(int)
  return _one_hot(d, 10)


class ThousandModesTest(parameterized.TestCase):

  def test_stacked_digit_crops_and_modes(self):
    digits = np.array([[1, 2, 3], [9, 0, 5], [1, 2, 3]])
    x = np.stack([np.stack([_digit_tile(d) for d in row], axis=-1) for row in digits])
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), constant_values=-1.0)
    for imgs in (x, padded):
      crops = images.digit_crops("stacked_mnist", imgs)
      self.assertEqual(crops.shape, (3, 3, 28, 28, 1))
      w = np.full(1000, 1e-3)
      out = scores.thousand_mode_metrics(_oracle, imgs, "stacked_mnist", w, batch_size=4)
      self.assertEqual(out["modes_covered"], 2)  # 123 twice and 905
      hist = np.zeros(1000)
      hist[[123, 905]] = [2 / 3, 1 / 3]
      nz = hist > 0
      self.assertAlmostEqual(out["kl_mode_histogram"],
                             np.sum(hist[nz] * np.log(hist[nz] / 1e-3)), places=9)

  def test_confident_reads(self):
    digits = np.array([[1, 2, 3], [9, 0, 5], [4, 4, 4], [4, 7, 1]])
    x = np.stack([np.stack([_digit_tile(d) for d in row], axis=-1) for row in digits])

    def unsure_about_fours(imgs):
      # The oracle's reading, with digit 4 read at top probability 0.6 only.
      p = _oracle(imgs).astype(np.float64)
      four = p[:, 4] == 1
      p[four] = 0.4 / 9
      p[four, 4] = 0.6
      return p

    w = np.full(1000, 1e-3)
    out = scores.thousand_mode_metrics(unsure_about_fours, x, "stacked_mnist", w, batch_size=5)
    self.assertEqual(out["modes_covered"], 4)  # argmax reads all four samples
    # A read is as sure as its least sure digit: 444 and 471 are not confident.
    self.assertEqual(out["confident_share"], 0.5)
    self.assertEqual(out["modes_covered_confident"], 2)
    self.assertAlmostEqual(out["kl_mode_histogram_confident"], np.log(1 / 2 / 1e-3), places=9)
    low = scores.thousand_mode_metrics(unsure_about_fours, x, "stacked_mnist", w,
                                       confidence=0.5)
    self.assertEqual((low["confident_share"], low["modes_covered_confident"]), (1.0, 4))
    none = scores.thousand_mode_metrics(unsure_about_fours, x[2:3], "stacked_mnist", w)
    self.assertEqual(none["confident_share"], 0.0)
    self.assertTrue(np.isnan(none["modes_covered_confident"]))
    with self.assertRaisesRegex(ValueError, r"confidence must be in \(0, 1\]"):
      scores.thousand_mode_metrics(_oracle, x, "stacked_mnist", w, confidence=0.0)

  def test_compositional_crops_recover_the_drawn_digits(self):
    # Real drawing path: tiles of constant brightness per digit class.
    x = np.concatenate([np.full((5, 28, 28), 10 + 24 * d, np.uint8) for d in range(10)])
    y = np.repeat(np.arange(10), 5)
    src = images.compositional_mnist_source(x, y)
    import jax  # pylint: disable=g-import-not-at-top
    imgs, modes = jax.jit(src.draw, static_argnums=2)(jax.random.key(0), src.arrays, 64)
    crops = images.digit_crops("compositional_mnist", np.asarray(imgs))
    self.assertEqual(crops.shape, (64, 3, 28, 28, 1))
    # Centre pixel of each crop decodes the digit; the 4-pixel margin is background.
    value = (crops[:, :, 14, 14, 0] + 1.0) * 127.5
    decoded = np.round((value - 10) / 24).astype(int)
    np.testing.assert_array_equal(decoded @ np.array([100, 10, 1]), np.asarray(modes))
    np.testing.assert_array_equal(crops[:, :, :4, :, 0], -1.0)

  def test_crop_errors(self):
    with self.assertRaisesRegex(ValueError, "1000-mode data set"):
      images.digit_crops("mnist", np.zeros((1, 28, 28, 1)))
    with self.assertRaisesRegex(ValueError, r"compositional_mnist images must be \[n, 64, 64, 1\]"):
      images.digit_crops("compositional_mnist", np.zeros((1, 28, 28, 3)))


class ClassifierTest(parameterized.TestCase):

  def test_learns_separable_classes_and_round_trips(self):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400)
    x = rng.integers(0, 40, (400, 16, 16)).astype(np.uint8)
    for k in range(4):  # a bright square whose position names the class
      r, c = divmod(k, 2)
      x[y == k, 2 + 7 * r:7 + 7 * r, 2 + 7 * c:7 + 7 * c] += 200
    clf = classifier_lib.train_classifier(x[:300], y[:300], num_classes=4, steps=200,
                                          batch_size=32)
    # The rolled program (accelerators) trains the same classifier as the
    # unrolled default (CPU), up to rounding.
    short = dict(num_classes=4, steps=10, batch_size=32, steps_per_call=5)
    a = classifier_lib.train_classifier(x[:300], y[:300], **short)
    b = classifier_lib.train_classifier(x[:300], y[:300], unroll=False, **short)
    for u, v in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
      np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-4, atol=1e-6)
    self.assertGreater(clf.accuracy(x[300:], y[300:]), 0.95)
    p = clf.probs(x[300:])
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    self.assertEqual(clf.features(x[:5]).shape, (5, 128))
    # Confident, balanced predictions on held-out data: score near the class count.
    self.assertGreater(scores.inception_score(p), 3.5)
    path = os.path.join(self.create_tempdir().full_path, "clf")
    clf.save(path)
    with self.assertRaisesRegex(FileExistsError, "never overwritten"):
      clf.save(path)
    loaded = classifier_lib.Classifier.load(path)
    np.testing.assert_array_equal(loaded.logits(x[300:]), clf.logits(x[300:]))
    with self.assertRaisesRegex(ValueError, r"images of shape \(16, 16, 1\)"):
      clf.probs(np.zeros((2, 28, 28), np.uint8))
    with self.assertRaisesRegex(ValueError, r"labels must lie in \[0, 3\]"):
      classifier_lib.train_classifier(x, y + 1, num_classes=4, steps=1)


def test_score_cli_trains_saves_and_reuses_classifier(tmp_path):
  # pylint: disable=g-import-not-at-top
  import json
  import subprocess
  import sys
  from configs import dcgan_mnist
  from gan_jax.train import loop
  from tests.test_image_games import shrink_images
  from tests.test_image_games import write_npz
  # pylint: enable=g-import-not-at-top
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  c = shrink_images(dcgan_mnist.get_config(), write_npz(str(tmp_path / "d.npz"), (28, 28)),
                    steps=2)
  for k in ("log_every", "eval_every", "checkpoint_every", "plot_every"):
    c.train[k] = 2
  c.train.eval_samples = 16
  c.train.progress = False
  workdir = str(tmp_path / "run")
  loop.train_and_evaluate(c, workdir)
  cmd = [sys.executable, "-m", "experiments.score", f"--workdir={workdir}",
         f"--classifier={tmp_path / 'clf'}", "--num_samples=64", "--classifier_steps=100",
         "--classifier_examples=400"]
  for _ in range(2):  # trains and saves, then loads the saved classifier
    out = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=600, check=True)
  assert "classifier:" not in out.stdout  # the second run did not retrain
  records = [json.loads(line) for line in open(os.path.join(workdir, "scores.jsonl"))]
  assert len(records) == 2 and records[0]["step"] == 2
  for r in records:
    assert 1.0 <= r["inception_score"] <= 10.0 and r["frechet_distance"] >= 0.0
  # Same checkpoint, classifier and seed: the same scores.
  assert records[0]["inception_score"] == records[1]["inception_score"]


def test_score_cli_scores_the_replica_asked_for(tmp_path):
  # --replica=1 of a two-seed toy run scores the single run of seed 1.
  # pylint: disable=g-import-not-at-top
  import json
  import os
  import subprocess
  import sys
  from configs import vanilla_mixture_3d
  from gan_jax.train import loop
  from tests.test_train import shrink
  # pylint: enable=g-import-not-at-top
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  runs = {}
  for name, seeds, seed in (("both", 2, 0), ("single", 1, 1)):
    c = shrink(vanilla_mixture_3d.get_config("5"), steps=4, spc=2, batch=32)
    c.seed, c.train.num_seeds = seed, seeds
    runs[name] = str(tmp_path / name)
    loop.train_and_evaluate(c, runs[name])
  scored = {}
  for name, extra in (("both", ["--replica=1"]), ("single", [])):
    subprocess.run([sys.executable, "-m", "experiments.score", f"--workdir={runs[name]}",
                    "--num_samples=512", *extra], cwd=root, capture_output=True, text=True,
                   timeout=600, check=True)
    with open(os.path.join(runs[name], "scores.jsonl"), encoding="utf-8") as f:
      scored[name] = json.loads(f.readline())
  assert (scored["both"]["replica"], scored["both"]["run_seed"]) == (1, 1)
  np.testing.assert_allclose(scored["both"]["energy_distance"],
                             scored["single"]["energy_distance"], rtol=1e-3)
