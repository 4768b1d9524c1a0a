r"""Trains a gan_jax experiment from a config file.

  python -m experiments.main --config=configs/betagan_mixture_3d.py --workdir=/tmp/run
  python -m experiments.main --config=configs/roth_submanifold.py:reg \
      --workdir=/tmp/roth --config.game.penalty.weight=0.5

Writes metrics, checkpoints and figures into --workdir; running again with the
same workdir and config resumes. After a NaN, the same command with changed
optimizer settings and --amend continues from the last good checkpoint.

A mistake in the command (an unknown or out-of-range field, a workdir of
another run or in use, a data set that is not here) is printed as one paragraph
and exits with status 2; training that produced NaN or inf exits with status 3.
--debug shows the traceback as well.

Several processes (hosts) train one run over a global device mesh; every
process runs the same command with its own --process_id (or --distributed
where the cluster is detected), see README "Many hosts".
"""

import importlib.util
import os
import sys
import textwrap

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from gan_jax import errors
from gan_jax.train import distributed
from gan_jax.train import loop
from gan_jax.train import seeds as seeds_lib

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Experiment config file (configs/*.py), "
                                "optionally with ':variant'.", lock_config=True)
flags.DEFINE_string("workdir", None, "Folder for checkpoints, metrics and figures.")
flags.DEFINE_bool("amend", False, "Resume the workdir's run even though optimizer settings "
                  "(--config.optim.*) differ from its saved config, e.g. a lower learning "
                  "rate after a NaN; recorded in the workdir's history.jsonl.")
flags.DEFINE_bool("debug", False, "Show the traceback of a user error too.")
flags.DEFINE_bool("distributed", False, "Run as one of several processes, the cluster "
                  "detected from the environment (TPU pod slice, SLURM, Open MPI).")
flags.DEFINE_string("coordinator_address", None, "Multi-process run: host:port of process "
                    "0's coordinator (with --num_processes and --process_id).")
flags.DEFINE_integer("num_processes", None, "Multi-process run: the number of processes.")
flags.DEFINE_integer("process_id", None, "Multi-process run: this process's index.")
flags.mark_flags_as_required(["config", "workdir"])

USER_ERROR_STATUS = 2
NON_FINITE_STATUS = 3


def _fail(message: str, status: int, debug: bool) -> None:
  paragraph = textwrap.fill(" ".join(message.split()), width=100,
                            initial_indent="error: ", subsequent_indent="  ")
  hint = "" if debug else "\n  (--debug shows the traceback)"
  print(paragraph + hint, file=sys.stderr, flush=True)
  sys.exit(status)


def _flag_value(argv, name):
  """The value of ``--name=...`` in ``argv`` (the last one wins, as in absl)."""
  values = [arg.split("=", 1)[1] for arg in argv[1:] if arg.startswith(f"--{name}=")]
  return values[-1] if values else None


def _load_config_file(spec: str):
  """``get_config(variant)`` of a config path ``file.py[:variant]``, or an error text."""
  path, _, variant = spec.partition(":")
  if not os.path.isfile(path):
    folder = os.path.dirname(path) or "."
    near = sorted(f for f in os.listdir(folder) if f.endswith(".py") and not f.startswith("_")
                  ) if os.path.isdir(folder) else []
    where = (f"; the config files in {folder}/ are: {', '.join(near)}" if near else
             f" (no folder {folder!r} here: run from the repository root, or give a full path)")
    return None, (f"config file {path!r} not found{errors.did_you_mean(os.path.basename(path), near)}"
                  f"{where}")
  module_spec = importlib.util.spec_from_file_location("_gan_jax_config", path)
  module = importlib.util.module_from_spec(module_spec)
  try:
    module_spec.loader.exec_module(module)
    return (module.get_config(variant) if variant else module.get_config()), None
  except Exception as e:  # pylint: disable=broad-except
    return None, f"config {spec!r} could not be built: {type(e).__name__}: {e}"


def _explain_override(config, arg: str):
  """What is wrong with one ``--config.a.b=v`` override, or None."""
  path = arg[len("--config."):].split("=", 1)[0]
  node, walked = config, "config"
  for part in path.split("."):
    keys = list(node.keys()) if hasattr(node, "keys") else []
    if part not in keys:
      if not keys:
        return f"--config.{path}: {walked} is a value ({node!r}), not a section with fields"
      return (f"--config.{path}: unknown field {part!r} in {walked}"
              f"{errors.did_you_mean(part, keys)}; its fields are: {', '.join(sorted(keys))}")
    node, walked = node[part], f"{walked}.{part}"
  return None


def _explain_flag_error(error: Exception, argv) -> str:
  spec = _flag_value(argv, "config")
  overrides = [a for a in argv[1:] if a.startswith("--config.")]
  if spec is None and overrides and "--config" not in argv:
    return (f"{overrides[0].split('=', 1)[0]} overrides a field of a config file, but no "
            "--config was given; name the file first, e.g. "
            "--config=configs/betagan_mixture_3d.py (the config files are in configs/)")
  if spec is not None:
    config, problem = _load_config_file(spec)
    if problem:
      return problem
    for arg in argv[1:]:
      if arg.startswith("--config."):
        problem = _explain_override(config, arg)
        if problem:
          return problem
  inner = error
  while inner.__cause__ is not None or inner.__context__ is not None:
    inner = inner.__cause__ or inner.__context__
  text = str(error).strip()
  if inner is not error and str(inner).strip() and str(inner).strip() not in text:
    text = f"{text}: {str(inner).strip()}"
  return text + " (see --helpfull for the flags)"


def parse_flags(argv):
  """absl's flag parsing, with every mistake told as one paragraph (status 2)."""
  try:
    rest = FLAGS(argv)
    _ = FLAGS.config  # a config file that failed to load raises on first access
    return rest
  except Exception as e:  # pylint: disable=broad-except
    if "--debug" in argv:
      raise
    _fail(_explain_flag_error(e, argv), USER_ERROR_STATUS, debug=False)


def main(argv):
  if len(argv) > 1:
    _fail(f"unexpected arguments {argv[1:]}: every setting is a flag, e.g. "
          "--config=configs/betagan_mixture_3d.py --workdir=runs/x --config.train.num_steps=1000 "
          "(see --helpfull)", USER_ERROR_STATUS, debug=False)
  # Progress goes to stderr by itself; keep library chatter (checkpointing) quiet.
  logging.set_verbosity(logging.WARNING)
  multi = [FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id]
  if FLAGS.distributed or any(v is not None for v in multi):
    try:
      distributed.initialize(*multi)
    except ValueError as e:
      _fail(str(e), USER_ERROR_STATUS, debug=FLAGS.debug)
  try:
    result = loop.train_and_evaluate(FLAGS.config, FLAGS.workdir, amend=FLAGS.amend)
  except errors.UserError as e:
    if FLAGS.debug:
      raise
    _fail(str(e), USER_ERROR_STATUS, debug=False)
  except loop.NonFiniteError as e:
    if FLAGS.debug:
      raise
    _fail(str(e), NON_FINITE_STATUS, debug=False)
  if not distributed.is_primary():
    return
  if any("@" in k for k in result.final_metrics):
    print(f"finished {FLAGS.workdir}:")
    print(seeds_lib.sweep_summary(result.final_metrics))
  else:
    summary = ", ".join(f"{k}={v:.4g}" for k, v in sorted(result.final_metrics.items())
                        if isinstance(v, (int, float)) and v is not None)
    print(f"finished {FLAGS.workdir}: {summary or 'no evaluation metrics'}")
  print(f"figures in {FLAGS.workdir}/figures")


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
