"""Shared defaults of the toy experiments; each config file overrides them."""

import inspect

import ml_collections

from gan_jax import optim as optim_lib


def toy_config() -> ml_collections.ConfigDict:
  """A complete toy-experiment config with every field documented."""
  c = ml_collections.ConfigDict()
  c.seed = 0  # Seeds initialisation, data draws and the run's PRNG stream.

  # Data: a name from gan_jax.data.toy.TOY_DATASETS plus its parameters.
  c.data = ml_collections.ConfigDict({"name": "ring_8"})

  c.model = ml_collections.ConfigDict()
  # Generator/discriminator: a name from gan_jax.models and the module's fields.
  c.model.generator = ml_collections.ConfigDict(
      {"name": "mlp", "widths": (128, 128), "activation": "relu",
       "output_activation": "linear"})
  c.model.discriminator = ml_collections.ConfigDict(
      {"name": "mlp", "widths": (128, 128), "activation": "relu"})
  c.model.latent_shape = (2,)  # Shape of z.
  c.model.latent_prior = "uniform"  # 'uniform' or 'normal'.
  c.model.latent_kwargs = ml_collections.ConfigDict()  # e.g. {'low': 0.0} for U[0,1].
  # Computation dtype of every model: 'float32' or 'bfloat16' (bf16 compute on float32
  # parameters, optimizer states and batch statistics; outputs come back float32).
  c.model.dtype = "float32"

  c.game = ml_collections.ConfigDict()
  c.game.name = "adversarial"  # gan_jax.games.GAMES
  c.game.loss = "non_saturating"  # gan_jax.losses.OBJECTIVES
  c.game.loss_kwargs = ml_collections.ConfigDict()
  c.game.n_critic = 1  # Discriminator updates per iteration.
  c.game.n_gen = 1  # Generator updates per iteration.
  # Gradient penalty: name, weight (gamma for Roth/R1/R2, lambda otherwise; a
  # number or a schedule), lazy period, extra arguments.
  c.game.penalty = penalty()
  # A second penalty (CT-GAN adds its consistency term to WGAN-GP's).
  c.game.penalty_2 = penalty()
  # Input perturbation: 'none', 'heat' (beta-GAN), 'instance_noise', 'blur';
  # level is beta for heat, sigma otherwise (a number or a schedule).
  c.game.perturbation = perturbation()
  c.game.ema_decay = 0.0  # EMA of generator weights for sampling (0: off).
  c.game.ensemble = 0  # Generator trains against the last k D samples (SGLD).
  c.game.joint_batch = False  # D sees real and fake as one batch (matters with BN in D).

  c.optim = ml_collections.ConfigDict()
  # Each player's optimizer: a name from gan_jax.optim.OPTIMIZERS with every
  # option listed (see optimizer()), so any can be overridden.
  c.optim.generator = optimizer("adam", learning_rate=1e-3, b1=0.5)
  c.optim.discriminator = optimizer("adam", learning_rate=1e-3, b1=0.5)

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 256
  c.train.num_steps = 10_000  # Iterations (generator updates).
  c.train.steps_per_call = 100  # Iterations fused in one compiled call (lax.scan).
  c.train.unroll = 1  # lax.scan unroll factor.
  # 'every': losses of every step (curves, NaN located to its step); 'last':
  # only each call's last step (no measured speed difference on the toys).
  c.train.step_metrics = "every"
  c.train.log_every = 500
  c.train.eval_every = 1000
  c.train.checkpoint_every = 2000
  c.train.plot_every = 5000
  c.train.keep_checkpoints = 3
  c.train.eval_samples = 2000
  c.train.best_metric = "energy_distance"  # An eval metric; '' disables best-keeping.
  c.train.best_mode = "min"
  c.train.num_devices = 0  # 0: all local devices (data parallel).
  # Independent replicas (seeds seed, seed+1, ...) trained in one compiled
  # program (gan_jax.train.seeds); metrics per seed and their mean +- SE.
  c.train.num_seeds = 1
  # Devices the seed axis is split over (each group of num_devices /
  # seed_devices runs its seeds data parallel); must divide both.
  c.train.seed_devices = 1
  # How the seeds' program maps its replicas: 'vmap' batches their arithmetic
  # (fastest for the toy MLPs); 'unroll' writes one step per seed into the
  # program (convolutions: vmap makes them grouped, XLA:CPU's slow path).
  c.train.seed_batching = "vmap"
  # A seed of several whose step turns NaN or inf: 'stop' stops the run (the
  # last good checkpoint is kept); 'freeze' keeps that seed at its last finite
  # state, leaves it out of later records, and trains the others on.
  c.train.nonfinite_seeds = "stop"
  # A sweep: one number the game reads as a schedule (a penalty weight, a
  # perturbation level, a learning rate) takes each of sweep_values, num_seeds
  # seeds per value, all in the same program (gan_jax.train.seeds). '' : none.
  c.train.sweep_field = ""
  c.train.sweep_values = ()
  c.train.progress = True
  # Figures every plot_every steps and at the end; False for headless sweeps
  # (rendering is about half the wall time of a very short run).
  c.train.figures = True
  # TensorBoard scalars in <workdir>/tensorboard when tensorboardX is installed.
  c.train.tensorboard = True
  return c


def perturbation(name: str = "none", level=0.0, **kwargs) -> ml_collections.ConfigDict:
  """A ``game.perturbation`` entry; ``level`` a number or a schedule mapping."""
  return ml_collections.ConfigDict({"name": name, "level": level, "kwargs": kwargs})


def penalty(name: str = "none", weight=0.0, every: int = 1,
            **kwargs) -> ml_collections.ConfigDict:
  """A ``game.penalty`` entry; ``weight`` a number or a schedule mapping."""
  return ml_collections.ConfigDict({"name": name, "weight": weight, "every": every,
                                    "kwargs": kwargs})


def optimizer(name: str, **options) -> ml_collections.ConfigDict:
  """An ``optim.<player>`` entry listing every option of optimizer ``name``.

  A locked config accepts command-line overrides only of fields it has, so each
  keyword of the optimizer's factory with a plain default (numbers, strings,
  booleans) is listed at that default unless ``options`` sets it, as are the
  cross-cutting ``weight_decay`` and ``clip`` (0: off). Keywords without a
  plain default (``None``, the samplers' ``key``, which the game seeds) stay
  out; set them here when needed.
  """
  if name not in optim_lib.OPTIMIZERS:
    raise ValueError(f"unknown optimizer {name!r}; valid: "
                     f"{', '.join(sorted(optim_lib.OPTIMIZERS))}")
  spec = {"name": name}
  params = inspect.signature(optim_lib.OPTIMIZERS[name]).parameters
  for key, p in params.items():
    # adamw's own decoupled weight_decay would be read as the L2 prior below.
    if key in ("key", "weight_decay") or p.default is inspect.Parameter.empty:
      continue
    if isinstance(p.default, (bool, int, float, str)):
      spec[key] = p.default
  spec.update({"weight_decay": 0.0, "clip": 0.0})
  spec.update(options)
  return ml_collections.ConfigDict(spec)
