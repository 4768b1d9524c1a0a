"""Argument checks shared by the data, metrics and model modules.

Each raises ``ValueError`` naming the argument, what it must be and what it got.
"""

from __future__ import annotations

import operator
from typing import Any, Optional


def _int_at_least(name: str, value: Any, minimum: int) -> int:
  try:
    v = operator.index(value)
  except TypeError:
    raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}") from None
  if v < minimum:
    raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
  return v


def positive_int(name: str, value: Any, *, allow_none: bool = False) -> Optional[int]:
  """``value`` as an ``int >= 1`` (or None when ``allow_none``)."""
  if value is None and allow_none:
    return None
  return _int_at_least(name, value, 1)


def nonnegative_int(name: str, value: Any) -> int:
  """``value`` as an ``int >= 0``."""
  return _int_at_least(name, value, 0)
