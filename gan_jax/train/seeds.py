"""Seeds as an axis of one program: S independent replicas of a run.

With ``train.num_seeds = S > 1`` the state pytree gains a leading axis of
length S and the game's ``init``, ``step`` and ``sample`` are mapped over it
(:func:`over_seeds`), so the S replicas compile once and run in one program.
``train.seed_batching`` says how: ``'vmap'`` (default) batches the replicas'
arithmetic with ``jax.vmap``; ``'unroll'`` writes one copy of the function per
replica into the same program and stacks the results. A vmapped convolution
whose kernels differ per replica becomes a grouped convolution, which XLA:CPU
runs on a slow path (DCGAN-28, 5 seeds: 0.24x the single-seed
throughput per seed; ``experiments/benchmark.py --suite=seed_batching``), so
the image configs unroll; the toy MLPs run best vmapped. Replica ``i``
has run seed ``config.seed + i``: its own initialisation, data, latent and
perturbation streams (all drawn from the state's ``rng``) and its own sampler
noise (the optimizer states' ``key`` fields, which the game seeds from the run
seed when it is built). It computes what a single run with that seed computes,
up to the rounding of batched arithmetic. The game never knows: batching is
added here, around it.

Checkpoints hold the stacked state (resume stays exact); metrics and
evaluations are reported per seed and as mean and standard error over seeds.

A sweep (``train.sweep_field`` over ``train.sweep_values``) is a second axis
folded into the same one: V values x S seeds are V * S replicas, value by
value. The game is built once with a ``schedules.replica_value`` in the swept
field's place, and each replica's step is traced with its own value (one more
mapped input of the program), so everything above (checkpoints, resume,
freezing, devices) holds for the replicas of a sweep as it does for seeds;
the means are taken over each value's seeds.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import jax.scipy.special  # pylint: disable=unused-import  (welch)
import numpy as np

from gan_jax import games
from gan_jax import schedules
from gan_jax.games.state import all_finite
from gan_jax.train import step as step_lib


def sweep_values(config) -> tuple[float, ...]:
  """The values of a sweep (``train.sweep_values``; ``()`` when there is none)."""
  if not games.sweep_field(config):
    return ()
  return tuple(float(v) for v in config.train.get("sweep_values", ()) or ())


def seed_list(config) -> list[int]:
  """The run seeds of a config's replicas: ``seed, seed + 1, ...``.

  With a sweep of V values over S seeds (``train.sweep_field``,
  ``train.sweep_values``, ``train.num_seeds``) there are V * S replicas, value
  by value: replica ``r`` has run seed ``seed + r`` and value
  ``sweep_values[r // S]`` (:func:`replica_sweep_values`).
  """
  n = int(config.train.get("num_seeds", 1) or 1) * max(1, len(sweep_values(config)))
  return [int(config.seed) + i for i in range(n)]


def value_label(value: float) -> str:
  """How records, figures and tags name a swept value (``%g``)."""
  return f"{value:g}"


def replica_sweep_values(config) -> list[float]:
  """Each replica's value of the swept field (``[]`` without a sweep)."""
  values = sweep_values(config)
  per_value = int(config.train.get("num_seeds", 1) or 1)
  return [v for v in values for _ in range(per_value)]


def replica_info(config, index: int) -> dict:
  """What names replica ``index`` of a run: its index, run seed and, in a
  sweep, its value of the swept field (records of a probe or a score)."""
  info = {"replica": int(index), "run_seed": seed_list(config)[index]}
  values = replica_sweep_values(config)
  if values:
    info[games.sweep_field(config)] = values[index]
  return info


def step_sweep(config) -> tuple[str, list[float]] | None:
  """``(field, per-replica values)`` of a sweep, for :func:`stack_step`; None without."""
  values = replica_sweep_values(config)
  return (games.sweep_field(config), values) if values else None


def seed_batching(config) -> str:
  """How a config's replicas are mapped (``train.seed_batching``; runs saved
  before the field: ``'vmap'``)."""
  return config.train.get("seed_batching", "vmap")


def _is_key_leaf(path) -> bool:
  # optax convention (and gan_jax.transforms'): a transformation that needs
  # randomness keeps it in a state field named ``key``.
  last = path[-1] if path else None
  return isinstance(last, jax.tree_util.GetAttrKey) and last.name == "key"


def _rekey(opt_state: Any, raw_key: jax.Array) -> Any:
  """``opt_state`` with every sampler ``key`` field set from ``raw_key``."""

  def put(path, leaf):
    if not _is_key_leaf(path):
      return leaf
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
      return jax.random.wrap_key_data(raw_key, impl=jax.random.key_impl(leaf))
    return raw_key.astype(leaf.dtype).reshape(leaf.shape)

  return jax.tree_util.tree_map_with_path(put, opt_state)


def sampler_keys(seeds: Sequence[int], players: Sequence[str]) -> dict[str, jax.Array]:
  """Per player, the stacked sampler keys a single run of each seed would use."""
  return {p: jnp.stack([games.sampler_key(s, p) for s in seeds]) for p in players}


# How a program maps a function over its replicas (``train.seed_batching``).
SEED_BATCHING = ("vmap", "unroll")


def over_seeds(fn: Callable[..., Any], batching: str = "vmap", *,
               in_axes: int | None | tuple = 0,
               spmd_axis_name: str | None = None) -> Callable[..., Any]:
  """``fn`` over stacked replicas: the leading axis of the ``in_axes == 0`` arguments.

  ``'vmap'`` is ``jax.vmap(fn, in_axes, spmd_axis_name=...)``. ``'unroll'``
  calls ``fn`` once per replica on its slice, the calls written one after
  another into the traced program (no loop primitive: a rolled loop of
  convolutions is XLA:CPU's slow path too), and stacks the outputs; each copy
  computes exactly what the unbatched function computes. ``jax.vmap`` has no
  option for this, hence the hand-written map.
  """
  if batching == "vmap":
    return jax.vmap(fn, in_axes=in_axes, spmd_axis_name=spmd_axis_name)
  if batching != "unroll":
    raise ValueError(f"train.seed_batching: unknown value {batching!r}; valid: "
                     f"{', '.join(SEED_BATCHING)}")

  def unrolled(*args):
    axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
    if len(axes) != len(args):
      raise ValueError(f"in_axes has {len(axes)} entries for {len(args)} arguments")
    mapped = [a for a, ax in zip(args, axes) if ax is not None]
    if not mapped or any(ax not in (0, None) for ax in axes):
      raise ValueError(f"over_seeds('unroll') maps leading axes only (in_axes 0 or None); "
                       f"got {in_axes!r}")
    n = jax.tree.leaves(mapped[0])[0].shape[0]
    outs = [fn(*(take(a, i) if ax == 0 else a for a, ax in zip(args, axes)))
            for i in range(n)]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)

  return unrolled


def with_replica_values(fn: Callable[..., Any], sweep) -> tuple[Callable[..., Any], Any]:
  """``fn`` taking one more argument, its replica's swept value, that it traces
  under ``schedules.replica_values``; and the stacked values to map it over.

  ``sweep`` is :func:`step_sweep`'s ``(field, per-replica values)``.
  """
  field, per_replica = sweep

  def traced(*args):
    *rest, value = args
    with schedules.replica_values({field: value}):
      return fn(*rest)

  return traced, jnp.asarray(per_replica, jnp.float32)


def init_states(game, seeds: Sequence[int], sharding, batching: str = "vmap",
                sweep=None) -> Any:
  """The stacked initial states of ``seeds``, built by one compiled program."""
  with schedules.replica_values({sweep[0]: sweep[1][0]} if sweep is not None else {}):
    players = list(jax.eval_shape(game.init, jax.random.PRNGKey(0)).opt_state)
  keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])

  def one(key, skeys):
    state = game.init(key)
    return state.replace(opt_state={p: _rekey(v, skeys[p]) if p in skeys else v
                                    for p, v in state.opt_state.items()})

  args = (keys, sampler_keys(seeds, players))
  if sweep is not None:  # an optimizer's init may read its (swept) learning rate
    one, values = with_replica_values(one, sweep)
    args += (values,)
  return jax.jit(over_seeds(one, batching), out_shardings=sharding)(*args)


def stack_step(step_fn: Callable[..., Any], batching: str = "vmap",
               sweep=None) -> Callable[..., Any]:
  """``step(state, arrays, shard)`` over stacked states (the data arrays are shared).

  Vmapped, the axis is named after the mesh's seed axis, so the batch sharding
  constraints inside the step (``P('data')``) become ``P('seeds', 'data')``:
  each seed's batch stays on its own seed group's devices. Unrolled, every
  replica's step keeps the plain ``P('data')`` (the seed axis is then not split
  over devices; ``gan_jax.train.validate`` says so).

  With a sweep (:func:`step_sweep`), each replica's step is traced with its
  own value of the swept field: one more mapped input, a constant of the
  program.
  """
  if sweep is None:
    return over_seeds(step_fn, batching, in_axes=(0, None, None),
                      spmd_axis_name=step_lib.SEED_AXIS)
  traced, values = with_replica_values(step_fn, sweep)
  mapped = over_seeds(traced, batching, in_axes=(0, None, None, 0),
                      spmd_axis_name=step_lib.SEED_AXIS)
  return lambda state, arrays, shard: mapped(state, arrays, shard, values)


# What a seed's step must leave finite to be kept (``freeze_nonfinite``): the
# metrics every step computes anyway, and the new parameters and statistics.
# ``level`` may be +inf (beta-GAN's last stage is the data: beta = inf).
GUARDED_METRICS = ("d_loss", "g_loss")


def freeze_nonfinite(step_fn: Callable[..., Any]) -> Callable[..., Any]:
  """``step_fn`` that keeps its input state when the step is not finite.

  For ``train.nonfinite_seeds = 'freeze'``, wrapped around one replica's step
  before :func:`stack_step`: a seed whose step makes a loss or a parameter NaN or
  inf keeps its previous state, the last finite one. Its metrics still say
  what happened where a loss is the culprit. The loop tells a frozen seed by
  its iteration count, which stays behind the run's (the state is kept whole),
  reports it and leaves the seed out of every later record, while the other
  seeds train on. The frozen seed retries the same step from the same state and
  random stream every step, so it stays frozen (a streamed buffer that changes
  under it could in principle let it through; the loop keeps it out of the
  records regardless). A finite step's state is the wrapped step's, unchanged;
  the select may still let XLA fuse the program differently from the unguarded
  one, so values may differ from a ``'stop'`` run in the last bits.
  """

  def guarded(state, arrays, shard):
    new, metrics = step_fn(state, arrays, shard)
    ok = all_finite(({k: metrics[k] for k in GUARDED_METRICS if k in metrics},
                     new.params, new.model_state))

    def pick(a, b):
      if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):  # typed keys: their data
        return jax.random.wrap_key_data(
            jnp.where(ok, jax.random.key_data(a), jax.random.key_data(b)),
            impl=jax.random.key_impl(a))
      return jnp.where(ok, a, b)

    return jax.tree.map(pick, new, state), metrics

  return guarded


def has_values(record: dict, sweep_field: str = "") -> bool:
  """Whether a per-seed record holds any value: a seed frozen at a NaN
  (``train.nonfinite_seeds='freeze'``) is recorded with none (but for its
  value of a sweep's ``sweep_field``)."""
  return any(v is not None for k, v in record.items()
             if k not in ("step", "seed", sweep_field))


def take(tree: Any, index: int) -> Any:
  """Replica ``index`` of a stacked pytree."""
  return jax.tree.map(lambda x: x[index], tree)


def aggregate(values: np.ndarray) -> tuple[float, float]:
  """Mean and standard error over seeds (NaN-aware; SE 0 for one finite value)."""
  v = np.asarray(values, dtype=np.float64)
  v = v[np.isfinite(v)]
  if v.size == 0:
    return float("nan"), float("nan")
  se = float(np.std(v, ddof=1) / np.sqrt(v.size)) if v.size > 1 else 0.0
  return float(np.mean(v)), se


def welch(a: Sequence[float], b: Sequence[float]) -> dict[str, float | None] | None:
  """Welch's two-sample t-test of ``mean(a) - mean(b)`` over seeds.

  Non-finite values (a diverged seed, a missing metric) are left out. Returns
  ``diff`` (the difference of the means), ``se`` (its standard error,
  ``sqrt(s_a^2 / n_a + s_b^2 / n_b)``), ``t = diff / se``, ``df`` (the
  Welch-Satterthwaite degrees of freedom) and ``p``, two-sided, from Student's
  t with ``df`` degrees of freedom, ``p = I_{df / (df + t^2)}(df / 2, 1 / 2)``
  (the regularized incomplete beta function). ``t``, ``df`` and ``p`` are None
  when neither side varies (``se`` 0), and the whole result None when either
  side has fewer than two values. With 3 seeds a side, ``df`` is 2-4: the
  test is weak, and a small p says the seeds separate, not by how much.
  """
  x, y = (np.asarray([v for v in vals if v is not None], np.float64) for vals in (a, b))
  x, y = x[np.isfinite(x)], y[np.isfinite(y)]
  if x.size < 2 or y.size < 2:
    return None
  vx, vy = np.var(x, ddof=1) / x.size, np.var(y, ddof=1) / y.size
  diff, se = float(np.mean(x) - np.mean(y)), float(np.sqrt(vx + vy))
  if se == 0.0:
    return {"diff": diff, "se": 0.0, "t": None, "df": None, "p": None}
  t = diff / se
  df = float((vx + vy) ** 2 / (vx ** 2 / (x.size - 1) + vy ** 2 / (y.size - 1)))
  # numpy has no incomplete beta; jax.scipy's (float32 here: p to ~1e-6).
  p = float(jax.scipy.special.betainc(df / 2.0, 0.5, df / (df + t * t)))
  return {"diff": diff, "se": se, "t": float(t), "df": df, "p": p}


# The metrics a sweep's closing table shows, when its evaluation has them.
SWEEP_COLUMNS = ("modes_captured", "high_quality_share", "kl_mode_histogram",
                 "energy_distance", "pacgan_modes")


def sweep_summary(final_metrics: dict) -> str:
  """A sweep's final metrics (``<name>@<field>=<value>``) as one row per value:
  the mean +- SE over its seeds of the main metrics (all are in eval.jsonl)."""
  rows: dict[str, dict] = {}
  for key, v in final_metrics.items():
    name, _, where = key.partition("@")
    rows.setdefault(where, {})[name] = v
  columns = [c for c in SWEEP_COLUMNS if any(c in r for r in rows.values())]

  def show(r, c):
    v, se = r.get(c), r.get(c + "_se")
    if v is None or v != v:  # absent, or NaN (no finite seed)
      return "-"
    return f"{v:.4g} +- {se if se is not None and se == se else 0:.2g}"

  table = [["value", *columns]] + [[w, *(show(r, c) for c in columns)]
                                   for w, r in rows.items()]
  widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
  lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
  return "\n".join(["  " + line for line in lines]
                   + ["  (mean +- SE over each value's seeds; every metric per seed and per "
                      "value in eval.jsonl)"])

