r"""Wasserstein GANs on the 2-D ring of 8 and grid of 25.

Variants '<method>' or '<method>,<data>' with method in
  clip   WGAN (Arjovsky et al. 2017): weight clipping c=0.01, RMSProp 5e-5, 5 critic steps;
  gp     WGAN-GP (Gulrajani et al. 2017): lambda=10, Adam(1e-4, b1=0, b2=0.9), 5 critic steps;
  ct     CT-GAN (Wei et al. 2018): WGAN-GP plus the consistency term (lambda_CT=2, M'=0)
         on a critic with dropout;
and data in ring_8 (default), grid_25.
  python -m experiments.main --config=configs/wgan_2d.py:gp,grid_25 --workdir=/tmp/gp
"""

from configs import common

METHODS = ("clip", "gp", "ct")
DATA = ("ring_8", "grid_25")


def get_config(variant: str = "gp"):
  method, _, data = variant.partition(",")
  data = data or "ring_8"
  if method not in METHODS or data not in DATA:
    raise ValueError(f"variant must be '<method>[,<data>]' with method in {METHODS} and "
                     f"data in {DATA}, got {variant!r}")
  c = common.toy_config()
  c.data.name = data
  c.model.generator.update({"widths": (256, 256, 256), "activation": "relu"})
  c.model.discriminator.update({"widths": (256, 256, 256), "activation": "relu"})
  c.model.latent_shape = (2,)
  c.model.latent_prior = "normal"
  c.game.loss = "wasserstein"
  c.game.n_critic = 5
  if method == "clip":
    c.optim.generator = common.optimizer("rmsprop", learning_rate=5e-5)
    c.optim.discriminator = common.optimizer("rmsprop", learning_rate=5e-5, clip=0.01)
  else:
    c.optim.generator = common.optimizer("adam", learning_rate=1e-4, b1=0.0, b2=0.9)
    c.optim.discriminator = common.optimizer("adam", learning_rate=1e-4, b1=0.0, b2=0.9)
    c.game.penalty = common.penalty("wgan_gp", 10.0)
  if method == "ct":
    c.model.discriminator.dropout_rate = 0.2
    c.game.penalty_2 = common.penalty("ct", 2.0, margin=0.0)
  c.train.batch_size = 256
  c.train.num_steps = 20_000
  return c
