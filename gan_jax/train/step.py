"""Compiling a game's step: jit over a device mesh, many steps per call.

The mesh has two axes, ``('seeds', 'data')``. Data parallelism is ``jax.jit``
over the ``'data'`` axis: the state is replicated along it, every batch drawn
inside the step is constrained to be split along the batch dimension
(``P('data')``). XLA's partitioner then turns the mean over the batch in each
loss, and the batch statistics of batch norm, into cross-device collectives,
so gradients are averaged over all devices and the result is the one of the
global batch on one device. A run of several seeds (``train.num_seeds``,
``gan_jax.train.seeds``) stacks its replicas along a leading state axis; with
``train.seed_devices = k`` that axis is split over ``k`` devices (``P('seeds')``)
and each group of ``n / k`` devices runs its seeds data parallel. One seed, or
``k = 1``, is a ``(1, n)`` mesh: plain data parallelism. The same program runs
on one CPU, eight fake CPU devices, a GPU box, a TPU slice or, the mesh being
built over ``jax.devices()`` (every process's devices), several hosts; the
older per-device mapping API, now in maintenance mode, is not used.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec as P

from gan_jax.train import distributed

SEED_AXIS = "seeds"
DATA_AXIS = "data"


def make_mesh(num_devices: int = 0, seed_devices: int = 1) -> jax.sharding.Mesh:
  """A ``('seeds', 'data')`` mesh over the first ``num_devices`` devices (0: all):
  ``seed_devices`` groups along the seed axis, the rest data parallel."""
  devices = jax.devices()
  if num_devices < 0 or num_devices > len(devices):
    raise ValueError(f"train.num_devices must be in [0, {len(devices)}] (0 = all "
                     f"{len(devices)} devices), got {num_devices}")
  n = num_devices or len(devices)
  if seed_devices < 1 or n % seed_devices:
    divisors = [k for k in range(1, n + 1) if n % k == 0]
    raise ValueError(f"train.seed_devices must divide the {n} devices of the run; got "
                     f"{seed_devices}; valid: {', '.join(map(str, divisors))}")
  return jax.make_mesh((seed_devices, n // seed_devices), (SEED_AXIS, DATA_AXIS),
                       axis_types=(jax.sharding.AxisType.Auto,) * 2, devices=devices[:n])


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def seed_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
  """Stacked replicas split along their leading (seed) axis."""
  return NamedSharding(mesh, P(SEED_AXIS))


def state_sharding(mesh: jax.sharding.Mesh, stacked: bool) -> NamedSharding:
  """Where a state lives: split over seeds when ``stacked``, else replicated."""
  return seed_sharding(mesh) if stacked else replicated(mesh)


def batch_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_divisible(batch_size: int, mesh: jax.sharding.Mesh) -> None:
  n = mesh.shape[DATA_AXIS]
  if batch_size % n:
    raise ValueError(f"train.batch_size ({batch_size}) must be divisible by the number "
                     f"of devices per seed group ({n}); set train.batch_size to a multiple "
                     f"of {n}, or train.num_devices / train.seed_devices so that it is")


def check_seeds_divisible(num_seeds: int, mesh: jax.sharding.Mesh,
                          what: str = "train.num_seeds") -> None:
  k = mesh.shape[SEED_AXIS]
  if num_seeds % k:
    raise ValueError(f"{what} ({num_seeds}) must be divisible by "
                     f"train.seed_devices ({k}), the devices the seed axis is split over")


STEP_METRICS = ("every", "last")
# What every step of a call reports, not only its last: enough to find the
# step where training broke and to follow the schedule. Every game returns them.
ESSENTIAL_METRICS = ("d_loss", "g_loss", "level")


def compile_steps(step_fn: Callable[..., Any], mesh: jax.sharding.Mesh, *,
                  steps_per_call: int = 1, unroll: int | bool = 1,
                  donate: bool = True,
                  step_metrics: str = "every",
                  stacked: bool = False) -> Callable[[Any, Any], tuple[Any, Any]]:
  """Compiles ``steps_per_call`` iterations of a game into one call.

  Args:
    step_fn: ``step_fn(state, arrays, shard) -> (state, metrics)``, e.g. a
      game's ``step``; its metrics include ``ESSENTIAL_METRICS``.
    mesh: the device mesh (``make_mesh``).
    steps_per_call: iterations per call, fused with ``lax.scan``. The essential
      metrics come back for every step (a leading axis of this length), the
      diagnostics (gradient norms, D outputs, ...) for the call's last step only
      (length 1): inside the loop they are unused, so XLA never computes them
      (computing them every step cost ~10% on small models).
    unroll: ``lax.scan``'s unroll factor (``True`` unrolls fully). Small MLPs
      run fastest rolled; convolutional models on XLA:CPU need it unrolled.
    donate: donate the input state's buffers (the caller must not reuse them).
    step_metrics: ``'every'``: the essentials of every step as above;
      ``'last'``: all metrics of the call's last step only (a NaN is then
      still caught after the call, the parameters being checked, but located to
      the call, not the step). The benchmark measures no speed difference
      between the two on the toy MLPs (within its +-5% resolution).
    stacked: ``step_fn`` runs stacked replicas (``seeds.stack_step``): the
      state stays split over the mesh's seed axis (``state_sharding``).

  Returns:
    ``run(state, arrays) -> (state, stacked_metrics)``, jitted.
  """
  if steps_per_call < 1:
    raise ValueError(f"train.steps_per_call must be >= 1, got {steps_per_call}")
  if step_metrics not in STEP_METRICS:
    raise ValueError(f"train.step_metrics: unknown value {step_metrics!r}; valid: "
                     f"{', '.join(STEP_METRICS)}")
  rep = replicated(mesh)
  split = batch_sharding(mesh)

  def shard(x):
    return jax.lax.with_sharding_constraint(x, split)

  def run(state, arrays):
    # Even a length-1 scan is a loop for XLA, and XLA:CPU runs convolutions
    # inside loops on a slow path: the last step is always outside the loop.
    # Metrics kept for the loop's steps; the rest is dead code, never computed.
    names = sorted(ESSENTIAL_METRICS) if step_metrics == "every" and steps_per_call > 1 else []
    if steps_per_call > 1:

      def body(carry, _):
        carry, metrics = step_fn(carry, arrays, shard)
        # One vector per step: one write into the stacked output, not one per metric.
        return carry, (jnp.stack([jnp.asarray(metrics[k], jnp.float32) for k in names])
                       if names else None)

      state, stacked = jax.lax.scan(body, state, None, length=steps_per_call - 1,
                                    unroll=unroll)
    state, last = step_fn(state, arrays, shard)
    metrics = {k: jnp.asarray(v)[None] for k, v in last.items()}
    for i, k in enumerate(names):
      metrics[k] = jnp.concatenate([stacked[:, i], metrics[k]])
    return state, metrics

  return jax.jit(run, out_shardings=(state_sharding(mesh, stacked), rep),
                 donate_argnums=(0,) if donate else ())


def put_replicated(tree: Any, mesh: jax.sharding.Mesh) -> Any:
  """Places a host pytree (the same on every process) on every device of the mesh."""
  return distributed.place(tree, replicated(mesh))


def put_stream(tree: Any, mesh: jax.sharding.Mesh) -> Any:
  """Places this process's part of a streamed buffer: every device of the mesh
  gets the whole buffer, all processes' parts in order."""
  return distributed.join_rows(tree, replicated(mesh))


def init_state(game, seed: int, mesh: jax.sharding.Mesh):
  """The game's initial state, built by one compiled program, replicated on ``mesh``.

  Compiling ``init`` avoids one dispatch per layer (slow for convolutional
  models) and allocates the state directly where it will live.
  """
  return jax.jit(game.init, out_shardings=replicated(mesh))(jax.random.PRNGKey(seed))
