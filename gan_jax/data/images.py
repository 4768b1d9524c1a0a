"""Image data sets of the papers' experiments.

Images are loaded once on the host, kept on the device as ``uint8`` and scaled
to ``[-1, 1]`` inside the compiled step (:func:`scale_to_unit_range`), so a
data set costs a quarter of its float memory and a batch costs no host work.

Sets (``IMAGE_DATASETS``):

* ``mnist``, ``fashion_mnist``: ``[28, 28, 1]``, 10 classes.
* ``cifar10``: ``[32, 32, 3]``, 10 classes.
* ``celeb_a``: ``[64, 64, 3]``, no labels. The central ``108 x 108`` square of
  the ``218 x 178`` aligned faces is cropped and resized to ``64 x 64`` (the
  crop of the widely used DCGAN CelebA pipeline; it keeps the face and little
  background, where a 140 crop keeps hair and shoulders; ``crop=140`` selects
  that one).
* ``lsun_bedroom``: ``[64, 64, 3]``, no labels; TFDS ``lsun/bedroom``. The
  shorter side is resized to 64 and the centre ``64 x 64`` square kept
  (Radford et al. 2015).
* ``stacked_mnist``: 1000 modes. Each example stacks three independently,
  uniformly drawn MNIST digits in the R, G, B channels, ``[28, 28, 3]`` (or
  ``[32, 32, 3]`` zero-padded with ``image_size=32``); mode
  ``100 d_R + 10 d_G + d_B`` (Srivastava et al. 2017; Lin et al. 2018).
* ``compositional_mnist``: 1000 modes (Che et al. 2017, Sec. 4.1.2). Three
  digits side by side form a number in ``[0, 999]`` in one ``64 x 64`` image,
  digits drawn with unequal probabilities (:func:`compositional_digit_probs`).
  Layout: each 28 x 28 digit is resized (anti-aliased) to 20 x 20 and the three
  tiles are placed left to right at columns 2, 22 and 42, rows 22 to 41, on a
  black canvas: 2-pixel side margins, 22-pixel top and bottom margins, no
  overlap, so every slot holds exactly one digit.

Both 1000-mode sets are drawn inside the compiled step from the base MNIST
arrays, so every step sees fresh combinations; labels are the modes, and
``info.mode_weights`` is the exact distribution over the 1000 modes (for the
KL of the generated mode histogram).

Sources: ``source='tfds'`` reads ``tfds.data_source`` (array_record files, no
TensorFlow needed; a data set prepared in TFRECORD format by ``tfds.load``
must be re-prepared with ``file_format='array_record'``); ``source='npz'``
reads a local ``.npz`` with keys ``x_train, y_train, x_test, y_test``
(:func:`export_npz` writes one from TFDS); ``'auto'`` takes the npz when
``npz_path`` is given.

Memory: by default a split is read whole (or its first ``max_examples``
records) into host memory and then onto every device. CelebA (162,770 train
images, 2.0 GB at 64 x 64 x 3) fits a modern accelerator. LSUN bedroom (3
million images, 37 GB) is streamed instead (``stream_buffer``, see
:mod:`gan_jax.data.stream`): the device keeps a buffer of that many examples,
refilled from TFDS's random-access reader before every compiled call.
Reading decodes every JPEG/PNG once, which takes minutes for CelebA;
:func:`export_npz` keeps the prepared arrays for later runs.

Several hosts: :func:`make_image_source` keeps ``N // P`` contiguous examples
on each of ``P`` hosts (:func:`host_shard`), so each host draws its part of a
batch from its own images.

References:
  Radford, Metz, Chintala. Unsupervised Representation Learning with Deep
  Convolutional Generative Adversarial Networks. ICLR 2016 (arXiv 2015).
  Che, Li, Jacob, Bengio, Li. Mode Regularized Generative Adversarial
  Networks. ICLR 2017.
  Srivastava, Valkov, Russell, Gutmann, Sutton. VEEGAN. NeurIPS 2017.
  Lin, Khetan, Fanti, Oh. PacGAN. NeurIPS 2018.

Example:

>>> import jax, numpy as np
>>> digits = np.zeros((20, 28, 28), np.uint8)
>>> source = compositional_mnist_source(digits, np.arange(20) % 10)
>>> x, y = jax.jit(source.draw, static_argnums=2)(jax.random.key(0), source.arrays, 4)
>>> x.shape, y.shape
((4, 64, 64, 1), (4,))
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.data import source as source_lib
from gan_jax.errors import UserError
from gan_jax.data import stream as stream_lib
from gan_jax.validation import positive_int as _positive_int

__all__ = [
    "IMAGE_DATASETS",
    "DatasetUnavailableError",
    "ImageDataInfo",
    "center_crop",
    "compositional_digit_probs",
    "compositional_mnist_source",
    "digit_crops",
    "digits_to_mode",
    "export_npz",
    "host_shard",
    "load_arrays",
    "make_image_source",
    "mode_to_digits",
    "resize_images",
    "scale_to_unit_range",
    "stacked_mnist_source",
    "to_uint8",
]


@dataclasses.dataclass(frozen=True)
class _BaseSet:
  tfds_name: str
  num_classes: int  # 0: no labels
  shape: Optional[tuple[int, int, int]]  # fixed stored shape; None: prepared to `resolution`
  resize: str = "none"  # 'none', 'crop_resize' (celeb_a) or 'short_side' (lsun)


_BASE_SETS = {
    "mnist": _BaseSet("mnist", 10, (28, 28, 1)),
    "fashion_mnist": _BaseSet("fashion_mnist", 10, (28, 28, 1)),
    "cifar10": _BaseSet("cifar10", 10, (32, 32, 3)),
    "celeb_a": _BaseSet("celeb_a", 0, None, "crop_resize"),
    "lsun_bedroom": _BaseSet("lsun/bedroom", 0, None, "short_side"),
}
_MODE_SETS = ("stacked_mnist", "compositional_mnist")
IMAGE_DATASETS = tuple(_BASE_SETS) + _MODE_SETS
_SOURCES = ("auto", "tfds", "npz")

_CELEB_A_CROP = 108
_RESOLUTION = 64
# Compositional MNIST layout (see the module docstring).
_TILE = 20
_CANVAS = 64
_TOP = (_CANVAS - _TILE) // 2  # 22
_LEFT = (_CANVAS - 3 * _TILE) // 2  # 2
_NUM_DIGIT_SETS = 4
# Records decoded per batch: bounds the raw (undecoded-size) images in memory.
_READ_CHUNK = 1024


class DatasetUnavailableError(FileNotFoundError, UserError):
  """The data set is neither in the TFDS data_dir nor in the given npz file."""


@dataclasses.dataclass(frozen=True, eq=False)
class ImageDataInfo:
  """What an image ``DataSource`` holds, for metrics, plots and logs.

  Attributes:
    name: data set name (one of :data:`IMAGE_DATASETS`).
    shape: shape of one example ``(H, W, C)``.
    num_classes: number of label values (1000 modes for the 1000-mode sets), 0
      without labels.
    num_examples: images in the split over all hosts (the base MNIST images for
      the 1000-mode sets).
    split: the split read (e.g. ``'train'``), or None for arrays given directly.
    origin: where the images came from (``'tfds:mnist'``, ``'npz:/path'``,
      ``'arrays'``).
    num_modes: number of modes of a 1000-mode set, else None.
    mode_weights: ``[num_modes]`` probability of each mode (index
      ``100 d_0 + 10 d_1 + d_2``), else None.
    digit_probs: ``[3, 10]`` probability of each digit in each position
      (channel or slot) of a 1000-mode set, else None.
    layout: how an example is composed, in words.
  """
  name: str
  shape: tuple[int, ...]
  num_classes: int
  num_examples: int
  split: Optional[str] = None
  origin: str = "arrays"
  num_modes: Optional[int] = None
  mode_weights: Optional[np.ndarray] = None
  digit_probs: Optional[np.ndarray] = None
  layout: str = ""


# --------------------------------------------------------------------------
# Validation helpers (concrete Python values only).
# --------------------------------------------------------------------------

def _check_name(name: Any, valid: Sequence[str], what: str = "image data set") -> str:
  if not isinstance(name, str) or name not in valid:
    raise ValueError(f"unknown {what} {name!r}; valid: {', '.join(valid)}")
  return name


def _as_uint8_images(x: Any, what: str) -> np.ndarray:
  """``[N, H, W]`` or ``[N, H, W, C]`` images as ``uint8 [N, H, W, C]``.

  Floats are accepted in ``[0, 1]`` (scaled by 255) or ``[0, 255]``; a float
  array whose maximum is at most 1 is read as ``[0, 1]``.
  """
  a = np.asarray(x)
  if a.ndim == 3:
    a = a[..., None]  # grayscale sets are often stored without a channel axis
  if a.ndim != 4 or a.shape[-1] not in (1, 3) or a.shape[0] == 0:
    raise ValueError(
        f"{what} must be a non-empty [N, H, W] or [N, H, W, C] array with C = 1 or 3; "
        f"got shape {a.shape}")
  if a.dtype == np.uint8:
    return a
  expected = "expected uint8 in [0, 255], or floats in [0, 1] or in [0, 255]"
  if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
    raise ValueError(f"{what} has dtype {a.dtype}; {expected}")
  lo, hi = a.min(), a.max()
  if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
    raise ValueError(f"{what} holds NaN or inf; {expected}")
  if lo < 0 or hi > 255:
    hint = (" (images already scaled to [-1, 1]? to_uint8 converts them back)"
            if lo >= -1 and hi <= 1 else "")
    raise ValueError(f"{what} has values in [{lo}, {hi}]; {expected}{hint}")
  if np.issubdtype(a.dtype, np.floating):
    if hi <= 1:
      a = a * 255.0
    return np.round(a).astype(np.uint8)
  return a.astype(np.uint8)


def _as_labels(y: Any, n: int, num_classes: int, what: str) -> np.ndarray:
  a = np.asarray(y)
  if a.ndim == 2 and a.shape[1] == 1:
    a = a[:, 0]
  if a.shape != (n,):
    raise ValueError(f"{what} must have shape [N] = ({n},), one label per image; got {a.shape}")
  if not np.issubdtype(a.dtype, np.integer):
    if not (np.issubdtype(a.dtype, np.floating) and np.all(a == np.round(a))):
      raise ValueError(f"{what} must be integers; got dtype {a.dtype}")
  if a.min() < 0 or a.max() >= num_classes:
    raise ValueError(f"{what} must lie in [0, {num_classes - 1}]; got values in "
                     f"[{a.min()}, {a.max()}]")
  return a.astype(np.int32)


# --------------------------------------------------------------------------
# Scaling and geometry.
# --------------------------------------------------------------------------

def scale_to_unit_range(images: jax.Array) -> jax.Array:
  """``uint8`` images in ``[0, 255]`` as ``float32`` in ``[-1, 1]``: ``x / 127.5 - 1``.

  Jittable; the compiled step applies it to each drawn batch, matching a
  generator with a ``tanh`` output (Radford et al. 2015).
  """
  # Centred first: (x - 127.5) / 127.5 maps 0 and 255 exactly to -1 and 1 in
  # float32, where x / 127.5 - 1 overshoots 1 by an ulp once XLA turns the
  # division into a multiplication.
  return (jnp.asarray(images).astype(jnp.float32) - 127.5) / 127.5


def to_uint8(images: jax.Array) -> jax.Array:
  """Images in ``[-1, 1]`` back to ``uint8`` (clipped, rounded), e.g. for plots.

  Exact inverse of :func:`scale_to_unit_range` on its outputs.
  """
  x = (jnp.asarray(images, jnp.float32) + 1.0) * 127.5
  return jnp.clip(jnp.round(x), 0, 255).astype(jnp.uint8)


def center_crop(images: np.ndarray, height: int, width: int) -> np.ndarray:
  """The central ``height x width`` window of ``[N, H, W, C]`` images.

  When ``H - height`` is odd the window sits one pixel nearer the top (and
  likewise to the left).
  """
  h, w = images.shape[1:3]
  if height > h or width > w:
    raise ValueError(f"crop {height}x{width} is larger than the images ({h}x{w})")
  top, left = (h - height) // 2, (w - width) // 2
  return images[:, top:top + height, left:left + width]


@functools.lru_cache(maxsize=64)
def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
  """``[n_out, n_in]`` weights of linear interpolation with anti-aliasing.

  A triangle kernel on pixel centres; when shrinking, it is widened by the
  shrink factor so each output averages every input pixel it covers (the
  filter of PIL's and ``jax.image.resize``'s anti-aliased linear resize).
  """
  scale = n_out / n_in
  support = 1.0 / min(scale, 1.0)
  centres = (np.arange(n_out) + 0.5) / scale
  taps = np.arange(n_in) + 0.5
  w = np.maximum(0.0, 1.0 - np.abs(taps[None, :] - centres[:, None]) / support)
  w /= w.sum(axis=1, keepdims=True)
  w.setflags(write=False)
  return w


def resize_images(images: np.ndarray, height: int, width: int) -> np.ndarray:
  """Anti-aliased linear resize of ``uint8 [N, H, W, C]`` images (NumPy).

  Separable: one matrix per axis, so a batch of same-size images is two
  matrix products. Matches ``jax.image.resize(..., 'linear', antialias=True)``
  before rounding.

  Returns:
    ``uint8 [N, height, width, C]``.
  """
  h, w = images.shape[1:3]
  if (h, w) == (height, width):
    return images
  rows, cols = _resize_matrix(h, height), _resize_matrix(w, width)
  x = np.einsum("oh,nhwc->nowc", rows, images.astype(np.float32))
  x = np.einsum("pw,nowc->nopc", cols, x)
  return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _fit(images: np.ndarray, spec: _BaseSet, *, crop: int, resolution: int) -> np.ndarray:
  """Crops/resizes same-size ``uint8 [N, H, W, C]`` images to the set's shape."""
  h, w = images.shape[1:3]
  if (h, w) == (resolution, resolution):
    return images  # already prepared (e.g. an npz written by export_npz)
  if spec.resize == "crop_resize":
    if crop > min(h, w):
      raise ValueError(f"crop {crop} is larger than the images ({h}x{w}); valid: "
                       f"1 to {min(h, w)}")
    return resize_images(center_crop(images, crop, crop), resolution, resolution)
  # short_side: the shorter side becomes `resolution`, then the centre square.
  s = resolution / min(h, w)
  nh, nw = max(resolution, round(h * s)), max(resolution, round(w * s))
  return center_crop(resize_images(images, nh, nw), resolution, resolution)


def _prepare(images: Any, spec: _BaseSet, name: str, what: str, *, crop: int,
             resolution: int) -> np.ndarray:
  x = _as_uint8_images(images, what)
  if spec.shape is not None:
    if x.shape[1:] != spec.shape:
      raise ValueError(f"{what}: {name} images must be {'x'.join(map(str, spec.shape))} "
                       f"(H x W x C); got {'x'.join(map(str, x.shape[1:]))}")
    return x
  if x.shape[-1] != 3:
    raise ValueError(f"{what}: {name} images must have 3 channels; got {x.shape[-1]}")
  return _fit(x, spec, crop=crop, resolution=resolution)


# --------------------------------------------------------------------------
# Loading.
# --------------------------------------------------------------------------

def _offline_help(name: str) -> str:
  text = (f" To provide {name} without network access: pass a local npz file "
          f"(--config.data.npz_path=/path/{name}.npz, keys x_train, y_train, x_test, "
          "y_test; export_npz writes one on a connected machine), or copy a TFDS data "
          "directory prepared elsewhere in array_record format (e.g. `tfds build "
          f"{_BASE_SETS[name].tfds_name} --file_format=array_record`) and pass "
          "--config.data.data_dir=DIR.")
  if _BASE_SETS[name].resize != "none":
    text += (" If the TFDS download is unavailable, put the source files in "
             "DIR/downloads/manual (TFDS manual download) and prepare it there.")
  return text


def _import_tfds():
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("source='tfds' needs tensorflow-datasets (pip install "
                      "tensorflow-datasets); or use source='npz' with npz_path") from e
  return tfds


def _read_records(ds, keys) -> list:
  """Records ``keys`` of a TFDS data source, batched where it can."""
  keys = [int(k) for k in keys]
  try:
    # Batched reads are about twice as fast as one record at a time.
    return list(ds.__getitems__(list(keys)))
  except TypeError:
    # tfds.testing.mock_data (4.9.10) installs a __getitems__ that cannot be
    # called; single-record reads work for mock and real sources alike.
    return [ds[i] for i in keys]


# Where TFDS downloads from first (its mirror of the data sets it prepares).
_DOWNLOAD_HOST = ("storage.googleapis.com", 443)


def _can_download(timeout: float = 3.0) -> bool:
  """Whether TFDS's download server answers: offline, a download would retry for minutes."""
  import socket  # pylint: disable=g-import-not-at-top
  try:
    socket.create_connection(_DOWNLOAD_HOST, timeout=timeout).close()
    return True
  except OSError:
    return False


def _open_tfds(name: str, *, split: str, data_dir: Optional[str], download: bool):
  """The TFDS random-access source of a split (not empty).

  A prepared data set opens without a download attempt; a missing one is
  downloaded only when ``download`` and TFDS's server is reachable, so an
  offline machine is told at once (and no partial folders are left behind).
  """
  spec = _BASE_SETS[name]
  tfds = _import_tfds()
  where = f"TFDS data set {spec.tfds_name!r} (split {split!r}, data_dir {data_dir or 'default'!s})"
  try:
    ds = tfds.data_source(spec.tfds_name, split=split, data_dir=data_dir, download=False)
  except Exception as e:  # pylint: disable=broad-except
    # TFDS signals a missing or unreadable data set with many exception types
    # (download, file-format and not-found errors); each means "not available".
    if not download:
      raise DatasetUnavailableError(
          f"{where} is not prepared here ({type(e).__name__}) and downloads are off."
          + _offline_help(name)) from e
    if not _can_download():
      raise DatasetUnavailableError(
          f"{where} is not prepared on this machine, and TFDS's download server "
          f"({_DOWNLOAD_HOST[0]}) cannot be reached, so it cannot be downloaded."
          + _offline_help(name)) from None
    try:
      ds = tfds.data_source(spec.tfds_name, split=split, data_dir=data_dir, download=True)
    except Exception as e2:  # pylint: disable=broad-except
      raise DatasetUnavailableError(
          f"{where} could not be opened: {type(e2).__name__}: {e2}." + _offline_help(name)
      ) from e2
  if len(ds) == 0:
    raise DatasetUnavailableError(f"TFDS data set {spec.tfds_name!r} split {split!r} is empty")
  return ds


def _decode_records(ds, keys, name: str, *, crop: int, resolution: int):
  """(uint8 images, int32 labels or None) of TFDS records ``keys``, prepared."""
  spec = _BASE_SETS[name]
  what = f"TFDS {spec.tfds_name} images"
  records = _read_records(ds, keys)
  raw = [np.asarray(r["image"]) for r in records]
  if len({r.shape for r in raw}) == 1:
    images = _prepare(np.stack(raw), spec, name, what, crop=crop, resolution=resolution)
  else:  # LSUN images differ in size
    images = np.concatenate([_prepare(r[None], spec, name, what, crop=crop,
                                      resolution=resolution) for r in raw])
  labels = None
  if spec.num_classes:
    labels = _as_labels([r["label"] for r in records], len(records), spec.num_classes,
                        f"TFDS {spec.tfds_name} labels")
  return images, labels


def _read_tfds(name: str, *, split: str, data_dir: Optional[str], max_examples: Optional[int],
               download: bool, crop: int, resolution: int):
  spec = _BASE_SETS[name]
  ds = _open_tfds(name, split=split, data_dir=data_dir, download=download)
  n = len(ds) if max_examples is None else min(len(ds), max_examples)
  images = None
  labels = np.empty(n, np.int32) if spec.num_classes else None
  for start in range(0, n, _READ_CHUNK):
    stop = min(n, start + _READ_CHUNK)
    batch, batch_labels = _decode_records(ds, range(start, stop), name, crop=crop,
                                          resolution=resolution)
    if images is None:
      images = np.empty((n,) + batch.shape[1:], np.uint8)
    images[start:stop] = batch
    if labels is not None:
      labels[start:stop] = batch_labels
  return images, labels


def _read_npz(name: str, path: str, *, split: str, max_examples: Optional[int], crop: int,
              resolution: int):
  spec = _BASE_SETS[name]
  if not os.path.isfile(path):
    raise DatasetUnavailableError(f"npz file {path!r} for {name} not found." + _offline_help(name))
  xk, yk = f"x_{split}", f"y_{split}"
  with np.load(path, allow_pickle=False) as f:
    keys = sorted(f.keys())
    need = [xk] + ([yk] if spec.num_classes else [])
    missing = [k for k in need if k not in keys]
    if missing:
      raise ValueError(
          f"npz file {path!r} lacks key(s) {', '.join(missing)} for split {split!r}; it holds "
          f"{', '.join(keys) or 'nothing'}. An image npz holds x_train, y_train, x_test, "
          "y_test: images [N, H, W] or [N, H, W, C], labels [N] (labels optional for "
          "unlabelled sets)")
    x = f[xk]
    y = f[yk] if spec.num_classes else None
  if y is not None and len(y) != len(x):
    raise ValueError(f"npz file {path!r}: {xk} has {len(x)} images but {yk} has {len(y)} labels")
  if max_examples is not None:
    x = x[:max_examples]
    y = None if y is None else y[:max_examples]
  images = _prepare(x, spec, name, f"npz {path!r} {xk}", crop=crop, resolution=resolution)
  labels = None if y is None else _as_labels(y, len(images), spec.num_classes,
                                             f"npz {path!r} {yk}")
  return images, labels


def _resize_options(name: str, crop: Optional[int], resolution: Optional[int]):
  spec = _BASE_SETS[name]
  if crop is not None and spec.resize != "crop_resize":
    raise ValueError(f"crop applies to celeb_a only; got crop={crop!r} for {name}")
  if resolution is not None and spec.resize == "none":
    raise ValueError(f"resolution applies to celeb_a and lsun_bedroom only; got "
                     f"resolution={resolution!r} for {name}")
  crop = _positive_int("crop", _CELEB_A_CROP if crop is None else crop)
  resolution = _positive_int("resolution", _RESOLUTION if resolution is None else resolution)
  return crop, resolution


def load_arrays(name: str, *, split: str = "train", source: str = "auto",
                npz_path: Optional[str] = None, data_dir: Optional[str] = None,
                max_examples: Optional[int] = None, download: bool = True,
                crop: Optional[int] = None, resolution: Optional[int] = None):
  """Reads one split of an image data set into host memory.

  Args:
    name: ``mnist``, ``fashion_mnist``, ``cifar10``, ``celeb_a`` or
      ``lsun_bedroom``.
    split: split name (``'train'``, ``'test'``; TFDS also takes slices such as
      ``'train[:10%]'``; an npz needs the keys ``x_<split>``, ``y_<split>``).
    source: ``'tfds'``, ``'npz'`` or ``'auto'`` (npz when ``npz_path`` is
      given, else TFDS).
    npz_path: local ``.npz`` file for ``source='npz'`` (None or ``''``: none).
    data_dir: TFDS data directory (None or ``''``: TFDS's default).
    max_examples: read only the first this many images.
    download: let TFDS download and prepare a missing data set.
    crop: celeb_a only: side of the central square cropped before resizing
      (default 108).
    resolution: celeb_a and lsun_bedroom only: output side (default 64).

  Returns:
    ``(images, labels)``: ``uint8 [N, H, W, C]`` and ``int32 [N]`` (None for
    unlabelled sets).

  Raises:
    ValueError: unknown name or source, missing npz keys, bad shapes, dtypes,
      value ranges or labels.
    DatasetUnavailableError: the data set could not be found or opened (the
      message says how to provide it offline).
  """
  o = _load_options(name, split=split, source=source, npz_path=npz_path, data_dir=data_dir,
                    max_examples=max_examples, crop=crop, resolution=resolution)
  if o["source"] == "npz":
    return _read_npz(name, o["npz_path"], split=split, max_examples=o["max_examples"],
                     crop=o["crop"], resolution=o["resolution"])
  return _read_tfds(name, split=split, data_dir=o["data_dir"], max_examples=o["max_examples"],
                    download=download, crop=o["crop"], resolution=o["resolution"])


def _load_options(name, *, split, source, npz_path, data_dir, max_examples, crop, resolution):
  """Checks and normalises the reading options of :func:`load_arrays`."""
  if name in _MODE_SETS:
    raise ValueError(f"{name} is drawn from MNIST inside the step; load its base with "
                     f"load_arrays('mnist') or build it with make_image_source({name!r})")
  _check_name(name, tuple(_BASE_SETS))
  _check_name(source, _SOURCES, "source")
  if not isinstance(split, str) or not split:
    raise ValueError(f"split must be a non-empty string such as 'train' or 'test'; got {split!r}")
  max_examples = _positive_int("max_examples", max_examples, allow_none=True)
  crop, resolution = _resize_options(name, crop, resolution)
  # Configs spell "not set" as "" (a ConfigDict field keeps its type).
  npz_path, data_dir = npz_path or None, data_dir or None
  if source == "auto":
    source = "npz" if npz_path else "tfds"
  if source == "npz" and not npz_path:
    raise ValueError("source='npz' needs npz_path (--config.data.npz_path=/path/file.npz)")
  return {"source": source, "npz_path": npz_path and os.fspath(npz_path), "data_dir": data_dir,
          "max_examples": max_examples, "crop": crop, "resolution": resolution}


def export_npz(name: str, path: str, *, splits: Sequence[str] = ("train", "test"),
               data_dir: Optional[str] = None, max_examples: Optional[int] = None,
               download: bool = True, crop: Optional[int] = None,
               resolution: Optional[int] = None) -> str:
  """Writes TFDS splits, prepared as :func:`load_arrays` gives them, to an npz.

  The file holds ``x_<split>`` (and ``y_<split>`` for labelled sets) and loads
  back with ``load_arrays(name, npz_path=path, split=...)`` to the same arrays:
  images already at the target resolution are not cropped or resized again.

  Args:
    name: a base set (see :func:`load_arrays`).
    path: output file.
    splits: TFDS split names to export (e.g. ``('train', 'validation')`` for
      LSUN, which has no test split).
    data_dir, max_examples, download, crop, resolution: as for
      :func:`load_arrays`.

  Returns:
    ``path``.
  """
  arrays = {}
  for split in splits:
    if not isinstance(split, str) or not split.isidentifier():
      raise ValueError(f"splits must be plain split names such as 'train' (they become npz "
                       f"keys); got {split!r}")
    x, y = load_arrays(name, split=split, source="tfds", data_dir=data_dir,
                       max_examples=max_examples, download=download, crop=crop,
                       resolution=resolution)
    arrays[f"x_{split}"] = x
    if y is not None:
      arrays[f"y_{split}"] = y
  with open(path, "wb") as f:
    np.savez(f, **arrays)
  return path


# --------------------------------------------------------------------------
# Multi-host sharding.
# --------------------------------------------------------------------------

def host_shard(arrays: Any, *, process_index: Optional[int] = None,
               process_count: Optional[int] = None, drop_remainder: bool = False) -> Any:
  """This host's contiguous part of a data set split over hosts.

  Host ``i`` of ``P`` gets examples ``[i N // P, (i + 1) N // P)``: the parts
  are disjoint, cover all ``N`` examples and differ in size by at most one.
  With ``drop_remainder`` every host gets ``N // P`` examples
  (``[i (N // P), (i + 1) (N // P))``), the last ``N mod P`` are unused: hosts
  that run one compiled program need equal shapes.

  Args:
    arrays: a pytree of arrays sharing their leading dimension ``N`` (None
      leaves are kept).
    process_index: this host's index (default ``jax.process_index()``).
    process_count: number of hosts (default ``jax.process_count()``).
    drop_remainder: give every host the same number of examples.

  Returns:
    The pytree of this host's slices.
  """
  leaves = jax.tree.leaves(arrays)
  sizes = {int(np.shape(a)[0]) for a in leaves}
  if len(sizes) != 1:
    raise ValueError(f"host_shard needs arrays with one common leading dimension; got "
                     f"{sorted(sizes) or 'no arrays'}")
  n = sizes.pop()
  count = _positive_int("process_count",
                        jax.process_count() if process_count is None else process_count)
  index = jax.process_index() if process_index is None else process_index
  if not isinstance(index, (int, np.integer)) or not 0 <= index < count:
    raise ValueError(f"process_index must be an integer in [0, {count - 1}]; got {index!r}")
  if n < count:
    raise ValueError(f"cannot split {n} examples over {count} hosts: every host needs one")
  if drop_remainder:
    start, stop = index * (n // count), (index + 1) * (n // count)
  else:
    start, stop = index * n // count, (index + 1) * n // count
  return jax.tree.map(lambda a: a[start:stop], arrays)


# --------------------------------------------------------------------------
# 1000-mode sets.
# --------------------------------------------------------------------------

def digits_to_mode(digits: jax.Array) -> jax.Array:
  """Mode index ``100 d_0 + 10 d_1 + d_2`` of digit triples ``[..., 3]``."""
  d = jnp.asarray(digits).astype(jnp.int32)
  return 100 * d[..., 0] + 10 * d[..., 1] + d[..., 2]


def mode_to_digits(mode: jax.Array) -> jax.Array:
  """Digit triples ``[..., 3]`` of mode indices in ``[0, 1000)``."""
  m = jnp.asarray(mode).astype(jnp.int32)
  return jnp.stack([m // 100, m // 10 % 10, m % 10], axis=-1)


def _mode_weights(digit_probs: np.ndarray) -> np.ndarray:
  """Product distribution over the 1000 modes of independent positions."""
  w = np.einsum("i,j,k->ijk", *np.asarray(digit_probs, np.float64)).reshape(1000)
  return w / w.sum()


def compositional_digit_probs(digit_set: int) -> np.ndarray:
  """Digit probabilities of Compositional MNIST set ``digit_set``.

  Che et al. (2017) train on four sets with unequal digit frequencies but do
  not give them; these are fixed here. Set ``k`` in 1..4 draws the digit of
  position ``j`` in 0..2 (left to right) with
  ``p_kj(d) ∝ r_k ** ((d + s_kj) mod 10)``, ``r_k = 1 - 0.05 k`` and shift
  ``s_kj = (3 j + k) mod 10``: a geometric profile, flatter for set 1
  (largest / smallest digit probability ``0.95**-9 = 1.6``) and steeper for set
  4 (``0.8**-9 = 7.5``), whose most frequent digit differs between positions
  (set 1: 9, 6, 3). Set 0 is uniform. Positions are independent, so a number's
  probability is the product of its three digits' probabilities.

  Args:
    digit_set: 0 (uniform) to 4.

  Returns:
    ``float64 [3, 10]``, rows summing to 1.

  References:
    Che, Li, Jacob, Bengio, Li. Mode Regularized Generative Adversarial
    Networks. ICLR 2017, Sec. 4.1.2.
  """
  if (not isinstance(digit_set, (int, np.integer)) or
      not 0 <= digit_set <= _NUM_DIGIT_SETS):
    raise ValueError(f"digit_set must be an integer in [0, {_NUM_DIGIT_SETS}] "
                     f"(0 = uniform); got {digit_set!r}")
  k = int(digit_set)
  if k == 0:
    return np.full((3, 10), 0.1)
  r = 1.0 - 0.05 * k
  d = np.arange(10)
  p = np.stack([r ** ((d + (3 * j + k) % 10) % 10) for j in range(3)])
  return p / p.sum(axis=1, keepdims=True)


def _digit_probs(digit_set: Optional[int], digit_probs: Any) -> np.ndarray:
  if digit_probs is None:
    return compositional_digit_probs(1 if digit_set is None else digit_set)
  if digit_set is not None:
    raise ValueError("give digit_set or digit_probs, not both")
  p = np.asarray(digit_probs, np.float64)
  if p.shape == (10,):
    p = np.tile(p, (3, 1))
  if p.shape != (3, 10):
    raise ValueError(f"digit_probs must have shape (10,) (all positions) or (3, 10) "
                     f"(per position); got {p.shape}")
  if not np.all(np.isfinite(p)) or np.any(p < 0) or np.any(p.sum(axis=1) <= 0):
    raise ValueError("digit_probs must be finite, >= 0 and not all 0 in any position; got "
                     f"{p.tolist()}")
  return p / p.sum(axis=1, keepdims=True)


def _mnist_base(images: Any, labels: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
  x = _as_uint8_images(images, f"{what} images")
  if x.shape[1:] != (28, 28, 1):
    raise ValueError(f"{what} needs MNIST digits of shape [N, 28, 28] or [N, 28, 28, 1]; got "
                     f"{x.shape}")
  return x[..., 0], _as_labels(labels, len(x), 10, f"{what} labels")


def stacked_mnist_source(images: Any, labels: Any, *, image_size: int = 28,
                         num_examples: Optional[int] = None, mode_weights: Any = None,
                         split: Optional[str] = None,
                         origin: str = "arrays") -> source_lib.DataSource:
  """Stacked MNIST: three random digits in the three colour channels.

  Each example draws three MNIST images independently and uniformly from
  ``images`` (inside the compiled step) and stacks them as R, G, B; its label is
  the mode ``100 d_R + 10 d_G + d_B`` in ``[0, 1000)``.

  Args:
    images: ``uint8`` MNIST digits ``[N, 28, 28]`` or ``[N, 28, 28, 1]``.
    labels: their digits ``[N]``.
    image_size: 28, or 32 to zero-pad 2 pixels on each side (as DCGAN-style
      networks with four stride-2 layers need).
    num_examples: the ``size`` to report (default ``N``; the global count when
      ``images`` is one host's part).
    mode_weights: the true mode distribution to report (default: the product
      of the digit frequencies of ``labels``).
    split, origin: recorded in ``info``.

  Returns:
    A ``DataSource`` drawing ``(float32 [n, S, S, 3] in [-1, 1], int32 [n])``.

  References:
    Metz, Poole, Pfau, Sohl-Dickstein. Unrolled Generative Adversarial
    Networks. ICLR 2017. Srivastava, Valkov, Russell, Gutmann, Sutton. VEEGAN.
    NeurIPS 2017. Lin, Khetan, Fanti, Oh. PacGAN. NeurIPS 2018.
  """
  if image_size not in (28, 32):
    raise ValueError(f"image_size must be 28 or 32 (zero-padded); got {image_size!r}")
  x, y = _mnist_base(images, labels, "stacked_mnist")
  freq = np.bincount(y, minlength=10) / len(y)
  weights = _mode_weights(np.tile(freq, (3, 1))) if mode_weights is None else (
      np.asarray(mode_weights, np.float64))
  pad = (image_size - 28) // 2

  def draw(key, arrays, n):
    idx = jax.random.randint(key, (n, 3), 0, arrays["x"].shape[0])
    stacked = jnp.moveaxis(jnp.take(arrays["x"], idx, axis=0), 1, -1)  # [n, 28, 28, 3]
    if pad:
      stacked = jnp.pad(stacked, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    return scale_to_unit_range(stacked), digits_to_mode(jnp.take(arrays["y"], idx, axis=0))

  shape = (image_size, image_size, 3)
  info = ImageDataInfo(
      name="stacked_mnist", shape=shape, num_classes=1000,
      num_examples=int(num_examples or len(x)), split=split, origin=origin, num_modes=1000,
      mode_weights=weights, digit_probs=np.tile(freq, (3, 1)),
      layout=("three independent uniformly drawn MNIST digits in the R, G, B channels"
              + (f", zero-padded to {image_size}x{image_size}" if pad else "")))
  return source_lib.DataSource(
      name="stacked_mnist", shape=shape, draw=draw, arrays={"x": x, "y": y}, has_labels=True,
      num_classes=1000, size=info.num_examples, info=info)


def compositional_mnist_source(images: Any, labels: Any, *,
                               digit_set: Optional[int] = None, digit_probs: Any = None,
                               num_examples: Optional[int] = None, split: Optional[str] = None,
                               origin: str = "arrays") -> source_lib.DataSource:
  """Compositional MNIST: a three-digit number in one 64 x 64 image.

  Inside the compiled step, the digit of each position is drawn from that
  position's probabilities, then an image of that digit uniformly from
  ``images``. The digits, resized once to 20 x 20, sit side by side at
  columns 2, 22, 42 and rows 22-41 of a black canvas. The label is the number
  ``100 d_0 + 10 d_1 + d_2`` (left to right).

  Args:
    images: ``uint8`` MNIST digits ``[N, 28, 28]`` or ``[N, 28, 28, 1]``.
    labels: their digits ``[N]``.
    digit_set: 0 (uniform) to 4, see :func:`compositional_digit_probs`
      (default 1 unless ``digit_probs`` is given).
    digit_probs: custom probabilities instead, ``[10]`` (every position) or
      ``[3, 10]``, normalised per position.
    num_examples: the ``size`` to report (default ``N``).
    split, origin: recorded in ``info``.

  Returns:
    A ``DataSource`` drawing ``(float32 [n, 64, 64, 1] in [-1, 1], int32 [n])``.

  References:
    Che, Li, Jacob, Bengio, Li. Mode Regularized Generative Adversarial
    Networks. ICLR 2017, Sec. 4.1.2.
  """
  probs = _digit_probs(digit_set, digit_probs)
  x, y = _mnist_base(images, labels, "compositional_mnist")
  counts = np.bincount(y, minlength=10)
  absent = [d for d in range(10) if counts[d] == 0 and probs[:, d].max() > 0]
  if absent:
    raise ValueError(f"compositional_mnist: no image of digit(s) {absent}, which have "
                     "positive probability; give more examples or set their probability to 0")
  order = np.argsort(y, kind="stable")
  # Sorted by digit, the images of digit d are rows starts[d] .. starts[d] + counts[d] - 1.
  tiles = resize_images(x[order][..., None], _TILE, _TILE)[..., 0]
  starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
  # Inverse-CDF sampling: position j shows digit d when cdf[j, d - 1] <= u <
  # cdf[j, d]. Where no probability is left the CDF is set to exactly 1, so a
  # uniform u < 1 can never select a digit of probability 0 through rounding.
  cdf = np.cumsum(probs, axis=1)
  mass_after = np.zeros_like(probs)
  mass_after[:, :-1] = probs[:, ::-1].cumsum(axis=1)[:, ::-1][:, 1:]
  cdf = np.where(mass_after > 0, cdf / cdf[:, -1:], 1.0)

  def draw(key, arrays, n):
    # One uniform draw for digits and instances: far cheaper to compile on CPU
    # than jax.random.categorical plus randint.
    u = jax.random.uniform(key, (n, 3, 2))
    digits = jnp.sum(u[..., :1] >= arrays["cdf"][None, :, :-1], axis=-1)  # [n, 3]
    count = arrays["counts"][digits]
    offset = jnp.minimum(jnp.floor(u[..., 1] * count).astype(jnp.int32), count - 1)
    tiles = jnp.take(arrays["x"], arrays["starts"][digits] + offset, axis=0)  # [n, 3, T, T]
    row = jnp.swapaxes(tiles, 1, 2).reshape(n, _TILE, 3 * _TILE)
    canvas = jnp.pad(row, ((0, 0), (_TOP, _CANVAS - _TOP - _TILE),
                           (_LEFT, _CANVAS - _LEFT - 3 * _TILE)))
    return scale_to_unit_range(canvas[..., None]), digits_to_mode(digits)

  shape = (_CANVAS, _CANVAS, 1)
  info = ImageDataInfo(
      name="compositional_mnist", shape=shape, num_classes=1000,
      num_examples=int(num_examples or len(x)), split=split, origin=origin, num_modes=1000,
      mode_weights=_mode_weights(probs), digit_probs=probs,
      layout=(f"three MNIST digits resized to {_TILE}x{_TILE} at columns "
              f"{_LEFT}, {_LEFT + _TILE}, {_LEFT + 2 * _TILE} and rows {_TOP}-{_TOP + _TILE - 1} "
              f"of a {_CANVAS}x{_CANVAS} canvas"))
  arrays = {"x": tiles, "starts": starts.astype(np.int32), "counts": counts.astype(np.int32),
            "cdf": cdf.astype(np.float32)}
  return source_lib.DataSource(
      name="compositional_mnist", shape=shape, draw=draw, arrays=arrays, has_labels=True,
      num_classes=1000, size=info.num_examples, info=info)


def digit_crops(name: str, images: Any) -> np.ndarray:
  """The three digits of stacked / compositional MNIST images, as MNIST-sized images.

  Stacked MNIST: the R, G, B channels (the central 28 x 28 of 32 x 32 images).
  Compositional MNIST: the three 20 x 20 tiles, each padded by 4 pixels to
  28 x 28 (an MNIST digit fills the central 20 x 20 of its image), padding at
  the image's background value -1.

  Args:
    name: ``'stacked_mnist'`` or ``'compositional_mnist'``.
    images: ``[n, H, W, C]`` samples of that set, in ``[-1, 1]``.

  Returns:
    float32 ``[n, 3, 28, 28, 1]``, digit ``i`` of each sample in position
    ``i`` (the order of the mode index ``100 d_0 + 10 d_1 + d_2``).
  """
  _check_name(name, _MODE_SETS, "1000-mode data set")
  x = np.asarray(images, np.float32)
  if name == "stacked_mnist":
    if x.ndim != 4 or x.shape[1:] not in ((28, 28, 3), (32, 32, 3)):
      raise ValueError(f"stacked_mnist images must be [n, 28 or 32, 28 or 32, 3]; got {x.shape}")
    pad = (x.shape[1] - 28) // 2
    x = x[:, pad:pad + 28, pad:pad + 28, :]
    return np.transpose(x, (0, 3, 1, 2))[..., None]
  if x.ndim != 4 or x.shape[1:] != (_CANVAS, _CANVAS, 1):
    raise ValueError(f"compositional_mnist images must be [n, {_CANVAS}, {_CANVAS}, 1]; got "
                     f"{x.shape}")
  row = x[:, _TOP:_TOP + _TILE, _LEFT:_LEFT + 3 * _TILE, 0]
  tiles = np.stack([row[:, :, i * _TILE:(i + 1) * _TILE] for i in range(3)], axis=1)
  margin = (28 - _TILE) // 2
  tiles = np.pad(tiles, ((0, 0), (0, 0), (margin, margin), (margin, margin)),
                 constant_values=-1.0)
  return tiles[..., None]


# --------------------------------------------------------------------------
# The factory.
# --------------------------------------------------------------------------

_LOAD_OPTIONS = ("split", "source", "npz_path", "data_dir", "max_examples", "download",
                 "process_index", "process_count", "stream_buffer", "stream_seed")
_SET_OPTIONS = {
    "celeb_a": ("crop", "resolution"),
    "lsun_bedroom": ("resolution",),
    "stacked_mnist": ("image_size",),
    "compositional_mnist": ("digit_set", "digit_probs"),
}


def make_image_source(name: str, **options: Any) -> source_lib.DataSource:
  """The ``DataSource`` of an image set, this host's part, ready for the step.

  Images stay ``uint8`` in ``source.arrays`` and each batch is drawn and scaled
  to ``[-1, 1]`` inside the compiled step. With several hosts each holds
  ``N // P`` contiguous examples (:func:`host_shard` with ``drop_remainder``,
  so every host compiles the same shapes) and draws its part of the batch from
  them; ``size`` is the global ``N``. Without those options (the trainer's
  default) every process holds the whole split: the compiled step then draws
  the global batch as one process would.

  Args:
    name: one of :data:`IMAGE_DATASETS`.
    **options: ``split``, ``source``, ``npz_path``, ``data_dir``,
      ``max_examples``, ``download`` (see :func:`load_arrays`; the 1000-mode
      sets read MNIST with them), ``process_index``, ``process_count`` (see
      :func:`host_shard`; for a stream, the part of every buffer this process
      reads, by default jax's process index and count), ``stream_buffer`` (examples per streamed buffer;
      0 or None keeps the split in memory, see :mod:`gan_jax.data.stream`),
      ``stream_seed`` (seed of the streaming order), and per set: celeb_a
      ``crop``, ``resolution``;
      lsun_bedroom ``resolution``; stacked_mnist ``image_size``;
      compositional_mnist ``digit_set``, ``digit_probs``. An option of
      another set is accepted only as None (a config may list them all).

  Returns:
    The ``DataSource``; ``info`` is an :class:`ImageDataInfo`.
  """
  _check_name(name, IMAGE_DATASETS)
  own = set(_LOAD_OPTIONS) | set(_SET_OPTIONS.get(name, ()))
  known = set(_LOAD_OPTIONS).union(*_SET_OPTIONS.values())
  unknown = sorted(k for k, v in options.items()
                   if k not in own and not (k in known and v is None))
  if unknown:
    raise ValueError(f"unknown option(s) {', '.join(unknown)} for image data set {name!r}; "
                     f"valid: {', '.join(sorted(own))}")
  options = {k: v for k, v in options.items() if k in own}
  process_index = options.pop("process_index", None)
  process_count = options.pop("process_count", None)
  # A stream is read in parts, one per process (gan_jax.data.stream), by default
  # jax's processes.
  part = ((jax.process_index(), jax.process_count())
          if process_count is None and process_index is None
          else (jax.process_index() if process_index is None else process_index,
                jax.process_count() if process_count is None else process_count))
  if process_count is None and process_index is None:
    # The trainer's default: every process holds the whole split and the
    # compiled step draws the global batch from it, each device computing its
    # own part (gan_jax.train.distributed), so several processes train exactly
    # as one. Explicit options give one host's part instead.
    process_index, process_count = 0, 1
  set_options = {k: options.pop(k) for k in _SET_OPTIONS.get(name, ()) if k in options}
  stream_buffer = options.pop("stream_buffer", None) or 0
  stream_seed = options.pop("stream_seed", None) or 0
  if stream_buffer:
    if name in _MODE_SETS:
      raise ValueError(f"stream_buffer: {name} is composed from MNIST, which is kept in "
                       "memory; set stream_buffer to 0")
    return _streaming_source(name, stream_buffer, stream_seed, options, set_options, part=part)
  if name in _MODE_SETS:
    base = "mnist"
    images, labels = load_arrays(base, **options)
  else:
    base = name
    images, labels = load_arrays(base, **options, **set_options)
  split = options.get("split", "train")
  source = options.get("source", "auto")
  use_npz = source == "npz" or (source == "auto" and options.get("npz_path"))
  origin = f"npz:{options.get('npz_path')}" if use_npz else f"tfds:{_BASE_SETS[base].tfds_name}"
  total = len(images)
  count = jax.process_count() if process_count is None else process_count
  shard = functools.partial(host_shard, process_index=process_index,
                            process_count=process_count, drop_remainder=True)
  local_images, local_labels = shard((images, labels))

  if name == "stacked_mnist":
    # The global batch mixes the hosts' draws equally, so the true mode
    # distribution is the mean of the hosts' product distributions.
    parts = [host_shard(labels, process_index=i, process_count=count, drop_remainder=True)
             for i in range(count)]
    weights = np.mean([_mode_weights(np.tile(np.bincount(p, minlength=10) / len(p), (3, 1)))
                       for p in parts], axis=0)
    return stacked_mnist_source(local_images, local_labels, num_examples=total,
                                mode_weights=weights, split=split, origin=origin,
                                **set_options)
  if name == "compositional_mnist":
    return compositional_mnist_source(local_images, local_labels, num_examples=total,
                                      split=split, origin=origin, **set_options)
  spec = _BASE_SETS[name]
  info = ImageDataInfo(name=name, shape=tuple(images.shape[1:]), num_classes=spec.num_classes,
                       num_examples=total, split=split, origin=origin)
  src = source_lib.from_arrays(name, local_images, local_labels, num_classes=spec.num_classes,
                               scale=scale_to_unit_range, info=info)
  return dataclasses.replace(src, size=total)


def _streaming_source(name: str, buffer_size: int, seed: int, options: dict,
                      set_options: dict, *, part: tuple[int, int]):
  """``name`` streamed in buffers of ``buffer_size`` examples, this process
  reading part ``part = (p, P)`` of each (:class:`stream.StreamBuffer`)."""
  spec = _BASE_SETS[name]
  split = options.get("split", "train")
  o = _load_options(name, split=split, source=options.get("source", "auto"),
                    npz_path=options.get("npz_path"), data_dir=options.get("data_dir"),
                    max_examples=options.get("max_examples"), crop=set_options.get("crop"),
                    resolution=set_options.get("resolution"))
  if o["source"] == "npz":
    # The npz is read whole into host memory; streaming spares the device's.
    images, labels = load_arrays(name, **options, **set_options)
    total = len(images)

    def read(idx):
      return images[idx], None if labels is None else labels[idx]
    origin = f"npz:{o['npz_path']}"
  else:
    # Random access to every record: each process reads its rows of every
    # buffer wherever they are in the split.
    ds = _open_tfds(name, split=split, data_dir=o["data_dir"],
                    download=options.get("download", True))
    total = len(ds) if o["max_examples"] is None else min(len(ds), o["max_examples"])

    def read(idx):
      return _decode_records(ds, idx, name, crop=o["crop"], resolution=o["resolution"])
    origin = f"tfds:{spec.tfds_name}"
  buffer = stream_lib.StreamBuffer(read, total, buffer_size, seed=seed, part=part)
  src = stream_lib.stream_source(name, buffer, num_classes=spec.num_classes,
                                 scale=scale_to_unit_range, size=total)
  parts = f", {part[1]} parts" if part[1] > 1 else ""
  info = ImageDataInfo(name=name, shape=src.shape, num_classes=spec.num_classes,
                       num_examples=total, split=split,
                       origin=f"{origin} (streamed, {buffer_size} per buffer{parts})")
  return dataclasses.replace(src, info=info)
