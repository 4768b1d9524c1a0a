"""Streaming data: a device buffer refilled from the host between compiled calls.

A data set that does not fit on the device (LSUN bedroom: 3 million images,
37 GB at 64 x 64 x 3) is streamed. The compiled step does not change: it draws
uniform batches from ``source.arrays`` as for any image set. For a streaming
source those arrays are a buffer of ``buffer_size`` examples, and the training
loop replaces them before every call with the next part of a shuffled pass
over this host's examples (``DataSource.refill``). Nothing host-local enters
the step; the buffer is an argument like the in-memory arrays.

Order: this host's examples are read in a fresh random permutation per epoch,
``numpy.random.default_rng([seed, epoch])``, and the buffer of call ``c``
holds positions ``[c S, (c + 1) S)`` of the concatenated permutations
(``S = buffer_size``). The buffer of a call depends only on its index, so a
resumed run reads what an uninterrupted one would. Every example of the host
appears once per epoch; within a call, batches are drawn from the buffer with
replacement, like in-memory sets.

Reading runs one call ahead in a background thread, overlapping the device's
work on the current call.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import threading
from typing import Any, Callable, Optional

import numpy as np

from gan_jax.data import source as source_lib
from gan_jax.validation import positive_int

# read(indices) -> (uint8 images [k, H, W, C], int32 labels [k] or None)
ReadFn = Callable[[np.ndarray], tuple[np.ndarray, Optional[np.ndarray]]]


class StreamBuffer:
  """The buffer of each call, read from ``num_examples`` indexable examples.

  Args:
    read: ``read(indices)`` returns the examples at these local indices
      (``0 <= i < num_examples``) as ``(images, labels or None)``.
    num_examples: examples this host streams.
    buffer_size: examples per buffer (per call), ``<= num_examples``.
    seed: seed of the per-epoch permutations.
    prefetch: read the next call's buffer in the background.

  Calling ``buffer(c)`` returns ``{'x': images}`` (and ``'y': labels``) for
  call ``c``.
  """

  def __init__(self, read: ReadFn, num_examples: int, buffer_size: int, *, seed: int = 0,
               prefetch: bool = True):
    self.num_examples = positive_int("num_examples", num_examples)
    self.buffer_size = positive_int("stream_buffer", buffer_size)
    if self.buffer_size > self.num_examples:
      raise ValueError(f"stream_buffer ({buffer_size}) must not exceed the examples this host "
                       f"streams ({num_examples}); valid: 1 to {num_examples}, or 0 to keep "
                       "the whole split in memory")
    self._read = read
    self._seed = int(seed)
    self._lock = threading.Lock()
    self._pending: dict[int, concurrent.futures.Future] = {}
    self._last: tuple[int, dict[str, np.ndarray]] | None = None
    self._pool = (concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="stream")
                  if prefetch else None)

  def permutation(self, epoch: int) -> np.ndarray:
    """The order this host reads its examples in during ``epoch``."""
    return np.random.default_rng([self._seed, int(epoch)]).permutation(self.num_examples)

  def indices(self, call: int) -> np.ndarray:
    """Local indices of the examples in the buffer of ``call`` (sorted)."""
    if call < 0:
      raise ValueError(f"call index must be >= 0, got {call}")
    n, s = self.num_examples, self.buffer_size
    start = call * s
    parts, epoch, offset = [], start // n, start % n
    while s > 0:
      take = min(s, n - offset)
      parts.append(self.permutation(epoch)[offset:offset + take])
      s, epoch, offset = s - take, epoch + 1, 0
    # Sorted reads are faster on record files; the step draws at random anyway.
    return np.sort(np.concatenate(parts))

  def _load(self, call: int) -> dict[str, np.ndarray]:
    images, labels = self._read(self.indices(call))
    if len(images) != self.buffer_size:
      raise ValueError(f"stream reader returned {len(images)} examples, expected "
                       f"{self.buffer_size}")
    out = {"x": np.asarray(images)}
    if labels is not None:
      out["y"] = np.asarray(labels, np.int32)
    return out

  def __call__(self, call: int) -> dict[str, np.ndarray]:
    if self._last is not None and self._last[0] == call:
      return self._last[1]
    with self._lock:
      future = self._pending.pop(call, None)
      self._pending.clear()  # a different call was asked for: drop stale reads
    arrays = future.result() if future is not None else self._load(call)
    self._last = (call, arrays)
    if self._pool is not None:
      with self._lock:
        self._pending[call + 1] = self._pool.submit(self._load, call + 1)
    return arrays

  def close(self) -> None:
    """Stops the background reader (pending reads are discarded)."""
    if self._pool is not None:
      self._pool.shutdown(wait=False, cancel_futures=True)
      self._pool = None


def stream_source(name: str, buffer: StreamBuffer, *, num_classes: int = 0,
                  scale: Optional[Callable[[Any], Any]] = None, info: Any = None,
                  size: Optional[int] = None) -> source_lib.DataSource:
  """A ``DataSource`` whose arrays are ``buffer``'s, refilled for every call.

  ``arrays`` holds the buffer of call 0 (it fixes the shapes the step is
  compiled for); ``refill(c)`` gives the arrays of call ``c``.
  """
  first = buffer(0)
  src = source_lib.from_arrays(name, first["x"], first.get("y"), num_classes=num_classes,
                               scale=scale, info=info)
  return dataclasses.replace(src, refill=buffer, size=size or buffer.num_examples)
