"""Encoder-based games of Che et al. (2017): Reg-GAN (G, E, D) and MDGAN (G, E, D1, D2).

Reg-GAN: the discriminator is an ordinary GAN discriminator (data vs ``G(z)``);
generator and encoder minimize (with the sign of the paper's Appendix A)

  T_G = -E_z[log D(G(z))] + E_x[lambda1 ||x - G(E(x))||^2 - lambda2 log D(G(E(x)))]
  T_E =                     E_x[lambda1 ||x - G(E(x))||^2 - lambda2 log D(G(E(x)))]

Since ``T_E`` is the part of ``T_G`` that depends on ``E``, one gradient of
``T_G`` w.r.t. ``(G, E)`` gives both players' updates. The generator term is
the configured objective's generator loss (non-saturating by default); the
mode term is ``-log D`` as in the paper.

MDGAN, per iteration: a manifold step (D1 tells ``x`` from ``G(E(x))``; G and E
minimize ``-lambda log D1(G(E(x))) + ||x - G(E(x))||^2``), then a diffusion step
(D2 tells ``G(E(x))``, as real, from ``G(z)``; G minimizes ``-log D2(G(z))``).

Batch norm (paper, Appendix B): ``G(z)`` and ``G(E(x))`` batches keep separate
batch statistics with shared BN parameters: the generator's running averages
for reconstructions live under ``model_state['generator_recon']``.
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
from gan_jax.games.base import Perturbation, apply_model, init_module, make_schedule
from gan_jax.models.latent import sample_latent
from gan_jax.games.state import TrainState, step_key


def reconstruction_error(x: jax.Array, x_rec: jax.Array) -> jax.Array:
  """Mean over the batch of the squared L2 distance ``||x - G(E(x))||^2``."""
  diff = (x - x_rec).reshape(x.shape[0], -1)
  return jnp.mean(jnp.sum(diff * diff, axis=-1))


@dataclasses.dataclass
class _EncoderGameBase:
  """Players, data and the pieces both encoder games share."""
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
  perturbation: str = "none"
  perturbation_level: Any = 0.0
  perturbation_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  _discriminators: tuple[str, ...] = ("discriminator",)

  def __post_init__(self):
    if len(self.d_txs) != len(self._discriminators):
      raise ValueError(f"{type(self).__name__} needs one optimizer per discriminator "
                       f"{self._discriminators}, got {len(self.d_txs)}")
    # Each discriminator its own transformation (and so its own sampler noise).
    self.d_tx = dict(zip(self._discriminators, self.d_txs))
    try:
      self.objective = losses.get_objective(self.loss)
    except (TypeError, ValueError) as e:
      raise ValueError(f"game.loss: {e}") from e
    if not isinstance(self.batch_size, int) or self.batch_size < 1:
      raise ValueError(f"train.batch_size must be a positive integer, got {self.batch_size!r}")
    self.perturb = Perturbation(self.perturbation, dict(self.perturbation_kwargs))
    self.perturb.check_data(tuple(self.data.shape), self.data.name)
    self.level_schedule = make_schedule(self.perturbation_level, "game.perturbation.level")

  def init(self, rng: jax.Array) -> TrainState:
    keys = jax.random.split(rng, 3 + len(self._discriminators))
    z = jnp.zeros((2, *self.latent_shape), jnp.float32)
    x = jnp.zeros((2, *self.data.shape), jnp.float32)
    params, model_state, opt_state = {}, {}, {}
    params["generator"], model_state["generator"] = init_module(self.generator, keys[0], z)
    # A separate copy: state buffers are donated, and a buffer may appear only once.
    model_state["generator_recon"] = jax.tree.map(jnp.copy, model_state["generator"])
    params["encoder"], model_state["encoder"] = init_module(self.encoder, keys[1], x)
    for name, key in zip(self._discriminators, keys[3:]):
      params[name], model_state[name] = init_module(self.discriminator, key, x)
    opt_state["generator"] = self.g_tx.init(params["generator"])
    opt_state["encoder"] = self.e_tx.init(params["encoder"])
    for name in self._discriminators:
      opt_state[name] = self.d_tx[name].init(params[name])
    return TrainState(step=jnp.zeros((), jnp.int32), rng=keys[2], params=params,
                      model_state=model_state, opt_state=opt_state, extra={})

  # ---------------------------------------------------------------- helpers
  def _draw(self, key, arrays):
    out = self.data.draw(key, arrays, self.batch_size)
    return out[0] if self.data.has_labels else out

  def _latent(self, key, n):
    return sample_latent(key, n, self.latent_shape, prior=self.latent_prior,
                         **self.latent_kwargs)

  def _reconstruct(self, g_params, e_params, ms, x):
    """G(E(x)) in training mode with the reconstruction BN statistics."""
    code, e_state = apply_model(self.encoder, e_params, ms["encoder"], x, train=True)
    rec, g_rec_state = apply_model(self.generator, g_params, ms["generator_recon"], code,
                                   train=True)
    return rec, e_state, g_rec_state

  def _d_logits(self, name, params, ms, x, key):
    return apply_model(self.discriminator, params, ms[name], x, train=True,
                       rngs={"dropout": key}, keep_updates=False)[0]

  def _d_update(self, state, name, real, fake, key, level):
    """One discriminator update: ``real`` vs ``fake`` (both without gradient to G)."""
    p_key, drop_key = jax.random.split(key)
    real_in, fake_in = self.perturb.pair(p_key, jax.lax.stop_gradient(real),
                                         jax.lax.stop_gradient(fake), level)
    d_state = state.model_state[name]

    def loss_fn(params):
      # Independent dropout masks for the two passes.
      rl, upd = apply_model(self.discriminator, params, d_state, real_in, train=True,
                            rngs={"dropout": jax.random.fold_in(drop_key, 0)})
      fl, upd = apply_model(self.discriminator, params, upd, fake_in, train=True,
                            rngs={"dropout": jax.random.fold_in(drop_key, 1)})
      return self.objective.discriminator(rl, fl), (upd, rl, fl)

    (loss, (upd, rl, fl)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params[name])
    updates, opt = self.d_tx[name].update(grads, state.opt_state[name], state.params[name])
    state = state.replace(
        params={**state.params, name: optax.apply_updates(state.params[name], updates)},
        model_state={**state.model_state, name: upd},
        opt_state={**state.opt_state, name: opt})
    return state, {f"{name}_loss": loss, f"{name}_real": jnp.mean(jax.nn.sigmoid(rl)),
                   f"{name}_fake": jnp.mean(jax.nn.sigmoid(fl))}

  def _apply_updates(self, state, grads: dict[str, Any]):
    params, opt_state = dict(state.params), dict(state.opt_state)
    txs = {"generator": self.g_tx, "encoder": self.e_tx}
    for name, g in grads.items():
      updates, opt_state[name] = txs[name].update(g, opt_state[name], params[name])
      params[name] = optax.apply_updates(params[name], updates)
    return state.replace(params=params, opt_state=opt_state)

  def _finish(self, state, metrics, level):
    metrics["level"] = jnp.asarray(level, jnp.float32)
    return state.replace(step=state.step + 1), metrics

  # ------------------------------------------------------------ evaluation
  def sample(self, state: TrainState, key: jax.Array, n: int, *, ema: bool = True):
    del ema
    z = self._latent(key, n)
    return apply_model(self.generator, state.params["generator"],
                       state.model_state["generator"], z, train=False)[0]

  def reconstruct(self, state: TrainState, x: jax.Array):
    """``G(E(x))`` in inference mode (reconstruction statistics)."""
    code = apply_model(self.encoder, state.params["encoder"], state.model_state["encoder"],
                       x, train=False)[0]
    return apply_model(self.generator, state.params["generator"],
                       state.model_state["generator_recon"], code, train=False)[0]

  def discriminate(self, state: TrainState, x: jax.Array):
    name = self._discriminators[-1]
    return apply_model(self.discriminator, state.params[name], state.model_state[name], x,
                       train=False)[0]


@dataclasses.dataclass
class RegGANGame(_EncoderGameBase):
  """Mode-regularized GAN (Che et al. 2017): G, E and D.

  Attributes (beyond the shared ones):
    lambda1: weight of the geometric regularizer ``||x - G(E(x))||^2``.
    lambda2: weight of the mode regularizer ``-log D(G(E(x)))``.
    n_critic: discriminator updates per iteration.
  """
  lambda1: float = 0.2
  lambda2: float = 0.4
  n_critic: int = 1

  def __post_init__(self):
    super().__post_init__()
    if not isinstance(self.n_critic, int) or self.n_critic < 1:
      raise ValueError(f"game.n_critic must be a positive integer, got {self.n_critic!r}")

  def step(self, state: TrainState, arrays: Any, shard: Callable = lambda x: x):
    level = self.level_schedule(state.step)
    metrics = {}
    for i in range(self.n_critic):
      key = step_key(state, 1, i)
      x_key, z_key, d_key = jax.random.split(key, 3)
      real = shard(self._draw(x_key, arrays))
      z = shard(self._latent(z_key, self.batch_size))
      fake = apply_model(self.generator, state.params["generator"],
                         state.model_state["generator"], z, train=True, keep_updates=False)[0]
      state, metrics = self._d_update(state, "discriminator", real, fake, d_key, level)

    key = step_key(state, 2)
    x_key, z_key, p_key, drop_key = jax.random.split(key, 4)
    x = shard(self._draw(x_key, arrays))
    z = shard(self._latent(z_key, self.batch_size))
    ms = state.model_state
    d_params = state.params["discriminator"]

    def loss_fn(ge):
      g_params, e_params = ge
      fake, g_state = apply_model(self.generator, g_params, ms["generator"], z, train=True)
      rec, e_state, g_rec_state = self._reconstruct(g_params, e_params, ms, x)
      # Distinct keys: the two batches get independent noise and dropout.
      fake_logits = self._d_logits("discriminator", d_params, ms,
                                   self.perturb.fake(jax.random.fold_in(p_key, 0), fake, level),
                                   jax.random.fold_in(drop_key, 0))
      rec_logits = self._d_logits("discriminator", d_params, ms,
                                  self.perturb.fake(jax.random.fold_in(p_key, 1), rec, level),
                                  jax.random.fold_in(drop_key, 1))
      gan = self.objective.generator(fake_logits)
      geometric = reconstruction_error(x, rec)
      mode = losses.non_saturating_generator_loss(rec_logits)
      total = gan + self.lambda1 * geometric + self.lambda2 * mode
      return total, ({"generator": g_state, "generator_recon": g_rec_state,
                      "encoder": e_state}, gan, geometric, mode)

    (total, (new_ms, gan, geometric, mode)), (g_grads, e_grads) = jax.value_and_grad(
        loss_fn, has_aux=True)((state.params["generator"], state.params["encoder"]))
    state = self._apply_updates(state, {"generator": g_grads, "encoder": e_grads})
    state = state.replace(model_state={**state.model_state, **new_ms})
    metrics.update({"g_loss": total, "g_gan_loss": gan, "reconstruction": geometric,
                    "mode_regularizer": mode, "d_loss": metrics.pop("discriminator_loss"),
                    "d_real": metrics.pop("discriminator_real"),
                    "d_fake": metrics.pop("discriminator_fake"),
                    "g_grad_norm": optax.tree.norm(g_grads),
                    "e_grad_norm": optax.tree.norm(e_grads)})
    return self._finish(state, metrics, level)


@dataclasses.dataclass
class MDGANGame(_EncoderGameBase):
  """Manifold-diffusion GAN (Che et al. 2017): G, E, D1 (manifold), D2 (diffusion).

  Attributes (beyond the shared ones):
    lambda_manifold: weight of ``-log D1(G(E(x)))`` against the reconstruction
      error in the manifold step.
  """
  lambda_manifold: float = 1.0
  _discriminators: tuple[str, ...] = ("d_manifold", "d_diffusion")

  def step(self, state: TrainState, arrays: Any, shard: Callable = lambda x: x):
    level = self.level_schedule(state.step)
    # ---- manifold step: D1 on x vs G(E(x)); G, E towards the data manifold.
    key = step_key(state, 1)
    x_key, d_key, p_key, drop_key = jax.random.split(key, 4)
    x = shard(self._draw(x_key, arrays))
    ms = state.model_state
    rec = self._reconstruct(state.params["generator"], state.params["encoder"], ms, x)[0]
    state, metrics = self._d_update(state, "d_manifold", x, rec, d_key, level)
    ms = state.model_state
    d1 = state.params["d_manifold"]

    def manifold_loss(ge):
      g_params, e_params = ge
      rec, e_state, g_rec_state = self._reconstruct(g_params, e_params, ms, x)
      logits = self._d_logits("d_manifold", d1, ms, self.perturb.fake(p_key, rec, level),
                              drop_key)
      geometric = reconstruction_error(x, rec)
      total = self.lambda_manifold * losses.non_saturating_generator_loss(logits) + geometric
      return total, ({"generator_recon": g_rec_state, "encoder": e_state}, geometric)

    (m_loss, (new_ms, geometric)), (g_grads, e_grads) = jax.value_and_grad(
        manifold_loss, has_aux=True)((state.params["generator"], state.params["encoder"]))
    state = self._apply_updates(state, {"generator": g_grads, "encoder": e_grads})
    state = state.replace(model_state={**state.model_state, **new_ms})

    # ---- diffusion step: D2 on G(E(x)) (as real) vs G(z); G spreads its mass.
    key = step_key(state, 2)
    x_key, z_key, d_key, p_key, drop_key = jax.random.split(key, 5)
    x = shard(self._draw(x_key, arrays))
    z = shard(self._latent(z_key, self.batch_size))
    ms = state.model_state
    rec = self._reconstruct(state.params["generator"], state.params["encoder"], ms, x)[0]
    fake = apply_model(self.generator, state.params["generator"], ms["generator"], z,
                       train=True, keep_updates=False)[0]
    state, d2_metrics = self._d_update(state, "d_diffusion", rec, fake, d_key, level)
    metrics.update(d2_metrics)
    ms = state.model_state
    d2 = state.params["d_diffusion"]

    def diffusion_loss(g_params):
      fake, g_state = apply_model(self.generator, g_params, ms["generator"], z, train=True)
      logits = self._d_logits("d_diffusion", d2, ms, self.perturb.fake(p_key, fake, level),
                              drop_key)
      return losses.non_saturating_generator_loss(logits), g_state

    (d_loss_g, g_state), g2_grads = jax.value_and_grad(diffusion_loss, has_aux=True)(
        state.params["generator"])
    state = self._apply_updates(state, {"generator": g2_grads})
    state = state.replace(model_state={**state.model_state, "generator": g_state})
    metrics.update({"manifold_loss": m_loss, "reconstruction": geometric,
                    "g_loss": d_loss_g, "d_loss": metrics["d_diffusion_loss"],
                    "d_real": metrics["d_diffusion_real"], "d_fake": metrics["d_diffusion_fake"],
                    "g_grad_norm": optax.tree.norm(g2_grads)})
    return self._finish(state, metrics, level)
