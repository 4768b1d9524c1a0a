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

from gan_jax import plotting
from gan_jax.metrics import fidelity
from gan_jax.metrics import modes
from gan_jax.train import seeds as seeds_lib

# Grid cells per axis for the occupancy of beta-GAN's uniform stage.
_OCCUPANCY_BINS = {1: 64, 2: 24, 3: 10}
# Neighbour ranks of the papers: precision / recall (Kynkaanniemi et al.) and
# density / coverage (Naeem et al.).
_K_PRECISION_RECALL, _K_DENSITY_COVERAGE = 3, 5
_FIDELITY_KEYS = ("precision", "recall", "density", "coverage")


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

  def samples(self, state, step: int) -> np.ndarray:
    key = jax.random.fold_in(jax.random.PRNGKey(20_000 + self.seed), step)
    return np.asarray(jax.device_get(self._sample(state, key)))

  def evaluate(self, state, step: int) -> dict[str, float]:
    """Draws samples, saves them, returns their metrics as plain floats."""
    x = self.samples(state, step)
    os.makedirs(self.sample_dir, exist_ok=True)
    # Points are small; for images a grid's worth is enough to look at.
    keep = 1000 if x.ndim == 2 else 64
    np.savez_compressed(os.path.join(self.sample_dir, f"step_{step:08d}.npz"),
                        samples=x[:keep].astype(np.float32))
    out = self.metrics(x, protocol_samples=self.protocol_samples(state, step, x))
    out["sampled_with_ema"] = float(self.uses_ema)
    return out

  def evaluate_seeds(self, state, step: int) -> list[dict[str, float]]:
    """``evaluate`` of each replica of a run of several seeds (one dict per seed).

    Replica ``i`` is evaluated exactly as a single run of its seed would be
    (its own held-out reference and sample keys), with the one compiled
    sampler; the first seed's samples go to ``samples/`` (the figures draw
    them), the others' to ``samples/seed_<seed>/``.
    """
    seeds = seeds_lib.seed_list(self.config)
    if len(seeds) == 1:
      return [self.evaluate(state, step)]
    return [self._replica(i, seed).evaluate(seeds_lib.take(state, i), step)
            for i, seed in enumerate(seeds)]

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
    if self.dist is None or self.dist.centers is None:
      return None
    need = modes.PUBLISHED_PROTOCOL_SAMPLES
    parts, have = [x], len(x)
    base = jax.random.fold_in(jax.random.PRNGKey(30_000 + self.seed), step)
    while have < need:
      parts.append(np.asarray(jax.device_get(self._sample(state, jax.random.fold_in(
          base, len(parts))))))
      have += len(parts[-1])
    return np.concatenate(parts)[:need]

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
      out.update(modes.toy_metrics(x, self.dist, reference=self.reference,
                                   occupancy_bins=bins))
      out.update(self._fidelity(x))
      if self.dist.centers is not None:
        p = x[:modes.PUBLISHED_PROTOCOL_SAMPLES] if protocol_samples is None else protocol_samples
        stats = modes.published_mode_statistics(p, self.dist.centers, self.dist.std,
                                                self.dist.weights)
        out["pacgan_modes"] = float(stats["modes_captured"])
        out["pacgan_high_quality"] = stats["high_quality_share"]
        out["pacgan_kl"] = stats["kl_mode_histogram"]
    return out

  def _fidelity(self, x: np.ndarray) -> dict[str, float]:
    # A diverged generator (NaN samples) or a tiny eval set must not stop the
    # run: the metrics are then undefined, not an error.
    k_max = max(_K_PRECISION_RECALL, _K_DENSITY_COVERAGE)
    if (min(len(x), len(self.reference)) <= k_max or not np.all(np.isfinite(x))):
      return {k: float("nan") for k in _FIDELITY_KEYS}
    return fidelity.prdc(self.reference, x, k_precision_recall=_K_PRECISION_RECALL,
                         k_density_coverage=_K_DENSITY_COVERAGE)

  def _snapshots(self) -> list[tuple[int, np.ndarray]]:
    files = sorted(glob.glob(os.path.join(self.sample_dir, "step_*.npz")))
    out = []
    for f in files:
      step = int(os.path.basename(f)[5:13])
      with np.load(f) as z:
        out.append((step, z["samples"]))
    return out

  def plot(self, train_records: list[dict], eval_records: list[dict]) -> None:
    """Writes the run's figures into ``workdir/figures``."""
    os.makedirs(self.figure_dir, exist_ok=True)
    save = lambda fig, name: plotting.save_figure(fig, os.path.join(self.figure_dir, name))
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
      save(plotting.curves_figure(steps, history, keys=("d_real", "d_fake"),
                                  boundaries=[b for b in boundaries if b <= steps[-1]] or None,
                                  title="discriminator output on real and generated data"),
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
