r"""Runs one of the papers' probes on a trained run's checkpoint.

  python -m experiments.probe --probe=third_party --workdir=RUN --sigmas=0,0.1,0.5
  python -m experiments.probe --probe=cross_test --workdir=RUN_A --other_workdir=RUN_B
  python -m experiments.probe --probe=gradients --workdir=RUN --instance_noise=0.1,0.5

Probes (``gan_jax.metrics.probes``):

* ``third_party`` (Che et al. 2017): a fresh discriminator of the run's
  architecture, trained with input noise sigma on data against the run's
  samples, flags the held-out data the generator misses; counts per sigma and,
  on toy mixtures, per mode.
* ``cross_test`` (Roth et al. 2017): each run's discriminator classifies held-out
  data and both runs' samples; false-positive / false-negative table.
* ``gradients`` (Arjovsky & Bottou 2017): the run's generator frozen, a
  discriminator trained from scratch; generator-gradient norms of the minimax
  and non-saturating losses against its iterations, without noise and with
  each ``--instance_noise`` sigma.

Held-out data: a toy run draws fresh examples of its distribution (with a key
training never uses); an image run reads the test split of its data set, or,
without one, draws from the training set and says so in the record.

Each probe appends one JSON record (probe, checkpoint step, settings, results,
figure path) to ``<workdir>/probes.jsonl`` and writes a new figure into
``<workdir>/figures/``; nothing existing is overwritten.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any, Callable

from absl import app
from absl import flags
from absl import logging
import jax
import ml_collections
import numpy as np

from gan_jax import plotting
from gan_jax.data import make_source
from gan_jax.metrics import probes
from gan_jax.train import loop
from gan_jax.train import seeds as seeds_lib

FLAGS = flags.FLAGS
def define_flags() -> None:
  """The command line's flags (defined when run as a program, so that importing
  this module next to another absl program, such as the study runner, defines
  no flag twice)."""
  flags.DEFINE_string("probe", None, "third_party, cross_test or gradients.")
  flags.DEFINE_string("workdir", None, "The run to probe (results are written here).")
  flags.DEFINE_string("other_workdir", None, "cross_test: the second run.")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
  flags.DEFINE_bool("best", False, "Probe the best checkpoint instead.")
  flags.DEFINE_integer("seed", 0, "Seed of every random draw of the probe.")
  flags.DEFINE_integer("replica", 0, "A run of several seeds or a sweep: which replica to "
                       "probe (0 .. num_seeds x values - 1; replica r has run seed seed + r).")
  flags.DEFINE_integer("other_replica", 0, "cross_test: the replica of --other_workdir.")
  flags.DEFINE_enum("d_mode", "batch_statistics", list(D_MODES),
                    "cross_test: how the discriminators judge: 'batch_statistics' as in "
                    "training (batches of one kind, normalised by their own moments) or "
                    "'inference' (batch norm's running averages).")
  flags.DEFINE_integer("num_samples", 10_000,
                       "Generated samples, and as many training and held-out examples.")
  flags.DEFINE_integer("batch_size", 256, "Batch of the probes' discriminator training.")
  flags.DEFINE_float("d_learning_rate", 1e-3, "Adam step size of the probes' discriminators.")
  flags.DEFINE_list("sigmas", ["0", "0.1", "0.5"], "third_party: input-noise levels.")
  flags.DEFINE_integer("d_steps", 2000, "third_party: Adam steps of the third-party D.")
  flags.DEFINE_float("threshold", 0.9, "third_party: flag held-out examples with D above this.")
  flags.DEFINE_list("instance_noise", [], "gradients: noise levels besides sigma = 0.")
  flags.DEFINE_integer("iterations", 2000, "gradients: discriminator iterations.")
  flags.DEFINE_integer("every", 50, "gradients: iterations between records.")
  flags.DEFINE_integer("num_batches", 10, "gradients: batches per record (mean and std).")

# How a cross-test's discriminators judge (``probes.cross_test_modes``).
D_MODES = probes.D_MODES

# Folded into the probe seed so that no two of its random streams coincide, and
# none matches a training stream (those fold small step counts into the seed).
_TRAIN_TAG, _TEST_TAG, _SAMPLE_TAG, _PROBE_TAG = 1_000_001, 1_000_002, 1_000_003, 1_000_004


# ------------------------------------------------------------------ helpers
def _load(workdir: str, step, best: bool, replica: int = 0):
  with open(os.path.join(workdir, "config.json"), encoding="utf-8") as f:
    config = ml_collections.ConfigDict(json.load(f))
  try:  # (load_checkpoint checks the index before it restores anything)
    game, state, source = loop.load_checkpoint(workdir, config, step=step, best=best,
                                               seed_index=replica)
  except IndexError:
    count = len(seeds_lib.seed_list(config))
    raise ValueError(f"--replica={replica!r}: the run in {workdir} has {count} replica(s) "
                     f"(train.num_seeds x sweep values); valid: 0..{count - 1}") from None
  return game, state, source, config


def _draw(source, key, n: int) -> np.ndarray:
  draw = jax.jit(source.draw, static_argnums=2)
  chunks = []
  for i in range(0, n, 1000):
    out = draw(jax.random.fold_in(key, i), source.arrays, min(1000, n - i))
    chunks.append(np.asarray(out[0] if source.has_labels else out))
  return np.concatenate(chunks)


def _held_out(source, config, key, n: int) -> tuple[np.ndarray, str]:
  """Held-out examples and where they came from."""
  if hasattr(source.info, "sample"):  # a toy distribution: fresh draws are held out
    return _draw(source, key, n), "fresh draws"
  try:
    test_source = make_source({**config.data.to_dict(), "split": "test"})
  except Exception as e:  # pylint: disable=broad-except
    logging.warning("no test split (%s); held-out examples are drawn from the training set", e)
    return _draw(source, key, n), "training set (no test split)"
  return _draw(test_source, key, n), "test split"


def _samples(game, state, key, n: int) -> np.ndarray:
  sample = jax.jit(game.sample, static_argnums=2)
  return np.concatenate([np.asarray(sample(state, jax.random.fold_in(key, i),
                                           min(1000, n - i))) for i in range(0, n, 1000)])


def _figure_path(workdir: str, probe: str, step: int) -> str:
  """A figure file name no earlier probe used, reserved at once (O_EXCL)."""
  folder = os.path.join(workdir, "figures")
  os.makedirs(folder, exist_ok=True)
  for k in range(1, 100_000):
    suffix = "" if k == 1 else f"_{k}"
    path = os.path.join(folder, f"probe_{probe}_step{step}{suffix}.png")
    try:
      os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
      return path
    except FileExistsError:
      continue
  raise RuntimeError(f"no free figure name for probe {probe!r} in {folder}")


def _jsonable(value: Any) -> Any:
  """Arrays to lists, NaN/inf to None (JSON has neither)."""
  if isinstance(value, dict):
    return {k: _jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_jsonable(v) for v in value]
  if isinstance(value, (np.ndarray, jax.Array)):
    return _jsonable(np.asarray(value).tolist())
  if isinstance(value, (np.integer,)):
    return int(value)
  if isinstance(value, (float, np.floating)):
    return float(value) if math.isfinite(value) else None
  return value


def _finish(workdir: str, probe: str, step: int, settings: dict, results: Any, fig,
            t0: float) -> dict[str, Any]:
  path = _figure_path(workdir, probe, step)
  plotting.save_figure(fig, path)
  record = _jsonable({"probe": probe, "step": step, "settings": settings, "results": results,
                      "figure": os.path.abspath(path), "seconds": round(time.time() - t0, 2),
                      "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
  with open(os.path.join(workdir, "probes.jsonl"), "a", encoding="utf-8") as f:
    f.write(json.dumps(record) + "\n")
  return record


def _floats(name: str, values) -> list[float]:
  out = []
  for v in values:
    try:
      out.append(float(v))
    except (TypeError, ValueError):
      raise ValueError(f"--{name} must be a comma-separated list of numbers; got {v!r}") from None
  return out


def chunking(config) -> dict[str, Any]:
  """A probe's discriminator steps fused as the run fuses its own training steps
  (``train.steps_per_call`` / ``train.unroll``): what is fast for the run's
  architecture on its platform is fast for a fresh copy of its discriminator."""
  return {"steps_per_call": int(config.train.steps_per_call),
          "unroll": config.train.get("unroll", 1)}


# ------------------------------------------------------------------- probes
def run_third_party(workdir: str, *, step=None, best=False, seed=0, num_samples=10_000,
                    sigmas=(0.0, 0.1, 0.5), d_steps=2000, batch_size=256,
                    d_learning_rate=1e-3, threshold=0.9, replica=0, **unused
                    ) -> dict[str, Any]:
  """Che et al.'s third-party discriminator on a run (on ``replica`` of a run of
  several seeds); returns the record written."""
  del unused
  t0 = time.time()
  game, state, source, config = _load(workdir, step, best, replica)
  if getattr(game, "conditional", False):
    raise ValueError("the third-party probe needs an unconditional discriminator")
  key = jax.random.key(seed)
  real = _draw(source, jax.random.fold_in(key, _TRAIN_TAG), num_samples)
  test, test_from = _held_out(source, config, jax.random.fold_in(key, _TEST_TAG), num_samples)
  fake = _samples(game, state, jax.random.fold_in(key, _SAMPLE_TAG), num_samples)
  centers = getattr(source.info, "centers", None)
  sigmas = [float(s) for s in sigmas]
  rows = probes.third_party_report(
      jax.random.fold_in(key, _PROBE_TAG), real, fake, test, module=game.discriminator,
      sigmas=sigmas, centers=centers, steps=d_steps, batch_size=batch_size,
      learning_rate=d_learning_rate, threshold=threshold, **chunking(config))
  step_done = int(jax.device_get(state.step))
  fig = plotting.third_party_figure(
      sigmas, [r["count"] for r in rows], n_test=num_samples,
      mode_counts=None if centers is None else [r["flagged_counts"] for r in rows],
      test_counts=None if centers is None else rows[0]["test_counts"],
      title=f"{os.path.basename(os.path.abspath(workdir))}, step {step_done}")
  settings = {"sigmas": sigmas, "num_samples": num_samples, "d_steps": d_steps,
              "batch_size": batch_size, "d_learning_rate": d_learning_rate,
              "threshold": threshold, "seed": seed, "best": best, "held_out": test_from,
              **seeds_lib.replica_info(config, replica)}
  return _finish(workdir, "third_party", step_done, settings, rows, fig, t0)


def run_cross_test(workdir: str, *, other_workdir=None, step=None, best=False, seed=0,
                   num_samples=10_000, replica=0, other_replica=0,
                   d_mode="batch_statistics", **unused) -> dict[str, Any]:
  """Roth et al.'s cross-test of two runs (of a replica of each); the record goes
  to ``workdir``. ``d_mode``: one of ``D_MODES``."""
  del unused
  if not other_workdir:
    raise ValueError("--probe=cross_test needs --other_workdir (the second run)")
  if d_mode not in D_MODES:
    raise ValueError(f"--d_mode={d_mode!r}: unknown; valid: {', '.join(D_MODES)}")
  t0 = time.time()
  game_a, state_a, source, config = _load(workdir, step, best, replica)
  # The other run's latest (or best) checkpoint: its step numbers are its own.
  game_b, state_b, source_b, config_b = _load(other_workdir, None, best, other_replica)
  if tuple(source.shape) != tuple(source_b.shape) or source.name != source_b.name:
    raise ValueError(f"the runs were trained on different data ({source.name} "
                     f"{source.shape} vs {source_b.name} {source_b.shape})")
  key = jax.random.key(seed)
  test, test_from = _held_out(source, config, jax.random.fold_in(key, _TEST_TAG), num_samples)
  table = probes.cross_test_modes(jax.random.fold_in(key, _SAMPLE_TAG),
                                  [(game_a, state_a), (game_b, state_b)], test,
                                  modes=(d_mode,), num_samples=num_samples)[d_mode]
  names = [os.path.basename(os.path.abspath(w)) or w for w in (workdir, other_workdir)]
  labels = [f"A ({names[0]})", f"B ({names[1]})"]
  steps = [int(jax.device_get(s.step)) for s in (state_a, state_b)]
  fig = plotting.cross_test_figure(table["fp"], table["fn"], labels=labels,
                                   title=f"cross-test, steps {steps[0]} / {steps[1]}")
  settings = {"other_workdir": os.path.abspath(other_workdir), "other_step": steps[1],
              "num_samples": num_samples, "seed": seed, "best": best, "held_out": test_from,
              "rows": "discriminator of run A, B", "columns": "samples of run A, B",
              "d_mode": d_mode,
              **seeds_lib.replica_info(config, replica),
              "other": seeds_lib.replica_info(config_b, other_replica)}
  return _finish(workdir, "cross_test", steps[0], settings, {**table, "labels": labels}, fig,
                 t0)


def run_gradients(workdir: str, *, step=None, best=False, seed=0, instance_noise=(),
                  iterations=2000, every=50, num_batches=10, batch_size=256,
                  d_learning_rate=1e-3, replica=0, **unused) -> dict[str, Any]:
  """Arjovsky & Bottou's gradient diagnostics of a run's generator (of ``replica``)."""
  del unused
  t0 = time.time()
  game, state, _, config = _load(workdir, step, best, replica)
  sigmas = list(dict.fromkeys([0.0] + [float(s) for s in instance_noise]))
  key = jax.random.fold_in(jax.random.key(seed), _PROBE_TAG)
  by_sigma = jax.device_get(probes.generator_gradient_diagnostics(
      key, game, state, sigmas=sigmas, iterations=iterations, every=every,
      num_batches=num_batches, batch_size=batch_size, learning_rate=d_learning_rate,
      **chunking(config)))
  curves = {f"sigma={s:g}": {"sigma": s, **by_sigma[s]._asdict()} for s in sigmas}
  step_done = int(jax.device_get(state.step))
  fig = plotting.gradient_norms_figure(
      curves, title=f"{os.path.basename(os.path.abspath(workdir))}, generator at step "
                    f"{step_done}")
  settings = {"instance_noise": sigmas, "iterations": iterations, "every": every,
              "num_batches": num_batches, "batch_size": batch_size,
              "d_learning_rate": d_learning_rate, "seed": seed, "best": best,
              **seeds_lib.replica_info(config, replica)}
  return _finish(workdir, "gradients", step_done, settings, list(curves.values()), fig, t0)


PROBES: dict[str, Callable[..., dict[str, Any]]] = {
    "third_party": run_third_party,
    "cross_test": run_cross_test,
    "gradients": run_gradients,
}


def run(probe: str, workdir: str, **settings) -> dict[str, Any]:
  """Runs the probe named ``probe`` on ``workdir``; returns the record appended.

  Raises:
    ValueError: unknown probe name (the message lists the valid ones) or bad
      settings.
  """
  if probe not in PROBES:
    raise ValueError(f"unknown probe {probe!r}; valid: {', '.join(PROBES)}")
  if not os.path.exists(os.path.join(workdir, "config.json")):
    raise ValueError(f"{workdir!r} holds no gan_jax run (no config.json)")
  return PROBES[probe](workdir, **settings)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not FLAGS.probe or not FLAGS.workdir:
    raise app.UsageError(f"--probe and --workdir are required; probes: {', '.join(PROBES)}")
  logging.set_verbosity(logging.WARNING)
  try:
    record = run(FLAGS.probe, FLAGS.workdir, other_workdir=FLAGS.other_workdir,
                 step=FLAGS.step, best=FLAGS.best, seed=FLAGS.seed,
                 num_samples=FLAGS.num_samples, batch_size=FLAGS.batch_size,
                 d_learning_rate=FLAGS.d_learning_rate,
                 sigmas=_floats("sigmas", FLAGS.sigmas), d_steps=FLAGS.d_steps,
                 threshold=FLAGS.threshold,
                 instance_noise=_floats("instance_noise", FLAGS.instance_noise),
                 iterations=FLAGS.iterations, every=FLAGS.every,
                 num_batches=FLAGS.num_batches, replica=FLAGS.replica,
                 other_replica=FLAGS.other_replica, d_mode=FLAGS.d_mode)
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  print(_summary(record))
  print(f"appended to {os.path.join(FLAGS.workdir, 'probes.jsonl')}; figure {record['figure']}",
        file=sys.stderr)


def _summary(record: dict[str, Any]) -> str:
  """A few readable lines of a probe record."""
  lines = [f"{record['probe']} at step {record['step']}:"]
  results = record["results"]
  if record["probe"] == "third_party":
    for r in results:
      modes = f", per mode {r['flagged_counts']}" if "flagged_counts" in r else ""
      lines.append(f"  sigma={r['sigma']:g}: {r['count']} of {r['n_test']} held-out examples "
                   f"flagged ({100 * r['share']:.2f}%){modes}")
  elif record["probe"] == "cross_test":
    a, b = results["labels"]
    lines.append(f"  FP (rows: D of A, B; columns: samples of A, B): {results['fp']}")
    lines.append(f"  FN on held-out data (D of A, B): {results['fn']}")
    lines.append(f"  A = {a}, B = {b}")
  else:
    for c in results:
      mm, ns = c["minimax_mean"], c["non_saturating_mean"]
      lines.append(f"  sigma={c['sigma']:g}: |grad| minimax {mm[0]:.3g} -> {mm[-1]:.3g}, "
                   f"-log D {ns[0]:.3g} -> {ns[-1]:.3g} over {c['iterations'][-1]} D iterations")
  return "\n".join(lines)


if __name__ == "__main__":
  define_flags()
  app.run(main)
