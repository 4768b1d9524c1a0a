r"""Speed of gan_jax's compiled step against a hand-written JAX step.

  python -m experiments.benchmark                 # full table
  python -m experiments.benchmark --quick         # fewer repetitions

On the beta-GAN 3-D toy models (G [3 | ReLU 128 | ReLU 128 | 3],
D [3 | Tanh 128 x3 | 1], heated targets, Adam) at batch 64 and 512 it measures,
in one process and interleaved so that machine load hits all alike:

* steps/s of the framework's compiled step, one step per call and
  ``steps_per_call`` steps fused with ``lax.scan`` (with the losses of every
  step, the default, and with ``train.step_metrics='last'``);
* steps/s of a minimal reference written directly in JAX (parameter dicts,
  ``jnp.dot``, optax Adam, the same losses and heated sampling), with and
  without the same scan fusion, bare (parameter updates only) and returning
  its losses every step; and the framework/reference ratios of the pairs that
  compute the same outputs;
* the step-time ratio of Roth's JS regularizer (every step and lazily every 4th
  step), WGAN-GP and CT-GAN (GP + consistency term) to the plain step.

With ``--suite=conv`` (or ``all``) it measures DCGAN-28 and DCGAN-64 training
steps (batch 64, random images) with the generator's stride-2 upsampling as
``nn.ConvTranspose`` vs the exact sub-pixel form, and with ``steps_per_call``
steps as a rolled ``lax.scan``, a fully unrolled scan, or one step per call.

With ``--suite=seeds`` it times, end to end (fresh processes: start-up,
compilation, training, evaluations, checkpoints, figures), one run of the
README's main job with ``train.num_seeds=8`` against 8 sequential single-seed
runs of the same command (``--seeds_overrides`` shortens the job).

With ``--suite=sweep`` it times, end to end as ``seeds`` does, one run of a
sweep of Roth's gamma (``configs/roth_submanifold.py:reg``,
``--sweep_values`` x ``--num_seeds`` replicas, ``--sweep_steps`` steps) against
one ``--num_seeds``-seed run per value, sequential.

With ``--suite=seed_batching`` it measures the compiled step of S seeds
(``--num_seeds``, default 8; the study tables use 5) in one program, vmapped and
unrolled (``train.seed_batching``), against one seed, for the DCGAN-28 of the
conv suite (4 steps per call, unrolled, as configs/images.py) and the toy
models at batch 64: throughput in seed-steps/s and each S-seed program's
ratio to the single seed's (interleaved rounds, paired ratios).

With ``--suite=precision`` it measures bfloat16 compute against float32 on the
same steps: the DCGAN-28 WGAN-GP of ``configs/dcgan_mnist.py:mnist,wgan_gp``
(layer-norm critic, 5 critic steps per generator step, batch 64, random images)
and the toy WGAN-GP critic of the toy suite (batch 512). A CPU has no bfloat16
arithmetic units, so there bf16 is expected to be slower; on an accelerator it
is the point.

With ``--suite=multiprocess`` it times the same global program run by two
processes of 2 CPU devices each (``jax.distributed``, gloo collectives) and by
one process of 4 devices, fresh processes, alternating (``--mp_rounds``), and
reports the ratio of their compiled-step wall times (``steps`` of
``timings.jsonl``, the first call and its compilation excluded) and of their
whole wall times.

With ``--suite=stream`` it measures the streaming reader
(``gan_jax.data.stream.StreamBuffer``: NumPy per-epoch permutations, reader
threads) against the same contract written as a grain pipeline (below; needs
``pip install grain``), which the framework does not use because it measured
slower: buffers/s of consecutive calls from a fresh reader (as a run or a
resume starts), reading an in-memory ``uint8`` array as is, and with a sleep
per example mimicking I/O latency (a sleep releases the GIL, as file reads and
image decoding do); and the time to compute one buffer's indices.

With ``--suite=probes`` it measures the probes' discriminator training on
DCGAN-28 (``gan_jax.metrics.probes``: gradient curves and the third-party
discriminator): each segment's steps in one rolled ``lax.scan`` against short
unrolled calls, the chunking the image runs use.

Only ratios measured in the same run are meaningful; absolute numbers depend
on the machine.
"""

from __future__ import annotations

import functools
import time
from typing import Callable

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np
import optax

from configs import betagan_mixture_3d
from configs import common
from gan_jax import games
from gan_jax.data import make_source
from gan_jax.games.base import apply_model
from gan_jax.data.source import from_arrays
from gan_jax.train import seeds as seeds_lib
from gan_jax.train import step as step_lib

FLAGS = flags.FLAGS
flags.DEFINE_bool("quick", False, "Fewer repetitions (noisier numbers).")
flags.DEFINE_list("batch_sizes", ["64", "512"], "Batch sizes to measure.")
flags.DEFINE_integer("scan_steps", 100, "Steps fused per call with lax.scan.")
flags.DEFINE_integer("mp_rounds", 2, "Alternating rounds of the 'multiprocess' suite.")
flags.DEFINE_integer("mp_steps", 2000, "Training steps of each 'multiprocess' run.")
flags.DEFINE_integer("stream_examples", 16384, "Examples of the 'stream' suite's array.")
flags.DEFINE_integer("stream_buffer", 1024, "Examples per buffer of the 'stream' suite.")
flags.DEFINE_integer("stream_calls", 16, "Consecutive calls timed per reader and round.")
flags.DEFINE_list("stream_io_us", ["0", "20", "200"], "Sleeps per example (microseconds) of "
                  "the 'stream' suite's readers (0: the array as is).")
flags.DEFINE_enum("suite", "toy", ["toy", "conv", "seeds", "sweep", "seed_batching",
                                   "precision", "multiprocess", "stream", "probes", "all"],
                  "Which measurements to run ('seeds' and 'sweep' are end to end, minutes; "
                  "not in 'all').")
flags.DEFINE_list("sweep_values", ["0.01", "0.1", "1.0"], "The 'sweep' suite's values of "
                  "game.penalty.weight.")
flags.DEFINE_integer("sweep_steps", 4000, "Training steps of each run of the 'sweep' suite.")
flags.DEFINE_integer("probe_steps", 40, "Discriminator steps per probe of the 'probes' suite.")
flags.DEFINE_integer("num_seeds", 8, "Seeds of the 'seeds' and 'seed_batching' suites.")
flags.DEFINE_integer("seeds_host_devices", 1, "The 'seeds' suite's S-seed run also runs with "
                     "this many host devices and train.seed_devices equal to it (the seed "
                     "groups then run in parallel, one per device; 1: only the default run).")
flags.DEFINE_list("seeds_overrides", [], "Extra --config overrides of the 'seeds' suite's "
                  "main job (e.g. train.num_steps=4000 for a shorter sitting).")
flags.DEFINE_integer("conv_scan_steps", 4, "Steps per call for the convolutional runs.")
flags.DEFINE_list("conv_sizes", ["28", "64"], "DCGAN image sizes to measure.")
flags.DEFINE_bool("conv_rolled", True, "Include the rolled scan (minutes per call at 64 px "
                  "on a CPU).")


# --------------------------------------------------------------- reference
def _dense_init(key, n_in, n_out):
  # Same fan-in scaling as Flax's default lecun_normal; speed does not depend on it.
  w = jax.random.truncated_normal(key, -2, 2, (n_in, n_out)) * np.sqrt(1.0 / n_in) / .88
  return {"w": w, "b": jnp.zeros((n_out,))}


def _mlp(params, x, act):
  for layer in params[:-1]:
    x = act(x @ layer["w"] + layer["b"])
  return x @ params[-1]["w"] + params[-1]["b"]


def reference_step_fn(batch: int, config, *, losses: bool = False
                      ) -> tuple[Callable, object]:
  """A minimal beta-GAN step written directly in JAX, for comparison.

  With ``losses`` it also returns the step's discriminator and generator
  losses and beta (as a training step that logs its losses does); otherwise
  it only updates the parameters.
  """
  level = config.game.perturbation.level
  levels = jnp.asarray(level.beta_1 * (level.beta_K / level.beta_1) **
                       (np.arange(level.K) / level.K), jnp.float32)
  uniform_steps, per = level.uniform_steps, level.steps_per_level
  centers = jnp.asarray(make_source(config.data).info.centers, jnp.float32)
  std = float(make_source(config.data).info.std)
  keys = jax.random.split(jax.random.PRNGKey(0), 7)
  g = [_dense_init(keys[0], 3, 128), _dense_init(keys[1], 128, 128), _dense_init(keys[2], 128, 3)]
  d = [_dense_init(keys[3], 3, 128), _dense_init(keys[4], 128, 128),
       _dense_init(keys[5], 128, 128), _dense_init(keys[6], 128, 1)]
  tx = optax.adam(1e-3, b1=0.5)
  state = {"g": g, "d": d, "og": tx.init(g), "od": tx.init(d), "step": jnp.zeros((), jnp.int32),
           "rng": jax.random.PRNGKey(1)}

  def beta_at(step):
    k = (step - uniform_steps) // per
    beta = levels[jnp.clip(k, 0, level.K - 1)]
    beta = jnp.where(step < uniform_steps, 0.0, beta)
    return jnp.where(k >= level.K, jnp.inf, beta)

  def reflect(x):
    y = jnp.mod(x + 1.0, 4.0)
    return jnp.where(y > 2.0, 4.0 - y, y) - 1.0

  def step(s, _):
    key = jax.random.fold_in(s["rng"], s["step"])
    k1, k2, k3, k4, k5, k6 = jax.random.split(key, 6)
    comp = jax.random.randint(k1, (batch,), 0, centers.shape[0])
    real = centers[comp] + std * jax.random.normal(k2, (batch, 3))
    beta = beta_at(s["step"])
    safe = jnp.where(jnp.isfinite(beta) & (beta > 0), beta, 1.0)
    heated = reflect(real + jax.random.normal(k3, real.shape) / jnp.sqrt(safe))
    uniform = jax.random.uniform(k4, real.shape, minval=-1.0, maxval=1.0)
    real = jnp.where(beta == 0, uniform, jnp.where(jnp.isinf(beta), real, heated))
    fake = _mlp(s["g"], jax.random.uniform(k5, (batch, 3), minval=-1.0, maxval=1.0), jax.nn.relu)

    def d_loss(dp):
      lr = _mlp(dp, real, jnp.tanh)[:, 0]
      lf = _mlp(dp, fake, jnp.tanh)[:, 0]
      return -jnp.mean(jax.nn.log_sigmoid(lr)) - jnp.mean(jax.nn.log_sigmoid(-lf))

    dl, gd = jax.value_and_grad(d_loss)(s["d"])
    ud, od = tx.update(gd, s["od"], s["d"])
    dp = optax.apply_updates(s["d"], ud)
    z = jax.random.uniform(k6, (batch, 3), minval=-1.0, maxval=1.0)

    def g_loss(gp):
      lf = _mlp(dp, _mlp(gp, z, jax.nn.relu), jnp.tanh)[:, 0]
      return jnp.mean(jax.nn.log_sigmoid(-lf))  # saturating log(1 - D)

    gl, gg = jax.value_and_grad(g_loss)(s["g"])
    ug, og = tx.update(gg, s["og"], s["g"])
    gp = optax.apply_updates(s["g"], ug)
    new = {**s, "g": gp, "d": dp, "og": og, "od": od, "step": s["step"] + 1}
    return new, (jnp.stack([dl, gl, beta]) if losses else None)

  return step, state


def _reference_runner(step, state, n):
  if n == 1:
    fn = jax.jit(lambda s: step(s, None), donate_argnums=0)
  else:
    fn = jax.jit(lambda s: jax.lax.scan(step, s, None, length=n), donate_argnums=0)
  holder = {"s": state}

  def call():
    holder["s"], _ = fn(holder["s"])
    return holder["s"]
  return call


def _framework_runner(config, n, source=None, unroll=1, step_metrics="every", num_seeds=1,
                      batching="vmap"):
  """The loop's compiled program: one replica, or ``num_seeds`` mapped by ``batching``."""
  source = source or make_source(config.data)
  game = games.make_game(config, source)
  mesh = step_lib.make_mesh(1)
  stacked = num_seeds > 1
  step_fn = seeds_lib.stack_step(game.step, batching) if stacked else game.step
  run = step_lib.compile_steps(step_fn, mesh, steps_per_call=n, unroll=unroll,
                               step_metrics=step_metrics, stacked=stacked)
  state = (seeds_lib.init_states(game, list(range(num_seeds)), step_lib.seed_sharding(mesh),
                                 batching)
           if stacked else step_lib.init_state(game, 0, mesh))
  holder = {"s": state}
  arrays = step_lib.put_replicated(source.arrays, mesh)

  def call():
    holder["s"], _ = run(holder["s"], arrays)
    return holder["s"]
  return call


# ------------------------------------------------------------------ timing
def measure(runners: dict[str, tuple[Callable, int]], *, rounds: int, min_time: float
            ) -> dict[str, list[float]]:
  """Steps/s of each runner in each of ``rounds`` interleaved timed rounds.

  In every round the runners are timed one after the other, in order, so that
  neighbours see the same machine load; compare neighbours with
  :func:`paired_ratio`. Fast calls are timed in groups of four between
  synchronisations, so that dispatch overlaps execution as in training. A call
  that takes longer than ``min_time`` on its own (a 64-px DCGAN step on a CPU
  can take seconds) is warmed up once and then timed one call at a time.
  """
  slow, minutes = {}, {}
  for name, (call, _) in runners.items():  # compile, then time one warm call
    jax.block_until_ready(call())
    t0 = time.perf_counter()
    jax.block_until_ready(call())
    seconds = time.perf_counter() - t0
    slow[name], minutes[name] = seconds > min_time, seconds > 10
    if minutes[name]:  # progress for runs that take minutes
      print(f"  ... {name}: warm call {seconds:.1f} s", flush=True)
  rates = {name: [] for name in runners}
  for _ in range(rounds):
    for name, (call, steps) in runners.items():
      calls, t0 = 0, time.perf_counter()
      while True:
        out = call()
        calls += 1
        if slow[name] or calls % 4 == 0:
          jax.block_until_ready(out)
          if time.perf_counter() - t0 >= min_time:
            break
      rates[name].append(calls * steps / (time.perf_counter() - t0))
      if minutes[name]:
        print(f"  ... {name}: {rates[name][-1]:.4g} steps/s", flush=True)
  return rates


def best(rates: dict[str, list[float]]) -> dict[str, float]:
  """The best round of each runner (steps/s)."""
  return {name: max(r) for name, r in rates.items()}


def paired_ratio(rates: dict[str, list[float]], a: str, b: str) -> str:
  """Median over rounds of ``a``'s speed over ``b``'s, with its quartiles.

  Machine load on a shared VM drifts by +-15% over seconds; a ratio of runs
  timed back to back in the same round cancels most of it, where the ratio of
  best rounds does not.
  """
  r = np.asarray(rates[a]) / np.asarray(rates[b])
  q1, med, q3 = np.percentile(r, [25, 50, 75])
  return f"{med:.3f} (quartiles {q1:.3f}-{q3:.3f}, {len(r)} rounds)"


def variant_config(batch: int, variant: str):
  c = betagan_mixture_3d.get_config("5")
  c.train.batch_size = batch
  if variant == "roth_js":
    c.game.penalty = common.penalty("roth_js", 0.1)
  elif variant == "roth_js_lazy4":
    c.game.penalty = common.penalty("roth_js", 0.1, every=4)
  elif variant == "wgan_gp":
    c.game.penalty = common.penalty("wgan_gp", 10.0)
  elif variant == "ct":
    c.model.discriminator.dropout_rate = 0.2
    c.game.penalty = common.penalty("wgan_gp", 10.0)
    c.game.penalty_2 = common.penalty("ct", 2.0)
  return c


def dcgan_config(size: int, upsample: str):
  """DCGAN on random images of ``size`` pixels (speed does not depend on content)."""
  c = common.toy_config()
  c.model.generator = {"name": "dcgan", "base_features": 64, "upsample": upsample}
  c.model.discriminator = {"name": "dcgan", "base_features": 64}
  c.model.latent_shape = (100,)
  c.model.latent_prior = "normal"
  c.optim.generator = {"name": "adam", "learning_rate": 2e-4, "b1": 0.5}
  c.optim.discriminator = {"name": "adam", "learning_rate": 2e-4, "b1": 0.5}
  c.train.batch_size = 64
  channels = 1 if size == 28 else 3
  images = np.random.default_rng(0).integers(0, 256, (512, size, size, channels), np.uint8)
  source = from_arrays(f"random_{size}px", jnp.asarray(images),
                       scale=lambda x: x.astype(jnp.float32) / 127.5 - 1.0)
  return c, source


def conv_suite(rounds: int, min_time: float):
  n = FLAGS.conv_scan_steps
  for size in map(int, FLAGS.conv_sizes):
    runners = {}
    for upsample in ("transpose", "subpixel"):
      c, source = dcgan_config(size, upsample)
      runners[f"{upsample}, 1 step/call"] = (_framework_runner(c, 1, source), 1)
    c, source = dcgan_config(size, "subpixel")
    if FLAGS.conv_rolled:
      runners[f"subpixel, rolled scan {n}"] = (_framework_runner(c, n, source, unroll=1), n)
    runners[f"subpixel, unrolled scan {n}"] = (_framework_runner(c, n, source, unroll=n), n)
    rates = measure(runners, rounds=rounds, min_time=min_time)
    rate = best(rates)
    print(f"\nDCGAN-{size}, batch 64 (best round)")
    for name, r in rate.items():
      print(f"  {name:30s} {r:8.2f} steps/s")
    print(f"  sub-pixel / ConvTranspose (1 step/call): "
          f"{paired_ratio(rates, 'subpixel, 1 step/call', 'transpose, 1 step/call')}")
    print(f"  unrolled scan {n} / 1 step/call (sub-pixel): "
          f"{paired_ratio(rates, f'subpixel, unrolled scan {n}', 'subpixel, 1 step/call')}")
    print(f"  fastest: {max(rate, key=rate.get)}")


def seed_batching_suite(num_seeds: int, rounds: int, min_time: float):
  """Seed-steps/s of S seeds vmapped and unrolled against one seed."""
  c, source = dcgan_config(28, "subpixel")
  toy = variant_config(64, "plain")
  cases = (("DCGAN-28, batch 64", c, source, 4, 4), ("toy, batch 64", toy, None, 4, 1))
  for title, config, src, n, unroll in cases:
    src = src or make_source(config.data)
    runners = {"1 seed": (_framework_runner(config, n, src, unroll=unroll), n)}
    for batching in ("vmap", "unroll"):
      runners[f"{num_seeds} seeds, {batching}"] = (
          _framework_runner(config, n, src, unroll=unroll, num_seeds=num_seeds,
                            batching=batching), n * num_seeds)
    rates = measure(runners, rounds=rounds, min_time=min_time)
    print(f"\n{title}: seed-steps/s (best round)")
    for name, r in best(rates).items():
      print(f"  {name:30s} {r:8.3f}")
    for batching in ("vmap", "unroll"):
      print(f"  {num_seeds} seeds {batching} / 1 seed (per seed-step): "
            f"{paired_ratio(rates, f'{num_seeds} seeds, {batching}', '1 seed')}")
    pair = (f"{num_seeds} seeds, unroll", f"{num_seeds} seeds, vmap")
    print(f"  unroll / vmap: {paired_ratio(rates, *pair)}")


def probes_suite(rounds: int):
  """Discriminator steps/s of the probes (gradient curves, third-party D) on
  DCGAN-28: all of a segment's steps in one rolled scan against short unrolled
  calls (``steps_per_call`` / ``unroll``, what the image runs use)."""
  from gan_jax.metrics import probes  # pylint: disable=g-import-not-at-top
  c, source = dcgan_config(28, "subpixel")
  game = games.make_game(c, source)
  state = step_lib.init_state(game, 0, step_lib.make_mesh(1))
  images = jnp.asarray(source.draw(jax.random.key(1), source.arrays, 512))
  fake = jax.jit(game.sample, static_argnums=2)(state, jax.random.key(2), 512)
  if FLAGS.probe_steps < 2 or FLAGS.probe_steps % 2:
    raise app.UsageError(f"--probe_steps must be an even number >= 2 (two records of "
                         f"gradient curves); got {FLAGS.probe_steps}")
  iterations, every, n = FLAGS.probe_steps, FLAGS.probe_steps // 2, FLAGS.conv_scan_steps
  g_collections = state.model_state["generator"]

  def generate(p, z):
    return apply_model(game.generator, p, g_collections, z, train=False)[0]

  def latent(k, m):
    return jax.random.normal(k, (m, 100))

  def real(k, m):
    return jnp.take(images, jax.random.randint(k, (m,), 0, images.shape[0]), axis=0)

  chunkings = {"rolled, one call per segment": (None, 1), f"unrolled calls of {n}": (n, True)}
  runners = {}
  for label, (spc, unroll) in chunkings.items():
    runners[f"gradient curves, {label}"] = (functools.partial(
        probes.gradient_norm_curves, jax.random.key(0), generate,
        state.params["generator"], latent, real, module=game.discriminator,
        iterations=iterations, every=every, num_batches=2, batch_size=64,
        steps_per_call=spc, unroll=unroll), iterations)
    runners[f"third-party D, {label}"] = (functools.partial(
        probes.third_party_discriminator, jax.random.key(0), images, fake, images[:256],
        module=game.discriminator, sigma=0.1, steps=iterations, batch_size=64,
        steps_per_call=spc, unroll=unroll), iterations)
  # Timed call by call, not by `measure`: a rolled call takes up to a minute
  # here, and `measure` would spend one more on a warm-up.
  rates = {name: [] for name in runners}
  for name, (call, _) in runners.items():
    jax.block_until_ready(call())  # compile
  for _ in range(rounds):
    for name, (call, steps) in runners.items():
      t0 = time.perf_counter()
      jax.block_until_ready(call())
      rates[name].append(steps / (time.perf_counter() - t0))
  print(f"\nprobes on DCGAN-28, batch 64, {iterations} discriminator steps per call "
        "(best round, D steps/s; the gradient curves' include their 3 measurements)")
  for name, r in best(rates).items():
    print(f"  {name:50s} {r:8.2f}")
  for probe in ("gradient curves", "third-party D"):
    pair = (f"{probe}, unrolled calls of {n}", f"{probe}, rolled, one call per segment")
    print(f"  {probe}: unrolled / rolled: {paired_ratio(rates, *pair)}")


def main(argv):
  del argv
  rounds, min_time = (4, 0.3) if FLAGS.quick else (15, 0.5)
  print(f"jax {jax.__version__} on {jax.devices()[0].platform}, "
        f"{len(jax.devices())} device(s); interleaved rounds: {rounds} (toy), "
        f"{1 if FLAGS.quick else 3} (conv)")
  if FLAGS.suite in ("conv", "all"):
    conv_suite(rounds=1 if FLAGS.quick else 3, min_time=min_time)
  if FLAGS.suite in ("toy", "all"):
    toy_suite(rounds, min_time)
  if FLAGS.suite == "seeds":
    seeds_suite(FLAGS.num_seeds, FLAGS.seeds_overrides)
  if FLAGS.suite == "sweep":
    sweep_suite(FLAGS.num_seeds, FLAGS.sweep_values, FLAGS.sweep_steps)
  if FLAGS.suite == "seed_batching":
    seed_batching_suite(FLAGS.num_seeds, rounds=2 if FLAGS.quick else 3, min_time=min_time)
  if FLAGS.suite == "precision":
    precision_suite(rounds=1 if FLAGS.quick else 3, min_time=min_time)
  if FLAGS.suite == "multiprocess":
    multiprocess_suite(FLAGS.mp_rounds, FLAGS.mp_steps)
  if FLAGS.suite == "stream":
    stream_suite(rounds=2 if FLAGS.quick else 5)
  if FLAGS.suite == "probes":
    probes_suite(rounds=2 if FLAGS.quick else 3)


class _GrainStreamBuffer:
  """``gan_jax.data.stream.StreamBuffer``'s contract as a grain pipeline, measured
  against it (``--suite=stream``) and not used by the framework: it was slower.

  Element ``c`` of ``MapDataset.range(n).seed(seed).shuffle().repeat().batch(S)``
  holds positions ``[c S, (c + 1) S)`` of the concatenated per-epoch shuffles,
  so call ``c``'s buffer depends only on ``c`` (exact resume), read ahead by
  grain's iterator (``ReadOptions``: threads, prefetch). Needs ``pip install grain``.
  """

  def __init__(self, read, num_examples, buffer_size, *, seed=0, prefetch=4, workers=4):
    try:
      import grain  # pylint: disable=g-import-not-at-top
    except ImportError:
      raise SystemExit("--suite=stream compares against grain, which is not installed: "
                       "pip install -e '.[bench]' (or pip install grain)") from None
    self.buffer_size = buffer_size
    order = grain.MapDataset.range(num_examples).seed(seed).shuffle().repeat()
    self.index_dataset = order.batch(buffer_size, batch_fn=lambda i: np.sort(np.asarray(i)))
    self.dataset = self.index_dataset.map(
        lambda idx: dict(zip(("x", "y"), read(idx))))
    self._options = grain.ReadOptions(num_threads=min(workers, prefetch),
                                      prefetch_buffer_size=prefetch)
    self._iterator, self._next = None, -1

  def indices(self, call):
    return self.index_dataset[call]

  def __call__(self, call):
    if self._iterator is None or self._next != call:  # in-order reader: restart there
      self._iterator = iter(self.dataset[call:].to_iter_dataset(self._options))
    self._next = call + 1
    return next(self._iterator)

  def close(self):
    if self._iterator is not None:
      self._iterator.close()


def stream_suite(rounds: int):
  """Buffers/s of gan_jax's threaded stream reader and of the same contract on grain."""
  from gan_jax.data import stream  # pylint: disable=g-import-not-at-top
  n, size, calls = FLAGS.stream_examples, FLAGS.stream_buffer, FLAGS.stream_calls
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (n, 32, 32, 3), np.uint8)
  labels = rng.integers(0, 10, n).astype(np.int32)

  def reader(seconds_per_example):
    def read(idx):
      if seconds_per_example:
        time.sleep(seconds_per_example * len(idx))  # I/O wait: the GIL is released
      return images[idx], labels[idx]
    return read

  makers = {  # each with its own defaults (reads ahead, threads)
      "gan_jax threads (prefetch 2, 4 chunk threads)":
          lambda read: stream.StreamBuffer(read, n, size),
      "grain (prefetch 4, 4 threads)": lambda read: _GrainStreamBuffer(read, n, size),
  }
  print(f"\nstreaming reader: {n} examples of 32x32x3 uint8 in memory, {size} per buffer, "
        f"{calls} consecutive calls from a fresh reader per round (no consumer), {rounds} "
        "interleaved rounds")
  for us in map(float, FLAGS.stream_io_us):
    what = f"{us:g} us/example of I/O" if us else "in memory, no I/O"
    read = reader(us * 1e-6)
    rates = {name: [] for name in makers}
    for r in range(rounds):
      for name, make in makers.items():
        t0 = time.perf_counter()
        buf = make(read)
        for c in range(r * calls, (r + 1) * calls):  # another start each round
          buf(c)
        rates[name].append(calls / (time.perf_counter() - t0))
        buf.close()
    print(f"  {what}:")
    for name, rate in best(rates).items():
      print(f"    {name:52s} {rate:8.1f} buffers/s")
    a, b = makers
    print(f"    grain / gan_jax threads: {paired_ratio(rates, b, a)}")
  old, new = stream.StreamBuffer(reader(0), n, size), _GrainStreamBuffer(reader(0), n, size)
  for name, indices in (("gan_jax (NumPy permutation)", old.indices),
                        ("grain (index shuffle per example)", new.indices)):
    indices(0)
    t0 = time.perf_counter()
    for c in range(1, 9):
      indices(c)
    ms = (time.perf_counter() - t0) / 8 * 1e3
    print(f"  indices of one buffer, {name}: {ms:.2f} ms ({ms * 1e3 / size:.2f} us/example)")
  old.close()
  new.close()


def precision_suite(rounds: int, min_time: float):
  """bf16 / f32 steps/s on the DCGAN-28 WGAN-GP and the toy WGAN-GP."""
  from configs import dcgan_mnist  # pylint: disable=g-import-not-at-top
  _, source = dcgan_config(28, "subpixel")
  runners = {}
  for dtype in ("float32", "bfloat16"):
    c = dcgan_mnist.get_config("mnist,wgan_gp")
    c.model.dtype = dtype
    runners[f"DCGAN-28 WGAN-GP, {dtype}"] = (_framework_runner(c, 1, source), 1)
  n = FLAGS.scan_steps
  for dtype in ("float32", "bfloat16"):
    c = variant_config(512, "wgan_gp")
    c.model.dtype = dtype
    runners[f"toy WGAN-GP b512, {dtype}"] = (_framework_runner(c, n), n)
  rates = measure(runners, rounds=rounds, min_time=min_time)
  print("\nbfloat16 compute vs float32 (best round; a DCGAN step is 5 critic steps "
        "and 1 generator step)")
  for name, r in best(rates).items():
    print(f"  {name:34s} {r:10.2f} steps/s")
  for what in ("DCGAN-28 WGAN-GP", "toy WGAN-GP b512"):
    print(f"  {what}: bf16 / f32 steps/s: "
          f"{paired_ratio(rates, f'{what}, bfloat16', f'{what}, float32')}")


def multiprocess_suite(rounds: int, steps: int):
  """Two processes x 2 devices against one process x 4 devices, same global batch."""
  import json  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  import socket  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  import tempfile  # pylint: disable=g-import-not-at-top

  base = [sys.executable, "-m", "experiments.main", "--config=configs/wgan_2d.py:gp",
          "--config.train.batch_size=512", f"--config.train.num_steps={steps}",
          "--config.train.progress=false", "--config.train.figures=false",
          "--config.train.tensorboard=false"]
  root = tempfile.mkdtemp(prefix="gan_jax_mp_bench_")

  def env(devices):
    return dict(os.environ, JAX_PLATFORMS="cpu",
                XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")

  def run(name, processes):
    workdir = f"{root}/{name}"
    t0 = time.perf_counter()
    if processes == 1:
      subprocess.run(base + [f"--workdir={workdir}"], env=env(4), check=True,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
      with socket.socket() as sock:
        sock.bind(("localhost", 0))
        address = f"localhost:{sock.getsockname()[1]}"
      procs = [subprocess.Popen(base + [f"--workdir={workdir}",
                                        f"--coordinator_address={address}",
                                        f"--num_processes={processes}", f"--process_id={i}"],
                                env=env(4 // processes), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for i in range(processes)]
      if any(p.wait() for p in procs):
        raise RuntimeError(f"a process of {name} failed")
    wall = time.perf_counter() - t0
    with open(f"{workdir}/timings.jsonl", encoding="utf-8") as f:
      return wall, json.loads(f.readlines()[-1])["steps"]

  out = {1: [], 2: []}
  for r in range(rounds):
    for processes in (1, 2):
      out[processes].append(run(f"p{processes}_r{r}", processes))
  print(f"\nmulti-process overhead: toy WGAN-GP, global batch 512, {steps} steps, "
        f"{rounds} alternating rounds")
  for processes, label in ((1, "1 process x 4 devices"), (2, "2 processes x 2 devices")):
    walls, steps_time = zip(*out[processes])
    print(f"  {label:24s} wall {np.median(walls):6.1f} s, compiled steps "
          f"{np.median(steps_time):6.1f} s (medians)")
  ratio = [b[1] / a[1] for a, b in zip(out[1], out[2])]
  wall_ratio = [b[0] / a[0] for a, b in zip(out[1], out[2])]
  print(f"  2 processes / 1 process: compiled steps {np.median(ratio):.2f}x, "
        f"whole run {np.median(wall_ratio):.2f}x (median of per-round ratios)")


def seeds_suite(num_seeds: int, overrides: list[str]):
  """Wall time of the README's main job with ``train.num_seeds = S`` against S
  sequential single-seed runs of the same command, each a fresh process (so
  start-up, compilation, evaluation, checkpoints and figures all count)."""
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  import tempfile  # pylint: disable=g-import-not-at-top

  base = [sys.executable, "-m", "experiments.main", "--config=configs/betagan_mixture_3d.py",
          "--config.train.progress=false"] + [f"--config.{o}" for o in overrides]
  root = tempfile.mkdtemp(prefix="gan_jax_seeds_bench_")

  def timed(args, name, env=None):
    t0 = time.perf_counter()
    subprocess.run(base + [f"--workdir={root}/{name}"] + args, check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0

  def parts(name):  # the loop's own account of its wall time (timings.jsonl)
    import json  # pylint: disable=g-import-not-at-top
    with open(f"{root}/{name}/timings.jsonl", encoding="utf-8") as f:
      return json.loads(f.readlines()[-1])

  import os  # pylint: disable=g-import-not-at-top
  together = timed([f"--config.train.num_seeds={num_seeds}"], "together")
  k = FLAGS.seeds_host_devices
  sharded = None
  if k > 1:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={k}")
    sharded = timed([f"--config.train.num_seeds={num_seeds}",
                     f"--config.train.seed_devices={k}"], "sharded", env)
  alone = [timed([f"--config.seed={s}"], f"seed_{s}") for s in range(num_seeds)]
  print(f"main job{' (' + ', '.join(overrides) + ')' if overrides else ''}, {num_seeds} seeds:")
  print(f"  one {num_seeds}-seed run: {together:.1f} s")
  print(f"  {num_seeds} sequential single-seed runs: {sum(alone):.1f} s "
        f"(each {min(alone):.1f}-{max(alone):.1f} s)")
  print(f"  ratio (together / sequential): {together / sum(alone):.3f}")
  if sharded is not None:
    print(f"  one {num_seeds}-seed run over {k} host devices (train.seed_devices={k}): "
          f"{sharded:.1f} s; ratio to sequential: {sharded / sum(alone):.3f}")
  names = ("setup", "first_call", "steps", "evaluation", "checkpoints", "figures", "logging",
           "waiting", "worker_evaluation", "worker_figures")
  for label, runs in ((f"{num_seeds}-seed run", ["together"]),
                      *([(f"{num_seeds}-seed run, {k} devices", ["sharded"])] if sharded else []),
                      ("single-seed runs (mean)", [f"seed_{s}" for s in range(num_seeds)])):
    p = [parts(r) for r in runs]
    split = ", ".join(f"{n} {np.mean([q.get(n, 0.0) for q in p]):.1f} s" for n in names)
    share = np.mean([q["outside_steps_share"] for q in p])
    print(f"  {label}: {split} (worker_* overlap the steps); outside the compiled steps: "
          f"{100 * share:.1f}% of the loop")


def sweep_suite(num_seeds: int, values: list[str], steps: int):
  """Wall time of one sweep run (len(values) x num_seeds replicas) against one
  num_seeds-seed run per value, each a fresh process (as ``seeds_suite``)."""
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  import tempfile  # pylint: disable=g-import-not-at-top

  every = max(steps // 4, 500)
  base = [sys.executable, "-m", "experiments.main", "--config=configs/roth_submanifold.py:reg",
          "--config.train.progress=false", f"--config.train.num_steps={steps}",
          f"--config.train.num_seeds={num_seeds}", f"--config.train.eval_every={every}",
          f"--config.train.checkpoint_every={every}", f"--config.train.plot_every={steps}",
          f"--config.train.log_every={every}"]
  root = tempfile.mkdtemp(prefix="gan_jax_sweep_bench_")

  def timed(args, name):
    t0 = time.perf_counter()
    subprocess.run(base + [f"--workdir={root}/{name}"] + args, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0

  together = timed(["--config.train.sweep_field=game.penalty.weight",
                    f"--config.train.sweep_values=({','.join(values)},)"], "sweep")
  alone = [timed([f"--config.game.penalty.weight={v}"], f"value_{i}")
           for i, v in enumerate(values)]
  print(f"sweep of game.penalty.weight over {len(values)} values x {num_seeds} seeds, "
        f"roth_submanifold.py:reg, {steps} steps:")
  print(f"  one sweep run ({len(values) * num_seeds} replicas): {together:.1f} s")
  print(f"  {len(values)} sequential {num_seeds}-seed runs: {sum(alone):.1f} s "
        f"(each {min(alone):.1f}-{max(alone):.1f} s)")
  print(f"  ratio (sweep / sequential): {together / sum(alone):.3f}")


def toy_suite(rounds: int, min_time: float):
  n = FLAGS.scan_steps
  for batch in map(int, FLAGS.batch_sizes):
    base = variant_config(batch, "plain")
    ref_step, ref_state = reference_step_fn(batch, base)
    log_step, log_state = reference_step_fn(batch, base, losses=True)
    fresh = lambda tree: jax.tree.map(jnp.copy, tree)  # each runner donates its own state
    # Neighbours in this order are the pairs compared (same outputs).
    runners = {
        "framework, 1 step/call": (_framework_runner(base, 1), 1),
        "ref. + losses, 1 step/call": (_reference_runner(log_step, fresh(log_state), 1), 1),
        "reference, 1 step/call": (_reference_runner(ref_step, fresh(ref_state), 1), 1),
        f"framework, scan {n}": (_framework_runner(base, n), n),
        f"ref. + losses, scan {n}": (_reference_runner(log_step, fresh(log_state), n), n),
        f"framework, scan {n}, last": (_framework_runner(base, n, step_metrics="last"), n),
        f"reference, scan {n}": (_reference_runner(ref_step, fresh(ref_state), n), n),
        # Control: the same program compiled and run a second time. Its ratio to
        # the first shows how far two identical executables differ here.
        f"framework, scan {n} (again)": (_framework_runner(base, n), n),
    }
    for variant in ("roth_js", "roth_js_lazy4", "wgan_gp", "ct"):
      runners[f"{variant}, scan {n}"] = (_framework_runner(variant_config(batch, variant), n), n)
    rates = measure(runners, rounds=rounds, min_time=min_time)
    top = best(rates)
    print(f"\nbatch {batch} (best round)")
    for name, r in top.items():
      print(f"  {name:28s} {r:10.0f} steps/s")
    print("  framework/reference, same outputs (median of per-round ratios):")
    print(f"    1 step/call (all metrics / losses): "
          f"{paired_ratio(rates, 'framework, 1 step/call', 'ref. + losses, 1 step/call')}")
    print(f"    scan {n} (losses every step):      "
          f"{paired_ratio(rates, f'framework, scan {n}', f'ref. + losses, scan {n}')}")
    print(f"    scan {n} (step_metrics='last' / bare): "
          f"{paired_ratio(rates, f'framework, scan {n}, last', f'reference, scan {n}')}")
    print(f"  control, identical program compiled twice: "
          f"{paired_ratio(rates, f'framework, scan {n} (again)', f'framework, scan {n}')}")
    print(f"  reference + losses / bare, scan {n}: "
          f"{paired_ratio(rates, f'ref. + losses, scan {n}', f'reference, scan {n}')}")
    print(f"  scan fusion speed-up (framework): "
          f"{top[f'framework, scan {n}'] / top['framework, 1 step/call']:.2f}x")
    for variant in ("roth_js", "roth_js_lazy4", "wgan_gp", "ct"):
      print(f"  step time {variant:14s} / plain: "
            f"{paired_ratio(rates, f'framework, scan {n}', f'{variant}, scan {n}')}")


if __name__ == "__main__":
  app.run(main)
