"""The adversarial game: a generator against a discriminator (or critic).

Every toy method of the source papers is a configuration of this one game:

* the objective (``losses.get_objective``): minimax, non-saturating,
  Wasserstein, hinge, least squares, f-GAN;
* a gradient penalty (``penalties``): Roth's JS or f-GAN regularizer, WGAN-GP,
  CT-GAN, R1, R2, DRAGAN; its weight on any schedule (Roth's gamma decay), lazy
  (every ``k`` discriminator steps, weight times ``k``);
* an input perturbation (``perturb``) with its level on a schedule: beta-GAN's
  heated targets, instance noise, blur coarse-graining;
* the optimizers (``optim``): Adam, RMSProp with WGAN clipping, SGLD/cc-SGLD
  for a Bayesian discriminator, whose last ``k`` samples may form the ensemble
  the generator is trained against;
* ``n_critic`` discriminator steps per ``n_gen`` generator steps and an EMA of
  the generator's weights.

One call of ``step`` is one iteration: ``n_critic`` discriminator updates then
``n_gen`` generator updates. Schedules are evaluated at the iteration count.
The components themselves (penalties, perturbations, ensemble, EMA, the
variables an EMA generator samples with and class conditioning) live in
``games.base``, shared with the encoder games.

Class-conditional (``num_classes = K > 0`` in generator and discriminator,
``base.Conditioning``): a discriminator update scores ``(x, y)`` against
``(G(z, y), y)``, ``y`` the real batch's labels; a generator update generates
the labels of a real batch it draws with its labels key, so classes follow
the data's frequencies; ``sample`` draws them uniformly unless given.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from gan_jax import losses
from gan_jax.games import base
from gan_jax.games.base import (PenaltySpec, Perturbation, apply_model, init_module,
                                label_kwargs, make_schedule)
from gan_jax.data.source import DataSource
from gan_jax.models.latent import sample_latent
from gan_jax.games.state import TrainState, step_key

Batch = jax.Array
# Keys each update takes from the iteration's single split (the discriminator
# update uses five: data, latent, perturbation, penalty, dropout).
_KEYS_PER_UPDATE = 5


@dataclasses.dataclass
class AdversarialGame:
  """Generator against discriminator, any objective/penalty/perturbation.

  Attributes:
    generator, discriminator: Flax modules with ``__call__(x, *, train)``; the
      discriminator returns logits ``[B]`` (and features with
      ``return_features=True``, needed by CT-GAN).
    data: the ``DataSource`` to draw real batches from.
    g_tx, d_tx: the players' optax transformations.
    latent_shape, latent_prior: the generator's input distribution.
    batch_size: global batch size of each update.
    loss: objective name, ``losses.OBJECTIVES``.
    loss_kwargs: extra arguments of the objective (e.g. ``non_saturating``).
    n_critic, n_gen: updates per iteration.
    latent_kwargs: extra arguments of ``sample_latent`` (e.g. ``low=0.0``).
    penalties: the gradient penalties added to the discriminator loss (CT-GAN
      is WGAN-GP plus the consistency term: two entries).
    perturbation: name in ``PERTURBATIONS``; perturbation_level: its schedule
      (beta for ``heat``, sigma for the others); perturbation_kwargs: e.g.
      ``low``/``high`` box for heat, ``radius`` for blur.
    ema_decay: decay of the generator EMA (0 disables it).
    ensemble: number of recent discriminator samples the generator is trained
      against (0 or 1: the current one).
    joint_batch: pass real and generated examples through the discriminator as
      one batch (in both players' updates). With batch norm in the
      discriminator's first layers, separate all-fake batches hide any shift
      that all generated examples share (batch statistics remove it); a joint
      batch lets the discriminator see it.
  """
  generator: nn.Module
  discriminator: nn.Module
  data: DataSource
  g_tx: optax.GradientTransformation
  d_tx: optax.GradientTransformation
  latent_shape: tuple[int, ...]
  latent_prior: str = "uniform"
  batch_size: int = 64
  loss: str = "non_saturating"
  loss_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  latent_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  n_critic: int = 1
  n_gen: int = 1
  penalties: tuple[PenaltySpec, ...] = ()
  perturbation: str = "none"
  perturbation_level: Any = 0.0
  perturbation_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  ema_decay: float = 0.0
  ensemble: int = 0
  joint_batch: bool = False

  def __post_init__(self):
    self.penalty_terms = base.Penalties(tuple(self.penalties))
    self.perturb = Perturbation(self.perturbation, dict(self.perturbation_kwargs))
    self.conditioning = base.conditioning(self.data, self.generator, self.discriminator)
    self.conditional = self.conditioning.conditional
    self.perturb.check_data(tuple(self.data.shape), self.data.name)
    base.check_game_numbers(n_critic=self.n_critic, n_gen=self.n_gen,
                            batch_size=self.batch_size, ema_decay=self.ema_decay,
                            ensemble=self.ensemble)
    try:
      self.objective = losses.get_objective(self.loss, **dict(self.loss_kwargs))
    except (TypeError, ValueError) as e:
      raise ValueError(f"game.loss: {e}") from e
    self.level_schedule = make_schedule(self.perturbation_level, "game.perturbation.level")

  # ----------------------------------------------------------------- set-up
  def init(self, rng: jax.Array) -> TrainState:
    """Initial state: parameters, batch statistics, optimizer states."""
    g_key, d_key, run_key = jax.random.split(rng, 3)
    z = jnp.zeros((2, *self.latent_shape), jnp.float32)
    x = jnp.zeros((2, *self.data.shape), jnp.float32)
    lab = label_kwargs(jnp.zeros((2,), jnp.int32) if self.conditional else None)
    g_params, g_state = init_module(self.generator, g_key, z, **lab)
    d_params, d_state = init_module(self.discriminator, d_key, x, **lab)
    extra = {}
    if self.ema_decay:
      # A separate copy: state buffers are donated, and a buffer may appear only once.
      extra["ema_generator"] = jax.tree.map(jnp.copy, g_params)
    if self.ensemble > 1:
      extra["d_history"] = base.init_history(d_params, self.ensemble)
    return TrainState(
        step=jnp.zeros((), jnp.int32), rng=run_key,
        params={"generator": g_params, "discriminator": d_params},
        model_state={"generator": g_state, "discriminator": d_state},
        opt_state={"generator": self.g_tx.init(g_params),
                   "discriminator": self.d_tx.init(d_params)},
        extra=extra)

  # ---------------------------------------------------------- model calls
  def generate(self, params, model_state, z, *, train: bool, labels=None):
    """Generator output, and its updated collections when training."""
    return apply_model(self.generator, params, model_state, z, train=train,
                       **label_kwargs(labels))

  def _critic(self, params, model_state, key, *, features=False, labels=None):
    """The discriminator as a function of its input, as penalties expect it.

    Batch statistics are used in training mode but their updates are dropped
    here; the discriminator's own loss pass keeps them. A conditional
    discriminator closes over the batch's labels.
    """

    def fn(x, dropout_key=key):
      return apply_model(self.discriminator, params, model_state, x, train=True,
                         rngs={"dropout": dropout_key}, keep_updates=False,
                         return_features=features, **label_kwargs(labels))[0]

    return fn

  # ------------------------------------------------------------- updates
  def _draw(self, key, arrays, n):
    """(examples, labels or None): labels only in a conditional game."""
    return self.conditioning.draw(self.data, key, arrays, n)

  def _d_update(self, state, arrays, index, level, shard, keys):
    real_key, z_key, p_key, pen_key, drop_key = keys
    g_params = state.params["generator"]
    d_params = state.params["discriminator"]
    real, labels = self._draw(real_key, arrays, self.batch_size)
    real = shard(real)
    z = shard(sample_latent(z_key, self.batch_size, self.latent_shape, prior=self.latent_prior,
                                **self.latent_kwargs))
    # A conditional game generates the real batch's classes: both sides of the
    # discriminator see the same labels, so penalties can close over them.
    fake, _ = self.generate(g_params, state.model_state["generator"], z, train=True,
                            labels=labels)
    fake = jax.lax.stop_gradient(fake)
    real_in, fake_in = self.perturb.pair(p_key, real, fake, level)
    d_state = state.model_state["discriminator"]
    d_step = state.step * self.n_critic + index

    def logits_fn(params, features):
      lab = label_kwargs(labels)
      if self.joint_batch:
        # The real half of a joint pass is normalised with the generated half, so
        # it is not the critic's pass on real data alone: no features to share.
        both, upd = apply_model(self.discriminator, params, d_state,
                                jnp.concatenate([real_in, fake_in]), train=True,
                                rngs={"dropout": drop_key},
                                **label_kwargs(None if labels is None else
                                               jnp.concatenate([labels, labels])))
        real_logits, fake_logits = jnp.split(both, 2)
        return real_logits, fake_logits, upd, None
      # Independent dropout masks for each pass (and for the penalties' passes).
      real_out, upd = apply_model(self.discriminator, params, d_state, real_in,
                                  train=True, rngs={"dropout": jax.random.fold_in(drop_key, 0)},
                                  return_features=features, **lab)
      fake_logits, upd = apply_model(self.discriminator, params, upd, fake_in, train=True,
                                     rngs={"dropout": jax.random.fold_in(drop_key, 1)}, **lab)
      real_logits, real_features = real_out if features else (real_out, None)
      return real_logits, fake_logits, upd, real_features

    def critic_fn(params, key, features):
      return self._critic(params, d_state, key, features=features, labels=labels)

    loss_fn = base.discriminator_loss_fn(
        self.objective, self.penalty_terms, logits_fn, critic_fn, real_in, fake_in,
        drop_key=drop_key, pen_key=pen_key, d_step=d_step, iteration=state.step)
    grads, (aux, new_d_state) = jax.grad(loss_fn, has_aux=True)(d_params)
    updates, opt_state = self.d_tx.update(grads, state.opt_state["discriminator"], d_params)
    d_params = optax.apply_updates(d_params, updates)
    aux["d_grad_norm"] = optax.tree.norm(grads)
    extra = dict(state.extra)
    if "d_history" in extra:
      extra["d_history"] = base.push_history(extra["d_history"], d_params)
    state = state.replace(
        params={**state.params, "discriminator": d_params},
        model_state={**state.model_state, "discriminator": new_d_state},
        opt_state={**state.opt_state, "discriminator": opt_state}, extra=extra)
    return state, aux

  def _g_update(self, state, arrays, index, level, shard, keys):
    z_key, p_key, drop_key, label_key, real_p_key = keys
    # Classes to generate follow the data's class frequencies; a joint batch also
    # needs the real half the discriminator sees beside the generated one.
    real = labels = None
    if self.conditional or self.joint_batch:
      real, labels = self._draw(label_key, arrays, self.batch_size)
    if self.joint_batch:
      real = self.perturb.pair(real_p_key, shard(real), real, level)[0]
      lab2 = None if labels is None else jnp.concatenate([labels, labels])
    z = shard(sample_latent(z_key, self.batch_size, self.latent_shape, prior=self.latent_prior,
                                **self.latent_kwargs))
    g_state = state.model_state["generator"]
    d_state = state.model_state["discriminator"]
    d_members = state.extra.get("d_history")

    def loss_fn(params):
      fake, new_g_state = self.generate(params, g_state, z, train=True, labels=labels)
      fake = self.perturb.fake(p_key, fake, level)

      def member_loss(d_params):
        if self.joint_batch:
          both = self._critic(d_params, d_state, drop_key, labels=lab2)(
              jnp.concatenate([real, fake]))
          logits = jnp.split(both, 2)[1]
        else:
          logits = self._critic(d_params, d_state, drop_key, labels=labels)(fake)
        return self.objective.generator(logits), logits

      loss, logits = base.ensemble_mean(member_loss, state.params["discriminator"], d_members)
      return loss, (new_g_state, logits)

    (loss, (new_g_state, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params["generator"])
    updates, opt_state = self.g_tx.update(grads, state.opt_state["generator"],
                                          state.params["generator"])
    g_params = optax.apply_updates(state.params["generator"], updates)
    extra = base.ema_update(state.extra, g_params, self.ema_decay)
    state = state.replace(
        params={**state.params, "generator": g_params},
        model_state={**state.model_state, "generator": new_g_state},
        opt_state={**state.opt_state, "generator": opt_state}, extra=extra)
    return state, {"g_loss": loss, "g_grad_norm": optax.tree.norm(grads),
                   "d_fake_gen": jnp.mean(jax.nn.sigmoid(logits))}

  def step(self, state: TrainState, arrays: Any, shard: Callable[[Batch], Batch] = lambda x: x):
    """One iteration: ``n_critic`` discriminator then ``n_gen`` generator updates.

    Args:
      state: the ``TrainState``.
      arrays: the data source's device arrays (empty for toy data).
      shard: applied to every freshly drawn batch; the compiled step passes a
        sharding constraint that splits the batch over the device mesh.

    Returns:
      ``(new_state, metrics)`` with scalar metrics of this iteration.
    """
    level = self.level_schedule(state.step)
    # All keys of the iteration from the step's key, so randomness depends on
    # the step count only and a resumed run draws what an uninterrupted one
    # would. One split makes all of them: on XLA:CPU every threefry call is a
    # small loop of its own, and for the toy models those cost ~5% of a step.
    keys = jax.random.split(step_key(state), (self.n_critic + self.n_gen, _KEYS_PER_UPDATE))
    if self.n_critic == 1:
      state, aux = self._d_update(state, arrays, 0, level, shard, keys[0])
      d_stacked = jax.tree.map(lambda v: v[None], aux)
    else:
      # The critic updates as one rolled loop: the program holds one copy of
      # the update (with a penalty's double backprop, most of the step)
      # instead of n_critic, so WGAN-style games compile about n_critic times
      # faster, at the same arithmetic per update.
      def critic_update(carry, xs):
        index, key = xs
        return self._d_update(carry, arrays, index, level, shard, key)

      state, d_stacked = jax.lax.scan(
          critic_update, state, (jnp.arange(self.n_critic), keys[:self.n_critic]))
    g_metrics = []
    for i in range(self.n_gen):
      state, aux = self._g_update(state, arrays, i, level, shard, keys[self.n_critic + i])
      g_metrics.append(aux)
    # The last update's metrics; the loss averaged over the iteration's updates.
    metrics = {k: v[-1] for k, v in d_stacked.items()}
    metrics.update(g_metrics[-1])
    metrics["d_loss"] = jnp.mean(d_stacked["d_loss"])
    metrics["g_loss"] = jnp.mean(jnp.stack([m["g_loss"] for m in g_metrics]))
    metrics["level"] = jnp.asarray(level, jnp.float32)
    metrics.update(self.penalty_terms.weight_metrics(state.step))
    metrics.update(base.sampler_metrics(state.opt_state["discriminator"]))
    state = state.replace(step=state.step + 1)
    return state, metrics

  # ---------------------------------------------------------- evaluation
  def sample(self, state: TrainState, key: jax.Array, n: int, *, ema: bool = True,
             labels: jax.Array | None = None):
    """``n`` generator samples in inference mode (EMA weights if kept).

    A conditional generator draws classes uniformly unless ``labels`` are given
    (``base.generator_samples``).
    """
    latent_fn = lambda k, m: sample_latent(k, m, self.latent_shape, prior=self.latent_prior,
                                           **self.latent_kwargs)
    return base.generator_samples(self.generator, state, key, n, ema=ema, latent_fn=latent_fn,
                                  batch_size=self.batch_size, conditioning=self.conditioning,
                                  labels=labels)

  def discriminate(self, state: TrainState, x: jax.Array, labels: jax.Array | None = None):
    """Discriminator logits in inference mode."""
    return apply_model(self.discriminator, state.params["discriminator"],
                       state.model_state["discriminator"], x, train=False,
                       **label_kwargs(labels))[0]

