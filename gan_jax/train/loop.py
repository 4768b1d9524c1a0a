"""The training loop: checkpoints, metrics, progress, figures, safety.

``train_and_evaluate(config, workdir)`` is the one function the command line,
notebooks and tests call. It reads in sections:

1. validate the whole config (``validate.validate_config``), then check, lock
   and claim the workdir (``workdir``: a workdir holding another run, or one a
   live run holds, is refused, never overwritten);
2. build data, game and device mesh; initialise or restore the state;
3. run compiled chunks of ``train.steps_per_call`` iterations; after each chunk
   check every metric is finite (else stop, naming step and quantity, keeping
   the last good checkpoint; with several seeds and
   ``train.nonfinite_seeds='freeze'``, only the failing seed stops, frozen at
   its last finite state), log, evaluate, checkpoint and plot on schedule;
4. save the final checkpoint, metrics and figures.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import math
import operator
import os
import platform
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from gan_jax import games
from gan_jax.data import make_source
from gan_jax.errors import ConfigError, WorkdirConflictError, WorkdirLockedError  # pylint: disable=unused-import
from gan_jax.errors import WorkdirError
from gan_jax.train import board as board_lib
from gan_jax.train import distributed
from gan_jax.train import seeds as seeds_lib
from gan_jax.train import step as step_lib
from gan_jax.train import validate
from gan_jax.train import workdir as workdir_lib
from gan_jax.games.state import TrainState, all_finite
from gan_jax.train.workdir import RESUMABLE_FIELDS  # pylint: disable=unused-import

# Metrics that may legitimately be infinite (beta = inf is the data stage).
INFINITE_ALLOWED = ("level",)
_EVENT_FIELDS = validate.EVENT_FIELDS


class NonFiniteError(FloatingPointError):
  """Training produced NaN or inf; the message names the step and quantity."""


# ------------------------------------------------------------------ config
def config_to_dict(config) -> dict[str, Any]:
  if isinstance(config, ml_collections.ConfigDict):
    config = config.to_dict()
  return json.loads(json.dumps(config, default=_json_default))


def _json_default(value):
  if isinstance(value, (np.integer,)):
    return int(value)
  if isinstance(value, (np.floating,)):
    return float(value)
  if isinstance(value, (tuple, set)):
    return list(value)
  raise TypeError(f"config value {value!r} of type {type(value).__name__} is not "
                  "JSON-serialisable")


def validate_train_config(config) -> None:
  """Checks ``config.train`` before anything is built, naming the bad field."""
  validate.check_train(config)


# ------------------------------------------------------------- checkpoints
def _is_key(x) -> bool:
  return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _to_savable(tree):
  """Typed PRNG keys (e.g. in a sampler's state) are saved as their raw data."""
  return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


def _from_savable(restored, like):
  return jax.tree.map(
      lambda r, l: jax.random.wrap_key_data(r, impl=jax.random.key_impl(l)) if _is_key(l) else r,
      restored, like)


class Checkpoints:
  """The last ``keep`` checkpoints plus the best one by an evaluation metric."""

  def __init__(self, workdir: str, *, keep: int, best_metric: str | None, best_mode: str):
    self.best_metric = best_metric
    self.latest = ocp.CheckpointManager(
        os.path.join(os.path.abspath(workdir), "checkpoints"),
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                             enable_async_checkpointing=False))
    self.best = None
    if best_metric:
      self.best = ocp.CheckpointManager(
          os.path.join(os.path.abspath(workdir), "best"),
          options=ocp.CheckpointManagerOptions(
              max_to_keep=1, best_fn=lambda m: m[best_metric], best_mode=best_mode,
              keep_checkpoints_without_metrics=False, create=True,
              enable_async_checkpointing=False))

  def save(self, step: int, state: TrainState, eval_metrics: dict | None = None) -> None:
    if step not in self.latest.all_steps():
      self.latest.save(step, args=ocp.args.StandardSave(_to_savable(state)))
    if (self.best is not None and eval_metrics and self.best_metric in eval_metrics
        and math.isfinite(eval_metrics[self.best_metric])
        and step not in self.best.all_steps()):
      self.best.save(step, args=ocp.args.StandardSave(_to_savable(state)),
                     metrics={self.best_metric: float(eval_metrics[self.best_metric])})

  def restore_latest(self, like: TrainState, mesh) -> TrainState | None:
    step = self.latest.latest_step()
    if step is None:
      return None
    return restore(self.latest, step, like, mesh)

  def close(self):
    self.latest.close()
    if self.best is not None:
      self.best.close()


def restore(manager: ocp.CheckpointManager, step: int, like: TrainState, mesh) -> TrainState:
  """Restores ``step`` into the structure and placement of ``like`` (a state on
  ``mesh``: replicated, or split over seeds)."""
  rep = step_lib.replicated(mesh)
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(
      x.shape, x.dtype, sharding=getattr(x, "sharding", rep)), _to_savable(like))
  restored = manager.restore(step, args=ocp.args.StandardRestore(abstract))
  return _from_savable(restored, like)


def initial_state(game, config, mesh):
  """The game's initial state for a config: stacked over seeds when
  ``train.num_seeds > 1`` (``seeds.init_states``), else one replica."""
  seeds = seeds_lib.seed_list(config)
  if len(seeds) > 1:
    return seeds_lib.init_states(game, seeds, step_lib.seed_sharding(mesh),
                                 seeds_lib.seed_batching(config),
                                 sweep=seeds_lib.step_sweep(config))
  return step_lib.init_state(game, seeds[0], mesh)


def state_step(state) -> int:
  """The iteration count of a state (the run's, when stacked: the largest, since
  a seed frozen by ``train.nonfinite_seeds='freeze'`` keeps its own count)."""
  return int(np.max(np.asarray(distributed.fetch(state.step))))


def load_checkpoint(workdir: str, config=None, *, step: int | None = None, best: bool = False,
                    seed_index: int | None = 0):
  """Loads a run's game and state from its workdir, for standalone metrics.

  Args:
    workdir: the run's workdir.
    config: the run's config; read from ``workdir/config.json`` if omitted.
    step: which checkpoint (default: the latest, or the best with ``best``).
    best: load from the best-checkpoint folder.
    seed_index: for a run of several seeds (``train.num_seeds``), which
      replica's state to return (default the first, ``config.seed``; in a
      sweep, the first seed of the first value, and the run says so); ``None``
      returns the stacked state of all.

  Returns:
    ``(game, state, source)``. Of one replica of a sweep, the game is that
    replica's: it reads the replica's value of the swept field wherever it is
    called. (The stacked state of a sweep comes with the sweep's game, whose
    swept field is read per replica inside ``schedules.replica_values``.)

  Raises:
    IndexError: ``seed_index`` is not one of the run's replicas.
  """
  if config is None:
    config = ml_collections.ConfigDict(workdir_lib.read_config(workdir))
  replicas = seeds_lib.seed_list(config)
  if seed_index is not None:  # checked before anything is restored
    try:  # an int or a NumPy integer, not a bool
      index = None if isinstance(seed_index, bool) else operator.index(seed_index)
    except TypeError:
      index = None
    if index is None or not 0 <= index < len(replicas):
      raise IndexError(f"seed_index={seed_index!r}: the run in {workdir} has {len(replicas)} "
                       f"replica(s), indices 0..{len(replicas) - 1} (run seeds "
                       f"{replicas[0]}..{replicas[-1]})")
    seed_index = index
  source = make_source(config.data)
  game = games.make_game(config, source)
  mesh = step_lib.make_mesh(1)
  like = initial_state(game, config, mesh)
  folder = os.path.join(os.path.abspath(workdir), "best" if best else "checkpoints")
  manager = ocp.CheckpointManager(folder, options=ocp.CheckpointManagerOptions(read_only=True))
  try:
    step = manager.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {folder}")
    state = restore_run_state(manager, step, like, mesh, workdir, config_to_dict(config), source)
  finally:
    manager.close()
  if seed_index is not None and len(replicas) > 1:
    state = seeds_lib.take(state, seed_index)
    values = seeds_lib.replica_sweep_values(config)
    if values:  # say which condition the caller gets; its game reads that value
      game = games.make_game(config, source, replica_value=values[seed_index])
      print(f"{workdir}: replica {seed_index} of a sweep (seed {replicas[seed_index]}, "
            f"{games.sweep_field(config)}={seeds_lib.value_label(values[seed_index])})",
            file=sys.stderr, flush=True)
  return game, state, source


# ----------------------------------------------------------------- metrics
def _finite_or_none(v: float):
  return v if math.isfinite(v) else None


class MetricLog:
  """Append-only JSON-lines file; on resume, records past the checkpoint are dropped."""

  def __init__(self, path: str, resume_step: int, board=None, prefix: str = ""):
    self.path = path
    self.board, self.prefix = board, prefix  # TensorBoard scalars too (board.py)
    if distributed.is_primary() and os.path.exists(path):
      with open(path, encoding="utf-8") as f:
        kept = [line for line in f if line.strip() and json.loads(line)["step"] <= resume_step]
      tmp = path + ".tmp"
      with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(kept)
      os.replace(tmp, path)

  def write(self, record: dict[str, Any]) -> None:
    if not distributed.is_primary():
      return  # one writer: process 0
    clean = {k: (_finite_or_none(float(v)) if isinstance(v, (float, int, np.number)) and
                 not isinstance(v, bool) else v) for k, v in record.items()}
    with open(self.path, "a", encoding="utf-8") as f:
      f.write(json.dumps(clean) + "\n")
    if self.board is not None:
      self.board.write(self.prefix, record)

  def read(self) -> list[dict[str, Any]]:
    if not os.path.exists(self.path):
      return []
    with open(self.path, encoding="utf-8") as f:
      return [json.loads(line) for line in f if line.strip()]


def check_finite_seeds(metrics: dict[str, np.ndarray], first_step: int, seeds,
                       params_finite: bool = True, steps: int | None = None) -> None:
  """``check_finite`` for metrics with a trailing seed axis; names the seed."""
  if len(seeds) == 1:
    return check_finite(metrics, first_step, params_finite, steps)
  failing = failing_seeds(metrics, first_step, seeds, steps)
  if failing:
    raise NonFiniteError(failing[min(failing)])
  check_finite({}, first_step, params_finite, steps)


def failing_seeds(metrics: dict[str, np.ndarray], first_step: int, seeds,
                  steps: int | None = None) -> dict[int, str]:
  """Index -> message of every seed whose metrics in a call are not finite."""
  out = {}
  for i, seed in enumerate(seeds):
    try:
      check_finite({k: np.asarray(v)[..., i] for k, v in metrics.items()}, first_step, True,
                   steps)
    except NonFiniteError as e:
      out[i] = f"seed {seed}: {e}"
  return out


def frozen_seeds(state, step: int) -> list[int]:
  """Indices of the seeds a stacked state holds frozen at the run's ``step``.

  ``seeds.freeze_nonfinite`` keeps a failing seed's whole state, its iteration
  count included, so a seed is frozen exactly when its count is behind the
  run's: the state says so (the same on every process, and on a resume).
  """
  counts = np.asarray(distributed.fetch(state.step)).reshape(-1)
  return [i for i, c in enumerate(counts) if c < step]


def _mask_seeds(values: dict[str, np.ndarray], frozen) -> dict[str, np.ndarray]:
  """Per-seed values (trailing seed axis) with the frozen seeds' set to NaN."""
  if not frozen:
    return values
  out = {}
  for k, v in values.items():
    v = np.array(v, np.float64)
    v[..., sorted(frozen)] = np.nan
    out[k] = v
  return out


def check_finite(metrics: dict[str, np.ndarray], first_step: int,
                 params_finite: bool = True, steps: int | None = None) -> None:
  """Raises ``NonFiniteError`` naming the first step and quantity that is not finite.

  Args:
    metrics: a compiled call's metrics: each an array over the call's last
      ``len`` steps (the essentials cover every step, the diagnostics the last).
    first_step: the step count before the call.
    params_finite: whether the parameters after the call are all finite (checked
      once per call rather than every step: it is a pass over every parameter).
    steps: steps in the call (default: the longest metric's length).
  """
  bad = []
  n = steps or max((np.size(v) for v in metrics.values()), default=1)
  for name, values in metrics.items():
    values = np.atleast_1d(np.asarray(values))
    ok = ~np.isnan(values) if name in INFINITE_ALLOWED else np.isfinite(values)
    if not ok.all():
      bad.append((n - len(values) + int(np.argmin(ok)), name))
  advice = "."  # the loop, which knows the checkpoints, says what is kept
  if bad:
    index, name = min(bad)
    others = sorted({n for _, n in bad} - {name})
    raise NonFiniteError(
        f"non-finite value: {name!r} became NaN or inf at step {first_step + index + 1}"
        + (f" (also: {', '.join(others)})" if others else "") + advice)
  if not params_finite:
    raise NonFiniteError(f"non-finite value: the parameters became NaN or inf during steps "
                         f"{first_step + 1}-{first_step + n}" + advice)


def _fmt_time(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
  """A progress line with rate and ETA: a live bar on terminals, log lines otherwise."""

  def __init__(self, total: int, start: int, enabled: bool = True):
    self.total, self.start = total, start
    self.t0 = time.time()
    enabled = enabled and distributed.is_primary()
    self.live = enabled and sys.stderr.isatty()
    self.enabled = enabled

  def rate(self, step: int) -> float:
    return (step - self.start) / max(time.time() - self.t0, 1e-9)

  def update(self, step: int, summary: dict[str, float], *, log: bool) -> None:
    if not self.enabled:
      return
    rate = self.rate(step)
    eta = (self.total - step) / rate if rate > 0 else float("inf")
    frac = step / self.total
    bar = "#" * int(24 * frac) + "-" * (24 - int(24 * frac))
    parts = " ".join(f"{k}={v:.3g}" for k, v in summary.items())
    line = (f"[{bar}] {step}/{self.total} {100 * frac:5.1f}% {rate:7.0f} it/s "
            f"ETA {_fmt_time(eta) if math.isfinite(eta) else '?'} {parts}")
    if self.live:
      sys.stderr.write("\r" + line[:200])
      sys.stderr.flush()
      if step >= self.total:
        sys.stderr.write("\n")
    elif log:
      print(line, file=sys.stderr, flush=True)


# ------------------------------------------------------------------- train
@dataclasses.dataclass
class RunResult:
  """What a run leaves besides its workdir."""
  state: TrainState
  game: Any
  source: Any
  final_metrics: dict[str, float]
  steps_per_second: float
  # Wall time per part of the run (see _Clock); empty when nothing was trained.
  timings: dict[str, float] = dataclasses.field(default_factory=dict)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       stop_after: int | None = None, amend: bool = False) -> RunResult:
  """Trains the game a config describes, writing everything into ``workdir``.

  Args:
    config: the experiment config (see ``configs/``).
    workdir: output folder: ``config.json``, ``history.jsonl``,
      ``metrics.jsonl`` (training metrics), ``eval.jsonl`` (sample metrics),
      ``checkpoints/``, ``best/``, ``samples/`` and ``figures/``. An existing
      workdir of the same run is resumed; one of another run is refused, and
      so is one that another live run holds.
    stop_after: stop once this many iterations are done, as a preempted job
      would (the workdir can be resumed).
    amend: resume even though optimizer settings (``optim.*``) differ from
      the saved config, e.g. to go on from the last good checkpoint after a
      NaN with a lower learning rate; the change is recorded in
      ``history.jsonl``. The optimizer state is carried over when its
      structure is unchanged, and started afresh otherwise (recorded too).

  Returns:
    A ``RunResult``.

  Raises:
    ConfigError: a config field is unknown or out of range (nothing written).
    WorkdirConflictError, WorkdirLockedError: the workdir cannot be used
      (nothing written).
    NonFiniteError: training produced NaN or inf (the last good checkpoint is
      kept).
  """
  from gan_jax.train import evaluate  # pylint: disable=g-import-not-at-top

  # Validate everything (and build data and game) before touching the disk.
  validated = validate.validate_config(config, metric_names=evaluate.metric_names)
  config_dict = config_to_dict(config)
  t = config.train
  if stop_after is not None and (stop_after < 1 or stop_after % t.steps_per_call):
    raise ValueError(f"stop_after ({stop_after}) must be a positive multiple of "
                     f"config.train.steps_per_call ({t.steps_per_call})")
  source = validated.source
  try:
    return _train(config, config_dict, workdir, validated.game, source, stop_after, amend)
  finally:
    if source.refill is not None and hasattr(source.refill, "close"):
      source.refill.close()  # stop a streaming source's reader threads


def restore_run_state(manager: ocp.CheckpointManager, step: int, like: TrainState, mesh,
                      workdir: str, config_dict: dict, source, *,
                      record: bool = False) -> TrainState:
  """Restores ``step`` of a run whose optimizer settings may have been amended.

  A checkpoint written before an amendment (``workdir.config_at``) is restored
  in the structure its own optimizers gave it; its optimizer state is kept if
  the current optimizers' state has the same structure, and started afresh
  otherwise (recorded in ``history.jsonl`` when ``record``). Parameters,
  statistics, step and random streams are always the checkpoint's.
  """
  written_by = workdir_lib.config_at(workdir, config_dict, step)
  if written_by == config_dict:
    return restore(manager, step, like, mesh)
  old_config = ml_collections.ConfigDict(written_by)
  old_game = games.make_game(old_config, source)
  restored = restore(manager, step, initial_state(old_game, old_config, mesh), mesh)
  shapes = lambda tree: jax.tree.map(lambda x: (x.shape, x.dtype), tree)
  try:
    same = (jax.tree.structure(like.opt_state) == jax.tree.structure(restored.opt_state)
            and shapes(like.opt_state) == shapes(restored.opt_state))
  except (TypeError, ValueError):
    same = False
  if same:
    return restored
  if record:
    workdir_lib.append_history(workdir, "optimizer_state_reset", step=step,
                               reason="the amended optimizers keep a state of another "
                               "structure")
  return restored.replace(opt_state=like.opt_state)


def _write_records(log: "MetricLog", step: int, seeds, values: dict, shared=None,
                   sweep=None, frozen=()) -> dict:
  """Writes one record (one seed) or a record per seed plus their mean and
  standard error (``"seed": "mean"``, ``<name>_se``); returns the summary record.

  With a sweep (``seeds.step_sweep``: field and per-replica values) every
  record names its value of the field, and the mean and standard error are
  over each value's seeds, one ``"mean"`` record per value; the summary then
  holds ``<name>@<field>=<value>`` for each. ``frozen``: the indices of the
  seeds frozen at a NaN, counted per value (``num_frozen``) in a sweep.
  """
  shared = shared or {}
  if len(seeds) == 1:
    record = {k: float(np.asarray(v).reshape(-1)[0]) for k, v in values.items()}
    log.write({"step": step, **record, **shared})
    return record
  field, per_replica = sweep if sweep is not None else (None, [None] * len(seeds))
  named = lambda v: {} if field is None else {field: v}
  for i, seed in enumerate(seeds):
    log.write({"step": step, "seed": seed, **named(per_replica[i]),
               **{k: float(np.asarray(v)[i]) for k, v in values.items()}})
  summary = {}
  for value in dict.fromkeys(per_replica):  # the values, in order
    rows = [i for i, v in enumerate(per_replica) if v == value]
    group = {}
    for k, v in values.items():
      group[k], group[f"{k}_se"] = seeds_lib.aggregate(np.asarray(v)[rows])
    own = dict(shared)
    if field is not None and "num_frozen" in own:  # this value's frozen seeds
      own["num_frozen"] = sum(i in frozen for i in rows)
    log.write({"step": step, "seed": "mean", **named(value), "num_seeds": len(rows),
               **group, **own})
    summary.update(group if field is None else
                   {f"{k}@{field}={seeds_lib.value_label(value)}": x
                    for k, x in group.items()})
  return summary


def _summary_of(records: list[dict], sweep=None) -> dict:
  """The summary ``_write_records`` returned for the last step of ``records``."""
  means = [r for r in records if r.get("seed", "mean") == "mean"]
  if not means:
    return {}
  last = [r for r in means if r["step"] == means[-1]["step"]]
  field = sweep[0] if sweep is not None else None
  out = {}
  for r in last:
    kept = {k: v for k, v in r.items() if k not in ("step", "seed", "num_seeds", field)}
    out.update(kept if field is None else
               {f"{k}@{field}={seeds_lib.value_label(r[field])}": v for k, v in kept.items()})
  return out


def seed_freezes(workdir: str) -> list[dict]:
  """The ``seed_frozen`` records of a run's ``history.jsonl``: ``index``,
  ``seed``, ``at_step`` (the end of the call that froze it) and ``message``."""
  return [r for r in workdir_lib.read_history(workdir) if r.get("event") == "seed_frozen"]


def _freeze(newly: list[int], frozen: dict[int, str], chunk, first_step: int, steps: int,
            seeds, workdir: str) -> None:
  """Adds the seeds frozen during a call (steps ``first_step + 1 ..
  first_step + steps``) to ``frozen``, says so and records it in
  ``history.jsonl``; raises when no seed is left."""
  failing = failing_seeds(chunk, first_step, seeds, steps)
  # (A resume from before a freeze meets it again: recorded once.)
  recorded = ({(int(r["index"]), int(r["at_step"])) for r in seed_freezes(workdir)}
              if distributed.is_primary() else set())
  for i in newly:
    # The metrics name the quantity; a step refused for its parameters alone
    # (finite losses) may show none.
    message = failing.get(i, f"seed {seeds[i]}: non-finite parameters or statistics during "
                             f"steps {first_step + 1}-{first_step + steps}")
    frozen[i] = message
    left = len(seeds) - len(frozen)
    if distributed.is_primary() and left:
      print(f"{message.rstrip('.')}; that seed is frozen at its last finite state and left "
            f"out of later records, the other {left} train on "
            "(train.nonfinite_seeds='freeze')", file=sys.stderr, flush=True)
    if distributed.is_primary() and (i, first_step + steps) not in recorded:
      workdir_lib.append_history(workdir, "seed_frozen", index=i, seed=seeds[i],
                                 at_step=first_step + steps, message=message)
  if len(frozen) == len(seeds):
    raise NonFiniteError(f"every seed became non-finite, the last {frozen[newly[-1]]}")


def _nan_advice(error: NonFiniteError, ckpt: "Checkpoints", every: int) -> str:
  last = ckpt.latest.latest_step()
  redo = ("run the same command with changed optimizer settings (e.g. "
          "--config.optim.discriminator.learning_rate=...) and --amend; the change is "
          f"recorded in {workdir_lib.HISTORY_FILE}")
  if last is None:
    return (f"{str(error).rstrip('.')}. Training stopped before its first checkpoint (due "
            f"at step {every}), so there is nothing to resume from. To start again in "
            f"this workdir, {redo}; or check the penalty and perturbation settings.")
  return (f"{str(error).rstrip('.')}. Training stopped; the last good checkpoint (step "
          f"{last}) is kept. To continue from it, {redo}.")


def _train(config, config_dict, workdir, game, source, stop_after, amend) -> RunResult:
  """The body of ``train_and_evaluate`` once the config is validated."""
  from gan_jax.train import evaluate  # pylint: disable=g-import-not-at-top

  t = config.train
  try:
    mesh = step_lib.make_mesh(t.get("num_devices", 0), t.get("seed_devices", 1))
  except ValueError as e:
    raise ConfigError(str(e), field=str(e).split(" ", 1)[0]) from None
  replicas = len(seeds_lib.seed_list(config))
  sweep_note = ("train.num_seeds x len(train.sweep_values), the replicas"
                if seeds_lib.sweep_values(config) else "train.num_seeds")
  for field, check in (("train.batch_size",
                        lambda m: step_lib.check_batch_divisible(t.batch_size, m)),
                       ("train.num_seeds",
                        lambda m: step_lib.check_seeds_divisible(replicas, m, sweep_note))):
    try:
      check(mesh)
    except ValueError as e:
      raise ConfigError(str(e), field=field) from None
  decision, lock = _claim(workdir, config_dict, t.num_steps, amend)
  try:
    return _run(config, workdir, game, source, stop_after, mesh, decision, evaluate)
  finally:
    if lock is not None:
      lock.release()


def _claim(workdir, config_dict, num_steps, amend):
  """Checks, locks and claims the workdir (process 0; the others learn its decision)."""
  if not distributed.is_primary():
    code = distributed.share("claim")
    if code == 0:
      raise WorkdirError(f"process 0 refused the workdir {workdir!r}; its error says why")
    return {"resume": code == 2}, None
  try:
    # Refuse, before writing anything, a workdir that is already past this run's end.
    checked = workdir_lib.check(workdir, config_dict, amend=amend)
    swept = (config_dict.get("train", {}) or {}).get("sweep_field") or ""
    if swept and any(field == swept for field, _, _ in checked["changes"]):
      raise ConfigError(
          f"--amend cannot change {swept}: the run sweeps it over train.sweep_values, which "
          "its replicas read instead of the field; nothing was changed (a sweep of other "
          "values is another run: choose another --workdir)", field=swept)
    reached = checked["step"]
    if reached is not None and reached > num_steps:
      raise ConfigError(
          f"workdir {workdir!r} holds this run at step {reached}, beyond "
          f"config.train.num_steps={num_steps}; nothing was changed. To train further, "
          f"raise --config.train.num_steps above {reached}; to score the run as it is, use "
          "experiments/score.py.", field="train.num_steps")
    decision, lock = workdir_lib.claim(workdir, config_dict, amend=amend)
  except BaseException:
    distributed.share("claim", 0)  # the others stop too
    raise
  distributed.share("claim", 2 if decision["resume"] else 1)
  return decision, lock


class _Clock:
  """Wall time per part of a run (``RunResult.timings``, ``timings.jsonl``).

  ``setup``: building, initialising or restoring the state; ``first_call``:
  the first compiled call (compilation included); ``steps``: the other calls,
  waited for; ``evaluation`` (drawing the samples), ``checkpoints``,
  ``figures`` (handing them over), ``logging`` and ``waiting`` (for the worker
  thread of :class:`_Worker`): the loop's time between calls.
  ``outside_steps_share`` is the share of the loop's wall time (after the first
  call) spent outside the compiled calls. The worker's own busy time, which
  overlaps the calls, is reported as ``worker_evaluation`` and
  ``worker_figures`` and is not part of that share.
  """

  def __init__(self):
    self.t0 = time.perf_counter()
    self.parts: dict[str, float] = {}
    self.overlapped: dict[str, float] = {}

  def add(self, name: str, since: float) -> float:
    now = time.perf_counter()
    self.parts[name] = self.parts.get(name, 0.0) + now - since
    return now

  def timed(self, name: str, fn, *args):
    """``fn(*args)``, its wall time added to the worker's part ``name``."""
    t0 = time.perf_counter()
    try:
      return fn(*args)
    finally:
      self.overlapped[name] = self.overlapped.get(name, 0.0) + time.perf_counter() - t0

  def summary(self) -> dict[str, float]:
    out = dict(self.parts)
    out.update({f"worker_{k}": v for k, v in self.overlapped.items()})
    out["total"] = time.perf_counter() - self.t0
    outside = sum(v for k, v in self.parts.items()
                  if k not in ("setup", "first_call", "steps"))
    loop_time = outside + self.parts.get("steps", 0.0)
    out["outside_steps_share"] = outside / loop_time if loop_time > 0 else float("nan")
    return out


def machine() -> dict[str, Any]:
  """The machine this process runs on: CPU, cores, platform, JAX and its devices."""
  cpu = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    cpu = names[0] if names else cpu
  except OSError:
    pass
  import jaxlib  # pylint: disable=g-import-not-at-top
  devices = jax.devices()
  return {"cpu": cpu, "logical_cores": os.cpu_count(),
          "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
          "python": platform.python_version(), "jax": jax.__version__,
          "jaxlib": getattr(jaxlib, "__version__", "?"),
          "devices": f"{len(devices)} x {devices[0].platform}"}


def _load_average() -> float | None:
  """The machine's 1-minute load average, or None where the OS has none.

  A running process counts in its machine's load, so 0.0 means the OS does
  not report it (some sandboxes): None as well.
  """
  try:
    load = os.getloadavg()[0]
  except (AttributeError, OSError):
    return None
  return load if load > 0 else None


LOAD_EVERY = 15.0  # seconds between load-average readings of a sitting


class _Sitting:
  """This sitting's line of ``timings.jsonl``, rewritten at every checkpoint.

  One line per sitting (``from_step`` to ``to_step``). A sitting that is
  killed keeps the line of its last checkpoint (``"partial": true``): its time
  up to the step the next sitting resumes from, so the lines add up to the
  wall time the run has cost. Earlier sittings' lines are kept as they are.

  Each line also says where the time was spent: the ``machine``, this
  process's CPU seconds (``cpu_seconds``, all its threads) and the machine's
  1-minute load average read about every ``LOAD_EVERY`` seconds of the sitting
  (``load_mean``, a time-even mean; this process's threads included; well above both the machine's ``logical_cores`` and the
  cores the process kept busy, other work shared the cores and the wall time
  is longer than the run's alone).
  """

  def __init__(self, path: str, start: int, num_seeds: int):
    self.path, self.start, self.num_seeds = path, start, num_seeds
    self.before: list[str] = []
    self.machine = machine() if distributed.is_primary() else {}
    self.cpu0 = time.process_time()
    self.loads: list[float] = []
    self.last_load = -math.inf
    if distributed.is_primary() and os.path.exists(path):
      with open(path, encoding="utf-8") as f:
        self.before = [line for line in f if line.strip()]

  def sample_load(self, force: bool = False) -> None:
    """A reading of the load average if ``LOAD_EVERY`` seconds have passed since
    the last one (or ``force``): readings even in time, not one per checkpoint."""
    now = time.monotonic()
    if force or now - self.last_load >= LOAD_EVERY:
      load = _load_average()
      if load is not None:
        self.loads.append(load)
        self.last_load = now

  def write(self, step: int, timings: dict[str, float], partial: bool = False) -> None:
    if not distributed.is_primary():
      return
    self.sample_load(force=not self.loads)
    where = {"machine": self.machine, "cpu_seconds": round(time.process_time() - self.cpu0, 2),
             **({"load_mean": round(sum(self.loads) / len(self.loads), 3)} if self.loads else {})}
    line = json.dumps({"from_step": self.start, "to_step": step, "num_seeds": self.num_seeds,
                       **({"partial": True} if partial else {}),
                       **{k: round(v, 4) for k, v in timings.items()}, **where}) + "\n"
    tmp = self.path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
      f.writelines(self.before + [line])
    os.replace(tmp, self.path)


class _Worker:
  """One thread for the host work between compiled calls: evaluation metrics
  and figures.

  The compiled calls are asynchronous and release the interpreter, so scoring
  an evaluation's samples (host programs of ``metrics.distances``) and
  rendering the figures (matplotlib, no pyplot) run while the next calls train
  instead of between them. Tasks run one at a time in submission order, so an
  evaluation's record is written before a later figure reads ``eval.jsonl``.
  :meth:`drain` waits for all of them and re-raises the first failure; the
  loop drains before every checkpoint, so a checkpoint never precedes a record
  of an earlier step (a resume after ``kill -9`` finds every record up to it),
  and at the end. Only host arrays reach the worker, never the (donated)
  training state. ``concurrent.futures``: nothing hand-written but the order.
  """

  def __init__(self):
    self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gan_jax_worker")
    self.pending: list[concurrent.futures.Future] = []

  def submit(self, fn, *args) -> concurrent.futures.Future:
    future = self.pool.submit(fn, *args)
    self.pending.append(future)
    return future

  def drain(self) -> None:
    pending, self.pending = self.pending, []
    for future in pending:
      future.result()

  def close(self) -> None:
    self.pool.shutdown(wait=True)


def _run(config, workdir, game, source, stop_after, mesh, decision, evaluate) -> RunResult:
  """Trains in a claimed, locked workdir."""
  t = config.train
  clock = _Clock()
  seeds = seeds_lib.seed_list(config)
  sweep = seeds_lib.step_sweep(config)
  multi = len(seeds) > 1
  state = initial_state(game, config, mesh)
  arrays = step_lib.put_replicated(source.arrays, mesh)
  # The checkpoint manager's first collective starts with every process here.
  distributed.barrier("checkpoints")
  best_metric = t.get("best_metric", None)
  if sweep is not None and best_metric:
    # Each swept value has its own mean: no one of them is "the run's" best.
    if distributed.is_primary():
      print(f"train.best_metric={best_metric!r} is not kept for a sweep ({sweep[0]} over "
            f"{len(set(sweep[1]))} values): each value has its own mean; every checkpoint "
            "holds all of them", file=sys.stderr, flush=True)
    best_metric = None
  ckpt = Checkpoints(workdir, keep=t.get("keep_checkpoints", 3),
                     best_metric=best_metric, best_mode=t.get("best_mode", "min"))
  if decision["resume"] and ckpt.latest.latest_step() is not None:
    state = restore_run_state(ckpt.latest, ckpt.latest.latest_step(), state, mesh, workdir,
                              config_to_dict(config), source, record=True)
  start = state_step(state)
  if start and distributed.is_primary():
    print(f"resuming {workdir} from step {start}", file=sys.stderr, flush=True)
  board = board_lib.open_board(workdir, start, t.get("tensorboard", True),
                               sweep[0] if sweep is not None else "")
  train_log = MetricLog(os.path.join(workdir, "metrics.jsonl"), start, board, "train")
  eval_log = MetricLog(os.path.join(workdir, "eval.jsonl"), start, board, "eval")
  evaluator = evaluate.Evaluator(game, source, config, workdir)

  spc = t.steps_per_call
  params_finite = jax.jit(all_finite, out_shardings=step_lib.replicated(mesh))
  # 'freeze': a seed whose step is not finite keeps its last finite state
  # (seeds.freeze_nonfinite) and leaves the records; the others train on.
  freeze = multi and t.get("nonfinite_seeds", "stop") == "freeze"
  frozen: dict[int, str] = {}  # index -> what froze it
  if freeze and start:
    said = ({int(r["index"]): r["message"] for r in seed_freezes(workdir)}
            if distributed.is_primary() else {})
    frozen = {i: said.get(i, f"seed {seeds[i]}: frozen before step {start}")
              for i in frozen_seeds(state, start)}
  step_fn = seeds_lib.freeze_nonfinite(game.step) if freeze else game.step
  run = step_lib.compile_steps(seeds_lib.stack_step(step_fn, seeds_lib.seed_batching(config),
                                                    sweep=sweep)
                               if multi else step_fn, mesh,
                               steps_per_call=spc,
                               unroll=t.get("unroll", 1),
                               step_metrics=t.get("step_metrics", "every"), stacked=multi)
  end = t.num_steps if stop_after is None else min(t.num_steps, stop_after)
  every = {name: t.get(name, spc) for name in _EVENT_FIELDS}
  if start >= end:
    ckpt.close()
    if board is not None:
      board.close()
    if stop_after is not None and end < t.num_steps:  # asked to stop here, not the end
      why = f"the requested stop at step {end}; train.num_steps={t.num_steps}"
      hint = "Call again without stop_after (or a later one) to go on."
    else:
      why = f"train.num_steps={t.num_steps}"
      hint = "Raise --config.train.num_steps to go on."
    print(f"{workdir} is already at step {start} ({why}): nothing to train. {hint}",
          file=sys.stderr, flush=True)
    final = _summary_of(eval_log.read(), seeds_lib.step_sweep(config))
    return RunResult(state=state, game=game, source=source, final_metrics=final,
                     steps_per_second=0.0)
  progress = Progress(t.num_steps, start, enabled=t.get("progress", True))
  worker = _Worker()
  sitting = _Sitting(os.path.join(workdir, "timings.jsonl"), start, len(seeds))

  def score_and_write(drawn, at, out):
    results = evaluator.score(drawn)
    return _write_records(eval_log, at, seeds, _mask_seeds({
        k: np.asarray([r.get(k, np.nan) for r in results], np.float64)
        for k in results[0]}, out) if multi else results[0],
                          {"num_frozen": len(out)} if out else None, sweep, out)

  def plot(train_records):
    # eval.jsonl is read here: every earlier evaluation's record is written.
    evaluator.plot(train_records, eval_log.read())

  tick = clock.add("setup", clock.t0)
  window: dict[str, list[float]] = {}
  eval_metrics: dict[str, float] = {}
  step = start
  try:
    if source.refill is not None:  # streaming: the first call's buffer
      arrays = step_lib.put_stream(source.refill(step // spc), mesh)
    if jax.process_count() > 1:
      # Every process compiles, then all start the first call together (its
      # collectives would time out on a process still compiling).
      run = run.lower(state, arrays).compile()
      distributed.barrier("first_call")
    while step < end:
      state, chunk = run(state, arrays)
      if source.refill is not None and step + spc < end:
        # The next call's buffer goes to the device while this call runs.
        arrays = step_lib.put_stream(source.refill(step // spc + 1), mesh)
      chunk = distributed.fetch(chunk)
      try:
        finite = bool(distributed.fetch(params_finite((state.params, state.model_state))))
        if freeze:
          newly = [i for i in frozen_seeds(state, step + spc) if i not in frozen]
          if newly:
            if not frozen and ckpt.best is not None and distributed.is_primary():
              print(f"best/ keeps the best {ckpt.best_metric} of the evaluations made while "
                    "every seed trained: later means are over fewer seeds and are not "
                    "compared with it", file=sys.stderr, flush=True)
            _freeze(newly, frozen, chunk, step, spc, seeds, workdir)
          chunk = _mask_seeds(chunk, frozen)
          check_finite({}, step, finite, spc)
        else:
          check_finite_seeds(chunk, step, seeds, finite, spc)
      except NonFiniteError as e:
        raise NonFiniteError(_nan_advice(e, ckpt, every["checkpoint_every"])) from None
      tick = clock.add("first_call" if step == start else "steps", tick)
      step += spc
      if distributed.is_primary():
        sitting.sample_load()
      for k, v in chunk.items():
        # Over the call's steps (diagnostics: its last step), per seed when several.
        window.setdefault(k, []).append(np.mean(np.asarray(v, np.float64), axis=0))
      summary = {k: float(np.nanmean(np.asarray(chunk[k])[-1]))
                 for k in ("d_real", "d_fake", "level") if k in chunk}
      log_now = step % every["log_every"] == 0 or step == end
      progress.update(step, summary, log=log_now)
      if log_now:
        per_seed = {k: np.mean(np.stack(v), axis=0) for k, v in window.items()}
        _write_records(train_log, step, seeds, per_seed,
                       {"steps_per_sec": progress.rate(step),
                        # the mean and SE are over the others
                        **({"num_frozen": len(frozen)} if frozen else {})}, sweep, frozen)
        window = {}
      tick = clock.add("logging", tick)
      evaluated = step % every["eval_every"] == 0 or step == end
      if evaluated:
        # Samples drawn here (the state is donated to the next call); scored and
        # written on the worker while the next calls run.
        drawn = evaluator.draw_seeds(state, step)
        scored = worker.submit(clock.timed, "evaluation", score_and_write, drawn, step,
                               frozenset(frozen))
        tick = clock.add("evaluation", tick)
      if step % every["checkpoint_every"] == 0 or step == end:
        worker.drain()
        if evaluated:
          eval_metrics = scored.result()
        tick = clock.add("waiting", tick)
        # A mean over fewer seeds is not compared with the best (the
        # evaluations' means while every seed trained).
        ckpt.save(step, state, eval_metrics if evaluated and not frozen else None)
        tick = clock.add("checkpoints", tick)
        if step < end:  # this sitting's time so far, kept if it is killed
          sitting.write(step, clock.summary(), partial=True)
      if (t.get("figures", True) and distributed.is_primary()
          and (step % every["plot_every"] == 0 or step == end)):
        worker.submit(clock.timed, "figures", plot, train_log.read())
        tick = clock.add("figures", tick)
      if board is not None and log_now:
        board.flush()
        tick = clock.add("logging", tick)
    # The last call checkpointed (step == end), so its evaluation is in; the
    # final figures may still be rendering.
    worker.drain()
    clock.add("waiting", tick)
  finally:
    worker.close()
    ckpt.close()
    if board is not None:
      board.close()
  timings = clock.summary()
  sitting.write(step, timings)
  return RunResult(state=state, game=game, source=source, final_metrics=eval_metrics,
                   steps_per_second=progress.rate(step) if step > start else 0.0,
                   timings=timings)
