r"""The standard 2-D mode-collapse benchmark under PacGAN's protocol (METHODS §6).

Data: the ring of 8 (unit circle, std 0.01) or the grid of 25 ({-4..4}^2, std
0.05); scored by the published protocol (2,500 samples, 3 std: the eval
metrics ``pacgan_modes``, ``pacgan_high_quality``, ``pacgan_kl``).

PacGAN's networks and optimizer (Lin et al. 2018, as METHODS §6 fixes them):
z ~ N(0, I_2); G four ReLU layers of 400 units, linear output; D maxout
layers of 200 units with 5 pieces each; weights N(0, 0.02^2), zero biases;
Adam(1e-4, b1 = 0.8) for every player; batch 100; 400 epochs of 100,000
points = 400,000 steps. Decided here, as the sheet does not fix them: D has
three hidden maxout layers, and neither network uses batch norm. Every batch
is a fresh draw of the distribution (the protocol's fixed 100,000 points are
not kept).

Variants '<data>,<method>' with data in ring_8 (default), grid_25 and method
(default gan) one of the papers' stabilizers, each with the settings of its
own config file, on these networks and this optimizer:
  gan             the vanilla GAN (non-saturating generator loss);
  wgan_gp         WGAN-GP: Wasserstein critic, lambda = 10, 5 critic steps
                  (configs/wgan_2d.py:gp);
  ct_gan          CT-GAN: WGAN-GP plus the consistency term (lambda_CT = 2,
                  M' = 0) on a critic with dropout 0.2 (configs/wgan_2d.py:ct);
  roth            Roth et al.'s JS regularizer, gamma = 0.1 (their toy value),
                  non-saturating generator loss;
  betagan         beta-GAN: heated data from Uniform over the data set's box
                  (ring [-1.2, 1.2]^2, grid [-4.8, 4.8]^2) through 20 levels of
                  beta from 0.1 to 10 to the data, in the proportions of
                  configs/betagan_mixture_3d.py (1/7 uniform, 4/7 levels, 2/7
                  data); saturating generator loss;
  instance_noise  instance noise on both D inputs, sigma annealed linearly
                  from 0.5 to 0 over the first 3/4 of training
                  (configs/instance_noise_2d.py), minimax generator loss;
  sgld            a Langevin (SGLD) discriminator, lr 1e-3, data_size 10^4,
                  weight decay 1e-4, the generator against its last 5 samples
                  (configs/sgld_discriminator.py:sgld);
  reg_gan         Che et al.'s mode-regularized GAN, lambda1 = lambda2 = 0.005
                  (their toy values), an encoder mirroring G onto the latent.
The optimizer of the method keeps the protocol's Adam(1e-4, b1 = 0.8) except
where the method is an optimizer (the SGLD discriminator).

  python -m experiments.main --config=configs/pacgan_2d.py:grid_25,wgan_gp --workdir=/tmp/pg
"""

from configs import betagan_mixture_3d
from configs import common
from gan_jax.data import toy

DATA = ("ring_8", "grid_25")
METHODS = ("gan", "wgan_gp", "ct_gan", "roth", "betagan", "instance_noise", "sgld",
           "reg_gan")

# 400 epochs of 100,000 points at batch 100.
PROTOCOL_STEPS = 400_000


def protocol_optimizer():
  """PacGAN's optimizer for every player: Adam(1e-4, b1 = 0.8)."""
  return common.optimizer("adam", learning_rate=1e-4, b1=0.8)


def get_config(variant: str = "ring_8,gan"):
  data, _, method = variant.partition(",")
  method = method or "gan"
  if data not in DATA or method not in METHODS:
    raise ValueError(f"variant must be '<data>[,<method>]' with data in {DATA} and method "
                     f"in {METHODS}; got {variant!r}")
  c = common.toy_config()
  c.data.name = data
  init = {"kernel_init": "normal", "init_std": 0.02}
  c.model.generator.update({"widths": (400,) * 4, "activation": "relu",
                            "output_activation": "linear", **init})
  c.model.discriminator.update({"widths": (200,) * 3, "activation": "maxout", "pieces": 5,
                                **init})
  c.model.latent_shape = (2,)
  c.model.latent_prior = "normal"
  c.game.loss = "non_saturating"
  c.optim.generator = protocol_optimizer()
  c.optim.discriminator = protocol_optimizer()
  c.train.batch_size = 100
  c.train.num_steps = PROTOCOL_STEPS
  c.train.steps_per_call = 500
  c.train.log_every = 5000
  c.train.eval_every = 20_000
  c.train.checkpoint_every = 20_000
  c.train.plot_every = 100_000
  n = c.train.num_steps
  if method in ("wgan_gp", "ct_gan"):
    c.game.loss = "wasserstein"
    c.game.n_critic = 5
    c.game.penalty = common.penalty("wgan_gp", 10.0)
    if method == "ct_gan":
      c.model.discriminator.dropout_rate = 0.2
      c.game.penalty_2 = common.penalty("ct", 2.0, margin=0.0)
  elif method == "roth":
    c.game.penalty = common.penalty("roth_js", 0.1)
  elif method == "betagan":
    c.game.loss = "minimax"
    low, high = toy.make_toy(data).box
    c.game.perturbation = common.perturbation(
        "heat", betagan_mixture_3d.betagan_level(steps_per_level=4 * n // 7 // 20,
                                                 uniform_steps=n // 7),
        low=low, high=high)
  elif method == "instance_noise":
    c.game.loss = "minimax"
    c.game.perturbation = common.perturbation(
        "instance_noise", {"name": "linear", "init_value": 0.5, "end_value": 0.0,
                           "transition_steps": 3 * n // 4})
  elif method == "sgld":
    c.optim.discriminator = common.optimizer("sgld", learning_rate=1e-3, data_size=10_000,
                                             weight_decay=1e-4)
    c.game.ensemble = 5
  elif method == "reg_gan":
    c.game.name = "reg_gan"
    c.game.lambda1 = 0.005  # geometric regularizer ||x - G(E(x))||^2
    c.game.lambda2 = 0.005  # mode regularizer -log D(G(E(x)))
    c.model.encoder = {"name": "mlp", "widths": (400,) * 4, "activation": "relu",
                       "output_activation": "linear", **init}
    c.optim.encoder = protocol_optimizer()
  return c
