"""Pieces every game shares, written once so that every game gets them.

* schedules from configs and model application with mutable collections;
* ``Perturbation``: what a discriminator sees (heat, instance noise, blur);
* ``PenaltySpec`` / ``Penalties``: up to two gradient penalties of a
  discriminator loss, weights on schedules, lazy;
* ``discriminator_loss_fn``: a discriminator's objective plus its penalties;
* the ensemble of recent discriminator samples (``init_history``,
  ``push_history``, ``ensemble_mean``) and the sampler diagnostics;
* the generator EMA (``ema_update``) and the variables a generator samples
  with (``sampling_variables``: EMA weights with batch statistics of their own),
  and the samples themselves (``generator_samples``);
* ``Conditioning`` / ``conditioning``: the class labels of a class-conditional
  game, checked against the data and the players, and how they are drawn.

A game composes these; a new component added here reaches every game.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from gan_jax import models
from gan_jax import penalties as penalties_lib
from gan_jax import perturb
from gan_jax import schedules
from gan_jax import transforms

PERTURBATIONS = ("none", "heat", "instance_noise", "blur")
PENALTY_NAMES = ("none", "roth_js", "roth_fgan", "wgan_gp", "ct", "r1", "r2", "dragan")
# How each penalty is called from (critic, critic with features, real, fake, key);
# ``real_pass`` (scores and features of the loss's own pass on real) reaches CT only.
_PENALTY_CALLS = {
    "roth_js": lambda f, ff, real, fake, key, real_pass=None, **kw: penalties_lib.roth_js_penalty(
        f, real, fake, **kw),
    "roth_fgan": lambda f, ff, real, fake, key, real_pass=None, **kw: penalties_lib.roth_fgan_penalty(
        f, fake, **kw),
    "wgan_gp": lambda f, ff, real, fake, key, real_pass=None, **kw: penalties_lib.wgan_gp_penalty(
        f, real, fake, key, **kw),
    "ct": lambda f, ff, real, fake, key, real_pass=None, **kw: penalties_lib.ct_penalty(
        ff, real, key, first_pass=real_pass, **kw),
    "r1": lambda f, ff, real, fake, key, real_pass=None, **kw: penalties_lib.r1_penalty(f, real, **kw),
    "r2": lambda f, ff, real, fake, key, real_pass=None, **kw: penalties_lib.r2_penalty(f, fake, **kw),
    "dragan": lambda f, ff, real, fake, key, real_pass=None, **kw: penalties_lib.dragan_penalty(
        f, real, key, **kw),
}
# Penalties whose published weight gamma enters the loss as gamma / 2.
_HALF_WEIGHTED = ("roth_js", "roth_fgan", "r1", "r2")
# Batches of the training batch size whose statistics an EMA generator with
# batch norm samples with (see ``sampling_variables``).
EMA_STATISTICS_BATCHES = 4
# Tag of the step key that draws those latents: far above any number of keys a
# step splits (split(k, n)[i] is fold_in(k, i)), so no training draw shares it.
_EMA_STATISTICS_TAG = 1 << 20


def label_kwargs(labels) -> dict[str, Any]:
  """Labels are passed only to conditional models, so unconditional ones need no argument."""
  return {} if labels is None else {"labels": labels}


def make_schedule(spec: Any, field: str) -> Callable[[jax.Array], jax.Array]:
  """A number is a constant schedule; a mapping names a ``schedules`` factory.

  Errors name the config ``field``.
  """
  try:
    return schedules.get_schedule(spec)
  except (TypeError, ValueError) as e:
    raise ValueError(f"{field}: {e}") from e


def split_variables(variables) -> tuple[Any, dict]:
  """Flax variables -> (params, other collections such as batch_stats)."""
  variables = dict(variables)
  return variables.pop("params"), variables


def init_module(module: nn.Module, key: jax.Array, x: jax.Array, **kwargs):
  """(params, collections) of a module initialised on ``x`` in inference mode."""
  return split_variables(module.init({"params": key, "dropout": key}, x, train=False,
                                     **kwargs))


def apply_model(module: nn.Module, params, collections: Mapping[str, Any], x, *,
                train: bool, rngs=None, keep_updates: bool = True, **kwargs):
  """Applies a module; returns ``(output, collections)``.

  In training mode mutable collections (batch statistics) are updated and
  returned when ``keep_updates``; otherwise the given collections come back
  unchanged, which is what a pass that must not move running averages wants.
  """
  variables = {"params": params, **collections}
  if train and collections:
    out, updates = module.apply(variables, x, train=True, rngs=rngs,
                                mutable=list(collections), **kwargs)
    return out, (updates if keep_updates else collections)
  return module.apply(variables, x, train=train, rngs=rngs, **kwargs), collections


@dataclasses.dataclass(frozen=True)
class Perturbation:
  """What the discriminator sees: perturbed real and generated inputs.

  Attributes:
    name: ``'none'``; ``'heat'`` (beta-GAN: only the data is heated, the level
      is beta); ``'instance_noise'`` (Gaussian noise of std level on real and
      generated inputs); ``'blur'`` (Gaussian blur of std level pixels on
      both, for images).
    kwargs: extra arguments (``low``/``high`` box for heat, ``radius`` for blur).
  """
  name: str = "none"
  kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    if self.name not in PERTURBATIONS:
      raise ValueError(f"game.perturbation.name: unknown perturbation {self.name!r}; "
                       f"valid: {', '.join(PERTURBATIONS)}")

  def check_data(self, shape: tuple[int, ...], data_name: str) -> None:
    if self.name == "blur" and len(shape) != 3:
      raise ValueError("game.perturbation.name='blur' needs images [H, W, C]; data "
                       f"{data_name!r} has example shape {shape}")

  def pair(self, key, real, fake, level, *, real_is_data: bool = True):
    """Perturbed (real, fake) for a discriminator update.

    Heat only ever touches true data: beta-GAN anneals the *target*
    distribution, so a discriminator whose real side is not data (MDGAN's D2,
    real side ``G(E(x))``) sees no heat (``real_is_data=False``). Instance
    noise and blur smooth what a discriminator sees, so they act on both sides
    of every discriminator.
    """
    kw = dict(self.kwargs)
    if self.name == "heat":
      if not real_is_data:
        return real, fake
      return perturb.heated_sample(key, real, level, **kw), fake
    if self.name == "instance_noise":
      real_key, fake_key = jax.random.split(key)
      return (perturb.instance_noise(real_key, real, level),
              perturb.instance_noise(fake_key, fake, level))
    if self.name == "blur":
      return perturb.gaussian_blur(real, level, **kw), perturb.gaussian_blur(fake, level, **kw)
    return real, fake

  def fake(self, key, fake, level):
    """The perturbation generated samples see in a generator update."""
    if self.name == "instance_noise":
      return perturb.instance_noise(jax.random.split(key)[1], fake, level)
    if self.name == "blur":
      return perturb.gaussian_blur(fake, level, **dict(self.kwargs))
    return fake


# --------------------------------------------------------------- conditioning
@dataclasses.dataclass(frozen=True)
class Conditioning:
  """Which class labels a game's players see, and how they are drawn.

  A game is class-conditional when its generator and discriminator(s) are
  built with ``num_classes = K > 0``; then every generator call is
  ``G(z, y)`` and every discriminator call ``D(x, y)``:

  * real examples carry the labels drawn with them (``draw``);
  * a discriminator update generates the real batch's classes,
    ``G(z, y_real)``, so both sides of the discriminator (and the penalties,
    which close over one batch of labels) see the same labels;
  * a generator update draws the classes it generates as real labels, from a
    batch of its own: they follow the data's class frequencies;
  * sampling for evaluation draws classes uniformly from ``[0, K)`` unless
    given (``uniform``).

  Attributes:
    num_classes: ``K``; 0 for an unconditional game.
    encoder: whether the encoder of an encoder game takes labels, ``E(x, y)``
      (an encoder built with ``num_classes = K``); otherwise it codes ``x``
      alone.
  """
  num_classes: int = 0
  encoder: bool = False

  @property
  def conditional(self) -> bool:
    return self.num_classes > 0

  def draw(self, data, key, arrays, n: int):
    """A real batch ``(x, labels)``, labels None unless the game is conditional."""
    out = data.draw(key, arrays, n)
    if not data.has_labels:
      return out, None
    return out if self.conditional else (out[0], None)

  def generated_labels(self, data, key, arrays, n: int):
    """Classes a generator update generates: the labels of a real batch (None if unconditional)."""
    return self.draw(data, key, arrays, n)[1] if self.conditional else None

  def uniform(self, key, n: int):
    """Classes uniform over ``[0, K)`` (for sampling), None if unconditional."""
    if not self.conditional:
      return None
    return jax.random.randint(key, (n,), 0, self.num_classes)


def _model_classes(module: nn.Module) -> int | None:
  """A module's ``num_classes``, or None if it has no such field (takes no labels)."""
  value = getattr(module, "num_classes", None)
  return None if value is None else int(value)


def label_takers(registry: Mapping[str, type]) -> str:
  """Names of the registered modules that take class labels (a ``num_classes`` field)."""
  names = [n for n, cls in registry.items() if "num_classes" in models.module_fields(cls)[0]]
  return ", ".join(names) or "none"


def conditioning(data, generator: nn.Module, discriminator: nn.Module,
                 encoder: nn.Module | None = None) -> Conditioning:
  """The ``Conditioning`` of a game, its players checked against each other and the data.

  The generator decides: ``model.generator.num_classes = K > 0`` makes a
  conditional game, which needs a labelled data set of ``K`` classes and a
  discriminator of ``K`` classes. An encoder takes labels only if it is built
  with ``num_classes`` (then equal to ``K``); an encoder without that field
  codes ``x`` alone and the labels reach the reconstruction through
  ``G(E(x), y)``.

  Raises:
    ValueError: naming the mismatch and the valid choices.
  """
  k_g, k_d = _model_classes(generator), _model_classes(discriminator)
  k_e = None if encoder is None else _model_classes(encoder)
  for field, module, k, other, registry in (
      ("generator", generator, k_g, k_d, models.GENERATORS),
      ("discriminator", discriminator, k_d, k_g, models.DISCRIMINATORS)):
    if k is None and other:
      raise ValueError(
          f"model.{field} ({type(module).__name__}) takes no class labels (it has no "
          f"num_classes field), so it cannot play in a conditional game "
          f"(num_classes={other}); valid: a {field} that takes labels "
          f"({label_takers(registry)}), or num_classes=0 for an unconditional game")
  k_g, k_d = k_g or 0, k_d or 0
  if not k_g:
    if k_d:
      raise ValueError(
          f"model.discriminator.num_classes={k_d} but model.generator.num_classes=0: the "
          f"generator decides whether a game is conditional; set "
          f"model.generator.num_classes={k_d} (conditional) or "
          "model.discriminator.num_classes=0 (unconditional)")
    if k_e:
      raise ValueError(
          f"model.encoder.num_classes={k_e} in an unconditional game "
          "(model.generator.num_classes=0); set it to 0, or make the game conditional")
    return Conditioning()
  if not data.has_labels:
    raise ValueError(f"model.generator.num_classes > 0 makes a conditional game, but data "
                     f"{data.name!r} has no labels; set num_classes to 0, or use a labelled "
                     "data set")
  if data.num_classes and k_g != data.num_classes:
    raise ValueError(f"model.generator.num_classes={k_g} but data {data.name!r} has "
                     f"{data.num_classes} classes; valid: {data.num_classes} (conditional) "
                     "or 0 (unconditional)")
  if k_d != k_g:
    raise ValueError("a conditional game needs model.discriminator.num_classes equal to "
                     f"model.generator.num_classes ({k_g}); got {k_d}")
  if k_e and k_e != k_g:
    raise ValueError(f"model.encoder.num_classes={k_e} must equal "
                     f"model.generator.num_classes ({k_g}), or be 0 (E codes x alone)")
  return Conditioning(num_classes=k_g, encoder=bool(k_e))


# ------------------------------------------------------------------ penalties
@dataclasses.dataclass(frozen=True)
class PenaltySpec:
  """One gradient penalty of a discriminator loss.

  Attributes:
    name: one of ``PENALTY_NAMES`` except 'none'.
    weight: a number or schedule mapping: gamma for Roth/R1/R2 (the loss adds
      ``gamma / 2 * Omega``), lambda for WGAN-GP/CT/DRAGAN (``lambda * Omega``).
    every: lazy period: applied every ``every`` discriminator steps with its
      weight multiplied by ``every``.
    kwargs: extra arguments of the penalty function.
  """
  name: str
  weight: Any = 0.0
  every: int = 1
  kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  field: str = "game.penalty"  # where it came from in the config, for messages


def _check_penalty_kwargs(spec: PenaltySpec) -> None:
  """Unknown or missing penalty arguments fail at configuration, not at compile time."""
  params = inspect.signature(penalties_lib.PENALTIES[spec.name]).parameters
  options = {n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY
             and n not in ("has_aux", "first_pass")}  # both set by the game
  unknown = sorted(set(spec.kwargs) - options)
  if unknown:
    raise ValueError(f"{spec.field}.kwargs: unknown argument(s) {unknown} for penalty "
                     f"{spec.name!r}; valid: {', '.join(sorted(options)) or 'none'}")
  missing = sorted(n for n in options if params[n].default is inspect.Parameter.empty
                   and n not in spec.kwargs)
  if missing:
    raise ValueError(f"{spec.field}.kwargs: penalty {spec.name!r} needs {missing}")


class Penalties:
  """The gradient penalties of one discriminator loss (any game, any discriminator).

  Each penalty sees the inputs the discriminator's loss sees (after the
  perturbation): its ``real`` side is whatever that discriminator is told is
  real (data for an ordinary discriminator, ``G(E(x))`` for MDGAN's D2).
  Weights are evaluated at the iteration; laziness counts discriminator steps.
  """

  def __init__(self, specs: tuple[PenaltySpec, ...] = ()):
    for spec in specs:
      if spec.name not in PENALTY_NAMES[1:]:
        raise ValueError(f"{spec.field}.name: unknown penalty {spec.name!r}; "
                         f"valid: {', '.join(PENALTY_NAMES)}")
      if not isinstance(spec.every, int) or spec.every < 1:
        raise ValueError(f"{spec.field}.every must be a positive integer, got {spec.every!r}")
      _check_penalty_kwargs(spec)
    self.specs = tuple(specs)
    self.schedules = tuple(make_schedule(p.weight, f"{p.field}.weight") for p in self.specs)

  def __bool__(self):
    return bool(self.specs)

  @property
  def shares_real_pass(self) -> bool:
    """Whether a penalty reuses the loss's pass on real data (CT, applied every step)."""
    return any(spec.name == "ct" and spec.every == 1 for spec in self.specs)

  def __call__(self, critic, critic_features, real, fake, key, *, d_step, iteration,
               real_pass=None):
    """(total weighted value, metrics); penalty ``j`` draws with ``fold_in(key, j)``.

    ``real_pass``: ``(scores, features)`` of the discriminator loss's own pass on
    ``real`` (its dropout mask independent of ``key``), which CT takes as its
    first perturbed pass, as CT-GAN's implementation does.
    """
    total_raw = total_weighted = 0.0
    aux = {}
    for j, (spec, schedule) in enumerate(zip(self.specs, self.schedules)):
      shared = real_pass if spec.every == 1 else None
      fn = (lambda spec=spec, k=jax.random.fold_in(key, j), shared=shared:
            _PENALTY_CALLS[spec.name](critic, critic_features, real, fake, k,
                                      real_pass=shared, **dict(spec.kwargs)))
      weight = schedule(iteration)
      if spec.name in _HALF_WEIGHTED:
        weight = weight / 2
      if spec.every == 1:
        raw, diag = fn()
        weighted = weight * raw
      else:
        # Lazy: the penalty (and its double backprop) only runs every k-th step.
        scaled, diag = penalties_lib.lazy_penalty(fn, d_step, every=spec.every, weight=1.0)
        weighted, raw = weight * scaled, scaled / spec.every
      total_raw, total_weighted = total_raw + raw, total_weighted + weighted
      aux[spec.name] = raw
      for k, v in diag.items():
        if k != "d_aux" and jnp.ndim(v) == 0:
          aux[f"{spec.name}_{k}"] = v
    if self.specs:
      aux["penalty"], aux["penalty_weighted"] = total_raw, total_weighted
    return total_weighted, aux

  def weight_metrics(self, iteration) -> dict[str, jax.Array]:
    """Each penalty's configured weight at ``iteration`` (gamma itself, not gamma / 2)."""
    out = {}
    for i, (spec, schedule) in enumerate(zip(self.specs, self.schedules)):
      weight = jnp.asarray(schedule(iteration), jnp.float32)
      out[f"{spec.name}_weight"] = weight
      if i == 0:
        out["penalty_weight"] = weight  # the main penalty's (e.g. Roth's gamma)
    return out


def discriminator_loss_fn(objective, penalties: Penalties, logits_fn, critic_fn, real_in,
                          fake_in, *, drop_key, pen_key, d_step, iteration):
  """``params -> (loss, (metrics, collections))`` of any discriminator update.

  Args:
    objective: a ``losses.Objective``.
    penalties: the ``Penalties`` of this discriminator.
    logits_fn: ``(params, features) -> (real logits, fake logits, updated
      collections, real features or None)``, the loss passes (the game decides on
      batches, labels, dropout masks). Asked for features when a penalty shares
      the real pass (CT); ``None`` when that pass cannot be shared.
    critic_fn: ``(params, dropout key, features) -> (x -> logits)``, the
      discriminator as the penalties differentiate it (statistics not kept).
    real_in, fake_in: the inputs the loss passes see (perturbed).
    drop_key: dropout key; the penalties' critic uses ``fold_in(drop_key, 2)``,
      the one with features (CT-GAN) ``fold_in(drop_key, 3)``.
    pen_key: the penalties' key.
    d_step: the discriminator step counter (for lazy penalties).
    iteration: the game's iteration (for the weight schedules).
  """

  def loss_fn(params):
    real_logits, fake_logits, upd, real_features = logits_fn(params,
                                                             penalties.shares_real_pass)
    loss = objective.discriminator(real_logits, fake_logits)
    aux = {"logit_real": jnp.mean(real_logits), "logit_fake": jnp.mean(fake_logits),
           "d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
           "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits)), "d_loss": loss}
    if penalties:
      weighted, pen_aux = penalties(
          critic_fn(params, jax.random.fold_in(drop_key, 2), False),
          critic_fn(params, jax.random.fold_in(drop_key, 3), True),
          real_in, fake_in, pen_key, d_step=d_step, iteration=iteration,
          real_pass=None if real_features is None else (real_logits, real_features))
      loss = loss + weighted
      aux.update(pen_aux)
    return loss, (aux, upd)

  return loss_fn


# ------------------------------------------------------------------- ensemble
def init_history(params, k: int):
  """The last ``k`` samples of a discriminator, all equal to ``params`` at the start."""
  return jax.tree.map(lambda p: jnp.broadcast_to(p, (k, *p.shape)), params)


def push_history(history, params):
  """Newest sample first; the oldest drops out."""
  return jax.tree.map(lambda h, p: jnp.concatenate([p[None], h[:-1]], axis=0), history, params)


def ensemble_mean(member_loss: Callable, params, history):
  """``(mean loss, logits)`` of ``member_loss(d_params) -> (loss, logits)``.

  Without a history (ensemble 0 or 1) the current discriminator alone; with
  one, the mean of the members' losses (the generator is trained against the
  ensemble of recent samples of a Langevin-trained discriminator). With any
  other optimizer the members are its recent iterates, a history of past
  discriminators, which is still meaningful, so no game refuses it.
  """
  if history is None:
    return member_loss(params)
  losses_, logits = jax.vmap(member_loss)(history)
  return jnp.mean(losses_), logits


def sampler_metrics(opt_state: Any, prefix: str = "d") -> dict[str, jax.Array]:
  """A Langevin-trained discriminator's last injected noise level and its ratio to the drift.

  Empty for an optimizer without a sampler (``transforms.injected_noise_std``
  and ``transforms.noise_to_drift_ratio`` find the sampler in any chain).
  """
  noise = transforms.injected_noise_std(opt_state)
  if noise is None:
    return {}
  return {f"{prefix}_noise_std": noise,
          f"{prefix}_noise_to_drift": transforms.noise_to_drift_ratio(opt_state)}


# ------------------------------------------------------------------------ EMA
def check_game_numbers(*, n_critic=1, n_gen=1, batch_size=1, ema_decay=0.0,
                       ensemble=0) -> None:
  """The settings every game shares, checked with the config field in the message."""
  for field, value in (("game.n_critic", n_critic), ("game.n_gen", n_gen),
                       ("train.batch_size", batch_size)):
    if not isinstance(value, int) or value < 1:
      raise ValueError(f"{field} must be a positive integer, got {value!r}")
  if not 0.0 <= ema_decay < 1.0:
    raise ValueError(f"game.ema_decay must be in [0, 1), got {ema_decay}")
  if not isinstance(ensemble, int) or ensemble < 0:
    raise ValueError(f"game.ensemble must be an integer >= 0, got {ensemble}")


def ema_update(extra: Mapping[str, Any], g_params, decay: float) -> dict[str, Any]:
  """``extra`` with its ``ema_generator`` moved towards ``g_params`` (if kept)."""
  extra = dict(extra)
  if "ema_generator" in extra:
    extra["ema_generator"] = optax.incremental_update(g_params, extra["ema_generator"],
                                                      step_size=1.0 - decay)
  return extra


def standing_statistics(module: nn.Module, params, collections: Mapping[str, Any], x,
                        **kwargs) -> dict[str, Any]:
  """Batch statistics of ``module`` with ``params`` over the inputs ``x``.

  What batch norm's running averages would converge to if these weights were
  trained on no further and saw batches like ``x``: the mean and variance each
  layer computes over ``x`` in training mode. Flax updates a running average
  as ``new = m * old + (1 - m) * batch``; two passes from ``old = 0`` and
  ``old = 1`` give ``batch = new_0 / (1 - (new_1 - new_0))`` for any momentum
  ``m`` (training-mode outputs never read the running averages, so both passes
  see the same batch statistics).
  """
  if "batch_stats" not in collections:
    return dict(collections)
  stats = collections["batch_stats"]

  def pass_from(value):
    start = {**collections, "batch_stats": jax.tree.map(lambda s: jnp.full_like(s, value),
                                                        stats)}
    return module.apply({"params": params, **start}, x, train=True,
                        mutable=["batch_stats"], **kwargs)[1]["batch_stats"]

  new_0, new_1 = pass_from(0.0), pass_from(1.0)
  batch = jax.tree.map(lambda a, b: a / (1.0 - (b - a)), new_0, new_1)
  return {**collections, "batch_stats": batch}


def sampling_variables(module: nn.Module, state, *, ema: bool, latent_fn: Callable,
                       batch_size: int, collections_name: str = "generator",
                       label_fn: Callable | None = None):
  """``(params, collections, uses_ema)`` a generator samples with.

  With an EMA of the generator (``state.extra['ema_generator']``) and ``ema``,
  the EMA weights; the live generator's batch statistics belong to the live
  weights, not to their average, so an EMA generator with batch norm samples
  with statistics recomputed from its own outputs: those of
  ``EMA_STATISTICS_BATCHES * batch_size`` latents drawn from the state's step
  key (``standing_statistics``). Recomputing at sampling time (rather than
  keeping an EMA of statistics beside the weights) gives statistics that
  belong exactly to the weights sampled with, costs nothing during training,
  and depends on the state alone, so every evaluation of one checkpoint uses
  the same statistics.

  Args:
    module: the generator.
    state: the ``TrainState``.
    ema: use the EMA weights if kept.
    latent_fn: ``(key, n) -> z``, the game's latent distribution.
    batch_size: the training batch size.
    collections_name: the player whose collections the live generator uses.
    label_fn: ``(key, n) -> labels`` for a conditional generator, else None.
  """
  params = state.extra.get("ema_generator") if ema else None
  collections = state.model_state[collections_name]
  if params is None:
    return state.params["generator"], collections, False
  if "batch_stats" in collections:
    key = jax.random.fold_in(jax.random.fold_in(state.rng, state.step), _EMA_STATISTICS_TAG)
    z_key, label_key = jax.random.split(key)
    n = EMA_STATISTICS_BATCHES * batch_size
    kwargs = {} if label_fn is None else {"labels": label_fn(label_key, n)}
    collections = standing_statistics(module, params, collections, latent_fn(z_key, n),
                                      **kwargs)
  return params, collections, True


def generator_samples(module: nn.Module, state, key: jax.Array, n: int, *, ema: bool,
                      latent_fn: Callable, batch_size: int, conditioning: Conditioning,
                      labels: jax.Array | None = None) -> jax.Array:
  """``n`` samples of a game's generator in inference mode, any game.

  ``z`` is drawn with ``split(key)[0]``; a conditional generator's classes
  with ``split(key)[1]``, uniformly over ``[0, K)``, unless ``labels`` are
  given. The variables are ``sampling_variables``' (the EMA weights if kept
  and ``ema``, with batch statistics of their own).
  """
  z_key, label_key = jax.random.split(key)
  label_fn = conditioning.uniform if conditioning.conditional else None
  params, collections, _ = sampling_variables(module, state, ema=ema, latent_fn=latent_fn,
                                              batch_size=batch_size, label_fn=label_fn)
  if labels is None:
    labels = conditioning.uniform(label_key, n)
  return apply_model(module, params, collections, latent_fn(z_key, n), train=False,
                     **label_kwargs(labels))[0]
