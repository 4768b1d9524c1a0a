"""Games: the pure per-step update rules, one per structure of players.

``make_game(config, source)`` builds the game a config names; each game exposes
``init(rng) -> TrainState``, ``step(state, arrays, shard) -> (state, metrics)``,
``sample(state, key, n)`` and ``discriminate(state, x)``.
"""

from __future__ import annotations

from typing import Any, Callable

from gan_jax import models
from gan_jax import optim
from gan_jax.data.source import DataSource
from gan_jax.games.adversarial import AdversarialGame, PenaltySpec
from gan_jax.games.encoder import MDGANGame, RegGANGame


def _build_adversarial(config, source: DataSource) -> AdversarialGame:
  game = config.game
  model = config.model
  g = _module(models.make_generator, model.generator, "model.generator",
              out_shape=tuple(source.shape), image_shape=tuple(source.shape))
  d = _module(models.make_discriminator, model.discriminator, "model.discriminator")
  g_tx = optim.make_optimizer(config.optim.generator, field="optim.generator",
                              seed=config.seed)
  d_tx = optim.make_optimizer(config.optim.discriminator, field="optim.discriminator",
                              seed=config.seed + 1)
  specs = []
  for field in ("penalty", "penalty_2"):
    spec = dict(_plain(game.get(field, {}) or {}))
    if spec.get("name", "none") != "none":
      specs.append(PenaltySpec(name=spec["name"], weight=_plain(spec.get("weight", 0.0)),
                               every=spec.get("every", 1),
                               kwargs=dict(_plain(spec.get("kwargs", {}) or {}))))
  perturbation = dict(game.get("perturbation", {}) or {})
  return AdversarialGame(
      generator=g, discriminator=d, data=source, g_tx=g_tx, d_tx=d_tx,
      latent_shape=tuple(model.latent_shape), latent_prior=model.latent_prior,
      batch_size=config.train.batch_size, loss=game.loss,
      loss_kwargs=dict(game.get("loss_kwargs", {}) or {}),
      n_critic=game.get("n_critic", 1), n_gen=game.get("n_gen", 1),
      latent_kwargs=dict(_plain(model.get("latent_kwargs", {}) or {})),
      penalties=tuple(specs),
      perturbation=perturbation.get("name", "none"),
      perturbation_level=_plain(perturbation.get("level", 0.0)),
      perturbation_kwargs=dict(_plain(perturbation.get("kwargs", {}) or {})),
      ema_decay=game.get("ema_decay", 0.0), ensemble=game.get("ensemble", 0))


def _plain(value):
  return value.to_dict() if hasattr(value, "to_dict") else value


_REGISTRIES = {models.make_generator: models.GENERATORS,
               models.make_discriminator: models.DISCRIMINATORS,
               models.make_encoder: models.ENCODERS}


def _module(factory, spec, field, **defaults):
  """Builds a module from its config entry; ``defaults`` fill the data-dependent
  shape fields a module has (``out_shape``/``image_shape``/``latent_shape``)."""
  spec = dict(_plain(spec))
  name = spec.pop("name", None)
  cls = _REGISTRIES[factory].get(name)
  fields = models.module_fields(cls)[0] if cls is not None else ()
  for k, v in defaults.items():
    if k in fields:
      spec.setdefault(k, v)
  try:
    return factory(name, **spec)
  except (TypeError, ValueError) as e:
    raise ValueError(f"config.{field}: {e}") from e


def _build_encoder_game(cls, config, source: DataSource, **extra):
  game, model = config.game, config.model
  g = _module(models.make_generator, model.generator, "model.generator",
              out_shape=tuple(source.shape), image_shape=tuple(source.shape))
  e = _module(models.make_encoder, model.get("encoder", None) or {}, "model.encoder",
              latent_shape=tuple(model.latent_shape))
  d = _module(models.make_discriminator, model.discriminator, "model.discriminator")
  seed = config.seed
  e_spec = config.optim.get("encoder", None) or config.optim.generator
  perturbation = dict(_plain(game.get("perturbation", {}) or {}))
  return cls(
      generator=g, encoder=e, discriminator=d, data=source,
      g_tx=optim.make_optimizer(config.optim.generator, field="optim.generator", seed=seed),
      e_tx=optim.make_optimizer(e_spec, field="optim.encoder", seed=seed + 2),
      d_tx=optim.make_optimizer(config.optim.discriminator, field="optim.discriminator",
                                seed=seed + 1),
      latent_shape=tuple(model.latent_shape), latent_prior=model.latent_prior,
      latent_kwargs=dict(_plain(model.get("latent_kwargs", {}) or {})),
      batch_size=config.train.batch_size, loss=game.loss,
      perturbation=perturbation.get("name", "none"),
      perturbation_level=_plain(perturbation.get("level", 0.0)),
      perturbation_kwargs=dict(_plain(perturbation.get("kwargs", {}) or {})), **extra)


def _build_reg_gan(config, source):
  g = config.game
  return _build_encoder_game(RegGANGame, config, source, lambda1=g.get("lambda1", 0.2),
                             lambda2=g.get("lambda2", 0.4), n_critic=g.get("n_critic", 1))


def _build_mdgan(config, source):
  return _build_encoder_game(MDGANGame, config, source,
                             lambda_manifold=config.game.get("lambda_manifold", 1.0))


GAMES: dict[str, Callable[[Any, DataSource], Any]] = {
    "adversarial": _build_adversarial,
    "reg_gan": _build_reg_gan,
    "mdgan": _build_mdgan,
}


def make_game(config, source: DataSource):
  """Builds the game ``config.game.name`` names, validating the config."""
  name = config.game.name
  if name not in GAMES:
    raise ValueError(f"config.game.name: unknown game {name!r}; valid: "
                     f"{', '.join(sorted(GAMES))}")
  return GAMES[name](config, source)
