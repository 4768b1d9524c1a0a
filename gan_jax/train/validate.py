"""One validation pass over a whole experiment config, before anything is written.

``validate_config(config)`` checks every field it knows (names, types, ranges)
and the rules across fields, then builds the data source and the game (whose
factories check their own options against their signatures) and traces the
game's ``init``, ``step`` and ``sample`` abstractly (``jax.eval_shape``: no
compilation, no device memory), so that a mistake that would only appear inside
compilation surfaces here too. Every failure is a ``ConfigError`` naming the
field and, where there is a list, the valid choices. ``train_and_evaluate``
runs it before the workdir is touched, so a corrected command is never refused
as "a different run".
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, Callable

import jax
import numpy as np

from gan_jax import games
from gan_jax import models
from gan_jax import schedules
from gan_jax.data import make_source
from gan_jax.data.source import DataSource
from gan_jax.errors import ConfigError, did_you_mean
from gan_jax.train.seeds import SEED_BATCHING, seed_batching
from gan_jax.train.seeds import value_label as seed_value_label
from gan_jax.games.base import PENALTY_NAMES, PERTURBATIONS, make_schedule
from gan_jax.losses import OBJECTIVES, get_objective
from gan_jax.models.latent import PRIORS

# The fields each section may hold. A field outside these is a typo in a config
# file (an unknown override is refused earlier, by the command line).
SECTIONS = {
    "": ("seed", "data", "model", "game", "optim", "train"),
    "model": ("generator", "discriminator", "encoder", "latent_shape", "latent_prior",
              "latent_kwargs", "dtype"),
    "game": ("name", "loss", "loss_kwargs", "n_critic", "n_gen", "penalty", "penalty_2",
             "perturbation", "ema_decay", "ensemble", "joint_batch", "lambda1", "lambda2",
             "lambda_manifold"),
    "game.penalty": ("name", "weight", "every", "kwargs"),
    "game.penalty_2": ("name", "weight", "every", "kwargs"),
    "game.perturbation": ("name", "level", "kwargs"),
    "train": ("batch_size", "num_steps", "steps_per_call", "unroll", "step_metrics", "log_every",
              "eval_every", "checkpoint_every", "plot_every", "keep_checkpoints",
              "eval_samples", "best_metric", "best_mode", "num_devices", "progress", "figures",
              "num_seeds", "seed_devices", "tensorboard", "nonfinite_seeds", "seed_batching",
              "sweep_field", "sweep_values"),
}
EVENT_FIELDS = ("log_every", "eval_every", "checkpoint_every", "plot_every")
STEP_METRICS = ("every", "last")
NONFINITE_SEEDS = ("stop", "freeze")

# (field, minimum, inclusive maximum or None, integer?) of the numeric fields.
_RANGES = (
    ("seed", 0, None, True),
    ("train.batch_size", 1, None, True),
    ("train.num_steps", 1, None, True),
    ("train.steps_per_call", 1, None, True),
    ("train.keep_checkpoints", 1, None, True),
    ("train.eval_samples", 2, None, True),
    ("train.num_devices", 0, None, True),
    ("train.num_seeds", 1, None, True),
    ("train.seed_devices", 1, None, True),
    ("game.n_critic", 1, None, True),
    ("game.n_gen", 1, None, True),
    ("game.ensemble", 0, None, True),
    ("game.penalty.every", 1, None, True),
    ("game.penalty_2.every", 1, None, True),
    ("game.ema_decay", 0.0, None, False),
    ("game.lambda1", 0.0, None, False),
    ("game.lambda2", 0.0, None, False),
    ("game.lambda_manifold", 0.0, None, False),
)


@dataclasses.dataclass
class Validated:
  """What validation built; the loop reuses it rather than building twice."""
  source: DataSource
  game: Any


def _plain(value):
  return value.to_dict() if hasattr(value, "to_dict") else value


def _get(config, path: str, default=None):
  node = config
  for part in path.split("."):
    if node is None or not hasattr(node, "get"):
      return default
    node = node.get(part, None)
  return default if node is None else node


def _check_sections(config) -> None:
  for section, allowed in SECTIONS.items():
    node = config if not section else _get(config, section)
    if node is None or not hasattr(node, "keys"):
      continue
    for key in node.keys():
      if key not in allowed:
        where = f"config.{section}." if section else "config."
        raise ConfigError(
            f"{where}{key}: unknown field{did_you_mean(key, allowed)}; the fields of "
            f"{where.rstrip('.')} are: {', '.join(allowed)}", field=f"{section}.{key}".strip("."))


def _check_number(path: str, value: Any, minimum, maximum, integer: bool) -> None:
  kind = "an integer" if integer else "a number"
  ok_type = (isinstance(value, numbers.Integral) if integer
             else isinstance(value, numbers.Real)) and not isinstance(value, bool)
  if not ok_type or not math.isfinite(value):
    raise ConfigError(f"config.{path} must be {kind}; got {value!r}", field=path)
  if value < minimum or (maximum is not None and value > maximum):
    upper = f" and <= {maximum}" if maximum is not None else ""
    raise ConfigError(f"config.{path} must be {kind} >= {minimum}{upper}; got {value!r}",
                      field=path)


def check_train(config) -> None:
  """The fields of ``config.train`` (and the seed), before anything is built."""
  for path, lo, hi, integer in _RANGES:
    if path.startswith(("seed", "train.")):
      value = _get(config, path)
      if value is not None:
        _check_number(path, value, lo, hi, integer)
  t = config.train
  for name in ("num_steps", "batch_size", "steps_per_call"):
    if t.get(name) is None:
      raise ConfigError(f"config.train.{name} is required (a positive integer)",
                        field=f"train.{name}")
  spc = t.steps_per_call
  for name in EVENT_FIELDS:
    value = t.get(name, spc)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or value % spc:
      raise ConfigError(
          f"config.train.{name} ({value!r}) must be a positive multiple of "
          f"config.train.steps_per_call ({spc}): events happen between compiled calls",
          field=f"train.{name}")
  if t.num_steps % spc:
    raise ConfigError(
        f"config.train.num_steps ({t.num_steps}) must be a positive multiple of "
        f"config.train.steps_per_call ({spc}): events happen between compiled calls",
        field="train.num_steps")
  unroll = t.get("unroll", 1)
  if not (isinstance(unroll, bool) or (isinstance(unroll, int) and unroll >= 1)):
    raise ConfigError(f"config.train.unroll must be an integer >= 1 or True; got {unroll!r}",
                      field="train.unroll")
  if t.get("step_metrics", "every") not in STEP_METRICS:
    raise ConfigError(f"config.train.step_metrics must be one of "
                      f"{', '.join(STEP_METRICS)}, got {t.step_metrics!r}",
                      field="train.step_metrics")
  if t.get("nonfinite_seeds", "stop") not in NONFINITE_SEEDS:
    raise ConfigError(f"config.train.nonfinite_seeds must be one of "
                      f"{', '.join(NONFINITE_SEEDS)}, got {t.nonfinite_seeds!r}",
                      field="train.nonfinite_seeds")
  batching = seed_batching(config)
  if batching not in SEED_BATCHING:
    raise ConfigError(f"config.train.seed_batching must be one of "
                      f"{', '.join(SEED_BATCHING)}, got {batching!r}",
                      field="train.seed_batching")
  if batching == "unroll" and int(t.get("seed_devices", 1) or 1) > 1:
    raise ConfigError(
        f"config.train.seed_batching='unroll' writes every seed's step into one program that "
        f"every device runs, so the seed axis cannot be split over devices "
        f"(config.train.seed_devices={t.seed_devices}); use seed_batching='vmap' with "
        f"seed_devices > 1, or seed_devices=1", field="train.seed_batching")
  if t.get("best_mode", "min") not in ("min", "max"):
    raise ConfigError(f"config.train.best_mode must be 'min' or 'max', got {t.best_mode!r}",
                      field="train.best_mode")
  if not isinstance(t.get("best_metric", "") or "", str):
    raise ConfigError(f"config.train.best_metric must be a metric name or ''; got "
                      f"{t.best_metric!r}", field="train.best_metric")


def _schedule_values(spec: Any, field: str, num_steps: int) -> np.ndarray:
  """A schedule's values at 65 steps spread over the run (and its first step)."""
  schedule = make_schedule(spec, field)
  steps = np.unique(np.linspace(0, num_steps, 65).astype(np.int64))
  return np.asarray([float(schedule(int(s))) for s in steps])


def _check_schedule(spec: Any, field: str, num_steps: int, *, allow_inf: bool = False,
                    what: str = "value") -> None:
  if spec is None:
    return
  values = _wrap(lambda: _schedule_values(_plain(spec), field, num_steps))
  bad = np.isnan(values) | (values < 0) | (np.isinf(values) if not allow_inf else False)
  if bad.any():
    raise ConfigError(
        f"config.{field}: a {what} must be a non-negative {'number or inf' if allow_inf else 'finite number'}"
        f" at every step; this one takes {float(values[bad][0])!r} (from {_plain(spec)!r})",
        field=field)


def _check_name(field: str, name: Any, valid, what: str) -> None:
  if name not in valid:
    raise ConfigError(f"config.{field}: unknown {what} {name!r}"
                      f"{did_you_mean(str(name), valid)}; valid: {', '.join(valid)}",
                      field=field)


def check_game_fields(config) -> None:
  """Ranges of the game's numbers and schedules, and rules across fields."""
  for path, lo, hi, integer in _RANGES:
    if path.startswith("game."):
      value = _get(config, path)
      if value is not None:
        _check_number(path, value, lo, hi, integer)
  ema = _get(config, "game.ema_decay", 0.0)
  if ema >= 1.0:
    raise ConfigError(f"config.game.ema_decay must be in [0, 1) (0: no EMA); got {ema!r}",
                      field="game.ema_decay")
  n = config.train.num_steps
  # Names first, before the data are built (an image set may not be on this
  # machine): a level or weight means something only for a known component.
  _check_name("game.name", _get(config, "game.name"), tuple(sorted(games.GAMES)), "game")
  loss = _get(config, "game.loss")
  if loss is not None:
    if str(loss).startswith("fgan_") and loss not in OBJECTIVES:
      try:  # the objective's own message lists the divergences
        get_objective(loss)
      except ValueError as e:
        raise ConfigError(f"config.game.loss: {e}", field="game.loss") from None
    _check_name("game.loss", loss, OBJECTIVES, "objective")
  for field in ("penalty", "penalty_2"):
    spec = _get(config, f"game.{field}")
    if spec is not None:  # a negative weight is wrong even where the penalty is off
      _check_name(f"game.{field}.name", spec.get("name", "none"), PENALTY_NAMES, "penalty")
      _check_schedule(spec.get("weight", 0.0), f"game.{field}.weight", n, what="penalty weight")
  pert = _get(config, "game.perturbation")
  if pert is not None:
    _check_name("game.perturbation.name", pert.get("name", "none"), PERTURBATIONS,
                "perturbation")
    heat = pert.get("name") == "heat"
    _check_schedule(pert.get("level", 0.0), "game.perturbation.level", n, allow_inf=heat,
                    what="beta" if heat else "noise or blur level")
  for player, spec in (_plain(config.get("optim", {})) or {}).items():
    if isinstance(spec, dict) and not isinstance(spec.get("learning_rate"), numbers.Real):
      _check_schedule(spec.get("learning_rate"), f"optim.{player}.learning_rate", n,
                      what="learning rate")
    if isinstance(spec, dict):
      for key in ("weight_decay", "clip"):
        value = spec.get(key, 0.0) or 0.0
        _check_number(f"optim.{player}.{key}", value, 0.0, None, False)


def _what(config, field: str) -> str:
  """What a swept schedule's values are, for messages (as check_game_fields
  names them)."""
  if field.endswith(".learning_rate"):
    return "learning rate"
  if field.endswith(".weight"):
    return "penalty weight"
  return "beta" if _get(config, "game.perturbation.name") == "heat" else "noise or blur level"


def check_sweep(config) -> None:
  """A sweep (``train.sweep_field`` over ``train.sweep_values``): a number the
  game reads as a schedule, and at least two valid, distinct values for it."""
  t = config.train
  field = games.sweep_field(config)
  values = t.get("sweep_values", ()) or ()
  if not field:
    if values:
      raise ConfigError(f"config.train.sweep_values={tuple(values)!r} is set but "
                        "config.train.sweep_field is '': name the field the values are for "
                        f"(valid here: {', '.join(games.sweepable_fields(config))})",
                        field="train.sweep_field")
    return
  valid = games.sweepable_fields(config)
  current = _get(config, field)
  if field in games.sweep_candidates(config) and schedules.is_schedule_spec(current):
    # A schedule: one of its numbers may be swept.
    spec = _plain(current)
    inside = [f for f in valid if f.rpartition(".")[0] == field]
    if inside:
      raise ConfigError(
          f"config.{field} is the schedule {spec!r}, not a number: a sweep gives each "
          "replica one constant value of it; set it to a number, or sweep a number of this "
          f"schedule: {', '.join(inside)}", field="train.sweep_field")
    takes = "; ".join(f"{n} ({', '.join(p)})" for n, p in schedules.SWEEPABLE_PARAMETERS.items())
    raise ConfigError(
        f"config.{field} is the schedule {spec!r}: a sweep gives each replica one constant "
        f"value of it, and none of a {spec.get('name')!r} schedule's numbers can take a value "
        "per replica (its factory checks or uses them as Python numbers). Set the field to "
        f"a number, or to a schedule whose numbers can be swept: {takes}",
        field="train.sweep_field")
  if field not in valid:
    raise ConfigError(
        f"config.train.sweep_field: {field!r} cannot be swept in this config"
        f"{did_you_mean(field, valid)}; a sweep varies a number the game reads as a "
        f"schedule inside its step: {', '.join(valid)} (a penalty's weight or a "
        "perturbation's level only when that penalty or perturbation is used)",
        field="train.sweep_field")
  if not isinstance(current, numbers.Real) or isinstance(current, bool):
    raise ConfigError(
        f"config.{field} is {_plain(current)!r}, not a number: a sweep gives each replica "
        "one constant value of it (set the field to a number, e.g. the first of "
        "train.sweep_values)", field="train.sweep_field")
  inner = games.schedule_parameter(config, field)
  if (not isinstance(values, (tuple, list)) or len(values) < 2
      or any(isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v)
             for v in values)):
    raise ConfigError(f"config.train.sweep_values must be a tuple of at least two finite "
                      f"numbers for {field}; got {values!r}", field="train.sweep_values")
  labels = [seed_value_label(float(v)) for v in values]
  if len(set(labels)) != len(values):
    raise ConfigError(f"config.train.sweep_values has a value twice: {tuple(values)!r} "
                      f"(records and figures name them {', '.join(labels)}); each value is "
                      "one group of seeds", field="train.sweep_values")
  for v in values:  # each value must be valid where the field stands
    if inner is not None:  # a number of a schedule: the schedule with it
      spec = {**_plain(_get(config, inner[0])), inner[1]: v}
      try:
        _check_schedule(spec, inner[0], int(t.num_steps), what=_what(config, inner[0]))
      except ConfigError as e:
        raise ConfigError(f"config.train.sweep_values: {v!r} is not valid for {field}: {e}",
                          field="train.sweep_values") from None
    elif field.endswith(".learning_rate"):
      if v <= 0:
        raise ConfigError(f"config.train.sweep_values: {v!r} is not a valid {field} (a "
                          "learning rate must be positive)", field="train.sweep_values")
    else:
      try:
        _check_schedule(v, field, int(t.num_steps), what=_what(config, field))
      except ConfigError as e:
        raise ConfigError(f"config.train.sweep_values: {v!r} is not valid for {field}: {e}",
                          field="train.sweep_values") from None


def check_model_fields(config, source: DataSource) -> None:
  model = config.model
  _check_name("model.latent_prior", model.get("latent_prior", "uniform"), PRIORS, "prior")
  shape = tuple(model.latent_shape)
  if not shape or any(not isinstance(s, int) or s < 1 for s in shape):
    raise ConfigError(f"config.model.latent_shape must be a tuple of positive integers; got "
                      f"{model.latent_shape!r}", field="model.latent_shape")
  pert = _get(config, "game.perturbation")
  if pert is not None and pert.get("name") == "heat":
    z_dim, x_dim = int(np.prod(shape)), int(np.prod(source.shape))
    if z_dim < x_dim:
      raise ConfigError(
          f"config.model.latent_shape={shape} has {z_dim} dimensions, fewer than the data's "
          f"{x_dim} ({source.name}, example shape {tuple(source.shape)}): beta-GAN (heat) "
          "starts from the uniform box, which a generator can fill only with dim z >= dim x "
          f"(Mehrjou et al. 2017); use latent_shape=({x_dim},) or larger",
          field="model.latent_shape")


def _wrap(build: Callable[[], Any], errors=(ValueError, TypeError, KeyError)) -> Any:
  """Runs a factory, turning its argument errors into ``ConfigError``."""
  try:
    return build()
  except ConfigError:
    raise
  except errors as e:
    message = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    if message.startswith(tuple(f"{s}." for s in SECTIONS[""])):
      message = f"config.{message}"  # the factories name fields without the prefix
    elif not message.startswith("config"):
      message = f"config: {message}"
    raise ConfigError(message) from e


def check_traces(game, source: DataSource, config) -> None:
  """Traces init, one step and sampling abstractly: trace-time errors surface now.

  A sweep's game is traced with the first of its values (each replica's step
  differs from it only in that number).
  """
  field = games.sweep_field(config)
  values = ({field: float(config.train.sweep_values[0])} if field else {})
  with schedules.replica_values(values):
    key = jax.random.PRNGKey(0)
    state = jax.eval_shape(game.init, key)
    arrays = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), source.arrays)
    jax.eval_shape(lambda s, a: game.step(s, a, lambda x: x), state, arrays)
    jax.eval_shape(lambda s: game.sample(s, key, min(int(config.train.eval_samples), 16)),
                   state)


def check_best_metric(config, metric_names) -> None:
  best = config.train.get("best_metric", "") or ""
  if best and best not in metric_names:
    names = sorted(metric_names)
    raise ConfigError(
        f"config.train.best_metric={best!r} is not a metric this run's evaluation produces"
        f"{did_you_mean(best, names)}; "
        + (f"valid: {', '.join(names)}" if names else
           "its evaluation produces no metric (set it to '' to keep no best checkpoint)"),
        field="train.best_metric")


def validate_config(config, *, metric_names: Callable[..., Any] | None = None) -> Validated:
  """Validates a whole experiment config; returns the source and game it built.

  Args:
    config: the experiment config.
    metric_names: ``metric_names(game, source, config)`` -> the evaluation's
      metric names, to check ``train.best_metric`` against.

  Raises:
    ConfigError: naming the field, what it must be and what it got.
    DatasetUnavailableError: an image set that is not on this machine.
  """
  _check_sections(config)
  check_train(config)
  check_game_fields(config)
  check_sweep(config)
  source = _wrap(lambda: make_source(config.data))
  check_model_fields(config, source)
  dtype = _get(config, "model.dtype")
  if dtype is not None and dtype not in models.COMPUTE_DTYPES:
    raise ConfigError(f"config.model.dtype: unknown computation dtype {dtype!r}"
                      f"{did_you_mean(str(dtype), models.COMPUTE_DTYPES)}; valid: "
                      f"{', '.join(models.COMPUTE_DTYPES)} (parameters stay float32 in either)",
                      field="model.dtype")
  for player in ("generator", "discriminator"):
    if _get(config, f"optim.{player}") is None:
      raise ConfigError(f"config.optim.{player} is required", field=f"optim.{player}")
  game = _wrap(lambda: games.make_game(config, source))
  # Only ValueError: a TypeError while tracing is a bug of ours, not a user's.
  _wrap(lambda: check_traces(game, source, config), errors=(ValueError,))
  if metric_names is not None:
    check_best_metric(config, metric_names(game, source, config))
  return Validated(source=source, game=game)

