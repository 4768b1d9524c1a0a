"""The notebooks in colabs/ run: their code cells are executed in order."""

import glob
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "colabs", "*.ipynb")))


def notebook_script(path: str) -> str:
  """The notebook's code cells as one script; shell lines ('!pip ...') are skipped."""
  with open(path, encoding="utf-8") as f:
    nb = json.load(f)
  lines = []
  for cell in nb["cells"]:
    if cell["cell_type"] != "code":
      continue
    source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    lines += [l for l in source.splitlines() if not l.lstrip().startswith(("!", "%"))]
    lines.append("")
  return "\n".join(lines)


def test_there_are_notebooks():
  assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_runs(path, tmp_path):
  script = tmp_path / "nb.py"
  script.write_text(notebook_script(path))
  env = dict(os.environ, PYTHONPATH=ROOT, MPLBACKEND="Agg")
  out = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
