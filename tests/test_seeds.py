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
    c.train.num_devices = 0  # all 8 (conftest's runs default to one)
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
    bad.train.num_devices = 0
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

  def test_welch_is_scipys_unequal_variance_t_test(self):
    from scipy import stats  # pylint: disable=g-import-not-at-top
    rng = np.random.default_rng(0)
    for a, b in [([25, 22, 23], [4, 7, 5]), ([1, 8, 0], [7, 5, 5]),
                 (rng.normal(0.3, 0.1, 5), rng.normal(0.2, 0.4, 3)),
                 ([7, 7, 7], [5, 6, 4]), (rng.normal(0, 1, 40), rng.normal(0.1, 2, 7))]:
      mine = seeds_lib.welch(a, b)
      ref = stats.ttest_ind(a, b, equal_var=False)
      self.assertAlmostEqual(mine["diff"], np.mean(a) - np.mean(b), places=12)
      self.assertAlmostEqual(mine["t"], ref.statistic, places=10)
      self.assertAlmostEqual(mine["df"], ref.df, places=10)
      self.assertAlmostEqual(mine["p"], ref.pvalue, delta=1e-5 + 1e-4 * ref.pvalue)
    # A diverged seed is left out; no spread on either side: no test.
    self.assertEqual(seeds_lib.welch([1.0, 2.0, np.nan, None], [0.0, 0.5])["diff"], 1.25)
    self.assertEqual(seeds_lib.welch([7, 7, 7], [7, 7]),
                     {"diff": 0.0, "se": 0.0, "t": None, "df": None, "p": None})
    self.assertIsNone(seeds_lib.welch([1.0], [2.0, 3.0]))


def _poisoning(make, *, from_step, always=False):
  """``games.make_game`` whose step's ``d_loss`` is NaN from ``from_step`` on for
  the replicas whose first generator parameter is positive (all if ``always``).
  The condition reads the step's input state, so a frozen seed stays frozen."""

  def make_game(config, source):
    game = make(config, source)
    inner = game.step

    def step(state, arrays, shard=lambda x: x):
      new, metrics = inner(state, arrays, shard)
      first = jax.numpy.ravel(jax.tree.leaves(state.params["generator"])[0])[0]
      bad = (state.step >= from_step) & ((first > 0) | always)
      return new, dict(metrics, d_loss=jax.numpy.where(bad, jax.numpy.nan, metrics["d_loss"]))

    game.step = step
    return game

  return make_game


def freeze_config(steps=8):
  c = sgld_config(steps=steps, num_seeds=4)
  c.train.nonfinite_seeds = "freeze"
  c.train.update({"steps_per_call": 1, "log_every": 1, "eval_every": 1,
                  "checkpoint_every": 1, "keep_checkpoints": 20})
  return c


class FrozenSeedsTest(parameterized.TestCase):
  """``train.nonfinite_seeds='freeze'``: a diverging seed stops, the others go on."""

  def test_a_diverging_seed_is_frozen_and_the_others_train_on(self):
    from unittest import mock  # pylint: disable=g-import-not-at-top
    from gan_jax import games  # pylint: disable=g-import-not-at-top
    tmp = self.create_tempdir().full_path
    ref = os.path.join(tmp, "ref")  # the same seeds, nothing poisoned
    clean = loop.train_and_evaluate(freeze_config(), ref)
    poison = _poisoning(games.make_game, from_step=3)
    from gan_jax import plotting  # pylint: disable=g-import-not-at-top
    labels = []
    original = plotting.seed_samples_figure

    def spy(samples, *args, **kwargs):
      labels[:] = [label for label, _ in samples]
      return original(samples, *args, **kwargs)

    with_figures = freeze_config()
    with_figures.train.figures = True
    offered = []  # the steps whose evaluation was offered to best/
    save = loop.Checkpoints.save

    def save_spy(self_, step, state, eval_metrics=None):
      if eval_metrics:
        offered.append(step)
      return save(self_, step, state, eval_metrics)

    with mock.patch.object(games, "make_game", poison), \
        mock.patch.object(plotting, "seed_samples_figure", spy):
      with mock.patch.object(loop.Checkpoints, "save", save_spy):
        run = loop.train_and_evaluate(with_figures, os.path.join(tmp, "run"))
      part = os.path.join(tmp, "part")
      loop.train_and_evaluate(freeze_config(), part, stop_after=5)
      resumed = loop.train_and_evaluate(freeze_config(), part)
    history = [r for r in records(os.path.join(tmp, "run"), "history.jsonl")
               if r["event"] == "seed_frozen"]
    frozen = {r["index"]: r for r in history}
    self.assertLen(frozen, len(history))  # each seed once
    self.assertNotEmpty(frozen)
    self.assertLess(len(frozen), 4)  # the condition leaves some seeds training
    steps = np.asarray(run.state.step)
    for i in range(4):
      mine = seeds_lib.take(run.state, i)
      if i in frozen:
        # Kept at the state before its first non-finite step, which a run
        # without the poison reached at that step.
        at = int(steps[i])
        self.assertGreaterEqual(at, 3)
        self.assertLess(at, 8)
        self.assertIn(f"seed {3 + i}: non-finite value: 'd_loss' became NaN or inf at step "
                      f"{at + 1}", frozen[i]["message"])
        _, then, _ = loop.load_checkpoint(ref, step=at, seed_index=i)
        assert_trees_close(self, mine.params, then.params, rtol=0, atol=0)
        assert_trees_close(self, mine.opt_state, then.opt_state, rtol=0, atol=0)
      else:
        self.assertEqual(int(steps[i]), 8)
        assert_trees_close(self, mine.params, seeds_lib.take(clean.state, i).params,
                           rtol=0, atol=0)
    # The per-seed sample figure marks the frozen seeds.
    self.assertEqual(labels, [f"{3 + i} (frozen at a NaN)" if i in frozen else 3 + i
                              for i in range(4)])
    # A frozen seed leaves the records from its freeze on; the mean is the others'.
    for name, key in (("metrics.jsonl", "d_loss"), ("eval.jsonl", "energy_distance")):
      last = [r for r in records(os.path.join(tmp, "run"), name) if r["step"] == 8]
      values = [np.nan if last[i][key] is None else last[i][key] for i in range(4)]
      for i in range(4):
        self.assertEqual(bool(np.isnan(values[i])), i in frozen, (name, i))
      self.assertAlmostEqual(last[4][key], np.nanmean(values), places=5)
    # best/ compares only means over every seed: none offered from the first freeze on.
    first = min(r["at_step"] for r in history)
    self.assertTrue(os.path.isdir(os.path.join(ref, "best")))  # the config keeps one
    self.assertEqual(offered, list(range(1, first)))
    # Resumed after a freeze: the uninterrupted run, bit for bit, the freeze recorded once.
    for a, b in zip(jax.tree.leaves(run.state), jax.tree.leaves(resumed.state)):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    again = [r for r in records(part, "history.jsonl") if r["event"] == "seed_frozen"]
    self.assertEqual(sorted((r["index"], r["at_step"]) for r in again),
                     sorted((r["index"], r["at_step"]) for r in history))

  def test_every_seed_frozen_stops_the_run(self):
    from unittest import mock  # pylint: disable=g-import-not-at-top
    from gan_jax import games  # pylint: disable=g-import-not-at-top
    workdir = self.create_tempdir().full_path
    with mock.patch.object(games, "make_game", _poisoning(games.make_game, from_step=2,
                                                           always=True)):
      with self.assertRaisesRegex(loop.NonFiniteError, r"every seed became non-finite.*"
                                  r"last good checkpoint \(step 2\)"):
        loop.train_and_evaluate(freeze_config(), workdir)
      # 'stop' stops at the first seed, as before.
      c = freeze_config()
      c.train.nonfinite_seeds = "stop"
      with self.assertRaisesRegex(loop.NonFiniteError, r"^seed 3: .*'d_loss' became NaN"):
        loop.train_and_evaluate(c, self.create_tempdir().full_path)

  @parameterized.parameters("vmap", "unroll")
  def test_guard_keeps_the_input_state_of_a_non_finite_replica(self, batching):
    import flax  # pylint: disable=g-import-not-at-top
    import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

    @flax.struct.dataclass
    class State:
      params: jax.Array
      model_state: dict
      rng: jax.Array

    def step(state, arrays, shard):
      new = State(params=state.params - 1.0, model_state={},
                  rng=jax.random.split(state.rng)[0])
      return new, {"d_loss": jnp.log(new.params).sum(), "g_loss": jnp.zeros(())}

    state = State(params=jnp.array([[3.0], [0.5], [2.0]]), model_state={},
                  rng=jax.random.split(jax.random.key(0), 3))
    new, metrics = seeds_lib.stack_step(seeds_lib.freeze_nonfinite(step), batching)(
        state, None, None)
    np.testing.assert_array_equal(np.asarray(new.params), [[2.0], [0.5], [1.0]])
    self.assertTrue(np.isnan(np.asarray(metrics["d_loss"])[1]))  # still reported
    keys = jax.random.key_data(new.rng)
    np.testing.assert_array_equal(keys[1], jax.random.key_data(state.rng)[1])
    self.assertFalse(np.array_equal(keys[0], jax.random.key_data(state.rng)[0]))


def image_seeds_config(npz_path, num_seeds=1, seed=0, batching="unroll"):
  """DCGAN-28 players of 4 base channels for 2 steps: what the image configs run."""
  from configs import dcgan_mnist  # pylint: disable=g-import-not-at-top
  from tests.test_image_games import shrink_images  # pylint: disable=g-import-not-at-top
  c = shrink_images(dcgan_mnist.get_config(), npz_path, steps=2)
  for player in ("generator", "discriminator"):
    c.model[player].base_features = 4
  for k in ("log_every", "eval_every", "checkpoint_every", "plot_every"):
    c.train[k] = 2
  c.train.eval_samples = 16
  c.train.progress = False
  c.train.figures = False
  c.train.unroll = 1
  c.seed = seed
  c.train.num_seeds = num_seeds
  c.train.seed_batching = batching
  return c


class SeedBatchingTest(parameterized.TestCase):
  """``train.seed_batching='unroll'``: the seeds' steps written out one by one."""

  def test_image_config_unrolls_and_each_seed_is_its_single_run(self):
    from tests.test_image_games import write_npz  # pylint: disable=g-import-not-at-top
    from configs import images  # pylint: disable=g-import-not-at-top
    self.assertEqual(images.image_config("mnist").train.seed_batching, "unroll")
    tmp = self.create_tempdir().full_path
    path = write_npz(os.path.join(tmp, "d.npz"), (28, 28))
    many = loop.train_and_evaluate(image_seeds_config(path, num_seeds=2),
                                   os.path.join(tmp, "unroll"))
    vmapped = loop.train_and_evaluate(image_seeds_config(path, num_seeds=2, batching="vmap"),
                                      os.path.join(tmp, "vmap"))
    for i in range(2):
      single = loop.train_and_evaluate(image_seeds_config(path, seed=i),
                                       os.path.join(tmp, f"single_{i}"))
      replica = seeds_lib.take(many.state, i)
      # No batched arithmetic: the replica's program is the single run's.
      assert_trees_close(self, (replica.params, replica.model_state, replica.opt_state),
                         (single.state.params, single.state.model_state,
                          single.state.opt_state), rtol=1e-6, atol=1e-7)
      np.testing.assert_array_equal(np.asarray(replica.rng), np.asarray(single.state.rng))
      # Its evaluation samples (drawn by the unrolled sampler) are the single run's.
      mine = os.path.join(tmp, "unroll", "samples", *([f"seed_{i}"] if i else []))
      with np.load(os.path.join(mine, "step_00000002.npz")) as a, \
          np.load(os.path.join(tmp, f"single_{i}", "samples", "step_00000002.npz")) as b:
        self.assertEqual(set(a.files), set(b.files))
        for k in b.files:
          np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6, err_msg=k)
    # The vmapped program computes the same replicas, up to batched rounding.
    assert_trees_close(self, many.state.params, vmapped.state.params, rtol=2e-4, atol=2e-5)
    self.assertFalse(np.allclose(np.asarray(jax.tree.leaves(seeds_lib.take(many.state,
                                                                            0).params)[0]),
                                 np.asarray(jax.tree.leaves(seeds_lib.take(many.state,
                                                                           1).params)[0])))

  def test_unrolled_seeds_over_eight_data_parallel_devices_equal_one_device(self):
    from tests.test_image_games import write_npz  # pylint: disable=g-import-not-at-top
    tmp = self.create_tempdir().full_path
    path = write_npz(os.path.join(tmp, "d.npz"), (28, 28))
    runs = {}
    for devices in (1, 8):  # conftest's 8 fake CPU devices
      c = image_seeds_config(path, num_seeds=2)
      c.train.num_devices = devices
      runs[devices] = loop.train_and_evaluate(c, os.path.join(tmp, f"d{devices}"))
    batch = runs[8].state.params  # every device holds both seeds' players
    self.assertEqual(len(jax.tree.leaves(batch)[0].sharding.device_set), 8)
    assert_trees_close(self, runs[8].state.params, runs[1].state.params, rtol=2e-4, atol=2e-5)

  def test_unrolled_toy_seeds_resume_exactly_and_match_the_single_run(self):
    tmp = self.create_tempdir().full_path
    c = sgld_config(steps=4, num_seeds=2)
    c.train.seed_batching = "unroll"
    full = loop.train_and_evaluate(c, os.path.join(tmp, "full"))
    loop.train_and_evaluate(c, os.path.join(tmp, "part"), stop_after=2)
    resumed = loop.train_and_evaluate(c, os.path.join(tmp, "part"))
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state)):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    single = loop.train_and_evaluate(sgld_config(seed=4), os.path.join(tmp, "single"))
    replica = seeds_lib.take(full.state, 1)
    assert_trees_close(self, (replica.params, replica.opt_state),
                       (single.state.params, single.state.opt_state), rtol=1e-6, atol=1e-7)

  def test_over_seeds_unrolled_equals_vmapped(self):
    import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

    def fn(state, shared):
      return {"x": state["w"] @ shared, "k": jax.random.split(state["k"])[0]}, shared.sum()

    state = {"w": jnp.arange(12.0).reshape(3, 2, 2),
             "k": jax.random.split(jax.random.key(1), 3)}
    shared = jnp.array([1.0, -2.0])
    a = seeds_lib.over_seeds(fn, "vmap", in_axes=(0, None))(state, shared)
    b = jax.jit(seeds_lib.over_seeds(fn, "unroll", in_axes=(0, None)))(state, shared)
    np.testing.assert_array_equal(np.asarray(a[0]["x"]), np.asarray(b[0]["x"]))
    np.testing.assert_array_equal(jax.random.key_data(a[0]["k"]),
                                  jax.random.key_data(b[0]["k"]))
    np.testing.assert_array_equal(np.asarray(a[1]), np.asarray(b[1]))
    self.assertEqual(np.asarray(b[1]).shape, (3,))
    with self.assertRaisesRegex(ValueError, r"unknown value 'loop'; valid: vmap, unroll"):
      seeds_lib.over_seeds(fn, "loop")

  def test_bad_seed_batching_is_refused_by_name(self):
    from gan_jax import errors  # pylint: disable=g-import-not-at-top
    from gan_jax.train import validate  # pylint: disable=g-import-not-at-top
    c = sgld_config(num_seeds=2)
    c.train.seed_batching = "unrolled"
    with self.assertRaisesRegex(errors.ConfigError,
                                r"config.train.seed_batching must be one of vmap, unroll, "
                                r"got 'unrolled'"):
      validate.validate_config(c)
    c.train.seed_batching = "unroll"
    c.train.seed_devices = 2
    with self.assertRaisesRegex(errors.ConfigError, r"seed_devices=2.*use seed_batching='vmap'"):
      validate.validate_config(c)
