"""A run's workdir: its identity, its lock and its history.

A workdir holds one run. ``config.json`` is the run's identity: a later
command on the same workdir resumes only if its config is the same run, and is
refused (nothing changed) otherwise. While a run trains it holds an OS-level
lock on ``run.lock`` (``fcntl.flock``: the kernel releases it when the process
ends, even by ``kill -9``), so a second run on the same workdir is refused with
the holder's process id instead of writing the same files twice.
``history.jsonl`` records, append-only, when the run was created and every
explicit amendment (``amend=True``: changed optimizer settings, e.g. to go on
after a NaN with a lower learning rate).

Every check that can refuse a workdir runs before anything is written, so a
refused command leaves the folder exactly as it was.
"""

from __future__ import annotations

import inspect
import json
import os
import socket
import time
from typing import Any, Optional

from gan_jax.errors import WorkdirConflictError, WorkdirLockedError

try:
  import fcntl  # pylint: disable=g-import-not-at-top
except ImportError:  # not POSIX: runs are not locked
  fcntl = None

CONFIG_FILE = "config.json"
LOCK_FILE = "run.lock"
HISTORY_FILE = "history.jsonl"
# Fields a resumed run may change without being a different run.
RESUMABLE_FIELDS = ("train.num_steps", "train.log_every", "train.eval_every",
                    "train.plot_every", "train.checkpoint_every", "train.keep_checkpoints",
                    "train.eval_samples", "train.progress", "train.figures",
                    "train.tensorboard", "train.nonfinite_seeds", "train.seed_batching")
# Fields added to the configs after runs were saved without them, at the value
# those runs used: a saved run lacking one is the same run.
ADDED_FIELDS = {"train.num_seeds": 1, "train.figures": True, "train.seed_devices": 1,
                "train.tensorboard": True, "model.dtype": "float32",
                "train.nonfinite_seeds": "stop", "train.seed_batching": "vmap",
                "train.sweep_field": "", "train.sweep_values": []}
# Prefixes of the fields ``amend=True`` may change: optimizer settings only;
# everything else defines what the parameters mean.
AMENDABLE_PREFIXES = ("optim.",)


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
  """``{'a': {'b': 1}}`` -> ``{'a.b': 1}``."""
  out = {}
  for k, v in d.items():
    key = f"{prefix}{k}"
    if isinstance(v, dict):
      out.update(flatten(v, key + "."))
    else:
      out[key] = v
  return out


def _same_when_missing(key: str, value: Any, name: Optional[str]) -> bool:
  """A field absent from one config equals the other's value by default.

  Configs list every option of an optimizer so that each can be overridden; a
  run saved before an option was listed used its default, and is the same run.
  """
  from gan_jax import optim  # pylint: disable=g-import-not-at-top
  if key in ADDED_FIELDS:
    return value == ADDED_FIELDS[key]
  parts = key.split(".")
  if len(parts) != 3 or parts[0] != "optim" or name not in optim.OPTIMIZERS:
    return False
  if parts[2] in ("weight_decay", "clip"):
    return value in (0, 0.0, None)
  try:
    params = inspect.signature(optim.OPTIMIZERS[name]).parameters
  except (TypeError, ValueError):
    return False
  p = params.get(parts[2])
  return p is not None and p.default is not inspect.Parameter.empty and p.default == value


def differences(saved: dict, now: dict) -> list[tuple[str, Any, Any]]:
  """``(field, saved value, value now)`` of the fields that make another run."""
  a, b = flatten(saved), flatten(now)
  out = []
  for k in sorted(set(a) | set(b)):
    if k in RESUMABLE_FIELDS or a.get(k) == b.get(k):
      continue
    if k not in a or k not in b:
      present = b.get(k) if k not in a else a.get(k)
      player = ".".join(k.split(".")[:2]) + ".name"
      if _same_when_missing(k, present, (b if k not in a else a).get(player)):
        continue
    out.append((k, a.get(k, "<absent>"), b.get(k, "<absent>")))
  return out


def _describe(diffs) -> str:
  shown = "; ".join(f"{k}: saved {x!r} vs now {y!r}" for k, x, y in diffs[:8])
  return shown + (" ..." if len(diffs) > 8 else "")


def read_config(workdir: str) -> Optional[dict]:
  """The saved config of a workdir, None if it holds none.

  Raises:
    WorkdirConflictError: the workdir is not a folder, or its config.json is
      not a readable JSON object.
  """
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise WorkdirConflictError(
        f"workdir {workdir!r} is a file, not a folder; nothing was changed. Choose a new "
        "or empty folder for --workdir.")
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    return None
  try:
    with open(path, encoding="utf-8") as f:
      saved = json.load(f)
  except (OSError, ValueError) as e:
    raise WorkdirConflictError(
        f"workdir {workdir!r} has a {CONFIG_FILE} that cannot be read as JSON ({path}: {e}). "
        "gan_jax writes it atomically, so it was changed by hand or by another program. "
        "Nothing was changed; restore the file or choose another --workdir.") from None
  if not isinstance(saved, dict):
    raise WorkdirConflictError(f"{path} does not hold a config (a JSON object); nothing was "
                               "changed. Restore the file or choose another --workdir.")
  return saved


def latest_checkpoint_step(workdir: str) -> Optional[int]:
  """The newest finished checkpoint's step (orbax renames a finished save to its step)."""
  folder = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(folder):
    return None
  steps = [int(n) for n in os.listdir(folder) if n.isdigit()]
  return max(steps) if steps else None


def check(workdir: str, config_dict: dict, *, amend: bool = False) -> dict:
  """Decides, without writing anything, how this config may use the workdir.

  Returns:
    ``{'resume': bool, 'changes': [(field, old, new)], 'step': latest
    checkpoint step or None, 'saved': the saved config or None}``;
    ``changes`` are amended optimizer fields.

  Raises:
    WorkdirConflictError: the workdir holds another run (the differing fields
      are named), a change ``amend`` does not allow, or files of no run.
  """
  saved = read_config(workdir)
  if saved is None:
    if os.path.isdir(workdir) and set(os.listdir(workdir)) - {LOCK_FILE}:
      raise WorkdirConflictError(
          f"workdir {workdir!r} is not empty and holds no gan_jax run (no {CONFIG_FILE}); "
          "refusing to write into it. Choose an empty or new --workdir.")
    return {"resume": False, "changes": [], "step": None, "saved": None}
  diffs = differences(saved, config_dict)
  amendable = [d for d in diffs if d[0].startswith(AMENDABLE_PREFIXES)]
  fixed = [d for d in diffs if not d[0].startswith(AMENDABLE_PREFIXES)]
  if fixed or (amendable and not amend):
    hint = ""
    if amendable and not fixed:
      hint = (" Only optimizer settings differ: to continue this run from its last "
              "checkpoint with them, add --amend (the change is recorded in "
              f"{HISTORY_FILE}).")
    elif amend and fixed:
      hint = " (--amend allows changes to optim.* fields only.)"
    raise WorkdirConflictError(
        f"workdir {workdir!r} holds a run made with a different config ({_describe(diffs)})."
        f" Nothing was changed; choose another --workdir, or delete this one to start "
        f"over.{hint}")
  return {"resume": True, "changes": amendable, "step": latest_checkpoint_step(workdir),
          "saved": saved}


def write_json(path: str, obj: Any) -> None:
  """Writes ``obj`` to ``path`` atomically (a reader sees the old or the new file)."""
  tmp = f"{path}.tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(obj, f, indent=2, sort_keys=True)
  os.replace(tmp, path)


def append_history(workdir: str, event: str, **fields) -> None:
  record = {"event": event, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "host": socket.gethostname(), "pid": os.getpid(), **fields}
  with open(os.path.join(workdir, HISTORY_FILE), "a", encoding="utf-8") as f:
    f.write(json.dumps(record, default=str) + "\n")


def read_history(workdir: str) -> list[dict]:
  path = os.path.join(workdir, HISTORY_FILE)
  if not os.path.exists(path):
    return []
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


def _set(d: dict, dotted: str, value: Any) -> None:
  parts = dotted.split(".")
  for part in parts[:-1]:
    d = d.setdefault(part, {})
  if value == "<absent>":
    d.pop(parts[-1], None)
  else:
    d[parts[-1]] = value


def config_at(workdir: str, config_dict: dict, step: int) -> dict:
  """The config that wrote the checkpoint of ``step``.

  Amendments (in ``history.jsonl``) apply from the step they were made at: a
  checkpoint at or before an amendment's step was written under the values it
  changed from, so they are reverted, newest amendment first.
  """
  out = json.loads(json.dumps(config_dict))
  for record in reversed(read_history(workdir)):
    if record.get("event") != "amended":
      continue
    at = record.get("step")
    if at is not None and step <= at:
      for field, change in record.get("changes", {}).items():
        _set(out, field, change["from"])
  return out


class Lock:
  """An exclusive lock on a workdir for a run's lifetime.

  ``fcntl.flock`` locks belong to the open file: the kernel drops them when the
  process exits in any way, so a killed run never leaves a stale lock. The file
  records the holder (host, pid, start) for the refusal message.
  """

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, LOCK_FILE)
    self._fd: Optional[int] = None

  def acquire(self) -> None:
    if fcntl is None:
      return
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      holder = os.read(fd, 4096).decode("utf-8", "replace").strip() or "unknown"
      os.close(fd)
      raise WorkdirLockedError(
          f"workdir {os.path.dirname(self.path)!r} is in use by another run ({holder}); two "
          "runs on one workdir would write the same files. Wait for it to finish, stop it, "
          "or choose another --workdir.") from None
    os.ftruncate(fd, 0)
    os.write(fd, (f"pid {os.getpid()} on {socket.gethostname()}, started "
                  f"{time.strftime('%Y-%m-%d %H:%M:%S')}").encode())
    os.fsync(fd)
    self._fd = fd

  def release(self) -> None:
    if self._fd is not None:
      os.close(self._fd)  # closing the file drops the lock
      self._fd = None

  def __enter__(self):
    self.acquire()
    return self

  def __exit__(self, *exc):
    self.release()


def claim(workdir: str, config_dict: dict, *, amend: bool = False) -> tuple[dict, Lock]:
  """Checks the workdir, locks it, and records this config as the run's.

  Returns:
    ``(decision, lock)``: ``decision`` as from :func:`check`; the caller owns
    the acquired lock and releases it when the run ends.
  """
  check(workdir, config_dict, amend=amend)  # refuse before creating anything
  os.makedirs(workdir, exist_ok=True)
  lock = Lock(workdir)
  lock.acquire()
  try:
    decision = check(workdir, config_dict, amend=amend)  # again, now that we hold the lock
    write_json(os.path.join(workdir, CONFIG_FILE), config_dict)
    if not decision["resume"]:
      append_history(workdir, "created")
    elif decision["changes"]:
      append_history(workdir, "amended", step=decision["step"],
                     changes={k: {"from": a, "to": b} for k, a, b in decision["changes"]})
  except BaseException:
    lock.release()
    raise
  return decision, lock
