r"""beta-GAN on MNIST with fully connected networks (Mehrjou et al. 2017, Fig. 5).

G [z(784) | BN-ReLU 256 x3 | Linear 784], z ~ U[-1,1]^784;
D [x(784) | BN-ReLU 256 | BN-ReLU 512 | BN-ReLU 512 | sigmoid];
annealing beta_1 = 0.1, beta_K = 10, K = 20 from Uniform[-1,1]^784 to the data;
saturating generator loss.
"""

from configs import common
from configs import images
from configs.betagan_mixture_3d import betagan_level
from gan_jax import schedules


def get_config():
  c = images.image_config("mnist")
  c.model.generator = {"name": "mlp", "widths": (256, 256, 256), "activation": "relu",
                       "batch_norm": True, "output_activation": "linear"}
  c.model.discriminator = {"name": "mlp", "widths": (256, 512, 512), "activation": "relu",
                           "batch_norm": True}
  c.model.latent_shape = (28, 28, 1)
  c.model.latent_prior = "uniform"
  c.train.seed_batching = "vmap"  # MLP players: vmapped seeds are the faster (benchmark)
  c.game.loss = "minimax"
  # D has batch norm from its first layer: with all-fake batches it could not see
  # a brightness shift shared by all samples, so real and fake share batches.
  c.game.joint_batch = True
  uniform_steps, steps_per_level, data_steps = 1000, 500, 4000
  c.game.perturbation = common.perturbation(
      "heat", betagan_level(steps_per_level=steps_per_level, uniform_steps=uniform_steps),
      low=-1.0, high=1.0)
  c.optim.generator = common.optimizer("adam", learning_rate=2e-4, b1=0.5)
  c.optim.discriminator = common.optimizer("adam", learning_rate=2e-4, b1=0.5)
  c.train.num_steps = schedules.beta_schedule_length(
      steps_per_level=steps_per_level, uniform_steps=uniform_steps) + data_steps
  # Fully connected: scan fusion pays off as for the toys.
  c.train.steps_per_call = 100
  c.train.log_every = 500
  c.train.eval_every = 1000
  c.train.checkpoint_every = 1000
  c.train.plot_every = 1000
  return c
