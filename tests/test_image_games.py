"""Every image experiment config trains a few steps (tiny models, generated npz data)."""

import os

from absl.testing import parameterized
import jax
import ml_collections
import numpy as np

from configs import betagan_celeba
from configs import betagan_mnist
from configs import compositional_mnist
from configs import dcgan_mnist
from configs import langevin_mnist
from configs import reg_gan_mnist
from configs import roth_images
from gan_jax import games
from gan_jax.data import make_source
from gan_jax.train import loop
from gan_jax.train import step as step_lib


def write_npz(path, shape, num_classes=10, n=64, seed=0):
  """A small stand-in data set: digit-like blobs whose brightness encodes the label."""
  rng = np.random.default_rng(seed)
  y = rng.integers(0, num_classes, n)
  x = rng.integers(0, 60, (n, *shape)).astype(np.uint8)
  x[:, 4:-4, 4:-4] += (y * 19).astype(np.uint8).reshape((n, 1, 1) + (1,) * (len(shape) - 2))
  np.savez(path, x_train=x, y_train=y.astype(np.uint8), x_test=x[:8], y_test=y[:8])
  return path


def shrink_images(c, npz_path, *, steps=4, batch=8):
  for name in ("generator", "discriminator", "encoder"):
    spec = c.model.get(name, None)
    if spec is None:
      continue
    if "base_features" in spec:
      spec.base_features = 8
    if "widths" in spec:
      spec.widths = (16,) * len(spec.widths)
  c.data.npz_path = npz_path
  c.train.batch_size = batch
  c.train.num_steps = steps
  c.train.steps_per_call = 1
  level = c.game.perturbation.level
  if isinstance(level, ml_collections.ConfigDict) and level.get("name") == "beta":
    level.uniform_steps, level.steps_per_level, level.K = 1, 1, 1
  return c


CONFIGS = {
    "dcgan_mnist": (dcgan_mnist.get_config, (28, 28)),
    "betagan_mnist_fc": (betagan_mnist.get_config, (28, 28)),
    "reg_gan_mnist": (lambda: reg_gan_mnist.get_config("reg"), (28, 28)),
    "mdgan_mnist": (lambda: reg_gan_mnist.get_config("mdgan"), (28, 28)),
    "compositional_reg_dcgan": (lambda: compositional_mnist.get_config("reg,2"), (28, 28)),
    "roth_dcgan_cifar10": (lambda: roth_images.get_config("dcgan,cifar10"), (32, 32, 3)),
    "roth_resnet_cifar10": (lambda: roth_images.get_config("resnet,cifar10"), (32, 32, 3)),
    "langevin_conditional_blur": (langevin_mnist.get_config, (28, 28)),
    "betagan_celeba": (betagan_celeba.get_config, (64, 64, 3)),
}


class ImageGamesTest(parameterized.TestCase):

  @parameterized.named_parameters(*[(k, *v) for k, v in CONFIGS.items()])
  def test_trains_without_nan(self, make_config, shape):
    path = write_npz(os.path.join(self.create_tempdir().full_path, "data.npz"), shape)
    c = shrink_images(make_config(), path)
    if c.model.latent_shape == (64, 64, 3):
      c.model.latent_shape = (8, 8, 3)  # the data-sized latent, scaled down for speed
    source = make_source(c.data)
    game = games.make_game(c, source)
    mesh = step_lib.make_mesh(1)
    state = step_lib.init_state(game, 0, mesh)
    init_params = jax.tree.map(np.asarray, state.params)
    run = step_lib.compile_steps(game.step, mesh, steps_per_call=1)
    arrays = step_lib.put_replicated(source.arrays, mesh)
    for i in range(2):
      state, metrics = run(state, arrays)
      loop.check_finite(jax.device_get(metrics), i)
    for player, params in state.params.items():
      moved = max(float(np.max(np.abs(np.asarray(a) - b))) for a, b in zip(
          jax.tree.leaves(params), jax.tree.leaves(init_params[player])))
      self.assertGreater(moved, 0.0, player)
    samples = jax.jit(lambda s, k: game.sample(s, k, 4))(state, jax.random.PRNGKey(1))
    self.assertEqual(samples.shape, (4, *source.shape))

  def test_compositional_mnist_has_1000_modes(self):
    path = write_npz(os.path.join(self.create_tempdir().full_path, "d.npz"), (28, 28), n=200)
    c = shrink_images(compositional_mnist.get_config("dcgan,1"), path)
    source = make_source(c.data)
    self.assertEqual(source.shape, (64, 64, 1))
    self.assertEqual(source.info.num_modes, 1000)
    np.testing.assert_allclose(np.sum(source.info.mode_weights), 1.0, rtol=1e-6)
