"""Evaluation during training: sample metrics, saved snapshots and figures.

Everything here works from a ``TrainState`` alone, so the same evaluation runs
standalone on a checkpoint (``loop.load_checkpoint``) as it does in the loop.
"""

from __future__ import annotations

import copy
import glob
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import games
from gan_jax import plotting
from gan_jax.metrics import distances
from gan_jax.metrics import modes
from gan_jax.train import distributed
from gan_jax.train import seeds as seeds_lib

# Grid cells per axis for the occupancy of beta-GAN's uniform stage.
_OCCUPANCY_BINS = {1: 64, 2: 24, 3: 10}
# Neighbour ranks of the papers: precision / recall (Kynkaanniemi et al.) and
# density / coverage (Naeem et al.).
_K_PRECISION_RECALL, _K_DENSITY_COVERAGE = 3, 5


def beta_boundaries(level_spec: Any) -> list[int]:
  """Steps where beta-GAN's schedule changes level (uniform, K levels, data)."""
  if not isinstance(level_spec, dict) or level_spec.get("name") != "beta":
    return []
  uniform = int(level_spec.get("uniform_steps", 0))
  per = int(level_spec["steps_per_level"])
  levels = int(level_spec.get("K", 20))
  return [uniform + k * per for k in range(levels + 1)]


class Evaluator:
  """Sample-based metrics and figures for one run."""

  def __init__(self, game, source, config, workdir: str):
    self.game, self.source, self.config = game, source, config
    self.workdir = workdir
    self.n = int(config.train.get("eval_samples", 2000))
    self.seed = int(config.seed)
    # game.sample draws from the generator EMA when the game keeps one (with
    # batch statistics of the EMA weights: games.base.sampling_variables), so
    # metrics, snapshots and figures are of the EMA generator; each eval
    # record says so in 'sampled_with_ema' and the figures in their titles.
    self.uses_ema = bool(getattr(game, "ema_decay", 0.0))
    self._sample = jax.jit(lambda state, key: game.sample(state, key, self.n))
    # All replicas of a run of several seeds in one call (train.num_seeds).
    self._sample_seeds = jax.jit(seeds_lib.over_seeds(
        lambda state, key: game.sample(state, key, self.n),
        seeds_lib.seed_batching(config)))
    self.dist = source.info if hasattr(source.info, "centers") else None
    self.reference = None
    if self.dist is not None:
      # A fixed held-out draw of the data for distances and plots.
      self.reference = np.asarray(self.dist.sample(jax.random.PRNGKey(10_000 + self.seed),
                                                   self.n))
    perturbation = config.game.get("perturbation", None)
    self.level_spec = None
    if perturbation is not None and perturbation.get("name") == "heat":
      level = perturbation.get("level")
      self.level_spec = level.to_dict() if hasattr(level, "to_dict") else level
    self.sample_dir = os.path.join(workdir, "samples")
    self.figure_dir = os.path.join(workdir, "figures")

  @property
  def _generator_note(self) -> str:
    return " (EMA generator)" if self.uses_ema else ""

  def _sample_key(self, step: int) -> jax.Array:
    return jax.random.fold_in(jax.random.PRNGKey(20_000 + self.seed), step)

  def _draw(self, state, keys: jax.Array) -> np.ndarray:
    """Samples of one state (one key) or of stacked replicas (a key per replica)."""
    fn = self._sample if keys.ndim == 1 else self._sample_seeds
    return distributed.fetch(fn(state, keys))

  def samples(self, state, step: int) -> np.ndarray:
    return self._draw(state, self._sample_key(step))

  def evaluate(self, state, step: int) -> dict[str, float]:
    """Draws samples, saves them, returns their metrics as plain floats."""
    ((_, x, protocol),) = self._draw_own(state, step)
    return self._score(x, protocol)

  def _draw_own(self, state, step: int) -> list[tuple["Evaluator", np.ndarray, Any]]:
    """``draw_seeds`` of a single state: its samples and protocol samples, saved."""
    x = self.samples(state, step)
    self._save_samples(x, step)
    return [(self, x, self.protocol_samples(state, step, x))]

  def _save_samples(self, x: np.ndarray, step: int) -> None:
    if not distributed.is_primary():  # every process computes the metrics, one writes
      return
    os.makedirs(self.sample_dir, exist_ok=True)
    # Points are small; for images a grid's worth is enough to look at. Written
    # under a temporary name and renamed, so the figures (drawn on another
    # thread, see train/loop.py) never read a half-written file.
    keep = 1000 if x.ndim == 2 else 64
    path = os.path.join(self.sample_dir, f"step_{step:08d}.npz")
    tmp = os.path.join(self.sample_dir, f".tmp_step_{step:08d}.npz")
    np.savez_compressed(tmp, samples=x[:keep].astype(np.float32))
    os.replace(tmp, path)

  def _score(self, x: np.ndarray, protocol: np.ndarray | None) -> dict[str, float]:
    out = self.metrics(x, protocol_samples=protocol)
    out["sampled_with_ema"] = float(self.uses_ema)
    return out

  def draw_seeds(self, state, step: int) -> list[tuple["Evaluator", np.ndarray, Any]]:
    """The device half of ``evaluate_seeds``: each replica's samples, saved.

    Returns ``(replica, samples, protocol samples or None)`` per seed, host
    arrays only, which :meth:`score` turns into metrics without the state, so
    the loop can score them while the next compiled calls run.
    """
    seeds = seeds_lib.seed_list(self.config)
    if len(seeds) == 1:
      return self._draw_own(state, step)
    replicas = [self._replica(i, seed) for i, seed in enumerate(seeds)]
    xs = self._draw(state, jnp.stack([r._sample_key(step) for r in replicas]))
    protocol = self._top_up(state, step, xs, replicas)
    for i, replica in enumerate(replicas):
      replica._save_samples(xs[i], step)
    return [(r, xs[i], None if protocol is None else protocol[i])
            for i, r in enumerate(replicas)]

  @staticmethod
  def score(drawn) -> list[dict[str, float]]:
    """The host half of ``evaluate_seeds``: metrics of :meth:`draw_seeds`' samples."""
    return [replica._score(x, protocol) for replica, x, protocol in drawn]

  def evaluate_seeds(self, state, step: int) -> list[dict[str, float]]:
    """``evaluate`` of each replica of a run of several seeds (one dict per seed).

    Replica ``i`` is evaluated exactly as a single run of its seed would be
    (its own held-out reference and sample keys); the replicas' samples are
    drawn by one vmapped call (and the protocol's top-up by one more), only
    the metrics are computed seed by seed. The first seed's samples go to
    ``samples/`` (the figures draw them), the others' to
    ``samples/seed_<seed>/``.
    """
    return self.score(self.draw_seeds(state, step))

  def _replica(self, index: int, seed: int) -> "Evaluator":
    cache = self.__dict__.setdefault("_replicas", {})
    if seed not in cache:
      replica = copy.copy(self)
      replica.seed = seed
      replica.__dict__.pop("_replicas", None)
      if self.dist is not None:
        replica.reference = np.asarray(self.dist.sample(jax.random.PRNGKey(10_000 + seed),
                                                        self.n))
      if index:
        replica.sample_dir = os.path.join(self.sample_dir, f"seed_{seed}")
      cache[seed] = replica
    return cache[seed]

  def protocol_samples(self, state, step: int, x: np.ndarray) -> np.ndarray | None:
    """2,500 samples for the published mode protocol (mixtures only, else None).

    The first ``PUBLISHED_PROTOCOL_SAMPLES`` of ``x``, topped up with further
    draws of the compiled sampler (fresh keys) when ``eval_samples`` is smaller.
    """
    return self._top_up(state, step, x, [self])

  def _top_up(self, state, step: int, x: np.ndarray, replicas) -> np.ndarray | None:
    # x: [n, d] of one state, or [S, n, d] of stacked replicas (one key each).
    if self.dist is None or self.dist.centers is None:
      return None
    need = modes.PUBLISHED_PROTOCOL_SAMPLES
    bases = [jax.random.fold_in(jax.random.PRNGKey(30_000 + r.seed), step) for r in replicas]
    parts, have = [x], x.shape[-2]
    while have < need:
      keys = [jax.random.fold_in(b, len(parts)) for b in bases]
      parts.append(self._draw(state, keys[0] if x.ndim == 2 else jnp.stack(keys)))
      have += parts[-1].shape[-2]
    return np.concatenate(parts, axis=-2)[..., :need, :]

  def metrics(self, x: np.ndarray, protocol_samples: np.ndarray | None = None
              ) -> dict[str, float]:
    """The metrics of samples ``x`` (what ``evaluate`` reports).

    For toy data: :func:`gan_jax.metrics.modes.toy_metrics` against the held-out
    reference, precision / recall / density / coverage on raw coordinates
    against the same reference (NaN when ``x`` has non-finite values or too few
    points), and for mixtures the published PacGAN protocol
    (``pacgan_modes``, ``pacgan_high_quality``, ``pacgan_kl``) on
    ``protocol_samples`` (default: the first 2,500 of ``x``).
    """
    out: dict[str, float] = {}
    if self.dist is not None:
      bins = _OCCUPANCY_BINS.get(self.dist.dim, 4)
      # The pairwise-distance statistics (energy distance, MMD, precision /
      # recall / density / coverage) come from one compiled program
      # (metrics.distances, checked against the NumPy references).
      out.update(modes.toy_metrics(x, self.dist, reference=None, occupancy_bins=bins))
      out.update(self._distance_statistics(x))
      if self.dist.centers is not None:
        p = x[:modes.PUBLISHED_PROTOCOL_SAMPLES] if protocol_samples is None else protocol_samples
        stats = modes.published_mode_statistics(p, self.dist.centers, self.dist.std,
                                                self.dist.weights)
        out["pacgan_modes"] = float(stats["modes_captured"])
        out["pacgan_high_quality"] = stats["high_quality_share"]
        out["pacgan_kl"] = stats["kl_mode_histogram"]
    return out

  def _distance_statistics(self, x: np.ndarray) -> dict[str, float]:
    # A diverged generator (NaN samples) or a tiny eval set must not stop the
    # run: the metrics are then undefined, not an error.
    k_max = max(_K_PRECISION_RECALL, _K_DENSITY_COVERAGE)
    if (min(len(x), len(self.reference)) <= k_max or not np.all(np.isfinite(x))):
      return {k: float("nan") for k in distances.KEYS}
    stats = distances.sample_statistics(x, self.reference,
                                        k_precision_recall=_K_PRECISION_RECALL,
                                        k_density_coverage=_K_DENSITY_COVERAGE)
    return {k: float(v) for k, v in stats.items()}

  def _snapshots(self) -> list[tuple[int, np.ndarray]]:
    files = sorted(glob.glob(os.path.join(self.sample_dir, "step_*.npz")))
    out = []
    for f in files:
      step = int(os.path.basename(f)[5:13])
      with np.load(f) as z:
        out.append((step, z["samples"]))
    return out

  def plot(self, train_records: list[dict], eval_records: list[dict]) -> None:
    """Writes the run's figures into ``workdir/figures``.

    The records are those of ``metrics.jsonl`` and ``eval.jsonl``. For a run
    of several seeds the usual figures draw the mean records (with a +-SE band
    on the D(real)/D(fake) curves and the samples of the first seed), and three
    more show every seed: ``seeds_eval.png`` and ``seeds_training.png`` (each
    seed's curve, the mean and a +-SE band) and ``seeds_samples.png`` (the
    last samples of each seed, small multiples).

    A sweep (``train.sweep_field``) has one mean per value: ``sweep_eval.png``
    and ``sweep_training.png`` draw each value's mean over its seeds with a
    +-SE band, the per-seed figures name each seed's value, and the figures of
    a single mean (D curves, losses, schedules, occupancy) are not drawn.
    """
    os.makedirs(self.figure_dir, exist_ok=True)
    save = lambda fig, name: plotting.save_figure(fig, os.path.join(self.figure_dir, name))
    seeds = seeds_lib.seed_list(self.config)
    if len(seeds) > 1:
      self._plot_seeds(seeds, train_records, eval_records, save)
    if seeds_lib.sweep_values(self.config):
      self._plot_sweep(seeds, train_records, eval_records, save)
      train_records = eval_records = []
    train_records = [r for r in train_records if r.get("seed", "mean") == "mean"]
    eval_records = [r for r in eval_records if r.get("seed", "mean") == "mean"]
    snaps = self._snapshots()
    if snaps and len(self.source.shape) == 1:
      centers = getattr(self.dist, "centers", None)
      save(plotting.samples_figure(snaps, self.reference if self.reference is not None
                                   else snaps[-1][1], centers=centers,
                                   box=getattr(self.dist, "box", None),
                                   title=f"{self.source.name}: samples over training"
                                   f"{self._generator_note}"),
           "samples.png")
    elif snaps and len(self.source.shape) == 3:
      save(plotting.image_grid_figure(snaps[-1][1][:64],
                                      title=f"step {snaps[-1][0]}{self._generator_note}"),
           "samples.png")
    if train_records:
      steps = [r["step"] for r in train_records]
      history = {k: [r.get(k) if r.get(k) is not None else np.nan for r in train_records]
                 for k in train_records[-1]}
      boundaries = beta_boundaries(self.level_spec)
      bands = {k: history[f"{k}_se"] for k in ("d_real", "d_fake") if f"{k}_se" in history}
      save(plotting.curves_figure(steps, history, keys=("d_real", "d_fake"),
                                  boundaries=[b for b in boundaries if b <= steps[-1]] or None,
                                  title="discriminator output on real and generated data"
                                  + (f" (mean +- SE of {len(seeds)} seeds)" if bands else ""),
                                  bands=bands or None),
           "d_curves.png")
      save(plotting.losses_figure(steps, history), "losses.png")
      sched = {k: history[k] for k in history
               if k in ("level", "d_noise_std") or k.endswith("_weight")}
      sched.pop("penalty_weight", None)  # the same curve as '<penalty name>_weight'
      if sched.get("level") is not None and self.level_spec is None and not np.any(
          np.asarray(sched["level"], dtype=float)):
        sched.pop("level")  # no perturbation
      if sched:
        if self.level_spec is not None and "level" in sched:
          sched["beta"] = sched.pop("level")
        save(plotting.schedules_figure(steps, sched), "schedules.png")
    if eval_records:
      steps = [r["step"] for r in eval_records]
      if "grid_occupancy" in eval_records[-1]:
        boundaries = beta_boundaries(self.level_spec)
        save(plotting.occupancy_figure(
            steps, [r["grid_occupancy"] for r in eval_records],
            eval_records[-1]["grid_occupancy_uniform_reference"],
            boundaries=boundaries or None,
            title="grid occupancy of samples vs true uniform samples"), "occupancy.png")
    if snaps and self.dist is not None and getattr(self.dist, "centers", None) is not None:
      stats = modes.mode_statistics(snaps[-1][1], self.dist.centers, self.dist.std,
                                    self.dist.weights)
      save(plotting.mode_histogram_figure(stats["mode_counts"], self.dist.weights,
                                          title=f"samples per mode, step {snaps[-1][0]}"
                                          f"{self._generator_note}"),
           "modes.png")


  # Metrics drawn per seed, when recorded.
  _SEED_EVAL_KEYS = ("modes_captured", "high_quality_share", "kl_mode_histogram",
                     "energy_distance", "pacgan_modes", "grid_occupancy", "coverage")
  _SEED_TRAIN_KEYS = ("d_real", "d_fake", "d_loss", "g_loss")

  def _sweep_labels(self, seeds) -> list[str]:
    """Each replica's label: its seed, and its swept value in a sweep."""
    values = seeds_lib.replica_sweep_values(self.config)
    if not values:
      return list(seeds)
    field = games.sweep_field(self.config)
    return [f"{s}, {field.rsplit('.', 1)[-1]}={seeds_lib.value_label(v)}"
            for s, v in zip(seeds, values)]

  def _plot_sweep(self, seeds, train_records, eval_records, save) -> None:
    field = games.sweep_field(self.config)
    values = seeds_lib.replica_sweep_values(self.config)
    short = field.rsplit(".", 1)[-1]
    for records, keys, name, what in (
        (train_records, self._SEED_TRAIN_KEYS, "sweep_training.png", "training"),
        (eval_records, self._SEED_EVAL_KEYS, "sweep_eval.png", "evaluation")):
      steps, per_seed = per_seed_series(records, seeds)
      if not steps:
        continue
      groups = {}
      for value in dict.fromkeys(values):
        rows = [i for i, v in enumerate(values) if v == value]
        groups[f"{short}={seeds_lib.value_label(value)}"] = {k: a[rows]
                                                               for k, a in per_seed.items()}
      save(plotting.sweep_curves_figure(
          steps, groups, keys=keys,
          title=f"{self.source.name}: {what} over {field} (mean +- SE of each value's "
          "seeds)"), name)

  def _plot_seeds(self, seeds, train_records, eval_records, save) -> None:
    boundaries = beta_boundaries(self.level_spec) or None
    for records, keys, name, what in (
        (train_records, self._SEED_TRAIN_KEYS, "seeds_training.png", "training"),
        (eval_records, self._SEED_EVAL_KEYS, "seeds_eval.png", "evaluation")):
      steps, per_seed = per_seed_series(records, seeds)
      if steps:
        last = steps[-1]
        save(plotting.seed_curves_figure(
            steps, per_seed, seeds=self._sweep_labels(seeds), keys=keys,
            show_mean=not seeds_lib.sweep_values(self.config),
            boundaries=[b for b in boundaries if b <= last] if boundaries else None,
            title=f"{self.source.name}: {what} of {len(seeds)} seeds"), name)
    # A seed frozen at a NaN (train.nonfinite_seeds='freeze') has records
    # without values; its samples are of its last finite state.
    final = {r["seed"]: r for r in eval_records if r.get("seed") in seeds}
    frozen = {s for s, r in final.items()
              if not seeds_lib.has_values(r, games.sweep_field(self.config))}
    last = []
    for i, (seed, label) in enumerate(zip(seeds, self._sweep_labels(seeds))):
      snaps = self._replica(i, seed)._snapshots()
      if snaps:
        last.append((f"{label} (frozen at a NaN)" if seed in frozen else label, snaps[-1][1]))
    if len(last) == len(seeds):
      save(plotting.seed_samples_figure(
          last, self.reference, centers=getattr(self.dist, "centers", None),
          box=getattr(self.dist, "box", None),
          title=f"{self.source.name}: each seed's samples at its last evaluation"
          f"{self._generator_note}"), "seeds_samples.png")


def per_seed_series(records: list[dict], seeds) -> tuple[list[int], dict[str, np.ndarray]]:
  """The per-seed records of a run of several seeds as ``[S, T]`` arrays.

  Returns the steps at which every seed has a record and, per metric, its
  values ``[seed, step]`` (NaN where a seed's record lacks it).
  """
  by_step: dict[int, dict] = {}
  for r in records:
    if r.get("seed") in seeds:
      by_step.setdefault(int(r["step"]), {})[r["seed"]] = r
  steps = sorted(s for s, rs in by_step.items() if len(rs) == len(seeds))
  names = sorted({k for s in steps for r in by_step[s].values() for k in r}
                 - {"step", "seed"})
  out = {}
  for k in names:
    out[k] = np.asarray([[_as_float(by_step[s][seed].get(k)) for s in steps] for seed in seeds])
  return steps, out


def _as_float(v) -> float:
  try:
    return float(v)
  except (TypeError, ValueError):
    return float("nan")


def metric_names(game, source, config) -> set[str]:
  """The names of the metrics ``Evaluator.evaluate`` reports for a run.

  Computed by evaluating real data as if it were samples, so the answer cannot
  drift from what evaluation really produces (used to check
  ``train.best_metric`` before a run starts).
  """
  ev = Evaluator(game, source, config, workdir="")
  if ev.reference is None:
    return set(ev.metrics(np.zeros((0,) + tuple(source.shape), np.float32)))
  return set(ev.metrics(ev.reference[:max(2, min(len(ev.reference), 256))]))
