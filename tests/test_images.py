"""Tests for gan_jax.data.images: loading, scaling, sharding, 1000-mode sets.

No downloads: TFDS paths use ``tfds.testing.mock_data`` (which works with
``tfds.data_source`` without TensorFlow) and a tiny real array_record data set
prepared in a temporary data_dir; npz paths use generated arrays.
"""

import io
import logging
import os
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np
import PIL.Image
import tensorflow_datasets as tfds

from gan_jax.data import images
import gan_jax.data as data_lib

# TFDS warns about OpenCV and missing dataset_info in mock mode on every call.
logging.getLogger("absl").setLevel(logging.ERROR)

_EXPECTED_SHAPES = {
    "mnist": (28, 28, 1),
    "fashion_mnist": (28, 28, 1),
    "cifar10": (32, 32, 3),
    "celeb_a": (64, 64, 3),
    "lsun_bedroom": (64, 64, 3),
}
_LABELLED = ("mnist", "fashion_mnist", "cifar10")


def _mock(n):
  return tfds.testing.mock_data(num_examples=n, policy=tfds.testing.MockPolicy.USE_CODE)


def _png(image):
  buf = io.BytesIO()
  PIL.Image.fromarray(image[..., 0]).save(buf, format="PNG")
  return buf.getvalue()


def _prepare_real_mnist(data_dir, splits):
  """Writes ``splits`` ({split: (x, y)}) as a real array_record TFDS 'mnist'."""

  class Mnist(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    name = "mnist"
    VERSION = tfds.core.Version("3.0.1")  # the registered builder's version

    def _info(self):
      return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
          "image": tfds.features.Image(shape=(28, 28, 1)),
          "label": tfds.features.ClassLabel(num_classes=10)}))

    def _split_generators(self, dl_manager):
      return {s: self._generate_examples(*xy) for s, xy in splits.items()}

    def _generate_examples(self, x, y):
      for i in range(len(x)):
        # Encoded by PIL here: encoding arrays inside TFDS needs TensorFlow.
        yield i, {"image": _png(x[i]), "label": int(y[i])}

  Mnist(data_dir=data_dir, file_format="array_record").download_and_prepare()


def _digit_images(counts):
  """Synthetic MNIST: image ``i`` of digit ``d`` is the constant ``10 + 24 d + i``.

  Every pixel names the digit and the instance, and constant images stay
  constant under resizing.
  """
  x, y = [], []
  for d, c in enumerate(counts):
    for i in range(c):
      x.append(np.full((28, 28), 10 + 24 * d + i, np.uint8))
      y.append(d)
  return np.stack(x), np.array(y)


def _decode(value):
  v = np.asarray(value).astype(int) - 10
  return v // 24, v % 24  # digit, instance


def _write_npz(path, **arrays):
  np.savez(path, **arrays)
  return path


class LoadTfdsTest(parameterized.TestCase):

  @parameterized.parameters(*_EXPECTED_SHAPES)
  def test_mock_shapes_and_dtypes(self, name):
    with _mock(5):
      x, y = images.load_arrays(name, source="tfds")
    self.assertEqual(x.shape, (5,) + _EXPECTED_SHAPES[name])
    self.assertEqual(x.dtype, np.uint8)
    if name in _LABELLED:
      self.assertEqual(y.shape, (5,))
      self.assertEqual(y.dtype, np.int32)
      self.assertTrue(np.all((y >= 0) & (y < 10)))
    else:
      self.assertIsNone(y)

  @parameterized.parameters(*_EXPECTED_SHAPES)
  def test_npz_export_gives_identical_arrays(self, name):
    path = os.path.join(self.create_tempdir().full_path, f"{name}.npz")
    with _mock(4):
      x_tfds, y_tfds = images.load_arrays(name, source="tfds")
      images.export_npz(name, path, splits=("train",))
    x_npz, y_npz = images.load_arrays(name, npz_path=path)
    np.testing.assert_array_equal(x_npz, x_tfds)
    if name in _LABELLED:
      np.testing.assert_array_equal(y_npz, y_tfds)
    else:
      self.assertIsNone(y_npz)

  def test_celeb_a_is_central_108_crop_resized_to_64(self):
    with _mock(3):
      raw = np.stack([r["image"] for r in tfds.data_source("celeb_a", split="train")])
      x, _ = images.load_arrays("celeb_a", source="tfds")
      x140, _ = images.load_arrays("celeb_a", source="tfds", crop=140, resolution=32)
    self.assertEqual(raw.shape[1:], (218, 178, 3))
    # Rows (218 - 108) / 2 = 55 .. 162, columns (178 - 108) / 2 = 35 .. 142.
    np.testing.assert_array_equal(x, images.resize_images(raw[:, 55:163, 35:143], 64, 64))
    np.testing.assert_array_equal(x140, images.resize_images(raw[:, 39:179, 19:159], 32, 32))

  def test_lsun_short_side_then_centre_crop(self):
    with _mock(6):
      raw = [r["image"] for r in tfds.data_source("lsun/bedroom", split="train")]
      x, _ = images.load_arrays("lsun_bedroom", source="tfds")
    self.assertGreater(len({r.shape for r in raw}), 1)  # the mock varies the size
    for r, got in zip(raw, x):
      h, w = r.shape[:2]
      s = 64 / min(h, w)
      big = images.resize_images(r[None], max(64, round(h * s)), max(64, round(w * s)))
      np.testing.assert_array_equal(got, images.center_crop(big, 64, 64)[0])

  def test_real_array_record_matches_npz(self):
    # A genuine prepared TFDS directory (array_record, PNG images) read without
    # TensorFlow, compared with the same data written as npz.
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (30, 28, 28, 1), dtype=np.uint8)
    y_train = rng.integers(0, 10, 30)
    x_test = rng.integers(0, 256, (7, 28, 28, 1), dtype=np.uint8)
    y_test = rng.integers(0, 10, 7)
    data_dir = self.create_tempdir().full_path
    _prepare_real_mnist(data_dir, {"train": (x_train, y_train), "test": (x_test, y_test)})
    x, y = images.load_arrays("mnist", source="tfds", data_dir=data_dir, download=False)
    # TFDS shuffles records when it writes them: compare as sets of (image, label).
    def rows(a, b):
      return sorted(zip([r.tobytes() for r in a], b.tolist()))
    self.assertEqual(rows(x, y), rows(x_train, y_train))
    xt, _ = images.load_arrays("mnist", split="test", data_dir=data_dir, download=False,
                               max_examples=5)
    self.assertEqual(xt.shape, (5, 28, 28, 1))
    path = images.export_npz("mnist", os.path.join(data_dir, "mnist.npz"), data_dir=data_dir,
                             download=False)
    for split in ("train", "test"):
      a = images.load_arrays("mnist", split=split, data_dir=data_dir, download=False)
      b = images.load_arrays("mnist", split=split, npz_path=path)
      np.testing.assert_array_equal(a[0], b[0])
      np.testing.assert_array_equal(a[1], b[1])

  def test_missing_tfds_data_set_says_how_to_provide_it(self):
    empty = self.create_tempdir().full_path
    with self.assertRaises(images.DatasetUnavailableError) as cm:
      images.load_arrays("cifar10", source="tfds", data_dir=empty, download=False)
    message = str(cm.exception)
    self.assertIn("npz_path", message)
    self.assertIn("data_dir", message)
    self.assertIn("array_record", message)


class LoadNpzTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = self.create_tempdir().full_path
    rng = np.random.default_rng(1)
    self.x = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    self.y = rng.integers(0, 10, 12).astype(np.uint8)

  def _path(self, **arrays):
    return _write_npz(os.path.join(self.dir, "d.npz"), **arrays)

  def test_adds_channel_and_reads_splits(self):
    path = self._path(x_train=self.x, y_train=self.y, x_test=self.x[:3], y_test=self.y[:3])
    x, y = images.load_arrays("mnist", npz_path=path)
    np.testing.assert_array_equal(x, self.x[..., None])
    np.testing.assert_array_equal(y, self.y)
    self.assertEqual(y.dtype, np.int32)
    x, _ = images.load_arrays("fashion_mnist", npz_path=path, split="test")
    self.assertEqual(x.shape, (3, 28, 28, 1))
    x, _ = images.load_arrays("mnist", npz_path=path, max_examples=5)
    self.assertEqual(x.shape, (5, 28, 28, 1))

  @parameterized.named_parameters(("unit", 1.0 / 255.0), ("byte", 1.0))
  def test_float_images_are_converted(self, factor):
    path = self._path(x_train=self.x.astype(np.float32) * factor, y_train=self.y)
    x, _ = images.load_arrays("mnist", npz_path=path)
    self.assertEqual(x.dtype, np.uint8)
    np.testing.assert_array_equal(x[..., 0], self.x)

  def test_unlabelled_sets_need_no_labels(self):
    rng = np.random.default_rng(2)
    raw = rng.integers(0, 256, (3, 80, 70, 3), dtype=np.uint8)
    x, y = images.load_arrays("celeb_a", npz_path=self._path(x_train=raw), crop=60)
    self.assertIsNone(y)
    np.testing.assert_array_equal(x, images.resize_images(raw[:, 10:70, 5:65], 64, 64))

  def test_missing_file(self):
    with self.assertRaisesRegex(images.DatasetUnavailableError, "not found.*npz_path"):
      images.load_arrays("mnist", npz_path=os.path.join(self.dir, "absent.npz"))

  def test_missing_keys(self):
    path = self._path(x_train=self.x)
    with self.assertRaisesRegex(ValueError, r"lacks key\(s\) y_train.*holds x_train"):
      images.load_arrays("mnist", npz_path=path)
    with self.assertRaisesRegex(ValueError, "x_test, y_test"):
      images.load_arrays("mnist", npz_path=path, split="test")

  @parameterized.named_parameters(
      ("flat", np.zeros((4, 784), np.uint8), r"\[N, H, W\] or \[N, H, W, C\]"),
      ("two_channels", np.zeros((4, 28, 28, 2), np.uint8), "C = 1 or 3"),
      ("wrong_size", np.zeros((4, 32, 32), np.uint8), "28x28x1"),
      ("rgb_mnist", np.zeros((4, 28, 28, 3), np.uint8), "28x28x1"),
  )
  def test_bad_shapes(self, x, pattern):
    path = self._path(x_train=x, y_train=np.zeros(4, np.int64))
    with self.assertRaisesRegex(ValueError, pattern):
      images.load_arrays("mnist", npz_path=path)

  @parameterized.named_parameters(
      ("unit_range", np.full((2, 28, 28), -0.5, np.float32), "to_uint8"),
      ("negative_int", np.full((2, 28, 28), -3, np.int16), r"\[-3, -3\]"),
      ("too_large", np.full((2, 28, 28), 300.0), "floats in \\[0, 1\\] or in \\[0, 255\\]"),
      ("nan", np.full((2, 28, 28), np.nan), "NaN"),
      ("bool", np.ones((2, 28, 28), bool), "dtype bool"),
  )
  def test_bad_ranges(self, x, pattern):
    path = self._path(x_train=x, y_train=np.zeros(2, np.int64))
    with self.assertRaisesRegex(ValueError, pattern):
      images.load_arrays("mnist", npz_path=path)

  def test_bad_labels(self):
    path = self._path(x_train=self.x, y_train=np.full(12, 10))
    with self.assertRaisesRegex(ValueError, r"\[0, 9\]"):
      images.load_arrays("mnist", npz_path=path)
    path = self._path(x_train=self.x, y_train=self.y[:5])
    with self.assertRaisesRegex(ValueError, "12 images but y_train has 5"):
      images.load_arrays("mnist", npz_path=path)

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, "unknown image data set 'svhn'; valid: mnist, "
                                            "fashion_mnist, cifar10, celeb_a, lsun_bedroom"):
      images.load_arrays("svhn")
    with self.assertRaisesRegex(ValueError, r"load_arrays\('mnist'\)"):
      images.load_arrays("stacked_mnist")
    with self.assertRaisesRegex(ValueError, "source 'disk'; valid: auto, tfds, npz"):
      images.load_arrays("mnist", source="disk")
    with self.assertRaisesRegex(ValueError, "needs npz_path"):
      images.load_arrays("mnist", source="npz")
    with self.assertRaisesRegex(ValueError, "crop applies to celeb_a only"):
      images.load_arrays("mnist", crop=108)
    with self.assertRaisesRegex(ValueError, "max_examples must be an integer >= 1"):
      images.load_arrays("mnist", max_examples=0)


class GeometryAndScalingTest(parameterized.TestCase):

  def test_scale_range_and_inverse(self):
    x = jnp.arange(256, dtype=jnp.uint8)
    y = jax.jit(images.scale_to_unit_range)(x)
    self.assertEqual(y.dtype, jnp.float32)
    self.assertEqual(float(y.min()), -1.0)
    self.assertEqual(float(y.max()), 1.0)
    np.testing.assert_allclose(y, np.arange(256) / 127.5 - 1.0, atol=1e-6)
    np.testing.assert_array_equal(jax.jit(images.to_uint8)(y), np.arange(256))
    np.testing.assert_array_equal(images.to_uint8(jnp.array([-3.0, 3.0])), [0, 255])

  @parameterized.parameters(((218, 178), (64, 64)), ((108, 108), (64, 64)), ((10, 7), (25, 30)),
                            ((28, 28), (20, 20)))
  def test_resize_matches_jax_antialiased_linear(self, size_in, size_out):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (2,) + size_in + (3,), dtype=np.uint8)
    got = images.resize_images(x, *size_out).astype(int)
    want = jax.image.resize(jnp.asarray(x, jnp.float32), (2,) + size_out + (3,), "linear",
                            antialias=True)
    want = np.clip(np.round(np.asarray(want)), 0, 255)
    # Float rounding may flip a value sitting on a .5 boundary: at most 1 level.
    self.assertLessEqual(np.abs(got - want).max(), 1)
    self.assertLess(np.mean(got != want), 0.01)

  def test_center_crop(self):
    x = np.arange(7 * 6).reshape(1, 7, 6, 1)
    np.testing.assert_array_equal(images.center_crop(x, 3, 2)[0, ..., 0], x[0, 2:5, 2:4, 0])
    with self.assertRaisesRegex(ValueError, "larger than the images"):
      images.center_crop(x, 8, 2)


class HostShardTest(parameterized.TestCase):

  @parameterized.parameters((10, 1), (10, 3), (10, 8), (8, 8), (9, 4))
  def test_disjoint_cover(self, n, count):
    x = np.arange(n)
    parts = [images.host_shard({"x": x, "y": -x, "z": None}, process_index=i,
                               process_count=count) for i in range(count)]
    np.testing.assert_array_equal(np.concatenate([p["x"] for p in parts]), x)
    sizes = [len(p["x"]) for p in parts]
    self.assertLessEqual(max(sizes) - min(sizes), 1)
    for p in parts:
      np.testing.assert_array_equal(p["y"], -p["x"])
      self.assertIsNone(p["z"])
    dropped = [images.host_shard(x, process_index=i, process_count=count, drop_remainder=True)
               for i in range(count)]
    self.assertEqual({len(p) for p in dropped}, {n // count})
    np.testing.assert_array_equal(np.concatenate(dropped), x[:n // count * count])

  def test_defaults_to_this_process(self):
    x = np.arange(5)
    np.testing.assert_array_equal(images.host_shard(x), x)  # one process in tests

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, r"process_index must be an integer in \[0, 2\]"):
      images.host_shard(np.arange(5), process_index=3, process_count=3)
    with self.assertRaisesRegex(ValueError, "common leading dimension"):
      images.host_shard((np.arange(5), np.arange(4)), process_index=0, process_count=1)
    with self.assertRaisesRegex(ValueError, "every host needs one"):
      images.host_shard(np.arange(2), process_index=0, process_count=3)


class ModeSetsTest(parameterized.TestCase):

  def test_stacked_labels_are_the_channel_digits(self):
    x, y = _digit_images([3, 1, 2, 5, 4, 1, 2, 3, 2, 4])
    source = images.stacked_mnist_source(x, y, image_size=32)
    self.assertEqual(source.shape, (32, 32, 3))
    self.assertEqual(source.num_classes, 1000)
    batch, modes = jax.jit(source.draw, static_argnums=2)(jax.random.key(0), source.arrays, 512)
    self.assertEqual(batch.shape, (512, 32, 32, 3))
    self.assertEqual(batch.dtype, jnp.float32)
    pixels = np.asarray(images.to_uint8(batch))
    np.testing.assert_array_equal(pixels[:, :2], 0)  # zero padding
    np.testing.assert_array_equal(pixels[:, :, -2:], 0)
    centre = pixels[:, 2:30, 2:30]
    # Constant digit images stay constant.
    np.testing.assert_array_equal(centre, np.broadcast_to(centre[:, :1, :1], centre.shape))
    digits, _ = _decode(centre[:, 0, 0])
    np.testing.assert_array_equal(modes, 100 * digits[:, 0] + 10 * digits[:, 1] + digits[:, 2])
    np.testing.assert_array_equal(images.mode_to_digits(modes), digits)

  def test_stacked_digits_are_uniform_over_images(self):
    counts = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    x, y = _digit_images(counts)
    source = images.stacked_mnist_source(x, y)
    n = 20000
    batch, modes = jax.jit(source.draw, static_argnums=2)(jax.random.key(1), source.arrays, n)
    digits, _ = _decode(images.to_uint8(batch)[:, 0, 0])
    p = np.asarray(counts) / sum(counts)
    for c in range(3):
      f = np.bincount(digits[:, c], minlength=10) / n
      # 5 binomial standard deviations per cell (30 cells: false alarm < 1e-4).
      np.testing.assert_array_less(np.abs(f - p), 5 * np.sqrt(p * (1 - p) / n))
    w = source.info.mode_weights
    self.assertAlmostEqual(w.sum(), 1.0)
    np.testing.assert_allclose(w, np.einsum("i,j,k->ijk", p, p, p).ravel())
    np.testing.assert_array_equal(np.asarray(modes), images.digits_to_mode(digits))

  def test_compositional_layout_and_labels(self):
    x, y = _digit_images([2] * 10)
    source = images.compositional_mnist_source(x, y, digit_set=0)
    self.assertEqual(source.shape, (64, 64, 1))
    batch, modes = jax.jit(source.draw, static_argnums=2)(jax.random.key(2), source.arrays, 256)
    pixels = np.asarray(images.to_uint8(batch))[..., 0]
    slots = [pixels[:, 22:42, c:c + 20] for c in (2, 22, 42)]
    canvas = pixels.copy()
    canvas[:, 22:42, 2:62] = 0
    np.testing.assert_array_equal(canvas, 0)  # margins are background
    digits = []
    for slot in slots:
      # One whole digit per slot.
      np.testing.assert_array_equal(slot, np.broadcast_to(slot[:, :1, :1], slot.shape))
      digits.append(_decode(slot[:, 0, 0])[0])
    digits = np.stack(digits, -1)
    np.testing.assert_array_equal(modes, 100 * digits[:, 0] + 10 * digits[:, 1] + digits[:, 2])

  @parameterized.parameters(1, 2, 3, 4)
  def test_compositional_digit_frequencies(self, digit_set):
    counts = [3, 1, 2, 4, 2, 3, 1, 2, 3, 2]
    x, y = _digit_images(counts)
    source = images.compositional_mnist_source(x, y, digit_set=digit_set)
    n = 20000
    batch, _ = jax.jit(source.draw, static_argnums=2)(jax.random.key(digit_set),
                                                     source.arrays, n)
    pixels = np.asarray(images.to_uint8(batch))[:, 30, :, 0]
    probs = images.compositional_digit_probs(digit_set)
    np.testing.assert_allclose(source.info.digit_probs, probs)
    for j, column in enumerate((10, 30, 50)):
      digits, instances = _decode(pixels[:, column])
      f = np.bincount(digits, minlength=10) / n
      p = probs[j]
      # 5 binomial standard deviations per cell.
      np.testing.assert_array_less(np.abs(f - p), 5 * np.sqrt(p * (1 - p) / n))
      for d in range(10):  # images of a digit are drawn uniformly
        m = int(np.sum(digits == d))
        g = np.bincount(instances[digits == d], minlength=counts[d]) / m
        q = 1.0 / counts[d]
        np.testing.assert_array_less(np.abs(g - q), 5 * np.sqrt(q * (1 - q) / m) + 1e-12)

  def test_compositional_digit_sets(self):
    for k in range(5):
      p = images.compositional_digit_probs(k)
      np.testing.assert_allclose(p.sum(axis=1), 1.0)
      self.assertTrue(np.all(p > 0))
    np.testing.assert_allclose(images.compositional_digit_probs(0), 0.1)
    for k, ratio in ((1, 0.95 ** -9), (4, 0.8 ** -9)):
      p = images.compositional_digit_probs(k)
      np.testing.assert_allclose(p.max(axis=1) / p.min(axis=1), ratio)
    np.testing.assert_array_equal(images.compositional_digit_probs(1).argmax(axis=1), [9, 6, 3])

  def test_compositional_modes_follow_mode_weights(self):
    x, y = _digit_images([1] * 10)
    source = images.compositional_mnist_source(x, y, digit_set=1)
    w = source.info.mode_weights
    self.assertAlmostEqual(w.sum(), 1.0)
    p = source.info.digit_probs
    np.testing.assert_allclose(w.reshape(10, 10, 10), np.einsum("i,j,k->ijk", *p))
    n = 50000
    _, modes = jax.jit(source.draw, static_argnums=2)(jax.random.key(9), source.arrays, n)
    observed = np.bincount(np.asarray(modes), minlength=1000)
    expected = n * w  # smallest expected count 24
    chi2 = np.sum((observed - expected) ** 2 / expected)
    # Pearson chi-square, 999 degrees of freedom: mean 999, sd sqrt(2 * 999) = 44.7.
    self.assertLess(chi2, 999 + 5 * 44.7)

  def test_custom_digit_probs_and_probability_as_array(self):
    x, y = _digit_images([1] * 10)
    probs = np.zeros(10)
    probs[[3, 7]] = 1.0
    source = images.compositional_mnist_source(x, y, digit_probs=probs)
    _, modes = jax.jit(source.draw, static_argnums=2)(jax.random.key(4), source.arrays, 64)
    self.assertTrue(set(np.asarray(images.mode_to_digits(modes)).ravel()) <= {3, 7})
    # A digit of probability 0 may be absent from the images.
    x2, y2 = _digit_images([1, 1, 1, 1, 1, 1, 1, 1, 1, 0])
    probs = np.full(10, 1.0)
    probs[9] = 0.0
    images.compositional_mnist_source(x2, y2, digit_probs=probs)

  def test_mode_set_errors(self):
    x, y = _digit_images([1] * 10)
    with self.assertRaisesRegex(ValueError, r"digit_set must be an integer in \[0, 4\]"):
      images.compositional_mnist_source(x, y, digit_set=5)
    with self.assertRaisesRegex(ValueError, "not both"):
      images.compositional_mnist_source(x, y, digit_set=1, digit_probs=np.ones(10))
    with self.assertRaisesRegex(ValueError, r"shape \(10,\).*or \(3, 10\)"):
      images.compositional_mnist_source(x, y, digit_probs=np.ones(9))
    with self.assertRaisesRegex(ValueError, r"digit\(s\) \[9\]"):
      x2, y2 = _digit_images([1, 1, 1, 1, 1, 1, 1, 1, 1, 0])
      images.compositional_mnist_source(x2, y2)
    with self.assertRaisesRegex(ValueError, "image_size must be 28 or 32"):
      images.stacked_mnist_source(x, y, image_size=30)
    with self.assertRaisesRegex(ValueError, r"\[N, 28, 28\]"):
      images.stacked_mnist_source(np.zeros((10, 32, 32), np.uint8), y)


class MakeSourceTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    x, y = _digit_images([7] * 10)  # 70 images
    self.path = _write_npz(os.path.join(self.create_tempdir().full_path, "m.npz"),
                           x_train=x, y_train=y, x_test=x[::3], y_test=y[::3])

  def test_mnist_through_make_source(self):
    source = data_lib.make_source({"name": "mnist", "npz_path": self.path,
                                     "digit_set": None})
    self.assertEqual(source.shape, (28, 28, 1))
    self.assertTrue(source.has_labels)
    self.assertEqual(source.num_classes, 10)
    self.assertEqual(source.size, 70)
    self.assertEqual(source.arrays["x"].dtype, np.uint8)
    self.assertEqual(source.info.origin, f"npz:{self.path}")
    x, y = jax.jit(source.draw, static_argnums=2)(jax.random.key(0), source.arrays, 16)
    self.assertEqual(x.shape, (16, 28, 28, 1))
    self.assertEqual(x.dtype, jnp.float32)
    self.assertTrue(bool(jnp.all((x >= -1) & (x <= 1))))
    np.testing.assert_array_equal(_decode(images.to_uint8(x)[:, 0, 0, 0])[0], y)

  @parameterized.parameters("stacked_mnist", "compositional_mnist")
  def test_mode_sets_through_make_source(self, name):
    source = data_lib.make_source({"name": name, "npz_path": self.path, "split": "test"})
    self.assertEqual(source.num_classes, 1000)
    self.assertEqual(source.size, 24)
    self.assertEqual(source.info.num_modes, 1000)
    self.assertAlmostEqual(source.info.mode_weights.sum(), 1.0)
    _, modes = jax.jit(source.draw, static_argnums=2)(jax.random.key(0), source.arrays, 8)
    self.assertTrue(bool(jnp.all((modes >= 0) & (modes < 1000))))

  def test_config_style_options(self):
    # Configs write "not set" as "" and may list options of other sets as None.
    with _mock(3):
      source = data_lib.make_source({"name": "cifar10", "source": "auto", "npz_path": "",
                                       "data_dir": "", "digit_set": None})
    self.assertEqual(source.info.origin, "tfds:cifar10")
    self.assertEqual(source.arrays["x"].shape, (3, 32, 32, 3))
    source = data_lib.make_source({"name": "compositional_mnist", "npz_path": self.path,
                                     "data_dir": "", "digit_set": 3})
    np.testing.assert_allclose(source.info.digit_probs, images.compositional_digit_probs(3))

  def test_host_parts(self):
    parts = [images.make_image_source("stacked_mnist", npz_path=self.path, process_index=i,
                                      process_count=3) for i in range(3)]
    self.assertEqual([len(p.arrays["x"]) for p in parts], [23, 23, 23])
    self.assertEqual({p.size for p in parts}, {70})
    # Contiguous, disjoint parts of the first 69 images.
    np.testing.assert_array_equal(np.concatenate([p.arrays["y"] for p in parts]),
                                  np.repeat(np.arange(10), 7)[:69])
    w = parts[0].info.mode_weights
    self.assertAlmostEqual(w.sum(), 1.0)
    f = [np.bincount(p.arrays["y"], minlength=10) / 23 for p in parts]
    np.testing.assert_allclose(w, np.mean([np.einsum("i,j,k->ijk", g, g, g).ravel()
                                           for g in f], axis=0))

  def test_errors_list_valid_choices(self):
    with self.assertRaisesRegex(ValueError, "unknown data set 'svhn'.*ring_8.*mnist.*"
                                            "compositional_mnist"):
      data_lib.make_source({"name": "svhn"})
    with self.assertRaisesRegex(ValueError, "config.data: unknown option.*crop.*valid:"):
      data_lib.make_source({"name": "mnist", "npz_path": self.path, "crop": 108})
    with self.assertRaisesRegex(ValueError, "config.data: .*bogus"):
      data_lib.make_source({"name": "compositional_mnist", "npz_path": self.path,
                              "bogus": 1})
    self.assertEqual(data_lib.make_source({"name": "ring_8"}).shape, (2,))


if __name__ == "__main__":
  absltest.main()
