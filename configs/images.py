"""Shared defaults of the image experiments; each config file overrides them."""

import ml_collections

from configs import common


def image_config(data: str = "mnist") -> ml_collections.ConfigDict:
  """A complete image-experiment config (DCGAN on ``data``)."""
  c = common.toy_config()
  # Data: TFDS by default; offline, point npz_path at a local .npz with
  # x_train, y_train, x_test, y_test (e.g. --config.data.npz_path=mnist.npz).
  # max_examples: read only the first this many images (0: all).
  # stream_buffer: 0 keeps the split on the device; N > 0 streams it, the
  # device holding N examples refilled from the host before every call
  # (gan_jax.data.stream; about steps_per_call * batch_size reads each example
  # about once). stream_seed: seed of the streaming order.
  c.data = ml_collections.ConfigDict(
      {"name": data, "source": "auto", "npz_path": "", "data_dir": "", "max_examples": 0,
       "stream_buffer": 0, "stream_seed": 0})
  c.model.generator = ml_collections.ConfigDict(
      {"name": "dcgan", "base_features": 64, "batch_norm": True,
       "output_activation": "tanh"})
  c.model.discriminator = ml_collections.ConfigDict(
      {"name": "dcgan", "base_features": 64, "batch_norm": True})
  c.model.encoder = ml_collections.ConfigDict(
      {"name": "dcgan", "base_features": 64, "batch_norm": True,
       "output_activation": "linear"})
  c.model.latent_shape = (100,)
  c.model.latent_prior = "normal"
  c.game.loss = "non_saturating"
  adam = {"name": "adam", "learning_rate": 2e-4, "b1": 0.5}
  c.optim.generator = ml_collections.ConfigDict(adam)
  c.optim.discriminator = ml_collections.ConfigDict(adam)
  c.optim.encoder = ml_collections.ConfigDict(adam)
  c.train.batch_size = 64
  c.train.num_steps = 20_000
  # Convolutions on XLA:CPU are ~10x slower inside a rolled scan; a fully
  # unrolled scan of 4 steps measured fastest for DCGAN-28 (7.9 steps/s vs 6.8
  # one step per call and 0.65 rolled; experiments/benchmark.py --suite=conv).
  c.train.steps_per_call = 4
  c.train.unroll = 4
  c.train.log_every = 100
  c.train.eval_every = 1000
  c.train.checkpoint_every = 1000
  c.train.plot_every = 1000
  c.train.eval_samples = 256
  c.train.best_metric = ""
  return c
