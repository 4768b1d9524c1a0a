r"""beta-GAN on a 3-D Gaussian mixture (Mehrjou et al. 2017, Fig. 2-3).

The target is annealed from Uniform[-1,1]^3 through Gaussian-heated data
(beta_1=0.1 to beta_K=10 in K=20 geometric levels) to the data itself. Paper
architectures: G [z(3) | ReLU 128 | ReLU 128 | Linear 3], z ~ U[-1,1]^3;
D [x(3) | Tanh 128 x3 | sigmoid]; saturating generator loss log(1 - D(G(z))).

Variants: ':5' (default) and ':10' mixture components, optionally ',sgld':
beta-GAN heating against a Langevin (SGLD) discriminator, the generator trained
against its last 5 samples (a combination neither paper ran).
  python -m experiments.main --config=configs/betagan_mixture_3d.py:10 --workdir=/tmp/b10
  python -m experiments.main --config=configs/betagan_mixture_3d.py:5,sgld --workdir=/tmp/bs
"""

from configs import common
from gan_jax import schedules


def betagan_level(*, steps_per_level: int, uniform_steps: int) -> dict:
  """The paper's schedule: uniform stage, 20 levels from 0.1 to 10, then data."""
  return {"name": "beta", "beta_1": 0.1, "beta_K": 10.0, "K": 20,
          "steps_per_level": steps_per_level, "uniform_steps": uniform_steps}


def get_config(variant: str = "5"):
  components, _, sampler = variant.partition(",")
  if components not in ("5", "10") or sampler not in ("", "sgld"):
    raise ValueError("variant must be '5' or '10' (mixture components), optionally "
                     f"followed by ',sgld'; got {variant!r}")
  variant = components
  c = common.toy_config()
  c.data.name = f"mixture_3d_{variant}"
  c.model.generator.widths = (128, 128)
  c.model.generator.activation = "relu"
  c.model.generator.output_activation = "linear"
  c.model.discriminator.widths = (128, 128, 128)
  c.model.discriminator.activation = "tanh"
  c.model.latent_shape = (3,)
  c.model.latent_prior = "uniform"
  c.game.loss = "minimax"  # beta-GAN keeps the saturating generator loss.
  uniform_steps, steps_per_level, data_steps = 2000, 400, 4000
  c.game.perturbation = common.perturbation(
      "heat", betagan_level(steps_per_level=steps_per_level, uniform_steps=uniform_steps),
      low=-1.0, high=1.0)
  c.train.batch_size = 256
  c.train.num_steps = schedules.beta_schedule_length(
      steps_per_level=steps_per_level, uniform_steps=uniform_steps) + data_steps
  c.train.steps_per_call = 200
  c.train.log_every = 400
  c.train.eval_every = 800
  c.train.checkpoint_every = 2000
  c.train.plot_every = 4000
  if sampler == "sgld":
    # As configs/sgld_discriminator.py: the posterior of D for N = 10^4
    # examples (data_size), a Gaussian prior as weight decay.
    c.optim.discriminator = common.optimizer("sgld", learning_rate=1e-3, data_size=10_000,
                                             weight_decay=1e-4)
    c.game.ensemble = 5
  return c
