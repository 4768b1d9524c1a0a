"""The study runner (experiments/study.py): every study's --quick, its tables, resume, errors.

Each study's --quick runs once per test session (2 seeds, a few dozen steps),
in the folder the session's workers share (conftest.py), by whichever worker
asks first; the tests then read what it wrote.
"""

import dataclasses
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from unittest import mock

try:
  import fcntl
except ImportError:  # not POSIX: each test process makes its own runs
  fcntl = None

from absl.testing import absltest
from absl.testing import parameterized
import jax
import numpy as np
import pytest

from experiments import study as study_lib
from gan_jax import games
from gan_jax.data import make_source
from gan_jax.metrics import probes
from gan_jax.train import loop
from gan_jax.train import seeds as seeds_lib
from gan_jax.train import workdir as workdir_lib
from gan_jax.train import step as step_lib
from gan_jax.train import validate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = 2
_RUNS: dict = {}
_TMP = tempfile.mkdtemp(prefix="gan_jax_test_study_")


def _shared_folder():
  shared = os.environ.get("GAN_JAX_TEST_SHARED")  # set by conftest.py for the session
  if shared and fcntl is not None and os.path.isdir(shared):
    return os.path.join(shared, "quick_studies")
  return os.path.join(_TMP, "quick_studies")


def quick_run(name):
  """The workdir and table of study ``name``'s --quick run, made once per session:
  the first worker to ask runs it under a lock; the others wait for it and read
  its ``table.json`` (what ``run_study`` returned, written last)."""
  if name not in _RUNS:
    folder = _shared_folder()
    os.makedirs(folder, exist_ok=True)
    workdir = os.path.join(folder, name)
    done = os.path.join(folder, f"{name}.done")
    with open(os.path.join(folder, f"{name}.lock"), "w", encoding="utf-8") as lock:
      if fcntl is not None:
        fcntl.flock(lock, fcntl.LOCK_EX)
      if os.path.exists(done):
        with open(os.path.join(workdir, "table.json"), encoding="utf-8") as f:
          table = json.load(f)
      else:
        table = study_lib.run_study(name, workdir, quick=True, num_seeds=SEEDS,
                                    log=lambda m: None)
        with open(done, "w", encoding="utf-8"):
          pass
    _RUNS[name] = (workdir, table)
  return _RUNS[name]


def snapshot(folder):
  """Every file under ``folder`` with its content hash and modification time."""
  out = {}
  for root, _, files in os.walk(folder):
    for f in files:
      path = os.path.join(root, f)
      with open(path, "rb") as fh:
        out[os.path.relpath(path, folder)] = (hashlib.sha256(fh.read()).hexdigest(),
                                              os.stat(path).st_mtime_ns)
  return out


def mean_and_se(values):
  """Mean and standard error (ddof 1) of the finite values, by hand."""
  v = np.asarray([np.nan if x is None else x for x in values], np.float64)
  v = v[np.isfinite(v)]
  if not v.size:
    return None, None
  se = math.sqrt(np.sum((v - v.mean()) ** 2) / (v.size - 1) / v.size) if v.size > 1 else 0.0
  return float(v.mean()), se


def seed_histories(workdir):
  """Per run seed, its evaluation records in ``eval.jsonl`` by step (read here, not by
  the runner)."""
  out = {}
  with open(os.path.join(workdir, "eval.jsonl"), encoding="utf-8") as f:
    for line in f:
      r = json.loads(line)
      if r.get("seed") != "mean":
        out.setdefault(r.get("seed"), []).append(r)
  return {seed: sorted(records, key=lambda r: r["step"]) for seed, records in out.items()}



def _load_reported() -> bool:
  try:
    return os.getloadavg()[0] > 0
  except (AttributeError, OSError):
    return False


# Some sandboxes report no load average (always 0): the load checks need one.
_LOAD_REPORTED = _load_reported()

class QuickStudiesTest(parameterized.TestCase):

  @parameterized.named_parameters(*[(n, n) for n in study_lib.STUDIES])
  def test_quick_study_writes_table_and_figures(self, name):
    workdir, table = quick_run(name)
    study = study_lib.STUDIES[name]
    arms = [a.label for a in study.arms_to_run(quick=True)]
    self.assertTrue(set(arms) <= {a.label for a in study.arms})
    self.assertEqual(table["arms"], arms)
    self.assertEqual(list(dict.fromkeys(r["arm"] for r in table["rows"])), arms)
    with open(os.path.join(workdir, "table.json"), encoding="utf-8") as f:
      self.assertEqual(json.load(f), table)
    with open(os.path.join(workdir, "table.md"), encoding="utf-8") as f:
      md = f.read()
    self.assertIn(f"`python -m experiments.study --study={name} --workdir={workdir} --quick "
                  f"--num_seeds={SEEDS}`", md)
    self.assertIn("jax ", md)
    self.assertIn("not results", md)
    for arm in arms:
      self.assertIn(f"| {arm}", md)
    self.assertTrue(table["figures"])
    for figure in table["figures"]:
      path = os.path.join(workdir, "figures", figure)
      with open(path, "rb") as f:
        self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", figure)
    self.assertTrue(table["columns"])
    arms_of = {a.label: a for a in study.arms}
    for row in table["rows"]:
      # A swept arm's rows are its values, each a group of SEEDS run seeds.
      groups = study_lib.arm_groups(arms_of[row["arm"]], range(SEEDS))
      self.assertIn(row["seeds"], [g for _, g in groups])
      self.assertEqual(row["num_seeds"], SEEDS)
      self.assertEqual(row["steps"], table["steps"])
      self.assertGreater(row["wall_seconds"], 0)
      # The arm's sittings recorded this machine, its load where the OS reports
      # one, and the cores the arm kept busy.
      where = row["sittings"]
      self.assertEqual((where["other_machines"], where["logical_cores"]), ([], os.cpu_count()))
      if _LOAD_REPORTED:
        self.assertGreater(where["load_mean"], 0.0)
        self.assertGreater(where["own_cores"], 0.0)
        self.assertGreater(where["recorded_seconds"], 0.0)
        self.assertIn(f"| {row['wall_seconds']:.0f} | {where['load_mean']:.1f} / "
                      f"{os.cpu_count()}, own {where['own_cores']:.1f} |", md)
      self.assertTrue(row["cells"], row["row"])
      for column, cell in row["cells"].items():
        self.assertLen(cell["per_seed"], SEEDS)
        if cell["n"]:
          self.assertTrue(math.isfinite(cell["mean"]) and math.isfinite(cell["se"]),
                          (row["row"], column))
    for p in study.published:
      if p.row in arms or p.row not in {a.label for a in study.arms}:
        self.assertIn(f"{p.text} ({p.source})", md)

  @parameterized.named_parameters(
      *[(n, n) for n, s in study_lib.STUDIES.items() if s.scorer == "eval"])
  def test_table_is_mean_and_se_of_the_seeds_final_evaluations(self, name):
    workdir, table = quick_run(name)
    study = study_lib.STUDIES[name]
    columns = {c.name: c for c in study.columns}
    spread = 0
    for row in table["rows"]:
      history = seed_histories(os.path.join(workdir, row["arm"]))
      group = row["seeds"]  # the run seeds of the row (a swept value's group)
      arm = next(a for a in study.arms if a.label == row["arm"])
      self.assertEqual(sorted(history),
                       sorted(s for _, g in study_lib.arm_groups(arm, range(SEEDS)) for s in g))
      if row.get("sweep"):  # the records name the value of their seeds
        self.assertEqual({r[row["sweep"]["field"]] for s in group for r in history[s]},
                         {row["sweep"]["value"]})
      history = {i: history[s] for i, s in enumerate(group)}
      final = {seed: records[-1] for seed, records in history.items()}
      for name_, cell in row["cells"].items():
        column = columns[name_]
        if column.derived == "collapse_step":
          values = [study_lib._collapse_step([r["step"] for r in history[s]],
                                             [r["modes_captured"] for r in history[s]])
                    for s in (0, 1)]
        elif column.derived == "fewest_modes_late":
          values = [min(r["modes_captured"] for r in history[s]
                        if r["step"] > history[s][-1]["step"] / 2) for s in (0, 1)]
        elif column.derived == "most_modes":
          values = [max(r["modes_captured"] for r in history[s]) for s in (0, 1)]
        elif column.derived == "mean_modes":
          values = [float(np.mean([r["modes_captured"] for r in history[s]])) for s in (0, 1)]
        elif column.derived == "pacgan_modes_late":
          values = [float(np.mean([r["pacgan_modes"] for r in history[s]
                                   if r["step"] > 0.75 * history[s][-1]["step"]]))
                    for s in (0, 1)]
        elif column.derived == "all_modes_step":
          values = [study_lib._all_modes_step([r["step"] for r in history[s]],
                                              [r["modes_captured"] for r in history[s]],
                                              history[s][-1]["n_modes"]) for s in (0, 1)]
        else:
          values = [next((final[s][k] for k in column.keys if k in final[s]), None)
                    for s in (0, 1)]
        values = [None if v is None or math.isnan(v) else v for v in values]
        self.assertEqual(cell["per_seed"], values)
        mean, se = mean_and_se(values)
        if mean is None:
          self.assertEqual((cell["mean"], cell["se"], cell["n"]), (None, None, 0))
        else:
          self.assertAlmostEqual(cell["mean"], mean, places=12)
          self.assertAlmostEqual(cell["se"], se, places=12)
          spread += se > 0
        self.assertEqual(final[0]["step"], row["steps"])
    self.assertGreater(spread, 0)  # seeds that differ: the SE is really checked

  def test_gradient_table_is_the_seeds_probe_curves(self):
    workdir, table = quick_run("arjovsky")
    settings = study_lib.STUDIES["arjovsky"].quick_settings
    rows = {(r["arm"], r["generator_step"], r["sigma"]): r for r in table["rows"]}
    self.assertLen({k[2] for k in rows}, len(settings["sigmas"]))
    arms = [a.label for a in study_lib.STUDIES["arjovsky"].arms_to_run(quick=True)]
    self.assertIn("mnist_dcgan", arms)  # a generator with batch statistics
    for arm in arms:
      with open(os.path.join(workdir, arm, study_lib.ARM_FILE), encoding="utf-8") as f:
        probed = json.load(f)["gradients"]
      # The run stopped at each probe step and went on: every step was probed.
      self.assertEqual(sorted(int(s) for s in probed), [4, 8])
      for step, per_seed in probed.items():
        self.assertLen(per_seed, SEEDS)
        for sigma in per_seed[0]:
          row = rows[(arm, int(step), float(sigma))]
          values = [seed[sigma]["minimax_mean"][-1] for seed in per_seed]
          mean, se = mean_and_se(values)
          cell = row["cells"]["grad norm, log(1-D), last D it."]
          self.assertAlmostEqual(cell["mean"], mean, places=12)
          self.assertAlmostEqual(cell["se"], se, places=12)
          self.assertEqual(per_seed[0][sigma]["iterations"][-1], settings["iterations"])
    self.assertIn("gradients_mnist_dcgan.png", table["figures"])

  def test_stacked_mnist_table_is_the_seeds_scores(self):
    workdir, table = quick_run("stacked_mnist")
    for row in table["rows"]:
      with open(os.path.join(workdir, row["arm"], study_lib.ARM_FILE), encoding="utf-8") as f:
        scores = json.load(f)["scores"]
      self.assertEqual(scores["num_samples"],
                       study_lib.STUDIES["stacked_mnist"].quick_settings["num_samples"])
      covered = [s["modes_covered"] for s in scores["per_seed"]]
      self.assertTrue(all(1 <= c <= 1000 for c in covered))
      mean, se = mean_and_se(covered)
      cell = row["cells"]["modes covered (of 1000)"]
      self.assertAlmostEqual(cell["mean"], mean, places=12)
      self.assertAlmostEqual(cell["se"], se, places=12)
    self.assertIsNotNone(table["classifier"])
    self.assertEqual([p["row"] for p in table["published_only"]], ["VEEGAN", "PacDCGAN2"])
    for row in table["rows"]:
      self.assertIn("modes covered, confident reads", row["cells"])
      self.assertIn("share of confident reads", row["cells"])
    ref = table["real_reference"]
    self.assertEqual(ref["num_samples"],
                     study_lib.STUDIES["stacked_mnist"].quick_settings["num_samples"])
    self.assertTrue(0.0 <= ref["metrics"]["confident_share"] <= 1.0)
    with open(os.path.join(workdir, "table.md"), encoding="utf-8") as f:
      self.assertIn(f"Real draws read by the same classifier ({ref['num_samples']} draws",
                    f.read())

  def test_rescore_scores_final_samples_again_and_keeps_the_old(self):
    workdir = os.path.join(_TMP, "stacked_rescore")
    run = lambda **kw: study_lib.run_study("stacked_mnist", workdir, quick=True,
                                           num_seeds=SEEDS, log=lambda m: None, **kw)
    first = run()
    path = os.path.join(workdir, "dcgan", study_lib.ARM_FILE)
    with open(path, encoding="utf-8") as f:
      record = json.load(f)
    # As a run scored before the confident reads existed.
    for s in record["scores"]["per_seed"]:
      del s["confident_share"]
    with open(path, "w", encoding="utf-8") as f:
      json.dump(record, f)
    old, before = record["scores"], dict(record)
    self.assertEqual(run()["rows"][0]["cells"]["share of confident reads"]["n"], 0)
    table = run(rescore=True)
    with open(path, encoding="utf-8") as f:
      record = json.load(f)
    self.assertEqual(record["previous_scores"][0]["scores"], old)
    self.assertEqual(record["scoring_seconds"], before["scoring_seconds"])
    self.assertGreater(record["rescoring_seconds"], 0)
    self.assertEqual(table["rows"][0]["wall_seconds"], first["rows"][0]["wall_seconds"])
    # Sampling is keyed by seed: the same samples, so the same scores, and the new metric.
    self.assertEqual(table["rows"][0]["cells"], first["rows"][0]["cells"])
    self.assertEqual(table["rows"][0]["cells"]["share of confident reads"]["n"], SEEDS)
    self.assertEqual(record["scores"]["step"], old["step"])
    scored = ", ".join(n for n, st in study_lib.STUDIES.items() if st.scorer == "thousand_modes")
    self.assertIn("stacked_mnist, stacked_mnist_small_d, compositional_mnist", scored)
    with self.assertRaisesRegex(study_lib.StudyError, f"--rescore .*{scored}.*'che' is scored "
                                "by 'eval', not on final samples"):
      study_lib.run_study("che", os.path.join(_TMP, "never3"), quick=True, rescore=True)
    # A rescoring covers every arm of the workdir, or none (no table of mixed scorings).
    before = snapshot(workdir)
    with self.assertRaisesRegex(study_lib.StudyError, "--rescore scores every arm of the "
                                "study again; .* holds the arms dcgan, and this run names "
                                "only reg_dcgan"):
      run(rescore=True, arms=["reg_dcgan"])
    self.assertEqual(snapshot(workdir), before)

  def test_compositional_mnist_missing_modes_are_the_uncovered_ones(self):
    workdir, table = quick_run("compositional_mnist")
    self.assertEqual([r["arm"] for r in table["rows"]], ["dcgan"])
    for row in table["rows"]:
      with open(os.path.join(workdir, row["arm"], study_lib.ARM_FILE), encoding="utf-8") as f:
        per_seed = json.load(f)["scores"]["per_seed"]
      missing = [s["n_modes"] - s["modes_covered"] for s in per_seed]
      self.assertTrue(all(s["n_modes"] == 1000 for s in per_seed))
      mean, se = mean_and_se(missing)
      cell = row["cells"]["missing modes (#Miss, of 1000)"]
      self.assertAlmostEqual(cell["mean"], mean, places=12)
      self.assertAlmostEqual(cell["se"], se, places=12)
    dcgan = next(r for r in table["rows"] if r["arm"] == "dcgan")
    self.assertIn("204.7", dcgan["published"]["text"])

  def test_roth_mnist_cross_test_pairs_the_seeds_replicas(self):
    workdir, table = quick_run("roth_mnist")
    cross = table["cross_test"]
    self.assertEqual(cross["arms"], ["reg", "unreg"])
    self.assertLen(cross["per_seed"], SEEDS)
    for name, i, j in (("D of reg on samples of unreg", 0, 1),
                       ("D of unreg on samples of reg", 1, 0),
                       ("D of reg on samples of reg", 0, 0)):
      values = [p["fp"][i][j] for p in cross["per_seed"]]
      self.assertTrue(all(0.0 <= v <= 1.0 for v in values))
      mean, se = mean_and_se(values)
      self.assertAlmostEqual(cross["cells"][name]["mean"], mean, places=12)
      self.assertAlmostEqual(cross["cells"][name]["se"], se, places=12)
    # Seed 1's entry is the probe on seed 1's replicas of the two arms' checkpoints.
    from experiments import probe as probe_lib  # pylint: disable=g-import-not-at-top
    from gan_jax.train import loop  # pylint: disable=g-import-not-at-top
    folders = [os.path.join(workdir, a) for a in ("reg", "unreg")]
    _, _, source, config = probe_lib._load(folders[0], None, False)
    key = jax.random.key(0)
    n = study_lib.STUDIES["roth_mnist"].cross_test.quick_num_samples
    test, _ = probe_lib._held_out(source, config, jax.random.fold_in(key, 1), n)
    # The cells judge with batch statistics (as in training); inference mode
    # is the second table.
    pair = [loop.load_checkpoint(f, seed_index=1)[:2] for f in folders]
    for batch_statistics, per_seed in ((True, cross["per_seed"]),
                                       (False, cross["inference"]["per_seed"])):
      out = probes.cross_test(jax.random.fold_in(key, 3), pair, test, num_samples=n,
                              batch_statistics=batch_statistics)
      np.testing.assert_allclose(per_seed[1]["fp"], out["fp"], rtol=1e-6)
      np.testing.assert_allclose(per_seed[1]["fn"], out["fn"], rtol=1e-6)
    with open(os.path.join(workdir, "table.md"), encoding="utf-8") as f:
      md = f.read()
    self.assertEqual(md.count("| D of `reg` |"), 2)
    self.assertIn("in inference mode", md)

  def test_resuming_a_finished_study_changes_nothing(self):
    workdir, table = quick_run("che")
    before = snapshot(workdir)
    again = study_lib.run_study("che", workdir, quick=True, num_seeds=SEEDS, log=lambda m: None)
    self.assertEqual(again, table)
    self.assertEqual(snapshot(workdir), before)

  def test_progress_false_silences_the_arms_progress_lines_only(self):
    seen = []

    class Stop(Exception):
      pass

    def first_arm(ctx):
      seen.append(ctx.config)
      raise Stop
    for progress in (True, False):
      workdir = os.path.join(self.create_tempdir().full_path, "study")
      with mock.patch.object(study_lib, "run_arm", first_arm), self.assertRaises(Stop):
        study_lib.run_study("che", workdir, num_seeds=2, steps=100, log=lambda m: None,
                            progress=progress)
    self.assertEqual([c.train.progress for c in seen], [True, False])
    # Nothing else differs, and the field is not part of a run's identity.
    seen[1].train.progress = True
    self.assertEqual(seen[0].to_dict(), seen[1].to_dict())
    self.assertIn("train.progress", workdir_lib.RESUMABLE_FIELDS)

  def test_a_finished_study_resumed_draws_the_figures_of_this_version(self):
    workdir, table = quick_run("che")
    copy = os.path.join(self.create_tempdir().full_path, "copy")
    shutil.copytree(workdir, copy)
    # As a table written by a version without the per-seed figure.
    path = os.path.join(copy, "table.json")
    with open(path, encoding="utf-8") as f:
      old = json.load(f)
    old["figure_settings"]["per_seed_figure"] = False
    old["figures"].remove("modes_captured_per_seed.png")
    os.remove(os.path.join(copy, "figures", "modes_captured_per_seed.png"))
    with open(path, "w", encoding="utf-8") as f:
      json.dump(old, f)
    again = study_lib.run_study("che", copy, quick=True, num_seeds=SEEDS, log=lambda m: None)
    self.assertEqual(again["figures"], table["figures"])
    self.assertTrue(os.path.exists(os.path.join(copy, "figures", "modes_captured_per_seed.png")))

  def test_other_settings_and_foreign_folders_are_refused(self):
    workdir, _ = quick_run("che")
    before = snapshot(workdir)
    with self.assertRaisesRegex(study_lib.StudyError,
                                r"other settings \(num_seeds: saved 2, now 3\)"):
      study_lib.run_study("che", workdir, quick=True, num_seeds=3, log=lambda m: None)
    with self.assertRaisesRegex(study_lib.StudyError, "study 'che' made with other settings"):
      study_lib.run_study("roth", workdir, quick=True, num_seeds=SEEDS, log=lambda m: None)
    self.assertEqual(snapshot(workdir), before)
    mine = self.create_tempdir().full_path
    with open(os.path.join(mine, "notes.txt"), "w", encoding="utf-8") as f:
      f.write("mine")
    with self.assertRaisesRegex(study_lib.StudyError, "not empty and holds no study"):
      study_lib.run_study("che", mine, quick=True, log=lambda m: None)
    self.assertEqual(os.listdir(mine), ["notes.txt"])

  def test_a_diverged_arm_is_a_row_of_the_table(self):
    exploding = study_lib.Arm("exploding", "configs/che_circle.py:gan",
                              {"optim.generator.learning_rate": 1e30,
                               "optim.discriminator.learning_rate": 1e30})
    study = dataclasses.replace(study_lib.STUDIES["che"], name="diverging", arms=(exploding,),
                                quick_arms=())
    workdir = os.path.join(self.create_tempdir().full_path, "study")
    with mock.patch.dict(study_lib.STUDIES, {"diverging": study}):
      table = study_lib.run_study("diverging", workdir, quick=True, log=lambda m: None)
      self.assertIn("non-finite value", table["rows"][0]["diverged"])
      self.assertEqual(table["rows"][0]["cells"], {})
      with open(os.path.join(workdir, "table.md"), encoding="utf-8") as f:
        self.assertIn("| exploding | diverged |", f.read())
      before = snapshot(workdir)
      self.assertEqual(study_lib.run_study("diverging", workdir, quick=True,
                                           log=lambda m: None), table)
      self.assertEqual(snapshot(workdir), before)

  def test_an_arm_diverging_late_shows_its_last_evaluation(self):
    # A learning rate that jumps to 1e30 after three quarters of the run: the
    # evaluation at mid-run is finite, the run then diverges.
    jump = {"name": "linear", "init_value": 1e-4, "end_value": 1e30,
            "transition_steps": 300, "begin_step": 22_500}
    late = study_lib.Arm("late", "configs/che_circle.py:gan",
                         {"optim.generator.learning_rate": jump,
                          "optim.discriminator.learning_rate": jump})
    study = dataclasses.replace(study_lib.STUDIES["che"], name="diverging_late", arms=(late,),
                                quick_arms=())
    workdir = os.path.join(self.create_tempdir().full_path, "study")
    with mock.patch.dict(study_lib.STUDIES, {"diverging_late": study}):
      table = study_lib.run_study("diverging_late", workdir, quick=True, log=lambda m: None)
    row = table["rows"][0]
    self.assertIn("non-finite value", row["diverged"])
    history = study_lib.per_seed_records(os.path.join(workdir, "late", "eval.jsonl"))
    at = row["evaluated_at"]
    self.assertTrue(0 < at < row["steps"], (at, row["steps"]))
    modes = [next(r for r in history[s] if r["step"] == at)["modes_captured"] for s in (0, 1)]
    self.assertAlmostEqual(row["cells"]["modes captured"]["mean"], np.mean(modes))
    with open(os.path.join(workdir, "table.md"), encoding="utf-8") as f:
      self.assertIn(f"| diverged; values at {at} |", f.read())

  def test_a_seed_frozen_at_a_nan_leaves_the_others_in_the_table(self):
    from gan_jax import games  # pylint: disable=g-import-not-at-top
    from tests.test_seeds import _poisoning  # pylint: disable=g-import-not-at-top
    study = dataclasses.replace(study_lib.STUDIES["che"], name="freezing",
                                arms=(study_lib.STUDIES["che"].arms[0],), quick_arms=())
    workdir = os.path.join(self.create_tempdir().full_path, "study")
    original = study_lib.arm_config

    def stopping(*args, **kwargs):  # as arms ran before seeds could be frozen
      c = original(*args, **kwargs)
      c.train.nonfinite_seeds = "stop"
      return c

    with mock.patch.dict(study_lib.STUDIES, {"freezing": study}), \
        mock.patch.object(games, "make_game", _poisoning(games.make_game, from_step=10)):
      with mock.patch.object(study_lib, "arm_config", stopping):
        stopped = study_lib.run_study("freezing", workdir, quick=True, num_seeds=4,
                                      log=lambda m: None)
      self.assertRegex(stopped["rows"][0]["diverged"], r"^seed \d: non-finite")
      # Run again as studies now run: the stopped arm goes on with the other seeds.
      table = study_lib.run_study("freezing", workdir, quick=True, num_seeds=4,
                                  log=lambda m: None)
    row = table["rows"][0]
    self.assertIsNone(row["diverged"])
    frozen = row["frozen_seeds"]
    self.assertTrue(0 < len(frozen) < 4, frozen)  # the poison's condition splits the seeds
    cell = row["cells"]["modes captured"]
    self.assertEqual(cell["n"], 4 - len(frozen))
    self.assertEqual(sum(v is None for v in cell["per_seed"]), len(frozen))
    with open(os.path.join(workdir, "table.md"), encoding="utf-8") as f:
      text = f.read()
    self.assertIn("Seeds frozen at a NaN or inf", text)
    self.assertIn(frozen[0], text)

  def test_gradient_probe_skips_a_frozen_seed(self):
    from gan_jax import games  # pylint: disable=g-import-not-at-top
    from tests.test_seeds import _poisoning  # pylint: disable=g-import-not-at-top
    workdir = os.path.join(self.create_tempdir().full_path, "study")
    with mock.patch.object(games, "make_game", _poisoning(games.make_game, from_step=2)):
      table = study_lib.run_study("arjovsky", workdir, quick=True, num_seeds=4,
                                  log=lambda m: None)
    row = table["rows"][0]
    frozen = len(row["frozen_seeds"])
    self.assertTrue(0 < frozen < 4, row["frozen_seeds"])
    record = json.load(open(os.path.join(workdir, "mnist_dcgan", study_lib.ARM_FILE)))
    for per_seed in record["gradients"].values():
      self.assertEqual(sum(p is None for p in per_seed), frozen)  # frozen before step 4
    for r in table["rows"]:
      self.assertTrue(all(c["n"] == 4 - frozen for c in r["cells"].values()), r["cells"])
    self.assertTrue(os.path.isfile(os.path.join(workdir, "figures", "gradients_mnist_dcgan.png")))

  def test_an_interrupted_gradient_probe_resumes_probe_by_probe(self):
    whole_dir, whole = quick_run("arjovsky")
    workdir = os.path.join(_TMP, "arjovsky_interrupted")
    real_probe, calls = study_lib.gradient_probe, []

    def counting_probe(*args, **kwargs):
      fn = real_probe(*args, **kwargs)

      def probe(key, state, sigma):
        calls.append(sigma)
        if len(calls) == 4:
          raise KeyboardInterrupt  # killed during its 4th probe
        return fn(key, state, sigma)
      return probe

    run = lambda: study_lib.run_study("arjovsky", workdir, quick=True, num_seeds=SEEDS,
                                      log=lambda m: None)
    with mock.patch.object(study_lib, "gradient_probe", counting_probe):
      with self.assertRaises(KeyboardInterrupt):
        run()
      with open(os.path.join(workdir, "mnist_dcgan", study_lib.ARM_FILE), encoding="utf-8") as f:
        self.assertLen(next(iter(json.load(f)["gradients_partial"].values())), 3)
      table = run()
    s = study_lib.STUDIES["arjovsky"].quick_settings
    total = len(s["fractions"]) * len(s["sigmas"]) * SEEDS
    self.assertLen(calls, total + 1)  # the 4th again, and none of the 3 kept
    with open(os.path.join(workdir, "mnist_dcgan", study_lib.ARM_FILE), encoding="utf-8") as f:
      resumed = json.load(f)
    with open(os.path.join(whole_dir, "mnist_dcgan", study_lib.ARM_FILE), encoding="utf-8") as f:
      uninterrupted = json.load(f)
    self.assertNotIn("gradients_partial", resumed)
    # The same curves as the study run without interruption, and the same table cells.
    self.assertEqual(resumed["gradients"], uninterrupted["gradients"])
    self.assertEqual([r["cells"] for r in table["rows"]], [r["cells"] for r in whole["rows"]])

  def test_publish_copies_the_table_and_figures_and_never_overwrites_silently(self):
    workdir, table = quick_run("che")
    dest = os.path.join(self.create_tempdir().full_path, "results", "che")
    written = study_lib.publish(workdir, dest)
    self.assertEqual(written, sorted(["table.md", "table.json"] + table["figures"]))
    for name in written:
      src = os.path.join(workdir, "figures" if name.endswith(".png") else "", name)
      with open(src, "rb") as f, open(os.path.join(dest, name), "rb") as g:
        self.assertEqual(f.read(), g.read(), name)
    self.assertEqual(study_lib.publish(workdir, dest), [])  # the same: nothing to do
    with open(os.path.join(dest, "notes.txt"), "w", encoding="utf-8") as f:
      f.write("mine")
    with open(os.path.join(dest, "table.md"), "a", encoding="utf-8") as f:
      f.write("an edit\n")
    before = snapshot(dest)
    with self.assertRaisesRegex(study_lib.StudyError, "holds table.md with other contents"):
      study_lib.publish(workdir, dest)
    self.assertEqual(snapshot(dest), before)  # nothing written
    self.assertEqual(study_lib.publish(workdir, dest, replace=True), ["table.md"])
    with open(os.path.join(dest, "notes.txt"), encoding="utf-8") as f:
      self.assertEqual(f.read(), "mine")  # other files are not touched
    with self.assertRaisesRegex(study_lib.StudyError, "holds no study table"):
      study_lib.publish(self.create_tempdir().full_path, dest)
    # A figure the table lists but the folder lacks: refused, nothing written.
    copy = os.path.join(self.create_tempdir().full_path, "copy")
    shutil.copytree(workdir, copy)
    os.remove(os.path.join(copy, "figures", table["figures"][0]))
    elsewhere = os.path.join(self.create_tempdir().full_path, "new")
    with self.assertRaisesRegex(study_lib.StudyError, f"lacks {table['figures'][0]}"):
      study_lib.publish(copy, elsewhere)
    self.assertFalse(os.path.exists(elsewhere))

  def test_status_reads_the_folder_and_changes_nothing(self):
    workdir, table = quick_run("che")
    before = snapshot(workdir)
    status = study_lib.study_status(workdir)
    self.assertEqual(status["study"], "che")
    self.assertEqual([r["arm"] for r in status["arms"]], [r["arm"] for r in table["rows"]])
    for r in status["arms"]:
      self.assertEqual((r["state"], r["step"], r["steps"]), ("done", 40, 40))
      self.assertGreater(r["seconds"], 0.0)
      # The same load as the table's row of the arm.
      row = next(t for t in table["rows"] if t["arm"] == r["arm"])
      self.assertEqual(r["sittings"], row["sittings"])
    self.assertIn("| gan | done | 40 | 40 | 0 of 2 |", study_lib.render_status(status))
    self.assertIn(f" | {study_lib._load_text(status['arms'][0]['sittings'])} |",
                  study_lib.render_status(status))
    self.assertEqual(snapshot(workdir), before)
    # An arm interrupted (no record yet) is partial at its checkpoint.
    copy = os.path.join(self.create_tempdir().full_path, "copy")
    shutil.copytree(workdir, copy)
    os.remove(os.path.join(copy, "gan", study_lib.ARM_FILE))
    shutil.rmtree(os.path.join(copy, "reg_gan"))
    states = {r["arm"]: (r["state"], r["step"]) for r in study_lib.study_status(copy)["arms"]}
    self.assertEqual(states, {"gan": ("partial", 40), "reg_gan": ("not started", 0)})
    with self.assertRaisesRegex(study_lib.StudyError, "no study in"):
      study_lib.study_status(self.create_tempdir().full_path)

  def test_a_part_of_the_arms(self):
    workdir = os.path.join(_TMP, "che_part")
    table = study_lib.run_study("che", workdir, quick=True, num_seeds=SEEDS, arms=["reg_gan"],
                                log=lambda m: None)
    self.assertEqual([r["arm"] for r in table["rows"]], ["reg_gan"])
    self.assertFalse(os.path.exists(os.path.join(workdir, "gan")))
    self.assertIn("--arms=reg_gan", table["command"])
    with self.assertRaisesRegex(study_lib.StudyError,
                                r"unknown arm\(s\) 'regan'.*did you mean 'reg_gan'.*valid: "
                                r"gan, reg_gan"):
      study_lib.run_study("che", os.path.join(_TMP, "never2"), quick=True, arms=["regan"])

  def test_a_study_grown_arm_by_arm_is_the_study_run_at_once(self):
    _, whole = quick_run("che")
    workdir = os.path.join(_TMP, "che_grown")
    first = study_lib.run_study("che", workdir, quick=True, num_seeds=SEEDS, arms=["gan"],
                                log=lambda m: None)
    self.assertEqual(first["arms"], ["gan"])
    grown = study_lib.run_study("che", workdir, quick=True, num_seeds=SEEDS, arms=["reg_gan"],
                                log=lambda m: None)
    self.assertEqual(grown["arms"], ["gan", "reg_gan"])
    self.assertEqual([r["row"] for r in grown["rows"]], [r["row"] for r in whole["rows"]])
    for mine, theirs in zip(grown["rows"], whole["rows"]):
      self.assertEqual(mine["cells"], theirs["cells"])
    self.assertEqual(grown["rows"][0]["wall_seconds"], first["rows"][0]["wall_seconds"])
    # The workdir's command now makes the whole study; the first one is kept.
    self.assertNotIn("--arms", grown["command"])
    with open(os.path.join(workdir, study_lib.SETTINGS_FILE), encoding="utf-8") as f:
      saved = json.load(f)
    self.assertEqual(saved["earlier_commands"], [first["command"]])
    self.assertEqual(saved["settings"]["arms"], ["gan", "reg_gan"])  # pinned, not "default"
    self.assertIn("reg_gan", open(os.path.join(workdir, "table.md"), encoding="utf-8").read())
    # Other settings are still refused, arms or not.
    with self.assertRaisesRegex(study_lib.StudyError, "num_seeds: saved 2, now 3"):
      study_lib.run_study("che", workdir, quick=True, num_seeds=3, arms=["gan"],
                          log=lambda m: None)
    # An arm of the workdir not finished is named under the table, not a row of it.
    copy = os.path.join(self.create_tempdir().full_path, "copy")
    shutil.copytree(workdir, copy)
    os.remove(os.path.join(copy, "reg_gan", study_lib.ARM_FILE))
    part = study_lib.run_study("che", copy, quick=True, num_seeds=SEEDS, arms=["gan"],
                               log=lambda m: None)
    self.assertEqual((part["arms"], part["arms_not_finished"]), (["gan"], ["reg_gan"]))
    self.assertIn("not finished yet (not in the table; the command above trains them): "
                  "`reg_gan`", open(os.path.join(copy, "table.md"), encoding="utf-8").read())
    self.assertFalse(os.path.exists(os.path.join(copy, "reg_gan", study_lib.ARM_FILE)))

  def test_an_image_study_grown_by_a_toy_arm_keeps_its_image_data(self):
    workdir, table = quick_run("arjovsky")  # its quick arm: the MNIST DCGAN
    copy = os.path.join(self.create_tempdir().full_path, "copy")
    shutil.copytree(workdir, copy)
    # The quick image set's path in the arm's config is absolute: the copy's own.
    config_path = os.path.join(copy, "mnist_dcgan", workdir_lib.CONFIG_FILE)
    with open(config_path, encoding="utf-8") as f:
      config = json.load(f)
    config["data"]["npz_path"] = os.path.join(os.path.abspath(copy), "quick_images.npz")
    with open(config_path, "w", encoding="utf-8") as f:
      json.dump(config, f)
    grown = study_lib.run_study("arjovsky", copy, quick=True, num_seeds=SEEDS,
                                arms=["toy_ring_8"], log=lambda m: None)
    self.assertEqual(grown["arms"], ["toy_ring_8", "mnist_dcgan"])
    self.assertEqual({**grown["data"], "origin": None}, {**table["data"], "origin": None})
    self.assertEqual(grown["data"]["origin"],
                     "npz:" + os.path.join(os.path.abspath(copy), "quick_images.npz"))
    self.assertEqual([r for r in grown["rows"] if r["arm"] == "mnist_dcgan"],
                     [r for r in table["rows"]])
    self.assertIn("--arms=toy_ring_8,mnist_dcgan", grown["command"])
    # A finished arm of another budget (an older version's) is not mixed into the table.
    with open(os.path.join(copy, "toy_ring_8", study_lib.ARM_FILE), encoding="utf-8") as f:
      record = json.load(f)
    self.assertIsNotNone(study_lib.finished_record(
        os.path.join(copy, "toy_ring_8"), study_lib.arm_config(
            study_lib.STUDIES["arjovsky"], study_lib.STUDIES["arjovsky"].arms[0],
            steps=record["steps"], num_seeds=SEEDS, quick=True, image_npz="")))
    self.assertIsNone(study_lib.finished_record(
        os.path.join(copy, "toy_ring_8"), study_lib.arm_config(
            study_lib.STUDIES["arjovsky"], study_lib.STUDIES["arjovsky"].arms[0],
            steps=record["steps"] * 2, num_seeds=SEEDS, quick=True, image_npz="")))

  def test_grown_settings_are_the_union_of_the_arms(self):
    study = study_lib.STUDIES["pacgan"]
    of = lambda arms: study_lib.settings_of("pacgan", quick=True, num_seeds=2, steps=None,
                                            mnist_npz="", arms=arms)
    default = of(None)  # --quick: the quick arms
    grown = study_lib.grown_settings(default, of(["wgan_gp_grid_25"]))
    self.assertEqual(grown["arms"], [a.label for a in study.arms if a.label in
                                     {"wgan_gp_grid_25", *study.quick_arms}])
    self.assertEqual({k: v for k, v in grown.items() if k != "arms"}, default)
    # Back to the default selection: the arms named, the plain command.
    back = study_lib.grown_settings(of(list(study.quick_arms[:1])),
                                    of(list(study.quick_arms[1:])))
    self.assertEqual(back, {**default, "arms": study_lib.arm_labels(default)})
    self.assertNotIn("--arms", study_lib.command_of(back, "w"))
    everything = study_lib.grown_settings(grown, of([a.label for a in study.arms]))
    self.assertEqual(everything["arms"], [a.label for a in study.arms])

  def test_arms_are_compared_with_their_baseline(self):
    workdir, table = quick_run("che")
    rows = {r["arm"]: r for r in table["rows"]}
    column = table["columns"][0]
    want = seeds_lib.welch(rows["reg_gan"]["cells"][column]["per_seed"],
                           rows["gan"]["cells"][column]["per_seed"])
    self.assertEqual(table["comparisons"],
                     [{"arm": "reg_gan", "baseline": "gan", "column": column, **want}])
    with open(os.path.join(workdir, "table.md"), encoding="utf-8") as f:
      md = f.read()
    self.assertIn(f"- `reg_gan` − `gan`: {want['diff']:+.3g} ± {want['se']:.2g} (", md)

  def test_comparisons_pair_each_arm_with_its_groups_baseline(self):
    def row(arm, group, values, label=None):
      return {"row": label or arm, "arm": arm, "group": group,
              "cells": {"m": {"per_seed": values}}}
    rows = [row("a_ring", "ring", [1.0, 2.0, 3.0]), row("b_ring", "ring", [5.0, 6.0, 8.0]),
            row("a_grid", "grid", [0.0, 1.0]), row("b_grid", "grid", [4.0, 4.0, 5.0]),
            row("b_grid", "grid", [9.0, 9.5], label="b_grid, gamma=1"),  # a sweep's row
            row("c_none", "cube", [1.0, 2.0])]  # no baseline in its group
    comps = study_lib.comparisons(rows, ("a_ring", "a_grid"), "m")
    self.assertEqual([(c["arm"], c["baseline"]) for c in comps],
                     [("b_ring", "a_ring"), ("b_grid", "a_grid"), ("b_grid, gamma=1", "a_grid")])
    # A swept arm's value as the baseline.
    self.assertEqual([(c["arm"], c["baseline"]) for c in study_lib.comparisons(
        rows, ("b_grid, gamma=1",), "m")], [("a_grid", "b_grid, gamma=1"),
                                            ("b_grid", "b_grid, gamma=1")])
    self.assertAlmostEqual(comps[0]["diff"], 19.0 / 3 - 2.0, places=12)
    self.assertEqual(comps[1], {"arm": "b_grid", "baseline": "a_grid", "column": "m",
                                **seeds_lib.welch([4.0, 4.0, 5.0], [0.0, 1.0])})
    self.assertEqual(study_lib.STUDIES["roth_gamma"].baselines, ("minimax, gamma=0",))
    with self.assertRaisesRegex(ValueError, "baselines must be rows of the study .*one per "
                                "group"):
      study_lib._register(dataclasses.replace(  # pylint: disable=protected-access
          study_lib.STUDIES["che"], name="two_baselines", baselines=("gan", "reg_gan")))
    self.assertNotIn("two_baselines", study_lib.STUDIES)

  def test_committed_tables_of_one_study_are_compared_across_folders(self):
    from experiments import compare  # pylint: disable=g-import-not-at-top
    results = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "experiments", "results")
    folders = [os.path.join(results, n) for n in ("pacgan", "pacgan_instance_noise")]
    comps = compare.compare(folders)
    tables = [json.load(open(os.path.join(f, "table.json"), encoding="utf-8")) for f in folders]
    column = tables[0]["columns"][0]
    cell = lambda t, arm: next(r for r in t["rows"] if r["arm"] == arm)["cells"][column]
    self.assertEqual(comps, [{"arm": "instance_noise_grid_25", "baseline": "gan_grid_25",
                              "column": column, **seeds_lib.welch(
                                  cell(tables[1], "instance_noise_grid_25")["per_seed"],
                                  cell(tables[0], "gan_grid_25")["per_seed"])}])
    with self.assertRaisesRegex(study_lib.StudyError, "in both"):
      compare.compare(folders + folders[:1])
    with self.assertRaisesRegex(study_lib.StudyError, "a table of study 'che'"):
      compare.compare(folders + [os.path.join(results, "che")])
    with self.assertRaisesRegex(study_lib.StudyError, "unknown column 'mode'.*modes"):
      compare.compare(folders, column="mode")

  def test_a_workdir_keeps_its_arms_when_the_study_gains_one(self):
    workdir, _ = quick_run("che")
    che = study_lib.STUDIES["che"]
    more = dataclasses.replace(che, arms=che.arms + (dataclasses.replace(
        che.arms[0], label="gan_again"),), quick_arms=che.quick_arms + ("gan_again",))
    with mock.patch.dict(study_lib.STUDIES, {"che": more}):
      self.assertEqual([r["arm"] for r in study_lib.study_status(workdir)["arms"]],
                       [a.label for a in che.arms_to_run(quick=True)])

  def test_a_new_workdir_is_claimed_under_its_lock(self):
    # Two runs starting one new study at once: the second waits, then grows it.
    workdir = os.path.join(self.create_tempdir().full_path, "new")
    settings = study_lib.settings_of("che", quick=True, num_seeds=SEEDS, steps=None,
                                     mnist_npz="", arms=["gan"])
    os.makedirs(workdir)
    done = threading.Event()
    worker = threading.Thread(target=lambda: (study_lib.claim_workdir(workdir, settings),
                                              done.set()))
    with study_lib._folder_lock(workdir):  # pylint: disable=protected-access
      worker.start()
      self.assertFalse(done.wait(0.5))
      self.assertFalse(os.path.exists(os.path.join(workdir, study_lib.SETTINGS_FILE)))
    worker.join(30)
    self.assertTrue(done.is_set())
    with open(os.path.join(workdir, study_lib.SETTINGS_FILE), encoding="utf-8") as f:
      self.assertEqual(json.load(f)["settings"]["arms"], ["gan"])
    # A refused claim of a folder it made leaves nothing behind.
    gone = os.path.join(self.create_tempdir().full_path, "refused")
    with self.assertRaises(study_lib.StudyError):
      study_lib.claim_workdir(gone, settings, check_arms=lambda: (_ for _ in ()).throw(
          study_lib.StudyError("no")))
    self.assertFalse(os.path.exists(gone))

  def test_named_arms_need_not_be_quick_arms(self):
    study = study_lib.STUDIES["pacgan"]
    other = next(a.label for a in study.arms if a.label not in study.quick_arms)
    self.assertEqual([a.label for a in study.arms_to_run(True, [other])], [other])
    self.assertEqual([a.label for a in study.arms_to_run(True)], list(study.quick_arms))
    settings = study_lib.settings_of("pacgan", quick=True, num_seeds=1, steps=None,
                                     mnist_npz="", arms=[other])
    self.assertEqual(settings["arms"], [other])

  def test_quick_arms_must_name_arms_of_the_study(self):
    # A study whose arms were replaced but whose quick_arms were not: --quick
    # would train nothing; it is refused with the arms it has.
    study = dataclasses.replace(study_lib.STUDIES["roth_gamma"], name="stale",
                                arms=(study_lib.STUDIES["roth"].arms[0],))
    with self.assertRaisesRegex(ValueError, r"quick_arms \['minimax'\] are not among its "
                                r"arms; the arms are \['unreg_minimax'\]"):
      study.arms_to_run(True)
    with mock.patch.dict(study_lib.STUDIES, {}):
      with self.assertRaisesRegex(ValueError, "quick_arms"):
        study_lib._register(study)
      self.assertNotIn("stale", study_lib.STUDIES)

  def test_unknown_study_lists_the_valid_ones(self):
    with self.assertRaisesRegex(study_lib.StudyError,
                                "unknown study 'pacman' .*did you mean 'pacgan'.*; valid: "
                                + ", ".join(study_lib.STUDIES)):
      study_lib.run_study("pacman", os.path.join(_TMP, "never"))
    self.assertFalse(os.path.exists(os.path.join(_TMP, "never")))

  def test_command_line_reports_user_errors(self):
    env = {**os.environ, "PYTHONPATH": ROOT}
    out = subprocess.run([sys.executable, "-m", "experiments.study", "--study=nope",
                          f"--workdir={os.path.join(_TMP, 'cli')}"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300, check=False)
    self.assertEqual(out.returncode, 2, out.stderr)
    self.assertIn("unknown study 'nope'", out.stderr)
    self.assertIn(", ".join(study_lib.STUDIES), out.stderr)


class DefinitionsTest(parameterized.TestCase):

  def test_collapse_step(self):
    steps = [10, 20, 30, 40, 50]
    self.assertEqual(study_lib._collapse_step(steps, [3, 7, 7, 5, 4]), 40.0)
    self.assertEqual(study_lib._collapse_step(steps, [3, 7, 5, 7, 4]), 50.0)
    self.assertTrue(math.isnan(study_lib._collapse_step(steps, [3, 7, 5, 6, 7])))
    self.assertEqual(study_lib._collapse_step(steps, [7, 2, 1, 1, 0]), 20.0)
    self.assertEqual(study_lib._collapse_step(steps, [7, 2, float("nan"), 1, 0]), 20.0)

  def test_fewest_modes_in_the_second_half(self):
    steps = [10, 20, 30, 40, 50]
    # The dip at step 30 (> 50 / 2) counts, the one at step 20 does not.
    self.assertEqual(study_lib._fewest_late(steps, [7, 1, 4, 7, 7]), 4.0)
    self.assertEqual(study_lib._fewest_late(steps, [7, 1, 7, 7, 6]), 6.0)
    self.assertEqual(study_lib._fewest_late(steps, [7, 1, float("nan"), 5, 7]), 5.0)
    self.assertTrue(math.isnan(study_lib._fewest_late(steps, [7, 7, 7, 7, float("nan")])))
    self.assertTrue(math.isnan(study_lib._fewest_late([], [])))

  def test_mean_over_the_last_quarter(self):
    # Values equal to their steps 1..100: steps 76..100 are after 75, mean 88.
    self.assertEqual(study_lib._late_mean(list(range(1, 101)), list(range(1, 101))), 88.0)
    steps = [10, 20, 30, 40, 50, 60, 70, 80]
    # Steps after 0.75 * 80 = 60: 70 and 80 (60 itself is not after it).
    self.assertEqual(study_lib._late_mean(steps, [0, 0, 0, 0, 0, 9, 3, 5]), 4.0)
    self.assertEqual(study_lib._late_mean(steps, [0, 0, 0, 0, 0, 9, float("nan"), 5]), 5.0)
    self.assertEqual(study_lib._late_mean(steps, [0] * 5 + [9, 3, 5], fraction=0.5), 17 / 4)
    self.assertTrue(math.isnan(study_lib._late_mean(steps, [8] * 7 + [float("nan")])))
    self.assertTrue(math.isnan(study_lib._late_mean([], [])))
    records = [{"step": s, "pacgan_modes": v} for s, v in zip(steps, [1, 1, 1, 1, 1, 1, 6, 8])]
    self.assertEqual(study_lib.DERIVED["pacgan_modes_late"](records), 7.0)
    records[6]["pacgan_modes"] = None
    self.assertEqual(study_lib.DERIVED["pacgan_modes_late"](records), 8.0)

  def test_sittings_summary_weights_the_load_by_time_and_names_other_machines(self):
    here = {"cpu": "A", "devices": "1 x cpu", "logical_cores": 2}
    gpu = {"cpu": "B", "devices": "1 x gpu", "logical_cores": 8}
    folder = self.create_tempdir().full_path
    lines = [{"total": 100.0, "load_mean": 1.0, "cpu_seconds": 50.0, "machine": here},
             # Another Python on the same machine is the same machine.
             {"total": 300.0, "load_mean": 3.0, "cpu_seconds": 150.0,
              "machine": dict(here, python="3.12")},
             {"total": 50.0},  # an older sitting: no load, no machine
             # Another machine's sittings are named, not averaged with this one's.
             {"total": 20.0, "load_mean": 9.0, "cpu_seconds": 160.0, "machine": gpu},
             {"total": 5.0, "load_mean": 8.0, "cpu_seconds": 40.0,
              "machine": dict(gpu, jax="0.11")},
             {"total": 0.0, "load_mean": 99.0, "machine": here}]  # killed at once: no weight
    with open(os.path.join(folder, "timings.jsonl"), "w", encoding="utf-8") as f:
      f.writelines(json.dumps(line) + "\n" for line in lines)
    out = study_lib.sittings_summary(folder, here)
    self.assertEqual(out["load_mean"], 2.5)  # (100 * 1 + 300 * 3) / 400
    self.assertEqual(out["own_cores"], 0.5)  # (50 + 150) / 400
    self.assertEqual(out["recorded_seconds"], 400.0)
    self.assertEqual(out["other_machines"], [gpu])
    self.assertEqual(out["logical_cores"], 2)  # the study's machine's
    empty = study_lib.sittings_summary(self.create_tempdir().full_path, here)
    self.assertEqual((empty["load_mean"], empty["own_cores"], empty["logical_cores"],
                      empty["other_machines"]), (None, None, 2, []))
    self.assertEqual(study_lib._load_text(out), "2.5 / 2, own 0.5")
    self.assertEqual(study_lib._load_text(empty), "")
    # The table names the other machine under it, once.
    _, table = quick_run("che")
    table = json.loads(json.dumps(table))
    for row in table["rows"]:
      row["sittings"] = out
    md = study_lib.render_markdown(table)
    self.assertEqual(md.count("trained (for some or all of its sittings) on another machine: "
                              "B, 8 logical cores, devices 1 x gpu."), len(table["rows"]))

  def test_most_modes(self):
    self.assertEqual(study_lib._most([3, 8, float("nan"), 5]), 8.0)
    self.assertTrue(math.isnan(study_lib._most([float("nan")])))
    self.assertTrue(math.isnan(study_lib._most([])))
    self.assertAlmostEqual(study_lib._mean_over_evaluations([3, 8, float("nan"), 4]), 5.0)
    self.assertTrue(math.isnan(study_lib._mean_over_evaluations([float("nan")])))

  def test_all_modes_step(self):
    self.assertEqual(study_lib._all_modes_step([5, 10, 15], [3, 8, 7], 8), 10.0)
    self.assertTrue(math.isnan(study_lib._all_modes_step([5, 10], [3, 7], 8)))

  def test_overrides_and_budget(self):
    study = study_lib.STUDIES["roth"]
    arm = next(a for a in study.arms if a.label == "reg_annealed")
    c = study_lib.arm_config(study, arm, steps=5000, num_seeds=3, quick=False, image_npz="")
    self.assertEqual(c.game.penalty.weight.total_steps, 5000)  # scaled with the run
    self.assertEqual((c.train.num_steps, c.train.num_seeds), (5000, 3))
    self.assertEqual(c.train.num_steps % c.train.steps_per_call, 0)
    self.assertEqual(c.train.eval_every % c.train.steps_per_call, 0)
    beta = study_lib.STUDIES["betagan"]
    c = study_lib.arm_config(beta, beta.arms[0], steps=700, num_seeds=1, quick=False, image_npz="")
    level = c.game.perturbation.level
    self.assertEqual((level.uniform_steps, level.steps_per_level), (100, 20))  # 1/20 of 14,000
    c = study_lib.load_config("configs/che_circle.py:gan")
    with self.assertRaisesRegex(study_lib.StudyError, "override 'game.penalti.weight': no "
                                "field 'game.penalti'; game has .*penalty, penalty_2"):
      study_lib.apply_overrides(c, {"game.penalti.weight": 1.0})

  def test_gradient_probe_equals_the_probes_diagnostics(self):
    # The study's probe passes the generator's batch statistics as an argument
    # (one program for every seed and step); its curves are those of
    # probes.generator_gradient_diagnostics, which bakes them in.
    c = study_lib.load_config("configs/che_circle.py:gan")
    c.model.generator.update({"widths": (8, 8), "batch_norm": True})
    c.model.discriminator.widths = (8,)
    source = make_source(c.data)
    game = games.make_game(c, source)
    state = step_lib.init_state(game, 0, step_lib.make_mesh(1))
    # Non-trivial running statistics, as after training.
    state = state.replace(model_state=jax.tree.map(lambda x: x + 0.3, state.model_state))
    settings = {"iterations": 2, "every": 1, "num_batches": 2, "learning_rate": 1e-3}
    key = jax.random.key(3)
    ours = study_lib.gradient_probe(game, settings, 8)(key, state, 0.1)
    theirs = probes.generator_gradient_diagnostics(
        key, game, state, sigmas=(0.1,), iterations=2, every=1, num_batches=2, batch_size=8,
        learning_rate=1e-3)[0.1]
    for name, value in jax.device_get(theirs)._asdict().items():
      np.testing.assert_allclose(ours[name], value, rtol=1e-5, atol=1e-7, err_msg=name)

  def test_every_arm_of_every_study_builds(self):
    # The full arms (not only --quick's): configs, overrides, budget and the
    # validation that needs no tracing; the games are built on their data.
    npz = study_lib._write_quick_images(os.path.join(self.create_tempdir().full_path, "m.npz"))
    for name, study in study_lib.STUDIES.items():
      for quick in (False, True):
        budget = study.quick_steps if quick else study.steps
        for arm in study.arms_to_run(quick):
          c = study_lib.arm_config(study, arm, steps=budget, num_seeds=5, quick=quick,
                                   image_npz=npz if study.images else "")
          validate.check_train(c)
          validate.check_game_fields(c)
          validate.check_sweep(c)
          source = make_source(c.data)
          validate.check_model_fields(c, source)
          self.assertIsNotNone(games.make_game(c, source), (name, arm.label))

  def test_stacked_mnist_arms_change_only_their_method(self):
    # Each stabilizer arm is the DCGAN-28 baseline with its method's fields and
    # nothing else, at the study's budget and at a CPU budget (schedules scaled).
    study = study_lib.STUDIES["stacked_mnist"]
    arms = {a.label: a for a in study.arms}
    flat = lambda arm, steps: _flat_config(study, arm, steps)
    absent = object()
    for steps in (20_000, 2_000):
      base = flat(arms["dcgan"], steps)
      changed = {}
      for label, arm in arms.items():
        mine = flat(arm, steps)
        # A number that became a schedule is named by the schedule's fields.
        changed[label] = {k: mine.get(k, absent) for k in set(base) | set(mine)
                          if mine.get(k, absent) != base.get(k, absent)
                          and not (k not in mine and any(m.startswith(k + ".") for m in mine))}
      self.assertEqual(changed["dcgan"], {})
      self.assertEqual(changed["reg_dcgan"], {"game.name": "reg_gan"})
      self.assertEqual(changed["roth_dcgan"], {
          "game.penalty.name": "roth_js", "game.penalty.weight.name": "gamma_decay",
          "game.penalty.weight.gamma_0": 2.0, "game.penalty.weight.decay": 0.01,
          "game.penalty.weight.total_steps": steps})
      self.assertEqual(changed["instance_noise_dcgan"], {
          "game.perturbation.name": "instance_noise",
          "game.perturbation.level.name": "linear", "game.perturbation.level.init_value": 0.5,
          "game.perturbation.level.end_value": 0.0,
          "game.perturbation.level.transition_steps": steps * 3 // 4})
      gp = changed["wgan_gp_dcgan"]
      method = {"game.loss": "wasserstein", "game.n_critic": 5,
                "model.discriminator.batch_norm": False, "game.penalty.name": "wgan_gp",
                "game.penalty.weight": 10.0, "optim.generator.learning_rate": 1e-4,
                "optim.generator.b1": 0.0, "optim.generator.b2": 0.9,
                "optim.discriminator.learning_rate": 1e-4, "optim.discriminator.b1": 0.0,
                "optim.discriminator.b2": 0.9}
      self.assertEqual({k: gp.get(k) for k in method}, method)
      self.assertEqual(set(gp), set(method) & set(gp))
      beta = changed["betagan_dcgan"]
      self.assertEqual({k: v for k, v in beta.items() if not k.startswith(
          "game.perturbation.level.")},
                       {"game.loss": "minimax", "game.perturbation.name": "heat",
                        "model.latent_shape": [2352], "model.latent_prior": "uniform",
                        "game.perturbation.kwargs.low": -1.0,
                        "game.perturbation.kwargs.high": 1.0})
      self.assertEqual((beta["game.perturbation.level.uniform_steps"],
                        beta["game.perturbation.level.steps_per_level"],
                        beta["game.perturbation.level.K"]),
                       (steps // 7, 4 * steps // 7 // 20, 20))
      # The variant is the beta-GAN arm with DCGAN's non-saturating generator loss.
      self.assertEqual(changed["betagan_ns_dcgan"],
                       {k: v for k, v in beta.items() if k != "game.loss"})
      self.assertEqual(flat(arms["betagan_ns_dcgan"], steps)["game.loss"], "non_saturating")
      sgld = changed["sgld_dcgan"]
      full = flat(arms["sgld_dcgan"], steps)
      self.assertEqual((sgld.pop("game.ensemble"), full["optim.discriminator.name"],
                        full["optim.discriminator.learning_rate"],
                        full["optim.discriminator.data_size"],
                        full["optim.discriminator.weight_decay"]),
                       (5, "sgld", 2e-4, "auto", 1e-5))
      self.assertTrue(all(k.startswith("optim.discriminator.") for k in sgld), sgld)


  def test_small_d_arms_are_the_stacked_arms_with_a_quarter_width_discriminator(self):
    stacked, small = (study_lib.STUDIES[n] for n in ("stacked_mnist", "stacked_mnist_small_d"))
    self.assertEqual([a.label for a in small.arms], [a.label for a in stacked.arms])
    for quick in (False, True):
      steps = small.quick_steps if quick else 2_000
      for a, b in zip(stacked.arms, small.arms):
        mine, base = (_flat_config(s, arm, steps, quick=quick)
                      for s, arm in ((small, b), (stacked, a)))
        diff = {k: (base.get(k), v) for k, v in mine.items() if base.get(k) != v}
        self.assertEqual(set(mine), set(base), b.label)
        # Full size a quarter of 64; quick size (generator 8) keeps the ratio.
        self.assertEqual(diff, {"model.discriminator.base_features":
                                ((8, 2) if quick else (64, 16))}, b.label)


def _flat_config(study, arm, steps, quick=False):
  """An arm's config as {dotted path: value}, 3 seeds."""
  c = study_lib.arm_config(study, arm, steps=steps, num_seeds=3, quick=quick, image_npz="")
  out = {}

  def walk(node, prefix):
    for k, v in node.items():
      if isinstance(v, dict):
        walk(v, f"{prefix}{k}.")
      else:
        out[prefix + k] = v
  walk(loop.config_to_dict(c), "")
  return out


class SweptArmTest(parameterized.TestCase):
  """An arm that sweeps a field (``Sweep``): a row, a curve and a group of seeds per value."""

  def test_groups_are_the_loops_replicas(self):
    # The study's reading of the run seeds of each value is the loop's own.
    from gan_jax.train import seeds as seeds_lib  # pylint: disable=g-import-not-at-top
    study = study_lib.STUDIES["roth_gamma"]
    arm = study.arms[0]
    c = study_lib.arm_config(study, arm, steps=study.steps, num_seeds=3, quick=False,
                             image_npz="")
    replicas = list(zip(seeds_lib.seed_list(c), seeds_lib.replica_sweep_values(c)))
    self.assertLen(replicas, 3 * len(arm.sweep.values))
    for value, group in study_lib.arm_groups(arm, range(3)):
      self.assertEqual([s for s, v in replicas if v == value], group)
    self.assertEqual(study_lib.arm_groups(study_lib.STUDIES["che"].arms[0], range(3)),
                     [(None, [0, 1, 2])])

  def test_annealed_arm_sweeps_the_schedules_start(self):
    # roth_gamma's second arm sweeps a number inside a schedule: each value
    # group anneals from its own gamma_0, over the budget the run was given.
    from gan_jax.train import seeds as seeds_lib  # pylint: disable=g-import-not-at-top
    study = study_lib.STUDIES["roth_gamma"]
    arm = next(a for a in study.arms if a.label == "annealed")
    c = study_lib.arm_config(study, arm, steps=50_000, num_seeds=2, quick=False,
                             image_npz="")
    self.assertEqual(c.train.sweep_field, "game.penalty.weight.gamma_0")
    self.assertEqual(c.game.penalty.weight.total_steps, 50_000)
    self.assertEqual(list(seeds_lib.replica_sweep_values(c)),
                     [v for v in arm.sweep.values for _ in range(2)])
    self.assertEqual(study_lib.arm_groups(arm, range(2)),
                     [(v, [2 * k, 2 * k + 1]) for k, v in enumerate(arm.sweep.values)])

  def test_quick_sweep_has_a_row_and_curve_per_value(self):
    workdir, table = quick_run("roth_gamma")
    arm = study_lib.STUDIES["roth_gamma"].arms[0]
    self.assertEqual(study_lib.STUDIES["roth_gamma"].quick_arms, (arm.label,))
    labels = [f"{arm.label}, gamma={v:g}" for v in arm.sweep.values]
    self.assertEqual([r["row"] for r in table["rows"]], labels)
    self.assertEqual([r["sweep"]["value"] for r in table["rows"]], list(arm.sweep.values))
    # The values were really different in the program: the weight the step
    # gave the penalty (a metric of the compiled step) is each group's value.
    metrics = study_lib.per_seed_records(os.path.join(workdir, arm.label, "metrics.jsonl"))
    for row in table["rows"]:
      for seed in row["seeds"]:
        np.testing.assert_allclose([r["penalty_weight"] for r in metrics[seed]],
                                   row["sweep"]["value"], rtol=1e-6)
    # One program: one run whose config has every value, and whose stacked
    # state holds V x S replicas.
    with open(os.path.join(workdir, arm.label, "config.json"), encoding="utf-8") as f:
      saved = json.load(f)["train"]
    self.assertEqual((saved["sweep_field"], tuple(saved["sweep_values"]), saved["num_seeds"]),
                     (arm.sweep.field, arm.sweep.values, SEEDS))
    _, stacked, _ = loop.load_checkpoint(os.path.join(workdir, arm.label), seed_index=None)
    self.assertEqual(np.shape(stacked.step), (len(arm.sweep.values) * SEEDS,))
    # Status names the sweep and counts its replicas.
    text = study_lib.render_status(study_lib.study_status(workdir))
    self.assertIn(f"| {arm.label} (gamma over 0, 0.01, 0.1, 1, {4 * SEEDS} replicas) | done |",
                  text)
    # Each value's curve is its own group's mean.
    for value, group in study_lib.arm_groups(arm, range(SEEDS)):
      means = study_lib.mean_records(os.path.join(workdir, arm.label, "eval.jsonl"),
                                     arm.sweep, value)
      self.assertTrue(means)
      history = seed_histories(os.path.join(workdir, arm.label))
      for r in means:
        energy = [next(h for h in history[s] if h["step"] == r["step"])["energy_distance"]
                  for s in group]
        self.assertAlmostEqual(r["energy_distance"], float(np.mean(energy)), places=5)
    with open(os.path.join(workdir, "table.md"), encoding="utf-8") as f:
      md = f.read()
    for label in labels:
      self.assertIn(f"| {label} |", md)
    self.assertIn("sweeping `game.penalty.weight` over 0, 0.01, 0.1, 1 in one program", md)

  def test_only_eval_studies_take_swept_arms(self):
    arm = dataclasses.replace(study_lib.STUDIES["roth_gamma"].arms[0], label="swept")
    study = dataclasses.replace(study_lib.STUDIES["arjovsky"], name="swept_probe", arms=(arm,))
    with mock.patch.dict(study_lib.STUDIES, {}):
      with self.assertRaisesRegex(ValueError, "arm.s. swept sweep a field.*'gradients'"):
        study_lib._register(study)
      crossed = dataclasses.replace(study_lib.STUDIES["roth_mnist"], name="swept_cross",
                                    scorer="eval", arms=(arm,),
                                    cross_test=study_lib.CrossTest("swept", "other"))
      with self.assertRaisesRegex(ValueError, "cross-test pairs the arms' replicas"):
        study_lib._register(crossed)
      self.assertNotIn("swept_cross", study_lib.STUDIES)

  def test_a_bad_sweep_is_refused_before_anything_is_written(self):
    arm = study_lib.Arm("bad", "configs/roth_submanifold.py:unreg",
                        sweep=study_lib.Sweep("game.penalty.weight", (0.0, 0.1)))
    study = dataclasses.replace(study_lib.STUDIES["roth_gamma"], name="bad_sweep", arms=(arm,),
                                quick_arms=())
    workdir = os.path.join(self.create_tempdir().full_path, "study")
    with mock.patch.dict(study_lib.STUDIES, {"bad_sweep": study}):
      with self.assertRaisesRegex(Exception, "cannot be swept in this config.*"
                                  "optim.generator.learning_rate"):
        study_lib.run_study("bad_sweep", workdir, quick=True, log=lambda m: None)
    self.assertFalse(os.path.exists(workdir))

  def test_a_swept_arm_freezes_seeds_even_with_one_seed_per_value(self):
    study = study_lib.STUDIES["roth_gamma"]
    c = study_lib.arm_config(study, study.arms[0], steps=40, num_seeds=1, quick=True,
                             image_npz="")
    self.assertEqual(c.train.nonfinite_seeds, "freeze")  # 4 replicas, one per value


@pytest.mark.slow
class EveryArmTrainsTest(parameterized.TestCase):
  """The slow set: every arm of every study trained at --quick size, not only the
  quick arms (the full studies' wiring before hours go into them)."""

  @parameterized.named_parameters(*[(n, n) for n in study_lib.STUDIES])
  def test_every_arm_trains_and_is_a_row(self, name):
    study = study_lib.STUDIES[name]
    arms = [a.label for a in study.arms]
    workdir = os.path.join(_TMP, f"every_arm_{name}")
    table = study_lib.run_study(name, workdir, quick=True, num_seeds=SEEDS, arms=arms,
                                log=lambda m: None)
    self.assertEqual(table["arms"], arms)
    self.assertEqual(list(dict.fromkeys(r["arm"] for r in table["rows"])), arms)
    for row in table["rows"]:
      self.assertEqual(row["steps"], table["steps"], row["row"])
      self.assertTrue(row["cells"], row["row"])
      # Each arm trained to its budget and was scored, or its row says it diverged.
      if not row.get("diverged"):
        self.assertTrue(any(c["n"] for c in row["cells"].values()), row["row"])


def tearDownModule():
  shutil.rmtree(_TMP, ignore_errors=True)


if __name__ == "__main__":
  absltest.main()
