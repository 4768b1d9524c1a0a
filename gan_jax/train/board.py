"""A live view of a run: its records as TensorBoard scalars.

Every record the loop writes to ``metrics.jsonl`` / ``eval.jsonl`` also goes
to TensorBoard event files in ``<workdir>/tensorboard/`` (``train/<name>`` and
``eval/<name>``; a run of several seeds adds ``<name>/seed_<s>`` per seed
beside the mean), through ``tensorboardX``, a maintained writer that needs no
TensorFlow. It is optional: without the package (``pip install
'gan_jax[tensorboard]'``), or with ``train.tensorboard = False``, nothing is
written. On resume the writer marks the resumed step, so TensorBoard drops the
events of the interrupted run past the checkpoint (as the JSON logs do).

  tensorboard --logdir runs/
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

from gan_jax.train import distributed

FOLDER = "tensorboard"


def available() -> bool:
  try:
    import tensorboardX  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    return False
  return True


class Board:
  """Scalars of the run's records (process 0 only)."""

  def __init__(self, workdir: str, start_step: int, sweep_field: str = ""):
    import tensorboardX  # pylint: disable=g-import-not-at-top
    self.writer = tensorboardX.SummaryWriter(os.path.join(workdir, FOLDER),
                                             purge_step=start_step or None)
    self.sweep_field = sweep_field  # a sweep's records name their value of it

  def write(self, prefix: str, record: dict[str, Any]) -> None:
    step = int(record["step"])
    seed = record.get("seed", "mean")
    suffix = "" if seed == "mean" else f"/seed_{seed}"
    if seed == "mean" and self.sweep_field and self.sweep_field in record:
      # One mean per swept value: a tag each.
      suffix = f"/{self.sweep_field.rsplit('.', 1)[-1]}_{record[self.sweep_field]:g}"  # as seeds.value_label
    for k, v in record.items():
      if (k in ("step", "seed", self.sweep_field) or isinstance(v, bool)
          or not isinstance(v, numbers.Real)):
        continue
      if math.isfinite(float(v)):
        self.writer.add_scalar(f"{prefix}/{k}{suffix}", float(v), step)

  def flush(self) -> None:
    self.writer.flush()

  def close(self) -> None:
    self.writer.close()


def open_board(workdir: str, start_step: int, enabled: bool,
               sweep_field: str = "") -> Board | None:
  """The run's board, or None (disabled, not installed, or not process 0)."""
  if not enabled or not distributed.is_primary() or not available():
    return None
  return Board(workdir, start_step, sweep_field)
