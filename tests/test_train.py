"""Training engine: games on toy data, data parallelism, resume, CLI, safety."""

import glob
import json
import os
from unittest import mock
import subprocess
import sys

from absl.testing import parameterized
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import betagan_mixture_3d
from configs import che_circle
from configs import common
from configs import instance_noise_2d
from configs import roth_fgan_2d
from configs import roth_submanifold
from configs import sgld_discriminator
from configs import vanilla_mixture_3d
from configs import wgan_2d
from gan_jax import games
from gan_jax.data import toy
from gan_jax.data import make_source
from gan_jax.train import loop
from gan_jax.train import step as step_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def shrink(c, *, steps=4, spc=2, batch=16, width=16):
  """Makes any config tiny: narrow models, few steps, no periodic output."""
  c.model.generator.widths = (width,) * len(c.model.generator.widths)
  c.model.discriminator.widths = (width,) * len(c.model.discriminator.widths)
  c.train.batch_size = batch
  c.train.num_steps = steps
  c.train.steps_per_call = spc
  for k in ("log_every", "eval_every", "checkpoint_every", "plot_every"):
    c.train[k] = steps
  c.train.eval_samples = 64
  c.train.progress = False
  c.train.figures = False  # tests that look at figures turn them on
  level = c.game.perturbation.level
  if isinstance(level, ml_collections.ConfigDict) and level.get("name") == "beta":
    # One step per stage so that a few steps cross uniform, levels and data.
    level.uniform_steps, level.steps_per_level, level.K = 1, 1, 2
  return c


GAME_CONFIGS = {
    "betagan": lambda: betagan_mixture_3d.get_config("5"),
    "betagan_cubes": lambda: vanilla_mixture_3d.get_config("cubes"),
    "roth_reg_5d": lambda: roth_submanifold.get_config("reg_5d"),
    "roth_lazy": lambda: roth_submanifold.get_config("reg_lazy"),
    "che_gan": lambda: che_circle.get_config("gan"),
    "che_reg_gan": lambda: che_circle.get_config("reg"),
    "che_mdgan": lambda: che_circle.get_config("mdgan"),
    "wgan_clip": lambda: wgan_2d.get_config("clip"),
    "wgan_gp_grid": lambda: wgan_2d.get_config("gp,grid_25"),
    "ct_gan": lambda: wgan_2d.get_config("ct"),
    "cc_sgld_ensemble": lambda: sgld_discriminator.get_config("cc_sgld"),
    "psgld": lambda: sgld_discriminator.get_config("psgld,grid_25"),
    "instance_noise": instance_noise_2d.get_config,
    "roth_fgan_kl": lambda: roth_fgan_2d.get_config("kl"),
}


def run_steps(config, n_calls=2, num_devices=1):
  source = make_source(config.data)
  game = games.make_game(config, source)
  mesh = step_lib.make_mesh(num_devices)
  state = step_lib.init_state(game, config.seed, mesh)
  run = step_lib.compile_steps(game.step, mesh, steps_per_call=config.train.steps_per_call)
  history = []
  for _ in range(n_calls):
    state, metrics = run(state, step_lib.put_replicated(source.arrays, mesh))
    history.append(jax.device_get(metrics))
  return game, state, history


class GamesTest(parameterized.TestCase):

  @parameterized.named_parameters(*GAME_CONFIGS.items())
  def test_config_trains_without_nan(self, make_config):
    c = shrink(make_config())
    _, state, history = run_steps(c)
    for metrics in history:
      loop.check_finite(metrics, 0)
    self.assertEqual(int(state.step), 2 * c.train.steps_per_call)
    # Parameters moved: the game really updated both players.
    game, init, _ = run_steps(c, n_calls=0)
    self.assertGreaterEqual(len(state.params), 2)
    for player in state.params:
      delta = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))),
                           state.params[player], init.params[player])
      self.assertGreater(max(jax.tree.leaves(delta)), 0.0, player)

  # The sets the experiment configs above do not already train on.
  @parameterized.parameters(*sorted(set(toy.TOY_DATASETS) - {
      "mixture_3d_5", "cube_frames", "roth_submanifold", "che_circle", "ring_8", "grid_25"}))
  def test_every_toy_set_trains(self, name):
    c = shrink(common.toy_config())
    c.data = ml_collections.ConfigDict({"name": name})
    c.model.latent_shape = (2,)
    _, _, history = run_steps(c, n_calls=1)
    loop.check_finite(history[0], 0)

  def test_betagan_level_follows_schedule(self):
    c = shrink(betagan_mixture_3d.get_config("5"), steps=6, spc=6)
    _, _, history = run_steps(c, n_calls=1)
    levels = history[0]["level"]
    # uniform_steps=1, K=2 levels of 1 step from beta_1=0.1 (alpha = 10), then data.
    np.testing.assert_allclose(levels[:3], [0.0, 0.1, 1.0], rtol=1e-6)
    self.assertTrue(np.all(np.isinf(levels[3:])))

  def test_ema_generator_is_the_running_average(self):
    c = shrink(instance_noise_2d.get_config(), steps=1, spc=1)
    c.game.ema_decay = 0.5
    game, init, _ = run_steps(c, n_calls=0)
    init_params = jax.tree.map(np.asarray, init.params["generator"])
    _, state, _ = run_steps(c, n_calls=1)
    expected = jax.tree.map(lambda a, b: 0.5 * a + 0.5 * np.asarray(b), init_params,
                            state.params["generator"])
    for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(state.extra["ema_generator"])):
      np.testing.assert_allclose(np.asarray(b), a, rtol=1e-6, atol=1e-7)
    # Sampling uses the EMA weights unless told otherwise.
    key = jax.random.PRNGKey(3)
    ema_samples = game.sample(state, key, 8)
    raw_samples = game.sample(state, key, 8, ema=False)
    self.assertFalse(np.allclose(ema_samples, raw_samples))

  def test_clipping_keeps_critic_in_box(self):
    c = shrink(wgan_2d.get_config("clip"))
    _, state, _ = run_steps(c)
    for leaf in jax.tree.leaves(state.params["discriminator"]):
      self.assertLessEqual(float(jnp.max(jnp.abs(leaf))), 0.01 + 1e-7)

  def test_ensemble_history_holds_recent_samples(self):
    c = shrink(sgld_discriminator.get_config("sgld"))
    _, state, _ = run_steps(c)
    hist = state.extra["d_history"]
    first = jax.tree.map(lambda h: h[0], hist)
    chex_equal = jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), first,
                              state.params["discriminator"])
    self.assertTrue(all(jax.tree.leaves(chex_equal)))
    second = jax.tree.map(lambda h: h[1], hist)
    differs = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), first, second)
    self.assertTrue(any(jax.tree.leaves(differs)))

  def test_sgld_noise_level_is_reported(self):
    c = shrink(sgld_discriminator.get_config("cc_sgld"))
    _, _, history = run_steps(c)
    self.assertIn("d_noise_std", history[-1])
    self.assertTrue(np.all(history[-1]["d_noise_std"] > 0))


class DataParallelTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ("betagan", lambda: betagan_mixture_3d.get_config("5")),
      ("roth_js_bn", lambda: roth_submanifold.get_config("reg")),
  )
  def test_eight_devices_equal_one(self, make_config):
    if len(jax.devices()) < 8:
      pytest.skip("needs 8 (fake) devices")
    c = shrink(make_config(), batch=64)
    if "roth" in c.data.name:
      # Batch norm in both players: statistics must be over the global batch.
      c.model.generator.batch_norm = True
      c.model.discriminator.batch_norm = True
    # Adam divides by the root of the second moment, so for parameters whose
    # gradient is ~0 it turns float round-off into updates of size lr; plain SGD
    # keeps the comparison about the gradients themselves.
    c.optim.generator = {"name": "sgd", "learning_rate": 0.05}
    c.optim.discriminator = {"name": "sgd", "learning_rate": 0.05}
    _, one, h1 = run_steps(c, num_devices=1)
    _, eight, h8 = run_steps(c, num_devices=8)
    # Same global batch and keys: only the order of floating-point sums differs
    # (per-device partial sums then an all-reduce), so agreement is to float32
    # round-off accumulated over 4 steps.
    for a, b in zip(jax.tree.leaves(one.params), jax.tree.leaves(eight.params)):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(h1[-1]["d_loss"], h8[-1]["d_loss"], rtol=1e-4)
    # The batch really was split over 8 devices.
    self.assertEqual(len(eight.params["generator"]["Dense_0"]["kernel"].sharding.device_set)
                     if "Dense_0" in eight.params["generator"] else 8, 8)


def tiny_run_config(steps=8, spc=2):
  c = shrink(betagan_mixture_3d.get_config("5"), steps=steps, spc=spc)
  c.train.checkpoint_every = 2
  c.train.eval_every = 4
  c.train.log_every = 2
  c.train.plot_every = 8
  return c


class LoopTest(parameterized.TestCase):

  def test_stop_after_must_align_with_calls(self):
    with self.assertRaisesRegex(ValueError, r"stop_after \(3\).*steps_per_call \(2\)"):
      loop.train_and_evaluate(tiny_run_config(), self.create_tempdir().full_path, stop_after=3)

  # The suite's runs use one device (conftest); one loop test runs on all 8 fake
  # devices: the batch split, its checkpoints and evaluations, and its resume.
  @parameterized.named_parameters(("one_device", 1), ("eight_devices", 0))
  def test_resume_equals_uninterrupted(self, num_devices):
    tmp = self.create_tempdir().full_path
    if num_devices == 0 and len(jax.devices()) < 8:
      pytest.skip("needs 8 (fake) devices")
    c = tiny_run_config()
    c.train.num_devices = num_devices
    full = loop.train_and_evaluate(c, os.path.join(tmp, "full"))
    if num_devices == 0:
      leaf = jax.tree.leaves(full.state.params)[0]
      self.assertLen(leaf.sharding.device_set, len(jax.devices()))
      # Equal to the one-device run up to the order of the cross-device sums.
      one = tiny_run_config()
      one.train.num_devices = 1
      single = loop.train_and_evaluate(one, os.path.join(tmp, "single"))
      for a, b in zip(jax.tree.leaves(full.state.params), jax.tree.leaves(single.state.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=2e-5)
      self.assertEqual(set(full.final_metrics), set(single.final_metrics))
    part = loop.train_and_evaluate(c, os.path.join(tmp, "part"), stop_after=4)
    self.assertEqual(int(part.state.step), 4)
    resumed = loop.train_and_evaluate(c, os.path.join(tmp, "part"))
    self.assertEqual(int(resumed.state.step), 8)
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state)):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # bit for bit
    # The metric log of the resumed run has each step once.
    steps = [r["step"] for r in loop.MetricLog(os.path.join(tmp, "part", "metrics.jsonl"),
                                               8).read()]
    self.assertEqual(steps, sorted(set(steps)))

  def test_worker_failure_stops_the_run_and_records_precede_checkpoints(self):
    # Figures and evaluation metrics run on the loop's worker thread: a failure
    # there must stop the run with its own error, not vanish.
    from gan_jax.train import evaluate  # pylint: disable=g-import-not-at-top
    workdir = self.create_tempdir().full_path
    c = tiny_run_config()
    c.train.figures = True
    c.train.plot_every = 4

    def broken(self, *args):
      raise RuntimeError("figure failed on the worker")

    with mock.patch.object(evaluate.Evaluator, "plot", broken):
      with self.assertRaisesRegex(RuntimeError, "figure failed on the worker"):
        loop.train_and_evaluate(c, workdir)
    # The plot at step 4 is drained before the checkpoint at step 6, which
    # therefore is never written; the eval record of step 4 was.
    self.assertEqual(sorted(os.listdir(os.path.join(workdir, "checkpoints"))), ["2", "4"])
    steps = [json.loads(line)["step"] for line in open(os.path.join(workdir, "eval.jsonl"))]
    self.assertEqual(steps, [4])
    # Timings name the loop's parts and the worker's overlapped time.
    ok = self.create_tempdir().full_path
    result = loop.train_and_evaluate(tiny_run_config(), ok)
    for key in ("setup", "first_call", "steps", "evaluation", "waiting", "checkpoints",
                "worker_evaluation", "outside_steps_share"):
      self.assertIn(key, result.timings)

  def test_load_readings_are_even_in_time_not_one_per_checkpoint(self):
    clock = [100.0]
    loads = iter([1.0, 2.0, 3.0, 4.0])
    sitting = loop._Sitting(os.path.join(self.create_tempdir().full_path, "t.jsonl"), 0, 1)  # pylint: disable=protected-access
    with mock.patch.object(loop.time, "monotonic", lambda: clock[0]), \
         mock.patch.object(loop, "_load_average", lambda: next(loads)):
      for _ in range(5):  # many calls within one interval: one reading
        sitting.sample_load()
      clock[0] += loop.LOAD_EVERY
      sitting.sample_load()
      sitting.write(4, {"total": 1.0})  # a checkpoint right after: no extra reading
      self.assertEqual(sitting.loads, [1.0, 2.0])
      line = json.loads(open(sitting.path, encoding="utf-8").read())
      self.assertEqual(line["load_mean"], 1.5)
      fresh = loop._Sitting(sitting.path + "2", 0, 1)  # pylint: disable=protected-access
      fresh.write(2, {"total": 1.0})  # a sitting's first write always has one
      self.assertEqual(fresh.loads, [3.0])

  def test_timings_keep_the_time_of_a_sitting_that_broke_off(self):
    from unittest import mock  # pylint: disable=g-import-not-at-top
    from gan_jax import games  # pylint: disable=g-import-not-at-top
    from tests.test_seeds import _poisoning  # pylint: disable=g-import-not-at-top
    workdir = self.create_tempdir().full_path
    path = os.path.join(workdir, "timings.jsonl")
    with mock.patch.object(games, "make_game", _poisoning(games.make_game, from_step=5,
                                                           always=True)):
      with self.assertRaises(loop.NonFiniteError):
        loop.train_and_evaluate(tiny_run_config(), workdir)
    lines = [json.loads(line) for line in open(path, encoding="utf-8")]
    self.assertLen(lines, 1)  # written at the checkpoint of step 4, before the NaN
    self.assertEqual((lines[0]["from_step"], lines[0]["to_step"], lines[0]["partial"]),
                     (0, 4, True))
    self.assertGreater(lines[0]["total"], 0.0)
    # Where the time went: this machine, the process's CPU time, the load.
    self.assertEqual(lines[0]["machine"], loop.machine())
    self.assertGreater(lines[0]["cpu_seconds"], 0.0)
    if os.getloadavg()[0] > 0:  # some sandboxes report no load (always 0)
      self.assertGreater(lines[0]["load_mean"], 0.0)
    else:
      self.assertNotIn("load_mean", lines[0])
    loop.train_and_evaluate(tiny_run_config(), workdir)  # resumes at 4, unpoisoned
    again = [json.loads(line) for line in open(path, encoding="utf-8")]
    self.assertEqual(again[0], lines[0])
    self.assertEqual((again[1]["from_step"], again[1]["to_step"]), (4, 8))
    self.assertNotIn("partial", again[1])

  def test_outputs_and_standalone_checkpoint_metrics(self):
    workdir = self.create_tempdir().full_path
    c = tiny_run_config()
    c.train.figures = True
    result = loop.train_and_evaluate(c, workdir)
    for name in ("config.json", "metrics.jsonl", "eval.jsonl"):
      self.assertTrue(os.path.exists(os.path.join(workdir, name)), name)
    figures = {os.path.basename(f) for f in glob.glob(os.path.join(workdir, "figures", "*.png"))}
    self.assertTrue({"samples.png", "d_curves.png", "losses.png", "schedules.png",
                     "occupancy.png", "modes.png"} <= figures, figures)
    self.assertEqual(sorted(os.listdir(os.path.join(workdir, "checkpoints"))), ["4", "6", "8"])
    self.assertTrue(os.listdir(os.path.join(workdir, "best")))
    record = json.loads(open(os.path.join(workdir, "eval.jsonl")).readlines()[-1])
    for key in ("modes_captured", "high_quality_share", "kl_mode_histogram", "energy_distance",
                "grid_occupancy", "grid_occupancy_uniform_reference"):
      self.assertIn(key, record)
    # Metrics computed standalone on the checkpoint equal those of the run.
    game, state, source = loop.load_checkpoint(workdir)
    from gan_jax.train import evaluate  # pylint: disable=g-import-not-at-top
    ev = evaluate.Evaluator(game, source, loop.ml_collections.ConfigDict(
        json.load(open(os.path.join(workdir, "config.json")))), self.create_tempdir().full_path)
    again = ev.evaluate(state, 8)
    self.assertAlmostEqual(again["energy_distance"], record["energy_distance"], places=5)
    self.assertAlmostEqual(again["energy_distance"], result.final_metrics["energy_distance"],
                           places=5)

  def test_refuses_workdir_of_another_run(self):
    workdir = self.create_tempdir().full_path
    c = tiny_run_config(steps=4)
    loop.train_and_evaluate(c, workdir)
    before = sorted(os.listdir(os.path.join(workdir, "checkpoints")))
    other = tiny_run_config(steps=4)
    other.game.loss = "non_saturating"
    with self.assertRaisesRegex(loop.WorkdirConflictError, r"game\.loss.*minimax"):
      loop.train_and_evaluate(other, workdir)
    self.assertEqual(sorted(os.listdir(os.path.join(workdir, "checkpoints"))), before)
    # A non-empty folder that is not a run is refused too.
    foreign = self.create_tempdir()
    foreign.create_file("notes.txt", content="mine")
    with self.assertRaisesRegex(loop.WorkdirConflictError, "not empty"):
      loop.train_and_evaluate(c, foreign.full_path)
    self.assertEqual(os.listdir(foreign.full_path), ["notes.txt"])

  def test_nan_stops_and_keeps_last_good_checkpoint(self):
    workdir = self.create_tempdir().full_path
    c = tiny_run_config(steps=8)
    c.train.checkpoint_every = 2
    # A learning-rate schedule that explodes after step 4 forces non-finite values.
    c.optim.discriminator = ml_collections.ConfigDict({"name": "adam", "learning_rate": {
        "name": "linear", "init_value": 1e-3, "end_value": 1e38, "transition_steps": 2,
        "begin_step": 4}})
    with self.assertRaisesRegex(loop.NonFiniteError, r"at step \d+.*last good checkpoint"):
      loop.train_and_evaluate(c, workdir)
    kept = sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints")))
    self.assertTrue(kept and max(kept) <= 6, kept)
    _, state, _ = loop.load_checkpoint(workdir)
    for leaf in jax.tree.leaves(state.params):
      self.assertTrue(np.all(np.isfinite(np.asarray(leaf))))

  @parameterized.named_parameters(
      ("loss", lambda c: setattr(c.game, "loss", "wasserstein_gp"), r"game\.loss.*valid"),
      ("penalty", lambda c: c.game.penalty.update({"name": "gp"}), r"game\.penalty.*valid"),
      ("optimizer", lambda c: c.optim.generator.update({"name": "adamax"}),
       r"optim\.generator\.name.*valid"),
      ("data", lambda c: c.data.update({"name": "swiss_roll"}), r"data\.name.*valid"),
      ("events", lambda c: setattr(c.train, "log_every", 3), r"train\.log_every.*multiple"),
      ("step_metrics", lambda c: setattr(c.train, "step_metrics", "all"),
       r"train\.step_metrics must be one of every, last"),
      ("model", lambda c: c.model.generator.update({"activation": "relux"}),
       r"model\.generator.*relux"),
      ("perturbation", lambda c: c.game.perturbation.update({"name": "heat2"}),
       r"perturbation.*valid"),
      ("penalty_kwargs", lambda c: c.game.update({"penalty": common.penalty(
          "wgan_gp", 10.0, divergence="kl")}), r"penalty\.kwargs.*divergence.*valid"),
      ("penalty_missing", lambda c: c.game.update({"penalty": common.penalty(
          "roth_fgan", 1.0)}), r"roth_fgan.*needs.*divergence"),
      # Encoder games take every component of the adversarial game (penalties,
      # heat, samplers, ...) except joint_batch, refused with the reason.
      ("unsupported_in_encoder_game", lambda c: c.game.update(
          {"name": "reg_gan", "joint_batch": True, "penalty": common.penalty("roth_js", 0.1)}),
       r"game\.joint_batch is not supported by game 'reg_gan': its discriminators see real "
       r"and generated inputs in separate passes"),
      ("divergence_mismatch", lambda c: c.game.update(
          {"loss": "fgan_kl", "penalty": common.penalty("roth_fgan", 1.0, divergence="js")}),
       r"divergence \('js'\) must match.*fgan_kl"),
      ("schedule_too_long", lambda c: c.game.perturbation.level.update({"steps_per_level": 50}),
       r"num_steps \(8\) ends before the beta schedule reaches the data"),
      ("sampler_size", lambda c: c.optim.update({"discriminator": {
          "name": "sgld", "learning_rate": 1e-3, "data_size": "auto"}}),
       r"optim\.discriminator\.data_size='auto' needs a data set of known size"),
  )
  def test_bad_config_fails_before_compiling(self, mutate, pattern):
    workdir = os.path.join(self.create_tempdir().full_path, "run")
    c = tiny_run_config()
    mutate(c)
    with self.assertRaisesRegex(ValueError, pattern):
      loop.train_and_evaluate(c, workdir)
    self.assertFalse(os.path.exists(workdir))  # nothing written


def test_cli_runs_tiny_config(tmp_path):
  workdir = tmp_path / "run"
  cmd = [sys.executable, "-m", "experiments.main",
         "--config=configs/betagan_mixture_3d.py", f"--workdir={workdir}",
         "--config.train.num_steps=40", "--config.train.steps_per_call=20",
         "--config.train.log_every=20", "--config.train.eval_every=20",
         "--config.train.checkpoint_every=20", "--config.train.plot_every=40",
         "--config.train.batch_size=32", "--config.train.eval_samples=200",
         "--config.game.perturbation.level.uniform_steps=10",
         "--config.game.perturbation.level.steps_per_level=1"]
  env = dict(os.environ, PYTHONPATH=ROOT)
  out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "ETA" in out.stderr  # progress with ETA
  assert len((workdir / "metrics.jsonl").read_text().splitlines()) == 2
  assert (workdir / "figures" / "samples.png").exists()
  assert sorted(os.listdir(workdir / "checkpoints")) == ["20", "40"]


def test_check_finite_names_step_and_quantity():
  ok = {"d_loss": np.array([1.0, 2.0, 3.0]), "level": np.array([0.0, np.inf, np.inf])}
  loop.check_finite(ok, 10)  # beta = inf is the data stage, not an error
  with pytest.raises(loop.NonFiniteError, match=r"'g_loss' became NaN or inf at step 12 "
                     r"\(also: d_loss\)"):
    loop.check_finite({**ok, "g_loss": np.array([0.0, np.nan, 1.0]),
                       "d_loss": np.array([0.0, 1.0, np.inf])}, 10)
  with pytest.raises(loop.NonFiniteError, match="'level'"):
    loop.check_finite({"level": np.array([np.nan])}, 0)
  with pytest.raises(loop.NonFiniteError, match="parameters became NaN or inf during steps 11-13"):
    loop.check_finite(ok, 10, params_finite=False)


def test_check_finite_maps_last_step_diagnostics_to_their_step():
  # Essentials cover all 4 steps of the call, diagnostics only its last.
  metrics = {"d_loss": np.zeros(4), "d_real": np.array([np.nan])}
  with pytest.raises(loop.NonFiniteError, match="'d_real' became NaN or inf at step 14"):
    loop.check_finite(metrics, 10)


def test_call_returns_every_step_essentials_and_last_step_diagnostics():
  c = shrink(betagan_mixture_3d.get_config("5"), steps=4, spc=4)
  _, _, history = run_steps(c, n_calls=1)
  assert history[0]["d_loss"].shape == (4,) and history[0]["level"].shape == (4,)
  assert history[0]["d_real"].shape == (1,) and history[0]["d_grad_norm"].shape == (1,)


def test_last_step_metrics_only_same_training():
  c = shrink(betagan_mixture_3d.get_config("5"), steps=4, spc=4)
  source = make_source(c.data)
  game = games.make_game(c, source)
  mesh = step_lib.make_mesh(1)
  out = {}
  for mode in ("every", "last"):
    run = step_lib.compile_steps(game.step, mesh, steps_per_call=4, step_metrics=mode)
    out[mode] = run(step_lib.init_state(game, 0, mesh), source.arrays)
  state_every, m_every = out["every"]
  state_last, m_last = out["last"]
  assert {v.shape for v in m_last.values()} == {(1,)}
  assert m_every["d_loss"].shape == (4,)
  np.testing.assert_allclose(m_last["d_loss"], m_every["d_loss"][-1:], rtol=1e-5)
  for a, b in zip(jax.tree.leaves(state_every), jax.tree.leaves(state_last)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="step_metrics: unknown value 'all'; valid: every, last"):
    step_lib.compile_steps(game.step, mesh, steps_per_call=4, step_metrics="all")
  # A call's metrics of its last step only are that step's: NaN located there.
  with pytest.raises(loop.NonFiniteError, match="'d_loss' became NaN or inf at step 14"):
    loop.check_finite({"d_loss": np.array([np.nan])}, 10, steps=4)


def read_tensorboard_scalars(folder):
  """{tag: [(step, value)]} of the event files in ``folder`` (tensorboardX's protos)."""
  import struct  # pylint: disable=g-import-not-at-top
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
  out = {}
  for name in sorted(os.listdir(folder)):
    with open(os.path.join(folder, name), "rb") as f:
      data = f.read()
    pos = 0
    while pos < len(data):
      (length,) = struct.unpack("<Q", data[pos:pos + 8])
      event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
      pos += 12 + length + 4
      for v in event.summary.value:
        out.setdefault(v.tag, []).append((event.step, v.simple_value))
  return out


class TensorBoardTest(parameterized.TestCase):

  def test_records_become_scalars(self):
    workdir = self.create_tempdir().full_path
    c = tiny_run_config(steps=4)
    loop.train_and_evaluate(c, workdir)
    scalars = read_tensorboard_scalars(os.path.join(workdir, "tensorboard"))
    metrics = loop.MetricLog(os.path.join(workdir, "metrics.jsonl"), 4).read()
    evals = loop.MetricLog(os.path.join(workdir, "eval.jsonl"), 4).read()
    self.assertEqual(scalars["train/d_loss"],
                     [(r["step"], pytest.approx(r["d_loss"], rel=1e-6)) for r in metrics])
    self.assertEqual(scalars["eval/energy_distance"],
                     [(r["step"], pytest.approx(r["energy_distance"], rel=1e-6)) for r in evals])
    c.train.tensorboard = False
    off = self.create_tempdir().full_path
    loop.train_and_evaluate(c, off)
    self.assertFalse(os.path.exists(os.path.join(off, "tensorboard")))
