"""Seeds as an axis of one program (``train.num_seeds``)."""

import json
import os

from absl.testing import parameterized
import jax
import numpy as np

from configs import common
from gan_jax.train import loop
from gan_jax.train import seeds as seeds_lib
from tests.test_train import tiny_run_config


def sgld_config(steps=4, num_seeds=1, seed=3):
  """The tiny beta-GAN run with a Langevin discriminator: every random stream is in play."""
  c = tiny_run_config(steps=steps)
  c.seed = seed
  c.optim.discriminator = common.optimizer("sgld", learning_rate=1e-3, data_size=100)
  c.train.num_seeds = num_seeds
  return c


def records(workdir, name):
  with open(os.path.join(workdir, name), encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


def assert_trees_close(test, a, b, **tol):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), **tol)


class SeedAxisTest(parameterized.TestCase):

  def test_one_seed_of_many_equals_the_single_run_of_that_seed(self):
    tmp = self.create_tempdir().full_path
    many = loop.train_and_evaluate(sgld_config(num_seeds=3), os.path.join(tmp, "many"))
    self.assertEqual(np.asarray(many.state.step).shape, (3,))
    single = loop.train_and_evaluate(sgld_config(seed=3 + 2), os.path.join(tmp, "single"))
    replica = seeds_lib.take(many.state, 2)
    # Batched arithmetic may round differently from the unbatched program.
    assert_trees_close(self, replica.params, single.state.params, rtol=2e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(replica.rng), np.asarray(single.state.rng))
    # The sampler's noise stream is the single run's too (its key in the optimizer state).
    assert_trees_close(self, replica.opt_state, single.state.opt_state, rtol=2e-5, atol=1e-6)
    # ... and the replicas are independent: their parameters differ.
    first = seeds_lib.take(many.state, 0)
    self.assertFalse(np.allclose(np.asarray(jax.tree.leaves(first.params)[0]),
                                 np.asarray(jax.tree.leaves(replica.params)[0])))
    # Its evaluation is the single run's evaluation.
    ev_many = [r for r in records(os.path.join(tmp, "many"), "eval.jsonl") if r.get("seed") == 5]
    ev_single = records(os.path.join(tmp, "single"), "eval.jsonl")
    self.assertLen(ev_many, len(ev_single))
    for a, b in zip(ev_many, ev_single):
      self.assertEqual(a["modes_captured"], b["modes_captured"])
      self.assertAlmostEqual(a["energy_distance"], b["energy_distance"], places=4)

    # Records per seed and their mean and standard error.
    workdir, result = os.path.join(tmp, "many"), many
    for name in ("metrics.jsonl", "eval.jsonl"):
      recs = records(workdir, name)
      last = [r for r in recs if r["step"] == 4]
      self.assertEqual([r["seed"] for r in last], [3, 4, 5, "mean"], name)
      key = "d_loss" if name == "metrics.jsonl" else "energy_distance"
      values = [last[i][key] for i in range(3)]
      self.assertAlmostEqual(last[3][key], np.mean(values), places=5)
      self.assertAlmostEqual(last[3][f"{key}_se"], np.std(values, ddof=1) / np.sqrt(3), places=5)
    self.assertAlmostEqual(result.final_metrics["energy_distance"],
                           last[3]["energy_distance"], places=6)
    self.assertTrue(os.path.isdir(os.path.join(workdir, "samples", "seed_4")))
    # Standalone tools get one replica (the first by default) or all of them.
    _, first, _ = loop.load_checkpoint(workdir)
    _, both, _ = loop.load_checkpoint(workdir, seed_index=None)
    self.assertEqual(np.asarray(first.step).shape, ())
    assert_trees_close(self, first.params, seeds_lib.take(both, 0).params, rtol=0, atol=0)

  def test_resume_with_seeds_equals_uninterrupted(self):
    tmp = self.create_tempdir().full_path
    c = sgld_config(steps=4, num_seeds=2)
    full = loop.train_and_evaluate(c, os.path.join(tmp, "full"))
    loop.train_and_evaluate(c, os.path.join(tmp, "part"), stop_after=2)
    resumed = loop.train_and_evaluate(c, os.path.join(tmp, "part"))
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state)):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # bit for bit

  def test_seed_axis_split_over_devices_equals_one_group(self):
    # 8 fake devices (conftest): 4 seeds over 2 groups of 4 data-parallel
    # devices, against all 8 devices data parallel for every seed.
    tmp = self.create_tempdir().full_path
    c = sgld_config(steps=4, num_seeds=4)
    c.train.batch_size = 32
    one = loop.train_and_evaluate(c, os.path.join(tmp, "one"))
    c.train.seed_devices = 2
    split = loop.train_and_evaluate(c, os.path.join(tmp, "split"))
    leaf = jax.tree.leaves(split.state.params)[0]
    self.assertEqual(leaf.sharding.spec, jax.sharding.PartitionSpec("seeds"))
    self.assertLen(leaf.addressable_shards[0].data, 2)  # two seeds per group
    assert_trees_close(self, one.state.params, split.state.params, rtol=2e-5, atol=1e-6)
    # It resumes from its own checkpoint in the same placement.
    resumed = loop.train_and_evaluate(c, os.path.join(tmp, "split"))
    self.assertEqual(jax.tree.leaves(resumed.state.params)[0].sharding.spec,
                     jax.sharding.PartitionSpec("seeds"))
    bad = sgld_config(num_seeds=3)
    bad.train.seed_devices = 2
    with self.assertRaisesRegex(ValueError, r"num_seeds \(3\) must be divisible by "
                                r"train.seed_devices \(2\)"):
      loop.train_and_evaluate(bad, os.path.join(tmp, "bad"))
    bad.train.seed_devices = 3
    with self.assertRaisesRegex(ValueError, r"seed_devices must divide the 8 devices.*"
                                r"valid: 1, 2, 4, 8"):
      loop.train_and_evaluate(bad, os.path.join(tmp, "bad3"))

  def test_figures_of_several_seeds(self):
    workdir = self.create_tempdir().full_path
    c = sgld_config(steps=4, num_seeds=2)
    c.train.figures = True
    loop.train_and_evaluate(c, workdir)
    for name in ("seeds_eval.png", "seeds_training.png", "seeds_samples.png", "d_curves.png",
                 "samples.png"):
      self.assertTrue(os.path.isfile(os.path.join(workdir, "figures", name)), name)
    from gan_jax.train import evaluate  # pylint: disable=g-import-not-at-top
    steps, per_seed = evaluate.per_seed_series(records(workdir, "eval.jsonl"), [3, 4])
    self.assertEqual(steps, [4])
    self.assertEqual(per_seed["modes_captured"].shape, (2, 1))

  def test_aggregate(self):
    mean, se = seeds_lib.aggregate([1.0, 2.0, 3.0, np.nan])
    self.assertEqual((mean, se), (2.0, 1.0 / np.sqrt(3)))
    self.assertEqual(seeds_lib.aggregate([4.0]), (4.0, 0.0))
    self.assertTrue(np.isnan(seeds_lib.aggregate([np.nan])[0]))
    self.assertEqual(seeds_lib.seed_list(sgld_config(num_seeds=3)), [3, 4, 5])
