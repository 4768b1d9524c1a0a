r"""Stacked MNIST with 1000 modes (Srivastava et al. 2017's VEEGAN setting; PacGAN).

Three independently, uniformly drawn MNIST digits in the R, G, B channels of a
28 x 28 image: 1000 equally likely modes. Scored by the project's own digit
classifier (experiments/score.py): modes covered by 26,000 samples and the KL
of their mode histogram to the uniform.

Variants: the DCGAN-28 of configs/images.py (non-saturating generator loss)
and the papers' stabilizers on the same players:
  dcgan           the baseline (default);
  reg             Reg-DCGAN: plus an encoder, Che et al.'s MNIST weights
                  lambda1 = 0.2 (geometric), lambda2 = 0.4 (mode);
  roth            Roth et al.'s JS regularizer with their image schedule,
                  gamma 2.0 annealed by a factor 0.01 over the run
                  (configs/roth_images.py);
  instance_noise  instance noise on both D inputs, std annealed linearly from
                  0.5 to 0 over the first 3/4 of the run (the schedule of
                  configs/instance_noise_2d.py, decided here for images in
                  [-1, 1]); the generator keeps the non-saturating loss;
  wgan_gp         WGAN-GP: Wasserstein critic, lambda = 10, 5 critic steps,
                  Adam(1e-4, b1 = 0, b2 = 0.9) for both players (Gulrajani et
                  al.'s defaults, as configs/wgan_2d.py:gp); the critic has no
                  batch norm (the penalty is per example);
  betagan         beta-GAN: heated data from Uniform[-1, 1]^(28x28x3) through
                  20 levels of beta from 0.1 to 10 to the data, in the
                  proportions of configs/pacgan_2d.py:betagan (1/7 uniform,
                  4/7 levels, 2/7 data); saturating generator loss and
                  z ~ Uniform[-1, 1]^2352 (its paper's: a generator fills the
                  uniform box only with dim z >= dim x). Its stage lengths are
                  fixed for 20,000 steps (a study scales them with --steps; a
                  shorter run of this file alone sets
                  game.perturbation.level.uniform_steps and .steps_per_level;
                  one that would end before the data stage is refused);
  sgld            a Langevin (SGLD) discriminator with the settings of
                  configs/langevin_mnist.py:sgld (lr 2e-4, N = the training
                  set's size, weight decay 1e-5, the generator against its
                  last 5 samples), without that config's blur.

  python -m experiments.main --config=configs/stacked_mnist.py:reg --workdir=runs/stacked \
      --config.data.npz_path=/path/to/mnist.npz   # offline: a local MNIST copy
"""

from configs import betagan_mixture_3d
from configs import common
from configs import images

VARIANTS = ("dcgan", "reg", "roth", "instance_noise", "wgan_gp", "betagan", "sgld")


def get_config(variant: str = "dcgan"):
  if variant not in VARIANTS:
    raise ValueError(f"variant must be one of {', '.join(VARIANTS)}; got {variant!r}")
  c = images.image_config("stacked_mnist")
  c.game.name = "reg_gan" if variant == "reg" else "adversarial"
  c.game.lambda1 = 0.2  # geometric regularizer ||x - G(E(x))||^2
  c.game.lambda2 = 0.4  # mode regularizer -log D(G(E(x)))
  steps = c.train.get_ref("num_steps")  # schedules follow overrides of the run length
  if variant == "roth":
    c.game.penalty = common.penalty(
        "roth_js", {"name": "gamma_decay", "gamma_0": 2.0, "decay": 0.01,
                    "total_steps": steps})
  elif variant == "instance_noise":
    c.game.perturbation = common.perturbation(
        "instance_noise", {"name": "linear", "init_value": 0.5, "end_value": 0.0,
                           "transition_steps": steps * 3 // 4})
  elif variant == "wgan_gp":
    c.game.loss = "wasserstein"
    c.game.n_critic = 5
    c.model.discriminator.batch_norm = False
    c.optim.generator = common.optimizer("adam", learning_rate=1e-4, b1=0.0, b2=0.9)
    c.optim.discriminator = common.optimizer("adam", learning_rate=1e-4, b1=0.0, b2=0.9)
    c.game.penalty = common.penalty("wgan_gp", 10.0)
  elif variant == "betagan":
    # Fixed step counts, as configs/pacgan_2d.py:betagan: a study scales them
    # with its --steps; a run of another length sets them with its overrides.
    n = int(c.train.num_steps)
    c.game.loss = "minimax"
    c.model.latent_shape = (28 * 28 * 3,)
    c.model.latent_prior = "uniform"
    c.game.perturbation = common.perturbation(
        "heat", betagan_mixture_3d.betagan_level(steps_per_level=4 * n // 7 // 20,
                                                 uniform_steps=n // 7),
        low=-1.0, high=1.0)
  elif variant == "sgld":
    c.optim.discriminator = common.optimizer("sgld", learning_rate=2e-4, data_size="auto",
                                             weight_decay=1e-5)
    c.game.ensemble = 5
  return c
