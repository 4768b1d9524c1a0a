r"""Arms of committed study tables against their baseline, seed by seed.

A study's table compares its arms with its baselines itself
(``Study.baselines``; the lines under ``table.md``). Rows published from
several workdirs of one study (each with some of its arms, e.g.
``experiments/results/pacgan*``) are compared here, from their ``table.json``
files: each one-arm row against the baseline row of its group, in one column,
with Welch's t-test over the seeds (``gan_jax.train.seeds.welch``)::

  python -m experiments.compare experiments/results/pacgan \
      experiments/results/pacgan_instance_noise experiments/results/pacgan_reg_gan

Rows are compared only at equal budgets (steps) with their baseline; a table
of another study, or two copies of one arm, is refused.
"""

import json
import os
from typing import Any, Optional, Sequence

from absl import app
from absl import flags

from experiments import study as study_lib

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string("column", "", "The column compared (default: the tables' first).")
  flags.DEFINE_list("baselines", [], "Baseline arms, one per group (default: the study's).")


def load_rows(folders: Sequence[str]) -> tuple[str, list[str], list[dict[str, Any]]]:
  """The study, the first table's columns and the rows of the tables in ``folders``."""
  if not folders:
    raise study_lib.StudyError("name at least one folder holding a table.json")
  study, columns, rows, seen = None, None, [], {}
  for folder in folders:
    path = os.path.join(folder, "table.json") if os.path.isdir(folder) else folder
    if not os.path.isfile(path):
      raise study_lib.StudyError(f"no table.json in {folder!r}")
    with open(path, encoding="utf-8") as f:
      table = json.load(f)
    if study is None:
      study, columns = table["study"], list(table["columns"])
    elif table["study"] != study:
      raise study_lib.StudyError(f"{path} is a table of study {table['study']!r}, the first "
                                 f"of {study!r}: compare tables of one study")
    for row in table["rows"]:
      if row["row"] in seen:
        raise study_lib.StudyError(f"row {row['row']!r} is in both {seen[row['row']]} and "
                                   f"{path}: name one of them")
      seen[row["row"]] = path
      rows.append(row)
  return study, columns, rows


def compare(folders: Sequence[str], column: str = "",
            baselines: Optional[Sequence[str]] = None) -> list[dict[str, Any]]:
  """``study.comparisons`` over the rows of the tables in ``folders``."""
  study, columns, rows = load_rows(folders)
  column = column or columns[0]
  if column not in columns:
    raise study_lib.StudyError(f"unknown column {column!r}; the tables' columns: "
                               f"{', '.join(columns)}")
  if not baselines:
    baselines = study_lib.STUDIES[study].baselines if study in study_lib.STUDIES else ()
  if not baselines:
    raise study_lib.StudyError(f"study {study!r} names no baselines: pass --baselines")
  steps = {r["row"]: r["steps"] for r in rows}
  comps = study_lib.comparisons(rows, baselines, column)
  other = [f"{c['arm']} ({steps[c['arm']]} steps) against {c['baseline']} "
           f"({steps[c['baseline']]})" for c in comps if steps[c["arm"]] != steps[c["baseline"]]]
  if other:
    raise study_lib.StudyError("rows at other budgets than their baseline's: "
                               + "; ".join(other))
  return comps


def main(argv):
  try:
    comps = compare(argv[1:], FLAGS.column, FLAGS.baselines)
  except study_lib.StudyError as e:
    raise app.UsageError(str(e)) from None
  print("\n".join(study_lib.comparison_lines(comps)).strip())


if __name__ == "__main__":
  define_flags()
  app.run(main)
