"""The notebooks in colabs/ run in a Jupyter kernel, displays included.

Each notebook is executed as it is by nbclient in a fresh kernel, with
GAN_JAX_NOTEBOOK_QUICK=1 (every training shortened to seconds, nothing else
in the notebook changed; the kernel compiles at the suite's XLA optimization
level): no cell may fail, and the cells meant to show a figure or numbers
must show them. The notebooks as stored must hold the outputs of a full run.
"""

import glob
import json
import os
import re

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLABS = os.path.join(ROOT, "colabs")
NOTEBOOKS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(COLABS, "*.ipynb")))

# For each notebook, (a snippet of a cell's source, what the cell must display):
# "image" for at least one PNG, else a regular expression its text output must match.
EXPECTED = {
    "quickstart.ipynb": [
        ("config_registry.config_names()", r"betagan_mixture_3d.*roth_submanifold"),
        ("loop.train_and_evaluate(", r"'modes_captured'"),
        ("plotting.curves_figure(", "image"),
        ("plotting.samples_figure(", "image"),
        ("modes.toy_metrics(", r"step \d+: \d of 5 modes, high-quality share"),
        ("draws.append", r"mean \d\.\d\d \(3\), std \d\.\d\d \(0\.5\)"),
    ],
    "betagan_annealing.ipynb": [
        ("schedules.beta_levels(", r"beta_1 = 0\.1.*beta_20 = 7\.94"),
        ("schedules_figure(", "image"),
        ("heat = jax.jit(perturb.heated_sample", "image"),
        ("loop.train_and_evaluate(", r"trained \d+ steps"),
        ("def target_at(", "image"),
        ("energy_distance(", "image"),
        ("plotting.curves_figure(", "image"),
        ("final = ", r"\d of 5 modes captured, high-quality share \d\.\d\d"),
    ],
    "roth_regularizer.ipynb": [
        ("c.game.penalty.name", r"reg: roth_js weight 0\.1.*unreg: none weight 0"),
        ("modes over training", "image"),
        ("samples_figure(", "image"),
        ("final_table", r"reg +\d \d\.\d\d .*\n.*unreg +\d \d\.\d\d"),
    ],
    "seeds_and_studies.ipynb": [
        ("loop.train_and_evaluate(circle_config(5)", r"a parameter leaf has shape \(5, "),
        ("records = [json.loads", r"seed 4: \d of 6 modes.*mean over 5: \d\.\d \+- \d\.\d\d modes"),
        ("seed_curves_figure(", "image"),
        ("short_five = loop.train_and_evaluate(",
         r"after 200 steps: largest parameter difference (0\.0e\+00|\d\.\de-0[5-9]|\d\.\de-[1-9]\d), "
         r"same keys True\nafter \d+ steps: .*same keys True"),
        ("study_lib.run_study(", r"\| gan \|.*\n\| reg_gan \|"),
        ("modes_captured.png", "image"),
        ("published = {", "image"),
    ],
    "langevin_samplers.ipynb": [
        ("posterior_mean =", r"exact posterior mean \[.*\], std \[.*\]"),
        ("report(\"sgld", r"sgld.*n_eff +\d+ .*max \|z\|"),
        ("same_chain", r"largest difference .* posterior std"),
        ("report(\"cc_sgld", r"cc_sgld complement.*n_eff"),
        ("ellipse", "image"),
    ],
}


def _source(cell) -> str:
  return cell.source if isinstance(cell.source, str) else "".join(cell.source)


def _text(cell) -> str:
  parts = []
  for out in cell.get("outputs", []):
    if out.output_type == "stream" and out.name == "stdout":
      parts.append(out.text)
    elif out.output_type in ("execute_result", "display_data"):
      parts.append(out.get("data", {}).get("text/plain", ""))
  return "".join(parts)


def _has_image(cell) -> bool:
  return any("image/png" in out.get("data", {}) for out in cell.get("outputs", []))


def _errors(nb) -> list[str]:
  return [f"cell {i}: {out.ename}: {out.evalue}" for i, cell in enumerate(nb.cells)
          if cell.cell_type == "code" for out in cell.get("outputs", [])
          if out.output_type == "error"]


def _cell(nb, snippet: str):
  cells = [c for c in nb.cells if c.cell_type == "code" and snippet in _source(c)]
  assert cells, f"no code cell contains {snippet!r}"
  return cells[0]


def check_displays(nb, name: str) -> None:
  assert not _errors(nb), _errors(nb)
  for snippet, expected in EXPECTED[name]:
    cell = _cell(nb, snippet)
    if expected == "image":
      assert _has_image(cell), f"{name}: the cell with {snippet!r} shows no figure"
    else:
      assert re.search(expected, _text(cell), re.S), (
          f"{name}: the cell with {snippet!r} shows {_text(cell)[-1500:]!r}, "
          f"expected to match {expected!r}")


def execute(name: str, workdir, extra_cells=()) -> nbformat.NotebookNode:
  """Runs colabs/<name> in a fresh kernel in ``workdir``, quick mode, outputs kept."""
  nb = nbformat.read(os.path.join(COLABS, name), as_version=4)
  for source in extra_cells:
    nb.cells.append(nbformat.v4.new_code_cell(source))
  env = dict(os.environ, GAN_JAX_NOTEBOOK_QUICK="1")
  # A user's kernel: one CPU device (not the tests' eight fake ones) and the
  # notebook's own inline figures (not the tests' Agg backend). Its programs
  # compile at the level tests/conftest.py sets for the suite, which the notebooks'
  # own comparisons, made within one kernel, do not depend on.
  env["XLA_FLAGS"] = "--xla_backend_optimization_level=0"
  env.pop("MPLBACKEND", None)
  # An uninstalled checkout imports gan_jax and configs from its root; an
  # installed one from site-packages. The kernel runs outside the checkout.
  env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
  client = NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                          resources={"metadata": {"path": str(workdir)}})
  client.execute(env=env)
  return nb


def test_the_notebooks_are_the_expected_ones():
  assert NOTEBOOKS == sorted(EXPECTED)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_stored_notebook_has_outputs_of_a_full_run(name):
  """What a reader sees before running anything: a full run, in order, no errors."""
  path = os.path.join(COLABS, name)
  assert os.path.getsize(path) < 1_500_000, f"{name} is {os.path.getsize(path)} bytes"
  nb = nbformat.read(path, as_version=4)
  nbformat.validate(nb)
  sources = [_source(c) for c in nb.cells if c.cell_type == "code"]
  # The first cell installs gan_jax on Colab only; a cell reads the quick switch.
  assert "google.colab" in sources[0] and "pip install" in sources[0]
  assert any('os.environ.get("GAN_JAX_NOTEBOOK_QUICK"' in s for s in sources)
  counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
  assert counts == list(range(1, len(counts) + 1)), f"{name} not run top to bottom: {counts}"
  assert "full run" in _text(_cell(nb, "GAN_JAX_NOTEBOOK_QUICK"))
  check_displays(nb, name)


@pytest.mark.parametrize("name", [n for n in NOTEBOOKS if n != "langevin_samplers.ipynb"])
def test_notebook_runs(name, tmp_path):
  nb = execute(name, tmp_path)
  assert "quick run" in _text(_cell(nb, "GAN_JAX_NOTEBOOK_QUICK"))
  check_displays(nb, name)


def _z_scores(result: dict, posterior: dict) -> tuple[float, float]:
  """Largest |error| / standard error of the samples' mean and covariance entries.

  With ``n`` effective samples of ``N(mu, Sigma)`` the sample mean has standard
  error ``sqrt(Sigma_jj / n)`` and the covariance entry ``(j, k)`` about
  ``sqrt((Sigma_jj Sigma_kk + Sigma_jk^2) / n)``.
  """
  mu, sigma = np.asarray(posterior["mean"]), np.asarray(posterior["cov"])
  mean, cov, n = np.asarray(result["mean"]), np.asarray(result["cov"]), result["n_eff"]
  var = np.diag(sigma)
  z_mean = (mean - mu) / np.sqrt(var / n)
  z_cov = (cov - sigma) / np.sqrt((np.outer(var, var) + sigma ** 2) / n)
  return float(np.max(np.abs(z_mean))), float(np.max(np.abs(z_cov)))


# The errors of 2 means and 3 covariance entries are each about standard normal
# for a correct sampler: all below 4.5 but with probability ~3e-5 (the n_eff
# estimate itself is good to some 20%, which the margin covers).
Z_TOLERANCE = 4.5


def test_langevin_notebook_samples_the_exact_posterior(tmp_path):
  nb = execute("langevin_samplers.ipynb", tmp_path, extra_cells=[
      "import json\nprint('RESULTS=' + json.dumps({'posterior': posterior, 'results': results,"
      " 'same_chain': same_chain}))"])
  assert "quick run" in _text(_cell(nb, "GAN_JAX_NOTEBOOK_QUICK"))
  check_displays(nb, "langevin_samplers.ipynb")
  printed = _text(nb.cells[-1])
  out = json.loads(printed.split("RESULTS=", 1)[1])
  posterior, results = out["posterior"], out["results"]
  for name in ("sgld", "cc_sgld complement"):
    assert results[name]["n_eff"] > 30, (name, results[name]["n_eff"])
    z_mean, z_cov = _z_scores(results[name], posterior)
    assert z_mean < Z_TOLERANCE and z_cov < Z_TOLERANCE, (name, z_mean, z_cov)
  # The check can fail: data_size set to the minibatch size (a common mistake)
  # samples a posterior N / B times too wide, far outside the tolerance.
  _, z_cov = _z_scores(results["sgld, data_size=B"], posterior)
  assert z_cov > 3 * Z_TOLERANCE, z_cov
  # Mean-loss gradients with data_size=N are summed-energy gradients with
  # data_size=1 and the step divided by N: the same chain up to rounding.
  assert out["same_chain"] < 1e-3
