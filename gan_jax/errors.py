"""The error types of mistakes a user can correct.

A ``UserError`` means the request cannot be carried out as asked (a config
field out of range, a workdir of another run, a data set that is not here); its
message alone tells the user what to change, so the command line prints it as
one paragraph and exits with status 2 instead of showing a traceback. Every
other exception is an internal error and keeps its traceback.

``UserError`` derives from ``ValueError`` so that callers catching the
``ValueError`` the factories raise keep working.
"""

from __future__ import annotations

from typing import Iterable, Optional


class UserError(ValueError):
  """A mistake in what was asked for, explained by the message."""


class ConfigError(UserError):
  """A config field is unknown, of the wrong type or out of range.

  Attributes:
    field: the dotted config path (``'game.penalty.weight'``), when known.
  """

  def __init__(self, message: str, *, field: Optional[str] = None):
    super().__init__(message)
    self.field = field


class WorkdirError(UserError):
  """The workdir cannot be used for this run (nothing in it was changed)."""


class WorkdirConflictError(WorkdirError):
  """The workdir holds a different run, or files that are not a run."""


class WorkdirLockedError(WorkdirError):
  """Another live process is running in the workdir."""


def did_you_mean(name: str, choices: Iterable[str], *, limit: int = 3) -> str:
  """``" (did you mean 'a' or 'b'?)"`` for the choices closest to ``name``, or ``""``."""
  import difflib  # pylint: disable=g-import-not-at-top
  close = difflib.get_close_matches(name, list(choices), n=limit, cutoff=0.6)
  if not close:
    return ""
  return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"
