r"""Che et al. (2017), Appendix C: 6 Gaussians (std 0.1) on a circle of radius 5.

z ~ U[0,1]^3; G: two ReLU layers of 128; D: one ReLU layer of 128 to a logit;
Adam(1e-4). Variants:
  ':gan'     the GAN baseline (the paper reports it oscillating between modes);
  ':reg'     (default) mode-regularized GAN, lambda1 = lambda2 = 0.005, with an
             encoder mirroring G and a sigmoid output onto U[0,1]^3;
  ':mdgan'   manifold-diffusion training with the same players.
"""

from configs import common


def get_config(variant: str = "reg"):
  if variant not in ("gan", "reg", "mdgan"):
    raise ValueError(f"variant must be 'gan', 'reg' or 'mdgan', got {variant!r}")
  c = common.toy_config()
  c.data.name = "che_circle"
  c.model.generator.update({"widths": (128, 128), "activation": "relu"})
  c.model.discriminator.update({"widths": (128,), "activation": "relu"})
  c.model.encoder = {"name": "mlp", "widths": (128, 128), "activation": "relu",
                     "output_activation": "sigmoid"}
  c.model.latent_shape = (3,)
  c.model.latent_prior = "uniform"
  c.model.latent_kwargs = {"low": 0.0, "high": 1.0}
  c.game.loss = "non_saturating"
  c.game.name = {"gan": "adversarial", "reg": "reg_gan", "mdgan": "mdgan"}[variant]
  c.game.lambda1 = 0.005  # geometric regularizer ||x - G(E(x))||^2
  c.game.lambda2 = 0.005  # mode regularizer -log D(G(E(x)))
  c.game.lambda_manifold = 1.0  # MDGAN: weight of -log D1(G(E(x)))
  # The paper's Adam(1e-4), default betas.
  c.optim.generator = common.optimizer("adam", learning_rate=1e-4)
  c.optim.encoder = common.optimizer("adam", learning_rate=1e-4)
  c.optim.discriminator = common.optimizer("adam", learning_rate=1e-4)
  c.train.batch_size = 256
  c.train.num_steps = 30_000
  return c
