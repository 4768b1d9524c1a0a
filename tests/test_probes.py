"""Probes: third-party discriminator, cross-testing, gradient diagnostics, CLI."""

import json
import os
import shutil
import subprocess
import sys

from absl.testing import parameterized
import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import vanilla_mixture_3d
from experiments import probe as probe_cli
from gan_jax import models
from gan_jax import plotting
from gan_jax.data import toy
from gan_jax.metrics import probes
from gan_jax.train import loop
from tests.test_train import shrink

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _small_d():
  return models.make_discriminator("mlp", widths=(32, 32), activation="tanh")


class ThirdPartyTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.dist = toy.make_toy("mixture_3d_5")
    cls.real, _ = cls.dist.sample_with_labels(jax.random.key(1), 2000)
    cls.test, cls.test_modes = cls.dist.sample_with_labels(jax.random.key(2), 1000)
    pool, pool_modes = cls.dist.sample_with_labels(jax.random.key(3), 4000)
    cls.covered = np.array([0, 1, 2])
    # "Generator samples" drawn from modes 0-2 only: modes 3 and 4 are missed.
    cls.partial = np.asarray(pool)[np.isin(np.asarray(pool_modes), cls.covered)]
    cls.full = np.asarray(pool)
    cls.kw = dict(module=_small_d(), steps=300, batch_size=128)

  def test_flags_exactly_the_missing_modes(self):
    r = probes.third_party_discriminator(jax.random.key(0), self.real, self.partial,
                                         self.test, sigma=0.0, **self.kw)
    flagged = np.asarray(r.flagged)
    on_missing = ~np.isin(np.asarray(self.test_modes), self.covered)
    # Nearly every held-out point of a missed mode, nearly none of a covered one.
    self.assertGreater(flagged[on_missing].mean(), 0.95)
    self.assertLess(flagged[~on_missing].mean(), 0.02)
    self.assertEqual(int(r.count), flagged.sum())
    self.assertAlmostEqual(float(r.share), flagged.mean(), places=6)
    self.assertEqual(r.losses.shape, (300,))
    # The nearest-mode histogram puts the flagged points on modes 3 and 4.
    modes = probes.flagged_by_mode(self.test, flagged, self.dist.centers)
    np.testing.assert_array_equal(modes["test_counts"],
                                  np.bincount(np.asarray(self.test_modes), minlength=5))
    share = modes["flagged_share"]
    self.assertTrue(np.all(share[3:] > 0.95) and np.all(share[:3] < 0.02), share)

  def test_generator_equal_to_data_flags_little(self):
    rows = probes.third_party_report(jax.random.key(0), self.real, self.full, self.test,
                                     sigmas=[0.0, 0.1], centers=self.dist.centers, **self.kw)
    for row in rows:
      self.assertLess(row["share"], 0.02, row)
      self.assertEqual(row["modes_flagged"], 0)
      self.assertAlmostEqual(row["mean_d_test"], 0.5, delta=0.1)

  def test_large_noise_blurs_missing_modes_away(self):
    rows = probes.third_party_report(jax.random.key(0), self.real, self.partial, self.test,
                                     sigmas=[0.0, 0.5], centers=self.dist.centers, **self.kw)
    self.assertEqual(rows[0]["modes_flagged"], 2)
    self.assertLess(rows[1]["count"], rows[0]["count"])

  def test_flagged_by_mode_known_answer(self):
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    test = np.array([[0.1, 0.0], [9.0, 1.0], [10.2, 0.0], [0.0, 9.9]])
    out = probes.flagged_by_mode(test, [False, True, False, True], centers)
    np.testing.assert_array_equal(out["test_counts"], [1, 2, 1])
    np.testing.assert_array_equal(out["flagged_counts"], [0, 1, 1])
    np.testing.assert_allclose(out["flagged_share"], [0.0, 0.5, 1.0])

  def test_chunked_unrolled_training_changes_no_value(self):
    kw = dict(self.kw, steps=40)
    one = probes.third_party_discriminator(jax.random.key(0), self.real, self.partial,
                                           self.test, sigma=0.1, **kw)
    # 40 steps in calls of 7 (the last call shorter), unrolled: the same keys, the same steps.
    cut = probes.third_party_discriminator(jax.random.key(0), self.real, self.partial,
                                           self.test, sigma=0.1, steps_per_call=7,
                                           unroll=True, **kw)
    self.assertEqual(cut.losses.shape, (40,))
    np.testing.assert_allclose(cut.losses, one.losses, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cut.probs, one.probs, rtol=1e-4, atol=1e-6)
    # The same steps per call rolled and unrolled: two programs, the same values.
    rolled = probes.third_party_discriminator(jax.random.key(0), self.real, self.partial,
                                              self.test, sigma=0.1, steps_per_call=7,
                                              unroll=1, **kw)
    np.testing.assert_allclose(rolled.losses, cut.losses, rtol=1e-5, atol=1e-6)
    # A test set of more than one evaluation chunk (1024 examples).
    big = np.concatenate([self.test, self.test[:200]])
    more = probes.third_party_discriminator(jax.random.key(0), self.real, self.partial, big,
                                            sigma=0.1, **kw)
    self.assertEqual(more.probs.shape, (1200,))
    np.testing.assert_allclose(more.probs[:1000], one.probs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(more.probs[1000:], one.probs[:200], rtol=1e-5, atol=1e-6)
    with self.assertRaisesRegex(ValueError, "at least one example"):
      probes.third_party_discriminator(jax.random.key(0), self.real, self.partial,
                                       self.test[:0], sigma=0.0, **kw)
    with self.assertRaisesRegex(ValueError, "steps_per_call must be a positive integer"):
      probes.third_party_discriminator(jax.random.key(0), self.real, self.partial, self.test,
                                       sigma=0.0, steps_per_call=0, **kw)
    with self.assertRaisesRegex(ValueError, "unroll must be True, False or a positive"):
      probes.third_party_discriminator(jax.random.key(0), self.real, self.partial, self.test,
                                       sigma=0.0, unroll="yes", **kw)

  def test_image_discriminator_chunked_equals_one_call(self):
    # A convolutional D with batch statistics (carried from call to call).
    module = models.make_discriminator("dcgan", base_features=8)
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, (64, 28, 28, 1)).astype(np.float32)
    fake = rng.uniform(-1, 1, (64, 28, 28, 1)).astype(np.float32) * 0.5
    kw = dict(module=module, sigma=0.1, steps=3, batch_size=8)
    one = probes.third_party_discriminator(jax.random.key(0), real, fake, real[:16], **kw)
    cut = probes.third_party_discriminator(jax.random.key(0), real, fake, real[:16],
                                           steps_per_call=2, unroll=True, **kw)
    np.testing.assert_allclose(cut.losses, one.losses, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(cut.probs, one.probs, rtol=1e-3, atol=1e-5)
    self.assertGreater(float(one.losses[0] - one.losses[-1]), 0.0)  # it trained

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, "sigma must be a finite number >= 0"):
      probes.third_party_discriminator(jax.random.key(0), self.real, self.partial, self.test,
                                       sigma=-1.0, **self.kw)
    with self.assertRaisesRegex(ValueError, r"threshold must be in \(0, 1\)"):
      probes.third_party_discriminator(jax.random.key(0), self.real, self.partial, self.test,
                                       sigma=0.0, threshold=1.0, **self.kw)
    with self.assertRaisesRegex(ValueError, "share the example shape"):
      probes.third_party_discriminator(jax.random.key(0), self.real, self.partial[:, :2],
                                       self.test, sigma=0.0, **self.kw)


class _KnownGame:
  """A stand-in run: fixed samples and a discriminator given by a formula."""

  def __init__(self, logits, sample_value):
    self.logits, self.sample_value = logits, sample_value

  def discriminate(self, state, x):
    del state
    return self.logits(x)

  def sample(self, state, key, n):
    del state, key
    return jnp.full((n, 1), self.sample_value)


class CrossTestTest(parameterized.TestCase):

  def test_known_discriminators_give_the_exact_table(self):
    # Run A's D: real iff x > 0; A samples at +1. Run B's D: logit +10
    # everywhere (everything real: FN 0, FP 1); B samples at -1.
    runs = [(_KnownGame(lambda x: 10.0 * x[:, 0], 1.0), {}),
            (_KnownGame(lambda x: jnp.full(x.shape[:1], 10.0), -1.0), {})]
    test = np.array([[1.0], [2.0], [0.5], [-1.0]])  # one test point looks fake to A
    out = probes.cross_test(jax.random.key(0), runs, test, num_samples=50)
    # Rows: discriminators (A, B); columns: samples (A, B). Not symmetric, so a
    # transposed table would fail.
    np.testing.assert_array_equal(out["fp"], [[1.0, 0.0], [1.0, 1.0]])
    np.testing.assert_array_equal(out["fn"], [0.25, 0.0])
    self.assertEqual((out["num_samples"], out["n_test"]), (50, 4))

  def test_table_orientation_and_threshold(self):
    d_neg = lambda x: np.full(len(x), -10.0)   # nothing real: FN 1, FP 0
    d_big = lambda x: np.asarray(x)[:, 0] - 2.0  # real iff x > 2
    samples = [np.full((4, 1), 3.0), np.array([[1.0], [3.0], [5.0], [0.0]])]
    test = np.array([[3.0], [0.0]])
    out = probes.cross_test_table([d_neg, d_big], samples, test)
    np.testing.assert_array_equal(out["fp"], [[0.0, 0.0], [1.0, 0.5]])
    np.testing.assert_array_equal(out["fn"], [1.0, 0.5])
    # A logit threshold moves the decision: real iff x - 2 > 2.
    out = probes.cross_test_table([d_big], samples, test, logit_threshold=2.0)
    np.testing.assert_array_equal(out["fp"], [[0.0, 0.25]])
    np.testing.assert_array_equal(out["fn"], [1.0])


class _NormD(nn.Module):
  """logit = batch norm of x (no scale, no shift): the batch's or the running moments."""

  @nn.compact
  def __call__(self, x, *, train=False):
    return nn.BatchNorm(use_running_average=not train, use_scale=False, use_bias=False,
                        epsilon=0.0)(x)[:, 0]


@flax.struct.dataclass
class _State:
  params: dict
  model_state: dict


class _NormGame:
  """A run whose discriminator normalises its input; samples x = value + small spread."""
  batch_size = 4

  def __init__(self, value):
    self.discriminator, self.value = _NormD(), value

  def discriminate(self, state, x):
    return self.discriminator.apply({"params": state.params["discriminator"],
                                     **state.model_state["discriminator"]}, x)

  def sample(self, state, key, n):
    del state, key
    return self.value + jnp.arange(n, dtype=jnp.float32)[:, None] % 4 - 1.5


class BatchStatisticsCrossTestTest(parameterized.TestCase):

  def test_batch_statistics_mode_judges_each_batch_by_its_own_moments(self):
    game = _NormGame(5.0)
    variables = game.discriminator.init(jax.random.key(0), jnp.zeros((4, 1)))
    # Running averages: mean 0, variance 1 (as if trained on inputs near 0).
    state = _State(params={"discriminator": variables.get("params", {})},
                   model_state={"discriminator": {"batch_stats": variables["batch_stats"]}})
    test = np.array([[4.0], [5.0], [6.0], [7.0], [-1.0], [0.0], [1.0], [2.0]])
    runs = [(game, state), (_NormGame(-5.0), state)]
    inference = probes.cross_test(jax.random.key(0), runs, test, num_samples=8)
    # Inference: logit = x; samples 5 + {-1.5, -.5, .5, 1.5} all real, -5 + ... none.
    np.testing.assert_array_equal(inference["fp"], [[1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_array_equal(inference["fn"], [0.25, 0.25])  # 0, -1 are "fake"
    batch = probes.cross_test(jax.random.key(0), runs, test, num_samples=8,
                              batch_statistics=True)
    # By the batch's own moments, every batch of 4 spread evenly is half real.
    np.testing.assert_array_equal(batch["fp"], [[0.5, 0.5], [0.5, 0.5]])
    np.testing.assert_array_equal(batch["fn"], [0.5, 0.5])
    # The running averages are left as they were.
    np.testing.assert_array_equal(state.model_state["discriminator"]["batch_stats"]["BatchNorm_0"]
                                  ["mean"], [0.0])

  def test_both_modes_judge_one_draw_of_samples(self):
    draws = []

    class Counting(_NormGame):

      def sample(self, state, key, n):
        draws.append(n)
        # Depends on the key: a second draw would give other samples.
        return super().sample(state, key, n) + jax.random.normal(key, (n, 1))

    game = Counting(5.0)
    variables = game.discriminator.init(jax.random.key(0), jnp.zeros((4, 1)))
    state = _State(params={"discriminator": variables.get("params", {})},
                   model_state={"discriminator": {"batch_stats": variables["batch_stats"]}})
    runs = [(game, state), (Counting(-5.0), state)]
    test = np.linspace(-3.0, 8.0, 12)[:, None]
    both = probes.cross_test_modes(jax.random.key(3), runs, test, num_samples=8)
    self.assertEqual(draws, [8, 8])  # one draw per run, judged both ways
    self.assertEqual(set(both), set(probes.D_MODES))
    for mode in probes.D_MODES:
      one = probes.cross_test(jax.random.key(3), runs, test, num_samples=8,
                              batch_statistics=mode == "batch_statistics")
      np.testing.assert_array_equal(both[mode]["fp"], one["fp"])
      np.testing.assert_array_equal(both[mode]["fn"], one["fn"])
      self.assertEqual(both[mode]["n_test"], 12)
    # The two modes judge differently here (batch norm): not one table twice.
    self.assertFalse(np.array_equal(both["inference"]["fn"], both["batch_statistics"]["fn"]))
    with self.assertRaisesRegex(ValueError, "unknown cross-test mode.s. 'training'; "
                                "valid: batch_statistics, inference"):
      probes.cross_test_modes(jax.random.key(3), runs, test, modes=("training",))
    with self.assertRaisesRegex(ValueError, "no cross-test mode given; valid: "):
      probes.cross_test_modes(jax.random.key(3), runs, test, modes=())


class _LinearD(nn.Module):
  """psi(x) = a x + c: a discriminator whose gradients are known by hand."""

  @nn.compact
  def __call__(self, x, *, train=False):
    del train
    return nn.Dense(1)(x)[:, 0]


def _affine_generator(p, z):
  return p["w"] * z + p["b"]


class GradientTest(parameterized.TestCase):

  def test_closed_form_for_a_fixed_linear_discriminator(self):
    a, c, w, b, z0 = 1.5, -0.3, 0.7, 0.2, 2.0
    d_vars = ({"Dense_0": {"kernel": jnp.array([[a]]), "bias": jnp.array([c])}}, {})
    g_params = {"w": jnp.float32(w), "b": jnp.float32(b)}
    # A constant latent makes every batch the same point G(z0) = w z0 + b.
    curves = probes.gradient_norm_curves(
        jax.random.key(0), _affine_generator, g_params, lambda k, n: jnp.full((n, 1), z0),
        lambda k, n: 1.0 + 0.1 * jax.random.normal(k, (n, 1)), module=_LinearD(),
        iterations=20, every=10, num_batches=3, batch_size=8, learning_rate=0.0,
        d_variables=d_vars)
    psi = a * (w * z0 + b) + c
    sig = lambda t: 1.0 / (1.0 + np.exp(-t))
    # d/d(w, b) of -softplus(psi) is -sigmoid(psi) a (z0, 1); of softplus(-psi)
    # it is -sigmoid(-psi) a (z0, 1).
    np.testing.assert_array_equal(curves.iterations, [0, 10, 20])
    np.testing.assert_allclose(curves.minimax_mean, abs(a) * sig(psi) * np.hypot(z0, 1.0),
                               rtol=1e-5)
    np.testing.assert_allclose(curves.non_saturating_mean,
                               abs(a) * sig(-psi) * np.hypot(z0, 1.0), rtol=1e-5)
    np.testing.assert_allclose(curves.minimax_std, 0.0, atol=1e-6)
    np.testing.assert_allclose(curves.d_fake, sig(psi), rtol=1e-5)

  def test_minimax_gradient_vanishes_on_disjoint_supports(self):
    # Arjovsky & Bottou, Figs. 2-3: data near +1, a frozen generator near -1.
    g_params = {"w": jnp.float32(0.05), "b": jnp.float32(-1.0)}
    kw = dict(module=_small_d(), iterations=300, every=50, num_batches=4, batch_size=64)
    args = (jax.random.key(0), _affine_generator, g_params,
            lambda k, n: jax.random.normal(k, (n, 1)),
            lambda k, n: 1.0 + 0.05 * jax.random.normal(k, (n, 1)))
    clean = jax.device_get(probes.gradient_norm_curves(*args, **kw))
    self.assertEqual(clean.minimax_mean.shape, (7,))
    self.assertLess(clean.minimax_mean[-1], 0.2 * clean.minimax_mean[0])
    self.assertLess(clean.d_fake[-1], 0.05)  # the discriminator has won
    self.assertGreater(clean.non_saturating_mean[-1], clean.non_saturating_mean[0])
    self.assertGreater(clean.non_saturating_mean[-1], 20 * clean.minimax_mean[-1])
    # Instance noise overlaps the supports: the minimax gradient survives.
    noisy = jax.device_get(probes.gradient_norm_curves(*args, sigma=1.0, **kw))
    self.assertGreater(noisy.minimax_mean[-1], 10 * clean.minimax_mean[-1])

  def test_chunked_unrolled_training_changes_no_value(self):
    g_params = {"w": jnp.float32(0.5), "b": jnp.float32(-0.5)}
    args = (jax.random.key(3), _affine_generator, g_params,
            lambda k, n: jax.random.normal(k, (n, 1)),
            lambda k, n: 1.0 + 0.05 * jax.random.normal(k, (n, 1)))
    kw = dict(module=_small_d(), iterations=20, every=10, num_batches=2, batch_size=16,
              sigma=0.2)
    one = jax.device_get(probes.gradient_norm_curves(*args, **kw))
    cut = jax.device_get(probes.gradient_norm_curves(*args, steps_per_call=3, unroll=True,
                                                     **kw))
    for name, value in one._asdict().items():
      np.testing.assert_allclose(getattr(cut, name), value, rtol=1e-4, atol=1e-6,
                                 err_msg=name)
    # The discriminator did train between records (else the check above is empty).
    self.assertNotAlmostEqual(float(one.d_fake[0]), float(one.d_fake[-1]), places=3)

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, "multiple >= 0 of every"):
      probes.gradient_norm_curves(jax.random.key(0), _affine_generator, {}, None, None,
                                  module=_small_d(), iterations=15, every=10)


class FiguresTest(parameterized.TestCase):

  def test_probe_figures(self):
    x = np.array([0, 10, 20])
    curve = {"iterations": x, "minimax_mean": [1.0, 0.1, 0.01], "minimax_std": [0.1] * 3,
             "non_saturating_mean": [1.0, 2.0, 3.0], "non_saturating_std": [0.5] * 3}
    fig = plotting.gradient_norms_figure({"sigma=0": curve, "sigma=1": curve})
    self.assertLen(fig.axes, 2)
    for ax in fig.axes:
      self.assertEqual(ax.get_yscale(), "log")
      self.assertLen(ax.lines, 2)
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), [1.0, 0.1, 0.01])
    fp, fn = np.array([[0.1, 0.9], [0.3, 0.4]]), np.array([0.05, 0.2])
    fig = plotting.cross_test_figure(fp, fn, labels=["A", "B"])
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(),
                               [[0.1, 0.9, 0.05], [0.3, 0.4, 0.2]])
    fig = plotting.third_party_figure([0.0, 0.5], [30, 0], n_test=100,
                                      mode_counts=[[0, 30], [0, 0]], test_counts=[50, 50])
    self.assertLen(fig.axes, 2)  # counts (with a share axis), per-mode bars
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), [30, 0])
    with self.assertRaisesRegex(ValueError, r"fp must have shape \[2, 2\]"):
      plotting.cross_test_figure(fp[:1], fn, labels=["A", "B"])


def _tiny_run(workdir, seed):
  c = shrink(vanilla_mixture_3d.get_config("5"), steps=4, spc=2, batch=32)
  c.seed = seed
  loop.train_and_evaluate(c, workdir)
  return workdir


def test_probe_cli_appends_records_and_never_overwrites(tmp_path):
  run_a = _tiny_run(str(tmp_path / "a"), 0)
  # A copy is a second run as far as the probe can tell (training another
  # would only cost time; the exact table is tested above).
  run_b = str(tmp_path / "b")
  shutil.copytree(run_a, run_b)
  figures = os.path.join(run_a, "figures")
  os.makedirs(figures, exist_ok=True)
  user_file = os.path.join(figures, "probe_third_party_step4.png")
  with open(user_file, "wb") as f:
    f.write(b"a user's file")
  small = dict(num_samples=256, batch_size=32)
  records = [probe_cli.run("third_party", run_a, sigmas=[0.0, 0.5], d_steps=20, **small)
             for _ in range(2)]
  records.append(probe_cli.run("cross_test", run_a, other_workdir=run_b, **small))
  records.append(probe_cli.run("gradients", run_a, instance_noise=[0.5], iterations=20,
                               every=10, num_batches=2, batch_size=32))
  with open(user_file, "rb") as f:
    assert f.read() == b"a user's file"
  with open(os.path.join(run_a, "probes.jsonl"), encoding="utf-8") as f:
    saved = [json.loads(line) for line in f]
  assert [r["probe"] for r in saved] == ["third_party", "third_party", "cross_test",
                                         "gradients"]
  assert saved == records
  paths = [r["figure"] for r in saved]
  assert len(set(paths)) == 4 and user_file not in paths
  for p in paths:
    assert os.path.getsize(p) > 1000  # a real PNG, not the reserved empty name
  third = saved[0]
  assert third["step"] == 4 and third["settings"]["held_out"] == "fresh draws"
  assert [r["sigma"] for r in third["results"]] == [0.0, 0.5]
  assert sum(third["results"][0]["test_counts"]) == 256
  cross = saved[2]["results"]
  assert np.shape(cross["fp"]) == (2, 2) and len(cross["fn"]) == 2
  assert saved[2]["settings"]["other_step"] == 4
  assert saved[2]["settings"]["d_mode"] == "batch_statistics"  # as the Ds judged in training
  grads = saved[3]["results"]
  assert [g["sigma"] for g in grads] == [0.0, 0.5]
  assert grads[0]["iterations"] == [0, 10, 20] and len(grads[0]["minimax_std"]) == 3
  with pytest.raises(ValueError, match="valid: third_party, cross_test, gradients"):
    probe_cli.run("nope", run_a)
  with pytest.raises(ValueError, match="needs --other_workdir"):
    probe_cli.run("cross_test", run_a)
  with pytest.raises(ValueError, match="valid: batch_statistics, inference"):
    probe_cli.run("cross_test", run_a, other_workdir=run_b, d_mode="train")


def test_probe_cli_rejects_unknown_probe_by_name():
  out = subprocess.run([sys.executable, "-m", "experiments.probe", "--probe=nope",
                        f"--workdir={ROOT}"], cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT},
                       capture_output=True, text=True, timeout=300, check=False)
  assert out.returncode != 0, out.stderr
  assert "unknown probe 'nope'; valid: third_party, cross_test, gradients" in out.stderr


def test_the_study_command_line_can_import_the_probes():
  # The study runner (its flags defined, as run as a program) imports this module
  # for its cross-tests, real references and gradient probes: no flag twice.
  code = ("from experiments import study; study.define_flags(); "
          "from experiments import probe; print('ok')")
  out = subprocess.run([sys.executable, "-c", code], cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True,
                       timeout=300, check=False)
  assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_probe_of_a_replica_is_the_probe_of_its_single_run(tmp_path):
  # --replica 1 of a two-seed run (seeds 0, 1) is the single run of seed 1:
  # the same generator, so the same gradient curves; the record names it.
  c = shrink(vanilla_mixture_3d.get_config("5"), steps=4, spc=2, batch=32)
  c.train.num_seeds = 2
  both = str(tmp_path / "both")
  loop.train_and_evaluate(c, both)
  single = _tiny_run(str(tmp_path / "single"), 1)
  settings = dict(instance_noise=[0.5], iterations=20, every=10, num_batches=2, batch_size=32)
  ours = probe_cli.run("gradients", both, replica=1, **settings)
  theirs = probe_cli.run("gradients", single, **settings)
  assert (ours["settings"]["replica"], ours["settings"]["run_seed"]) == (1, 1)
  for a, b in zip(ours["results"], theirs["results"]):
    np.testing.assert_allclose(a["minimax_mean"], b["minimax_mean"], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(a["non_saturating_mean"], b["non_saturating_mean"],
                               rtol=1e-4, atol=1e-7)
  first = probe_cli.run("gradients", both, **settings)  # replica 0 is another generator
  assert not np.allclose(first["results"][0]["minimax_mean"], ours["results"][0]["minimax_mean"])
  with pytest.raises(ValueError, match=r"--replica=2: .* 2 replica\(s\) .*valid: 0..1"):
    probe_cli.run("gradients", both, replica=2, **settings)
