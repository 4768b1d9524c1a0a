"""Fully connected generator, discriminator and encoder.

The toy and MNIST architectures of the seed papers are all MLPs: Roth et al.'s
3-D toy (tanh 128 x2, truncated-normal std 0.1 weights, zero biases), beta-GAN's
toys and MNIST nets (ReLU or BN-ReLU, linear output) and Che et al.'s toy
(ReLU 128 x2, uniform latents, so a sigmoid-output encoder).

Every generator and discriminator of the package can be class-conditional
(``num_classes > 0``); the shared pieces are at the end of this module.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models import dropout
from gan_jax.models import precision


def _leaky_relu(x: jax.Array) -> jax.Array:
  return nn.leaky_relu(x, negative_slope=0.2)


ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "leaky_relu": _leaky_relu,
    "tanh": jnp.tanh,
    "elu": nn.elu,
    "softplus": nn.softplus,
    "sigmoid": nn.sigmoid,
    "swish": nn.swish,
    "gelu": nn.gelu,
}

# Maxout (Goodfellow et al. 2013) is not elementwise: a layer of width ``w``
# computes ``w * pieces`` affine units and keeps the largest of each group of
# ``pieces`` consecutive ones, so it lives in the layer (``_MLPTrunk``), not in
# ``ACTIVATIONS``. Its piece count is the modules' ``pieces`` field.
MAXOUT = "maxout"
HIDDEN_ACTIVATIONS = tuple(ACTIVATIONS) + (MAXOUT,)

OUTPUT_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "linear": lambda x: x,
    "tanh": jnp.tanh,
    "sigmoid": nn.sigmoid,
}

KERNEL_INITS = ("lecun_normal", "xavier_uniform", "truncated_normal", "normal")

# Flax's default BatchNorm momentum (0.99) is tuned for long ImageNet runs; GAN
# batch statistics drift with the generator, so a faster average (0.9, as in
# the TensorFlow DCGAN code the papers build on) tracks them.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def _choice(kind: str, value: str, valid) -> None:
  if value not in valid:
    raise ValueError(
        f"unknown {kind} {value!r}; valid: {', '.join(valid)}")


def activation_fn(name: str) -> Callable[[jax.Array], jax.Array]:
  """The hidden activation called ``name`` (one of ``ACTIVATIONS``)."""
  _choice("activation", name, tuple(ACTIVATIONS))
  return ACTIVATIONS[name]


def output_activation_fn(name: str) -> Callable[[jax.Array], jax.Array]:
  """The output activation called ``name`` (one of ``OUTPUT_ACTIVATIONS``)."""
  _choice("output_activation", name, tuple(OUTPUT_ACTIVATIONS))
  return OUTPUT_ACTIVATIONS[name]


def kernel_initializer(name: str, *, init_std: float):
  """Weight initializer by name.

  Args:
    name: one of ``KERNEL_INITS``. ``'truncated_normal'`` draws
      ``N(0, init_std^2)`` truncated at two standard deviations, the
      parameterisation of TensorFlow's ``truncated_normal_initializer`` used by
      Roth et al.'s code; its actual standard deviation is
      ``0.8796 * init_std``. ``'normal'`` draws ``N(0, init_std^2)`` (Radford
      et al.'s DCGAN used 0.02).
    init_std: scale of the two normal initializers; ignored otherwise.

  Returns:
    A flax initializer.
  """
  _choice("kernel_init", name, KERNEL_INITS)
  if name == "lecun_normal":
    return nn.initializers.lecun_normal()
  if name == "xavier_uniform":
    return nn.initializers.xavier_uniform()
  if name == "truncated_normal":
    return nn.initializers.truncated_normal(stddev=init_std)
  return nn.initializers.normal(stddev=init_std)


def as_shape(shape: int | Sequence[int]) -> tuple[int, ...]:
  """A shape as a tuple of ints; an int ``n`` is ``(n,)``."""
  if isinstance(shape, int):
    return (shape,)
  return tuple(int(s) for s in shape)


def hidden_activations(activation: str | Sequence[str],
                       n_layers: int) -> tuple[str, ...]:
  """One activation name per hidden layer, validated."""
  if isinstance(activation, str):
    names = (activation,) * n_layers
  else:
    names = tuple(activation)
    if len(names) != n_layers:
      raise ValueError(
          f"activation has {len(names)} entries but there are {n_layers} "
          f"hidden layers; give one name or one per layer")
  for name in names:
    _choice("activation", name, HIDDEN_ACTIVATIONS)
  return names


def maxout(h: jax.Array, pieces: int) -> jax.Array:
  """Maxout over groups of ``pieces`` consecutive features: ``[..., w * pieces] -> [..., w]``.

  Unit ``j`` of the output is ``max_k h[..., j * pieces + k]``, ``k < pieces``.

  References:
    Goodfellow, Warde-Farley, Mirza, Courville & Bengio, "Maxout Networks", 2013.
  """
  if h.shape[-1] % pieces:
    raise ValueError(f"maxout needs a multiple of pieces={pieces} features; got {h.shape[-1]}")
  return jnp.max(h.reshape(h.shape[:-1] + (h.shape[-1] // pieces, pieces)), axis=-1)


def check_pieces(pieces: int) -> None:
  """Raises ValueError unless ``pieces`` (maxout's piece count) is an int >= 1."""
  if isinstance(pieces, bool) or not isinstance(pieces, int) or pieces < 1:
    raise ValueError(f"pieces (maxout units per hidden unit) must be an int >= 1; got "
                     f"{pieces!r}")


def freeze_sequences(module, names: Sequence[str]) -> None:
  """Turns list-valued fields into tuples, so that modules built from configs
  (which may hold lists) compare and hash like ones built in code."""
  for name in names:
    value = getattr(module, name)
    if isinstance(value, list):
      object.__setattr__(module, name, tuple(value))


def check_widths(widths: Sequence[int], *, allow_empty: bool) -> None:
  """Raises ValueError unless ``widths`` are positive ints (and non-empty)."""
  widths = tuple(widths)
  if not allow_empty and not widths:
    raise ValueError("widths must list at least one hidden layer width")
  if any(int(w) < 1 for w in widths):
    raise ValueError(f"widths must be positive ints; got {widths}")


def batch_norm_layer(train: bool, name: str, dtype=None) -> nn.BatchNorm:
  """Batch norm with the package's momentum; batch statistics iff ``train``.

  ``dtype`` is the layer's computation dtype (None: inferred); flax reduces
  the statistics in float32 and keeps the running averages in float32 for any
  computation dtype.
  """
  return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM,
                      epsilon=BN_EPSILON, dtype=dtype, param_dtype=jnp.float32,
                      name=name)


class _MLPTrunk(nn.Module):
  """Dense -> [norm] -> activation -> [dropout] for each width.

  A maxout layer of width ``w`` has a dense layer of ``w * pieces`` units (and
  its norm over those), then :func:`maxout`.
  """

  widths: Sequence[int]
  activations: Sequence[str]
  batch_norm: bool
  layer_norm: bool
  dropout_rate: float
  kernel_init: Callable
  pieces: int = 1
  dtype: str = "float32"

  @nn.compact
  def __call__(self, h: jax.Array, *, train: bool) -> jax.Array:
    normed = self.batch_norm or self.layer_norm
    kw = precision.layer_kwargs(self.dtype)
    for i, (width, act) in enumerate(zip(self.widths, self.activations)):
      units = int(width) * (self.pieces if act == MAXOUT else 1)
      # A normalisation layer's shift makes a dense bias redundant.
      h = nn.Dense(units, use_bias=not normed, kernel_init=self.kernel_init,
                   name=f"dense_{i}", **kw)(h)
      if self.batch_norm:
        h = batch_norm_layer(train, f"bn_{i}", kw["dtype"])(h)
      elif self.layer_norm:
        h = nn.LayerNorm(name=f"ln_{i}", **kw)(h)
      h = maxout(h, self.pieces) if act == MAXOUT else ACTIVATIONS[act](h)
      if self.dropout_rate > 0:
        h = dropout.Dropout(self.dropout_rate, deterministic=not train)(h)
    return h


class MLPGenerator(nn.Module):
  """Fully connected generator ``z -> x``.

  Attributes:
    widths: hidden layer widths.
    out_shape: shape of one sample (without the batch dimension).
    activation: hidden activation name (see ``ACTIVATIONS``, or ``'maxout'``),
      or one name per hidden layer.
    batch_norm: batch normalisation before each hidden activation (statistics
      in the ``'batch_stats'`` collection, momentum 0.9).
    output_activation: ``'linear'``, ``'tanh'`` or ``'sigmoid'``.
    kernel_init: weight initializer name (see ``KERNEL_INITS``); biases are 0.
    init_std: scale of the (truncated) normal initializer.
    num_classes: number of classes of a class-conditional generator (0:
      unconditional, and then no label parameters exist).
    label_features: width of the learned label embedding appended to the
      latent; 0 appends the one-hot labels instead.
    pieces: affine pieces per unit of a ``'maxout'`` layer (ignored by the
      other activations).
    dtype: computation dtype, one of ``precision.COMPUTE_DTYPES``
      (``'float32'`` or ``'bfloat16'``); parameters and batch statistics stay
      float32 and the output is returned in float32.

  References:
    Goodfellow et al., Generative Adversarial Nets, 2014.
    Mirza & Osindero, Conditional Generative Adversarial Nets, 2014.
    Roth et al., Stabilizing Training of Generative Adversarial Networks
    through Regularization, 2017.
  """

  widths: Sequence[int]
  out_shape: Sequence[int]
  activation: str | Sequence[str] = "relu"
  batch_norm: bool = False
  output_activation: str = "linear"
  kernel_init: str = "lecun_normal"
  init_std: float = 0.1
  num_classes: int = 0
  label_features: int = 0
  pieces: int = 2
  dtype: str = "float32"

  def __post_init__(self):
    freeze_sequences(self, ("widths", "out_shape", "activation"))
    check_widths(self.widths, allow_empty=True)
    hidden_activations(self.activation, len(tuple(self.widths)))
    output_activation_fn(self.output_activation)
    kernel_initializer(self.kernel_init, init_std=self.init_std)
    check_pieces(self.pieces)
    precision.normalize_dtype_field(self)
    check_conditional(self.num_classes, label_features=self.label_features)
    super().__post_init__()

  @nn.compact
  def __call__(self, z: jax.Array, labels: jax.Array | None = None, *,
               train: bool = True) -> jax.Array:
    """Maps latents ``[B, ...]`` (flattened beyond the batch) to ``[B, *out_shape]``.

    Args:
      z: latent codes.
      labels: int class ids ``[B]``; required iff ``num_classes > 0``. Their
        code is appended to the flattened latent.
      train: batch statistics (and their update) when True, running averages
        otherwise.

    Returns:
      Samples of shape ``[B, *out_shape]``.
    """
    out_shape = as_shape(self.out_shape)
    init = kernel_initializer(self.kernel_init, init_std=self.init_std)
    labels = check_labels(labels, self.num_classes, z.shape[0])
    h = with_label_code(z.reshape(z.shape[0], -1), labels,
                        num_classes=self.num_classes,
                        label_features=self.label_features)
    h = _MLPTrunk(tuple(self.widths),
                  hidden_activations(self.activation, len(self.widths)),
                  self.batch_norm, False, 0.0, init, self.pieces, self.dtype,
                  name="trunk")(h, train=train)
    h = nn.Dense(math.prod(out_shape), kernel_init=init, name="out",
                 **precision.layer_kwargs(self.dtype))(h)
    h = OUTPUT_ACTIVATIONS[self.output_activation](h)
    return precision.full_precision(h.reshape((z.shape[0],) + out_shape))


class MLPDiscriminator(nn.Module):
  """Fully connected discriminator (or critic) ``x -> logit``.

  Attributes:
    widths: hidden layer widths (at least one).
    activation: hidden activation name, or one per hidden layer.
    batch_norm: batch normalisation before each hidden activation.
    layer_norm: layer normalisation instead (the WGAN-GP critic must not use
      batch norm); at most one of the two.
    dropout_rate: dropout after each hidden activation, active only with
      ``train=True`` and then needing the ``'dropout'`` rng (CT-GAN's two
      perturbed passes come from two dropout keys).
    kernel_init: weight initializer name; biases are 0.
    init_std: scale of the (truncated) normal initializer.
    num_classes: number of classes of a class-conditional discriminator (0:
      unconditional, and then no label parameters exist).
    conditioning: how labels enter (one of ``CONDITIONINGS``):
      ``'projection'`` adds ``<embed(y), h>`` to the logit, ``h`` the
      penultimate features (parameter ``label_embed``); ``'concat'`` appends
      the one-hot labels to the flattened input.
    pieces: affine pieces per unit of a ``'maxout'`` layer (ignored by the
      other activations): a maxout layer of width ``w`` has ``w * pieces``
      dense units and outputs ``w`` features (PacGAN's 2-D discriminator:
      200 units of 5 pieces).
    dtype: computation dtype, one of ``precision.COMPUTE_DTYPES``
      (``'float32'`` or ``'bfloat16'``); parameters and batch statistics stay
      float32, and the logit head runs in float32 on the trunk's features
      (logits and features are returned in float32).

  References:
    Goodfellow et al., Generative Adversarial Nets, 2014.
    Miyato & Koyama, cGANs with Projection Discriminator, 2018.
    Wei et al., Improving the Improved Training of Wasserstein GANs: A
    Consistency Term and Its Dual Effect, 2018.
    Goodfellow et al., Maxout Networks, 2013.
  """

  widths: Sequence[int]
  activation: str | Sequence[str] = "relu"
  batch_norm: bool = False
  layer_norm: bool = False
  dropout_rate: float = 0.0
  kernel_init: str = "lecun_normal"
  init_std: float = 0.1
  num_classes: int = 0
  conditioning: str = "projection"
  pieces: int = 2
  dtype: str = "float32"

  def __post_init__(self):
    freeze_sequences(self, ("widths", "activation"))
    check_widths(self.widths, allow_empty=False)
    hidden_activations(self.activation, len(tuple(self.widths)))
    check_norms(self.batch_norm, self.layer_norm)
    check_dropout(self.dropout_rate)
    kernel_initializer(self.kernel_init, init_std=self.init_std)
    check_pieces(self.pieces)
    precision.normalize_dtype_field(self)
    check_conditional(self.num_classes, conditioning=self.conditioning)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, labels: jax.Array | None = None, *,
               train: bool = True, return_features: bool = False):
    """Scores a batch.

    Args:
      x: inputs ``[B, ...]``, flattened beyond the batch dimension.
      labels: int class ids ``[B]``; required iff ``num_classes > 0``.
      train: batch statistics and dropout when True.
      return_features: also return the penultimate features.

    Returns:
      Logits ``[B]`` (no sigmoid), or ``(logits, features)`` with features
      ``[B, widths[-1]]`` (after dropout: what the last layer sees).
    """
    init = kernel_initializer(self.kernel_init, init_std=self.init_std)
    labels = check_labels(labels, self.num_classes, x.shape[0])
    h = x.reshape(x.shape[0], -1)
    if self.conditioning == "concat":
      h = with_label_maps(h, labels, num_classes=self.num_classes)
    h = _MLPTrunk(tuple(self.widths),
                  hidden_activations(self.activation, len(self.widths)),
                  self.batch_norm, self.layer_norm, self.dropout_rate, init,
                  self.pieces, self.dtype, name="trunk")(h, train=train)
    # The head runs in float32 (see gan_jax.models.precision).
    h = precision.full_precision(h)
    logits = nn.Dense(1, kernel_init=init, name="out")(h)[:, 0]
    logits = conditional_logits(logits, h, labels,
                                num_classes=self.num_classes,
                                conditioning=self.conditioning,
                                kernel_init=init, train=train)
    if return_features:
      return logits, h
    return logits


class MLPEncoder(nn.Module):
  """Fully connected encoder ``x -> z``.

  Attributes:
    widths: hidden layer widths.
    latent_shape: shape of one latent code.
    activation: hidden activation name, or one per hidden layer.
    batch_norm: batch normalisation before each hidden activation.
    output_activation: ``'linear'``, ``'tanh'`` (for ``U[-1, 1]`` latents) or
      ``'sigmoid'`` (for ``U[0, 1]`` latents, as in Che et al.'s toy).
    kernel_init: weight initializer name; biases are 0.
    init_std: scale of the (truncated) normal initializer.
    pieces: affine pieces per unit of a ``'maxout'`` layer (ignored by the
      other activations).
    dtype: computation dtype, one of ``precision.COMPUTE_DTYPES``
      (``'float32'`` or ``'bfloat16'``); parameters and batch statistics stay
      float32 and the output is returned in float32.

  References:
    Che et al., Mode Regularized Generative Adversarial Networks, 2017.
  """

  widths: Sequence[int]
  latent_shape: Sequence[int]
  activation: str | Sequence[str] = "relu"
  batch_norm: bool = False
  output_activation: str = "linear"
  kernel_init: str = "lecun_normal"
  init_std: float = 0.1
  pieces: int = 2
  dtype: str = "float32"

  def __post_init__(self):
    freeze_sequences(self, ("widths", "latent_shape", "activation"))
    check_widths(self.widths, allow_empty=True)
    hidden_activations(self.activation, len(tuple(self.widths)))
    output_activation_fn(self.output_activation)
    kernel_initializer(self.kernel_init, init_std=self.init_std)
    check_pieces(self.pieces)
    precision.normalize_dtype_field(self)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = True) -> jax.Array:
    """Encodes ``[B, ...]`` (flattened beyond the batch) to ``[B, *latent_shape]``.

    Args:
      x: data batch.
      train: batch statistics when True.

    Returns:
      Latent codes ``[B, *latent_shape]``.
    """
    latent_shape = as_shape(self.latent_shape)
    init = kernel_initializer(self.kernel_init, init_std=self.init_std)
    h = x.reshape(x.shape[0], -1)
    h = _MLPTrunk(tuple(self.widths),
                  hidden_activations(self.activation, len(self.widths)),
                  self.batch_norm, False, 0.0, init, self.pieces, self.dtype,
                  name="trunk")(h, train=train)
    h = nn.Dense(math.prod(latent_shape), kernel_init=init, name="out",
                 **precision.layer_kwargs(self.dtype))(h)
    h = OUTPUT_ACTIVATIONS[self.output_activation](h)
    return precision.full_precision(h.reshape((x.shape[0],) + latent_shape))


def check_norms(batch_norm: bool, layer_norm: bool) -> None:
  """Raises ValueError if both normalisations are requested."""
  if batch_norm and layer_norm:
    raise ValueError(
        "batch_norm and layer_norm are exclusive; set at most one to True")


def check_dropout(rate: float) -> None:
  """Raises ValueError unless ``0 <= rate < 1``."""
  if not 0.0 <= float(rate) < 1.0:
    raise ValueError(f"dropout_rate must be in [0, 1); got {rate}")


# --- Class conditioning -------------------------------------------------------

CONDITIONINGS = ("projection", "concat")


def _check_count(name: str, value, what: str) -> None:
  if (isinstance(value, bool) or not isinstance(value, int)
      or value < 0):
    raise ValueError(f"{name} must be a non-negative int ({what}); got {value!r}")


def check_conditional(num_classes: int, *, label_features: int | None = None,
                      conditioning: str | None = None) -> None:
  """Validates the conditioning fields of a generator or discriminator.

  Args:
    num_classes: number of classes; 0 makes the module unconditional.
    label_features: a generator's label embedding width (0: one-hot), or None
      for a discriminator.
    conditioning: a discriminator's conditioning (one of ``CONDITIONINGS``), or
      None for a generator.

  Raises:
    ValueError: a negative or non-integer count, or an unknown conditioning.
  """
  _check_count("num_classes", num_classes, "0 = unconditional")
  if label_features is not None:
    _check_count("label_features", label_features,
                 "0 = one-hot labels, else a learned embedding of that width")
  if conditioning is not None:
    _choice("conditioning", conditioning, CONDITIONINGS)


def check_labels(labels, num_classes: int, batch: int) -> jax.Array | None:
  """The labels a module was called with, checked against its ``num_classes``.

  Only shapes and dtypes are checked, so traced labels pass; ids outside
  ``[0, num_classes)`` cannot be detected under ``jit`` and give a zero
  one-hot code (or an undefined embedding row).

  Args:
    labels: int class ids ``[B]``, or None.
    num_classes: the module's number of classes (0: unconditional).
    batch: the batch size ``B`` of the input.

  Returns:
    The labels as an array, or None for an unconditional module.

  Raises:
    ValueError: labels missing for a conditional module, given to an
      unconditional one, or not int ``[B]``.
  """
  if num_classes == 0:
    if labels is not None:
      raise ValueError(
          "labels given to an unconditional model (num_classes=0); build it "
          "with num_classes > 0 to condition on class labels, or pass "
          "labels=None")
    return None
  if labels is None:
    raise ValueError(
        f"this model is class-conditional (num_classes={num_classes}) and needs "
        f"labels: int class ids [B] in [0, {num_classes})")
  labels = jnp.asarray(labels)
  if labels.shape != (batch,):
    raise ValueError(
        f"labels must have shape [B] = ({batch},) to match the input batch; "
        f"got {labels.shape}")
  if not jnp.issubdtype(labels.dtype, jnp.integer):
    raise ValueError(
        f"labels must be int class ids in [0, {num_classes}); got dtype "
        f"{labels.dtype}")
  return labels


def with_label_code(h: jax.Array, labels: jax.Array | None, *,
                    num_classes: int, label_features: int) -> jax.Array:
  """Appends a code of ``labels`` to flat latents ``h`` ``[B, D]``.

  Call inside a compact method: a learned code is the parameter
  ``label_embed`` of the calling module.

  Args:
    h: flattened latents.
    labels: int class ids ``[B]``, or None (then ``h`` is returned).
    num_classes: number of classes.
    label_features: 0 for a one-hot code of width ``num_classes``, else the
      width of a learned ``nn.Embed`` code (flax's default initializer: entries
      of unit scale, like a normal latent's).

  Returns:
    ``[B, D + code width]``.
  """
  if labels is None:
    return h
  if label_features == 0:
    code = jax.nn.one_hot(labels, num_classes, dtype=h.dtype)
  else:
    code = nn.Embed(num_classes, label_features,
                    name="label_embed")(labels).astype(h.dtype)
  return jnp.concatenate([h, code], axis=-1)


def with_label_maps(x: jax.Array, labels: jax.Array | None, *,
                    num_classes: int) -> jax.Array:
  """Appends the one-hot labels to the last axis of ``x``, constant elsewhere.

  For flat inputs ``[B, D]`` this is ``[B, D + K]``; for images
  ``[B, H, W, C]`` it adds ``K`` constant feature maps, ``[B, H, W, C + K]``.

  Args:
    x: inputs with the batch first and features last.
    labels: int class ids ``[B]``, or None (then ``x`` is returned).
    num_classes: ``K``.

  Returns:
    ``x`` with the label channels appended.
  """
  if labels is None:
    return x
  code = jax.nn.one_hot(labels, num_classes, dtype=x.dtype)
  code = code.reshape((x.shape[0],) + (1,) * (x.ndim - 2) + (num_classes,))
  code = jnp.broadcast_to(code, x.shape[:-1] + (num_classes,))
  return jnp.concatenate([x, code], axis=-1)


def _transposed_init(init):
  """An embedding ``[K, F]`` initialised as a dense kernel ``[F, K]`` would be.

  The projection ``<embed(y), h>`` is a class-specific output layer on the
  features ``h``, so its weights get the output layer's fan-in scaling.
  """
  def embedding_init(key, shape, dtype=jnp.float32):
    return init(key, shape[::-1], dtype).T
  return embedding_init


def projection_term(h: jax.Array, labels: jax.Array, *, num_classes: int,
                    kernel_init, spectral_norm: bool = False,
                    train: bool = True) -> jax.Array:
  """The class term ``<embed(y), h>`` of a projection discriminator.

  Call inside a compact method: the embedding ``[num_classes, F]`` is the
  parameter ``label_embed`` of the calling module.

  Args:
    h: penultimate features ``[B, F]`` (what the output layer sees).
    labels: int class ids ``[B]``.
    num_classes: number of classes.
    kernel_init: the discriminator's flax kernel initializer.
    spectral_norm: spectrally normalise the embedding matrix too, as Miyato &
      Koyama do (state ``sn_label_embed`` in ``'batch_stats'``, updated when
      ``train``).
    train: update the spectral-norm estimate.

  Returns:
    ``[B]``, added to the unconditional logit ``psi(h)``.

  References:
    Miyato & Koyama, cGANs with Projection Discriminator, 2018.
  """
  embed = nn.Embed(num_classes, h.shape[-1],
                   embedding_init=_transposed_init(kernel_init),
                   name="label_embed")
  if spectral_norm:
    v = nn.SpectralNorm(embed, name="sn_label_embed")(labels, update_stats=train)
  else:
    v = embed(labels)
  return jnp.sum(v.astype(h.dtype) * h, axis=-1)


def logit_head(h: jax.Array, labels, *, num_classes: int, conditioning: str, kernel_init,
               spectral_norm: bool = False, train: bool = True) -> jax.Array:
  """A discriminator's output layer on features ``h``: logits ``[B]``.

  Called inside a module's compact ``__call__``: the dense layer is that
  module's ``'out'`` (wrapped as ``'sn_out'`` with spectral normalisation),
  plus the projection term of a conditional discriminator.
  """
  h = precision.full_precision(h)  # the head runs in float32 (see precision)
  dense = nn.Dense(1, kernel_init=kernel_init, name="out")
  if spectral_norm:
    logits = nn.SpectralNorm(dense, name="sn_out")(h, update_stats=train)
  else:
    logits = dense(h)
  return conditional_logits(logits[:, 0], h, labels, num_classes=num_classes,
                            conditioning=conditioning, kernel_init=kernel_init,
                            spectral_norm=spectral_norm, train=train)


def conditional_logits(logits: jax.Array, h: jax.Array, labels, *,
                       num_classes: int, conditioning: str, kernel_init,
                       spectral_norm: bool = False,
                       train: bool = True) -> jax.Array:
  """Adds the projection term to ``logits`` when that is the conditioning."""
  if labels is None or conditioning != "projection":
    return logits
  return logits + projection_term(
      h, labels, num_classes=num_classes, kernel_init=kernel_init,
      spectral_norm=spectral_norm, train=train)
