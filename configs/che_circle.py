r"""Che et al. (2017), Appendix C: 6 Gaussians (std 0.1) on a circle of radius 5.

z ~ U[0,1]^3; G: two ReLU layers of 128; D: one ReLU layer of 128 to a logit;
Adam(1e-4). This is the GAN baseline (the paper reports it oscillating between
modes); the mode-regularized variant needs the encoder game.
"""

from configs import common


def get_config():
  c = common.toy_config()
  c.data.name = "che_circle"
  c.model.generator.update({"widths": (128, 128), "activation": "relu"})
  c.model.discriminator.update({"widths": (128,), "activation": "relu"})
  c.model.latent_shape = (3,)
  c.model.latent_prior = "uniform"
  c.model.latent_kwargs = {"low": 0.0, "high": 1.0}
  c.game.loss = "non_saturating"
  c.optim.generator.update({"name": "adam", "learning_rate": 1e-4, "b1": 0.9})
  c.optim.discriminator.update({"name": "adam", "learning_rate": 1e-4, "b1": 0.9})
  c.train.batch_size = 256
  c.train.num_steps = 30_000
  return c
