"""The training state: one pytree holding everything a step needs.

Because the whole state is a single pytree of arrays, ``jit``, ``lax.scan``,
sharding over a device mesh and orbax checkpointing take it as it is; resuming a
run is restoring this pytree.
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class TrainState:
  """State of a game between several players (generator, discriminator, ...).

  Attributes:
    step: int32 scalar, the number of completed iterations (generator updates).
    rng: the run's base PRNG key (raw ``uint32[2]``). Step ``t`` uses
      ``jax.random.fold_in(rng, t)``, so randomness depends on the step only and
      a resumed run draws exactly what an uninterrupted one would.
    params: player name -> parameters.
    model_state: player name -> mutable Flax collections (e.g. ``batch_stats``);
      an empty dict for players without any.
    opt_state: player name -> optax state.
    extra: game-specific arrays, e.g. ``ema_generator`` (an exponential moving
      average of the generator's parameters) or ``d_history`` (the last ``k``
      discriminator samples of a Langevin-trained discriminator).
  """
  step: jax.Array
  rng: jax.Array
  params: dict[str, Any]
  model_state: dict[str, Any]
  opt_state: dict[str, Any]
  extra: dict[str, Any]


def step_key(state: TrainState, *tags: int) -> jax.Array:
  """The PRNG key of the current step, optionally further specialised by tags."""
  key = jax.random.fold_in(state.rng, state.step)
  for tag in tags:
    key = jax.random.fold_in(key, tag)
  return key


def parameter_count(tree: Any) -> int:
  return int(sum(x.size for x in jax.tree.leaves(tree)))


def all_finite(tree: Any) -> jax.Array:
  """True iff every floating-point leaf of ``tree`` is finite (a traced bool)."""
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)]
  if not leaves:
    return jnp.asarray(True)
  return jnp.all(jnp.stack(leaves))
