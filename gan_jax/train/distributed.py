"""Several processes, one program: JAX's multi-controller runtime.

Every process runs the same Python program over one global mesh of all
processes' devices (``step.make_mesh`` builds it from ``jax.devices()``). The
compiled step is the single-process step: batches are drawn inside it and
constrained to ``P('data')``, so each device computes its own part of every
global batch and the result is the one a single process with as many devices
computes (random draws included: JAX's partitionable threefry gives the same
numbers whatever the sharding). Data arrays kept on the devices are placed
with ``jax.make_array_from_callback`` (each process fills its own devices).
Only process 0 writes metrics, samples, figures, progress and the workdir's
own files; orbax saves and restores the checkpoints collectively.

``initialize`` starts the runtime: with no arguments ``jax.distributed``
detects the cluster by itself (TPU pod slices, SLURM, Open MPI); otherwise the
coordinator's address, the number of processes and this process's id are
given (also how the two-process CPU test runs, over gloo collectives).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
  """Starts JAX's distributed runtime (call before anything touches a device).

  Raises:
    ValueError: when only some of the three settings are given.
  """
  given = [v is not None for v in (coordinator_address, num_processes, process_id)]
  if any(given) and not all(given):
    raise ValueError("multi-process training needs all of --coordinator_address, "
                     "--num_processes and --process_id, or none of them (then the "
                     "cluster's environment is detected: TPU pod, SLURM, Open MPI)")
  # CPU devices of several processes talk over gloo; GPUs and TPUs use their
  # own collectives whatever this says.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if all(given):
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)
  else:
    jax.distributed.initialize()


def is_primary() -> bool:
  """Whether this process writes the run's files (process 0)."""
  return jax.process_index() == 0


# Processes can reach a synchronisation point minutes apart (one compiles or
# validates slower on a loaded host), longer than the collectives' own start-up
# timeout (30 s for gloo): the run's own synchronisation goes through the
# coordination service's key-value store and barriers, with this timeout.
SYNC_TIMEOUT_S = 900
_counter = {"n": 0}


def _client():
  # The runtime's coordination client (jax.distributed keeps it; orbax uses it
  # the same way for its own barriers).
  from jax._src import distributed as jax_distributed  # pylint: disable=g-import-not-at-top
  return jax_distributed.global_state.client


def _unique(name: str) -> str:
  _counter["n"] += 1
  return f"gan_jax/{name}/{_counter['n']}"


def barrier(name: str) -> None:
  """Waits until every process reaches the barrier ``name`` (no-op alone)."""
  if jax.process_count() > 1:
    _client().wait_at_barrier(_unique(name), timeout_in_ms=SYNC_TIMEOUT_S * 1000)


def share(name: str, value: int = 0) -> int:
  """Process 0's integer ``value`` on every process (itself alone)."""
  if jax.process_count() == 1:
    return int(value)
  key = _unique(name)
  if is_primary():
    _client().key_value_set(key, str(int(value)))
    return int(value)
  return int(_client().blocking_key_value_get(key, SYNC_TIMEOUT_S * 1000))


def place(tree: Any, sharding) -> Any:
  """Host arrays (the same on every process) as global arrays with ``sharding``."""

  def put(x):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

  return jax.tree.map(put, tree)


def join_rows(tree: Any, sharding) -> Any:
  """Every process's rows, in process order, as global arrays with ``sharding``.

  Process ``p`` gives part ``p`` of each leading axis (equal parts): a
  streamed buffer read in parts (``gan_jax.data.stream``) becomes the whole
  buffer on every device of ``sharding`` (replicated). Alone, it is
  :func:`place`.
  """
  if jax.process_count() == 1:
    return place(tree, sharding)
  # The parts first live on their own processes' devices, row block p on
  # process p's, then are copied where ``sharding`` says (an all-gather for a
  # replicated one). ``device_put`` moves between the two layouts whatever the
  # order of the devices in each mesh; a jitted identity would refuse two orders.
  devices = list(np.asarray(sharding.mesh.devices).flat)
  procs = sorted({d.process_index for d in devices})
  rows = [[d for d in devices if d.process_index == p] for p in procs]
  if procs != list(range(jax.process_count())) or len({len(r) for r in rows}) != 1:
    raise ValueError(
        "a streamed buffer is read in one part per process, so the mesh must hold the same "
        f"number of devices of each of the {jax.process_count()} processes; it holds "
        + ", ".join(f"{len(r)} of process {p}" for p, r in zip(procs, rows))
        + " (set train.num_devices to 0, all devices, or keep the split in memory with "
        "data.stream_buffer=0)")
  grid = np.array(rows)
  by_process = jax.sharding.NamedSharding(jax.sharding.Mesh(grid, ("process", "local")),
                                          jax.sharding.PartitionSpec("process"))

  def put(x):
    x = np.asarray(x)
    shape = (x.shape[0] * len(procs),) + x.shape[1:]
    return jax.device_put(jax.make_array_from_process_local_data(by_process, x, shape),
                          sharding)

  return jax.tree.map(put, tree)


def fetch(tree: Any) -> Any:
  """A pytree of global arrays as host numpy arrays on every process."""

  def get(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(jax.device_get(x))

  return jax.tree.map(get, tree)
