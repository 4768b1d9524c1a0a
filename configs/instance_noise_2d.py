r"""Instance noise (Arjovsky & Bottou 2017, Cor. 3.2; Sonderby et al. 2017).

Gaussian noise of std sigma on both real and generated inputs of D, sigma
annealed linearly from 0.5 to 0 over the first 3/4 of training. Variant: data
set name (ring_8 default, grid_25, che_circle).
"""

from configs import common


def get_config(data: str = "ring_8"):
  c = common.toy_config()
  c.data.name = data
  c.model.latent_shape = (2,)
  c.model.latent_prior = "normal"
  c.game.loss = "minimax"
  c.train.num_steps = 20_000
  c.game.perturbation = common.perturbation(
      "instance_noise", {"name": "linear", "init_value": 0.5, "end_value": 0.0,
                         "transition_steps": 15_000})
  return c
