r"""DCGAN on MNIST (28x28): the baseline of the image experiments.

  python -m experiments.main --config=configs/dcgan_mnist.py --workdir=runs/dcgan_mnist \
      --config.data.npz_path=/path/to/mnist.npz   # offline: a local copy

Variants '<data>[,wgan_gp][,bf16]':
  data     mnist (default) or fashion_mnist;
  wgan_gp  WGAN-GP (Gulrajani et al. 2017): Wasserstein critic with layer norm in place of
           batch norm, penalty lambda = 10, Adam(1e-4, b1 = 0, b2 = 0.9) for both players,
           5 critic steps per generator step;
  bf16     every model (generator, discriminator, encoder) computes in bfloat16 on float32
           parameters, optimizer states and batch statistics; samples and logits come back
           in float32 (config.model.dtype, gan_jax.models.precision).
A DCGAN WGAN-GP run in bfloat16 on a local copy of MNIST:
  python -m experiments.main --config=configs/dcgan_mnist.py:mnist,wgan_gp,bf16 \
      --workdir=runs/dcgan_wgan_gp_bf16 --config.data.npz_path=/path/to/mnist.npz
"""

from configs import common
from configs import images

DATA = ("mnist", "fashion_mnist")
OPTIONS = ("wgan_gp", "bf16")


def get_config(variant: str = "mnist"):
  data, *options = variant.split(",")
  if data not in DATA or any(o not in OPTIONS for o in options) or len(set(options)) < len(
      options):
    raise ValueError(f"variant must be '<data>[,wgan_gp][,bf16]' with data in {DATA}, got "
                     f"{variant!r}")
  c = images.image_config(data)
  if "wgan_gp" in options:
    c.game.loss = "wasserstein"
    c.game.n_critic = 5
    c.game.penalty = common.penalty("wgan_gp", 10.0)
    # The penalty is per example: no batch norm in the critic.
    c.model.discriminator.batch_norm = False
    c.model.discriminator.layer_norm = True
    c.optim.generator = common.optimizer("adam", learning_rate=1e-4, b1=0.0, b2=0.9)
    c.optim.discriminator = common.optimizer("adam", learning_rate=1e-4, b1=0.0, b2=0.9)
  if "bf16" in options:
    c.model.dtype = "bfloat16"  # every player (a player's own dtype field would win)
  return c
