"""Stride-2 transposed convolution in sub-pixel form.

A stride-2 transposed convolution inserts a zero between input pixels and then
convolves. Three quarters of the products are with those zeros, and XLA's CPU
backend differentiates the strided form slowly (its weight gradient is a
dilated convolution). Every output pixel of a given *phase* (row parity, column
parity) sees the same sub-kernel, so the layer equals four stride-1
convolutions whose outputs are interleaved (depth-to-space). ``ConvTranspose2x``
computes that: one stride-1 convolution to ``4 * features`` channels with the
four sub-kernels gathered from the ordinary kernel, then a depth-to-space.

Index mapping, per spatial axis, for ``lax.conv_transpose`` (which
``nn.ConvTranspose`` calls) with stride 2, kernel size ``k`` and ``'SAME'``
padding: the input is dilated by 2 and padded by ``(a, k - a)`` with
``a = k - 1`` for ``k <= 2`` and ``a = ceil(k / 2)`` otherwise, then
cross-correlated with the unflipped kernel ``w``. So::

  y[o] = sum_j x[(o + j - a) / 2] w[j]   over j with o + j - a even.

Writing ``o = 2q + p`` (phase ``p`` in {0, 1}) and ``j = 2d + a - p``::

  y[2q + p] = sum_d x[q + d] w[2d + a - p],   0 <= 2d + a - p < k,

a stride-1 cross-correlation of ``x`` with the sub-kernel ``d -> w[2d + a - p]``.
The two phases use overlapping ranges of ``d``; one common window covers both,
with zeros where a phase has no tap.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
from flax.linen import dtypes as flax_dtypes
import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

Initializer = Any


def _same_pad_low(k: int) -> int:
  """Low-side padding of ``lax.conv_transpose`` with stride 2 and 'SAME'."""
  return k - 1 if k <= 2 else -(-k // 2)


def phase_taps(k: int) -> tuple[np.ndarray, tuple[int, int]]:
  """Sub-kernel gather indices and padding for one spatial axis.

  Args:
    k: kernel size along the axis (a positive int).

  Returns:
    ``(taps, padding)``: ``taps`` is an int array ``[2, L]`` whose row ``p``
    lists, for window position ``t``, the kernel index used by output phase
    ``p`` (``k`` where that phase has no tap, to select an appended zero);
    ``padding`` is the ``(low, high)`` padding of the stride-1 convolution with
    the length-``L`` window.
  """
  a = _same_pad_low(k)
  # d ranges over 0 <= 2d + a - p <= k - 1 for each phase p.
  d_lo = min(-((a - p) // 2) for p in (0, 1))
  d_hi = max((k - 1 + p - a) // 2 for p in (0, 1))
  length = d_hi - d_lo + 1
  taps = np.full((2, length), k, dtype=np.int32)
  for p in (0, 1):
    for t in range(length):
      j = 2 * (t + d_lo) + a - p
      if 0 <= j < k:
        taps[p, t] = j
  return taps, (-d_lo, d_hi)


def subpixel_kernel(kernel: jax.Array) -> jax.Array:
  """Rearranges a ``[kh, kw, in, out]`` kernel into the stride-1 form.

  Args:
    kernel: a transposed-convolution kernel in ``nn.ConvTranspose`` layout.

  Returns:
    A ``[Lh, Lw, in, 4 * out]`` kernel whose output channels are ordered
    ``(row phase, column phase, feature)``.
  """
  kh, kw, cin, cout = kernel.shape
  taps_h, _ = phase_taps(kh)
  taps_w, _ = phase_taps(kw)
  padded = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))
  sub = padded[taps_h[:, None, :, None], taps_w[None, :, None, :]]
  # [ph, pw, Lh, Lw, in, out] -> [Lh, Lw, in, ph, pw, out]
  sub = jnp.transpose(sub, (2, 3, 4, 0, 1, 5))
  return sub.reshape(taps_h.shape[1], taps_w.shape[1], cin, 4 * cout)


def depth_to_space2(y: jax.Array) -> jax.Array:
  """``[N, H, W, 4C]`` with channels ``(ph, pw, c)`` to ``[N, 2H, 2W, C]``."""
  n, h, w, c4 = y.shape
  c = c4 // 4
  y = y.reshape(n, h, w, 2, 2, c)
  y = jnp.transpose(y, (0, 1, 3, 2, 4, 5))
  return y.reshape(n, 2 * h, 2 * w, c)


class ConvTranspose2x(nn.Module):
  """2x upsampling transposed convolution, same function as nn.ConvTranspose.

  Computes exactly ``nn.ConvTranspose(features, kernel_size, strides=(2, 2),
  padding='SAME')`` with the same parameters (``'kernel'`` of shape
  ``(kh, kw, in, features)`` and ``'bias'``), so the two are interchangeable on
  one parameter tree, but as one stride-1 convolution plus depth-to-space,
  whose gradients XLA computes several times faster on CPU.

  Attributes:
    features: number of output channels.
    kernel_size: ``(kh, kw)``, or an int for a square kernel.
    use_bias: whether to add a bias.
    kernel_init: initializer of the kernel.
    bias_init: initializer of the bias.
    dtype: computation dtype (default: inferred from inputs and parameters).
    param_dtype: parameter dtype.
    precision: ``lax`` precision of the convolution.

  References:
    Shi et al., Real-Time Single Image and Video Super-Resolution Using an
    Efficient Sub-Pixel Convolutional Neural Network, 2016.
    Dumoulin & Visin, A guide to convolution arithmetic for deep learning, 2016.
  """

  features: int
  kernel_size: int | Sequence[int] = (4, 4)
  use_bias: bool = True
  kernel_init: Initializer = nn.initializers.lecun_normal()
  bias_init: Initializer = nn.initializers.zeros_init()
  dtype: Any = None
  param_dtype: Any = jnp.float32
  precision: Any = None

  @nn.compact
  def __call__(self, inputs: jax.Array) -> jax.Array:
    """Upsamples ``[..., H, W, C]`` to ``[..., 2H, 2W, features]``.

    Args:
      inputs: channels-last images; leading dimensions beyond the last three
        are batch dimensions (none is allowed).

    Returns:
      The transposed convolution of ``inputs``.
    """
    if isinstance(self.kernel_size, int):
      kernel_size = (self.kernel_size, self.kernel_size)
    else:
      kernel_size = tuple(self.kernel_size)
    if len(kernel_size) != 2 or min(kernel_size) < 1:
      raise ValueError(
          f"kernel_size must be two positive ints (kh, kw); got {kernel_size}")
    if inputs.ndim < 3:
      raise ValueError(
          f"inputs must be [..., H, W, C] with ndim >= 3; got shape {inputs.shape}")
    batch_shape = inputs.shape[:-3]
    x = inputs.reshape((-1,) + inputs.shape[-3:])

    kernel = self.param(
        "kernel", self.kernel_init,
        kernel_size + (x.shape[-1], self.features), self.param_dtype)
    bias = (self.param("bias", self.bias_init, (self.features,),
                       self.param_dtype) if self.use_bias else None)
    x, kernel, bias = flax_dtypes.promote_dtype(
        x, kernel, bias, dtype=self.dtype)

    _, pad_h = phase_taps(kernel_size[0])
    _, pad_w = phase_taps(kernel_size[1])
    y = lax.conv_general_dilated(
        x, subpixel_kernel(kernel), window_strides=(1, 1),
        padding=(pad_h, pad_w),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=self.precision)
    y = depth_to_space2(y)
    if bias is not None:
      y = y + bias
    return y.reshape(batch_shape + y.shape[1:])
