"""A command line that fails like a finished tool.

Every mistake is refused before the workdir is touched, as a ``ConfigError`` (or
another ``UserError``) in the library and as one paragraph with exit status 2 on
the command line; a workdir is locked for a run's lifetime; after a NaN a run
continues from its last good checkpoint with changed optimizer settings.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

from absl.testing import parameterized
import jax
import ml_collections
import numpy as np

from configs import common
from configs import sgld_discriminator
from gan_jax import errors
from gan_jax.data import images
from gan_jax.train import loop
from gan_jax.train import workdir as workdir_lib
from tests.test_train import tiny_run_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
ENV.pop("XLA_FLAGS", None)
# Overrides that make the README's main job a few seconds long.
QUICK = ["--config.train.num_steps=40", "--config.train.steps_per_call=20",
         "--config.train.log_every=20", "--config.train.eval_every=20",
         "--config.train.checkpoint_every=20", "--config.train.plot_every=40",
         "--config.train.batch_size=32", "--config.train.eval_samples=200",
         "--config.game.perturbation.level.uniform_steps=10",
         "--config.game.perturbation.level.steps_per_level=1"]


def cli(*args, timeout=300):
  cmd = [sys.executable, "-m", "experiments.main", *args]
  return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True,
                        timeout=timeout)


def snapshot(folder):
  """Every file under ``folder`` (but the lock) with a digest of its bytes."""
  out = {}
  for base, _, files in os.walk(folder):
    for f in files:
      path = os.path.join(base, f)
      if f != workdir_lib.LOCK_FILE:
        with open(path, "rb") as fh:
          out[os.path.relpath(path, folder)] = hashlib.sha256(fh.read()).hexdigest()
  return out


def exploding_lr(begin_step):
  """A discriminator learning rate that forces NaN soon after ``begin_step``."""
  return ml_collections.ConfigDict({"name": "adam", "learning_rate": {
      "name": "linear", "init_value": 1e-3, "end_value": 1e38, "transition_steps": 2,
      "begin_step": begin_step}})


class ValidationTest(parameterized.TestCase):
  """Each mistake is a ConfigError naming the field; the workdir is never created."""

  @parameterized.named_parameters(
      ("negative_penalty_weight",
       lambda c: setattr(c.game, "penalty", common.penalty("roth_js", -1.0)),
       r"game\.penalty\.weight.*non-negative.*-1\.0"),
      ("negative_weight_of_unused_penalty",
       lambda c: c.game.penalty_2.update({"weight": -0.5}), r"game\.penalty_2\.weight"),
      ("negative_noise_schedule_end",
       lambda c: setattr(c.game, "perturbation", common.perturbation(
           "instance_noise", {"name": "linear", "init_value": 0.5, "end_value": -0.5,
                              "transition_steps": 8})),
       r"game\.perturbation\.level.*non-negative.*-0\.5"),
      ("negative_blur_start",
       lambda c: setattr(c.game, "perturbation", common.perturbation(
           "blur", {"name": "linear", "init_value": -2.0, "end_value": 0.0,
                    "transition_steps": 8})),
       r"game\.perturbation\.level.*-2\.0"),
      ("betagan_latent_smaller_than_data",
       lambda c: setattr(c.model, "latent_shape", (2,)),
       r"latent_shape=\(2,\) has 2 dimensions, fewer than the data's 3.*dim z >= dim x"),
      ("best_metric_no_evaluation_produces",
       lambda c: setattr(c.train, "best_metric", "fid"),
       r"best_metric='fid' is not a metric.*valid: .*energy_distance"),
      ("best_metric_typo",
       lambda c: setattr(c.train, "best_metric", "energy_distanse"),
       r"did you mean 'energy_distance'"),
      ("keep_no_checkpoint", lambda c: setattr(c.train, "keep_checkpoints", 0),
       r"train\.keep_checkpoints must be an integer >= 1; got 0"),
      ("latent_prior", lambda c: setattr(c.model, "latent_prior", "gaussian"),
       r"model\.latent_prior: unknown prior 'gaussian'.*valid: uniform, normal"),
      ("no_eval_samples", lambda c: setattr(c.train, "eval_samples", 0),
       r"train\.eval_samples must be an integer >= 2; got 0"),
      ("ema_decay_one", lambda c: setattr(c.game, "ema_decay", 1.0),
       r"game\.ema_decay must be in \[0, 1\)"),
      ("negative_n_critic", lambda c: setattr(c.game, "n_critic", 0),
       r"game\.n_critic must be an integer >= 1"),
      ("negative_weight_decay", lambda c: c.optim.discriminator.update({"weight_decay": -1.0}),
       r"optim\.discriminator\.weight_decay must be a number >= 0"),
      ("negative_lr_schedule", lambda c: setattr(c.optim, "generator", ml_collections.ConfigDict({
          "name": "adam", "learning_rate": {"name": "linear", "init_value": 1e-3,
                                            "end_value": -1e-3, "transition_steps": 8}})),
       r"optim\.generator\.learning_rate.*non-negative"),
      ("unknown_field_in_file", lambda c: c.game.update({"lamda1": 0.1}),
       r"config\.game\.lamda1: unknown field \(did you mean 'lambda1'"),
      ("seed", lambda c: setattr(c, "seed", -1), r"config\.seed must be an integer >= 0"),
      ("bad_schedule_argument", lambda c: setattr(c.game.perturbation.level, "K", 0),
       r"^config\.game\.perturbation\.level: .*K"),
      ("unknown_loss", lambda c: setattr(c.game, "loss", "nonsaturating"),
       r"^config\.game\.loss: unknown objective 'nonsaturating' \(did you mean "
       r"'non_saturating'\?\); valid: minimax"),
      ("nonfinite_seeds", lambda c: setattr(c.train, "nonfinite_seeds", "skip"),
       r"^config\.train\.nonfinite_seeds must be one of stop, freeze, got 'skip'"),
      ("batch_not_divisible", lambda c: c.train.update({"batch_size": 15, "num_devices": 2}),
       r"batch"),
  )
  def test_mistake_refused_before_workdir_exists(self, mutate, pattern):
    workdir = os.path.join(self.create_tempdir().full_path, "run")
    c = tiny_run_config()
    mutate(c)
    with self.assertRaisesRegex(errors.ConfigError, pattern):
      loop.train_and_evaluate(c, workdir)
    self.assertFalse(os.path.exists(workdir))

  @parameterized.named_parameters(
      ("loss", "game.loss", "minmax", r"unknown objective 'minmax' \(did you mean 'minimax'"),
      ("fgan", "game.loss", "fgan_jsd", r"unknown f-GAN divergence 'jsd'"),
      ("penalty", "game.penalty.name", "wgangp", r"unknown penalty 'wgangp' \(did you mean "
       r"'wgan_gp'\?\); valid: none, roth_js"),
      ("game", "game.name", "adversary", r"unknown game 'adversary'.*valid: adversarial, mdgan"),
  )
  def test_names_are_checked_before_the_data_are_read(self, field, value, pattern):
    # The image set is missing too: the misspelt name is what the user hears of.
    from configs import dcgan_mnist  # pylint: disable=g-import-not-at-top
    c = dcgan_mnist.get_config()
    c.data.source, c.data.npz_path = "npz", os.path.join(self.create_tempdir().full_path, "no")
    section, _, key = field.rpartition(".")
    node = c
    for part in section.split("."):
      node = node[part]
    node[key] = value
    with self.assertRaisesRegex(errors.ConfigError, r"^config\." + field.replace(".", r"\.")
                                + ": " + pattern):
      loop.train_and_evaluate(c, os.path.join(self.create_tempdir().full_path, "run"))

  def test_sampler_options_are_overridable_fields(self):
    # Every plain option of an optimizer is a field, so the command line can set it.
    for variant in ("sgld", "cc_sgld", "psgld"):
      spec = sgld_discriminator.get_config(variant).optim.discriminator
      self.assertIn("temperature", spec)
    adam = common.optimizer("adam", learning_rate=1e-3)
    self.assertEqual((adam.b1, adam.b2, adam.eps, adam.weight_decay, adam.clip),
                     (0.9, 0.999, 1e-8, 0.0, 0.0))
    with self.assertRaisesRegex(ValueError, "unknown optimizer 'adamm'.*adam"):
      common.optimizer("adamm", learning_rate=1.0)

  def test_saved_run_without_listed_defaults_is_the_same_run(self):
    # A run saved before every optimizer option was listed resumes.
    workdir = self.create_tempdir().full_path
    c = tiny_run_config(steps=4)
    loop.train_and_evaluate(c, workdir, stop_after=2)
    path = os.path.join(workdir, "config.json")
    saved = json.load(open(path))
    for key in ("b2", "eps", "eps_root", "nesterov", "clip", "weight_decay"):
      del saved["optim"]["generator"][key]
    workdir_lib.write_json(path, saved)
    self.assertEqual(int(loop.train_and_evaluate(c, workdir).state.step), 4)
    # A listed option at a value other than its default is another run.
    saved["optim"]["generator"]["b2"] = 0.9
    workdir_lib.write_json(path, saved)
    with self.assertRaisesRegex(errors.WorkdirConflictError, r"optim\.generator\.b2"):
      loop.train_and_evaluate(c, workdir)


class WorkdirTest(parameterized.TestCase):

  @parameterized.named_parameters(("empty", ""), ("broken", '{"seed": 0,'), ("list", "[1]"))
  def test_unreadable_config_json_names_its_path(self, content):
    workdir = self.create_tempdir()
    workdir.create_file("config.json", content=content)
    before = snapshot(workdir.full_path)
    with self.assertRaisesRegex(errors.WorkdirConflictError, r"config\.json"):
      loop.train_and_evaluate(tiny_run_config(), workdir.full_path)
    self.assertEqual(snapshot(workdir.full_path), before)

  def test_workdir_that_is_a_file(self):
    path = self.create_tempfile(content="notes").full_path
    with self.assertRaisesRegex(errors.WorkdirConflictError, "is a file, not a folder"):
      loop.train_and_evaluate(tiny_run_config(), path)
    self.assertEqual(open(path).read(), "notes")

  def test_locked_workdir_is_refused_and_untouched(self):
    workdir = self.create_tempdir().full_path
    c = tiny_run_config(steps=4)
    loop.train_and_evaluate(c, workdir, stop_after=2)
    before = snapshot(workdir)
    with workdir_lib.Lock(workdir):  # as a live run holds it
      with self.assertRaisesRegex(errors.WorkdirLockedError,
                                  rf"in use by another run \(pid {os.getpid()} on"):
        loop.train_and_evaluate(c, workdir)
    self.assertEqual(snapshot(workdir), before)
    self.assertEqual(int(loop.train_and_evaluate(c, workdir).state.step), 4)  # released

  def test_num_steps_below_the_step_reached(self):
    workdir = self.create_tempdir().full_path
    loop.train_and_evaluate(tiny_run_config(steps=8), workdir)
    before = snapshot(workdir)
    with self.assertRaisesRegex(errors.ConfigError,
                                r"at step 8, beyond config\.train\.num_steps=4"):
      loop.train_and_evaluate(tiny_run_config(steps=4), workdir)
    self.assertEqual(snapshot(workdir), before)
    # At exactly the step reached: nothing to train, the last evaluation is the summary.
    done = loop.train_and_evaluate(tiny_run_config(steps=8), workdir)
    last = json.loads(open(os.path.join(workdir, "eval.jsonl")).readlines()[-1])
    self.assertEqual(done.final_metrics["energy_distance"], last["energy_distance"])

  def test_history_records_creation(self):
    workdir = self.create_tempdir().full_path
    loop.train_and_evaluate(tiny_run_config(steps=4), workdir)
    events = [r["event"] for r in workdir_lib.read_history(workdir)]
    self.assertEqual(events, ["created"])
    self.assertFalse(os.path.exists(os.path.join(workdir, "figures")))  # train.figures=False


class ContinueAfterNanTest(parameterized.TestCase):

  def test_nan_before_first_checkpoint_says_nothing_is_kept(self):
    workdir = self.create_tempdir().full_path
    c = tiny_run_config(steps=8)
    c.train.checkpoint_every = 8
    c.optim.discriminator = exploding_lr(0)
    with self.assertRaisesRegex(loop.NonFiniteError,
                                r"before its first checkpoint \(due at step 8\).*--amend"):
      loop.train_and_evaluate(c, workdir)
    self.assertFalse(os.path.exists(os.path.join(workdir, "checkpoints", "2")))
    # Starting over in the same workdir with a sane learning rate is an amendment.
    c.optim.discriminator = common.optimizer("adam", learning_rate=1e-3, b1=0.5)
    self.assertEqual(int(loop.train_and_evaluate(c, workdir, amend=True).state.step), 8)

  def test_continue_from_last_good_checkpoint_with_new_learning_rate(self):
    workdir = self.create_tempdir().full_path
    c = tiny_run_config(steps=12)
    c.train.eval_every = c.train.plot_every = 12
    c.optim.discriminator = exploding_lr(4)
    with self.assertRaisesRegex(loop.NonFiniteError,
                                r"last good checkpoint \(step (4|6)\) is kept.*--amend"):
      loop.train_and_evaluate(c, workdir)
    good = workdir_lib.latest_checkpoint_step(workdir)
    _, kept, _ = loop.load_checkpoint(workdir)
    fixed = tiny_run_config(steps=12)
    fixed.train.eval_every = fixed.train.plot_every = 12
    fixed.optim.discriminator = common.optimizer("adam", learning_rate=1e-4, b1=0.5)
    # Without --amend the changed optimizer is another run, and the refusal says how.
    with self.assertRaisesRegex(errors.WorkdirConflictError, r"learning_rate.*add --amend"):
      loop.train_and_evaluate(fixed, workdir)
    # The amended run starts from the kept checkpoint's parameters ...
    start = loop.train_and_evaluate(fixed, workdir, amend=True, stop_after=good)
    self.assertEqual(int(start.state.step), good)
    for a, b in zip(jax.tree.leaves(kept.params), jax.tree.leaves(start.state.params)):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # ... and trains on to the end with the new learning rate, recorded.
    result = loop.train_and_evaluate(fixed, workdir)
    self.assertEqual(int(result.state.step), 12)
    self.assertEqual(json.load(open(os.path.join(workdir, "config.json")))
                     ["optim"]["discriminator"]["learning_rate"], 1e-4)
    history = workdir_lib.read_history(workdir)
    # Adam with a schedule keeps a step count Adam with a number does not.
    self.assertEqual([r["event"] for r in history][:3],
                     ["created", "amended", "optimizer_state_reset"])
    self.assertEqual(history[1]["step"], good)
    self.assertEqual(history[1]["changes"]["optim.discriminator.learning_rate"]["to"], 1e-4)
  def test_amend_keeps_optimizer_state_of_same_structure(self):
    workdir = self.create_tempdir().full_path
    c = tiny_run_config(steps=8)
    loop.train_and_evaluate(c, workdir, stop_after=4)
    _, before, _ = loop.load_checkpoint(workdir)
    c.optim.generator.learning_rate = 5e-4
    with self.assertRaisesRegex(errors.WorkdirConflictError, r"optim\.\* fields only"):
      other = tiny_run_config(steps=8)
      other.optim.generator.learning_rate = 5e-4
      other.game.loss = "non_saturating"
      loop.train_and_evaluate(other, workdir, amend=True)
    resumed = loop.train_and_evaluate(c, workdir, amend=True, stop_after=4)  # no new steps
    self.assertEqual(int(resumed.state.step), 4)
    for a, b in zip(jax.tree.leaves(before.opt_state), jax.tree.leaves(resumed.state.opt_state)):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    self.assertEqual([r["event"] for r in workdir_lib.read_history(workdir)],
                     ["created", "amended"])


class OfflineDataTest(parameterized.TestCase):

  def test_missing_tfds_set_offline_fails_fast_and_leaves_nothing(self):
    empty = self.create_tempdir().full_path
    saved = images._DOWNLOAD_HOST
    images._DOWNLOAD_HOST = ("127.0.0.1", 9)  # nothing listens: unreachable at once
    try:
      t0 = time.time()
      with self.assertRaisesRegex(images.DatasetUnavailableError,
                                  r"cannot be reached.*npz_path") as cm:
        images.load_arrays("cifar10", source="tfds", data_dir=empty, download=True)
      self.assertLess(time.time() - t0, 30)
    finally:
      images._DOWNLOAD_HOST = saved
    self.assertIsInstance(cm.exception, errors.UserError)
    self.assertEqual(os.listdir(empty), [])


class CommandLineTest(parameterized.TestCase):
  """The paragraph and the exit status, through the real command line."""

  @parameterized.named_parameters(
      ("unknown_field", ["--config.train.num_stepz=3"],
       r"unknown field 'num_stepz' in config\.train \(did you mean 'num_steps'"),
      ("negative_weight", ["--config.game.penalty.weight=-1"],
       r"game\.penalty\.weight: a penalty weight must be a non-negative"),
      ("missing_file", ["--config=configs/betagan_mixtur_3d.py"],
       r"config file 'configs/betagan_mixtur_3d\.py' not found \(did you mean "
       r"'betagan_mixture_3d\.py'"),
  )
  def test_mistake_is_one_paragraph_with_status_2(self, args, pattern):
    workdir = os.path.join(self.create_tempdir().full_path, "run")
    out = cli("--config=configs/betagan_mixture_3d.py", f"--workdir={workdir}", *QUICK, *args)
    self.assertEqual(out.returncode, 2, out.stderr)
    self.assertRegex(" ".join(out.stderr.split()), pattern)
    self.assertTrue(out.stderr.startswith("error: "), out.stderr)
    self.assertNotIn("Traceback", out.stderr)
    self.assertLess(len(out.stderr.splitlines()), 8, out.stderr)
    self.assertFalse(os.path.exists(workdir))

  def test_override_without_a_config_file_says_to_name_one(self):
    workdir = os.path.join(self.create_tempdir().full_path, "run")
    out = cli(f"--workdir={workdir}", "--config.game.loss=minimax")
    self.assertEqual(out.returncode, 2, out.stderr)
    self.assertRegex(" ".join(out.stderr.split()), r"^error: --config\.game\.loss overrides a "
                     r"field of a config file, but no --config was given; name the file first")
    self.assertNotIn("Traceback", out.stderr)

  def test_a_python_without_the_dependencies_is_told_how_to_fix_it(self):
    # A new shell without the environment activated: -S leaves out every
    # site-packages directory, so absl, jax, ... cannot be found.
    workdir = os.path.join(self.create_tempdir().full_path, "run")
    env = {k: v for k, v in ENV.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-S", "-m", "experiments.main",
                          "--config=configs/betagan_mixture_3d.py",
                          "--config.game.loss=minmax", f"--workdir={workdir}"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    self.assertEqual(out.returncode, 2, out.stderr)
    self.assertRegex(" ".join(out.stderr.split()),
                     r"^error: this Python \(.*\) cannot import gan_jax's dependencies "
                     r"\(missing: absl, jax, .*\), so the command was not run.*"
                     r"pip install -e '\.\[test\]'")
    self.assertNotIn("Traceback", out.stderr)
    self.assertLess(len(out.stderr.splitlines()), 8, out.stderr)
    self.assertFalse(os.path.exists(workdir))

  def test_debug_shows_the_traceback(self):
    workdir = os.path.join(self.create_tempdir().full_path, "run")
    out = cli("--config=configs/betagan_mixture_3d.py", f"--workdir={workdir}", *QUICK,
              "--config.train.keep_checkpoints=0", "--debug")
    self.assertNotEqual(out.returncode, 0)
    self.assertIn("Traceback", out.stderr)
    self.assertIn("ConfigError", out.stderr)

  def test_two_concurrent_runs_cannot_both_write(self):
    workdir = os.path.join(self.create_tempdir().full_path, "run")
    long_run = [a for a in QUICK if "num_steps" not in a] + ["--config.train.num_steps=200000"]
    cmd = [sys.executable, "-m", "experiments.main", "--config=configs/betagan_mixture_3d.py",
           f"--workdir={workdir}", *long_run]
    first = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
      lock = os.path.join(workdir, workdir_lib.LOCK_FILE)
      deadline = time.time() + 120
      while time.time() < deadline and not (
          os.path.exists(lock) and open(lock).read().startswith("pid")):
        time.sleep(0.2)
      self.assertIsNone(first.poll())
      second = cli("--config=configs/betagan_mixture_3d.py", f"--workdir={workdir}", *long_run)
      self.assertEqual(second.returncode, 2, second.stderr)
      self.assertRegex(" ".join(second.stderr.split()),
                       rf"in use by another run \(pid {first.pid} on")
    finally:
      first.send_signal(signal.SIGKILL)
      first.wait()
    # kill -9 released the lock with the process.
    with workdir_lib.Lock(workdir):
      pass
