"""Computation dtype of the modules: float32, or bfloat16 on float32 parameters.

Every generator, discriminator and encoder of the package has a ``dtype`` field
naming one of ``COMPUTE_DTYPES``:

* ``'float32'`` (the default): flax infers each layer's computation dtype from
  its inputs and parameters, so float32 inputs compute in float32 (and
  float64 inputs under ``jax.enable_x64`` in float64), as before the field
  existed.
* ``'bfloat16'``: every layer computes in bfloat16 (flax's ``dtype``) while its
  parameters are created in float32 (``param_dtype``). Parameters, their
  gradients and optimizer states therefore stay float32; batch and layer
  normalisation reduce their statistics in float32 and keep batch norm's
  running averages in float32. A discriminator's logit head (one dense layer,
  plus the projection term of a conditional one) runs in float32 on the
  bfloat16 features: a critic's scores may be large while the losses use their
  differences, and bfloat16's 8-bit mantissa would round a score of 100 to a
  multiple of 0.5.

Whatever the computation dtype, a module's outputs (generator samples,
discriminator logits and features, encoder codes) are returned in at least
float32, so losses, penalties and metrics are reduced in float32.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

COMPUTE_DTYPES = ("float32", "bfloat16")
_LAYER_DTYPES = {"float32": None, "bfloat16": jnp.bfloat16}


def dtype_name(dtype: Any) -> str:
  """The name of a computation dtype, validated.

  Args:
    dtype: ``'float32'`` or ``'bfloat16'``, or the corresponding numpy / jnp
      dtype (``jnp.bfloat16``).

  Returns:
    The name, one of ``COMPUTE_DTYPES``.

  Raises:
    ValueError: for any other dtype, listing the valid names.
  """
  name = dtype
  if not isinstance(dtype, str):
    try:
      name = np.dtype(dtype).name
    except TypeError:
      name = dtype
  if name not in COMPUTE_DTYPES:
    raise ValueError(
        f"unknown dtype {dtype!r} (the computation dtype of the model); valid: "
        f"{', '.join(COMPUTE_DTYPES)} (parameters stay float32 in either)")
  return name


def normalize_dtype_field(module) -> None:
  """Validates a module's ``dtype`` field and stores it as its name, so that
  modules built with ``jnp.bfloat16`` compare and hash like ones built with
  ``'bfloat16'``."""
  object.__setattr__(module, "dtype", dtype_name(module.dtype))


def layer_dtype(dtype: Any):
  """The ``dtype`` to give flax layers: None (inferred) for ``'float32'``."""
  return _LAYER_DTYPES[dtype_name(dtype)]


def layer_kwargs(dtype: Any) -> dict[str, Any]:
  """``dtype`` and ``param_dtype`` (always float32) keywords of a flax layer."""
  return {"dtype": layer_dtype(dtype), "param_dtype": jnp.float32}


def full_precision(x: jax.Array) -> jax.Array:
  """``x`` in at least float32: bfloat16 (or float16) is cast, float32 and
  float64 pass unchanged."""
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))
