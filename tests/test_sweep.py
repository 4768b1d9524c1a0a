"""A sweep: one number varied over the replicas of one program (``train.sweep_field``)."""

import os

from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import common
from configs import instance_noise_2d
from configs import roth_submanifold
from gan_jax import config_registry
from gan_jax import errors
from gan_jax import plotting
from gan_jax import schedules
from gan_jax.train import loop
from gan_jax.train import seeds as seeds_lib
from tests.test_seeds import assert_trees_close
from tests.test_seeds import records
from tests.test_train import read_tensorboard_scalars
from tests.test_train import shrink

# (config, field, values, seed batching)
CASES = {
    "roth_gamma_vmap": (lambda: roth_submanifold.get_config("reg"), "game.penalty.weight",
                        (0.0, 2.0), "vmap"),
    "d_learning_rate_unroll": (lambda: roth_submanifold.get_config("unreg"),
                               "optim.discriminator.learning_rate", (1e-3, 3e-2), "unroll"),
    "noise_level_vmap": (lambda: instance_noise_2d.get_config(), "game.perturbation.level",
                         (0.05, 1.0), "vmap"),
    # A number inside a schedule mapping: gamma_0 of Roth's annealed weight.
    "annealed_gamma_0_vmap": (lambda: _annealed_roth(), "game.penalty.weight.gamma_0",
                              (0.1, 2.0), "vmap"),
    # A number inside an optimizer's schedule, replicas unrolled: the start of
    # D's linearly decaying learning rate.
    "d_lr_init_value_unroll": (lambda: _decaying_d_rate(),
                               "optim.discriminator.learning_rate.init_value", (1e-3, 3e-2),
                               "unroll"),
}
# Plain numbers of the kinds the fast cases sweep inside schedules (a penalty
# weight, an optimizer's rate): the slow set checks them too.
SLOW_CASES = ("roth_gamma_vmap", "d_learning_rate_unroll")


def _decaying_d_rate():
  c = roth_submanifold.get_config("unreg")
  config_registry.set_field(c, "optim.discriminator.learning_rate", {
      "name": "linear", "init_value": 1e-3, "end_value": 1e-4, "transition_steps": 3})
  return c


def _annealed_roth():
  c = roth_submanifold.get_config("reg")
  config_registry.set_field(c, "game.penalty.weight", {
      "name": "gamma_decay", "gamma_0": 0.1, "total_steps": 3, "decay": 0.05})
  return c


def _set(c, field, value):
  config_registry.set_field(c, field, float(value))  # a schedule mapping takes a number too


def sweep_config(make, field, values, batching, *, num_seeds=2, steps=4):
  c = shrink(make(), steps=steps)
  c.seed = 7
  _set(c, field, values[0])  # a sweep varies a number
  c.train.num_seeds = num_seeds
  c.train.seed_batching = batching
  c.train.sweep_field = field
  c.train.sweep_values = tuple(values)
  return c


def single_config(make, field, value, seed, *, steps=4):
  c = shrink(make(), steps=steps)
  c.seed = seed
  _set(c, field, value)
  return c


def params_differ(a, b) -> bool:
  return any(not np.allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-6)
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


class SweepTest(parameterized.TestCase):

  @parameterized.named_parameters(*[(name, *CASES[name]) for name in CASES
                                    if name not in SLOW_CASES])
  def test_each_replica_is_the_single_run_of_its_seed_and_value(self, make, field, values,
                                                                  batching):
    self._check_replicas(make, field, values, batching)

  @pytest.mark.slow
  def test_each_replica_is_the_single_run_of_its_seed_and_value_slow_cases(self):
    for name in SLOW_CASES:
      with self.subTest(name):
        self._check_replicas(*CASES[name])

  def _check_replicas(self, make, field, values, batching):
    tmp = self.create_tempdir().full_path
    c = sweep_config(make, field, values, batching)
    # 2 values x 2 seeds: replica r has seed 7 + r and value values[r // 2].
    self.assertEqual(seeds_lib.seed_list(c), [7, 8, 9, 10])
    self.assertEqual(seeds_lib.replica_sweep_values(c), [values[0]] * 2 + [values[1]] * 2)
    swept = loop.train_and_evaluate(c, os.path.join(tmp, "sweep"))
    self.assertEqual(np.asarray(swept.state.step).shape, (4,))
    for r in (1, 2):
      single = loop.train_and_evaluate(single_config(make, field, values[r // 2], 7 + r),
                                       os.path.join(tmp, f"single_{r}"))
      replica = seeds_lib.take(swept.state, r)
      assert_trees_close(self, replica.params, single.state.params, rtol=2e-5, atol=1e-6)
      np.testing.assert_array_equal(np.asarray(replica.rng), np.asarray(single.state.rng))
    # The replica's game, loaded, is the single run's game: one more step of
    # each from their states agrees (the optimizer states fit, too).
    game, replica, source = loop.load_checkpoint(os.path.join(tmp, "sweep"), seed_index=2)
    single_game, single_state, _ = loop.load_checkpoint(os.path.join(tmp, "single_2"))
    ours, _ = jax.jit(game.step)(replica, source.arrays)
    theirs, _ = jax.jit(single_game.step)(single_state, source.arrays)
    assert_trees_close(self, ours.params, theirs.params, rtol=2e-5, atol=1e-6)
    # The value matters: the same seed with the other value trains otherwise
    # (a sweep that ignored its values would pass the comparison above only
    # for the first value).
    other = loop.train_and_evaluate(single_config(make, field, values[0], 9),
                                    os.path.join(tmp, "other"))
    self.assertTrue(params_differ(seeds_lib.take(swept.state, 2).params, other.state.params))

  def test_records_figures_and_resume(self):
    tmp = self.create_tempdir().full_path
    make, field, values, batching = CASES["roth_gamma_vmap"]
    c = sweep_config(make, field, values, batching, num_seeds=2, steps=4)
    c.train.figures = True
    c.train.log_every = c.train.eval_every = 2
    workdir = os.path.join(tmp, "full")
    full = loop.train_and_evaluate(c, workdir)
    for name in ("metrics.jsonl", "eval.jsonl"):
      last = [r for r in records(workdir, name) if r["step"] == 4]
      # A record per replica naming its value, then a mean per value.
      self.assertEqual([r["seed"] for r in last], [7, 8, 9, 10, "mean", "mean"], name)
      self.assertEqual([r[field] for r in last], [0.0, 0.0, 2.0, 2.0, 0.0, 2.0], name)
      key = "d_loss" if name == "metrics.jsonl" else "energy_distance"
      for mean, rows in ((last[4], last[0:2]), (last[5], last[2:4])):
        vals = [r[key] for r in rows]
        self.assertEqual(mean["num_seeds"], 2)
        self.assertAlmostEqual(mean[key], np.mean(vals), places=5)
        self.assertAlmostEqual(mean[f"{key}_se"], np.std(vals, ddof=1) / np.sqrt(2), places=5)
    # The penalty weight the step used is each replica's own.
    train_last = [r for r in records(workdir, "metrics.jsonl") if r["step"] == 4]
    self.assertEqual([r["roth_js_weight"] for r in train_last[:4]], [0.0, 0.0, 2.0, 2.0])
    self.assertAlmostEqual(full.final_metrics[f"energy_distance@{field}=2"],
                           last[5]["energy_distance"], places=6)
    figures = os.listdir(os.path.join(workdir, "figures"))
    for name in ("sweep_eval.png", "sweep_training.png", "seeds_eval.png", "seeds_samples.png"):
      self.assertIn(name, figures)
    self.assertNotIn("d_curves.png", figures)  # one mean per value, not one curve
    self.assertFalse(os.path.isdir(os.path.join(workdir, "best")))
    # TensorBoard: a tag per value's mean and per replica; the value is no scalar.
    scalars = read_tensorboard_scalars(os.path.join(workdir, "tensorboard"))
    self.assertAlmostEqual(scalars["eval/energy_distance/weight_2"][-1][1],
                           last[5]["energy_distance"], places=5)
    self.assertIn("eval/energy_distance/seed_9", scalars)
    self.assertFalse([tag for tag in scalars if field in tag])
    # One replica of the sweep, loaded: its game reads that replica's value
    # wherever it is called (a probe, a notebook); the sweep's own game only
    # inside a replica's scope, and says so.
    game, replica, source = loop.load_checkpoint(workdir, seed_index=2)
    _, metrics = jax.jit(game.step)(replica, source.arrays)
    self.assertEqual(float(metrics["roth_js_weight"]), 2.0)
    sweep_game, stacked, _ = loop.load_checkpoint(workdir, seed_index=None)
    with self.assertRaisesRegex(RuntimeError, f"{field} takes a value per replica"):
      sweep_game.step(seeds_lib.take(stacked, 2), source.arrays)
    with self.assertRaisesRegex(IndexError, r"seed_index=4: .* 4 replica\(s\), indices 0..3"):
      loop.load_checkpoint(workdir, seed_index=4)
    self.assertEqual(seeds_lib.replica_info(c, 2), {"replica": 2, "run_seed": 9, field: 2.0})
    # Resume equals uninterrupted, bit for bit.
    part = os.path.join(tmp, "part")
    loop.train_and_evaluate(c, part, stop_after=2)
    resumed = loop.train_and_evaluate(c, part)
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state)):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # At the end already: the summary is read back from the records.
    again = loop.train_and_evaluate(c, workdir)
    finite = lambda m: {k: v for k, v in m.items() if v is not None and np.isfinite(v)}
    self.assertEqual(set(again.final_metrics), set(full.final_metrics))
    self.assertEqual(finite(again.final_metrics), finite(full.final_metrics))

  def test_the_sweep_axis_split_over_devices_equals_one_group(self):
    # 8 fake devices (conftest): 2 values x 2 seeds over 2 seed groups.
    tmp = self.create_tempdir().full_path
    make, field, values, _ = CASES["d_learning_rate_unroll"]
    c = sweep_config(make, field, values, "vmap")
    c.train.batch_size = 32
    c.train.num_devices = 0  # all 8 (conftest's runs default to one)
    one = loop.train_and_evaluate(c, os.path.join(tmp, "one"))
    c.train.seed_devices = 2
    split = loop.train_and_evaluate(c, os.path.join(tmp, "split"))
    self.assertEqual(jax.tree.leaves(split.state.params)[0].sharding.spec,
                     jax.sharding.PartitionSpec("seeds"))
    assert_trees_close(self, one.state.params, split.state.params, rtol=2e-5, atol=1e-6)
    c = sweep_config(make, field, (1e-3, 3e-3, 1e-2), "vmap", num_seeds=1)
    c.train.batch_size = 32
    c.train.num_devices = 0
    c.train.seed_devices = 2
    with self.assertRaisesRegex(errors.ConfigError,
                                r"train.num_seeds x len\(train.sweep_values\), the replicas "
                                r"\(3\) must be divisible by train.seed_devices \(2\)"):
      loop.train_and_evaluate(c, os.path.join(tmp, "bad"))

  def test_a_value_whose_seeds_diverge_is_frozen_on_its_own(self):
    from unittest import mock  # pylint: disable=g-import-not-at-top
    from gan_jax import games  # pylint: disable=g-import-not-at-top
    make, field, values, batching = CASES["roth_gamma_vmap"]
    c = sweep_config(make, field, values, batching, steps=4)
    c.train.nonfinite_seeds = "freeze"
    c.train.update({"steps_per_call": 1, "log_every": 1, "eval_every": 1,
                    "checkpoint_every": 1})
    original = games.make_game

    def poisoned(config, source):  # d_loss NaN from step 2 on where gamma > 1
      game = original(config, source)
      inner = game.step

      def step(state, arrays, shard=lambda x: x):
        new, metrics = inner(state, arrays, shard)
        bad = (state.step >= 2) & (schedules.replica_value(field)(state.step) > 1.0)
        return new, dict(metrics, d_loss=jnp.where(bad, jnp.nan, metrics["d_loss"]))

      game.step = step
      return game

    workdir = self.create_tempdir().full_path
    with mock.patch.object(games, "make_game", poisoned):
      loop.train_and_evaluate(c, workdir)
    last = [r for r in records(workdir, "eval.jsonl") if r["step"] == 4]
    self.assertEqual([r["seed"] for r in last], [7, 8, 9, 10, "mean", "mean"])
    self.assertEqual([seeds_lib.has_values(r, field) for r in last[:4]],
                     [True, True, False, False])
    self.assertEqual([last[4]["num_frozen"], last[5]["num_frozen"]], [0, 2])
    self.assertIsNotNone(last[4]["energy_distance"])
    self.assertIsNone(last[5]["energy_distance"])  # no seed of gamma = 2 left

  @parameterized.named_parameters(
      ("unknown_field", {"sweep_field": "game.penalty.wieght"},
       r"'game.penalty.wieght' cannot be swept in this config \(did you mean "
       r"'game.penalty.weight'\?\).*game.penalty.weight, optim.discriminator.learning_rate, "
       r"optim.generator.learning_rate"),
      ("unused_penalty", {"sweep_field": "game.penalty_2.weight"},
       r"'game.penalty_2.weight' cannot be swept.*only when that penalty"),
      ("one_value", {"sweep_values": (0.1,)},
       r"sweep_values must be a tuple of at least two finite numbers"),
      ("twice", {"sweep_values": (0.1, 0.1)}, r"has a value twice"),
      ("same_label", {"sweep_values": (1e-4, 1.000001e-4)},
       r"has a value twice.*name them 0.0001, 0.0001"),
      ("negative_weight", {"sweep_values": (0.1, -1.0)},
       r"-1.0 is not valid for game.penalty.weight"),
      ("values_without_field", {"sweep_field": ""},
       r"sweep_values=\(0.1, 1.0\) is set but config.train.sweep_field is ''"),
      ("zero_learning_rate", {"sweep_field": "optim.generator.learning_rate",
                              "sweep_values": (0.0, 1e-3)},
       r"0.0 is not a valid optim.generator.learning_rate"),
  )
  def test_bad_sweeps_are_refused_by_name(self, changes, message):
    c = sweep_config(*CASES["roth_gamma_vmap"][:2], (0.1, 1.0), "vmap")
    c.train.update(changes)
    workdir = self.create_tempdir().full_path
    with self.assertRaisesRegex(errors.ConfigError, message):
      loop.train_and_evaluate(c, workdir)
    self.assertEqual(os.listdir(workdir), [])

  def test_an_optimizer_the_game_does_not_build_is_not_sweepable(self):
    from configs import che_circle  # pylint: disable=g-import-not-at-top
    from gan_jax import games  # pylint: disable=g-import-not-at-top
    gan, reg = che_circle.get_config("gan"), che_circle.get_config("reg")
    self.assertIn("encoder", gan.optim)  # listed, but the plain GAN has no encoder
    self.assertNotIn("optim.encoder.learning_rate", games.sweepable_fields(gan))
    self.assertIn("optim.encoder.learning_rate", games.sweepable_fields(reg))

  def test_amending_the_swept_field_is_refused(self):
    make, field, values, batching = CASES["d_learning_rate_unroll"]
    c = sweep_config(make, field, values, batching, steps=2)
    workdir = self.create_tempdir().full_path
    loop.train_and_evaluate(c, workdir)
    c.optim.discriminator.learning_rate = 0.5
    with self.assertRaisesRegex(errors.ConfigError, r"--amend cannot change "
                                r"optim.discriminator.learning_rate: the run sweeps it"):
      loop.train_and_evaluate(c, workdir, amend=True)

  def test_a_schedule_in_the_swept_field_is_refused(self):
    c = sweep_config(*CASES["roth_gamma_vmap"][:2], (0.1, 1.0), "vmap")
    c.game.penalty = common.penalty("roth_js", {"name": "gamma_decay", "gamma_0": 0.1,
                                                "total_steps": 4, "decay": 0.1})
    with self.assertRaisesRegex(errors.ConfigError, r"is the schedule .*gamma_decay.*not a "
                                r"number: a sweep gives each replica one constant value.*"
                                r"or sweep a number of this schedule: "
                                r"game.penalty.weight.gamma_0$"):
      loop.train_and_evaluate(c, self.create_tempdir().full_path)

  def test_a_section_or_a_schedule_without_sweepable_numbers_is_refused_so(self):
    c = sweep_config(_annealed_roth, "game.penalty.weight.gamma_0", (0.1, 1.0), "vmap")
    # A section is not a schedule (nor a number): the list of what can be swept.
    c.train.sweep_field = "game.penalty"
    with self.assertRaisesRegex(errors.ConfigError, r"'game.penalty' cannot be swept in this "
                                r"config.*game.penalty.weight.gamma_0"):
      loop.train_and_evaluate(c, self.create_tempdir().full_path)
    # A used penalty whose weight is an exponential schedule: no number of it
    # can vary per replica, and the message says so (not "the penalty is not used").
    config_registry.set_field(c, "game.penalty.weight", {
        "name": "exponential", "init_value": 0.1, "end_value": 0.01, "transition_steps": 4})
    c.train.sweep_field = "game.penalty.weight"
    with self.assertRaisesRegex(errors.ConfigError, r"none of a 'exponential' schedule's "
                                r"numbers can take a value per replica.*gamma_decay \(gamma_0\)"):
      loop.train_and_evaluate(c, self.create_tempdir().full_path)

  @parameterized.named_parameters(
      ("step_count", "game.penalty.weight.total_steps", (3, 5),
       r"'game.penalty.weight.total_steps' cannot be swept.*game.penalty.weight.gamma_0"),
      ("negative_gamma_0", "game.penalty.weight.gamma_0", (0.1, -1.0),
       r"-1.0 is not valid for game.penalty.weight.gamma_0: config.game.penalty.weight: "
       r"gamma_0 must be >= 0; got -1.0"),
  )
  def test_bad_sweeps_inside_a_schedule_are_refused(self, field, values, message):
    c = sweep_config(_annealed_roth, "game.penalty.weight.gamma_0", (0.1, 1.0), "vmap")
    c.train.sweep_field, c.train.sweep_values = field, values
    workdir = self.create_tempdir().full_path
    with self.assertRaisesRegex(errors.ConfigError, message):
      loop.train_and_evaluate(c, workdir)
    self.assertEqual(os.listdir(workdir), [])

  def test_the_weight_each_replica_reads_is_its_schedule(self):
    # gamma_0 * decay**(t / T) with each replica's gamma_0, step by step.
    c = sweep_config(_annealed_roth, "game.penalty.weight.gamma_0", (0.1, 2.0), "vmap",
                     num_seeds=1, steps=3)
    from gan_jax import games  # pylint: disable=g-import-not-at-top
    weight = games._with_replica_value(c).game.penalty.weight  # pylint: disable=protected-access
    for gamma_0 in (0.1, 2.0):
      with schedules.replica_values({"game.penalty.weight.gamma_0": gamma_0}):
        # A fresh function per value: a compiled program keeps what it read.
        got = [float(jax.jit(lambda t: weight(t))(t)) for t in range(5)]  # pylint: disable=unnecessary-lambda
      want = [gamma_0 * 0.05 ** (min(t, 3) / 3) for t in range(5)]
      np.testing.assert_allclose(got, want, rtol=1e-5)
    # Outside a replica's block the swept number has no value.
    with self.assertRaisesRegex(RuntimeError, "game.penalty.weight.gamma_0 takes a value per"):
      weight(0)
    # One replica's schedule (a loaded replica) is that replica's numbers.
    one = games._with_replica_value(c, 2.0).game.penalty.weight  # pylint: disable=protected-access
    np.testing.assert_allclose(float(one(3)), 2.0 * 0.05, rtol=1e-6)


class ReplicaValueTest(parameterized.TestCase):

  def test_value_of_the_enclosing_block(self):
    gamma = schedules.replica_value("gamma")
    with self.assertRaisesRegex(RuntimeError, r"gamma takes a value per replica"):
      gamma(0)
    with schedules.replica_values({"gamma": 0.5}):
      self.assertEqual(float(gamma(3)), 0.5)
      with schedules.replica_values({"gamma": 2.0}):
        self.assertEqual(float(gamma(3)), 2.0)
      with schedules.replica_values({"other": 1.0}):
        self.assertEqual(float(gamma(3)), 0.5)  # the innermost block naming it
      self.assertEqual(float(gamma(3)), 0.5)
    with self.assertRaises(RuntimeError):
      gamma(0)

  def test_mapped_over_replicas(self):
    gamma = schedules.replica_value("gamma")

    def loss(x, value):
      with schedules.replica_values({"gamma": value}):
        return gamma(0) * jnp.sum(x ** 2)

    values = jnp.array([0.0, 1.0, 3.0])
    x = jnp.ones((3, 2))
    for batching in seeds_lib.SEED_BATCHING:
      out = jax.jit(seeds_lib.over_seeds(loss, batching))(x, values)
      np.testing.assert_allclose(np.asarray(out), [0.0, 2.0, 6.0])


class SweepFigureTest(parameterized.TestCase):

  def test_each_value_drawn_as_its_seeds_mean(self):
    steps = [2, 4, 6]
    a = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]])
    b = np.array([[10.0, 10.0, 10.0]])
    fig = plotting.sweep_curves_figure(steps, {"w=0": {"d_loss": a}, "w=1": {"d_loss": b}},
                                       keys=("d_loss", "absent"))
    lines = fig.axes[0].get_lines()
    np.testing.assert_allclose(lines[0].get_ydata(), [2.0, 3.0, 4.0])
    np.testing.assert_allclose(lines[1].get_ydata(), [10.0, 10.0, 10.0])
    self.assertEqual([line.get_label() for line in lines], ["w=0 (2 seeds)", "w=1 (1 seeds)"])
    with self.assertRaisesRegex(ValueError, r"'w=1', 'd_loss' has 2 steps but steps has 3"):
      plotting.sweep_curves_figure(steps, {"w=0": {"d_loss": a}, "w=1": {"d_loss": b[:, :2]}})


class SweepSummaryTest(parameterized.TestCase):

  def test_one_row_per_value(self):
    text = seeds_lib.sweep_summary({
        "modes_captured@w=0": 1.0, "modes_captured_se@w=0": 0.5,
        "energy_distance@w=0": 0.125, "energy_distance_se@w=0": 0.01,
        "modes_captured@w=1": 2.0, "modes_captured_se@w=1": 0.0,
        "energy_distance@w=1": float("nan"), "energy_distance_se@w=1": float("nan")})
    lines = text.splitlines()
    self.assertEqual(lines[0].split(), ["value", "modes_captured", "energy_distance"])
    self.assertEqual(lines[1].split(), ["w=0", "1", "+-", "0.5", "0.125", "+-", "0.01"])
    self.assertEqual(lines[2].split(), ["w=1", "2", "+-", "0", "-"])
