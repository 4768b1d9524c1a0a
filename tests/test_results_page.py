"""RESULTS.md against the study tables committed under experiments/results/.

The page is written by hand around the tables; these checks catch a table that
is committed but not reported, and a headline number copied wrongly: every
row's headline cell (its mean +- SE) must appear, to the digits shown, in a
section of the page that names the table's folder. A row that is one arm
(not a probe's or a sweep's row of it, nor a cell of a cross-test) must have it
on a line that names the arm's label in backticks, as the page's tables do
(`` `gan_ring_8` ``): a number quoted under the wrong arm of the right section
fails.
"""

import glob
import json
import os
import re

from absl.testing import absltest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "experiments", "results")
_NUMBER = r"(-?\d[\d,]*(?:\.\d+)?(?:e-?\d+)?)"
_PAIR = re.compile(_NUMBER + r" \+- " + _NUMBER)


def shown_matches(shown: str, value: float) -> bool:
  """Whether ``shown`` (as printed: '1,194', '0.33', '1.5e-6') is ``value`` rounded."""
  text = shown.replace(",", "")
  mantissa, _, exponent = text.partition("e")
  decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
  half_unit = 0.5 * 10.0 ** (int(exponent or 0) - decimals)
  return abs(float(text) - value) <= half_unit * (1 + 1e-9)


def sections(page: str) -> list[str]:
  """The page's ``## `` sections, bold marks removed."""
  return re.split(r"\n(?=## )", page.replace("**", ""))


def headline_columns(table: dict) -> list[str]:
  """A row's headline: the gradient probe's norms after the D iterations, else
  the main (first) column."""
  probe = [c for c in table["columns"] if c.startswith("grad norm") and "last D it." in c]
  return probe or table["columns"][:1]


def missing_headlines(table: dict, text: str) -> list[str]:
  """The rows of ``table`` whose headline cells ``text`` does not quote."""
  pairs = _PAIR.findall(text)
  out = []
  for row in table["rows"]:
    for column in headline_columns(table):
      cell = row["cells"].get(column)
      if not cell or cell.get("mean") is None:
        continue
      if not any(shown_matches(m, cell["mean"]) and shown_matches(s, cell["se"])
                 for m, s in pairs):
        out.append(f"{row['row']}: {column} = {cell['mean']:.4g} +- {cell['se']:.2g}")
  return out


def misplaced_headlines(table: dict, text: str) -> list[str]:
  """The one-arm rows of ``table`` whose headline no line naming the arm quotes."""
  if table.get("cross_test"):  # a matrix: an arm's cells sit in the other arm's row
    return []
  out = []
  for row in table["rows"]:
    if row["row"] != row.get("arm"):
      continue
    lines = "\n".join(l for l in text.splitlines() if f"`{row['arm']}`" in l)
    out += missing_headlines({**table, "rows": [row]}, lines)
  return out


class ShownNumbersTest(absltest.TestCase):

  def test_rounding(self):
    self.assertTrue(shown_matches("1,194", 1194.4))
    self.assertFalse(shown_matches("1,194", 1194.6))
    self.assertTrue(shown_matches("0.33", 1 / 3))
    self.assertFalse(shown_matches("0.34", 1 / 3))
    self.assertTrue(shown_matches("1.5e-6", 1.54e-6))
    self.assertFalse(shown_matches("1.5e-6", 1.56e-6))
    self.assertTrue(shown_matches("7", 7.0))

  def test_a_wrong_number_is_found(self):
    table = {"columns": ["modes"],
             "rows": [{"row": "a", "cells": {"modes": {"mean": 19.667, "se": 3.48}}}]}
    self.assertEqual(missing_headlines(table, "| a | 19.7 +- 3.5 (13, 21, 25) |"), [])
    self.assertLen(missing_headlines(table, "| a | 18.7 +- 3.5 |"), 1)
    self.assertLen(missing_headlines(table, "| a | 19.7 +- 0.35 |"), 1)

  def test_a_number_under_the_wrong_arm_is_found(self):
    table = {"columns": ["modes"],
             "rows": [{"row": "a", "arm": "a", "cells": {"modes": {"mean": 3.0, "se": 0.5}}},
                      {"row": "b", "arm": "b", "cells": {"modes": {"mean": 5.0, "se": 1.0}}}]}
    right = "| one (`a`) | 3 +- 0.5 |\n| two (`b`) | 5 +- 1 |"
    swapped = "| one (`a`) | 5 +- 1 |\n| two (`b`) | 3 +- 0.5 |"
    self.assertEqual(missing_headlines(table, swapped), [])  # the section holds both
    self.assertEqual(misplaced_headlines(table, right), [])
    self.assertLen(misplaced_headlines(table, swapped), 2)
    self.assertEqual(misplaced_headlines({**table, "cross_test": {"arms": ["a", "b"]}},
                                         swapped), [])


class ResultsPageTest(absltest.TestCase):

  def test_every_committed_table_is_on_the_page_with_its_numbers(self):
    with open(os.path.join(ROOT, "RESULTS.md"), encoding="utf-8") as f:
      parts = sections(f.read())
    tables = sorted(glob.glob(os.path.join(RESULTS, "*", "table.json")))
    self.assertNotEmpty(tables)
    for path in tables:
      name = os.path.basename(os.path.dirname(path))
      with self.subTest(table=name):
        self.assertTrue(os.path.exists(os.path.join(os.path.dirname(path), "table.md")))
        mine = [p for p in parts if f"results/{name}/" in p or f"results/{name}`" in p]
        self.assertTrue(mine, f"no section of RESULTS.md names experiments/results/{name}/")
        with open(path, encoding="utf-8") as f:
          table = json.load(f)
        self.assertEqual(missing_headlines(table, "\n".join(mine)), [],
                         f"rows of experiments/results/{name}/ not quoted in RESULTS.md")
        self.assertEqual(misplaced_headlines(table, "\n".join(mine)), [],
                         f"rows of experiments/results/{name}/ not quoted on a line of "
                         "RESULTS.md that names their arm (`label`)")


class ComparisonsOnThePageTest(absltest.TestCase):

  def test_every_comparison_quoted_is_what_its_command_prints(self):
    # A "python -m experiments.compare DIR ..." on the page is followed by its
    # lines, as the command prints them from the committed tables.
    from experiments import compare  # pylint: disable=g-import-not-at-top
    from experiments import study as study_lib  # pylint: disable=g-import-not-at-top
    with open(os.path.join(ROOT, "RESULTS.md"), encoding="utf-8") as f:
      page = f.read()
    flat = " ".join(page.split())
    commands = re.findall(r"`python -m experiments\.compare ((?:experiments/results/\w+ ?)+)`",
                          flat)
    self.assertNotEmpty(commands)
    for folders in commands:
      with self.subTest(folders=folders):
        comps = compare.compare([os.path.join(ROOT, f) for f in folders.split()])
        self.assertNotEmpty(comps)
        for line in study_lib.comparison_lines(comps):
          if line.startswith("- "):
            self.assertIn(line + "\n", page, f"RESULTS.md does not quote {line!r}")


if __name__ == "__main__":
  absltest.main()
