"""The source papers' three probes of a trained GAN.

* :func:`third_party_discriminator` (Che et al. 2017): a fresh discriminator,
  trained with Gaussian input noise on data against generated samples, flags
  the held-out data the generator misses. :func:`third_party_report` runs it
  for several noise levels and, for toy mixtures, histograms the flagged points
  over the modes (:func:`flagged_by_mode`).
* :func:`cross_test` / :func:`cross_test_table` (Roth et al. 2017): each run's
  own discriminator classifies test data and every run's samples; the
  false-positive and false-negative rates compare the runs.
* :func:`gradient_norm_curves` / :func:`generator_gradient_diagnostics`
  (Arjovsky & Bottou 2017, Figs. 2-3): a generator is frozen and a discriminator
  trained from scratch against it; the norm of the generator's parameter
  gradient under the minimax (``log(1 - D)``) and the non-saturating
  (``-log D``) loss is recorded as the discriminator improves.

Every probe is a pure function of explicit PRNG keys and arrays (or a
``(game, state)`` pair). A probe's discriminator trains in compiled calls of
``steps_per_call`` Adam steps (``lax.scan``, rolled or unrolled), driven from
Python; the chunking changes no value beyond float rounding (rolled and
unrolled programs may fuse differently): every step's key is drawn before the
calls are cut (:func:`_run_steps`). Image probes need short unrolled calls on
XLA:CPU, where a loop around a convolution runs about 10x slower (the run's
own ``train.steps_per_call`` / ``train.unroll`` are the natural choice, as
``experiments/probe.py`` and the studies use).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax import losses
from gan_jax.games.base import apply_model, init_module
from gan_jax.models.latent import sample_latent

__all__ = [
    "GradientCurves",
    "ThirdPartyResult",
    "cross_test",
    "cross_test_table",
    "flagged_by_mode",
    "generator_gradient_diagnostics",
    "gradient_norm_curves",
    "third_party_discriminator",
    "third_party_report",
]

# Examples per forward pass when a whole evaluation set goes through a model:
# bounds memory for image sets without changing any value.
_EVAL_CHUNK = 1024


# ------------------------------------------------------------------ helpers
def _logits_fn(module: nn.Module, params, collections) -> Callable[[jax.Array], jax.Array]:
  """Inference-mode logits of a discriminator, ``[n, ...] -> [n]``."""

  def fn(x):
    return jnp.reshape(apply_model(module, params, collections, x, train=False)[0],
                       (x.shape[0],))

  return fn


def _chunked(fn: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
  """``fn`` (jitted) over ``x`` in host-side chunks of ``_EVAL_CHUNK`` examples:
  no loop primitive around a convolution (XLA:CPU's slow path)."""
  return jnp.concatenate([fn(x[i:i + _EVAL_CHUNK]) for i in range(0, x.shape[0], _EVAL_CHUNK)])


def _draw_rows(key: jax.Array, x: jax.Array, n: int) -> jax.Array:
  """``n`` rows of ``x`` drawn uniformly with replacement."""
  return jnp.take(x, jax.random.randint(key, (n,), 0, x.shape[0]), axis=0)


def _noisy(key: jax.Array, x: jax.Array, sigma) -> jax.Array:
  """Instance noise ``x + sigma * N(0, I)`` (``sigma = 0``: ``x`` itself)."""
  return x + sigma * jax.random.normal(key, x.shape, x.dtype)


def _check_positive_int(name: str, value: Any) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
    raise ValueError(f"{name} must be a positive integer; got {value!r}")
  return int(value)


def _check_sigma(sigma: Any) -> float:
  try:
    s = float(sigma)
  except (TypeError, ValueError):
    raise ValueError(f"sigma must be a number >= 0; got {sigma!r}") from None
  if not np.isfinite(s) or s < 0:
    raise ValueError(f"sigma must be a finite number >= 0; got {sigma!r}")
  return s


def _check_chunking(steps_per_call: Any, unroll: Any) -> tuple[Optional[int], Any]:
  if steps_per_call is not None:
    steps_per_call = _check_positive_int("steps_per_call", steps_per_call)
  if not isinstance(unroll, (bool, int, np.integer)) or (
      not isinstance(unroll, bool) and unroll < 1):
    raise ValueError(f"unroll must be True, False or a positive integer (lax.scan's unroll "
                     f"factor); got {unroll!r}")
  # False means 1; True stays True (full), which `_program` tells from 1.
  return steps_per_call, True if unroll is True else max(1, int(unroll))


def _chunk_runner(step: Callable, unroll) -> Callable:
  """A jitted ``(carry, keys, *args) -> (carry, losses)`` scanning ``step`` over
  ``keys``; it compiles once per number of keys (a run has at most two)."""

  @jax.jit
  def run(carry, keys, *args):
    return jax.lax.scan(lambda c, k: step(c, k, *args), carry, keys, unroll=unroll)

  return run


def _run_steps(run: Callable, carry, keys: jax.Array, steps_per_call: Optional[int], *args):
  """All of ``keys``' steps through ``run`` in calls of ``steps_per_call`` keys
  (``None``: one call); returns the carry and the losses of every step."""
  n = keys.shape[0]
  size = n if steps_per_call is None else min(steps_per_call, n)
  out = []
  for start in range(0, n, size):
    carry, loss = run(carry, keys[start:start + size], *args)
    out.append(loss)
  return carry, (out[0] if len(out) == 1 else jnp.concatenate(out))


def _discriminator_trainer(module: nn.Module, tx: optax.GradientTransformation,
                           batch_size: int, draw_real, draw_fake):
  """One discriminator Adam step as a ``lax.scan`` body over step keys.

  The carry is ``(params, collections, opt_state)``; the step's inputs are
  ``(key, sigma, real_args, fake_args)`` so that noise level and data stay
  traced arguments (one compilation serves every sigma). Real and generated
  examples go through the discriminator as one batch: batch statistics (if the
  module has any) then describe the mixture the classifier is evaluated on.
  """

  def step(carry, key, sigma, real_args, fake_args):
    params, collections, opt_state = carry
    real_key, fake_key, noise_key, drop_key = jax.random.split(key, 4)
    real = draw_real(real_key, batch_size, *real_args)
    fake = jax.lax.stop_gradient(draw_fake(fake_key, batch_size, *fake_args))
    both = _noisy(noise_key, jnp.concatenate([real, fake]), sigma)

    def loss_fn(p):
      logits, new = apply_model(module, p, collections, both, train=True,
                                rngs={"dropout": drop_key})
      real_logits, fake_logits = jnp.split(jnp.reshape(logits, (-1,)), 2)
      return losses.minimax_discriminator_loss(real_logits, fake_logits), new

    (loss, new_collections), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), new_collections, opt_state), loss

  return step


# -------------------------------------------------- third-party discriminator
class ThirdPartyResult(NamedTuple):
  """What :func:`third_party_discriminator` returns (JAX arrays).

  Attributes:
    probs: ``[n_test]`` output ``D(x)`` of the trained discriminator on each
      (clean) test example.
    flagged: ``[n_test]`` bool, ``probs > threshold``: test examples on modes
      the generator misses.
    count: number of flagged test examples (int32 scalar).
    share: ``count / n_test`` (float32 scalar).
    losses: ``[steps]`` discriminator loss of each training step.
  """
  probs: jax.Array
  flagged: jax.Array
  count: jax.Array
  share: jax.Array
  losses: jax.Array


def _draw_from(key, n, x):
  return _draw_rows(key, x, n)


def _third_party_program(module: nn.Module, steps: int, batch_size: int,
                         learning_rate: float, b1: float, steps_per_call: Optional[int],
                         unroll):
  tx = optax.adam(learning_rate, b1=b1)
  step = _discriminator_trainer(module, tx, batch_size, _draw_from, _draw_from)
  train = _chunk_runner(
      lambda c, k, sigma, real_train, fake: step(c, k, sigma, (real_train,), (fake,)), unroll)

  @jax.jit
  def start(key, real_train):
    init_key, train_key = jax.random.split(key)
    params, collections = init_module(module, init_key, real_train[:2])
    return (params, collections, tx.init(params)), jax.random.split(train_key, steps)

  @jax.jit
  def logits(carry, x):
    params, collections, _ = carry
    return _logits_fn(module, params, collections)(x)

  @jax.jit
  def finish(logits, threshold):
    probs = jax.nn.sigmoid(logits)
    flagged = probs > threshold
    count = jnp.sum(flagged, dtype=jnp.int32)
    return probs, flagged, count, count.astype(jnp.float32) / logits.shape[0]

  def run(key, sigma, threshold, real_train, fake, test):
    carry, keys = start(key, real_train)
    carry, loss = _run_steps(train, carry, keys, steps_per_call, sigma, real_train, fake)
    return ThirdPartyResult(*finish(_chunked(lambda x: logits(carry, x), test), threshold),
                            loss)

  return run


# Compiled programs by their static settings, so that a sweep over sigma (or
# threshold, or data of one shape) compiles once. Few are kept: a key holds its
# module and functions alive.
_PROGRAMS: dict[tuple, Callable] = {}
_MAX_PROGRAMS = 8


def _program(name: str, args: tuple, make: Callable[..., Callable]) -> Callable:
  """``make(*args)``, cached by ``name`` and the arguments with their types
  (``True == 1`` in Python, but a full unroll is not an unroll factor of 1)."""
  key = (name,) + tuple((type(a), a) for a in args)
  if key not in _PROGRAMS:
    while len(_PROGRAMS) >= _MAX_PROGRAMS:
      _PROGRAMS.pop(next(iter(_PROGRAMS)))
    _PROGRAMS[key] = make(*args)
  return _PROGRAMS[key]


def third_party_discriminator(key: jax.Array, real_train: jax.Array, fake: jax.Array,
                              test: jax.Array, *, module: nn.Module, sigma: float,
                              steps: int = 2000, batch_size: int = 256,
                              learning_rate: float = 1e-3, b1: float = 0.5,
                              threshold: float = 0.9, steps_per_call: Optional[int] = None,
                              unroll: int | bool = 1) -> ThirdPartyResult:
  """Flags the test examples a generator misses with a noisy third-party discriminator.

  A discriminator ``module``, freshly initialised, is trained for ``steps``
  Adam steps with the cross-entropy loss ``-E_P[log D] - E_Q[log(1 - D)]`` on
  balanced batches (``batch_size`` training examples, label 1, and as many
  generated ones, label 0, each drawn with replacement). Both inputs get
  Gaussian noise ``N(0, sigma^2 I)`` in training, so the discriminator learns
  ``D ~ p_d * N_sigma / (p_d * N_sigma + p_g * N_sigma)`` of the *smoothed*
  densities, which does not overfit the finite sample sets and is defined
  between their supports. It is then evaluated on clean held-out ``test``
  examples: where ``p_g`` vanishes ``D -> 1``, where the generator covers the
  data ``D ~ 1/2``. A test example is *flagged* when ``D > threshold``.

  ``threshold = 0.9`` (default) flags points where the smoothed data density
  is more than 9 times the model's (``D = r / (1 + r)``): far above the
  ``D ~ 1/2`` of covered data even when the generator's mode weights are off by
  a factor of 2 or 3 (``D`` = 0.67-0.75), far below what a missed mode gives.
  The noise sets the scale of what counts as missed: with ``sigma`` well
  below the width of a mode the discriminator also flags the parts of covered
  modes where the generator's density is thin (a mode too narrow or shifted);
  at about the mode width only whole missed modes remain; much larger
  ``sigma`` blurs missed modes into covered neighbours and flags fewer. The
  count as a function of ``sigma`` is the paper's report.
  (METHODS.md: Che et al.'s eq. (5) writes the ratio upside down.)

  Args:
    key: PRNG key (initialisation, batches, noise).
    real_train: ``[n, ...]`` training examples (label 1).
    fake: ``[m, ...]`` generated examples (label 0).
    test: ``[k, ...]`` held-out examples to classify.
    module: the discriminator, a flax module ``(x, *, train) -> logits [n]``
      (e.g. a run's ``game.discriminator``: same architecture, fresh weights).
    sigma: std of the Gaussian input noise in training, ``>= 0``.
    steps: Adam steps.
    batch_size: examples per class per step.
    learning_rate: Adam step size.
    b1: Adam's first-moment decay.
    threshold: flag test examples with ``D > threshold``, in ``(0, 1)``.
    steps_per_call: Adam steps per compiled call (``None``: all in one).
    unroll: ``lax.scan``'s unroll factor within a call (``True``: fully).
      Neither changes a value beyond float rounding (module docstring).

  Returns:
    A :class:`ThirdPartyResult`.

  References:
    Che, Li, Jacob, Bengio & Li, "Mode Regularized Generative Adversarial
    Networks", 2017, Sec. 4.1 (missing modes from a noisy third-party
    discriminator).
  """
  sigma = _check_sigma(sigma)
  steps = _check_positive_int("steps", steps)
  batch_size = _check_positive_int("batch_size", batch_size)
  if not 0.0 < float(threshold) < 1.0:
    raise ValueError(f"threshold must be in (0, 1); got {threshold!r}")
  real_train, fake, test = (jnp.asarray(a, jnp.float32) for a in (real_train, fake, test))
  if min(real_train.shape[0], fake.shape[0], test.shape[0]) < 1:
    raise ValueError(f"real_train, fake and test must each hold at least one example; got "
                     f"{real_train.shape[0]}, {fake.shape[0]}, {test.shape[0]}")
  if not real_train.shape[1:] == fake.shape[1:] == test.shape[1:]:
    raise ValueError(f"real_train, fake and test must share the example shape; got "
                     f"{real_train.shape}, {fake.shape}, {test.shape}")
  steps_per_call, unroll = _check_chunking(steps_per_call, unroll)
  run = _program("third_party", (module, steps, batch_size, float(learning_rate), float(b1),
                                 steps_per_call, unroll), _third_party_program)
  return run(key, jnp.float32(sigma), jnp.float32(threshold), real_train, fake, test)


def flagged_by_mode(test: Any, flagged: Any, centers: Any) -> dict[str, np.ndarray]:
  """Which mixture modes the flagged test examples fall on.

  Each test example is assigned to its nearest mode centre.

  Args:
    test: ``[k, d]`` test examples.
    flagged: ``[k]`` bool, e.g. :attr:`ThirdPartyResult.flagged`.
    centers: ``[M, d]`` mode centres (``ToyDistribution.centers``).

  Returns:
    Dict of ``[M]`` arrays: ``flagged_counts`` (flagged examples per mode),
    ``test_counts`` (test examples per mode) and ``flagged_share`` (their
    ratio; NaN for a mode without test examples).
  """
  x = np.asarray(test, np.float64)
  c = np.asarray(centers, np.float64)
  flagged = np.asarray(flagged, bool)
  if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1] or flagged.shape != x.shape[:1]:
    raise ValueError(f"need test [k, d], flagged [k] and centers [M, d]; got {x.shape}, "
                     f"{flagged.shape}, {c.shape}")
  nearest = np.argmin(np.sum(np.square(x[:, None, :] - c[None]), -1), -1)
  test_counts = np.bincount(nearest, minlength=c.shape[0])
  flagged_counts = np.bincount(nearest[flagged], minlength=c.shape[0])
  with np.errstate(invalid="ignore", divide="ignore"):
    share = np.where(test_counts > 0, flagged_counts / np.maximum(test_counts, 1), np.nan)
  return {"flagged_counts": flagged_counts, "test_counts": test_counts,
          "flagged_share": share}


def third_party_report(key: jax.Array, real_train: Any, fake: Any, test: Any, *,
                       module: nn.Module, sigmas: Sequence[float],
                       centers: Optional[Any] = None, **kwargs) -> list[dict[str, Any]]:
  """:func:`third_party_discriminator` for several noise levels, JSON-ready.

  Every sigma gets the same key, so the levels differ only in their noise.

  Args:
    key: PRNG key.
    real_train, fake, test: as in :func:`third_party_discriminator`.
    module: the discriminator architecture.
    sigmas: noise levels.
    centers: ``[M, d]`` mode centres of a toy mixture: adds the per-mode
      histograms of :func:`flagged_by_mode`.
    **kwargs: further options of :func:`third_party_discriminator`.

  Returns:
    One dict per sigma: ``sigma``, ``count``, ``share``, ``n_test``,
    ``mean_d_test`` (mean ``D`` on the test set), ``final_loss`` and, with
    ``centers``, ``flagged_counts`` / ``test_counts`` lists per mode and
    ``modes_flagged`` (modes with at least half their test examples flagged:
    the modes the generator misses).
  """
  rows = []
  for sigma in sigmas:
    r = jax.device_get(third_party_discriminator(key, real_train, fake, test, module=module,
                                                 sigma=sigma, **kwargs))
    row = {"sigma": float(sigma), "count": int(r.count), "share": float(r.share),
           "n_test": int(r.probs.shape[0]), "mean_d_test": float(np.mean(r.probs)),
           "final_loss": float(np.mean(r.losses[-max(1, len(r.losses) // 10):]))}
    if centers is not None:
      modes = flagged_by_mode(test, r.flagged, centers)
      row["flagged_counts"] = modes["flagged_counts"].tolist()
      row["test_counts"] = modes["test_counts"].tolist()
      row["modes_flagged"] = int(np.sum(np.nan_to_num(modes["flagged_share"]) >= 0.5))
    rows.append(row)
  return rows


# ------------------------------------------------------------- cross-testing
def cross_test_table(discriminators: Sequence[Callable[[Any], Any]], samples: Sequence[Any],
                     test: Any, *, logit_threshold: float = 0.0) -> dict[str, np.ndarray]:
  """False-positive and false-negative rates of each discriminator.

  An example is *classified as real* by discriminator ``i`` iff its logit
  exceeds ``logit_threshold`` (default 0, i.e. ``D = sigmoid(logit) > 0.5``).

  * ``fp[i, j]``: share of the samples of run ``j`` that discriminator ``i``
    classifies as real (rows: discriminators, columns: sample sets).
  * ``fn[i]``: share of the test data that discriminator ``i`` classifies as
    fake (``logit <= logit_threshold``).

  Args:
    discriminators: ``R`` functions ``x [n, ...] -> logits [n]``.
    samples: ``S`` generated sample arrays ``[m_j, ...]``.
    test: ``[k, ...]`` held-out data.
    logit_threshold: decision threshold on the logit (a Wasserstein critic has
      no natural one; pass e.g. the midpoint of its outputs).

  Returns:
    ``{"fp": [R, S] array, "fn": [R] array}`` of floats in ``[0, 1]``.

  References:
    Roth, Lucchi, Nowozin & Hofmann, "Stabilizing Training of Generative
    Adversarial Networks through Regularization", 2017, Sec. 4 (cross-testing).
  """
  fp = np.zeros((len(discriminators), len(samples)))
  fn = np.zeros(len(discriminators))
  for i, d in enumerate(discriminators):
    fn[i] = np.mean(np.asarray(d(test)).reshape(-1) <= logit_threshold)
    for j, s in enumerate(samples):
      fp[i, j] = np.mean(np.asarray(d(s)).reshape(-1) > logit_threshold)
  return {"fp": fp, "fn": fn}


def _game_logits(game, state, batch_statistics: bool = False) -> Callable[[Any], np.ndarray]:
  """A run's discriminator as ``x [n, ...] -> logits [n]``.

  ``batch_statistics``: as the discriminator saw its inputs in training, in
  training mode over consecutive batches of the game's batch size, each of
  one kind (the non-joint games' real and generated passes), normalised by the
  batch's own statistics (the running averages are left as they are; a short
  last batch is normalised by itself). Else in inference mode, with the
  running averages: the same for a discriminator without batch norm.
  """
  if not batch_statistics:
    discriminate = jax.jit(lambda s, x: jnp.reshape(game.discriminate(s, x), (x.shape[0],)))

    def fn(x):
      return np.asarray(_chunked(lambda c: discriminate(state, c), jnp.asarray(x, jnp.float32)))

    return fn

  params, collections = state.params["discriminator"], state.model_state["discriminator"]
  size = int(game.batch_size)
  # A fixed dropout key: the logits are a function of the inputs alone.
  batch = jax.jit(lambda x: jnp.reshape(apply_model(
      game.discriminator, params, collections, x, train=True, keep_updates=False,
      rngs={"dropout": jax.random.key(0)})[0], (x.shape[0],)))

  def by_batch(x):
    x = jnp.asarray(x, jnp.float32)
    return np.concatenate([np.asarray(batch(x[i:i + size])) for i in range(0, x.shape[0], size)])

  return by_batch


def _game_samples(game, state, key, n: int) -> np.ndarray:
  sample = jax.jit(game.sample, static_argnums=2)
  return np.concatenate([np.asarray(sample(state, jax.random.fold_in(key, i),
                                           min(_EVAL_CHUNK, n - i)))
                         for i in range(0, n, _EVAL_CHUNK)])


# The two ways a cross-test's discriminators judge (``cross_test_modes``).
D_MODES = ("batch_statistics", "inference")


def cross_test_modes(key: jax.Array, runs: Sequence[tuple[Any, Any]], test: Any, *,
                     modes: Sequence[str] = D_MODES, num_samples: int = 10_000,
                     logit_threshold: float = 0.0) -> dict[str, dict[str, Any]]:
  """:func:`cross_test` in each of ``modes``, from one draw of every run's samples.

  ``modes``: names from ``D_MODES``: ``'batch_statistics'`` judges with each
  discriminator in training mode, batch by batch of its game's batch size, one
  kind of input per batch, as it judged in training; ``'inference'`` in
  inference mode with its running averages. The two agree for a discriminator
  without batch norm; with batch norm a discriminator trained on batches of one
  kind may be calibrated only in the first (its running averages mix real and
  generated batches' moments).

  Returns:
    ``{mode: {"fp": [R, R], "fn": [R], "num_samples": int, "n_test": int}}``,
    the tables of :func:`cross_test`, computed on the same samples.
  """
  modes = tuple(modes)
  unknown = [m for m in modes if m not in D_MODES]
  if not modes:
    raise ValueError(f"no cross-test mode given; valid: {', '.join(D_MODES)}")
  if unknown:
    raise ValueError(f"unknown cross-test mode(s) {', '.join(map(repr, unknown))}; "
                     f"valid: {', '.join(D_MODES)}")
  num_samples = _check_positive_int("num_samples", num_samples)
  samples = [_game_samples(g, s, jax.random.fold_in(key, j), num_samples)
             for j, (g, s) in enumerate(runs)]
  out = {}
  for mode in modes:
    judges = [_game_logits(g, s, mode == "batch_statistics") for g, s in runs]
    table = cross_test_table(judges, samples, test, logit_threshold=logit_threshold)
    out[mode] = {**table, "num_samples": num_samples, "n_test": int(np.shape(test)[0])}
  return out


def cross_test(key: jax.Array, runs: Sequence[tuple[Any, Any]], test: Any, *,
               num_samples: int = 10_000, logit_threshold: float = 0.0,
               batch_statistics: bool = False) -> dict[str, Any]:
  """Cross-tests trained runs: each run's own discriminator against all runs' samples.

  For two runs A and B this is Roth et al.'s 2x2 table: ``fp[i, j]`` is the
  share of run ``j``'s samples that run ``i``'s discriminator takes for real
  (``D > 0.5``): rows are discriminators, columns sample sets, so the diagonal
  is each run judged by its own discriminator and ``fp[0, 1]`` is A's
  discriminator fooled by B's samples. ``fn[i]`` is the share of test data run
  ``i``'s discriminator calls fake (``D <= 0.5``). A run whose samples fool the
  other's discriminator more often, while that discriminator still accepts
  the test data, is the better generator.

  Args:
    key: PRNG key for the samples (run ``j`` draws from ``fold_in(key, j)``).
    runs: ``(game, state)`` pairs, e.g. from ``train.loop.load_checkpoint``.
    test: ``[k, ...]`` held-out data.
    num_samples: generated samples per run.
    logit_threshold: as in :func:`cross_test_table`.
    batch_statistics: judge in the ``'batch_statistics'`` mode of
      :func:`cross_test_modes`, as each discriminator judged in training; else
      (default) in ``'inference'`` mode. Both from one draw of samples:
      :func:`cross_test_modes`.

  Returns:
    ``{"fp": [R, R] array, "fn": [R] array, "num_samples": int, "n_test": int}``.

  References:
    Roth, Lucchi, Nowozin & Hofmann, "Stabilizing Training of Generative
    Adversarial Networks through Regularization", 2017, Sec. 4 (cross-testing).
  """
  mode = "batch_statistics" if batch_statistics else "inference"
  return cross_test_modes(key, runs, test, modes=(mode,), num_samples=num_samples,
                          logit_threshold=logit_threshold)[mode]


# ------------------------------------------------------ gradient diagnostics
class GradientCurves(NamedTuple):
  """What :func:`gradient_norm_curves` returns (JAX arrays, one entry per record).

  Attributes:
    iterations: ``[R]`` discriminator iterations done at each record.
    minimax_mean, minimax_std: mean and std over batches of the generator
      gradient norm under the minimax loss ``E[log(1 - D(G(z)))]``.
    non_saturating_mean, non_saturating_std: the same under ``-E[log D(G(z))]``.
    d_real, d_fake: mean ``D`` on (noisy) data and generated samples at each
      record, showing how far the discriminator has come.
  """
  iterations: jax.Array
  minimax_mean: jax.Array
  minimax_std: jax.Array
  non_saturating_mean: jax.Array
  non_saturating_std: jax.Array
  d_real: jax.Array
  d_fake: jax.Array


def gradient_norm_curves(key: jax.Array, generate: Callable[[Any, jax.Array], jax.Array],
                         g_params: Any, latent: Callable[[jax.Array, int], jax.Array],
                         real: Callable[[jax.Array, int], jax.Array], *,
                         module: nn.Module, iterations: int = 2000, every: int = 50,
                         num_batches: int = 10, batch_size: int = 256, sigma: float = 0.0,
                         learning_rate: float = 1e-3, b1: float = 0.5,
                         d_variables: Optional[tuple[Any, Any]] = None,
                         steps_per_call: Optional[int] = None,
                         unroll: int | bool = 1) -> GradientCurves:
  """Generator-gradient norms while a discriminator trains against a frozen generator.

  The generator ``x = generate(g_params, z)`` is fixed. A discriminator
  ``module`` starts from a fresh initialisation (or ``d_variables``) and takes
  ``iterations`` Adam steps on the cross-entropy loss with ``batch_size`` real
  and generated examples. Before the first step and after every ``every``
  steps, ``num_batches`` fresh latent batches each give the norm (over all
  generator parameters) of ``grad_theta L(D(G_theta(z)))`` for the minimax
  loss ``L = E[log(1 - D)]`` and the non-saturating ``L = -E[log D]``; their
  mean and std are recorded. With ``sigma > 0`` instance noise
  ``N(0, sigma^2 I)`` is added to both discriminator inputs in its training and
  to the generated samples in the gradient evaluation (Arjovsky & Bottou,
  Cor. 3.2: the noise keeps the gradient from vanishing).

  Arjovsky & Bottou's observation: as the discriminator approaches optimality
  on disjoint supports, the minimax gradient vanishes while the ``-log D``
  gradient does not (it grows, with a large variance).

  Each record is one compiled measurement; the ``every`` discriminator steps
  between records run in compiled calls of ``steps_per_call`` steps.

  Args:
    key: PRNG key.
    generate: ``(g_params, z) -> x``, differentiable in ``g_params``.
    g_params: the generator's parameters (the frozen point of evaluation).
    latent: ``(key, n) -> z``.
    real: ``(key, n) -> x``, data batches.
    module: the discriminator, ``(x, *, train) -> logits [n]``.
    iterations: discriminator steps in all (a multiple of ``every``).
    every: steps between records.
    num_batches: latent batches per record.
    batch_size: examples per batch (per class in discriminator steps).
    sigma: instance-noise std, ``>= 0``.
    learning_rate: Adam step size of the discriminator.
    b1: Adam's first-moment decay.
    d_variables: ``(params, collections)`` to start the discriminator from
      instead of a fresh initialisation (e.g. a known function in a test).
    steps_per_call: discriminator steps per compiled call (``None``: the
      ``every`` steps between two records in one call).
    unroll: ``lax.scan``'s unroll factor within a call (``True``: fully; image
      discriminators on XLA:CPU want short unrolled calls). Neither changes a
      value beyond float rounding.

  Returns:
    :class:`GradientCurves` with ``iterations // every + 1`` records.

  References:
    Arjovsky & Bottou, "Towards Principled Methods for Training Generative
    Adversarial Networks", 2017, Sec. 2.2-3, Figs. 2-3.
  """
  sigma = _check_sigma(sigma)
  steps_per_call, unroll = _check_chunking(steps_per_call, unroll)
  # Calls with the same functions (e.g. a sweep over sigma) share one program.
  run = _program("gradients", (generate, latent, real, module, iterations, every, num_batches,
                               batch_size, float(learning_rate), float(b1), steps_per_call,
                               unroll), _gradient_program)
  return run(key, jnp.float32(sigma), g_params, d_variables)


def _gradient_program(generate, latent, real, module, iterations, every, num_batches,
                      batch_size, learning_rate, b1, steps_per_call=None, unroll=1):
  """The run of :func:`gradient_norm_curves`, ``(key, sigma, g_params,
  d_variables) -> GradientCurves``: compiled pieces (start, measurement, calls
  of discriminator steps) driven from Python; one set serves every noise level."""
  iterations = int(iterations)
  every = _check_positive_int("every", every)
  num_batches = _check_positive_int("num_batches", num_batches)
  batch_size = _check_positive_int("batch_size", batch_size)
  if iterations < 0 or iterations % every:
    raise ValueError(f"iterations ({iterations}) must be a multiple >= 0 of every ({every})")
  tx = optax.adam(learning_rate, b1=b1)
  draw_fake = lambda k, n, p: generate(p, latent(k, n))
  step = _discriminator_trainer(module, tx, batch_size, lambda k, n: real(k, n), draw_fake)
  records = iterations // every

  def norms(carry, key, gp, sigma):
    d_params, collections, _ = carry
    logits = _logits_fn(module, d_params, collections)

    def one_batch(k):
      z_key, noise_key, real_key, real_noise_key = jax.random.split(k, 4)
      z = latent(z_key, batch_size)

      def fake_logits(p):
        return logits(_noisy(noise_key, generate(p, z), sigma))

      psi, vjp = jax.vjp(fake_logits, gp)
      # Both losses are functions of the same logits: one forward pass, two pullbacks.
      g_mm = vjp(jax.grad(losses.minimax_generator_loss)(psi))[0]
      g_ns = vjp(jax.grad(losses.non_saturating_generator_loss)(psi))[0]
      real_psi = logits(_noisy(real_noise_key, real(real_key, batch_size), sigma))
      return (optax.tree.norm(g_mm), optax.tree.norm(g_ns),
              jnp.mean(jax.nn.sigmoid(real_psi)), jnp.mean(jax.nn.sigmoid(psi)))

    # With any unrolling asked for (an image model), the batches are unrolled in
    # full: a partial unroll keeps a loop around the convolutions, XLA:CPU's slow
    # path. Else a rolled loop (small models compile faster so).
    _, (mm, ns, d_real, d_fake) = jax.lax.scan(
        lambda c, k: (c, one_batch(k)), None, jax.random.split(key, num_batches),
        unroll=True if unroll is True or unroll > 1 else 1)
    return (jnp.mean(mm), jnp.std(mm), jnp.mean(ns), jnp.std(ns), jnp.mean(d_real),
            jnp.mean(d_fake))

  train = _chunk_runner(lambda c, k, sigma, gp: step(c, k, sigma, (), (gp,)), unroll)
  measure = jax.jit(norms)

  @jax.jit
  def start(key, d_variables):
    init_key, run_key = jax.random.split(key)
    if d_variables is None:
      params, collections = init_module(module, init_key, real(init_key, 2))
    else:
      params, collections = d_variables
    return (params, collections, tx.init(params)), jax.random.split(run_key, records + 1)

  @jax.jit
  def segment_keys(key):
    measure_key, train_key = jax.random.split(key)
    return measure_key, jax.random.split(train_key, every)

  def run(key, sigma, gp, d_variables):
    carry, keys = start(key, d_variables)
    stats = []
    for index in range(records + 1):
      measure_key, step_keys = segment_keys(keys[index])
      stats.append(measure(carry, measure_key, gp, sigma))
      if index < records:  # the last record is not followed by training
        carry, _ = _run_steps(train, carry, step_keys, steps_per_call, sigma, gp)
    return GradientCurves(jnp.arange(records + 1) * every,
                          *(jnp.stack(column) for column in zip(*stats)))

  return run


def generator_gradient_diagnostics(key: jax.Array, game, state, *,
                                   sigmas: Sequence[float] = (0.0,),
                                   module: Optional[nn.Module] = None, iterations: int = 2000,
                                   every: int = 50, num_batches: int = 10,
                                   batch_size: int = 256, learning_rate: float = 1e-3,
                                   b1: float = 0.5, steps_per_call: Optional[int] = None,
                                   unroll: int | bool = 1) -> dict[float, GradientCurves]:
  """:func:`gradient_norm_curves` for a trained run's generator, per noise level.

  The generator is the run's (its current parameters, not an EMA copy: those
  are what its optimizer differentiates), applied in inference mode; real
  batches come from the run's data source and latents from its prior. The
  discriminator is a freshly initialised copy of the run's architecture unless
  ``module`` is given.

  Args:
    key: PRNG key.
    game: a game (``games.make_game``) with ``generator``, ``discriminator``,
      ``data``, ``latent_shape``, ``latent_prior`` and ``latent_kwargs``.
    state: its ``TrainState``.
    sigmas: instance-noise levels; every level gets the same key and the
      same compiled pieces.
    module: discriminator architecture (default ``game.discriminator``).
    iterations, every, num_batches, batch_size, learning_rate, b1,
      steps_per_call, unroll: as in :func:`gradient_norm_curves`.

  Returns:
    ``{sigma: GradientCurves}`` in the order of ``sigmas``.

  References:
    Arjovsky & Bottou, "Towards Principled Methods for Training Generative
    Adversarial Networks", 2017, Figs. 2-3.
  """
  if getattr(game, "conditional", False):
    raise NotImplementedError("gradient diagnostics of a class-conditional generator are not "
                              "implemented (they need labels for G and D)")
  g_collections = state.model_state["generator"]
  arrays = game.data.arrays

  def generate(params, z):
    return apply_model(game.generator, params, g_collections, z, train=False)[0]

  def latent(k, n):
    return sample_latent(k, n, tuple(game.latent_shape), prior=game.latent_prior,
                         **dict(game.latent_kwargs))

  def real(k, n):
    out = game.data.draw(k, arrays, n)
    return out[0] if game.data.has_labels else out

  sigmas = [_check_sigma(s) for s in sigmas]
  steps_per_call, unroll = _check_chunking(steps_per_call, unroll)
  # Built here, not cached: the functions close over this state.
  program = _gradient_program(generate, latent, real, module or game.discriminator,
                              iterations, every, num_batches, batch_size, learning_rate, b1,
                              steps_per_call, unroll)
  return {s: program(key, jnp.float32(s), state.params["generator"], None) for s in sigmas}
