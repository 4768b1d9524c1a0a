r"""Trains a gan_jax experiment from a config file.

  python -m experiments.main --config=configs/betagan_mixture_3d.py --workdir=/tmp/run
  python -m experiments.main --config=configs/roth_submanifold.py:reg \
      --workdir=/tmp/roth --config.game.penalty.weight=0.5

Writes metrics, checkpoints and figures into --workdir; running again with the
same workdir and config resumes.
"""

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from gan_jax.train import loop

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Experiment config file (configs/*.py), "
                                "optionally with ':variant'.", lock_config=True)
flags.DEFINE_string("workdir", None, "Folder for checkpoints, metrics and figures.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  # Progress goes to stderr by itself; keep library chatter (checkpointing) quiet.
  logging.set_verbosity(logging.WARNING)
  result = loop.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  summary = ", ".join(f"{k}={v:.4g}" for k, v in sorted(result.final_metrics.items()))
  print(f"finished {FLAGS.workdir}: {summary}")
  print(f"figures in {FLAGS.workdir}/figures")


if __name__ == "__main__":
  app.run(main)
