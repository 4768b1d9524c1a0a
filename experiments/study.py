r"""The papers' studies: one command each, every arm over seeds, a table and figures.

  python -m experiments.study --study=betagan --workdir=runs/study_betagan
  python -m experiments.study --study=pacgan --workdir=runs/study_pacgan --steps=50000
  python -m experiments.study --study=stacked_mnist --workdir=runs/study_stacked \
      --mnist_npz=/path/to/mnist.npz
  python -m experiments.study --study=che --workdir=/tmp/che --quick   # a smoke test

Studies (``--study``):

* ``betagan``: beta-GAN vs the vanilla GAN with both generator losses on the
  3-D mixtures of 5 and 10 Gaussians and the nested cube frames;
* ``pacgan``: the ring of 8 and grid of 25 under PacGAN's protocol
  (configs/pacgan_2d.py) for the vanilla GAN, WGAN-GP, CT-GAN, Roth's
  regularizer, beta-GAN, instance noise, an SGLD discriminator and Reg-GAN;
* ``che``: Che et al.'s 6-Gaussian circle, GAN vs Reg-GAN;
* ``roth``: the 3-D submanifold, unregularized (both generator losses) vs
  gamma = 0.1 constant and annealed, 5 D steps, and input noise of matched
  scale; modes over training and the step of collapse;
* ``roth_gamma``: the same submanifold over gamma in {0, 0.01, 0.1, 1}, and
  annealed gamma over gamma_0 in {0.01, 0.1, 1}, every value's seeds in one
  program (a swept arm, ``Sweep``);
* ``langevin``: Adam vs SGLD vs cc-SGLD discriminators on the grid of 25, and
  WGAN-GP vs WGAN-GP with an SGLD critic (the first step with all modes);
* ``arjovsky``: Arjovsky & Bottou's gradient diagnostics of a toy GAN's and an
  MNIST DCGAN's generators, both generator losses, with and without instance
  noise;
* ``stacked_mnist``: DCGAN and the papers' stabilizers on 1000-mode stacked MNIST;
* ``stacked_mnist_small_d``: the same arms against a quarter-width discriminator
  (the harder setting of a smaller D);
* ``compositional_mnist``: DCGAN vs Reg-DCGAN vs MDGAN on Che et al.'s
  compositional MNIST (set 1), missing modes (#Miss) and KL;
* ``roth_mnist``: Roth et al.'s cross-test of a regularized against an
  unregularized DCGAN on MNIST, seed by seed.

A study is data (``STUDIES``): named arms (a config file with its variant and
overrides), the columns of its table, a step budget (full and ``--quick``) and
the published numbers printed beside ours, each with its source. There is no
training loop here: every arm is trained by ``train_and_evaluate`` with
``train.num_seeds = S`` (S independent replicas in one compiled program; run
seeds ``0 .. S-1``; an arm that sweeps a field over V values, ``Sweep``, has
V x S replicas, run seeds ``0 .. V*S-1``, and a row per value) in
``<workdir>/<arm>/``, and scored with the evaluators a
single run uses. The table gives, per arm, the final evaluation's mean +-
standard error over the seeds (``gan_jax.train.seeds.aggregate``), the number
of seeds, the steps, the arm's wall time (training and any probe or
scoring) with the machine's load average while it trained (other work on the
cores lengthens it), and the published number where one exists.

Written into ``--workdir``: ``study.json`` (the settings and the machine),
``table.md`` (the exact command, machine, jax version, claim, table),
``table.json`` (the same with every seed's value), ``figures/*.png`` (the main
metric over training for every arm, mean with a +-SE band from the arms'
``eval.jsonl`` mean records; D(real)/D(fake) curves where the paper draws them;
the study's own figures) and one run folder per arm.

Budget. ``--steps=N`` (default: the study's full budget, or its quick one) is
every arm's ``train.num_steps``: equal numbers of iterations, hence of
gradient evaluations at equal batch sizes. Schedules given in steps (beta-GAN's
stages, annealing lengths, Roth's gamma decay) are scaled by N over the
config's own ``num_steps`` so each arm keeps its shape on a shorter or longer
run. About ``evaluations`` evaluations per run (quick: 2) fall on multiples of
``train.steps_per_call``, which is lowered to a divisor of N when needed.

``--arms=a,b`` trains only the named arms (any of the study's, also with
``--quick``). Run again in the same workdir with other arms (the same other
settings), the study grows: its table holds every finished arm, and its
recorded command becomes the one that makes them all. ``--rescore`` (the studies scored on final samples) scores a
finished arm's final checkpoints again, keeping the old scores.

``--quick`` is a smoke test of the whole pipeline in seconds per arm, not a
result: 2 seeds, a few dozen steps, hidden layers of 16 units (DCGANs of 8
base features), batch 16 (images 8), 64 evaluation samples, one device, seeds
vmapped (``train.seed_batching``), no per-run figures, and only the study's
``quick_arms`` (a subset that takes every scorer, derived quantity and figure
of the study through the pipeline; on a shared 2-core CPU each arm costs
seconds even with compiled programs cached, mostly tracing); image studies without ``--mnist_npz`` train on a
small generated image set. Its numbers mean nothing and its table says so.

Definitions used by the tables:

* **collapse step** (``roth``): per seed, let M be the most modes captured at
  any evaluation; the collapse step is the first evaluation step s such that
  every evaluation from s on captures fewer than M modes. A seed whose last
  evaluation still captures M modes has not collapsed. The table averages over
  the seeds that collapsed and says how many did.
* **all-modes step** (``langevin``): per seed, the first evaluation step at
  which ``modes_captured`` equals the number of modes of the data; the table
  averages over the seeds that got there and says how many did.
* **fewest modes, second half** (``roth``, ``roth_gamma``): per seed, the
  fewest modes captured at any evaluation after the first half of the run
  (step > last step / 2). A seed that dips and recovers keeps its final value
  and has no collapse step; this column shows the dip.
* **most modes at any evaluation** and **mean modes over evaluations**
  (``langevin``): per seed, the most modes captured at any evaluation and
  their average over all evaluations (a final value can sit in a trough or on
  a peak of a swinging run).
* **modes, mean over the last quarter of evaluations** (``pacgan``): per seed,
  the average of ``pacgan_modes`` over the evaluations after three quarters of
  the run (step > 0.75 x last step); NaN for a seed frozen at a NaN.

Resume: running the same command again finishes what is missing (each arm's
run resumes from its checkpoint; a finished arm is not touched) and leaves a
finished study exactly as it was. A workdir holding a study of other settings,
files that are not a study, or an arm folder holding another run is refused
with nothing changed.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import os
import shlex
import shutil
import sys
import time
from typing import Any, Callable, Mapping, Optional, Sequence

try:
  import fcntl  # pylint: disable=g-import-not-at-top
except ImportError:  # not POSIX: growing a study from two processes at once is unguarded
  fcntl = None

from absl import app
from absl import flags
from absl import logging
import jax
import ml_collections
import numpy as np

from configs import common
from gan_jax import config_registry
from gan_jax import errors
from gan_jax import plotting
from gan_jax.train import loop
from gan_jax.train import seeds as seeds_lib
from gan_jax.train import validate
from gan_jax.train import workdir as workdir_lib

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command line's flags (defined when run as a program, so that importing
  this module next to another absl program defines no flag twice)."""
  flags.DEFINE_string("study", None, f"The study to run: {', '.join(STUDIES)}.")
  flags.DEFINE_string("workdir", None, "Folder of the study: table, figures, one run per arm.")
  flags.DEFINE_bool("quick", False, "Smoke-test setting: tiny models, a few dozen steps, 2 "
                    "seeds; runs in seconds per arm, its numbers mean nothing.")
  flags.DEFINE_bool("status", False, "Only say how far the study in --workdir is, arm by "
                    "arm (steps reached, diverged or frozen seeds, wall time so far); "
                    "reads its folder and changes nothing.")
  flags.DEFINE_integer("num_seeds", None, "Seeds per arm, trained in one program (default 5; "
                       "--quick: 2).")
  flags.DEFINE_integer("steps", None, "Training iterations of every arm (default: the "
                       "study's budget).")
  flags.DEFINE_list("arms", [], "Run only these arms of the study (comma-separated labels; "
                    "default all). A workdir run again with other arms grows: its "
                    "table holds every finished arm of the workdir.")
  flags.DEFINE_bool("rescore", False, "stacked_mnist, compositional_mnist: score the final "
                    "samples of finished arms again (after a metric was added); the old "
                    "scores stay in each arm's study_arm.json.")
  flags.DEFINE_string("publish", "", "Only copy the table of the study in --workdir as it "
                      "stands (table.md, table.json and the figures it lists; no runs or "
                      "checkpoints) into this folder, e.g. experiments/results/NAME; refuses "
                      "to change files there unless --replace_published.")
  flags.DEFINE_bool("replace_published", False, "With --publish: replace the files of an "
                    "earlier publication that differ.")
  flags.DEFINE_string("mnist_npz", "", "Image studies: a local MNIST .npz (x_train, y_train, "
                      "x_test, y_test); default TFDS, or with --quick a generated image set.")


SETTINGS_FILE = "study.json"
ARM_FILE = "study_arm.json"
DEFAULT_SEEDS, QUICK_SEEDS = 5, 2
QUICK_WIDTH, QUICK_BASE_FEATURES = 16, 8
QUICK_BATCH, QUICK_IMAGE_BATCH, QUICK_EVAL_SAMPLES = 16, 8, 64


class StudyError(errors.UserError):
  """A study cannot run as asked (unknown name, a workdir of other settings, ...)."""


# ------------------------------------------------------------------ the data
@dataclasses.dataclass(frozen=True)
class Arm:
  """One arm of a study: a config and overrides, trained over seeds.

  Attributes:
    label: short name; also the arm's folder in the study's workdir.
    config: ``'configs/<file>.py'`` or ``'configs/<file>.py:<variant>'``.
    overrides: dotted config path -> value, applied after ``get_config``.
    group: the panel of the study's figures the arm is drawn in (its data set).
    note: what the arm is, in words (printed in the table).
  """
  label: str
  config: str
  overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  group: str = ""
  note: str = ""
  sweep: Optional["Sweep"] = None


@dataclasses.dataclass(frozen=True)
class Sweep:
  """A number an arm varies over values, every value's seeds in one program.

  The arm trains ``train.sweep_field = field`` over ``train.sweep_values =
  values`` (``gan_jax.train.seeds``): S seeds per value, V x S replicas, the
  value-``k`` replicas having run seeds ``k*S .. k*S + S - 1``. Its table has a
  row per value, its figures a curve (or panel) per value.

  Attributes:
    field: the swept config field (one of ``games.sweepable_fields``).
    values: at least two distinct numbers.
    name: how rows and figures name the field (default: ``field``).
  """
  field: str
  values: tuple[float, ...]
  name: str = ""

  @property
  def label(self) -> str:
    return self.name or self.field


@dataclasses.dataclass(frozen=True)
class Column:
  """A column of a study's table.

  Attributes:
    name: the header.
    keys: evaluation metrics; a seed's value is the first one its final
      evaluation record holds (e.g. ``modes_captured`` on mixtures,
      ``components_captured`` on the cube frames), ``n/a`` if none.
    derived: instead, a per-seed quantity computed from the whole evaluation
      history (a name in ``DERIVED``).
  """
  name: str
  keys: tuple[str, ...] = ()
  derived: str = ""


@dataclasses.dataclass(frozen=True)
class Published:
  """A published number printed beside ours.

  Attributes:
    row: the arm it stands beside, or the name of a method not run here (then
      it gets a row of its own).
    text: the number(s) as published, with units.
    source: where it was published.
  """
  row: str
  text: str
  source: str


@dataclasses.dataclass(frozen=True)
class CrossTest:
  """Roth et al.'s cross-test of arms ``a`` and ``b`` (``gan_jax.metrics.probes``).

  For each seed, the final generators and discriminators of both arms'
  replicas of that seed: ``fp[i][j]`` the share of arm ``j``'s samples arm
  ``i``'s discriminator takes for real, ``fn[i]`` the share of held-out data
  it calls fake. Mean +- SE over the seeds.
  """
  a: str
  b: str
  num_samples: int = 10_000
  quick_num_samples: int = 64


@dataclasses.dataclass(frozen=True)
class Study:
  """A study: arms, table columns, budget, published numbers, figures.

  Attributes:
    name, title: the study's name (``--study``) and a one-line title.
    claim: the papers' claim the study tests, in words, with its source.
    arms: the arms.
    columns: the table's columns (scorer ``'eval'``).
    main_metric: the evaluation metrics drawn over training (first present).
    steps, quick_steps: the full and ``--quick`` budget (iterations per arm).
    budget_note: where the full budget comes from.
    evaluations: evaluations per run at the full budget (quick: 2).
    d_curves: draw D(real)/D(fake) curves (the paper has them).
    per_seed_figure: also draw the main metric of every seed, a panel per arm
      (collapse and oscillation happen per run, and a mean hides them).
    train_curves: further training metrics drawn for the arms that log them.
    published: published numbers (``Published``).
    scorer: ``'eval'`` (final evaluation metrics), ``'gradients'``
      (Arjovsky & Bottou's probe on the arms' generators),
      ``'thousand_modes'`` (stacked MNIST with the project's classifier) or
      ``'cross_test'`` (trained as ``'eval'``, the arms' cells from the
      study's ``cross_test``).
    images: the arms train on MNIST (``--mnist_npz``).
    settings, quick_settings: the scorer's settings at the full / quick budget.
    quick_arms: the arms ``--quick`` trains (default all): a subset that still
      takes the study's scorer, derived columns, data sets and figures through
      the pipeline, so that the smoke test stays in seconds. (Every arm's
      config is built and checked by the tests all the same.)
    notes: further lines printed under the table.
    cross_test: Roth et al.'s cross-test of two of the arms, seed by seed
      (``CrossTest``), a table of its own under the main one.
    baselines: the arms the others are compared with, one per group (data
      set): under the table, each arm's difference to its group's baseline in
      the first column, with Welch's t-test over the seeds (``comparisons``).
  """
  name: str
  title: str
  claim: str
  arms: tuple[Arm, ...]
  columns: tuple[Column, ...] = ()
  main_metric: tuple[str, ...] = ("modes_captured",)
  steps: int = 10_000
  quick_steps: int = 40
  budget_note: str = ""
  evaluations: int = 20
  d_curves: bool = False
  per_seed_figure: bool = False
  train_curves: tuple[str, ...] = ()
  published: tuple[Published, ...] = ()
  scorer: str = "eval"
  images: bool = False
  settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  quick_settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  quick_arms: tuple[str, ...] = ()
  notes: tuple[str, ...] = ()
  cross_test: Optional["CrossTest"] = None
  baselines: tuple[str, ...] = ()

  def arms_to_run(self, quick: bool, only: Optional[Sequence[str]] = None
                  ) -> tuple[Arm, ...]:
    """The arms a run trains: ``only`` (``--arms``) names them, from all the
    study's arms (at quick size too: the slow tests train every arm so); else
    all, or with ``--quick`` the ``quick_arms``."""
    if only:
      return tuple(a for a in self.arms if a.label in only)
    if quick and self.quick_arms:
      labels = [a.label for a in self.arms]
      unknown = [q for q in self.quick_arms if q not in labels]
      if unknown:
        raise ValueError(f"study {self.name!r}: quick_arms {unknown} are not among its "
                         f"arms; the arms are {labels}")
      return tuple(a for a in self.arms if a.label in self.quick_arms)
    return self.arms


MODES = Column("modes captured", ("modes_captured", "components_captured"))
HIGH_QUALITY = Column("high-quality share", ("high_quality_share",))
KL = Column("KL of the mode histogram", ("kl_mode_histogram", "kl_component_histogram"))
ENERGY = Column("energy distance", ("energy_distance",))
# The 1000-mode sets' coverage over confident reads only (every digit read with
# probability >= 0.9): blurry samples still get an argmax mode.
CONFIDENT_MODES = Column("modes covered, confident reads", ("modes_covered_confident",))
CONFIDENT_SHARE = Column("share of confident reads", ("confident_share",))
PACGAN_COLUMNS = (Column("modes (PacGAN protocol)", ("pacgan_modes",)),
                  Column("modes, mean over the last quarter of evaluations",
                         derived="pacgan_modes_late"),
                  Column("high quality (share, PacGAN protocol)", ("pacgan_high_quality",)),
                  Column("KL (PacGAN protocol)", ("pacgan_kl",)))
PACGAN_TABLE_1 = "PacGAN (Lin et al. 2018), Table 1: mean +- SE over 10 trials"
STACKED_SOURCE = ("PacGAN (Lin et al. 2018), stacked-MNIST table in the VEEGAN setting "
                  "(METHODS.md §6)")


def _betagan_arms() -> tuple[Arm, ...]:
  arms = []
  for data, beta_config, vanilla in (
      ("mixture_3d_5", "configs/betagan_mixture_3d.py:5", "configs/vanilla_mixture_3d.py:5"),
      ("mixture_3d_10", "configs/betagan_mixture_3d.py:10", "configs/vanilla_mixture_3d.py:10"),
      ("cube_frames", "configs/betagan_cube_frames.py", "configs/vanilla_mixture_3d.py:cubes")):
    arms += [
        Arm(f"betagan_{data}", beta_config, group=data,
            note="beta-GAN: heated data, uniform -> 20 levels -> data; log(1 - D) generator"),
        Arm(f"vanilla_ns_{data}", vanilla, group=data,
            note="vanilla GAN, non-saturating -log D generator"),
        Arm(f"vanilla_mm_{data}", vanilla, {"game.loss": "minimax"}, group=data,
            note="vanilla GAN, saturating log(1 - D) generator"),
    ]
  return tuple(arms)


def _pacgan_arms() -> tuple[Arm, ...]:
  notes = {"gan": "vanilla GAN", "wgan_gp": "WGAN-GP", "ct_gan": "CT-GAN",
           "roth": "Roth et al.'s JS regularizer, gamma 0.1", "betagan": "beta-GAN",
           "instance_noise": "instance noise 0.5 -> 0", "sgld": "SGLD discriminator",
           "reg_gan": "Reg-GAN (Che et al.)"}
  return tuple(Arm(f"{method}_{data}", f"configs/pacgan_2d.py:{data},{method}", group=data,
                   note=note)
               for data in ("ring_8", "grid_25") for method, note in notes.items())


def _sgld(**options):
  # As configs/sgld_discriminator.py:sgld: the posterior of D for N = 10^4
  # examples, a Gaussian prior as weight decay.
  return common.optimizer("sgld", learning_rate=1e-3, data_size=10_000, weight_decay=1e-4,
                          **options)


def arm_groups(arm: Arm, seeds: Sequence[int]) -> list[tuple[Optional[float], list[int]]]:
  """The arm's groups of replicas, each ``(value, run seeds)``: one group
  ``(None, seeds)``, or with a sweep one per value (``Sweep``: the value-``k``
  group has run seeds ``k*S + seed`` for the ``S`` study seeds)."""
  if arm.sweep is None:
    return [(None, list(seeds))]
  n = len(seeds)
  return [(float(v), [k * n + s for s in seeds]) for k, v in enumerate(arm.sweep.values)]


def group_label(arm: Arm, value: Optional[float]) -> str:
  """The table row and figure label of one group of an arm's replicas."""
  if value is None:
    return arm.label
  return f"{arm.label}, {arm.sweep.label}={seeds_lib.value_label(value)}"


STUDIES: dict[str, Study] = {}


def _register(study: Study) -> Study:
  swept = [a.label for a in study.arms if a.sweep is not None]
  if study.cross_test is not None and {study.cross_test.a, study.cross_test.b} & set(swept):
    raise ValueError(f"study {study.name!r}: its cross-test pairs the arms' replicas seed by "
                     f"seed, and arm(s) {', '.join(swept)} sweep a field; cross-test arms "
                     "without a sweep")
  if swept and study.scorer != "eval":
    # The other scorers take each seed's final state (probes, samples, a
    # cross-test of paired arms), not a group of replicas per value.
    raise ValueError(f"study {study.name!r}: arm(s) {', '.join(swept)} sweep a field, which "
                     f"only studies scored by their final evaluation ('eval') can; this one "
                     f"is scored by {study.scorer!r}")
  study.arms_to_run(quick=True)  # quick_arms name arms of the study
  by_row = {group_label(a, v): a for a in study.arms for v, _ in arm_groups(a, [0])}
  unknown = [b for b in study.baselines if b not in by_row]
  groups = [by_row[b].group for b in study.baselines if b in by_row]
  if unknown or len(set(groups)) != len(groups):
    raise ValueError(f"study {study.name!r}: baselines must be rows of the study (an arm, "
                     f"or a swept arm's value), one per group; got {list(study.baselines)} "
                     f"(unknown: {unknown}; the rows: {', '.join(by_row)})")
  STUDIES[study.name] = study
  return study


_register(Study(
    name="betagan",
    baselines=("vanilla_ns_mixture_3d_5", "vanilla_ns_mixture_3d_10", "vanilla_ns_cube_frames"),
    title="beta-GAN vs vanilla GAN on the 3-D mixtures and the nested cube frames",
    claim=("beta-GAN covers all modes consistently, the vanilla GAN usually one or none, at "
           "equal numbers of gradient evaluations (Mehrjou et al. 2017, Figs. 2-3; METHODS §3)."
           " The easy 5-mode mixture may not separate the methods."),
    arms=_betagan_arms(),
    columns=(MODES, HIGH_QUALITY, KL,
             Column("segment coverage (cube frames)", ("segment_coverage",)), ENERGY),
    main_metric=("modes_captured", "components_captured"),
    steps=14_000, quick_steps=40,
    budget_note=("configs/betagan_mixture_3d.py: 2,000 uniform steps, 20 levels of 400, "
                 "4,000 data steps; the vanilla arms train as many iterations at the same batch"),
    d_curves=True,
    quick_arms=("betagan_mixture_3d_5", "vanilla_mm_cube_frames"),
    notes=("On the cube frames the modes are the two frames (components_captured of 2) and the "
           "KL is over the frames.",)))

_register(Study(
    name="pacgan",
    baselines=("gan_ring_8", "gan_grid_25"),
    title="The 2-D mode-collapse benchmark under PacGAN's protocol (ring of 8, grid of 25)",
    claim=("The papers' stabilizers on the standard benchmark, scored as PacGAN scores it "
           "(2,500 samples, a mode captured by one sample within 3 std), beside PacGAN's "
           "Table 1 (METHODS §6)."),
    arms=_pacgan_arms(),
    columns=PACGAN_COLUMNS + (HIGH_QUALITY, ENERGY),
    main_metric=("pacgan_modes",),
    # Seeds of one arm split (all modes in one, none in another): the per-seed panels show it.
    per_seed_figure=True,
    steps=400_000, quick_steps=40,
    budget_note="PacGAN: 400 epochs of 100,000 points at batch 100",
    published=(
        Published("gan_ring_8", "6.3 +- 0.5 modes, 98.2% high quality", PACGAN_TABLE_1),
        Published("PacGAN2 (ring_8)", "7.9 +- 0.1 modes", PACGAN_TABLE_1),
        Published("gan_grid_25", "17.3 +- 0.8 modes, 94.8% high quality", PACGAN_TABLE_1),
        Published("PacGAN4 (grid_25)", "24.8 +- 0.2 modes", PACGAN_TABLE_1)),
    quick_arms=("gan_ring_8", "reg_gan_grid_25"),
    notes=("Networks and optimizer of configs/pacgan_2d.py for every arm; each method keeps "
           "its own loss, penalty, n_critic and perturbation.",)))

_register(Study(
    name="che",
    baselines=("gan",),
    title="Che et al.'s 6-Gaussian circle: GAN vs mode-regularized GAN (Appendix C)",
    claim=("The GAN oscillates among the modes; Reg-GAN covers all six (Che et al. 2017, "
           "Appendix C; METHODS §5)."),
    arms=(Arm("gan", "configs/che_circle.py:gan", note="GAN baseline"),
          Arm("reg_gan", "configs/che_circle.py:reg",
              note="Reg-GAN, lambda1 = lambda2 = 0.005")),
    columns=(MODES, HIGH_QUALITY, KL, ENERGY),
    steps=30_000, quick_steps=40, budget_note="configs/che_circle.py",
    d_curves=True, per_seed_figure=True))

_ROTH_GAMMA = 0.1
# Roth's annealed weight, gamma_0 -> gamma_0 / 100 over the run (the budget
# scales total_steps with --steps); the roth and roth_gamma studies' arms.
_ROTH_ANNEALED = {"game.penalty.weight": {"name": "gamma_decay", "gamma_0": _ROTH_GAMMA,
                                         "total_steps": 100_000, "decay": 0.01}}
_ROTH_COLUMNS = (MODES, HIGH_QUALITY, KL, ENERGY,
                 Column("collapse step", derived="collapse_step"),
                 Column("fewest modes, second half", derived="fewest_modes_late"))
_ROTH_BUDGET = "Roth et al.'s code: 100k generator steps"
_register(Study(
    name="roth",
    baselines=("unreg_minimax",),
    title="Roth et al.'s 3-D submanifold: the JS regularizer against collapse",
    claim=("Unregularized training collapses after ~50k steps in every run; regularized "
           "(gamma = 0.1) trains past 200k steps without collapse, stronger still with 5 D "
           "steps per G step (Roth et al. 2017; METHODS §2)."),
    arms=(Arm("unreg_minimax", "configs/roth_submanifold.py:unreg",
              note="unregularized, saturating log(1 - D) generator (the authors' code)"),
          Arm("unreg_ns", "configs/roth_submanifold.py:unreg",
              {"game.loss": "non_saturating"},
              note="unregularized, non-saturating -log D generator"),
          Arm("reg", "configs/roth_submanifold.py:reg", note="gamma = 0.1 constant"),
          Arm("reg_annealed", "configs/roth_submanifold.py:reg",
              _ROTH_ANNEALED,
              note="gamma annealed 0.1 -> 0.001 over the run"),
          Arm("reg_5d", "configs/roth_submanifold.py:reg_5d",
              note="gamma = 0.1, 5 D steps per G step"),
          Arm("noise_matched", "configs/roth_submanifold.py:unreg",
              {"game.perturbation.name": "instance_noise",
               "game.perturbation.level": math.sqrt(_ROTH_GAMMA)},
              note=("unregularized, explicit instance noise of matched scale: std "
                    "sqrt(gamma) = 0.316 on both D inputs"))),
    columns=_ROTH_COLUMNS, steps=100_000, quick_steps=40, budget_note=_ROTH_BUDGET,
    per_seed_figure=True,
    published=(
        Published("unreg_minimax", "collapse after ~50k steps in every run (3 runs)",
                  "Roth et al. 2017 (METHODS §2)"),
        Published("reg", "no collapse through 200k steps", "Roth et al. 2017 (METHODS §2)")),
    quick_arms=("unreg_minimax", "reg_annealed"),
    notes=("The regularized arms keep the authors' code's saturating generator loss "
           "(configs/roth_submanifold.py).",
           "The matched noise: the regularizer is the first-order effect of convolving both "
           "distributions with N(0, gamma I), i.e. noise of std sqrt(gamma).")))

# gamma = 0 is the unregularized game (the penalty is computed and weighted 0).
_ROTH_GAMMAS = (0.0, 0.01, 0.1, 1.0)
_register(Study(
    name="roth_gamma",
    baselines=("minimax, gamma=0",),
    title="Roth et al.'s 3-D submanifold: the regularizer over a range of gamma, in one program",
    claim=("The regularizer stabilizes training across a broad range of its strength gamma, "
           "where the unregularized game (gamma = 0) collapses (Roth et al. 2017, Sec. 4; "
           "METHODS §2)."),
    arms=(Arm("minimax", "configs/roth_submanifold.py:reg",
              sweep=Sweep("game.penalty.weight", _ROTH_GAMMAS, "gamma"),
              note="the authors' saturating log(1 - D) generator, gamma constant"),
          # The study `roth`'s annealed arm from three starting strengths: does
          # a larger gamma_0 keep the modes that gamma_0 = 0.1 loses as it decays?
          Arm("annealed", "configs/roth_submanifold.py:reg",
              _ROTH_ANNEALED,
              sweep=Sweep("game.penalty.weight.gamma_0", _ROTH_GAMMAS[1:], "gamma_0"),
              note="gamma annealed from gamma_0 to gamma_0 / 100 over the run")),
    columns=_ROTH_COLUMNS, steps=100_000, quick_steps=40, budget_note=_ROTH_BUDGET,
    per_seed_figure=True, quick_arms=("minimax",),
    notes=("Every value of gamma is a group of seeds of one compiled program "
           "(train.sweep_field): the groups share the program, not their seeds.",)))

_LANGEVIN_DATA = "grid_25"
_register(Study(
    name="langevin",
    baselines=("standard_d", "wgan_gp"),
    title="Langevin-trained discriminators on the grid of 25; WGAN-GP with an SGLD critic",
    claim=("A discriminator sampled by (covariance-controlled) SGLD, the generator trained "
           "against its last samples, covers more modes than an Adam-trained one; the "
           "injected noise of cc-SGLD drops as training settles (the paper's Fig. 1d; "
           "METHODS §4)."),
    arms=(Arm("standard_d", f"configs/sgld_discriminator.py:sgld,{_LANGEVIN_DATA}",
              {"optim.discriminator": common.optimizer("adam", learning_rate=1e-3, b1=0.5),
               "game.ensemble": 0},
              group="JS", note="Adam-trained D (the toy default Adam(1e-3, b1 = 0.5))"),
          Arm("sgld_d", f"configs/sgld_discriminator.py:sgld,{_LANGEVIN_DATA}", group="JS",
              note="SGLD D, generator against its last 5 samples"),
          Arm("cc_sgld_d", f"configs/sgld_discriminator.py:cc_sgld,{_LANGEVIN_DATA}",
              group="JS", note="covariance-controlled SGLD D, last 5 samples"),
          Arm("wgan_gp", f"configs/wgan_2d.py:gp,{_LANGEVIN_DATA}", group="Wasserstein",
              note="WGAN-GP, Adam critic"),
          Arm("wgan_gp_sgld", f"configs/wgan_2d.py:gp,{_LANGEVIN_DATA}",
              {"optim.discriminator": _sgld(), "game.ensemble": 5}, group="Wasserstein",
              note="WGAN-GP with an SGLD critic (settings of sgld_discriminator.py:sgld)")),
    columns=(MODES, HIGH_QUALITY, KL, ENERGY,
             Column("first step with all modes", derived="all_modes_step"),
             Column("most modes at any evaluation", derived="most_modes"),
             Column("mean modes over evaluations", derived="mean_modes")),
    steps=20_000, quick_steps=40, budget_note="configs/sgld_discriminator.py, wgan_2d.py",
    train_curves=("d_noise_std",), per_seed_figure=True,
    quick_arms=("standard_d", "cc_sgld_d")))

# experiments/probe.py's defaults; the probe's D trains at the arm's batch size.
_GRADIENT_PROBE = {"sigmas": (0.0, 0.1, 0.5), "fractions": (1 / 25, 10 / 25, 1.0),
                   "iterations": 2000, "every": 50, "num_batches": 10, "learning_rate": 1e-3}
_register(Study(
    name="arjovsky",
    title="Arjovsky & Bottou's gradient diagnostics: a frozen generator, D trained from scratch",
    claim=("As a discriminator trained against a frozen generator approaches optimality, the "
           "gradient of the minimax generator loss log(1 - D) vanishes while that of -log D "
           "does not (it grows, with large variance); instance noise keeps gradients alive "
           "(Arjovsky & Bottou 2017, Figs. 2-3 and Cor. 3.2; published as figures, no table)."),
    arms=(Arm("toy_ring_8", "configs/instance_noise_2d.py:ring_8",
              {"game.perturbation.name": "none", "game.perturbation.level": 0.0,
               "game.loss": "non_saturating"},
              note="GAN on the ring of 8 (non-saturating loss, no noise in training)"),
          Arm("mnist_dcgan", "configs/dcgan_mnist.py:mnist", note="DCGAN-28 on MNIST")),
    main_metric=(),
    steps=20_000, quick_steps=8,
    budget_note=("the generators are probed after 1/25, 10/25 and 25/25 of training, as the "
                 "paper's 1, 10 and 25 epochs"),
    scorer="gradients", images=True,
    quick_arms=("mnist_dcgan",),
    settings=_GRADIENT_PROBE,
    quick_settings={**_GRADIENT_PROBE, "fractions": (0.5, 1.0), "iterations": 4, "every": 2,
                    "num_batches": 2},
    notes=("Probe (gan_jax.metrics.probes.generator_gradient_diagnostics): the arm's generator "
           "frozen at the given step, a fresh discriminator of its architecture trained by "
           "Adam; gradient norms over all generator parameters, averaged over the probe's "
           "latent batches; mean +- SE over the arm's seeds.",)))

_STACKED = _register(Study(
    name="stacked_mnist",
    baselines=("dcgan",),
    title="Stacked MNIST (1000 modes): DCGAN and the papers' stabilizers",
    claim=("Mode coverage of 1000 equally likely modes by 26,000 samples and the KL of their "
           "histogram to the uniform, beside the published VEEGAN-setting numbers."),
    arms=(Arm("dcgan", "configs/stacked_mnist.py:dcgan", note="DCGAN-28"),
          Arm("reg_dcgan", "configs/stacked_mnist.py:reg",
              note="Reg-DCGAN, lambda1 = 0.2, lambda2 = 0.4"),
          Arm("roth_dcgan", "configs/stacked_mnist.py:roth",
              note="DCGAN-28 with Roth et al.'s JS regularizer, gamma 2.0 annealed (decay 0.01)"),
          Arm("instance_noise_dcgan", "configs/stacked_mnist.py:instance_noise",
              note="DCGAN-28 with instance noise, std 0.5 -> 0 over the first 3/4"),
          Arm("wgan_gp_dcgan", "configs/stacked_mnist.py:wgan_gp",
              note="WGAN-GP on the DCGAN-28 players (critic without batch norm)"),
          Arm("betagan_dcgan", "configs/stacked_mnist.py:betagan",
              note="beta-GAN on the DCGAN-28 players, its schedule scaled to the run"),
          # Not the paper's game: its saturating log(1 - D) generator loss
          # vanishes against a sure discriminator (Arjovsky & Bottou), which is
          # how the arm above fails at a CPU budget; this arm asks whether the
          # annealed target helps once the generator's gradient survives.
          Arm("betagan_ns_dcgan", "configs/stacked_mnist.py:betagan",
              {"game.loss": "non_saturating"},
              note=("beta-GAN on the DCGAN-28 players with the non-saturating generator "
                    "loss -log D (a variant, not its paper's game)")),
          Arm("sgld_dcgan", "configs/stacked_mnist.py:sgld",
              note="DCGAN-28 with an SGLD discriminator (last 5 samples)")),
    columns=(Column("modes covered (of 1000)", ("modes_covered",)),
             Column("KL of the mode histogram to the uniform", ("kl_mode_histogram",)),
             CONFIDENT_MODES, CONFIDENT_SHARE),
    main_metric=(),
    steps=20_000, quick_steps=24,  # beta-GAN arm: a uniform stage, 20 levels and data
    budget_note="the image default of configs/images.py (a CPU budget, far below the papers')",
    scorer="thousand_modes", images=True,
    settings={"num_samples": 26_000, "classifier_examples": 50_000, "classifier_steps": 3000},
    quick_settings={"num_samples": 256, "classifier_examples": 64, "classifier_steps": 2},
    quick_arms=("dcgan",),
    published=(Published("dcgan", "99 modes, KL 3.40", STACKED_SOURCE),
               Published("VEEGAN", "150 modes, KL 2.95", STACKED_SOURCE),
               Published("PacDCGAN2", "1000 modes, KL 0.06", STACKED_SOURCE)),
    notes=("Digits are read by the project's own classifier (gan_jax.metrics.classifier), "
           "trained once per study on digit crops of real draws; its held-out accuracy is "
           "printed above the table.",)))


# Metz et al. 2017 (unrolled GANs) and PacGAN after them made stacked MNIST
# harder by shrinking the discriminator; here its width is cut to a quarter.
SMALL_D_FEATURES = 16


def _small_d(arm: Arm) -> Arm:
  return dataclasses.replace(
      arm, overrides={**arm.overrides, "model.discriminator.base_features": SMALL_D_FEATURES},
      note=f"{arm.note}; D at a quarter width ({SMALL_D_FEATURES} base features)")


_register(dataclasses.replace(
    _STACKED,
    name="stacked_mnist_small_d",
    title="Stacked MNIST (1000 modes) against a quarter-width discriminator",
    claim=("A weaker discriminator makes DCGAN drop modes of stacked MNIST (Metz et al. "
           "2017's and PacGAN's setting of a smaller D); the papers' stabilizers should "
           "keep more of the 1000 modes and a lower KL to the uniform."),
    arms=tuple(_small_d(a) for a in _STACKED.arms),
    published=(),
    notes=_STACKED.notes + (
        f"Every arm is its stacked_mnist arm with the discriminator (WGAN-GP: the critic) "
        f"at {SMALL_D_FEATURES} base features instead of 64; generator and encoder "
        "unchanged. The published small-D numbers come from other players and are not "
        "printed beside ours.",)))


_register(Study(
    name="compositional_mnist",
    baselines=("dcgan",),
    title="Compositional MNIST (1000 modes, set 1): DCGAN vs Reg-DCGAN vs MDGAN",
    claim=("The mode regularizers cut the missing modes of compositional MNIST: #Miss of "
           "DCGAN 204.7 vs Reg-DCGAN 32.1 on set 1 (Che et al. 2017, Table 2; METHODS §5)."),
    arms=(Arm("dcgan", "configs/compositional_mnist.py:dcgan,1", note="DCGAN-64"),
          Arm("reg_dcgan", "configs/compositional_mnist.py:reg,1",
              note="Reg-DCGAN, lambda1 = 0.2, lambda2 = 0.4"),
          Arm("mdgan", "configs/compositional_mnist.py:mdgan,1",
              note="MDGAN (manifold step, then diffusion step)")),
    columns=(Column("missing modes (#Miss, of 1000)", ("missing_modes",)),
             Column("modes covered (of 1000)", ("modes_covered",)),
             Column("KL of the mode histogram to the digit-set weights",
                    ("kl_mode_histogram",)),
             CONFIDENT_MODES, CONFIDENT_SHARE),
    main_metric=(),
    steps=20_000, quick_steps=8,
    budget_note=("the image default of configs/images.py; DCGAN-64 trains at about 0.5 "
                 "steps/s on the 2-core CPU, so a CPU run takes --steps"),
    scorer="thousand_modes", images=True,
    settings={"num_samples": 26_000, "classifier_examples": 50_000, "classifier_steps": 3000},
    quick_settings={"num_samples": 256, "classifier_examples": 64, "classifier_steps": 2},
    # MDGAN's two steps on DCGAN-64 cost a minute of compiling at quick size;
    # tests/test_image_games.py trains that game, and the slow set this arm.
    quick_arms=("dcgan",),
    published=(Published("dcgan", "#Miss 204.7 (set 1)", "Che et al. 2017, Table 2"),
               Published("reg_dcgan", "#Miss 32.1 (set 1)", "Che et al. 2017, Table 2")),
    notes=("Modes and KL as in stacked_mnist, with the unequal digit weights of set 1 as "
           "the reference of the KL.",)))


# An arm's row of a cross-test (filled by ``run_cross_test``).
_CROSS_COLUMNS = ("its samples taken for real by the other arm's D",
                  "the other arm's samples taken for real by its D",
                  "its samples taken for real by its own D",
                  "test data called fake by its D")
_ROTH_MNIST_GAMMA = {"name": "gamma_decay", "gamma_0": 2.0, "decay": 0.01,
                     "total_steps": 20_000}  # configs/roth_images.py's schedule
_register(Study(
    name="roth_mnist",
    title="Roth et al.'s cross-test on MNIST: a regularized against an unregularized DCGAN",
    claim=("The regularized GAN's samples fool the unregularized GAN's discriminator more "
           "often than the other way round, while both discriminators still accept the "
           "test data (Roth et al. 2017, Sec. 4, cross-testing; METHODS §2)."),
    arms=(Arm("unreg", "configs/dcgan_mnist.py:mnist", {"game.loss": "non_saturating"},
              note="DCGAN-28, non-saturating generator, no regularizer"),
          Arm("reg", "configs/dcgan_mnist.py:mnist",
              {"game.loss": "non_saturating",
               "game.penalty": common.penalty("roth_js", _ROTH_MNIST_GAMMA)},
              note="the same with Roth's JS regularizer, gamma 2.0 annealed (decay 0.01)")),
    columns=tuple(Column(name) for name in _CROSS_COLUMNS),
    main_metric=(),
    steps=20_000, quick_steps=8,
    budget_note="the image default of configs/images.py (a CPU budget)",
    images=True, d_curves=True,
    scorer="cross_test", cross_test=CrossTest("reg", "unreg"),
    notes=("Cross-test samples: 10,000 per arm and seed; held-out data: the test split.",)))


# ------------------------------------------------------- per-seed quantities
def _collapse_step(steps: Sequence[int], values: Sequence[float]) -> float:
  """The collapse step of one seed (module docstring), NaN if it did not collapse."""
  v = np.asarray(values, np.float64)
  if v.size == 0 or not np.isfinite(v).any():
    return float("nan")
  best = np.nanmax(v)
  below = ~(v >= best)  # NaN counts as below
  if below[-1]:
    # The last index from which every later evaluation is below the best.
    start = len(v) - 1
    while start > 0 and below[start - 1]:
      start -= 1
    return float(steps[start])
  return float("nan")


def _all_modes_step(steps: Sequence[int], values: Sequence[float], n_modes: float) -> float:
  """The first evaluation step with every mode captured, NaN if never."""
  for s, v in zip(steps, values):
    if v is not None and np.isfinite(v) and v >= n_modes:
      return float(s)
  return float("nan")


def _fewest_late(steps: Sequence[int], values: Sequence[float]) -> float:
  """The fewest modes at an evaluation after the first half of the run (NaN as
  none: a seed frozen at a NaN has no value to report)."""
  v = np.asarray(values, np.float64)
  if v.size == 0 or not np.isfinite(v[-1]):
    return float("nan")
  late = v[np.asarray(steps, np.float64) > steps[-1] / 2]
  return float(np.nanmin(late)) if late.size else float("nan")


def _late_mean(steps: Sequence[int], values: Sequence[float], fraction: float = 0.25) -> float:
  """The mean over the evaluations in the last ``fraction`` of the run (steps
  after ``(1 - fraction) * last step``), NaN as none; NaN if the seed has no
  final value (frozen at a NaN).

  A final evaluation is one draw of an oscillating run (a toy GAN moves from
  mode set to mode set between evaluations); this is its level late in training.
  """
  v = np.asarray(values, np.float64)
  if v.size == 0 or not np.isfinite(v[-1]):
    return float("nan")
  late = v[np.asarray(steps, np.float64) > (1.0 - fraction) * steps[-1]]
  return float(np.nanmean(late))  # the final value is finite and in the window


def _most(values: Sequence[float]) -> float:
  """The most modes at any evaluation (NaN if no evaluation had values)."""
  v = np.asarray(values, np.float64)
  return float(np.nanmax(v)) if np.isfinite(v).any() else float("nan")


def _mean_over_evaluations(values: Sequence[float]) -> float:
  """The average over the evaluations with a value (NaN if none)."""
  v = np.asarray(values, np.float64)
  return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


def _modes(records: list[dict]) -> tuple[list[int], list[float]]:
  """A seed's evaluation steps and its modes captured at each (NaN: none)."""
  return [r["step"] for r in records], [_nan(r.get("modes_captured")) for r in records]


DERIVED: dict[str, Callable[[list[dict]], float]] = {
    # A seed frozen at a NaN (no final value) has no collapse step to report.
    "collapse_step": lambda records: _collapse_step(*_modes(records))
    if records and records[-1].get("modes_captured") is not None else float("nan"),
    "all_modes_step": lambda records: _all_modes_step(
        *_modes(records),
        next((float(r["n_modes"]) for r in records if r.get("n_modes") is not None),
             float("nan"))),
    "fewest_modes_late": lambda records: _fewest_late(*_modes(records)),
    "most_modes": lambda records: _most(_modes(records)[1]),
    "mean_modes": lambda records: _mean_over_evaluations(_modes(records)[1]),
    "pacgan_modes_late": lambda records: _late_mean(
        [r["step"] for r in records], [_nan(r.get("pacgan_modes")) for r in records]),
}


def _nan(value) -> float:
  return float("nan") if value is None else float(value)


def read_jsonl(path: str) -> list[dict]:
  """The records of a JSON-lines file (read only; a missing file has none)."""
  if not os.path.exists(path):
    return []
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


def per_seed_records(path: str) -> dict[int, list[dict]]:
  """The per-seed records of a run's ``eval.jsonl`` or ``metrics.jsonl``, by run seed.

  A run of one seed writes records without a ``seed`` field: they are seed 0's
  (every study arm has ``config.seed = 0``).
  """
  out: dict[int, list[dict]] = {}
  for r in read_jsonl(path):
    seed = r.get("seed", 0)
    if seed == "mean":
      continue
    out.setdefault(int(seed), []).append(r)
  for records in out.values():
    records.sort(key=lambda r: r["step"])
  return out


def mean_records(path: str, sweep: Optional[Sweep] = None,
                 value: Optional[float] = None) -> list[dict]:
  """The records figures draw: the mean records of a run of several seeds, else
  all; of a swept run, those of one ``value`` of its ``sweep``."""
  records = read_jsonl(path)
  means = [r for r in records if r.get("seed") == "mean"]
  if sweep is not None:
    means = [r for r in means if r.get(sweep.field) == value]
  return sorted(means or [r for r in records if "seed" not in r], key=lambda r: r["step"])


def _cell(values: Sequence[float]) -> dict[str, Any]:
  """Mean, SE and the per-seed values of one table cell (NaN: undefined for that seed)."""
  v = np.asarray([float("nan") if x is None else x for x in values], np.float64)
  mean, se = seeds_lib.aggregate(v)
  return {"mean": _json_float(mean), "se": _json_float(se),
          "n": int(np.isfinite(v).sum()), "per_seed": [_json_float(x) for x in v]}


def _json_float(x) -> Optional[float]:
  x = float(x)
  return x if math.isfinite(x) else None


# ---------------------------------------------------------- building configs
def load_config(spec: str) -> ml_collections.ConfigDict:
  """``get_config(variant)`` of ``'configs/<file>.py[:<variant>]'`` (``config_registry``)."""
  return config_registry.get_config(spec)


def apply_overrides(config: ml_collections.ConfigDict, overrides: Mapping[str, Any]) -> None:
  """Sets each dotted path of ``overrides``; an unknown path is an error naming it."""
  for path, value in overrides.items():
    node, parts = config, path.split(".")
    for i, part in enumerate(parts[:-1]):
      if part not in node:
        raise StudyError(f"override {path!r}: no field {'.'.join(parts[:i + 1])!r}; "
                         f"{'.'.join(parts[:i]) or 'config'} has {', '.join(sorted(node))}")
      node = node[part]
    if parts[-1] not in node:
      raise StudyError(f"override {path!r}: no field {parts[-1]!r} in "
                       f"{'.'.join(parts[:-1]) or 'config'}; it has {', '.join(sorted(node))}")
    # A copy: the arm's own value must not change when the budget scales this
    # config's schedules (the same arm is built again on resume and in tests).
    config_registry.set_field(config, path, copy.deepcopy(value))


_STEP_KEYS = ("uniform_steps", "steps_per_level", "transition_steps", "begin_step",
              "total_steps")
_STEP_SCHEDULES = ("beta", "linear", "exponential", "cosine", "gamma_decay")


def _scale_schedules(node, factor: float) -> None:
  """Scales the step lengths of every schedule in a config by ``factor``."""
  for key in list(node.keys()):
    value = node[key]
    if not isinstance(value, ml_collections.ConfigDict):
      continue
    if value.get("name") in _STEP_SCHEDULES:
      for k in _STEP_KEYS:
        if k in value and isinstance(value[k], int):
          minimum = 0 if k == "begin_step" else 1
          value[k] = max(minimum, int(value[k] * factor))
    _scale_schedules(value, factor)


def _largest_divisor(n: int, at_most: int) -> int:
  return max(d for d in range(1, min(n, at_most) + 1) if n % d == 0)


def _shrink(c: ml_collections.ConfigDict) -> None:
  """The ``--quick`` models and evaluation (module docstring)."""
  images = "base_features" in c.model.generator
  # Image players keep their widths' ratios to the generator's (a study of a
  # narrower discriminator stays one at quick size).
  full = int(c.model.generator.base_features) if images else 0
  for name in ("generator", "discriminator", "encoder"):
    spec = c.model.get(name, None)
    if spec is None:
      continue
    if "widths" in spec:
      spec.widths = (QUICK_WIDTH,) * len(spec.widths)
    if "base_features" in spec:
      spec.base_features = (max(1, round(QUICK_BASE_FEATURES * int(spec.base_features) / full))
                            if full else QUICK_BASE_FEATURES)
  c.train.batch_size = QUICK_IMAGE_BATCH if images else QUICK_BATCH
  c.train.eval_samples = QUICK_EVAL_SAMPLES
  c.train.num_devices = 1
  c.train.progress = False
  # Seeds vmapped: one copy of the step to compile. Unrolled image seeds (the
  # full studies') compile one copy per seed, minutes per quick arm on a
  # 2-core CPU; tests/test_seeds.py tests that path on its own.
  c.train.seed_batching = "vmap"


def arm_config(study: Study, arm: Arm, *, steps: int, num_seeds: int, quick: bool,
               image_npz: str) -> ml_collections.ConfigDict:
  """The config an arm trains: its file, overrides, the budget, seeds, quick."""
  c = load_config(arm.config)
  apply_overrides(c, arm.overrides)
  own = int(c.train.num_steps)
  if steps != own:
    _scale_schedules(c, steps / own)
  c.train.num_steps = steps
  # --quick evaluates twice: calls of at most half the run.
  spc = _largest_divisor(steps, min(int(c.train.steps_per_call),
                                    max(1, steps // 2) if quick else steps))
  c.train.steps_per_call = spc
  if int(c.train.get("unroll", 1)) > spc:
    c.train.unroll = spc
  evaluations = 2 if quick else study.evaluations
  every = spc * max(1, round(steps / evaluations / spc))
  c.train.eval_every = every
  c.train.checkpoint_every = steps if quick else every
  c.train.log_every = spc * max(1, round(every / 4 / spc))
  c.train.plot_every = steps
  c.train.num_seeds = num_seeds
  if arm.sweep is not None:
    c.train.sweep_field = arm.sweep.field
    c.train.sweep_values = tuple(float(v) for v in arm.sweep.values)
  # The tables read replica r as run seed r (``arm_groups``).
  if int(c.seed) != 0:
    raise StudyError(f"arm {arm.label!r}: config.seed is {c.seed}; a study's arms run seeds "
                     "0, 1, ... (set config.seed = 0 in its config or drop the override)")
  if arm.sweep is not None:
    validate.check_sweep(c)  # before a study folder is written
  # A seed that diverges is a result, not the end of its arm's other replicas
  # (in a sweep, of the other values' too).
  c.train.nonfinite_seeds = "freeze" if len(seeds_lib.seed_list(c)) > 1 else "stop"
  if quick:
    _shrink(c)
  c.train.figures = not quick
  if "npz_path" in c.data and image_npz:
    c.data.npz_path = image_npz
  return c


def _write_quick_images(path: str, n: int = 128, seed: int = 0) -> str:
  """A small stand-in for MNIST: blobs whose brightness encodes the digit label."""
  rng = np.random.default_rng(seed)
  y = rng.integers(0, 10, n).astype(np.uint8)
  x = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
  x[:, 6:22, 8:20] += (y * 21).astype(np.uint8)[:, None, None]
  tmp = path + ".tmp.npz"
  np.savez(tmp, x_train=x, y_train=y, x_test=x[:16], y_test=y[:16])
  os.replace(tmp, path)
  return path


# ------------------------------------------------------------------ settings
def settings_of(name: str, *, quick: bool, num_seeds: Optional[int], steps: Optional[int],
                mnist_npz: str, arms: Optional[Sequence[str]] = None) -> dict[str, Any]:
  """What defines a study's results (its workdir holds one setting)."""
  if name not in STUDIES:
    raise StudyError(f"unknown study {name!r}{errors.did_you_mean(str(name), STUDIES)}; "
                     f"valid: {', '.join(STUDIES)}")
  study = STUDIES[name]
  seeds = num_seeds if num_seeds is not None else (QUICK_SEEDS if quick else DEFAULT_SEEDS)
  if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
    raise StudyError(f"--num_seeds must be a positive integer; got {num_seeds!r}")
  if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
    raise StudyError(f"--steps must be a positive integer; got {steps!r}")
  if mnist_npz and not study.images:
    raise StudyError(f"--mnist_npz is for the image studies "
                     f"({', '.join(n for n, s in STUDIES.items() if s.images)}); study "
                     f"{name!r} trains on toy data")
  if mnist_npz and not os.path.isfile(mnist_npz):
    raise StudyError(f"--mnist_npz={mnist_npz!r}: no such file (a .npz with x_train, "
                     "y_train, x_test, y_test)")
  out = {"study": name, "quick": bool(quick), "num_seeds": seeds, "steps": steps,
         "mnist_npz": os.path.abspath(mnist_npz) if mnist_npz else ""}
  if arms:
    # A part of the study (a CPU budget that cannot run every arm): the table
    # says which; the selection is part of the settings.
    valid = [a.label for a in study.arms]
    unknown = [a for a in arms if a not in valid]
    if unknown:
      raise StudyError(f"--arms: unknown arm(s) {', '.join(map(repr, unknown))} of study "
                       f"{name!r}{errors.did_you_mean(str(unknown[0]), valid)}; valid: "
                       f"{', '.join(valid)}")
    out["arms"] = [a for a in valid if a in arms]
  return out


def command_of(settings: Mapping[str, Any], workdir: str) -> str:
  """The command that makes (or resumes) a study of these settings."""
  parts = ["python", "-m", "experiments.study", f"--study={settings['study']}",
           f"--workdir={workdir}"]
  if settings["quick"]:
    parts.append("--quick")
  parts.append(f"--num_seeds={settings['num_seeds']}")
  if settings["steps"] is not None:
    parts.append(f"--steps={settings['steps']}")
  if settings["mnist_npz"]:
    parts.append(f"--mnist_npz={settings['mnist_npz']}")
  arms = settings.get("arms")
  if arms and list(arms) != arm_labels({**settings, "arms": None}):
    parts.append(f"--arms={','.join(arms)}")
  return " ".join(shlex.quote(p) for p in parts)


def budget_of(study: Study, settings: Mapping[str, Any]) -> int:
  """Every arm's ``train.num_steps`` in a study of these settings."""
  if settings["steps"] is not None:
    return int(settings["steps"])
  return study.quick_steps if settings["quick"] else study.steps


def arm_labels(settings: Mapping[str, Any]) -> list[str]:
  """The labels of the arms a study of these settings holds, in the study's order."""
  study = STUDIES[settings["study"]]
  return [a.label for a in study.arms_to_run(settings["quick"], settings.get("arms"))]


def grown_settings(saved: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
  """The settings of a study grown by the arms of ``settings``: the saved
  settings with the union of both arm selections (in the study's order)."""
  study = STUDIES[saved["study"]]
  have, want = set(arm_labels(saved)), set(arm_labels(settings))
  return {**saved, "arms": [a.label for a in study.arms if a.label in have | want]}


def pinned_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
  """``settings`` with its arms named: a workdir's ``study.json`` holds the arms
  it was made with, not "the study's default", which grows as arms are added
  to the study. (A ``study.json`` without an ``arms`` entry, from an older
  version, is read as this version's default selection.)"""
  return {**settings, "arms": arm_labels(settings)}


@contextlib.contextmanager
def _folder_lock(folder: str):
  """An exclusive ``flock`` on a folder for the block (blocking; none off POSIX)."""
  if fcntl is None:
    yield
    return
  fd = os.open(folder, os.O_RDONLY)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX)
    yield
  finally:
    os.close(fd)  # closing drops the lock


def claim_workdir(workdir: str, settings: dict[str, Any],
                  check_arms: Callable[[], None] = lambda: None) -> dict[str, Any]:
  """Checks the study's workdir and records its settings; returns ``study.json``.

  ``check_arms`` (raising what it refuses) runs once the settings are accepted
  and before anything is written: ``run_study`` checks the named arms' folders.

  A workdir holding the study with the same settings but other arms (``--arms``)
  grows: its settings take the union of the arms, its ``command`` becomes the
  one that makes them all (the earlier commands are kept under
  ``earlier_commands``), and its table covers every finished arm. A CPU budget
  can so run a study arm by arm into one table. ``machine`` stays the machine
  the study was made on (each arm's wall time is its own sitting's).

  Raises:
    StudyError: the workdir is a file, holds a study of other settings, or holds
      files but no study (nothing is changed).
  """
  path = os.path.join(workdir, SETTINGS_FILE)
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise StudyError(f"workdir {workdir!r} is a file, not a folder; nothing was changed")
  made = not os.path.exists(workdir)
  os.makedirs(workdir, exist_ok=True)
  # Two runs may make or grow one study at once (an arm per core): the read,
  # the comparison and the write of study.json are one step under a lock, on
  # the workdir's folder itself (a lock file would change a finished study).
  try:
    with _folder_lock(workdir):
      return _claim_locked(workdir, path, settings, check_arms)
  except StudyError:
    if made and not os.listdir(workdir):
      os.rmdir(workdir)  # refused: nothing left behind
    raise


def _claim_locked(workdir, path, settings, check_arms) -> dict[str, Any]:
  """``claim_workdir`` under the workdir's lock."""
  if os.path.exists(path):
    saved = _read_json(path)
    diffs = {k: (saved["settings"].get(k), v) for k, v in settings.items()
             if k != "arms" and saved["settings"].get(k) != v}
    if diffs:
      said = "; ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in diffs.items())
      raise StudyError(
          f"workdir {workdir!r} holds study {saved['settings'].get('study')!r} made with "
          f"other settings ({said}); nothing was changed. Rerun with the saved settings "
          f"({saved.get('command', '')}) to resume it, or choose another --workdir.")
    check_arms()
    if set(arm_labels(settings)) - set(arm_labels(saved["settings"])):
      grown = grown_settings(saved["settings"], settings)
      saved = {**saved, "settings": grown, "command": command_of(grown, workdir),
               "earlier_commands": saved.get("earlier_commands", []) + [saved["command"]]}
      workdir_lib.write_json(path, saved)
    return saved
  if os.listdir(workdir):
    raise StudyError(f"workdir {workdir!r} is not empty and holds no study (no {SETTINGS_FILE})"
                     "; refusing to write into it. Choose an empty or new --workdir.")
  check_arms()
  settings = pinned_settings(settings)
  record = {"settings": settings, "command": command_of(settings, workdir),
            "machine": loop.machine(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
  workdir_lib.write_json(path, record)
  return record


# ----------------------------------------------------------------- one arm
@dataclasses.dataclass
class ArmContext:
  """What scoring an arm needs."""
  study: Study
  arm: Arm
  config: ml_collections.ConfigDict
  workdir: str
  study_dir: str
  settings: Mapping[str, Any]
  seeds: list[int]
  log: Callable[[str], None]
  rescore: bool = False


def _read_json(path: str, default=None):
  if not os.path.exists(path):
    return default
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def _train(ctx: ArmContext, stop_after: Optional[int], record: dict) -> loop.RunResult:
  """Trains (or resumes) the arm up to ``stop_after`` (None: the end), timing it."""
  before = workdir_lib.latest_checkpoint_step(ctx.workdir) if os.path.isdir(ctx.workdir) else None
  t0 = time.time()

  def account():
    # The run's own account covers sittings that were killed (timings.jsonl
    # keeps their time to their last checkpoint); this process's clock does not.
    mine = record.get("train_seconds", 0.0) + (time.time() - t0)
    record["train_seconds"] = max(mine, _timings_total(ctx.workdir))

  try:
    result = loop.train_and_evaluate(ctx.config, ctx.workdir, stop_after=stop_after)
  except loop.NonFiniteError:
    account()
    raise
  if loop.state_step(result.state) != (before or 0):
    account()
  return result


def _timings_total(workdir: str) -> float:
  """The wall time of every sitting of a run (``timings.jsonl``), in seconds."""
  return float(sum(r.get("total", 0.0) for r in read_jsonl(os.path.join(workdir,
                                                                         "timings.jsonl"))))


def run_arm(ctx: ArmContext) -> dict[str, Any]:
  """Trains and scores one arm; returns its ``study_arm.json`` record.

  A finished arm (its record says so and its run is at the end with the same
  config) is not touched.
  """
  path = os.path.join(ctx.workdir, ARM_FILE)
  steps = int(ctx.config.train.num_steps)
  config_dict = loop.config_to_dict(ctx.config)
  record = _read_json(path, {})
  scored_in = None  # with --rescore: the seconds of the arm's first scoring
  if os.path.isdir(ctx.workdir):
    state = workdir_lib.check(ctx.workdir, config_dict)  # refuses another run's folder
    if _done(record, state, ctx.config):
      if ctx.rescore and "scores" in record:
        # The old scores stay in the record, beside the new ones; the arm's wall
        # time stays that of its first scoring (the rescoring's is its own field).
        ctx.log(f"{ctx.arm.label}: scoring its final samples again (--rescore)")
        record.setdefault("previous_scores", []).append({"scores": record.pop("scores")})
        scored_in = record.get("scoring_seconds", 0.0)
      elif not _refreeze(record, ctx.config):
        return record
      else:
        # Stopped by one seed before seeds could be frozen: the others go on.
        ctx.log(f"{ctx.arm.label}: resuming the other seeds after: {record['diverged']}")
        record.pop("diverged")
  record.update({"arm": ctx.arm.label, "steps": steps, "finished": False})
  scorer = SCORERS[ctx.study.scorer]
  try:
    record = scorer(ctx, record)
    if scored_in is not None:
      record["rescoring_seconds"] = (record.get("rescoring_seconds", 0.0)
                                     + record["scoring_seconds"] - scored_in)
      record["scoring_seconds"] = scored_in
  except loop.NonFiniteError as e:
    # A diverged arm is a result of the study, not a failure of it: the table
    # says so, and the other arms go on. (Its seeds share one program, so a NaN
    # in one seed stops them all; the message names the seed.)
    ctx.log(f"{ctx.arm.label}: diverged: {e}")
    record["diverged"] = " ".join(str(e).split())
    if scored_in is not None and "scores" not in record:  # a rescoring loses nothing
      record["scores"] = record["previous_scores"].pop()["scores"]
      record["scoring_seconds"] = scored_in
  record["finished"] = True
  workdir_lib.write_json(path, record)
  return record


def _done(record: dict, state: Mapping[str, Any], config) -> bool:
  """Whether an arm's record and run folder (``workdir_lib.check``'s ``state``)
  say it finished at its budget or diverged."""
  return bool(record.get("finished")) and (state["step"] == int(config.train.num_steps)
                                           or bool(record.get("diverged")))


def finished_record(folder: str, config) -> Optional[dict]:
  """An arm's ``study_arm.json`` record if its folder holds the run of
  ``config`` finished at its budget (or diverged, with nothing to resume),
  else None; reads only."""
  record = _read_json(os.path.join(folder, ARM_FILE), {})
  if not record.get("finished"):
    return None
  try:
    state = workdir_lib.check(folder, loop.config_to_dict(config))
  except errors.WorkdirError:  # a run of another config (an older version's)
    return None
  return record if _done(record, state, config) and not _refreeze(record, config) else None


def _refreeze(record: dict, config) -> bool:
  """Whether a diverged arm stopped by one seed (``nonfinite_seeds='stop'``, as
  arms ran before freezing) can now go on with the others."""
  return (bool(record.get("diverged")) and str(record["diverged"]).startswith("seed ")
          and config.train.get("nonfinite_seeds", "stop") == "freeze")


def frozen_seeds(workdir: str, seeds: Optional[Sequence[int]] = None) -> list[str]:
  """The messages of the arm's seeds frozen at a NaN, one per seed (of those
  run ``seeds``, e.g. one swept value's; default all)."""
  seen, out = set(), []
  for r in loop.seed_freezes(workdir):
    if seeds is not None and int(r["seed"]) not in seeds:
      continue
    if r["index"] not in seen:
      seen.add(r["index"])
      out.append(" ".join(str(r["message"]).split()))
  return out


def _wall_seconds(record: dict, folder: str) -> float:
  """An arm's wall time: training (every sitting, ``timings.jsonl``), probes, scoring."""
  return (max(record.get("train_seconds", 0.0), _timings_total(folder))
          + record.get("probe_seconds", 0.0) + record.get("scoring_seconds", 0.0))


def _machine_key(m: Mapping[str, Any]) -> tuple:
  """What makes two machines the same for wall times: CPU, cores, devices."""
  return (m.get("cpu"), m.get("logical_cores"), m.get("devices"))


def sittings_summary(folder: str, study_machine: Mapping[str, Any]) -> dict[str, Any]:
  """Where an arm's training time was spent, from its ``timings.jsonl``.

  Over the sittings on the study's ``machine`` that recorded it, weighted by
  their wall time: ``load_mean``, the machine's 1-minute load average (the
  arm's own threads included), beside its ``logical_cores``, and
  ``own_cores``, the arm's CPU seconds per wall second (the cores it kept
  busy). A load well above the cores, or above what the arm itself used,
  means other work shared the machine. ``recorded_seconds``: the wall time of
  those sittings (older sittings recorded neither). ``other_machines``: the
  machines of sittings that ran elsewhere (CPU, cores and devices compared).
  """
  lines = read_jsonl(os.path.join(folder, "timings.jsonl"))
  here = _machine_key(study_machine)
  timed = [r for r in lines if "load_mean" in r and r.get("total", 0.0) > 0
           and _machine_key(r.get("machine") or {}) == here]
  seconds = sum(r["total"] for r in timed)
  others, seen = [], set()
  for r in lines:
    m = r.get("machine")
    if m and _machine_key(m) != here and _machine_key(m) not in seen:
      seen.add(_machine_key(m))
      others.append(m)
  mean = lambda key: (round(sum(r["total"] * r[key] for r in timed) / seconds, 2)
                      if seconds and all(key in r for r in timed) else None)
  own = (round(sum(r["cpu_seconds"] for r in timed) / seconds, 2)
         if seconds and all("cpu_seconds" in r for r in timed) else None)
  return {"load_mean": mean("load_mean"), "own_cores": own,
          "logical_cores": study_machine.get("logical_cores"),
          "recorded_seconds": round(seconds, 1), "other_machines": others}


def _score_eval(ctx: ArmContext, record: dict) -> dict:
  """Trains to the end; the table reads the final evaluation (``eval.jsonl``)."""
  sweep = ctx.arm.sweep
  per = (f"{len(sweep.values)} values of {sweep.label} x {len(ctx.seeds) // len(sweep.values)}"
         if sweep is not None else f"{len(ctx.seeds)}")
  ctx.log(f"{ctx.arm.label}: training {ctx.config.train.num_steps} steps x {per} seeds")
  _train(ctx, None, record)
  return record


def _score_gradients(ctx: ArmContext, record: dict) -> dict:
  """Arjovsky & Bottou's probe of the generator at several points of training.

  The run stops at each probe step (``stop_after``; resuming is exact), the
  probe runs on every seed's generator, and its curves are kept in the record
  before training goes on, so an interrupted study redoes nothing.
  """
  s = _scorer_settings(ctx)
  steps = int(ctx.config.train.num_steps)
  spc = int(ctx.config.train.steps_per_call)
  probe_steps = sorted({min(steps, spc * max(1, math.ceil(f * steps / spc)))
                        for f in s["fractions"]})
  done = record.setdefault("gradients", {})
  path = os.path.join(ctx.workdir, ARM_FILE)
  probe = None
  for at in probe_steps:
    if str(at) in done:
      continue
    ctx.log(f"{ctx.arm.label}: training to step {at} of {steps} x {len(ctx.seeds)} seeds, "
            "then the gradient probe")
    result = _train(ctx, at if at < steps else None, record)
    reached = loop.state_step(result.state)
    if reached != at:
      raise StudyError(
          f"arm {ctx.arm.label!r}: its run in {ctx.workdir!r} is at step {reached}, past the "
          f"probe step {at} whose results are missing; the generator of step {at} is gone. "
          "Delete the arm's folder to redo it.")
    if probe is None:
      from experiments import probe as probe_lib  # pylint: disable=g-import-not-at-top
      probe = gradient_probe(result.game, s, int(ctx.config.train.batch_size),
                             **probe_lib.chunking(ctx.config))
    # Each probe is kept as it finishes: an interrupted study loses at most one.
    partial = record.setdefault("gradients_partial", {}).setdefault(str(at), {})
    per_seed = []
    frozen = loop.frozen_seeds(result.state, reached) if len(ctx.seeds) > 1 else []
    for i, seed in enumerate(ctx.seeds):
      if i in frozen:  # stopped at a NaN before this step: nothing to probe
        per_seed.append(None)
        continue
      state = seeds_lib.take(result.state, i) if len(ctx.seeds) > 1 else result.state
      key = jax.random.fold_in(jax.random.key(1_000_004), seed)
      curves = {}
      for sigma in s["sigmas"]:
        name = f"{sigma:g}"
        kept = f"{seed}:{name}"
        if kept in partial:
          curves[name] = partial[kept]
          continue
        t0 = time.time()
        curves[name] = partial[kept] = probe(key, state, sigma)
        record["probe_seconds"] = record.get("probe_seconds", 0.0) + (time.time() - t0)
        workdir_lib.write_json(path, record)
        ctx.log(f"{ctx.arm.label}: probed seed {seed} at step {at}, noise {name} "
                f"({time.time() - t0:.0f} s)")
      per_seed.append(curves)
    done[str(at)] = per_seed
    record["gradients_partial"].pop(str(at))
    if not record["gradients_partial"]:
      record.pop("gradients_partial")
    workdir_lib.write_json(path, record)
  return record


def gradient_probe(game, settings: Mapping[str, Any], batch_size: int, *,
                   steps_per_call: Optional[int] = None, unroll: int | bool = 1):
  """Arjovsky & Bottou's probe of a game's generator: ``(key, state, sigma) -> curves``.

  ``gan_jax.metrics.probes.gradient_norm_curves`` applied as
  ``generator_gradient_diagnostics`` applies it (the generator in inference mode,
  the game's data and latent prior, a fresh discriminator of the game's
  architecture), except that the generator's batch statistics are an argument
  of the compiled probe (under ``stop_gradient``: they add zero gradients, so
  the norms are those of the parameters) rather than constants in it. So one
  set of compiled pieces serves every seed, probe step and noise level of an arm. Its
  discriminator steps are fused as the arm fuses its training steps
  (``steps_per_call``, ``unroll``: the arm's ``train`` fields).
  """
  from gan_jax.games.base import apply_model  # pylint: disable=g-import-not-at-top
  from gan_jax.metrics import probes  # pylint: disable=g-import-not-at-top
  from gan_jax.models import sample_latent  # pylint: disable=g-import-not-at-top
  arrays = game.data.arrays

  def generate(g, z):
    collections = jax.lax.stop_gradient(g["collections"])
    return apply_model(game.generator, g["params"], collections, z, train=False)[0]

  def latent(k, n):
    return sample_latent(k, n, tuple(game.latent_shape), prior=game.latent_prior,
                         **dict(game.latent_kwargs))

  def real(k, n):
    out = game.data.draw(k, arrays, n)
    return out[0] if game.data.has_labels else out

  def probe(key, state, sigma):
    g = {"params": state.params["generator"], "collections": state.model_state["generator"]}
    curves = probes.gradient_norm_curves(
        key, generate, g, latent, real, module=game.discriminator,
        iterations=settings["iterations"], every=settings["every"],
        num_batches=settings["num_batches"], batch_size=batch_size, sigma=sigma,
        learning_rate=settings["learning_rate"], steps_per_call=steps_per_call, unroll=unroll)
    return {k: np.asarray(v).tolist() for k, v in jax.device_get(curves)._asdict().items()}

  return probe


def _classifier(ctx: ArmContext, source) -> Any:
  """The study's digit classifier: trained once into ``<study>/classifier``, then reused."""
  from gan_jax.metrics import classifier as classifier_lib  # pylint: disable=g-import-not-at-top
  folder = os.path.join(ctx.study_dir, "classifier")
  info_path = os.path.join(ctx.study_dir, "classifier.json")
  # Two runs growing one study train it once: the second waits for the first's.
  with _folder_lock(ctx.study_dir):
    if os.path.isdir(folder) and os.path.exists(info_path):
      return classifier_lib.Classifier.load(folder)
    return _train_classifier(ctx, source, folder, info_path)


def _train_classifier(ctx: ArmContext, source, folder: str, info_path: str) -> Any:
  """``_classifier``'s training, saving and held-out check (under the study's lock)."""
  from gan_jax.metrics import classifier as classifier_lib  # pylint: disable=g-import-not-at-top
  s = _scorer_settings(ctx)
  x, y = classifier_lib.classifier_data(source, s["classifier_examples"], seed=1)
  held = max(1, len(x) // 10)
  t0 = time.time()
  if os.path.isdir(folder):  # saved by a run stopped before it wrote the info file
    clf = classifier_lib.Classifier.load(folder)
  else:
    ctx.log(f"training the study's digit classifier: {s['classifier_steps']} steps on "
            f"{len(x) - held} digit crops (once per study; saved in {folder})")
    clf = classifier_lib.train_classifier(x[held:], y[held:], num_classes=10,
                                          steps=s["classifier_steps"],
                                          steps_per_call=min(5, s["classifier_steps"]))
    clf.save(folder)
  info = {"steps": s["classifier_steps"], "examples": len(x) - held,
          "held_out_accuracy": clf.accuracy(x[:held], y[:held]), "held_out": held,
          "seconds": round(time.time() - t0, 1),
          "note": "digit crops of real draws; held-out draws may repeat training images"}
  workdir_lib.write_json(info_path, info)
  ctx.log(f"digit classifier: held-out accuracy {info['held_out_accuracy']:.4f} "
          f"({info['seconds']} s)")
  return clf


def _score_thousand_modes(ctx: ArmContext, record: dict) -> dict:
  """Trains to the end, then modes covered and KL of every seed's samples."""
  from gan_jax.metrics import scores  # pylint: disable=g-import-not-at-top
  sweep = ctx.arm.sweep
  per = (f"{len(sweep.values)} values of {sweep.label} x {len(ctx.seeds) // len(sweep.values)}"
         if sweep is not None else f"{len(ctx.seeds)}")
  ctx.log(f"{ctx.arm.label}: training {ctx.config.train.num_steps} steps x {per} seeds")
  result = _train(ctx, None, record)
  t0 = time.time()
  clf = _classifier(ctx, result.source)
  n = _scorer_settings(ctx)["num_samples"]
  _real_reference(ctx, clf, result.source, n)
  ctx.log(f"{ctx.arm.label}: scoring {n} samples of each seed")
  sample = jax.jit(result.game.sample, static_argnums=2)
  per_seed = []
  reached = loop.state_step(result.state)
  frozen = loop.frozen_seeds(result.state, reached) if len(ctx.seeds) > 1 else []
  for i, seed in enumerate(ctx.seeds):
    if i in frozen:  # stopped at a NaN: no final samples
      per_seed.append({"frozen": True})
      continue
    state = seeds_lib.take(result.state, i) if len(ctx.seeds) > 1 else result.state
    key = jax.random.fold_in(jax.random.key(1_000_003), seed)
    x = np.concatenate([np.asarray(sample(state, jax.random.fold_in(key, j), min(1000, n - j)))
                        for j in range(0, n, 1000)])
    metrics = scores.thousand_mode_metrics(clf.probs, x, result.source.name,
                                           result.source.info.mode_weights)
    # Che et al.'s #Miss: modes without a single sample.
    metrics["missing_modes"] = metrics["n_modes"] - metrics["modes_covered"]
    per_seed.append(metrics)
  record["scores"] = {"step": loop.state_step(result.state), "num_samples": n,
                      "per_seed": per_seed}
  record["scoring_seconds"] = record.get("scoring_seconds", 0.0) + (time.time() - t0)
  return record


REAL_REFERENCE_FILE = "real_reference.json"


def _real_reference(ctx: ArmContext, clf, source, n: int) -> dict:
  """The 1000-mode metrics of ``n`` real draws, read by the study's classifier
  (once per study, into ``<study>/real_reference.json``): what a generator
  that matched the data would score, confident reads included."""
  from gan_jax.metrics import scores  # pylint: disable=g-import-not-at-top
  path = os.path.join(ctx.study_dir, REAL_REFERENCE_FILE)
  saved = _read_json(path)
  classifier = _read_json(os.path.join(ctx.study_dir, "classifier.json"))
  if saved is not None and saved.get("num_samples") == n and saved.get("classifier") == classifier:
    return saved
  from experiments import probe as probe_lib  # pylint: disable=g-import-not-at-top
  x = probe_lib._draw(source, jax.random.key(1_000_005), n)  # pylint: disable=protected-access
  metrics = scores.thousand_mode_metrics(clf.probs, x, source.name, source.info.mode_weights)
  metrics["missing_modes"] = metrics["n_modes"] - metrics["modes_covered"]
  out = {"num_samples": n, "metrics": _plain(metrics), "classifier": classifier}
  workdir_lib.write_json(path, out)
  return out


SCORERS: dict[str, Callable[[ArmContext, dict], dict]] = {
    "eval": _score_eval,
    "gradients": _score_gradients,
    "thousand_modes": _score_thousand_modes,
    # Trained as for 'eval'; the arms' cells come from the study's cross-test.
    "cross_test": _score_eval,
}


def _scorer_settings(ctx: ArmContext) -> Mapping[str, Any]:
  return ctx.study.quick_settings if ctx.settings["quick"] else ctx.study.settings


# ------------------------------------------------------------------- tables
def _final_value(record: dict, keys: Sequence[str]) -> Optional[float]:
  for k in keys:
    if k in record:
      return _nan(record[k])
  return None


def eval_rows(study: Study, arm: Arm, workdir: str, seeds: list[int], steps: int,
              value: Optional[float] = None) -> list[dict]:
  """The table row of an arm (of its group of ``seeds`` swept to ``value``)
  scored by its final evaluation."""
  history = per_seed_records(os.path.join(workdir, "eval.jsonl"))
  # Up to ``steps`` (a diverged arm is read at an earlier step than its last).
  history = {s: [r for r in h if int(r["step"]) <= steps] for s, h in history.items()}
  missing = [s for s in seeds if not history.get(s) or history[s][-1]["step"] != steps]
  if missing:
    raise StudyError(f"arm {arm.label!r}: eval.jsonl in {workdir!r} has no evaluation at step "
                     f"{steps} for seed(s) {missing}")
  cells = {}
  for column in study.columns:
    if column.derived:
      values = [DERIVED[column.derived](history[s]) for s in seeds]
    else:
      values = [_final_value(history[s][-1], column.keys) for s in seeds]
      if all(v is None for v in values):
        continue  # not reported for this data set
    cells[column.name] = _cell(values)
  return [{"row": group_label(arm, value), "arm": arm.label, "cells": cells}]


def last_common_evaluation(path: str, seeds: list[int]) -> int | None:
  """The last step at which every seed was evaluated with values (None if none)."""
  if not os.path.exists(path):
    return None
  history = per_seed_records(path)
  common = set.intersection(*[{int(r["step"]) for r in history.get(s, [])
                               if seeds_lib.has_values(r)} for s in seeds])
  return max(common) if common else None


def gradient_rows(study: Study, arm: Arm, record: dict) -> list[dict]:
  """One row per probe step and noise level: gradient norms at D's first and last record."""
  rows = []
  for at, per_seed in sorted(record["gradients"].items(), key=lambda kv: int(kv[0])):
    probed = [seed for seed in per_seed if seed is not None]  # None: a frozen seed
    if not probed:
      continue
    for sigma in probed[0]:
      curves = [seed[sigma] for seed in probed]
      cells = {}
      for name, key, index in (
          ("grad norm, log(1-D), D it. 0", "minimax_mean", 0),
          ("grad norm, log(1-D), last D it.", "minimax_mean", -1),
          ("grad norm, -log D, D it. 0", "non_saturating_mean", 0),
          ("grad norm, -log D, last D it.", "non_saturating_mean", -1),
          ("D(real), last D it.", "d_real", -1),
          ("D(fake), last D it.", "d_fake", -1)):
        cells[name] = _cell([c[key][index] for c in curves])
      rows.append({"row": f"{arm.label}, G at step {at}, noise {sigma}", "arm": arm.label,
                   "generator_step": int(at), "sigma": float(sigma),
                   "d_iterations": int(curves[0]["iterations"][-1]), "cells": cells})
  return rows


def score_rows(study: Study, arm: Arm, record: dict) -> list[dict]:
  """The table row of a stacked-MNIST arm from its scored samples."""
  per_seed = record["scores"]["per_seed"]
  cells = {c.name: _cell([_final_value(p, c.keys) for p in per_seed]) for c in study.columns}
  return [{"row": arm.label, "arm": arm.label, "cells": cells}]


def image_data(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Where an image arm's training images come from, and how many there are."""
  from gan_jax.data import make_source  # pylint: disable=g-import-not-at-top
  info = make_source(config.data).info
  return {"name": info.name, "origin": info.origin, "split": info.split,
          "num_examples": int(info.num_examples)}


def build_table(study: Study, settings: Mapping[str, Any], saved: Mapping[str, Any],
                workdir: str, records: Mapping[str, dict],
                data: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
  """The study's table (``table.json``) from its arms' files.

  ``data``: for an image study, what ``image_data`` says of its training images.
  """
  seeds = list(range(settings["num_seeds"]))
  held = study.arms_to_run(settings["quick"], settings.get("arms"))
  arms = [a for a in held if a.label in records]
  pending = [a.label for a in held if a.label not in records]
  rows = []
  published = {p.row: p for p in study.published}
  for arm in arms:
    arm_dir = os.path.join(workdir, arm.label)
    record = records[arm.label]
    wall = _wall_seconds(record, arm_dir)
    where = sittings_summary(arm_dir, saved["machine"])
    # One row per group of replicas (a swept arm: per value; the arm's wall
    # time is the whole program's, printed on each of its rows).
    for value, group in arm_groups(arm, seeds):
      if record.get("diverged"):
        arm_rows = [{"row": group_label(arm, value), "arm": arm.label, "cells": {}}]
        at = (last_common_evaluation(os.path.join(arm_dir, "eval.jsonl"), group)
              if study.scorer == "eval" else None)
        if at:  # the seeds' last evaluation before the NaN: a result, at fewer steps
          arm_rows = eval_rows(study, arm, arm_dir, group, at, value)
          arm_rows[0]["evaluated_at"] = at
      elif study.scorer in ("eval", "cross_test"):  # cross_test: cells filled by run_study
        arm_rows = eval_rows(study, arm, arm_dir, group, record["steps"], value)
      elif study.scorer == "gradients":
        arm_rows = gradient_rows(study, arm, record)
      else:
        arm_rows = score_rows(study, arm, record)
      frozen = frozen_seeds(arm_dir, group) if os.path.isdir(arm_dir) else []
      for row in arm_rows:
        row["diverged"] = record.get("diverged")
        row["frozen_seeds"] = frozen
        row.update({"config": arm.config, "overrides": _plain(arm.overrides),
                    "note": arm.note, "group": arm.group, "num_seeds": len(group),
                    "seeds": group, "steps": record["steps"], "wall_seconds": round(wall, 1),
                    "sittings": where, "published": None})
        if arm.sweep is not None:
          row["sweep"] = {"field": arm.sweep.field, "name": arm.sweep.label, "value": value,
                          "values": [float(v) for v in arm.sweep.values]}
        if arm.label in published:
          p = published[arm.label]
          row["published"] = {"text": p.text, "source": p.source}
        rows.append(row)
  # Published numbers of methods not run here get rows of their own.
  extra = [{"row": p.row, "text": p.text, "source": p.source} for p in study.published
           if p.row not in {a.label for a in study.arms}]
  classifier = _read_json(os.path.join(workdir, "classifier.json"))
  # Only the studies scored on final samples have the key: other finished
  # studies' tables stay as they were.
  extras = ({"real_reference": _read_json(os.path.join(workdir, REAL_REFERENCE_FILE))}
            if study.scorer == "thousand_modes" else {})
  columns = _columns(study, rows)
  comps = comparisons(rows, study.baselines, columns[0]) if study.baselines and columns else []
  return {"study": study.name, "title": study.title, "claim": study.claim,
          "settings": dict(settings), "command": saved["command"], "machine": saved["machine"],
          "steps": budget_of(study, settings),
          "budget_note": study.budget_note,
          "study_steps": study.quick_steps if settings["quick"] else study.steps,
          "data": dict(data) if data else None,
          "arms": [a.label for a in arms],
          # Only a study grown arm by arm has the key (other tables stay as they were).
          **({"arms_not_finished": pending} if pending else {}),
          "columns": columns, "rows": rows, "published_only": extra,
          # Only studies with baselines have the key.
          **({"comparisons": _plain(comps)} if comps else {}),
          "classifier": classifier, **extras, "notes": list(study.notes),
          # What the figures draw: a finished study resumed by a version that draws
          # other figures has a table that differs, so its figures are drawn again.
          "figure_settings": {"main_metric": list(study.main_metric),
                              "per_seed_figure": study.per_seed_figure,
                              "d_curves": study.d_curves,
                              "train_curves": list(study.train_curves)},
          "scorer_settings": _plain(study.quick_settings if settings["quick"]
                                    else study.settings)}


def comparisons(rows: Sequence[Mapping[str, Any]], baselines: Sequence[str],
                column: str) -> list[dict[str, Any]]:
  """Each row against the baseline row of its group, in ``column``:
  ``seeds_lib.welch`` of the two rows' per-seed values (seeds not paired).
  ``baselines`` name rows: an arm's label, or a swept arm's row
  (``"minimax, gamma=0"``); a group whose baseline is not among the rows is
  left out."""
  base = {r.get("group", ""): r for r in rows if r["row"] in baselines}
  out = []
  for row in rows:
    ref = base.get(row.get("group", ""))
    if ref is None or row["row"] in baselines:
      continue
    mine, theirs = row["cells"].get(column), ref["cells"].get(column)
    if not mine or not theirs:
      continue
    test = seeds_lib.welch(mine.get("per_seed", []), theirs.get("per_seed", []))
    if test is not None:
      out.append({"arm": row["row"], "baseline": ref["row"], "column": column, **test})
  return out


def comparison_lines(comps: Sequence[Mapping[str, Any]]) -> list[str]:
  """``comparisons`` as markdown lines."""
  if not comps:
    return []
  lines = ["", f"Against the baseline of its group, in `{comps[0]['column']}` (the difference "
           "of the means ± its SE; Welch's t-test over the seeds, unpaired, two-sided, each p "
           "for its own comparison, not corrected for their number; with 3-5 seeds a side "
           "it separates only large effects):", ""]
  for c in comps:
    test = ("neither arm's seeds vary" if c["t"] is None else
            f"t = {c['t']:.2f}, df = {c['df']:.1f}, p = {c['p']:.2g}")
    lines.append(f"- `{c['arm']}` − `{c['baseline']}`: {c['diff']:+.3g} ± {c['se']:.2g} "
                 f"({test})")
  return lines


def _columns(study: Study, rows: list[dict]) -> list[str]:
  """The columns some row has a cell in, in the study's order (else the rows')."""
  names = []
  for row in rows:
    for name in row["cells"]:
      if name not in names:
        names.append(name)
  order = [c.name for c in study.columns]
  if not names:  # every arm diverged
    return order
  return sorted(names, key=lambda n: order.index(n) if n in order else len(order))


def _plain(value):
  if isinstance(value, ml_collections.ConfigDict):
    return _plain(value.to_dict())
  if isinstance(value, Mapping):
    return {str(k): _plain(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_plain(v) for v in value]
  if isinstance(value, float) and not math.isfinite(value):
    return None
  return value


def _count(value: Optional[float]) -> str:
  return "none" if value is None or not math.isfinite(value) else f"{value:.0f}"


def _fmt(cell: Optional[dict], num_seeds: int) -> str:
  if cell is None:
    return "n/a"
  if cell["n"] == 0:
    return f"none (0/{num_seeds})"
  text = f"{cell['mean']:.3g} ± {cell['se']:.2g}"
  if cell["n"] < num_seeds:
    text += f" ({cell['n']}/{num_seeds} seeds)"
  return text


def _budget_text(table: Mapping[str, Any]) -> str:
  s, note = table["settings"], table["budget_note"]
  if s["steps"] is not None:
    return (f"(set by --steps; the study's {'quick ' if s['quick'] else ''}budget is "
            f"{table['study_steps']}" + (f": {note}" if note and not s["quick"] else "") + "; "
            "the step counts of the arms' schedules are scaled with the run length: the arms "
            "below list them as set for their configs' own train.num_steps)")
  if s["quick"]:
    return "(the --quick budget)"
  return f"(the study's budget: {note})" if note else "(the study's budget)"


def _data_text(table: Mapping[str, Any]) -> str:
  d = table["data"]
  if table["settings"]["quick"] and not table["settings"]["mnist_npz"]:
    return f"a small generated stand-in for MNIST ({d['num_examples']} images, --quick)"
  return f"{d['name']} from {d['origin']}, {d['num_examples']} {d['split'] or ''} images"


def _load_text(sittings: Optional[Mapping[str, Any]]) -> str:
  """The ``load`` cell: 'load average / logical cores, own cores', blank if not recorded."""
  if not sittings or sittings.get("load_mean") is None:
    return ""
  own = sittings.get("own_cores")
  return (f"{sittings['load_mean']:.1f} / {sittings['logical_cores']}"
          + (f", own {own:.1f}" if own is not None else ""))


def _md(text: str) -> str:
  """Text safe inside a markdown table cell."""
  return str(text).replace("|", "\\|")


def render_markdown(table: Mapping[str, Any]) -> str:
  """``table.md``: command, machine, claim, the table, published numbers, notes."""
  s, m = table["settings"], table["machine"]
  lines = [f"# Study `{table['study']}`: {table['title']}", "",
           f"Command: `{table['command']}`", "",
           f"Machine: {m['cpu']}, {m['logical_cores']} logical cores, {m['platform']}; "
           f"Python {m['python']}, jax {m['jax']}, jaxlib {m['jaxlib']}, devices "
           f"{m['devices']}. Wall times are of this machine (unless a note under the table names "
           "another), shared with whatever else ran: `load` is the machine's 1-minute load "
           "average while the arm trained (weighted by time over its sittings on this "
           "machine; blank where they did not record it) beside its logical cores, and `own` "
           "the cores the arm itself kept busy (its CPU seconds per wall second). A load "
           "well above both means other work shared the cores and the arm took longer than "
           "it would alone.",
           "", f"Claim: {table['claim']}", "",
           f"Setting: {s['num_seeds']} seeds per arm (run seeds 0..{s['num_seeds'] - 1}, trained "
           f"in one program), {table['steps']} steps per arm " + _budget_text(table) + "."]
  if any(r.get("sweep") for r in table["rows"]):
    lines += ["", f"A swept arm trains {s['num_seeds']} seeds per value of its field, every "
              "value in its one program (value k on run seeds "
              f"{s['num_seeds']}k..{s['num_seeds']}k+{s['num_seeds'] - 1}); its rows share the "
              "program's wall time, printed on each."]
  if s["quick"]:
    lines += ["", "**--quick: a smoke test of the pipeline (tiny models, a few dozen steps); "
              "these numbers are not results.**"]
  if table.get("data"):
    lines += ["", "Images: " + _data_text(table) + "."]
  clf = table.get("classifier")
  if clf:
    lines += ["", f"Digit classifier: {clf['steps']} Adam steps on {clf['examples']} digit "
              f"crops, held-out accuracy {clf['held_out_accuracy']:.4f} ({clf['held_out']} "
              "draws)."]
  ref = table.get("real_reference")
  if ref:
    m = ref["metrics"]
    lines += ["", f"Real draws read by the same classifier ({ref['num_samples']} draws, the "
              f"reference of the columns): {m['modes_covered']:.0f} modes covered, "
              f"{_count(m['modes_covered_confident'])} over confident reads (every digit read "
              f"with probability >= {m['confidence']:g}), confident share "
              f"{m['confident_share']:.3f}, KL {m['kl_mode_histogram']:.3f}."]
  columns = table["columns"]
  lines += ["", "Each cell: mean ± standard error over seeds of the final value (a derived "
            "column: of the seed's quantity over its evaluations, defined in "
            "experiments/study.py).", "",
            "| arm | " + " | ".join(_md(c) for c in columns)
            + " | seeds | steps | wall s | load | published |",
            "|" + "---|" * (len(columns) + 6)]
  for row in table["rows"]:
    pub = row["published"]
    pub_text = _md(f"{pub['text']} ({pub['source']})") if pub else ""
    stopped = row.get("diverged") and not row.get("evaluated_at")
    steps = (f"{row['steps']}" if not row.get("diverged") else
             f"diverged; values at {row['evaluated_at']}" if row.get("evaluated_at") else
             f"{row['steps']}")
    lines.append(f"| {_md(row['row'])} | "
                 + " | ".join("diverged" if stopped else
                              _fmt(row["cells"].get(c), row["num_seeds"]) for c in columns)
                 + f" | {row['num_seeds']} | {steps} | {row['wall_seconds']:.0f} | "
                 f"{_load_text(row.get('sittings'))} | {pub_text} |")
  for p in table["published_only"]:
    lines.append(f"| {_md(p['row'])} (published only, not run here) | "
                 + " | ".join("" for _ in columns)
                 + f" | | | | | {_md(p['text'] + ' (' + p['source'] + ')')} |")
  elsewhere = {}
  for row in table["rows"]:
    for other in (row.get("sittings") or {}).get("other_machines", []):
      elsewhere.setdefault(row["arm"], [])
      if other not in elsewhere[row["arm"]]:
        elsewhere[row["arm"]].append(other)
  for arm, others in elsewhere.items():
    lines += ["", f"`{arm}` trained (for some or all of its sittings) on another machine: "
              + "; ".join(f"{o['cpu']}, {o['logical_cores']} logical cores, devices "
                          f"{o['devices']}" for o in others) + "."]
  lines += comparison_lines(table.get("comparisons", []))
  cross = table.get("cross_test")
  if cross:
    a, b = cross["arms"]
    num = len(cross["per_seed"])
    lines += ["", f"Cross-test (Roth et al.): the share of each arm's samples each arm's "
              f"discriminator takes for real (D > 1/2), {cross['num_samples']} samples per "
              f"arm and seed, and the share of {cross['n_test']} held-out examples "
              f"({cross['held_out']}) it calls fake; mean ± SE over {num} seeds, the two "
              "arms' replicas of one seed paired. Each discriminator judges as in training: "
              "batch by batch of its batch size, one kind of input per batch, normalised by "
              "the batch's own statistics (the arms' cells above)."]

    def cross_table(cells):
      rows = ["", f"| discriminator | samples of `{a}` | samples of `{b}` | test data called "
              "fake |", "|---|---|---|---|"]
      for d in (a, b):
        rows.append(f"| D of `{d}` | "
                    + " | ".join(_fmt(cells[f"D of {d} on samples of {g}"], num) for g in (a, b))
                    + f" | {_fmt(cells[f'D of {d} on test data, called fake'], num)} |")
      return rows

    lines += cross_table(cross["cells"])
    if cross.get("inference"):
      lines += ["", "The same discriminators in inference mode (batch norm's running "
                "averages, which mix the moments of real and generated batches; identical "
                "to the table above for a discriminator without batch norm):"]
      lines += cross_table(cross["inference"]["cells"])
  lines += ["", "Arms:", ""]
  seen = set()
  for row in table["rows"]:
    if row["arm"] in seen:
      continue
    seen.add(row["arm"])
    over = ", ".join(f"{k}={json.dumps(v)}" for k, v in row["overrides"].items())
    sweep = row.get("sweep")
    swept = (f", sweeping `{sweep['field']}` over "
             f"{', '.join(seeds_lib.value_label(v) for v in sweep['values'])} in one program "
             f"({row['num_seeds']} seeds per value, value k on run seeds "
             f"{row['num_seeds']}k..{row['num_seeds']}k+{row['num_seeds'] - 1})"
             if sweep else "")
    lines.append(f"- `{row['arm']}`: `{row['config']}`" + (f" with {over}" if over else "")
                 + swept + (f" — {row['note']}" if row["note"] else ""))
  diverged = list({r["arm"]: r for r in table["rows"] if r.get("diverged")}.values())
  if diverged:
    lines += ["", "Diverged (training stopped at a NaN or inf; the last good checkpoint is in "
              "the arm's folder; where the seeds had been evaluated, the row shows their last "
              "evaluation before it, at fewer steps than the other arms):", ""] + [
                  f"- `{r['arm']}`: {r['diverged']}" for r in diverged]
  frozen = {r["row"]: r["frozen_seeds"] for r in table["rows"] if r.get("frozen_seeds")}
  if frozen:
    lines += ["", "Seeds frozen at a NaN or inf (each kept at its last finite state and left "
              "out of the cells from then on; the cells say how many seeds they hold):", ""]
    lines += [f"- `{arm}`: {m}" for arm, msgs in frozen.items() for m in msgs]
  if table.get("arms_not_finished"):
    lines += ["", "Arms of this workdir not finished yet (not in the table; the command "
              "above trains them): " + ", ".join(f"`{a}`" for a in table["arms_not_finished"])
              + "."]
  if table["notes"]:
    lines += ["", "Notes:", ""] + [f"- {n}" for n in table["notes"]]
  lines += ["", "Figures (in the study's `figures/` folder; beside this file when published): "
            + ", ".join(f"`{f}`" for f in table.get("figures", [])), ""]
  return "\n".join(lines)


# ------------------------------------------------------------------ figures
def _band_axes(ax, x, y, se, label, color):
  x, y, se = (np.asarray(a, np.float64) for a in (x, y, se))
  ax.plot(x, y, color=color, linewidth=1.2, label=label)
  ax.fill_between(x, y - se, y + se, color=color, alpha=0.2, linewidth=0)


def _series(records: list[dict], keys: Sequence[str]) -> Optional[tuple]:
  for key in keys:
    if records and any(key in r for r in records):
      steps = [r["step"] for r in records]
      y = [_nan(r.get(key)) for r in records]
      se = [_nan(r.get(f"{key}_se", 0.0)) for r in records]
      return key, steps, y, np.nan_to_num(se)
  return None


def _beta_boundaries(arm_dir: str) -> list[int]:
  """beta-GAN's stage changes within a heated arm's run (none for other arms)."""
  from gan_jax.train import evaluate  # pylint: disable=g-import-not-at-top
  config = _read_json(os.path.join(arm_dir, "config.json"), {})
  perturbation = config.get("game", {}).get("perturbation", {})
  if perturbation.get("name") != "heat":
    return []
  end = config["train"]["num_steps"]
  return [b for b in evaluate.beta_boundaries(perturbation.get("level")) if b <= end]


def _figure(nrows: int, ncols: int, panel=(4.6, 3.2), *, fast: bool = False):
  """A figure of ``nrows x ncols`` panels; ``fast`` (--quick) skips the layout
  engine, much of a small figure's rendering time."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  fig = Figure(figsize=(panel[0] * ncols, panel[1] * nrows),
               layout=None if fast else "constrained")
  axes = fig.subplots(nrows, ncols, squeeze=False)
  return fig, axes


def write_figures(study: Study, workdir: str, table: Mapping[str, Any]) -> list[str]:
  """The study's figures into ``workdir/figures``; returns their file names."""
  folder = os.path.join(workdir, "figures")
  names = []
  fast = bool(table["settings"]["quick"])
  quick = " (--quick: not a result)" if fast else ""
  if table.get("data"):
    quick += f"; images: {_data_text(table)}"
  seeds = table["settings"]["num_seeds"]
  if any(r.get("frozen_seeds") for r in table["rows"]):
    # Curves after a seed's freeze are over the seeds still training.
    seeds = f"{seeds} (frozen seeds left out)"
  arms = [a for a in study.arms if a.label in table["arms"]]

  def save(fig, name):
    # A smoke test's figures need not be sharp: rendering is much of its time.
    plotting.save_figure(fig, os.path.join(folder, name), dpi=50 if fast else 100)
    names.append(name)

  groups = list(dict.fromkeys(a.group for a in arms))
  # What is drawn: every group of replicas of every arm (a swept arm: one per value).
  curves = [(arm, value, members, group_label(arm, value)) for arm in arms
            for value, members in arm_groups(arm, range(table["settings"]["num_seeds"]))]

  def means(arm, value, name):
    return mean_records(os.path.join(workdir, arm.label, name), arm.sweep, value)

  if study.main_metric:
    fig, axes = _figure(1, len(groups), fast=fast)
    for ax, group in zip(axes[0], groups):
      drawn = None
      for i, (arm, value, _, label) in enumerate(c for c in curves if c[0].group == group):
        s = _series(means(arm, value, "eval.jsonl"), study.main_metric)
        if s is not None:
          drawn = s[0]
          _band_axes(ax, s[1], s[2], s[3], label, f"C{i % 10}")
      ax.set_xlabel("step")
      ax.set_ylabel(drawn or study.main_metric[0])
      ax.set_title(group or study.name, fontsize=10)
      if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.suptitle(f"{study.name}: mean ± SE over {seeds} seeds{quick}", fontsize=10)
    save(fig, f"{study.main_metric[0]}.png")
  if study.main_metric and study.per_seed_figure:
    n = len(curves)
    cols = min(3, n)
    fig, axes = _figure(-(-n // cols), cols, panel=(4.0, 2.8), fast=fast)
    for ax in axes.flat[n:]:
      ax.set_visible(False)
    for ax, (arm, _, members, label) in zip(axes.flat, curves):
      for seed, records in per_seed_records(os.path.join(workdir, arm.label,
                                                         "eval.jsonl")).items():
        s = _series(records, study.main_metric) if seed in members else None
        if s is not None:
          ax.plot(s[1], s[2], linewidth=1.0, label=f"seed {seed}")
      ax.set_title(label, fontsize=9)
      ax.set_xlabel("step")
      if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6)
    fig.suptitle(f"{study.name}: {study.main_metric[0]} of every seed{quick}", fontsize=10)
    save(fig, f"{study.main_metric[0]}_per_seed.png")
  if study.d_curves:
    n = len(curves)
    cols = min(3, n)
    fig, axes = _figure(-(-n // cols), cols, panel=(4.0, 2.8), fast=fast)
    for ax in axes.flat[n:]:
      ax.set_visible(False)
    for ax, (arm, value, _, label) in zip(axes.flat, curves):
      records = means(arm, value, "metrics.jsonl")
      for key, color in (("d_real", "C0"), ("d_fake", "C3")):
        s = _series(records, (key,))
        if s is not None:
          _band_axes(ax, s[1], s[2], s[3], key.replace("d_", "D(") + ")", color)
      for b in _beta_boundaries(os.path.join(workdir, arm.label)):
        ax.axvline(b, color="0.6", linestyle=":", linewidth=0.6)
      ax.set_ylim(-0.02, 1.02)
      ax.set_title(label, fontsize=9)
      ax.set_xlabel("step")
      if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.suptitle(f"{study.name}: discriminator output, mean ± SE over {seeds} seeds{quick}",
                 fontsize=10)
    save(fig, "d_curves.png")
  for key in study.train_curves:
    fig, axes = _figure(1, 1, panel=(6.0, 3.6), fast=fast)
    ax = axes[0, 0]
    for i, (arm, value, _, label) in enumerate(curves):
      s = _series(means(arm, value, "metrics.jsonl"), (key,))
      if s is not None:
        _band_axes(ax, s[1], s[2], s[3], label, f"C{i % 10}")
    ax.set_yscale("log", nonpositive="mask")
    ax.set_xlabel("step")
    ax.set_ylabel(key)
    ax.set_title(f"{study.name}: {key}, mean ± SE over {seeds} seeds{quick}", fontsize=10)
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize=7)
    save(fig, f"{key}.png")
  if study.scorer == "gradients":
    _gradient_figures(arms, study, workdir, table, save, quick, fast)
  if study.scorer == "thousand_modes":
    fig, axes = _figure(1, len(study.columns), fast=fast)
    for ax, column in zip(axes[0], study.columns):
      rows = [r for r in table["rows"] if column.name in r["cells"]]
      means = [r["cells"][column.name]["mean"] or 0.0 for r in rows]
      ses = [r["cells"][column.name]["se"] or 0.0 for r in rows]
      ax.bar(range(len(rows)), means, yerr=ses, color=[f"C{i}" for i in range(len(rows))])
      ax.set_xticks(range(len(rows)), [r["row"] for r in rows], fontsize=8)
      ax.set_title(column.name, fontsize=9)
    fig.suptitle(f"{study.name}: mean ± SE over {seeds} seeds{quick}", fontsize=10)
    save(fig, "modes.png")
  return names


def _gradient_figures(arms, study, workdir, table, save, quick, fast):
  """Per arm: gradient norms against D iterations, per probe step and noise level."""
  for arm in arms:
    record = _read_json(os.path.join(workdir, arm.label, ARM_FILE), {})
    probed = sorted(record.get("gradients", {}).items(), key=lambda kv: int(kv[0]))
    if not probed:
      continue
    fig, axes = _figure(len(probed), 2, panel=(4.4, 3.0), fast=fast)
    for (at, per_seed), row in zip(probed, axes):
      per_seed = [p for p in per_seed if p is not None]  # None: a seed frozen at a NaN
      if not per_seed:
        continue
      for panel, (key, title) in zip(row, (("minimax_mean", "log(1 - D)"),
                                           ("non_saturating_mean", "-log D"))):
        for i, sigma in enumerate(per_seed[0]):
          x = per_seed[0][sigma]["iterations"]
          values = np.asarray([seed[sigma][key] for seed in per_seed], np.float64)
          mean = values.mean(axis=0)
          se = (values.std(axis=0, ddof=1) / math.sqrt(len(values)) if len(values) > 1
                else np.zeros_like(mean))
          color = f"C{i % 10}"
          panel.plot(x, mean, color=color, linewidth=1.2, label=f"noise {sigma}")
          panel.fill_between(x, np.maximum(mean - se, 1e-3 * np.abs(mean)), mean + se,
                             color=color, alpha=0.2, linewidth=0)
        panel.set_yscale("log", nonpositive="mask")
        panel.set_xlabel("discriminator iterations")
        panel.set_ylabel("generator gradient norm")
        panel.set_title(f"{title}, G at step {at}", fontsize=9)
        if panel.get_legend_handles_labels()[0]:
          panel.legend(fontsize=7)
    fig.suptitle(f"{study.name} / {arm.label}: mean ± SE over "
                 f"{table['settings']['num_seeds']} seeds{quick}"
                 + (" (frozen seeds left out)" if record.get("gradients") and any(
                     p is None for ps in record["gradients"].values() for p in ps) else ""),
                 fontsize=10)
    save(fig, f"gradients_{arm.label}.png")


# --------------------------------------------------------------------- run
def run_cross_test(study: Study, workdir: str, settings: Mapping[str, Any],
                   records: Mapping[str, dict], log: Callable[[str], None]) -> Optional[dict]:
  """The study's cross-test, seed by seed (``None`` when an arm did not run or diverged).

  Cached in ``<workdir>/cross_test.json`` for the arms' final steps, so a resumed
  study does not recompute it.
  """
  from experiments import probe as probe_lib  # pylint: disable=g-import-not-at-top
  from gan_jax.metrics import probes  # pylint: disable=g-import-not-at-top
  spec = study.cross_test
  if any(a not in records or records[a].get("diverged") for a in (spec.a, spec.b)):
    return None
  n = spec.quick_num_samples if settings["quick"] else spec.num_samples
  steps = [records[a]["steps"] for a in (spec.a, spec.b)]
  path = os.path.join(workdir, "cross_test.json")
  cached = _read_json(path)
  if (cached is not None and cached.get("steps") == steps and cached.get("num_samples") == n
      and "inference" in cached):  # (a cache of before the two modes is recomputed)
    return cached
  t0 = time.time()
  log(f"cross-test: {spec.a} against {spec.b}, {n} samples per arm and seed")
  folders = [os.path.join(workdir, a) for a in (spec.a, spec.b)]
  seeds = list(range(settings["num_seeds"]))
  key = jax.random.key(0)
  _, _, source, config = probe_lib._load(folders[0], None, False)  # pylint: disable=protected-access
  test, held_out = probe_lib._held_out(  # pylint: disable=protected-access
      source, config, jax.random.fold_in(key, 1), n)
  # Both ways of judging, on one draw of samples (``probes.cross_test_modes``):
  # batch statistics, as each discriminator judged in training (the table's
  # cells), and inference mode.
  per_mode = {mode: [] for mode in probes.D_MODES}
  for i, seed in enumerate(seeds):
    pair = [loop.load_checkpoint(f, seed_index=i)[:2] for f in folders]
    if any(int(np.asarray(state.step)) < want for (_, state), want in zip(pair, steps)):
      # A seed frozen at a NaN in either arm: its pair is not compared.
      nan = [[float("nan")] * 2] * 2
      for per_seed in per_mode.values():
        per_seed.append({"seed": seed, "fp": nan, "fn": [float("nan")] * 2, "frozen": True})
      continue
    tables = probes.cross_test_modes(jax.random.fold_in(key, 2 + seed), pair, test,
                                     modes=tuple(per_mode), num_samples=n)
    for mode, per_seed in per_mode.items():
      per_seed.append({"seed": seed, "fp": np.asarray(tables[mode]["fp"]).tolist(),
                       "fn": np.asarray(tables[mode]["fn"]).tolist()})
  names = (spec.a, spec.b)

  def cells_of(per_seed):
    cells = {}
    for i, d in enumerate(names):
      for j, g in enumerate(names):
        cells[f"D of {d} on samples of {g}"] = _cell([p["fp"][i][j] for p in per_seed])
      cells[f"D of {d} on test data, called fake"] = _cell([p["fn"][i] for p in per_seed])
    return cells

  result = {"arms": list(names), "steps": steps, "num_samples": n, "n_test": int(len(test)),
            "held_out": held_out, "mode": "batch statistics", "per_seed": per_mode["batch_statistics"],
            "cells": cells_of(per_mode["batch_statistics"]),
            "inference": {"per_seed": per_mode["inference"],
                          "cells": cells_of(per_mode["inference"])},
            "seconds": round(time.time() - t0, 1)}
  workdir_lib.write_json(path, result)
  return result


def run_study(name: str, workdir: str, *, quick: bool = False, num_seeds: Optional[int] = None,
              steps: Optional[int] = None, mnist_npz: str = "",
              arms: Optional[Sequence[str]] = None, rescore: bool = False,
              log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True),
              progress: bool = True) -> dict[str, Any]:
  """Runs (or resumes) a study; returns its table (what ``table.json`` holds).

  ``rescore``: the finished arms of a study scored on final samples
  (``stacked_mnist``, ``compositional_mnist``) score them again from their
  final checkpoints (a metric added since they ran); their old scores stay in
  ``study_arm.json`` under ``previous_scores``. ``progress=False`` silences
  the arms' progress lines (a notebook's output); ``log`` takes the rest.

  Raises:
    StudyError: an unknown study (the message lists the valid ones), bad
      settings, or a workdir of other settings (nothing is changed).
    gan_jax.errors.UserError: an arm's config or run folder cannot be used.
  """
  settings = settings_of(name, quick=quick, num_seeds=num_seeds, steps=steps,
                         mnist_npz=mnist_npz, arms=arms)
  study = STUDIES[name]
  if rescore and study.scorer != "thousand_modes":
    raise StudyError(
        f"--rescore scores final samples again, for the studies scored so "
        f"({', '.join(n for n, s in STUDIES.items() if s.scorer == 'thousand_modes')}); "
        f"study {name!r} is scored by {study.scorer!r}, not on final samples")
  budget = budget_of(study, settings)
  # Every arm's config is built (and its overrides checked) before anything is written.
  image_npz = settings["mnist_npz"]
  if study.images and quick and not image_npz:
    image_npz = os.path.join(os.path.abspath(workdir), "quick_images.npz")

  def configs_of(arms_):
    out = {arm.label: arm_config(study, arm, steps=budget, num_seeds=settings["num_seeds"],
                                 quick=quick, image_npz=settings["mnist_npz"])
           for arm in arms_}
    for config in out.values():
      if image_npz and "npz_path" in config.data:
        config.data.npz_path = image_npz
      if not progress:  # not part of a run's identity: resuming with it is the same run
        config.train.progress = False
    return out

  arms = study.arms_to_run(quick, settings.get("arms"))  # this run trains these
  configs = configs_of(arms)
  saved_before = _read_json(os.path.join(workdir, SETTINGS_FILE))
  if isinstance(saved_before, dict) and "settings" in saved_before:
    held = set(arm_labels(saved_before["settings"]))
    if rescore and held - set(configs):
      raise StudyError(
          f"--rescore scores every arm of the study again; workdir {workdir!r} holds the arms "
          f"{', '.join(sorted(held))}, and this run names only {', '.join(configs)}: rerun "
          f"with its command ({saved_before.get('command', '')}) and --rescore")
  def check_arms():  # before study.json is written or grown
    for arm in arms:
      folder = os.path.join(workdir, arm.label)
      if os.path.isdir(folder):
        workdir_lib.check(folder, loop.config_to_dict(configs[arm.label]))

  saved = claim_workdir(workdir, settings, check_arms)
  if image_npz and not os.path.exists(image_npz):
    _write_quick_images(image_npz)
  records = {}
  for i, arm in enumerate(arms):
    log(f"[{name} {i + 1}/{len(arms)}] {arm.label}")
    ctx = ArmContext(study=study, arm=arm, config=configs[arm.label],
                     workdir=os.path.join(workdir, arm.label), study_dir=workdir,
                     settings=settings, seeds=seeds_lib.seed_list(configs[arm.label]), log=log,
                     rescore=rescore)
    records[arm.label] = run_arm(ctx)
  # Two runs growing one workdir (an arm per core) write its table one after
  # the other, each from the arms finished when it holds the lock, so the
  # last table written has every finished arm.
  with _folder_lock(workdir):
    return _write_table(study, workdir, quick=quick, settings=settings, records=records,
                        configs=configs, configs_of=configs_of, log=log)


def _write_table(study, workdir, *, quick, settings, records, configs, configs_of, log):
  """``run_study``'s table from the workdir's finished arms (under its lock)."""
  # The workdir's other arms (a study grown arm by arm, perhaps by another run
  # at the same time: study.json is read again): those finished at this budget
  # with this version's config are rows of the table, the others are named under it.
  saved = _read_json(os.path.join(workdir, SETTINGS_FILE))
  others = [a for a in study.arms_to_run(quick, saved["settings"].get("arms"))
            if a.label not in records]
  for label, config in configs_of(others).items():
    configs[label] = config
    record = finished_record(os.path.join(workdir, label), config)
    if record is not None:
      records[label] = record
  image_arms = [configs[label] for label in records if "npz_path" in configs[label].data]
  data = image_data(image_arms[0]) if image_arms else None
  table = build_table(study, saved["settings"], saved, workdir, records, data)
  if study.cross_test is not None:
    table["cross_test"] = cross = run_cross_test(study, workdir, settings, records, log)
    if cross is not None:
      for row in table["rows"]:
        i = cross["arms"].index(row["arm"])
        row["cells"].update(dict(zip(_CROSS_COLUMNS, (
            _cell([p["fp"][1 - i][i] for p in cross["per_seed"]]),
            _cell([p["fp"][i][1 - i] for p in cross["per_seed"]]),
            _cell([p["fp"][i][i] for p in cross["per_seed"]]),
            _cell([p["fn"][i] for p in cross["per_seed"]])))))
      table["columns"] = _columns(study, table["rows"])
  old = _read_json(os.path.join(workdir, "table.json"))
  if old is not None and {k: v for k, v in old.items() if k != "figures"} == table and all(
      os.path.exists(os.path.join(workdir, "figures", f)) for f in old.get("figures", [])):
    return old  # a finished study, resumed: nothing changes
  table["figures"] = write_figures(study, workdir, table)
  workdir_lib.write_json(os.path.join(workdir, "table.json"), table)
  tmp = os.path.join(workdir, "table.md.tmp")
  with open(tmp, "w", encoding="utf-8") as f:
    f.write(render_markdown(table))
  os.replace(tmp, os.path.join(workdir, "table.md"))
  return table


def study_status(workdir: str) -> dict[str, Any]:
  """How far the study in ``workdir`` is, read from its folder (nothing is written).

  Returns ``{'study', 'command', 'arms': [{'arm', 'state', 'step', 'steps',
  'frozen_seeds', 'seconds', 'sittings', ...}]}`` (``sittings``: see
  :func:`sittings_summary`); ``state`` is ``done``, ``diverged``,
  ``partial`` (stopped or running: it resumes from ``step``) or ``not started``.

  Raises:
    StudyError: no study in ``workdir``.
  """
  saved = _read_json(os.path.join(workdir, SETTINGS_FILE))
  if saved is None:
    raise StudyError(f"no study in {workdir!r} (no {SETTINGS_FILE})")
  settings = saved["settings"]
  study = STUDIES.get(settings["study"])
  if study is None:
    raise StudyError(f"{workdir!r} holds study {settings['study']!r}, which this version does "
                     f"not know; known: {', '.join(STUDIES)}")
  budget = budget_of(study, settings)
  rows = []
  for arm in study.arms_to_run(settings["quick"], settings.get("arms")):
    folder = os.path.join(workdir, arm.label)
    record = _read_json(os.path.join(folder, ARM_FILE), {})
    step = workdir_lib.latest_checkpoint_step(folder) if os.path.isdir(folder) else None
    if record.get("diverged"):
      state = "diverged"
    elif record.get("finished"):
      state = "done"
    elif step is None:
      state = "not started"
    else:
      state = "partial"
    rows.append({"arm": arm.label, "state": state, "step": step or 0, "steps": budget,
                 "frozen_seeds": frozen_seeds(folder) if os.path.isdir(folder) else [],
                 "seconds": round(_wall_seconds(record, folder), 1),
                 "sittings": (sittings_summary(folder, saved["machine"])
                              if os.path.isdir(folder) else None),
                 "replicas": sum(len(group) for _, group in
                                 arm_groups(arm, range(settings["num_seeds"]))),
                 "sweep": (f"{arm.sweep.label} over "
                           f"{', '.join(seeds_lib.value_label(v) for v in arm.sweep.values)}"
                           if arm.sweep else "")})
  return {"study": settings["study"], "command": saved.get("command", ""), "arms": rows}


def render_status(status: Mapping[str, Any]) -> str:
  lines = [f"Study `{status['study']}`; resume with: `{status['command']}`", "",
           "| arm | state | checkpoint step | of | frozen seeds | wall time so far | load |",
           "|---|---|---|---|---|---|---|"]
  for r in status["arms"]:
    swept = f" ({r['sweep']}, {r['replicas']} replicas)" if r["sweep"] else ""
    lines.append(f"| {r['arm']}{swept} | {r['state']} | {r['step']} | {r['steps']} | "
                 f"{len(r['frozen_seeds'])} of {r['replicas']} | "
                 f"{r['seconds'] / 60:.1f} min | {_load_text(r.get('sittings'))} |")
  return "\n".join(lines + ["", "load: the machine's 1-minute load average while the arm "
                             "trained, beside its logical cores, and the cores the arm kept "
                             "busy itself (own); a load well above both means other work "
                             "shared the cores."])


def publish(workdir: str, dest: str, *, replace: bool = False) -> list[str]:
  """Copies a study's table and its figures (not its runs) into ``dest``.

  For results kept beside the code (``experiments/results/NAME``): ``table.md``,
  ``table.json`` and the figures the table lists (``figures/``) land flat in
  ``dest``. The table is the study's as it stands (a study still running has
  the arms finished so far); it is read under the workdir's lock, so not while
  a run rewrites it. Files already in ``dest`` with the same bytes are left
  alone; ``dest``'s other files are never touched. Returns the names written.

  Raises:
    StudyError: ``workdir`` has no table or lacks a figure it lists, or
      (without ``replace``) a file of ``dest`` would change; nothing is
      written then.
  """
  if not os.path.isdir(workdir):
    raise StudyError(f"no study folder {workdir!r}")
  with _folder_lock(workdir):
    table = _read_json(os.path.join(workdir, "table.json"))
    if table is None or not os.path.isfile(os.path.join(workdir, "table.md")):
      raise StudyError(f"{workdir!r} holds no study table (table.json and table.md); run the "
                       "study first (the table is written when an arm finishes)")
    sources = {name: os.path.join(workdir, name) for name in ("table.md", "table.json")}
    sources.update({name: os.path.join(workdir, "figures", name)
                    for name in table.get("figures", [])})
    missing = [n for n, path in sources.items() if not os.path.isfile(path)]
    if missing:
      raise StudyError(f"{workdir!r} lacks {', '.join(missing)}, listed by its table; rerun "
                       "the study's command to draw its figures again")
    contents = {}
    for name, path in sources.items():
      with open(path, "rb") as f:
        contents[name] = f.read()

  def held(name: str) -> Optional[bytes]:
    path = os.path.join(dest, name)
    if not os.path.exists(path):
      return None
    with open(path, "rb") as f:
      return f.read()

  changes = {name: data for name, data in contents.items() if held(name) != data}
  differ = [n for n in changes if held(n) is not None]
  if differ and not replace:
    raise StudyError(f"{dest!r} already holds {', '.join(differ)} with other contents (an "
                     "earlier publication?); nothing was written. Publish into another folder, "
                     "or pass --replace_published to replace them.")
  try:
    os.makedirs(dest, exist_ok=True)
    for name, data in changes.items():
      tmp = os.path.join(dest, f".{name}.tmp")
      with open(tmp, "wb") as f:
        f.write(data)
      os.replace(tmp, os.path.join(dest, name))
  except OSError as e:
    raise StudyError(f"cannot publish into {dest!r}: {e}") from e
  return sorted(changes)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if FLAGS.replace_published and not FLAGS.publish:
    raise app.UsageError("--replace_published goes with --publish=DIR")
  if FLAGS.publish:
    if not FLAGS.workdir:
      raise app.UsageError("--publish needs --workdir (the study's folder)")
    try:
      written = publish(FLAGS.workdir, FLAGS.publish, replace=FLAGS.replace_published)
    except errors.UserError as e:
      print("error: " + " ".join(str(e).split()), file=sys.stderr, flush=True)
      sys.exit(2)
    print(f"{FLAGS.publish}: " + (f"wrote {', '.join(written)}" if written else
                                   "already holds this table and its figures"))
    return
  if FLAGS.status:
    if not FLAGS.workdir:
      raise app.UsageError("--status needs --workdir (the study's folder)")
    try:
      print(render_status(study_status(FLAGS.workdir)))
    except errors.UserError as e:
      print("error: " + " ".join(str(e).split()), file=sys.stderr, flush=True)
      sys.exit(2)
    return
  if not FLAGS.study or not FLAGS.workdir:
    raise app.UsageError(f"--study and --workdir are required; studies: {', '.join(STUDIES)}")
  logging.set_verbosity(logging.WARNING)
  try:
    table = run_study(FLAGS.study, FLAGS.workdir, quick=FLAGS.quick, num_seeds=FLAGS.num_seeds,
                      steps=FLAGS.steps, mnist_npz=FLAGS.mnist_npz, arms=FLAGS.arms,
                      rescore=FLAGS.rescore)
  except errors.UserError as e:
    print("error: " + " ".join(str(e).split()), file=sys.stderr, flush=True)
    sys.exit(2)
  print(render_markdown(table))


if __name__ == "__main__":
  define_flags()
  app.run(main)
