"""Two processes, one run: jax.distributed over gloo CPU collectives.

Each process is the command line (``experiments.main``) with 2 CPU devices;
the global mesh has 4. The single-process runs it is compared with are the
same command with 4 devices in one process, so both build the same global
program on the same global batch. Equal up to the order of the cross-device
sums (gloo between processes, in-process otherwise): parameters agree to
``rtol=1e-5, atol=1e-6`` after a few steps of Adam.
"""

import json
import os
import shutil
import socket
import subprocess
import sys

from absl.testing import absltest
import jax
import numpy as np

from gan_jax.train import loop
from tests.test_image_games import write_npz

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOY = ["--config=configs/wgan_2d.py:gp", "--config.model.generator.widths=(16,16)",
       "--config.model.discriminator.widths=(16,16)", "--config.train.batch_size=16",
       "--config.train.steps_per_call=1", "--config.train.eval_samples=64",
       "--config.train.progress=false", "--config.train.figures=false"]
EVENTS = ["log_every", "eval_every", "checkpoint_every", "plot_every"]
TOL = {"rtol": 1e-5, "atol": 1e-6}


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _env(devices: int) -> dict:
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices} "
             "--xla_backend_optimization_level=0")
  env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
  return env


def _args(base, workdir, steps):
  return ([sys.executable, "-m", "experiments.main", f"--workdir={workdir}"] + base
          + [f"--config.train.num_steps={steps}"] + [f"--config.train.{e}=1" for e in EVENTS])


def run_single(base, workdir, steps):
  """One process with the 4 devices of the two-process runs."""
  out = subprocess.run(_args(base, workdir, steps), cwd=REPO, env=_env(4),
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]


def run_two(base, workdir, steps):
  """Processes 0 and 1, 2 devices each, one coordinator on a free local port."""
  address = f"localhost:{_free_port()}"
  procs = [subprocess.Popen(_args(base, workdir, steps) + [
      f"--coordinator_address={address}", "--num_processes=2", f"--process_id={i}"],
                            cwd=REPO, env=_env(2), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for i in range(2)]
  results = []
  for p in procs:
    try:
      results.append(p.communicate(timeout=600))
    except subprocess.TimeoutExpired:
      for q in procs:
        q.kill()
      raise
  for i, (p, (_, err)) in enumerate(zip(procs, results)):
    assert p.returncode == 0, f"process {i}:\n{err[-3000:]}"
  return [out for out, _ in results]


def params_at(workdir, step):
  _, state, _ = loop.load_checkpoint(workdir, step=step)
  return jax.tree.map(np.asarray, (state.params, state.opt_state, state.rng))


def assert_close(a, b, **tol):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), **tol)


def records(workdir, name):
  with open(os.path.join(workdir, name), encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


class TwoProcessTest(absltest.TestCase):

  def test_toy_game_equals_one_process_and_checkpoints_cross_over(self):
    tmp = self.create_tempdir().full_path
    one, ref, two = (os.path.join(tmp, n) for n in ("one", "ref", "two"))
    # One process to step 2; a copy of it goes on alone to step 4 (the reference).
    run_single(TOY, one, 2)
    shutil.copytree(one, ref)
    run_single(TOY, ref, 4)
    # Two processes from scratch to step 2: the single process's step 2.
    outs = run_two(TOY, two, 2)
    assert_close(params_at(two, 2), params_at(ref, 2), **TOL)
    # Only process 0 writes the run's files and says it finished.
    self.assertIn("finished", outs[0])
    self.assertNotIn("finished", outs[1])
    self.assertEqual([r["step"] for r in records(two, "metrics.jsonl")], [1, 2])
    with open(os.path.join(two, "history.jsonl"), encoding="utf-8") as f:
      self.assertLen(f.readlines(), 1)
    # A checkpoint of two processes resumes in one, and the other way round.
    run_single(TOY, two, 4)
    assert_close(params_at(two, 4), params_at(ref, 4), **TOL)
    run_two(TOY, one, 4)
    assert_close(params_at(one, 4), params_at(ref, 4), **TOL)
    self.assertEqual([r["step"] for r in records(one, "eval.jsonl")], [1, 2, 3, 4])

  def _image_game(self, tmp, *extra, cross_over=False):
    npz = write_npz(os.path.join(tmp, "digits.npz"), (28, 28))
    image = ["--config=configs/dcgan_mnist.py", f"--config.data.npz_path={npz}",
             "--config.model.generator.base_features=8",
             "--config.model.discriminator.base_features=8", "--config.train.batch_size=8",
             "--config.train.steps_per_call=1", "--config.train.eval_samples=16",
             "--config.train.progress=false", "--config.train.figures=false", *extra]
    one, two = os.path.join(tmp, "one"), os.path.join(tmp, "two")
    run_single(image, one, 2)
    run_two(image, two, 2)
    assert_close(params_at(two, 2), params_at(one, 2), **TOL)
    if cross_over:
      # The two processes' checkpoint goes on in one process, reading the
      # buffers of calls 2 and 3 as the single run does.
      run_single(image, one, 4)
      run_single(image, two, 4)
      assert_close(params_at(two, 4), params_at(one, 4), **TOL)

  def test_image_game_equals_one_process(self):
    self._image_game(self.create_tempdir().full_path)

  def test_streamed_image_game_equals_one_process(self):
    # Each process reads half of every 16-example buffer, refilled for each of
    # the two calls; joined on the devices they are the single process's buffer.
    # Then the two processes' checkpoint resumes in one.
    self._image_game(self.create_tempdir().full_path, "--config.data.stream_buffer=16",
                     "--config.data.stream_seed=3", cross_over=True)


if __name__ == "__main__":
  absltest.main()
