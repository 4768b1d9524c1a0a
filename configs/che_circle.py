r"""Che et al. (2017), Appendix C: 6 Gaussians (std 0.1) on a circle of radius 5.

z ~ U[0,1]^3; G: two ReLU layers of 128; D: one ReLU layer of 128 to a logit;
Adam(1e-4). Variants:
  ':gan'     the GAN baseline (the paper reports it oscillating between modes);
  ':reg'     (default) mode-regularized GAN, lambda1 = lambda2 = 0.005, with an
             encoder mirroring G and a sigmoid output onto U[0,1]^3;
  ':mdgan'   manifold-diffusion training with the same players.
Combinations the papers suggest but never ran together (gan_jax's encoder games
take every component of the adversarial game):
  ':reg_roth'   Reg-GAN with Roth et al.'s JS regularizer (gamma = 0.1, their
                toy value) on its discriminator: data vs G(z);
  ':reg_sgld'   Reg-GAN against a Langevin (SGLD) discriminator, both of G's
                adversarial terms averaged over its last 5 samples;
  ':mdgan_heat' MDGAN on beta-GAN's heated data: D1's data side annealed from
                uniform on [-6, 6]^2 to the data (D2's real side G(E(x)) is
                never heated: heat only touches true data).
"""

from configs import common
from configs import betagan_mixture_3d

VARIANTS = ("gan", "reg", "mdgan", "reg_roth", "reg_sgld", "mdgan_heat")


def get_config(variant: str = "reg"):
  if variant not in VARIANTS:
    raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
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
  c.game.name = {"gan": "adversarial", "reg": "reg_gan",
                 "mdgan": "mdgan"}[variant.split("_")[0]]
  c.game.lambda1 = 0.005  # geometric regularizer ||x - G(E(x))||^2
  c.game.lambda2 = 0.005  # mode regularizer -log D(G(E(x)))
  c.game.lambda_manifold = 1.0  # MDGAN: weight of -log D1(G(E(x)))
  # The paper's Adam(1e-4), default betas.
  c.optim.generator = common.optimizer("adam", learning_rate=1e-4)
  c.optim.encoder = common.optimizer("adam", learning_rate=1e-4)
  c.optim.discriminator = common.optimizer("adam", learning_rate=1e-4)
  c.train.batch_size = 256
  c.train.num_steps = 30_000
  if variant == "reg_roth":
    c.game.penalty = common.penalty("roth_js", 0.1)
  elif variant == "reg_sgld":
    # As configs/sgld_discriminator.py: the posterior of D for N = 10^4
    # examples (data_size), a Gaussian prior as weight decay.
    c.optim.discriminator = common.optimizer("sgld", learning_rate=1e-3, data_size=10_000,
                                             weight_decay=1e-4)
    c.game.ensemble = 5
  elif variant == "mdgan_heat":
    # beta-GAN's schedule (uniform stage, 20 levels 0.1 -> 10, then data) in a
    # box holding the circle of radius 5 and its std-0.1 modes.
    c.game.perturbation = common.perturbation(
        "heat", betagan_mixture_3d.betagan_level(steps_per_level=400, uniform_steps=2000),
        low=-6.0, high=6.0)
  return c
