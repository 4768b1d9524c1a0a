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
  c.optim.generator = common.optimizer("adam", learning_rate=2e-4, b1=0.5)
  c.optim.discriminator = common.optimizer("adam", learning_rate=2e-4, b1=0.5)
  c.optim.encoder = common.optimizer("adam", learning_rate=2e-4, b1=0.5)
  c.train.batch_size = 64
  c.train.num_steps = 20_000
  # Steps per call, measured with experiments/benchmark.py --suite=conv (CPU,
  # batch 64, sub-pixel upsampling): convolutions on XLA:CPU run on a slow path
  # inside a rolled scan (DCGAN-64: 0.01 steps/s against 0.50). A fully
  # unrolled scan of 4 is fastest for DCGAN-28 (8.4 vs 8.0 steps/s one step per
  # call) and DCGAN-32 (3.7 vs 3.2); for DCGAN-64 one step per call is (0.50 vs
  # 0.48), so the 64-px sets take that.
  c.train.steps_per_call = 4
  c.train.unroll = 4
  if data in ("celeb_a", "lsun_bedroom"):
    c.train.steps_per_call = 1
    c.train.unroll = 1
  # Seeds one after another in the program, not vmapped: a vmapped DCGAN-28
  # step over 5 seeds ran at 0.24x the single-seed throughput per seed on
  # this CPU, the unrolled one at 1.04x (benchmark --suite=seed_batching).
  c.train.seed_batching = "unroll"
  c.train.log_every = 100
  c.train.eval_every = 1000
  c.train.checkpoint_every = 1000
  c.train.plot_every = 1000
  c.train.eval_samples = 256
  c.train.best_metric = ""
  return c
