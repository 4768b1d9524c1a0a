"""Streaming image data: buffer order, TFDS/npz readers, training on refilled buffers."""

import logging
import os
import threading
import time

from absl.testing import parameterized
import jax
import numpy as np
import tensorflow_datasets as tfds

from configs import dcgan_mnist
from gan_jax.data import images
import gan_jax.data as data_lib
from gan_jax.data import stream
from gan_jax.train import loop
from tests.test_image_games import shrink_images
from tests.test_image_games import write_npz

logging.getLogger("absl").setLevel(logging.ERROR)


def _index_reader(log=None):
  """Examples whose single pixel is their own index."""

  def read(idx):
    if log is not None:
      log.append(np.array(idx))
    return idx.reshape(-1, 1, 1, 1).astype(np.uint8), (idx % 10).astype(np.int32)
  return read


class StreamBufferTest(parameterized.TestCase):

  @parameterized.parameters((10, 4), (12, 4), (7, 7), (9, 2))
  def test_every_example_once_per_epoch(self, n, size):
    buf = stream.StreamBuffer(_index_reader(), n, size, seed=3, prefetch=0)
    epochs = 3
    calls = epochs * n // size  # whole calls inside three epochs
    seen = np.concatenate([buf.indices(c) for c in range(calls)])
    counts = np.bincount(seen, minlength=n)
    # Positions [0, calls * size) of three concatenated permutations.
    self.assertEqual(counts.sum(), calls * size)
    self.assertLessEqual(counts.max() - counts.min(), 1)
    first_epoch = np.concatenate([buf.indices(c) for c in range(n // size)])
    self.assertEqual(len(set(first_epoch.tolist())), len(first_epoch))  # no repeats
    # Each epoch has its own order, and a buffer is the next slice of it.
    self.assertFalse(np.array_equal(buf.permutation(0), buf.permutation(1)))
    np.testing.assert_array_equal(np.sort(buf.permutation(0)), np.arange(n))
    call = -(-n // size)  # the first call that starts in epoch 1 or later
    start = call * size - n
    if start + size <= n:
      np.testing.assert_array_equal(buf.indices(call),
                                    np.sort(buf.permutation(1)[start:start + size]))

  def test_buffer_arrays_follow_indices(self):
    buf = stream.StreamBuffer(_index_reader(), 50, 8, seed=0, prefetch=0)
    arrays = buf(5)
    np.testing.assert_array_equal(arrays["x"][:, 0, 0, 0], buf.indices(5))
    np.testing.assert_array_equal(arrays["y"], buf.indices(5) % 10)
    self.assertEqual(arrays["y"].dtype, np.int32)

  def test_order_depends_on_call_and_seed_only(self):
    a = stream.StreamBuffer(_index_reader(), 100, 16, seed=1)
    b = stream.StreamBuffer(_index_reader(), 100, 16, seed=1, prefetch=0)
    c = stream.StreamBuffer(_index_reader(), 100, 16, seed=2, prefetch=0)
    for call in (0, 1, 2, 9, 3):  # in order, then a jump (a resume), then back
      np.testing.assert_array_equal(a(call)["x"], b(call)["x"])
    self.assertFalse(np.array_equal(a.indices(0), c.indices(0)))
    a.close()

  def test_prefetch_reads_the_next_calls_ahead_on_background_threads(self):
    threads = {}

    def read(idx):
      threads.setdefault(tuple(idx), []).append(threading.current_thread().name)
      return _index_reader()(idx)

    buf = stream.StreamBuffer(read, 40, 4, seed=0, prefetch=2, workers=1)
    buf(0)
    buf(0)  # the same call again: no new read
    self.assertEqual(threads[tuple(buf.indices(0))], ["stream-read_0"])
    ahead = [tuple(buf.indices(c)) for c in (1, 2)]
    deadline = time.monotonic() + 30
    while not all(a in threads for a in ahead) and time.monotonic() < deadline:
      time.sleep(0.01)
    # Calls 1 and 2 were read before anyone asked for them...
    self.assertTrue(all(a in threads for a in ahead), "no read-ahead of calls 1 and 2")
    np.testing.assert_array_equal(buf(1)["x"][:, 0, 0, 0], buf.indices(1))
    buf(2)
    buf.close()
    for a in ahead:  # ...and only once.
      self.assertEqual(threads[a], ["stream-read_0"])
    # After close, reads happen on the caller's thread.
    buf(7)
    self.assertEqual(threads[tuple(buf.indices(7))], [threading.current_thread().name])

  def test_parallel_chunks_assemble_the_buffer_in_order(self):
    buf = stream.StreamBuffer(_index_reader(), 1000, 103, seed=4, workers=5)
    for call in (0, 3, 12):
      np.testing.assert_array_equal(buf(call)["x"][:, 0, 0, 0],
                                    buf.indices(call).astype(np.uint8))
    buf.close()

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, r"stream_buffer \(11\).*valid: 1 to 10"):
      stream.StreamBuffer(_index_reader(), 10, 11)
    with self.assertRaisesRegex(ValueError, "stream_buffer"):
      stream.StreamBuffer(_index_reader(), 10, 0)
    with self.assertRaisesRegex(ValueError, r"stream_seed must be an integer >= 0; got -1"):
      stream.StreamBuffer(_index_reader(), 10, 2, seed=-1)
    buf = stream.StreamBuffer(_index_reader(), 10, 2, prefetch=0)
    with self.assertRaisesRegex(ValueError, ">= 0"):
      buf.indices(-1)
    bad = stream.StreamBuffer(lambda idx: (np.zeros((1, 1, 1, 1), np.uint8), None), 10, 2,
                              prefetch=0, workers=1)
    with self.assertRaisesRegex(ValueError, "returned 1 examples, expected 2"):
      bad(0)


class StreamSourceTest(parameterized.TestCase):

  def test_tfds_buffers_are_the_records_of_their_indices(self):
    with tfds.testing.mock_data(num_examples=30, policy=tfds.testing.MockPolicy.USE_CODE):
      whole, labels = images.load_arrays("cifar10", source="tfds", max_examples=24)
      src = data_lib.make_source({"name": "cifar10", "stream_buffer": 8,
                                    "max_examples": 24, "stream_seed": 5})
      self.assertEqual(src.size, 24)
      self.assertEqual(src.shape, (32, 32, 3))
      self.assertIn("streamed", src.info.origin)
      for call in (0, 1, 4):
        idx = src.refill.indices(call)
        arrays = src.refill(call)
        np.testing.assert_array_equal(arrays["x"], whole[idx])
        np.testing.assert_array_equal(arrays["y"], labels[idx])
      np.testing.assert_array_equal(src.arrays["x"], whole[src.refill.indices(0)])
      src.refill.close()

  def test_processes_read_equal_parts_of_one_global_buffer(self):
    path = write_npz(os.path.join(self.create_tempdir().full_path, "d.npz"), (28, 28), n=30)
    whole = images.make_image_source("mnist", npz_path=path, stream_buffer=6, stream_seed=2)
    parts = [images.make_image_source("mnist", npz_path=path, stream_buffer=6, stream_seed=2,
                                      process_index=i, process_count=3) for i in range(3)]
    for src in parts:
      self.assertEqual(src.size, 30)
      self.assertIn("3 parts", src.info.origin)
      # The step is compiled for the whole buffer: arrays hold all of call 0's.
      np.testing.assert_array_equal(src.arrays["x"], whole.arrays["x"])
    for call in (0, 1, 7):  # 7: the second epoch
      joined = {k: np.concatenate([p.refill(call)[k] for p in parts]) for k in ("x", "y")}
      for k in ("x", "y"):
        np.testing.assert_array_equal(joined[k], whole.refill(call)[k])
      self.assertLen(parts[1].refill(call)["x"], 2)
    for src in parts + [whole]:
      src.refill.close()
    with self.assertRaisesRegex(ValueError, r"stream_buffer \(5\) must be a multiple of the "
                                r"number of processes \(3\).*valid e.g. 3"):
      images.make_image_source("mnist", npz_path=path, stream_buffer=5, process_index=0,
                               process_count=3)
    with self.assertRaisesRegex(ValueError, r"process_index must be an integer in \[0, 2\]"):
      images.make_image_source("mnist", npz_path=path, stream_buffer=6, process_index=3,
                               process_count=3)

  def test_mode_sets_are_not_streamed(self):
    path = write_npz(os.path.join(self.create_tempdir().full_path, "d.npz"), (28, 28))
    with self.assertRaisesRegex(ValueError, "stream_buffer: compositional_mnist.*set "
                                "stream_buffer to 0"):
      images.make_image_source("compositional_mnist", npz_path=path, stream_buffer=8)


class StreamTrainingTest(parameterized.TestCase):

  def _config(self, path):
    c = shrink_images(dcgan_mnist.get_config(), path)
    c.data.stream_buffer = 16
    for k in ("log_every", "eval_every", "checkpoint_every", "plot_every"):
      c.train[k] = 2
    c.train.eval_samples = 16
    c.train.progress = False
    return c

  def test_each_call_gets_its_buffer_and_resume_is_exact(self):
    tmp = self.create_tempdir().full_path
    path = write_npz(os.path.join(tmp, "d.npz"), (28, 28), n=64)
    calls = []
    original = stream.StreamBuffer.__call__

    def spy(self, call):
      calls.append(call)
      return original(self, call)

    stream.StreamBuffer.__call__ = spy
    try:
      full = loop.train_and_evaluate(self._config(path), os.path.join(tmp, "full"))
      self.assertEqual(calls, [0, 0, 1, 2, 3])  # call 0 at set-up, then one per call
      loop.train_and_evaluate(self._config(path), os.path.join(tmp, "part"), stop_after=2)
      calls.clear()
      resumed = loop.train_and_evaluate(self._config(path), os.path.join(tmp, "part"))
      self.assertEqual(calls, [0, 2, 3])  # resumes reading at the call it stopped at
    finally:
      stream.StreamBuffer.__call__ = original
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state)):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # The refilled buffers are what the steps drew from: a run held on the
    # first buffer ends elsewhere.
    stream.StreamBuffer.__call__ = lambda self, call: original(self, 0)
    try:
      held = loop.train_and_evaluate(self._config(path), os.path.join(tmp, "held"))
    finally:
      stream.StreamBuffer.__call__ = original
    g_full = jax.tree.leaves(full.state.params["generator"])
    g_held = jax.tree.leaves(held.state.params["generator"])
    self.assertFalse(all(np.array_equal(a, b) for a, b in zip(g_full, g_held)))
