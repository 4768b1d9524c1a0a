r"""beta-GAN on CelebA 64x64 (Mehrjou et al. 2017, Fig. 6): DCGAN whose latent
has the data's size (64x64x3, U[-1,1]) and whose generator output is linear,
annealed from Uniform[-1,1]^(64x64x3) to the data as in the MNIST experiment.
"""

from configs import common
from configs import images
from configs.betagan_mixture_3d import betagan_level
from gan_jax import schedules


def get_config():
  c = images.image_config("celeb_a")
  c.model.generator.output_activation = "linear"
  c.model.latent_shape = (64, 64, 3)
  c.model.latent_prior = "uniform"
  c.game.loss = "minimax"
  uniform_steps, steps_per_level, data_steps = 1000, 1000, 10_000
  c.game.perturbation = common.perturbation(
      "heat", betagan_level(steps_per_level=steps_per_level, uniform_steps=uniform_steps),
      low=-1.0, high=1.0)
  c.train.num_steps = schedules.beta_schedule_length(
      steps_per_level=steps_per_level, uniform_steps=uniform_steps) + data_steps
  return c
