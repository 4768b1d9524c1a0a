"""DCGAN generator, discriminator and encoder for 28, 32 and 64 pixel images.

Layout (Radford et al., 2016), with ``b = base_features``:

=====  ==========================  =======================================
size   generator start map         discriminator / encoder feature maps
=====  ==========================  =======================================
28     7 x 7 x 2b                  14 x 14 x b, 7 x 7 x 2b
32     4 x 4 x 4b                  16 x 16 x b, 8 x 8 x 2b, 4 x 4 x 4b
64     4 x 4 x 8b                  32 x 32 x b, ..., 4 x 4 x 8b
=====  ==========================  =======================================

The generator projects ``z`` with a dense layer to the start map and doubles
the resolution with stride-2 transposed convolutions (BN + ReLU) while halving
the channels; the last one outputs the image channels. The discriminator
mirrors it with stride-2 convolutions and leaky ReLU (0.2), no normalisation
on the first layer, and a dense layer from the flattened last map to a logit.

With ``num_classes > 0`` the generator appends a label code to the flattened
latent and the discriminator is a projection discriminator, or sees the
one-hot labels as extra constant input channels (``mlp.CONDITIONINGS``).

Each module's ``dtype`` field picks the computation dtype (float32, or
bfloat16 on float32 parameters: ``gan_jax.models.precision``).
"""
from __future__ import annotations

from collections.abc import Sequence
import math

import flax.linen as nn
import jax

from gan_jax.models import mlp
from gan_jax.models import dropout
from gan_jax.models import precision
from gan_jax.models.upsample import ConvTranspose2x

IMAGE_SIZES = (28, 32, 64)
UPSAMPLERS = ("subpixel", "transpose")
KERNEL_SIZES = (3, 4, 5)
_GENERATOR_OUTPUTS = ("tanh", "linear")
# Number of stride-2 stages between the image and the smallest feature map.
_STAGES = {28: 2, 32: 3, 64: 4}


def _check_size(height: int, width: int) -> int:
  if height != width:
    raise ValueError(
        f"DCGAN images must be square; got {height} x {width} "
        f"(valid sizes: {', '.join(map(str, IMAGE_SIZES))})")
  if height not in IMAGE_SIZES:
    raise ValueError(
        f"unsupported DCGAN image size {height}; valid: "
        f"{', '.join(map(str, IMAGE_SIZES))}")
  return _STAGES[height]


def _check_kernel_size(kernel_size: int) -> None:
  if kernel_size not in KERNEL_SIZES:
    raise ValueError(
        f"unsupported kernel_size {kernel_size}; valid: "
        f"{', '.join(map(str, KERNEL_SIZES))}")


def _check_base(base_features: int) -> None:
  if int(base_features) < 1:
    raise ValueError(f"base_features must be a positive int; got {base_features}")


class DCGANGenerator(nn.Module):
  """DCGAN generator ``z -> image``.

  Attributes:
    image_shape: ``(H, W, C)`` with ``H == W`` in ``IMAGE_SIZES``.
    base_features: channels of the last hidden map (``b`` in the table above).
    batch_norm: batch normalisation before each hidden ReLU (statistics in
      ``'batch_stats'``, momentum 0.9).
    output_activation: ``'tanh'`` (data in ``[-1, 1]``) or ``'linear'``
      (beta-GAN's CelebA generator).
    upsample: ``'subpixel'`` (``ConvTranspose2x``) or ``'transpose'``
      (``nn.ConvTranspose``): the same function on the same parameters; the
      sub-pixel form has much faster gradients on CPU.
    kernel_size: transposed-convolution kernel size (4 by default, 5 as in
      the original DCGAN code, or 3).
    kernel_init: weight initializer name (see ``mlp.KERNEL_INITS``).
    init_std: scale of the normal initializers (Radford et al.: 0.02).
    num_classes: number of classes of a class-conditional generator (0:
      unconditional, and then no label parameters exist).
    label_features: width of the learned label embedding appended to the
      flattened latent; 0 appends the one-hot labels instead.
    dtype: computation dtype, one of ``precision.COMPUTE_DTYPES``
      (``'float32'`` or ``'bfloat16'``); parameters and batch statistics stay
      float32 and the output is returned in float32.

  References:
    Radford et al., Unsupervised Representation Learning with Deep
    Convolutional Generative Adversarial Networks, 2016.
    Mirza & Osindero, Conditional Generative Adversarial Nets, 2014.
  """

  image_shape: Sequence[int]
  base_features: int = 64
  batch_norm: bool = True
  output_activation: str = "tanh"
  upsample: str = "subpixel"
  kernel_size: int = 4
  kernel_init: str = "normal"
  init_std: float = 0.02
  num_classes: int = 0
  label_features: int = 0
  dtype: str = "float32"

  def __post_init__(self):
    mlp.freeze_sequences(self, ("image_shape",))
    precision.normalize_dtype_field(self)
    shape = tuple(self.image_shape)
    if len(shape) != 3:
      raise ValueError(
          f"image_shape must be (H, W, C); got {self.image_shape}")
    _check_size(shape[0], shape[1])
    _check_base(self.base_features)
    _check_kernel_size(self.kernel_size)
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

  def _upsampler(self, features: int, use_bias: bool, init, name: str):
    kernel_size = (self.kernel_size, self.kernel_size)
    kw = precision.layer_kwargs(self.dtype)
    if self.upsample == "subpixel":
      return ConvTranspose2x(features, kernel_size, use_bias=use_bias,
                             kernel_init=init, name=name, **kw)
    return nn.ConvTranspose(features, kernel_size, strides=(2, 2),
                            padding="SAME", use_bias=use_bias,
                            kernel_init=init, name=name, **kw)

  @nn.compact
  def __call__(self, z: jax.Array, labels: jax.Array | None = None, *,
               train: bool = True) -> jax.Array:
    """Maps latents ``[B, zdim]`` or data-shaped ``[B, ...]`` to images.

    Args:
      z: latent codes, flattened beyond the batch dimension.
      labels: int class ids ``[B]``; required iff ``num_classes > 0``. Their
        code is appended to the flattened latent.
      train: batch statistics (and their update) when True.

    Returns:
      Images ``[B, H, W, C]``.
    """
    height, width, channels = (int(s) for s in self.image_shape)
    stages = _STAGES[height]
    init = mlp.kernel_initializer(self.kernel_init, init_std=self.init_std)
    start = height >> stages
    features = self.base_features * 2 ** (stages - 1)

    labels = mlp.check_labels(labels, self.num_classes, z.shape[0])
    h = mlp.with_label_code(z.reshape(z.shape[0], -1), labels,
                            num_classes=self.num_classes,
                            label_features=self.label_features)
    kw = precision.layer_kwargs(self.dtype)
    h = nn.Dense(start * start * features, use_bias=not self.batch_norm,
                 kernel_init=init, name="project", **kw)(h)
    h = h.reshape(z.shape[0], start, start, features)
    if self.batch_norm:
      h = mlp.batch_norm_layer(train, "bn_project", kw["dtype"])(h)
    h = nn.relu(h)
    for i in range(stages - 1):
      features //= 2
      h = self._upsampler(features, not self.batch_norm, init, f"up_{i}")(h)
      if self.batch_norm:
        h = mlp.batch_norm_layer(train, f"bn_{i}", kw["dtype"])(h)
      h = nn.relu(h)
    h = self._upsampler(channels, True, init, f"up_{stages - 1}")(h)
    h = mlp.OUTPUT_ACTIVATIONS[self.output_activation](h)
    return precision.full_precision(h)


class _ConvTrunk(nn.Module):
  """Stride-2 convolutions with leaky ReLU down to the smallest map."""

  base_features: int
  batch_norm: bool
  layer_norm: bool
  spectral_norm: bool
  dropout_rate: float
  kernel_size: int
  kernel_init: str
  init_std: float
  dtype: str = "float32"

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    if x.ndim != 4:
      raise ValueError(f"images must be [B, H, W, C]; got shape {x.shape}")
    stages = _check_size(x.shape[1], x.shape[2])
    init = mlp.kernel_initializer(self.kernel_init, init_std=self.init_std)
    kw = precision.layer_kwargs(self.dtype)
    h = x
    for i in range(stages):
      normed = i > 0 and (self.batch_norm or self.layer_norm)
      conv = nn.Conv(self.base_features * 2 ** i,
                     (self.kernel_size, self.kernel_size), strides=(2, 2),
                     padding="SAME", use_bias=not normed, kernel_init=init,
                     name=f"conv_{i}", **kw)
      if self.spectral_norm:
        h = nn.SpectralNorm(conv, name=f"sn_conv_{i}")(h, update_stats=train)
      else:
        h = conv(h)
      if normed and self.batch_norm:
        h = mlp.batch_norm_layer(train, f"bn_{i}", kw["dtype"])(h)
      elif normed:
        # Normalise each example over (H, W, C), as WGAN-GP's critic does.
        h = nn.LayerNorm(reduction_axes=(-3, -2, -1), feature_axes=-1,
                         name=f"ln_{i}", **kw)(h)
      h = nn.leaky_relu(h, negative_slope=0.2)
      if self.dropout_rate > 0:
        h = dropout.Dropout(self.dropout_rate, deterministic=not train)(h)
    return h.reshape(h.shape[0], -1)


class DCGANDiscriminator(nn.Module):
  """DCGAN discriminator (or critic) ``image -> logit``.

  Attributes:
    base_features: channels of the first convolution; doubled at each stage.
    batch_norm: batch normalisation after every convolution but the first.
    layer_norm: layer normalisation (over H, W, C) instead, for WGAN-GP
      critics; at most one of the two.
    spectral_norm: spectral normalisation of every weight (``nn.SpectralNorm``;
      its power-iteration state lives in ``'batch_stats'`` and is updated when
      ``train=True``, so apply with ``mutable=['batch_stats']`` then).
    dropout_rate: dropout after every hidden activation (``'dropout'`` rng,
      ``train=True`` only).
    kernel_size: convolution kernel size.
    kernel_init: weight initializer name (see ``mlp.KERNEL_INITS``).
    init_std: scale of the normal initializers.
    num_classes: number of classes of a class-conditional discriminator (0:
      unconditional, and then no label parameters exist).
    conditioning: how labels enter (one of ``mlp.CONDITIONINGS``):
      ``'projection'`` adds ``<embed(y), h>`` to the logit, ``h`` the
      flattened last map (parameter ``label_embed``, spectrally normalised
      with ``spectral_norm``); ``'concat'`` appends ``num_classes`` constant
      one-hot maps to the input image's channels.
    dtype: computation dtype, one of ``precision.COMPUTE_DTYPES``
      (``'float32'`` or ``'bfloat16'``); parameters and batch statistics stay
      float32, and the logit head runs in float32 on the trunk's features
      (logits and features are returned in float32).

  References:
    Radford et al., Unsupervised Representation Learning with Deep
    Convolutional Generative Adversarial Networks, 2016.
    Gulrajani et al., Improved Training of Wasserstein GANs, 2017.
    Miyato et al., Spectral Normalization for Generative Adversarial
    Networks, 2018.
    Miyato & Koyama, cGANs with Projection Discriminator, 2018.
  """

  base_features: int = 64
  batch_norm: bool = True
  layer_norm: bool = False
  spectral_norm: bool = False
  dropout_rate: float = 0.0
  kernel_size: int = 4
  kernel_init: str = "normal"
  init_std: float = 0.02
  num_classes: int = 0
  conditioning: str = "projection"
  dtype: str = "float32"

  def __post_init__(self):
    precision.normalize_dtype_field(self)
    _check_base(self.base_features)
    mlp.check_norms(self.batch_norm, self.layer_norm)
    mlp.check_dropout(self.dropout_rate)
    _check_kernel_size(self.kernel_size)
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
      return_features: also return the flattened last feature map.

    Returns:
      Logits ``[B]``, or ``(logits, features)`` with features
      ``[B, h * w * c]`` of the smallest map (what the last layer sees).
    """
    if x.ndim != 4:
      raise ValueError(f"images must be [B, H, W, C]; got shape {x.shape}")
    labels = mlp.check_labels(labels, self.num_classes, x.shape[0])
    if self.conditioning == "concat":
      x = mlp.with_label_maps(x, labels, num_classes=self.num_classes)
    h = _ConvTrunk(self.base_features, self.batch_norm, self.layer_norm,
                   self.spectral_norm, self.dropout_rate, self.kernel_size,
                   self.kernel_init, self.init_std, self.dtype,
                   name="trunk")(x, train=train)
    h = precision.full_precision(h)
    init = mlp.kernel_initializer(self.kernel_init, init_std=self.init_std)
    logits = mlp.logit_head(h, labels, num_classes=self.num_classes,
                            conditioning=self.conditioning, kernel_init=init,
                            spectral_norm=self.spectral_norm, train=train)
    if return_features:
      return logits, h
    return logits


class DCGANEncoder(nn.Module):
  """DCGAN-style encoder ``image -> z``: the discriminator's trunk, then a dense.

  Attributes:
    latent_shape: shape of one latent code.
    base_features: channels of the first convolution.
    batch_norm: batch normalisation after every convolution but the first.
    output_activation: ``'linear'``, ``'tanh'`` or ``'sigmoid'``.
    kernel_size: convolution kernel size.
    kernel_init: weight initializer name.
    init_std: scale of the normal initializers.
    dtype: computation dtype, one of ``precision.COMPUTE_DTYPES``
      (``'float32'`` or ``'bfloat16'``); parameters and batch statistics stay
      float32 and the output is returned in float32.

  References:
    Che et al., Mode Regularized Generative Adversarial Networks, 2017.
  """

  latent_shape: Sequence[int]
  base_features: int = 64
  batch_norm: bool = True
  output_activation: str = "linear"
  kernel_size: int = 4
  kernel_init: str = "normal"
  init_std: float = 0.02
  dtype: str = "float32"

  def __post_init__(self):
    mlp.freeze_sequences(self, ("latent_shape",))
    precision.normalize_dtype_field(self)
    _check_base(self.base_features)
    mlp.output_activation_fn(self.output_activation)
    _check_kernel_size(self.kernel_size)
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
    h = _ConvTrunk(self.base_features, self.batch_norm, False, False, 0.0,
                   self.kernel_size, self.kernel_init, self.init_std,
                   self.dtype, name="trunk")(x, train=train)
    init = mlp.kernel_initializer(self.kernel_init, init_std=self.init_std)
    h = nn.Dense(math.prod(latent_shape), kernel_init=init, name="out",
                 **precision.layer_kwargs(self.dtype))(h)
    h = mlp.OUTPUT_ACTIVATIONS[self.output_activation](h)
    return precision.full_precision(h.reshape((x.shape[0],) + latent_shape))
