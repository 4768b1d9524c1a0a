"""Games: the pure per-step update rules, one per structure of players.

``make_game(config, source)`` builds the game a config names; each game exposes
``init(rng) -> TrainState``, ``step(state, arrays, shard) -> (state, metrics)``,
``sample(state, key, n)`` and ``discriminate(state, x)``. Building a game
validates the whole config, so mistakes surface before anything compiles.

Every game takes the same components (objective, penalties, perturbation,
optimizers, n_critic / n_gen, ensemble, EMA), read once by ``_shared_args``
and implemented once in ``games.base``; a game only decides which players see
what. A combination a game does not implement fails with the reason
(joint_batch in the encoder games). Class conditioning (``num_classes`` of
generator and discriminator, ``base.Conditioning``) is one of the components:
labels reach the players of every game by the same rules.
"""

from __future__ import annotations

from typing import Any, Callable

import jax

from gan_jax import models
from gan_jax import optim
from gan_jax import schedules
from gan_jax.data.source import DataSource
from gan_jax.games.adversarial import AdversarialGame
from gan_jax.games.base import PenaltySpec, label_takers
from gan_jax.games.encoder import MDGANGame, RegGANGame

_REGISTRIES = {models.make_generator: models.GENERATORS,
               models.make_discriminator: models.DISCRIMINATORS,
               models.make_encoder: models.ENCODERS}

# Each player's sampler noise comes from the run seed folded with its own tag,
# so no two players (and no two seeds of a sweep) share a random stream.
_PLAYER_TAGS = {"generator": 101, "discriminator": 102, "encoder": 103, "d_manifold": 104,
                "d_diffusion": 105}


def _plain(value):
  return value.to_dict() if hasattr(value, "to_dict") else value


def _module(factory, spec, field, **defaults):
  """Builds a module from its config entry; ``defaults`` fill the fields a module
  has that its entry lacks (data-dependent shapes ``out_shape``/``image_shape``/
  ``latent_shape``; the run's computation ``dtype``)."""
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


def _optimizer(config, player: str, source: DataSource, spec_field: str | None = None):
  field = spec_field or player
  spec = config.optim.get(field, None)
  if spec is None:
    raise ValueError(f"config.optim.{field} is required")
  return optim.make_optimizer(spec, field=f"optim.{field}", seed=sampler_key(config.seed, player),
                              data_size=source.size)


def sampler_key(seed: int, player: str) -> jax.Array:
  """The raw key a player's sampler (SGLD and relatives) starts from in a run of ``seed``."""
  return jax.random.key_data(jax.random.fold_in(jax.random.PRNGKey(seed), _PLAYER_TAGS[player]))


def _perturbation_args(game) -> dict[str, Any]:
  spec = dict(_plain(game.get("perturbation", {}) or {}))
  return {"perturbation": spec.get("name", "none"),
          "perturbation_level": _plain(spec.get("level", 0.0)),
          "perturbation_kwargs": dict(_plain(spec.get("kwargs", {}) or {}))}


def _latent_args(config) -> dict[str, Any]:
  model = config.model
  return {"latent_shape": tuple(model.latent_shape), "latent_prior": model.latent_prior,
          "latent_kwargs": dict(_plain(model.get("latent_kwargs", {}) or {})),
          "batch_size": config.train.batch_size}


def _check_schedule_fits(config, level) -> None:
  """A beta schedule must reach its data stage within the run."""
  if isinstance(level, dict) and level.get("name") == "beta":
    start = schedules.beta_schedule_length(
        K=level.get("K", 20), steps_per_level=level["steps_per_level"],
        uniform_steps=level["uniform_steps"])
    if config.train.num_steps <= start:
      raise ValueError(
          f"config.train.num_steps ({config.train.num_steps}) ends before the beta schedule "
          f"reaches the data (step {start}); raise num_steps or shorten "
          "game.perturbation.level")


def _penalty_specs(game) -> tuple[PenaltySpec, ...]:
  specs = []
  for field in ("penalty", "penalty_2"):
    spec = dict(_plain(game.get(field, {}) or {}))
    if spec.get("name", "none") != "none":
      specs.append(PenaltySpec(name=spec["name"], weight=_plain(spec.get("weight", 0.0)),
                               every=spec.get("every", 1),
                               kwargs=dict(_plain(spec.get("kwargs", {}) or {})),
                               field=f"game.{field}"))
      divergence = specs[-1].kwargs.get("divergence")
      if (spec["name"] == "roth_fgan" and game.loss.startswith("fgan_")
          and divergence != game.loss[len("fgan_"):]):
        raise ValueError(f"game.{field}.kwargs.divergence ({divergence!r}) must match the "
                         f"f-GAN of game.loss ({game.loss!r})")
  return tuple(specs)


def _shared_args(config) -> dict[str, Any]:
  """The components every game takes, read once from the config."""
  game = config.game
  perturbation = _perturbation_args(game)
  _check_schedule_fits(config, perturbation["perturbation_level"])
  return {"loss": game.loss, "loss_kwargs": dict(_plain(game.get("loss_kwargs", {}) or {})),
          "n_critic": game.get("n_critic", 1), "n_gen": game.get("n_gen", 1),
          "penalties": _penalty_specs(game), "ema_decay": game.get("ema_decay", 0.0),
          "ensemble": game.get("ensemble", 0), **_latent_args(config), **perturbation}


def _build_adversarial(config, source: DataSource) -> AdversarialGame:
  game = config.game
  dtype = config.model.get("dtype", "float32")  # a player's own dtype field wins
  g = _module(models.make_generator, config.model.generator, "model.generator",
              out_shape=tuple(source.shape), image_shape=tuple(source.shape), dtype=dtype)
  d = _module(models.make_discriminator, config.model.discriminator, "model.discriminator",
              dtype=dtype)
  return AdversarialGame(
      generator=g, discriminator=d, data=source,
      g_tx=_optimizer(config, "generator", source),
      d_tx=_optimizer(config, "discriminator", source),
      joint_batch=game.get("joint_batch", False), **_shared_args(config))


def _build_encoder_game(cls, config, source: DataSource, discriminators, **extra):
  game = config.game
  if game.get("joint_batch", False):
    raise ValueError(f"config.game.joint_batch is not supported by game {game.name!r}: its "
                     "discriminators see real and generated inputs in separate passes "
                     "(each side's batch statistics kept apart, as the paper's Appendix B "
                     "does for G(z) and G(E(x)))")
  model = config.model
  dtype = model.get("dtype", "float32")  # a player's own dtype field wins
  g = _module(models.make_generator, model.generator, "model.generator",
              out_shape=tuple(source.shape), image_shape=tuple(source.shape), dtype=dtype)
  e_spec = dict(_plain(model.get("encoder", None) or {}))
  e_cls = models.ENCODERS.get(e_spec.get("name"))
  if ("num_classes" in e_spec and e_cls is not None
      and "num_classes" not in models.module_fields(e_cls)[0]):
    raise ValueError(
        f"config.model.encoder.num_classes: encoder {e_spec['name']!r} takes no labels; in a "
        f"conditional {game.name} game it codes x alone and G(E(x), y) gets x's labels. "
        "Remove model.encoder.num_classes; encoders that take labels: "
        f"{label_takers(models.ENCODERS)}")
  e = _module(models.make_encoder, e_spec, "model.encoder",
              latent_shape=tuple(model.latent_shape), dtype=dtype)
  d = _module(models.make_discriminator, model.discriminator, "model.discriminator",
              dtype=dtype)
  e_field = "encoder" if config.optim.get("encoder", None) is not None else "generator"
  return cls(
      generator=g, encoder=e, discriminator=d, data=source,
      g_tx=_optimizer(config, "generator", source),
      e_tx=_optimizer(config, "encoder", source, spec_field=e_field),
      d_txs=tuple(_optimizer(config, name, source, spec_field="discriminator")
                  for name in discriminators),
      **_shared_args(config), **extra)


def _build_reg_gan(config, source):
  g = config.game
  return _build_encoder_game(RegGANGame, config, source, ("discriminator",),
                             lambda1=g.get("lambda1", 0.2), lambda2=g.get("lambda2", 0.4))


def _build_mdgan(config, source):
  return _build_encoder_game(MDGANGame, config, source, ("d_manifold", "d_diffusion"),
                             lambda_manifold=config.game.get("lambda_manifold", 1.0))


GAMES: dict[str, Callable[[Any, DataSource], Any]] = {
    "adversarial": _build_adversarial,
    "reg_gan": _build_reg_gan,
    "mdgan": _build_mdgan,
}


def sweepable_fields(config) -> tuple[str, ...]:
  """The numbers of this config a sweep (``train.sweep_field``) may vary.

  Those the game reads as schedules, evaluated inside its step: a used
  penalty's weight, a used perturbation's level and the learning rate of each
  optimizer the game builds. (In the encoder games without an
  ``optim.encoder``, the encoder shares the generator's optimizer settings, so
  a sweep of the generator's rate sweeps both, as a single run would set them.)
  Where such a field is a schedule mapping, the numbers of it its factory takes
  traced instead (``schedules.SWEEPABLE_PARAMETERS``), e.g.
  ``game.penalty.weight.gamma_0`` of a ``gamma_decay``.
  """
  out = []
  for field in sweep_candidates(config):
    value = _field(config, field)
    if schedules.is_schedule_spec(value):
      params = schedules.SWEEPABLE_PARAMETERS.get(value.get("name"), ())
      out += [f"{field}.{p}" for p in params if p in value]
    else:
      out.append(field)
  return tuple(out)


def sweep_candidates(config) -> tuple[str, ...]:
  """The fields the game reads as schedules inside its step (each a number or
  a schedule mapping): those ``sweepable_fields`` starts from."""
  fields = []
  for name in ("penalty", "penalty_2"):
    spec = config.game.get(name, None)
    if spec is not None and spec.get("name", "none") != "none":
      fields.append(f"game.{name}.weight")
  pert = config.game.get("perturbation", None)
  if pert is not None and pert.get("name", "none") != "none":
    fields.append("game.perturbation.level")
  # The optimizers the game builds (an encoder's only in the encoder games;
  # MDGAN's two discriminators share optim.discriminator).
  players = ("generator", "discriminator") + (
      ("encoder",) if config.game.get("name", "adversarial") in ("reg_gan", "mdgan") else ())
  fields += [f"optim.{player}.learning_rate" for player in config.get("optim", {}).keys()
             if player in players]
  return tuple(fields)


def _field(config, field: str):
  node = config
  for part in field.split("."):
    node = node[part]
  return node


def schedule_parameter(config, field: str) -> tuple[str, str] | None:
  """``(schedule field, parameter)`` when ``field`` names a number inside a
  schedule mapping (``game.penalty.weight.gamma_0``), else ``None``."""
  parent, _, last = field.rpartition(".")
  if not parent:
    return None
  try:
    node = _field(config, parent)
  except (KeyError, AttributeError, TypeError):
    return None
  if schedules.is_schedule_spec(node):
    return parent, last
  return None


def sweep_field(config) -> str:
  """The field a sweep varies (``train.sweep_field``), '' when none."""
  return str(config.train.get("sweep_field", "") or "") if "train" in config else ""


def _with_replica_value(config, value=None):
  """``config`` with a ``schedules.replica_value`` in the swept field's place
  (or, given ``value``, a constant schedule of it: a callable too, so that what
  the game builds from it, such as an optimizer's schedule state, has the
  structure the sweep's replicas have). A number inside a schedule mapping
  makes the whole mapping a ``schedules.replica_schedule``."""
  field = sweep_field(config)
  if not field:
    return config
  inner = schedule_parameter(config, field)
  tree = config.to_dict()
  node = tree
  *parents, last = (inner[0] if inner else field).split(".")
  for part in parents:
    node = node[part]
  if inner:
    node[last] = schedules.replica_schedule(node[last], inner[1], field, value)
  else:
    node[last] = (schedules.replica_value(field) if value is None
                  else schedules.constant(value))
  return type(config)(tree)


def make_game(config, source: DataSource, *, replica_value: float | None = None):
  """Builds the game ``config.game.name`` names, validating the config.

  With a sweep (``train.sweep_field``) the swept number becomes a
  ``schedules.replica_value``: the game is one for every replica, and each
  replica's step reads its own value (``gan_jax.train.seeds``).
  ``replica_value``: instead, the game of the one replica that has this value
  of the swept field, usable anywhere (``train.loop.load_checkpoint`` of a
  replica of a sweep).
  """
  name = config.game.name
  if name not in GAMES:
    raise ValueError(f"config.game.name: unknown game {name!r}; valid: "
                     f"{', '.join(sorted(GAMES))}")
  return GAMES[name](_with_replica_value(config, replica_value), source)
