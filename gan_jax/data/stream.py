"""Streaming data: a device buffer refilled from the host between compiled calls.

A data set that does not fit on the device (LSUN bedroom: 3 million images,
37 GB at 64 x 64 x 3) is streamed. The compiled step does not change: it draws
uniform batches from ``source.arrays`` as for any image set. For a streaming
source those arrays are a buffer of ``buffer_size`` examples, and the training
loop replaces them before every call with the next part of a shuffled pass
over the examples (``DataSource.refill``). The buffer is an argument of the
step like the in-memory arrays, so the compiled program is the same for every
call and only its input differs.

Order: the examples are read in a fresh random permutation per epoch,
``numpy.random.default_rng([seed, epoch])``, and the buffer of call ``c``
holds positions ``[c S, (c + 1) S)`` of the concatenated permutations
(``S = buffer_size``), sorted. The buffer of a call depends only on its index,
so a resumed run reads what an uninterrupted one would.

Several processes: the buffer is global, the same ``S`` examples whatever the
number of processes. Process ``p`` of ``P`` reads only rows ``[p S / P,
(p + 1) S / P)`` of it (``part=(p, P)``); the training loop joins the parts on
the devices (``distributed.join_rows``), so every device holds the whole buffer
and the step draws from it exactly as one process would. Each process needs
random access to every example (an in-memory array, or a TFDS data source's
random-access records), and reads only its share of each buffer, except the
first: every process reads the whole buffer of call 0 once, at set-up, to give
the step its shapes (``stream_source``).

Coverage: every example enters a buffer once per epoch, but the step draws
its batches from the buffer *with replacement*, as for in-memory sets. If a
call draws ``m`` examples, each buffered example is used ``m / S`` times on
average (about Poisson): with ``S = m`` about 37% of a buffer is not drawn and
as many are drawn twice. A larger ``S`` reads more per call and uses each
example less; ``S`` near ``m`` reads the data at the rate it is consumed.

Reading runs ``prefetch`` calls ahead on background threads, each buffer read
as ``workers`` chunks in parallel (image decoding releases the GIL), so that
reading overlaps the device's work.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import threading
from typing import Any, Callable, Optional

import numpy as np

from gan_jax.data import source as source_lib
from gan_jax.validation import nonnegative_int
from gan_jax.validation import positive_int

# read(indices) -> (uint8 images [k, H, W, C], int32 labels [k] or None)
ReadFn = Callable[[np.ndarray], tuple[np.ndarray, Optional[np.ndarray]]]


class StreamBuffer:
  """The buffer of each call, read from ``num_examples`` indexable examples.

  Args:
    read: ``read(indices)`` returns the examples at these indices
      (``0 <= i < num_examples``) as ``(images, labels or None)``; it must be
      safe to call from several threads.
    num_examples: examples streamed (all processes').
    buffer_size: examples per buffer (per call), ``<= num_examples``; with
      several parts a multiple of their number.
    seed: seed of the per-epoch permutations (``>= 0``).
    prefetch: calls read ahead in the background (0: read on demand).
    workers: threads reading one buffer, each a contiguous chunk of it.
    part: ``(p, P)``: this process reads part ``p`` of ``P`` equal parts of
      every buffer (default the whole buffer).

  ``buffer(c)`` returns ``{'x': images}`` (and ``'y': labels``) for call ``c``:
  this part's ``buffer_size // P`` rows.
  """

  def __init__(self, read: ReadFn, num_examples: int, buffer_size: int, *, seed: int = 0,
               prefetch: int = 2, workers: int = 4, part: tuple[int, int] = (0, 1)):
    self.num_examples = positive_int("num_examples", num_examples)
    self.buffer_size = positive_int("stream_buffer", buffer_size)
    if self.buffer_size > self.num_examples:
      raise ValueError(f"stream_buffer ({buffer_size}) must not exceed the examples streamed "
                       f"({num_examples}); valid: 1 to {num_examples}, or 0 to keep "
                       "the whole split in memory")
    index, count = part
    count = positive_int("process_count", count)
    if not isinstance(index, (int, np.integer)) or not 0 <= index < count:
      raise ValueError(f"process_index must be an integer in [0, {count - 1}]; got {index!r}")
    if self.buffer_size % count:
      raise ValueError(f"stream_buffer ({buffer_size}) must be a multiple of the number of "
                       f"processes ({count}): each reads an equal part of every buffer; "
                       f"valid e.g. {max(count, self.buffer_size // count * count)}")
    self.part = (int(index), count)
    self.rows = self.buffer_size // count  # examples this part reads per buffer
    self._read = read
    self._seed = nonnegative_int("stream_seed", seed)
    self._prefetch = nonnegative_int("prefetch", prefetch)
    self._workers = positive_int("workers", workers)
    self._lock = threading.Lock()
    self._orders: dict[int, np.ndarray] = {}
    self._pending: dict[int, concurrent.futures.Future] = {}
    self._last: tuple[int, dict[str, np.ndarray]] | None = None
    self._closed = False
    # Buffers are assembled on one thread, chunks read on others: a chunk
    # never waits for a buffer, so the two pools cannot deadlock.
    self._buffers = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="stream")
    self._chunks = concurrent.futures.ThreadPoolExecutor(self._workers,
                                                         thread_name_prefix="stream-read")

  def permutation(self, epoch: int) -> np.ndarray:
    """The order the examples are read in during ``epoch``."""
    with self._lock:
      order = self._orders.get(epoch)
    if order is None:
      # A permutation of 3 million indices takes ~0.2 s: kept for reuse.
      order = np.random.default_rng([self._seed, int(epoch)]).permutation(self.num_examples)
      with self._lock:
        self._orders[epoch] = order
        for old in [e for e in self._orders if e < epoch - 1]:
          del self._orders[old]
    return order

  def indices(self, call: int) -> np.ndarray:
    """Indices of the examples in the (whole) buffer of ``call``, sorted."""
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

  def part_indices(self, call: int) -> np.ndarray:
    """Indices of the examples this part reads for ``call``: its rows of the buffer."""
    p = self.part[0]
    return self.indices(call)[p * self.rows:(p + 1) * self.rows]

  def _load(self, call: int) -> dict[str, np.ndarray]:
    return self._read_rows(self.part_indices(call))

  def whole(self, call: int) -> dict[str, np.ndarray]:
    """All ``buffer_size`` rows of call ``c``'s buffer (every part's), read now."""
    if self.part[1] == 1:
      return self(call)
    return self._read_rows(self.indices(call))

  def _read_rows(self, idx: np.ndarray) -> dict[str, np.ndarray]:
    chunks = [c for c in np.array_split(idx, self._workers) if len(c)]
    if self._closed:
      parts = [self._read(c) for c in chunks]
    else:
      parts = [f.result() for f in [self._chunks.submit(self._read, c) for c in chunks]]
    images = np.concatenate([np.asarray(p[0]) for p in parts])
    if len(images) != len(idx):
      raise ValueError(f"stream reader returned {len(images)} examples, expected "
                       f"{len(idx)}")
    out = {"x": images}
    if parts[0][1] is not None:
      out["y"] = np.concatenate([np.asarray(p[1], np.int32) for p in parts])
    return out

  def __call__(self, call: int) -> dict[str, np.ndarray]:
    if self._last is not None and self._last[0] == call:
      return self._last[1]
    with self._lock:
      future = self._pending.pop(call, None)
      stale = [f for c, f in self._pending.items() if not call < c <= call + self._prefetch]
      self._pending = {c: f for c, f in self._pending.items() if call < c <= call + self._prefetch}
    for f in stale:  # another call was asked for (a resume): drop reads not needed
      f.cancel()
    arrays = future.result() if future is not None else self._load(call)
    self._last = (call, arrays)
    with self._lock:
      for ahead in range(call + 1, call + 1 + self._prefetch):
        if ahead not in self._pending:
          self._pending[ahead] = self._buffers.submit(self._load, ahead)
    return arrays

  def close(self) -> None:
    """Stops the background readers; later calls read on the caller's thread."""
    with self._lock:
      pending, self._pending = list(self._pending.values()), {}
      self._prefetch, self._closed = 0, True
    for f in pending:
      f.cancel()
    self._buffers.shutdown(wait=False, cancel_futures=True)
    self._chunks.shutdown(wait=False, cancel_futures=True)


def stream_source(name: str, buffer: StreamBuffer, *, num_classes: int = 0,
                  scale: Optional[Callable[[Any], Any]] = None, info: Any = None,
                  size: Optional[int] = None) -> source_lib.DataSource:
  """A ``DataSource`` whose arrays are ``buffer``'s, refilled for every call.

  ``arrays`` holds the whole buffer of call 0 (it fixes the shapes the step
  is compiled for); ``refill(c)`` gives this part of call ``c``'s buffer,
  which the parts of all processes make up (``distributed.join_rows``).
  """
  first = buffer.whole(0)
  src = source_lib.from_arrays(name, first["x"], first.get("y"), num_classes=num_classes,
                               scale=scale, info=info)
  return dataclasses.replace(src, refill=buffer, size=size or buffer.num_examples)
