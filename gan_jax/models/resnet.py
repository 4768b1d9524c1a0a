"""ResNet generator, discriminator and encoder for 32 and 64 pixel images.

The residual GAN of Gulrajani et al. (2017), with ``b = base_features``
(default 128 at 32 px, as on CIFAR-10, and 64 at 64 px):

=====  ===============================  =====================================
size   generator maps (start, blocks)   discriminator / encoder blocks
=====  ===============================  =====================================
32     4 x 4 x b; 8, 16, 32 px x b      16 x 16 x b (optimized), 8 x 8 x b,
                                        8 x 8 x b, 8 x 8 x b
64     4 x 4 x 8b; 8 px x 8b, 16 x 4b,  32 x 32 x b (optimized), 16 x 16 x 2b,
       32 x 2b, 64 x b                  8 x 8 x 4b, 4 x 4 x 8b
=====  ===============================  =====================================

Generator: dense ``z -> 4 x 4 x C``; up-sampling residual blocks
``BN-ReLU-Up-Conv3x3-BN-ReLU-Conv3x3`` with shortcut ``Up-Conv1x1``
(``Up`` = nearest-neighbour 2x); then ``BN-ReLU-Conv3x3`` to the image
channels and ``tanh``. Discriminator: an optimized first block
``Conv3x3-ReLU-Conv3x3-MeanPool`` with shortcut ``MeanPool-Conv1x1``, then
residual blocks ``[N]-ReLU-Conv3x3-[N]-ReLU-Conv3x3[-MeanPool]`` whose
shortcut is the identity when shape-preserving and ``Conv1x1[-MeanPool]``
otherwise; ReLU, global sum pooling and a dense layer to the logit.

A 1x1 convolution commutes with nearest-neighbour up-sampling and with mean
pooling (both are linear and act per channel), so shortcuts convolve at the
lower resolution: the same function, four times fewer products.

Gulrajani et al.'s CIFAR critic averages over space before its dense layer;
the sum used here (as in Miyato et al.'s spectrally normalised ResNets) only
rescales that layer's weights by ``h * w``. Their 64 px critic starts with a
plain convolution; here the optimized block takes its place, so both sizes
share one design that mirrors the generator.

Each module's ``dtype`` field picks the computation dtype (float32, or
bfloat16 on float32 parameters: ``gan_jax.models.precision``).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

from gan_jax.models import mlp
from gan_jax.models import dropout
from gan_jax.models import precision
from gan_jax.models.upsample import depth_to_space2

IMAGE_SIZES = (32, 64)
UPSAMPLERS = ("nearest", "subpixel")
DEFAULT_BASE_FEATURES = {32: 128, 64: 64}
_GENERATOR_OUTPUTS = ("tanh", "linear")
# Channels (as multiples of base_features) of the generator's 4 x 4 start map
# followed by each up-sampling block's output.
_GENERATOR_WIDTHS = {32: (1, 1, 1, 1), 64: (8, 8, 4, 2, 1)}
# (channel multiple, down-samples) of each discriminator block; the first is
# the optimized block.
_DISCRIMINATOR_BLOCKS = {
    32: ((1, True), (1, True), (1, False), (1, False)),
    64: ((1, True), (2, True), (4, True), (8, True)),
}
_START = 4


def _check_size(height: int, width: int) -> None:
  if height != width:
    raise ValueError(
        f"ResNet images must be square; got {height} x {width} "
        f"(valid sizes: {', '.join(map(str, IMAGE_SIZES))})")
  if height not in IMAGE_SIZES:
    raise ValueError(
        f"unsupported ResNet image size {height}; valid: "
        f"{', '.join(map(str, IMAGE_SIZES))}")


def _check_base(base_features: int | None) -> None:
  if base_features is not None and (
      isinstance(base_features, bool) or int(base_features) != base_features
      or base_features < 1):
    raise ValueError(
        "base_features must be a positive int, or None for the paper's width "
        f"at the image size ({DEFAULT_BASE_FEATURES}); got {base_features!r}")


def _base(base_features: int | None, size: int) -> int:
  if base_features is None:
    return DEFAULT_BASE_FEATURES[size]
  return int(base_features)


def upsample_nearest(x: jax.Array) -> jax.Array:
  """``[B, H, W, C]`` to ``[B, 2H, 2W, C]``, each pixel repeated 2 x 2."""
  b, h, w, c = x.shape
  x = jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, 2, w, 2, c))
  return x.reshape(b, 2 * h, 2 * w, c)


def mean_pool(x: jax.Array) -> jax.Array:
  """Mean over non-overlapping 2 x 2 windows of ``[B, H, W, C]`` (H, W even)."""
  b, h, w, c = x.shape
  return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _phase_matrix(k: int) -> tuple[np.ndarray, tuple[int, int]]:
  """Per axis: which low-resolution tap each kernel index lands on.

  With ``u[i] = x[i // 2]`` and ``'SAME'`` zero padding ``r = k // 2``, output
  ``y[2q + p] = sum_j u[2q + p + j - r] w[j] = sum_j x[q + d(p, j)] w[j]`` with
  ``d(p, j) = floor((p + j - r) / 2)``: for each phase ``p`` a stride-1
  correlation of ``x`` with taps summed from ``w``.

  Returns:
    ``(m, padding)``: ``m[p, t, j] = 1`` iff ``d(p, j) = t + d_lo``, and the
    ``(low, high)`` padding of the low-resolution correlation.
  """
  r = k // 2
  d = np.array([[(p + j - r) // 2 for j in range(k)] for p in (0, 1)])
  d_lo, d_hi = int(d.min()), int(d.max())
  m = np.zeros((2, d_hi - d_lo + 1, k), np.float32)
  for p in (0, 1):
    for j in range(k):
      m[p, d[p, j] - d_lo, j] = 1.0
  return m, (-d_lo, d_hi)


class UpsampleConv(nn.Module):
  """Nearest-neighbour 2x up-sampling followed by a stride-1 'SAME' convolution.

  Parameters are those of ``nn.Conv(features, (k, k))`` (``'kernel'``
  ``[k, k, in, features]`` and ``'bias'``). With ``subpixel=True`` the same
  function is computed without forming the up-sampled input: each of the four
  output phases is a convolution of the low-resolution input with taps summed
  from the kernel, done as one convolution to ``4 * features`` channels and a
  depth-to-space.

  Attributes:
    features: output channels.
    kernel_size: odd square kernel size.
    use_bias: whether to add a bias.
    subpixel: compute in the sub-pixel form.
    kernel_init: kernel initializer.
    bias_init: bias initializer.
    dtype: computation dtype (None: inferred from the input and parameters).
    param_dtype: parameter dtype.

  References:
    Odena et al., Deconvolution and Checkerboard Artifacts, 2016.
    Gulrajani et al., Improved Training of Wasserstein GANs, 2017.
  """

  features: int
  kernel_size: int = 3
  use_bias: bool = True
  subpixel: bool = False
  kernel_init: Callable = nn.initializers.lecun_normal()
  bias_init: Callable = nn.initializers.zeros_init()
  dtype: Any = None
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps ``[B, H, W, C]`` to ``[B, 2H, 2W, features]``."""
    k = self.kernel_size
    if k < 1 or k % 2 != 1:
      raise ValueError(f"kernel_size must be a positive odd int; got {k}")
    kernel = self.param("kernel", self.kernel_init,
                        (k, k, x.shape[-1], self.features), self.param_dtype)
    bias = (self.param("bias", self.bias_init, (self.features,),
                       self.param_dtype) if self.use_bias else None)
    if self.dtype is not None:
      x = x.astype(self.dtype)
    dn = ("NHWC", "HWIO", "NHWC")
    if self.subpixel:
      m, pad = _phase_matrix(k)
      # [ph, th, jh] x [pw, tw, jw] x [jh, jw, i, o] -> [th, tw, i, (ph, pw, o)]
      sub = jnp.einsum("atj,bsl,jlio->tsiabo", m, m, kernel)
      sub = sub.reshape(m.shape[1], m.shape[1], x.shape[-1], 4 * self.features)
      y = lax.conv_general_dilated(x, sub.astype(x.dtype), (1, 1), (pad, pad),
                                   dimension_numbers=dn)
      y = depth_to_space2(y)
    else:
      r = k // 2
      y = lax.conv_general_dilated(upsample_nearest(x), kernel.astype(x.dtype),
                                   (1, 1), ((r, r), (r, r)),
                                   dimension_numbers=dn)
    if bias is not None:
      y = y + bias.astype(y.dtype)
    return y


def _norm(kind: str | None, train: bool, name: str, dtype: str = "float32"):
  if kind == "batch":
    return mlp.batch_norm_layer(train, name, precision.layer_dtype(dtype))
  if kind == "layer":
    # Each example normalised over (H, W, C), as WGAN-GP's critic does.
    return nn.LayerNorm(reduction_axes=(-3, -2, -1), feature_axes=-1,
                        name=name, **precision.layer_kwargs(dtype))
  return lambda h: h


def _norm_kind(batch_norm: bool, layer_norm: bool) -> str | None:
  if batch_norm:
    return "batch"
  return "layer" if layer_norm else None


class _UpBlock(nn.Module):
  """``BN-ReLU-Up-Conv3x3-BN-ReLU-Conv3x3`` plus ``Conv1x1-Up`` shortcut."""

  features: int
  batch_norm: bool
  subpixel: bool
  kernel_init: Callable
  dtype: str = "float32"

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    kind = _norm_kind(self.batch_norm, False)
    kw = precision.layer_kwargs(self.dtype)
    shortcut = nn.Conv(self.features, (1, 1), kernel_init=self.kernel_init,
                       name="shortcut", **kw)(x)
    shortcut = upsample_nearest(shortcut)
    h = nn.relu(_norm(kind, train, "norm_0", self.dtype)(x))
    # A bias right before batch norm is cancelled by its centring.
    h = UpsampleConv(self.features, 3, use_bias=not self.batch_norm,
                     subpixel=self.subpixel, kernel_init=self.kernel_init,
                     name="conv_0", **kw)(h)
    h = nn.relu(_norm(kind, train, "norm_1", self.dtype)(h))
    h = nn.Conv(self.features, (3, 3), padding="SAME",
                kernel_init=self.kernel_init, name="conv_1", **kw)(h)
    return shortcut + h


class _DownBlock(nn.Module):
  """A discriminator residual block, optionally the optimized first one."""

  features: int
  downsample: bool
  optimized: bool
  norm: str | None
  spectral_norm: bool
  kernel_init: Callable
  dtype: str = "float32"

  def _conv(self, h, features, size, use_bias, name, train):
    conv = nn.Conv(features, (size, size), padding="SAME", use_bias=use_bias,
                   kernel_init=self.kernel_init, name=name,
                   **precision.layer_kwargs(self.dtype))
    if self.spectral_norm:
      return nn.SpectralNorm(conv, name=f"sn_{name}")(h, update_stats=train)
    return conv(h)

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    in_features = x.shape[-1]
    if self.downsample or in_features != self.features:
      shortcut = mean_pool(x) if self.downsample else x
      shortcut = self._conv(shortcut, self.features, 1, True, "shortcut", train)
    else:
      shortcut = x
    if self.optimized:
      # The first block sees the raw image: no normalisation or ReLU before
      # its first convolution.
      h = self._conv(x, self.features, 3, True, "conv_0", train)
      h = self._conv(nn.relu(h), self.features, 3, True, "conv_1", train)
    else:
      # Gulrajani et al. keep the input width through a down-sampling block's
      # first convolution and change it in the second.
      mid = in_features if self.downsample else self.features
      h = nn.relu(_norm(self.norm, train, "norm_0", self.dtype)(x))
      h = self._conv(h, mid, 3, self.norm is None, "conv_0", train)
      h = nn.relu(_norm(self.norm, train, "norm_1", self.dtype)(h))
      h = self._conv(h, self.features, 3, True, "conv_1", train)
    if self.downsample:
      h = mean_pool(h)
    return shortcut + h


class _ResNetTrunk(nn.Module):
  """Discriminator blocks, ReLU and global sum pooling: ``[B, F]`` features."""

  base_features: int | None
  batch_norm: bool
  layer_norm: bool
  spectral_norm: bool
  dropout_rate: float
  kernel_init: Callable
  dtype: str = "float32"

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    if x.ndim != 4:
      raise ValueError(f"images must be [B, H, W, C]; got shape {x.shape}")
    _check_size(x.shape[1], x.shape[2])
    base = _base(self.base_features, x.shape[1])
    norm = _norm_kind(self.batch_norm, self.layer_norm)
    h = x
    for i, (mult, down) in enumerate(_DISCRIMINATOR_BLOCKS[x.shape[1]]):
      h = _DownBlock(base * mult, down, i == 0, norm, self.spectral_norm,
                     self.kernel_init, self.dtype, name=f"block_{i}")(h, train=train)
      if self.dropout_rate > 0:
        h = dropout.Dropout(self.dropout_rate, deterministic=not train)(h)
    # Pooled in float32: the sum of h * w activations is what the head sees.
    return jnp.sum(precision.full_precision(nn.relu(h)), axis=(1, 2))


class ResNetGenerator(nn.Module):
  """Residual generator ``z -> image`` (Gulrajani et al.'s CIFAR-10 / 64 px).

  Attributes:
    image_shape: ``(H, W, C)`` with ``H == W`` in ``IMAGE_SIZES``.
    base_features: ``b`` in the module's table; None for the paper's 128
      (32 px) or 64 (64 px).
    batch_norm: batch normalisation before every ReLU (statistics in
      ``'batch_stats'``, momentum 0.9).
    output_activation: ``'tanh'`` (data in ``[-1, 1]``) or ``'linear'``.
    upsample: ``'subpixel'`` (``UpsampleConv``'s sub-pixel form) or
      ``'nearest'`` (up-sample, then convolve, as written in the paper): the
      same function on the same parameters; the sub-pixel form skips the
      up-sampled copy and its gradients are faster on CPU.
    kernel_init: weight initializer name (see ``mlp.KERNEL_INITS``); biases 0.
    init_std: scale of the normal initializers.
    num_classes: number of classes of a class-conditional generator (0:
      unconditional, and then no label parameters exist).
    label_features: width of the learned label embedding appended to the
      flattened latent; 0 appends the one-hot labels instead.
    dtype: computation dtype, one of ``precision.COMPUTE_DTYPES``
      (``'float32'`` or ``'bfloat16'``); parameters and batch statistics stay
      float32 and the output is returned in float32.

  References:
    He et al., Deep Residual Learning for Image Recognition, 2016.
    Gulrajani et al., Improved Training of Wasserstein GANs, 2017.
  """

  image_shape: Sequence[int]
  base_features: int | None = None
  batch_norm: bool = True
  output_activation: str = "tanh"
  upsample: str = "subpixel"
  kernel_init: str = "xavier_uniform"
  init_std: float = 0.02
  num_classes: int = 0
  label_features: int = 0
  dtype: str = "float32"

  def __post_init__(self):
    mlp.freeze_sequences(self, ("image_shape",))
    precision.normalize_dtype_field(self)
    shape = tuple(self.image_shape)
    if len(shape) != 3:
      raise ValueError(f"image_shape must be (H, W, C); got {self.image_shape}")
    _check_size(shape[0], shape[1])
    _check_base(self.base_features)
    if self.output_activation not in _GENERATOR_OUTPUTS:
      raise ValueError(
          f"unknown output_activation {self.output_activation!r}; valid: "
          f"{', '.join(_GENERATOR_OUTPUTS)}")
    if self.upsample not in UPSAMPLERS:
      raise ValueError(
          f"unknown upsample {self.upsample!r}; valid: {', '.join(UPSAMPLERS)}")
    mlp.kernel_initializer(self.kernel_init, init_std=self.init_std)
    mlp.check_conditional(self.num_classes, label_features=self.label_features)
    super().__post_init__()

  @nn.compact
  def __call__(self, z: jax.Array, labels: jax.Array | None = None, *,
               train: bool = True) -> jax.Array:
    """Maps latents ``[B, ...]`` (flattened beyond the batch) to images.

    Args:
      z: latent codes.
      labels: int class ids ``[B]``; required iff ``num_classes > 0``. Their
        code is appended to the flattened latent.
      train: batch statistics (and their update) when True.

    Returns:
      Images ``[B, H, W, C]``.
    """
    height, _, channels = (int(s) for s in self.image_shape)
    widths = [_base(self.base_features, height) * m
              for m in _GENERATOR_WIDTHS[height]]
    init = mlp.kernel_initializer(self.kernel_init, init_std=self.init_std)
    labels = mlp.check_labels(labels, self.num_classes, z.shape[0])
    h = mlp.with_label_code(z.reshape(z.shape[0], -1), labels,
                            num_classes=self.num_classes,
                            label_features=self.label_features)
    kw = precision.layer_kwargs(self.dtype)
    h = nn.Dense(_START * _START * widths[0], kernel_init=init,
                 name="project", **kw)(h)
    h = h.reshape(z.shape[0], _START, _START, widths[0])
    for i, features in enumerate(widths[1:]):
      h = _UpBlock(features, self.batch_norm, self.upsample == "subpixel",
                   init, self.dtype, name=f"block_{i}")(h, train=train)
    h = nn.relu(_norm(_norm_kind(self.batch_norm, False), train, "norm_out",
                      self.dtype)(h))
    h = nn.Conv(channels, (3, 3), padding="SAME", kernel_init=init,
                name="out", **kw)(h)
    h = mlp.OUTPUT_ACTIVATIONS[self.output_activation](h)
    return precision.full_precision(h)


class ResNetDiscriminator(nn.Module):
  """Residual discriminator (or critic) ``image -> logit``.

  Attributes:
    base_features: ``b`` in the module's table; None for the paper's 128
      (32 px) or 64 (64 px).
    batch_norm: batch normalisation inside the residual blocks (not the
      first); off by default, as in the paper's critic.
    layer_norm: layer normalisation (over H, W, C) there instead, for WGAN-GP
      critics, which must not use batch norm; at most one of the two.
    spectral_norm: spectral normalisation of every weight (``nn.SpectralNorm``;
      its power-iteration state lives in ``'batch_stats'`` and is updated when
      ``train=True``, so apply with ``mutable=['batch_stats']`` then).
    dropout_rate: dropout after every residual block (``'dropout'`` rng,
      ``train=True`` only), e.g. for CT-GAN's perturbed critic passes.
    kernel_init: weight initializer name (see ``mlp.KERNEL_INITS``); biases 0.
    init_std: scale of the normal initializers.
    num_classes: number of classes of a class-conditional discriminator (0:
      unconditional, and then no label parameters exist).
    conditioning: how labels enter (one of ``mlp.CONDITIONINGS``):
      ``'projection'`` adds ``<embed(y), h>`` to the logit, ``h`` the pooled
      features (parameter ``label_embed``, spectrally normalised with
      ``spectral_norm``); ``'concat'`` appends ``num_classes`` constant
      one-hot maps to the input image's channels.
    dtype: computation dtype, one of ``precision.COMPUTE_DTYPES``
      (``'float32'`` or ``'bfloat16'``); parameters and batch statistics stay
      float32; the pooled features and the logit head are float32.

  References:
    Gulrajani et al., Improved Training of Wasserstein GANs, 2017.
    Miyato et al., Spectral Normalization for Generative Adversarial
    Networks, 2018.
    Miyato & Koyama, cGANs with Projection Discriminator, 2018.
    Wei et al., Improving the Improved Training of Wasserstein GANs: A
    Consistency Term and Its Dual Effect, 2018.
  """

  base_features: int | None = None
  batch_norm: bool = False
  layer_norm: bool = False
  spectral_norm: bool = False
  dropout_rate: float = 0.0
  kernel_init: str = "xavier_uniform"
  init_std: float = 0.02
  num_classes: int = 0
  conditioning: str = "projection"
  dtype: str = "float32"

  def __post_init__(self):
    precision.normalize_dtype_field(self)
    _check_base(self.base_features)
    mlp.check_norms(self.batch_norm, self.layer_norm)
    mlp.check_dropout(self.dropout_rate)
    mlp.kernel_initializer(self.kernel_init, init_std=self.init_std)
    mlp.check_conditional(self.num_classes, conditioning=self.conditioning)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, labels: jax.Array | None = None, *,
               train: bool = True, return_features: bool = False):
    """Scores a batch of images.

    Args:
      x: images ``[B, H, W, C]`` with ``H == W`` in ``IMAGE_SIZES``.
      labels: int class ids ``[B]``; required iff ``num_classes > 0``.
      train: batch statistics, spectral-norm updates and dropout when True.
      return_features: also return the pooled features.

    Returns:
      Logits ``[B]``, or ``(logits, features)`` with features ``[B, F]``, the
      sum-pooled last map (what the last layer sees).
    """
    if x.ndim != 4:
      raise ValueError(f"images must be [B, H, W, C]; got shape {x.shape}")
    init = mlp.kernel_initializer(self.kernel_init, init_std=self.init_std)
    labels = mlp.check_labels(labels, self.num_classes, x.shape[0])
    if self.conditioning == "concat":
      x = mlp.with_label_maps(x, labels, num_classes=self.num_classes)
    h = _ResNetTrunk(self.base_features, self.batch_norm, self.layer_norm,
                     self.spectral_norm, self.dropout_rate, init, self.dtype,
                     name="trunk")(x, train=train)
    logits = mlp.logit_head(h, labels, num_classes=self.num_classes,
                            conditioning=self.conditioning, kernel_init=init,
                            spectral_norm=self.spectral_norm, train=train)
    if return_features:
      return logits, h
    return logits


class ResNetEncoder(nn.Module):
  """Residual encoder ``image -> z``: the discriminator's trunk, then a dense.

  Attributes:
    latent_shape: shape of one latent code.
    base_features: ``b``; None for the paper's width at the image size.
    batch_norm: batch normalisation inside the residual blocks (off by
      default, like the discriminator it mirrors).
    layer_norm: layer normalisation there instead; at most one of the two.
    output_activation: ``'linear'``, ``'tanh'`` or ``'sigmoid'``.
    kernel_init: weight initializer name; biases 0.
    init_std: scale of the normal initializers.
    dtype: computation dtype, one of ``precision.COMPUTE_DTYPES``
      (``'float32'`` or ``'bfloat16'``); parameters and batch statistics stay
      float32 and the output is returned in float32.

  References:
    Gulrajani et al., Improved Training of Wasserstein GANs, 2017.
    Che et al., Mode Regularized Generative Adversarial Networks, 2017.
  """

  latent_shape: Sequence[int]
  base_features: int | None = None
  batch_norm: bool = False
  layer_norm: bool = False
  output_activation: str = "linear"
  kernel_init: str = "xavier_uniform"
  init_std: float = 0.02
  dtype: str = "float32"

  def __post_init__(self):
    mlp.freeze_sequences(self, ("latent_shape",))
    precision.normalize_dtype_field(self)
    _check_base(self.base_features)
    mlp.check_norms(self.batch_norm, self.layer_norm)
    mlp.output_activation_fn(self.output_activation)
    mlp.kernel_initializer(self.kernel_init, init_std=self.init_std)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = True) -> jax.Array:
    """Encodes images ``[B, H, W, C]`` to ``[B, *latent_shape]``.

    Args:
      x: images with ``H == W`` in ``IMAGE_SIZES``.
      train: batch statistics when True.

    Returns:
      Latent codes ``[B, *latent_shape]``.
    """
    latent_shape = mlp.as_shape(self.latent_shape)
    init = mlp.kernel_initializer(self.kernel_init, init_std=self.init_std)
    h = _ResNetTrunk(self.base_features, self.batch_norm, self.layer_norm,
                     False, 0.0, init, self.dtype, name="trunk")(x, train=train)
    h = nn.Dense(math.prod(latent_shape), kernel_init=init, name="out",
                 **precision.layer_kwargs(self.dtype))(h)
    h = mlp.OUTPUT_ACTIVATIONS[self.output_activation](h)
    return precision.full_precision(h.reshape((x.shape[0],) + latent_shape))
