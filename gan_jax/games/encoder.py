"""Encoder-based games of Che et al. (2017): Reg-GAN (G, E, D) and MDGAN (G, E, D1, D2).

Reg-GAN: the discriminator is an ordinary GAN discriminator (data vs ``G(z)``);
generator and encoder minimize (with the sign of the paper's Appendix A)

  T_G = -E_z[log D(G(z))] + E_x[lambda1 ||x - G(E(x))||^2 - lambda2 log D(G(E(x)))]
  T_E =                     E_x[lambda1 ||x - G(E(x))||^2 - lambda2 log D(G(E(x)))]

Since ``T_E`` is the part of ``T_G`` that depends on ``E``, one gradient of
``T_G`` w.r.t. ``(G, E)`` gives both players' updates.

MDGAN, per iteration: a manifold step (D1 tells ``x`` from ``G(E(x))``; G and E
minimize ``-lambda log D1(G(E(x))) + ||x - G(E(x))||^2``), then a diffusion step
(D2 tells ``G(E(x))``, as real, from ``G(z)``; G minimizes ``-log D2(G(z))``).

Both games take every component of the adversarial game, from the pieces in
``games.base`` that all games share:

* objective: the discriminators' losses and the GAN term (Reg-GAN's
  ``-log D(G(z))``, MDGAN's diffusion term) are the configured objective's; the
  mode terms (Reg-GAN's ``-log D(G(E(x)))``, MDGAN's ``-log D1(G(E(x)))``)
  are its *non-saturating* generator loss: ``-log D`` as in the paper for
  ``minimax`` and ``non_saturating``, ``-f`` for a critic, ``-T`` for an f-GAN
  (a saturating mode term would vanish exactly where a reconstruction is
  rejected, where it is meant to pull).
* penalties (``game.penalty``, ``game.penalty_2``) on *every* discriminator,
  each on that discriminator's own (real, fake) inputs: for MDGAN's D2 the real
  side is ``G(E(x))``. Weights follow their schedules at the iteration; lazy
  periods count each discriminator's own updates.
* perturbations. Decision: heat (beta-GAN's annealing of the *target*) only
  ever touches true data: the data Reg-GAN's D and MDGAN's D1 see as real.
  D2's real side ``G(E(x))`` is the model's own reconstruction, not data, so
  it is not heated; ``x`` in the reconstruction error is never heated either.
  Instance noise and blur smooth what a discriminator sees, so they act on
  both sides of every discriminator, and on the generated inputs (``G(z)``,
  ``G(E(x))``) of the generator's adversarial terms.
* optimizers: any, per player (each discriminator its own, so Langevin
  samplers draw independent noise); ``n_critic`` updates of each
  discriminator per iteration (per step for MDGAN) and ``n_gen`` generator
  updates; an ensemble of each
  discriminator's last ``k`` samples that every adversarial term of the
  generator averages over; an EMA of the generator, updated after every
  generator update (MDGAN updates G twice per iteration: manifold and
  diffusion).

Batch norm (paper, Appendix B): ``G(z)`` and ``G(E(x))`` batches keep separate
batch statistics with shared BN parameters: the generator's running averages
for reconstructions live under ``model_state['generator_recon']``.

Class-conditional games (``num_classes = K > 0`` in generator and
discriminator; ``base.Conditioning``, shared with the adversarial game): real
data carries its labels ``y_x`` everywhere it goes, and every generated batch
is generated with labels the discriminator then also sees:

* Reg-GAN's D scores ``(x, y_x)`` against ``(G(z, y_x), y_x)``; the G/E update
  minimizes ``-log D(G(z, y), y) + lambda1 ||x - G(E(x), y_x)||^2
  - lambda2 log D(G(E(x), y_x), y_x)``, the classes ``y`` of ``G(z, .)``
  being the labels of a real batch of their own (the data's class
  frequencies), as in the adversarial game's generator update.
* MDGAN's D1 scores ``(x, y_x)`` against ``(G(E(x), y_x), y_x)``, the manifold
  update uses the same pairs; D2 scores ``(G(E(x), y_x), y_x)`` as real
  against ``(G(z, y_x), y_x)``, and the diffusion update generates
  ``G(z, y)`` with the labels ``y`` of its step's real batch.
* Decision, the encoder: the registered encoders take no labels, so ``E``
  codes ``x`` alone and the class reaches the reconstruction through
  ``G(E(x), y_x)``: ``E`` need only code what the label does not say. An
  encoder module built with ``num_classes = K`` would get ``E(x, y_x)``.
* ``sample`` draws classes uniformly unless given; ``reconstruct`` and
  ``discriminate`` take ``x``'s labels.

Keys (``step_key = fold_in(state.rng, state.step)``): Reg-GAN discriminator
update ``i``: ``split(fold_in(step_key, 1, i), 3)`` = (data, latent, d);
generator update ``j``: ``split(k, 5)`` = (data, latent, perturbation,
dropout, labels of ``G(z)``) with ``k = fold_in(step_key, 2)``. MDGAN
manifold step ``split(fold_in(step_key, 1), 4)`` = (data, d, perturbation,
dropout), diffusion step ``split(fold_in(step_key, 2), 5)`` = (data, latent,
d, perturbation, dropout), its generator update taking the labels of the
batch its data key draws. In a step of key ``k`` (Reg-GAN's generator
updates, both players of MDGAN) a player's update ``i`` takes its slots of
``split(repeat_key(k, i), n)``, where ``repeat_key(k, 0) = k`` and
``repeat_key(k, i) = fold_in(k, 16 + i)`` (fresh batches), so the first
discriminator and generator updates of an MDGAN step share one batch.
A discriminator key ``d`` splits into (perturbation, dropout, penalty).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from gan_jax import losses
from gan_jax.data.source import DataSource
from gan_jax.games import base
from gan_jax.games.base import (PenaltySpec, Perturbation, apply_model, init_module,
                                label_kwargs, make_schedule)
from gan_jax.models.latent import sample_latent
from gan_jax.games.state import TrainState, step_key

# A repeated generator update j > 0 folds this plus j into its step's key: above
# the step's own splits (at most 5), so no key is drawn twice.
_REPEAT_TAG = 16


def reconstruction_error(x: jax.Array, x_rec: jax.Array) -> jax.Array:
  """Mean over the batch of the squared L2 distance ``||x - G(E(x))||^2``."""
  diff = (x - x_rec).reshape(x.shape[0], -1)
  return jnp.mean(jnp.sum(diff * diff, axis=-1))


def mode_objective(loss: str, loss_kwargs: Mapping[str, Any]) -> losses.Objective:
  """The objective whose generator loss is the non-saturating form of ``loss``."""
  if loss == "minimax":
    return losses.get_objective("non_saturating")
  if loss.startswith("fgan_"):
    return losses.get_objective(loss, **{**dict(loss_kwargs), "non_saturating": True})
  return losses.get_objective(loss, **dict(loss_kwargs))


def _repeat_key(key, j):
  if isinstance(j, int):
    return key if j == 0 else jax.random.fold_in(key, _REPEAT_TAG + j)
  # A traced index (a critic loop under lax.scan): the same keys, selected.
  return jnp.where(j == 0, key, jax.random.fold_in(key, _REPEAT_TAG + j))


def _critic_updates(state, n: int, update):
  """``update(state, i) -> (state, metrics)`` for ``i = 0 .. n-1``; the last metrics.

  More than one update runs as a rolled ``lax.scan``, as the adversarial game's
  critic loop: the program holds one copy of the update (with a penalty's
  double backprop, most of the step) instead of ``n``. The keys and operations
  are those of a Python loop; the values agree to float32 rounding, as XLA
  compiles a loop body otherwise than unrolled copies (so a checkpoint written
  by a version with the Python loop resumes equal to rounding, not bit for bit).
  """
  if n == 1:
    return update(state, 0)
  state, stacked = jax.lax.scan(update, state, jnp.arange(n))
  return state, jax.tree.map(lambda v: v[-1], stacked)


@dataclasses.dataclass
class _EncoderGameBase:
  """Players, data and the pieces both encoder games share.

  Attributes:
    generator, encoder, discriminator: Flax modules (every discriminator of
      the game is an instance of ``discriminator`` with its own parameters).
    data: the ``DataSource``.
    g_tx, e_tx: generator and encoder optax transformations; d_txs: one per
      discriminator.
    latent_shape, latent_prior, latent_kwargs: the generator's input.
    batch_size: global batch size of each update.
    loss, loss_kwargs: objective (``losses.OBJECTIVES``) and its arguments.
    perturbation, perturbation_level, perturbation_kwargs: as in the
      adversarial game (heat on true data only, see the module docstring).
    penalties: gradient penalties added to every discriminator's loss.
    n_critic: updates of each discriminator per iteration (MDGAN: per step);
      n_gen: generator updates (MDGAN: per step).
    ema_decay: decay of the generator EMA (0 disables it).
    ensemble: recent samples of each discriminator the generator's
      adversarial terms average over (0 or 1: the current one).
  """
  generator: nn.Module
  encoder: nn.Module
  discriminator: nn.Module
  data: DataSource
  g_tx: optax.GradientTransformation
  e_tx: optax.GradientTransformation
  d_txs: tuple[optax.GradientTransformation, ...]
  latent_shape: tuple[int, ...]
  latent_prior: str = "uniform"
  latent_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  batch_size: int = 64
  loss: str = "non_saturating"
  loss_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  perturbation: str = "none"
  perturbation_level: Any = 0.0
  perturbation_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  penalties: tuple[PenaltySpec, ...] = ()
  n_critic: int = 1
  n_gen: int = 1
  ema_decay: float = 0.0
  ensemble: int = 0

  _discriminators: tuple[str, ...] = ("discriminator",)

  def __post_init__(self):
    if len(self.d_txs) != len(self._discriminators):
      raise ValueError(f"{type(self).__name__} needs one optimizer per discriminator "
                       f"{self._discriminators}, got {len(self.d_txs)}")
    # Each discriminator its own transformation (and so its own sampler noise).
    self.d_tx = dict(zip(self._discriminators, self.d_txs))
    try:
      self.objective = losses.get_objective(self.loss, **dict(self.loss_kwargs))
      self.mode_objective = mode_objective(self.loss, self.loss_kwargs)
    except (TypeError, ValueError) as e:
      raise ValueError(f"game.loss: {e}") from e
    base.check_game_numbers(n_critic=self.n_critic, n_gen=self.n_gen,
                            batch_size=self.batch_size, ema_decay=self.ema_decay,
                            ensemble=self.ensemble)
    self.penalty_terms = base.Penalties(tuple(self.penalties))
    self.perturb = Perturbation(self.perturbation, dict(self.perturbation_kwargs))
    self.perturb.check_data(tuple(self.data.shape), self.data.name)
    self.level_schedule = make_schedule(self.perturbation_level, "game.perturbation.level")
    self.conditioning = base.conditioning(self.data, self.generator, self.discriminator,
                                          encoder=self.encoder)
    self.conditional = self.conditioning.conditional

  @staticmethod
  def history_name(name: str) -> str:
    """Where ``state.extra`` keeps a discriminator's recent samples."""
    return "d_history" if name == "discriminator" else f"{name}_history"

  def init(self, rng: jax.Array) -> TrainState:
    keys = jax.random.split(rng, 3 + len(self._discriminators))
    z = jnp.zeros((2, *self.latent_shape), jnp.float32)
    x = jnp.zeros((2, *self.data.shape), jnp.float32)
    lab = label_kwargs(jnp.zeros((2,), jnp.int32) if self.conditional else None)
    params, model_state, opt_state, extra = {}, {}, {}, {}
    params["generator"], model_state["generator"] = init_module(self.generator, keys[0], z,
                                                                **lab)
    # A separate copy: state buffers are donated, and a buffer may appear only once.
    model_state["generator_recon"] = jax.tree.map(jnp.copy, model_state["generator"])
    params["encoder"], model_state["encoder"] = init_module(
        self.encoder, keys[1], x, **(lab if self.conditioning.encoder else {}))
    for name, key in zip(self._discriminators, keys[3:]):
      params[name], model_state[name] = init_module(self.discriminator, key, x, **lab)
      if self.ensemble > 1:
        extra[self.history_name(name)] = base.init_history(params[name], self.ensemble)
    opt_state["generator"] = self.g_tx.init(params["generator"])
    opt_state["encoder"] = self.e_tx.init(params["encoder"])
    for name in self._discriminators:
      opt_state[name] = self.d_tx[name].init(params[name])
    if self.ema_decay:
      extra["ema_generator"] = jax.tree.map(jnp.copy, params["generator"])
    return TrainState(step=jnp.zeros((), jnp.int32), rng=keys[2], params=params,
                      model_state=model_state, opt_state=opt_state, extra=extra)

  # ---------------------------------------------------------------- helpers
  def _draw(self, key, arrays):
    """A real batch ``(x, y_x)``; ``y_x`` None unless the game is conditional."""
    return self.conditioning.draw(self.data, key, arrays, self.batch_size)

  def _generated_labels(self, key, arrays):
    """The classes a generator update generates (None if unconditional)."""
    return self.conditioning.generated_labels(self.data, key, arrays, self.batch_size)

  def _generate(self, g_params, ms, z, labels, *, keep_updates=True):
    """``G(z, y)`` in training mode with the ``G(z)`` batch statistics."""
    return apply_model(self.generator, g_params, ms["generator"], z, train=True,
                       keep_updates=keep_updates, **label_kwargs(labels))

  def _latent(self, key, n):
    return sample_latent(key, n, self.latent_shape, prior=self.latent_prior,
                         **self.latent_kwargs)

  def _encoder_labels(self, labels):
    """The encoder's label argument: ``y_x`` only for an encoder that takes labels."""
    return label_kwargs(labels if self.conditioning.encoder else None)

  def _reconstruct(self, g_params, e_params, ms, x, labels):
    """``G(E(x), y_x)`` in training mode with the reconstruction BN statistics
    (``E(x, y_x)`` for an encoder that takes labels)."""
    code, e_state = apply_model(self.encoder, e_params, ms["encoder"], x, train=True,
                                **self._encoder_labels(labels))
    rec, g_rec_state = apply_model(self.generator, g_params, ms["generator_recon"], code,
                                   train=True, **label_kwargs(labels))
    return rec, e_state, g_rec_state

  def _d_logits(self, name, params, ms, x, key, features=False, labels=None):
    return apply_model(self.discriminator, params, ms[name], x, train=True,
                       rngs={"dropout": key}, keep_updates=False,
                       return_features=features, **label_kwargs(labels))[0]

  def _adversarial_term(self, state, name, ms, x, labels, key, generator_loss):
    """``(loss, logits)`` of generated ``(x, labels)`` against discriminator
    ``name`` (the mean over its ensemble when one is kept)."""

    def member(d_params):
      logits = self._d_logits(name, d_params, ms, x, key, labels=labels)
      return generator_loss(logits), logits

    return base.ensemble_mean(member, state.params[name],
                              state.extra.get(self.history_name(name)))

  def _d_update(self, state, name, real, fake, labels, key, level, *, real_is_data, d_step):
    """One update of discriminator ``name``: ``(real, labels)`` vs ``(fake,
    labels)`` (no gradient to G; one batch of labels for both sides, so the
    penalties close over it).

    Returns the new state and the update's metrics (objective loss without
    penalties as ``d_loss``, ``d_real``, ``d_fake``, the penalties' values).
    """
    p_key, drop_key, pen_key = jax.random.split(key, 3)
    real_in, fake_in = self.perturb.pair(p_key, jax.lax.stop_gradient(real),
                                         jax.lax.stop_gradient(fake), level,
                                         real_is_data=real_is_data)
    d_state = state.model_state[name]
    lab = label_kwargs(labels)

    def logits_fn(params, features):
      # Independent dropout masks for the two passes.
      real_out, upd = apply_model(self.discriminator, params, d_state, real_in, train=True,
                                  rngs={"dropout": jax.random.fold_in(drop_key, 0)},
                                  return_features=features, **lab)
      fl, upd = apply_model(self.discriminator, params, upd, fake_in, train=True,
                            rngs={"dropout": jax.random.fold_in(drop_key, 1)}, **lab)
      rl, real_features = real_out if features else (real_out, None)
      return rl, fl, upd, real_features

    def critic_fn(params, key, features):
      return lambda x, dropout_key=key: self._d_logits(name, params, state.model_state, x,
                                                       dropout_key, features, labels)

    loss_fn = base.discriminator_loss_fn(
        self.objective, self.penalty_terms, logits_fn, critic_fn, real_in, fake_in,
        drop_key=drop_key, pen_key=pen_key, d_step=d_step, iteration=state.step)
    grads, (aux, upd) = jax.grad(loss_fn, has_aux=True)(state.params[name])
    updates, opt = self.d_tx[name].update(grads, state.opt_state[name], state.params[name])
    new_params = optax.apply_updates(state.params[name], updates)
    extra = dict(state.extra)
    history = self.history_name(name)
    if history in extra:
      extra[history] = base.push_history(extra[history], new_params)
    state = state.replace(
        params={**state.params, name: new_params},
        model_state={**state.model_state, name: upd},
        opt_state={**state.opt_state, name: opt}, extra=extra)
    aux["d_grad_norm"] = optax.tree.norm(grads)
    return state, aux

  def _apply_updates(self, state, grads: dict[str, Any]):
    """Generator and/or encoder updates; the generator EMA follows each one."""
    params, opt_state = dict(state.params), dict(state.opt_state)
    txs = {"generator": self.g_tx, "encoder": self.e_tx}
    for name, g in grads.items():
      updates, opt_state[name] = txs[name].update(g, opt_state[name], params[name])
      params[name] = optax.apply_updates(params[name], updates)
    extra = base.ema_update(state.extra, params["generator"], self.ema_decay)
    return state.replace(params=params, opt_state=opt_state, extra=extra)

  def _finish(self, state, metrics, level):
    metrics["level"] = jnp.asarray(level, jnp.float32)
    metrics.update(self.penalty_terms.weight_metrics(state.step))
    return state.replace(step=state.step + 1), metrics

  # ------------------------------------------------------------ evaluation
  def sample(self, state: TrainState, key: jax.Array, n: int, *, ema: bool = True,
             labels: jax.Array | None = None):
    """``n`` generator samples in inference mode (the EMA generator if kept, with
    batch statistics of its own); a conditional generator's classes uniform
    unless ``labels`` are given (``base.generator_samples``)."""
    return base.generator_samples(self.generator, state, key, n, ema=ema,
                                  latent_fn=self._latent, batch_size=self.batch_size,
                                  conditioning=self.conditioning, labels=labels)

  def _check_labels_given(self, labels, what):
    if self.conditional and labels is None:
      raise ValueError(f"{what} of a class-conditional game needs the labels of x: int class "
                       f"ids [B] in [0, {self.conditioning.num_classes})")

  def reconstruct(self, state: TrainState, x: jax.Array, labels: jax.Array | None = None):
    """``G(E(x), y_x)`` in inference mode (reconstruction statistics); ``labels``
    (``y_x``) required exactly when the game is conditional."""
    self._check_labels_given(labels, "reconstruct")
    code = apply_model(self.encoder, state.params["encoder"], state.model_state["encoder"],
                       x, train=False, **self._encoder_labels(labels))[0]
    return apply_model(self.generator, state.params["generator"],
                       state.model_state["generator_recon"], code, train=False,
                       **label_kwargs(labels))[0]

  def discriminate(self, state: TrainState, x: jax.Array, labels: jax.Array | None = None):
    """The last discriminator's logits in inference mode (D; MDGAN's D2)."""
    name = self._discriminators[-1]
    return apply_model(self.discriminator, state.params[name], state.model_state[name], x,
                       train=False, **label_kwargs(labels))[0]


@dataclasses.dataclass
class RegGANGame(_EncoderGameBase):
  """Mode-regularized GAN (Che et al. 2017): G, E and D.

  One iteration: ``n_critic`` discriminator updates (data vs ``G(z)``), then
  ``n_gen`` joint updates of G and E on ``T_G`` (see the module docstring).

  Attributes (beyond the shared ones):
    lambda1: weight of the geometric regularizer ``||x - G(E(x))||^2``.
    lambda2: weight of the mode regularizer ``-log D(G(E(x)))``.
  """
  lambda1: float = 0.2
  lambda2: float = 0.4

  def _generator_update(self, state, arrays, shard, key, level):
    x_key, z_key, p_key, drop_key, label_key = jax.random.split(key, 5)
    x, x_labels = self._draw(x_key, arrays)
    x = shard(x)
    z = shard(self._latent(z_key, self.batch_size))
    z_labels = self._generated_labels(label_key, arrays)
    ms = state.model_state

    def loss_fn(ge):
      g_params, e_params = ge
      fake, g_state = self._generate(g_params, ms, z, z_labels)
      rec, e_state, g_rec_state = self._reconstruct(g_params, e_params, ms, x, x_labels)
      # Distinct keys: the two batches get independent noise and dropout.
      gan, _ = self._adversarial_term(
          state, "discriminator", ms,
          self.perturb.fake(jax.random.fold_in(p_key, 0), fake, level), z_labels,
          jax.random.fold_in(drop_key, 0), self.objective.generator)
      mode, _ = self._adversarial_term(
          state, "discriminator", ms,
          self.perturb.fake(jax.random.fold_in(p_key, 1), rec, level), x_labels,
          jax.random.fold_in(drop_key, 1), self.mode_objective.generator)
      geometric = reconstruction_error(x, rec)
      total = gan + self.lambda1 * geometric + self.lambda2 * mode
      return total, ({"generator": g_state, "generator_recon": g_rec_state,
                      "encoder": e_state}, gan, geometric, mode)

    (total, (new_ms, gan, geometric, mode)), (g_grads, e_grads) = jax.value_and_grad(
        loss_fn, has_aux=True)((state.params["generator"], state.params["encoder"]))
    state = self._apply_updates(state, {"generator": g_grads, "encoder": e_grads})
    state = state.replace(model_state={**state.model_state, **new_ms})
    return state, {"g_loss": total, "g_gan_loss": gan, "reconstruction": geometric,
                   "mode_regularizer": mode, "g_grad_norm": optax.tree.norm(g_grads),
                   "e_grad_norm": optax.tree.norm(e_grads)}

  def step(self, state: TrainState, arrays: Any, shard: Callable = lambda x: x):
    """One iteration; metrics are those of the last update of each player."""
    level = self.level_schedule(state.step)
    def critic_update(state, i):
      x_key, z_key, d_key = jax.random.split(step_key(state, 1, i), 3)
      real, labels = self._draw(x_key, arrays)
      real = shard(real)
      z = shard(self._latent(z_key, self.batch_size))
      # The real batch's classes generated: D sees one batch of labels on both sides.
      fake = self._generate(state.params["generator"], state.model_state, z, labels,
                            keep_updates=False)[0]
      return self._d_update(state, "discriminator", real, fake, labels, d_key, level,
                            real_is_data=True, d_step=state.step * self.n_critic + i)

    state, metrics = _critic_updates(state, self.n_critic, critic_update)
    metrics = dict(metrics)
    for j in range(self.n_gen):
      state, aux = self._generator_update(state, arrays, shard,
                                          _repeat_key(step_key(state, 2), j), level)
      metrics.update(aux)
    metrics.update(base.sampler_metrics(state.opt_state["discriminator"]))
    return self._finish(state, metrics, level)


@dataclasses.dataclass
class MDGANGame(_EncoderGameBase):
  """Manifold-diffusion GAN (Che et al. 2017): G, E, D1 (manifold), D2 (diffusion).

  One iteration: the manifold step (``n_critic`` D1 updates, then ``n_gen``
  G/E updates), then the diffusion step (``n_critic`` D2 updates, then
  ``n_gen`` G updates); the first updates of both players in a step share
  one batch, as in the paper's one-update-each iteration.

  Attributes (beyond the shared ones):
    lambda_manifold: weight of ``-log D1(G(E(x)))`` against the reconstruction
      error in the manifold step.
  """
  lambda_manifold: float = 1.0
  _discriminators: tuple[str, ...] = ("d_manifold", "d_diffusion")

  def _manifold_update(self, state, x, labels, p_key, drop_key, level):
    ms = state.model_state

    def manifold_loss(ge):
      g_params, e_params = ge
      rec, e_state, g_rec_state = self._reconstruct(g_params, e_params, ms, x, labels)
      adv, _ = self._adversarial_term(state, "d_manifold", ms,
                                      self.perturb.fake(p_key, rec, level), labels, drop_key,
                                      self.mode_objective.generator)
      geometric = reconstruction_error(x, rec)
      total = self.lambda_manifold * adv + geometric
      return total, ({"generator_recon": g_rec_state, "encoder": e_state}, geometric)

    (m_loss, (new_ms, geometric)), (g_grads, e_grads) = jax.value_and_grad(
        manifold_loss, has_aux=True)((state.params["generator"], state.params["encoder"]))
    state = self._apply_updates(state, {"generator": g_grads, "encoder": e_grads})
    state = state.replace(model_state={**state.model_state, **new_ms})
    return state, {"manifold_loss": m_loss, "reconstruction": geometric,
                   "e_grad_norm": optax.tree.norm(e_grads)}

  def _diffusion_update(self, state, z, labels, p_key, drop_key, level):
    ms = state.model_state

    def diffusion_loss(g_params):
      fake, g_state = self._generate(g_params, ms, z, labels)
      loss, _ = self._adversarial_term(state, "d_diffusion", ms,
                                       self.perturb.fake(p_key, fake, level), labels, drop_key,
                                       self.objective.generator)
      return loss, g_state

    (loss, g_state), grads = jax.value_and_grad(diffusion_loss, has_aux=True)(
        state.params["generator"])
    state = self._apply_updates(state, {"generator": grads})
    state = state.replace(model_state={**state.model_state, "generator": g_state})
    return state, {"g_loss": loss, "g_grad_norm": optax.tree.norm(grads)}

  @staticmethod
  def _prefixed(name, aux):
    """``d_loss`` -> ``<name>_loss`` etc.: both discriminators report."""
    return {f"{name}_{k[2:] if k.startswith('d_') else k}": v for k, v in aux.items()}

  def step(self, state: TrainState, arrays: Any, shard: Callable = lambda x: x):
    """One iteration; metrics are those of the last update of each player."""
    level = self.level_schedule(state.step)
    metrics = {}
    # ---- manifold step: D1 on x vs G(E(x)); G, E towards the data manifold.
    key = step_key(state, 1)

    def manifold_critic(state, i):
      x_key, d_key = jax.random.split(_repeat_key(key, i), 4)[:2]
      x, labels = self._draw(x_key, arrays)
      x = shard(x)
      rec = self._reconstruct(state.params["generator"], state.params["encoder"],
                              state.model_state, x, labels)[0]
      return self._d_update(state, "d_manifold", x, rec, labels, d_key, level,
                            real_is_data=True, d_step=state.step * self.n_critic + i)

    state, aux = _critic_updates(state, self.n_critic, manifold_critic)
    metrics.update(self._prefixed("d_manifold", aux))
    for j in range(self.n_gen):
      x_key, _, p_key, drop_key = jax.random.split(_repeat_key(key, j), 4)
      x, labels = self._draw(x_key, arrays)
      state, aux = self._manifold_update(state, shard(x), labels, p_key, drop_key, level)
      metrics.update(aux)

    # ---- diffusion step: D2 on G(E(x)) (as real, not data) vs G(z); G spreads its mass.
    key = step_key(state, 2)

    def diffusion_critic(state, i):
      x_key, z_key, d_key = jax.random.split(_repeat_key(key, i), 5)[:3]
      x, labels = self._draw(x_key, arrays)
      x = shard(x)
      z = shard(self._latent(z_key, self.batch_size))
      ms = state.model_state
      rec = self._reconstruct(state.params["generator"], state.params["encoder"], ms, x,
                              labels)[0]
      fake = self._generate(state.params["generator"], ms, z, labels, keep_updates=False)[0]
      return self._d_update(state, "d_diffusion", rec, fake, labels, d_key, level,
                            real_is_data=False, d_step=state.step * self.n_critic + i)

    state, aux = _critic_updates(state, self.n_critic, diffusion_critic)
    metrics.update(self._prefixed("d_diffusion", aux))
    for j in range(self.n_gen):
      x_key, z_key, _, p_key, drop_key = jax.random.split(_repeat_key(key, j), 5)
      z = shard(self._latent(z_key, self.batch_size))
      # The classes of the step's real batch (the first update shares D2's batch).
      labels = self._generated_labels(x_key, arrays)
      state, aux = self._diffusion_update(state, z, labels, p_key, drop_key, level)
      metrics.update(aux)
    metrics.update({"d_loss": metrics["d_diffusion_loss"],
                    "d_real": metrics["d_diffusion_real"],
                    "d_fake": metrics["d_diffusion_fake"]})
    for name in self._discriminators:
      metrics.update(base.sampler_metrics(state.opt_state[name], prefix=name))
    # The diffusion discriminator's, under the name the figures look for.
    if "d_diffusion_noise_std" in metrics:
      metrics["d_noise_std"] = metrics["d_diffusion_noise_std"]
    return self._finish(state, metrics, level)
