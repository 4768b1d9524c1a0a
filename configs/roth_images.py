r"""Roth et al. (2017) on images: DCGAN or ResNet GANs with the JS regularizer,
gamma annealed from 2.0 (decay 0.01 over the run), non-saturating generator.

Variants '<model>,<data>[,unreg]': model in dcgan, resnet; data in cifar10,
celeb_a, lsun_bedroom. ',unreg' drops the regularizer (the baseline).
"""

from configs import common
from configs import images

MODELS = ("dcgan", "resnet")
DATA = ("cifar10", "celeb_a", "lsun_bedroom")


def get_config(variant: str = "dcgan,cifar10"):
  parts = variant.split(",")
  if len(parts) not in (2, 3) or parts[0] not in MODELS or parts[1] not in DATA or (
      len(parts) == 3 and parts[2] != "unreg"):
    raise ValueError(f"variant must be '<model>,<data>[,unreg]' with model in {MODELS} and "
                     f"data in {DATA}, got {variant!r}")
  model, data = parts[:2]
  c = images.image_config(data)
  c.model.generator.name = model
  c.model.discriminator.name = model
  c.model.encoder.name = model
  c.model.latent_shape = (128,) if model == "resnet" else (100,)
  if model == "resnet":
    c.model.generator.base_features = 128
    c.model.discriminator.base_features = 128
  c.train.num_steps = 100_000
  if data == "lsun_bedroom":  # 3 million images: streamed, not kept on the device
    # One call's draws per buffer; follows overrides of either factor.
    c.data.stream_buffer = c.train.get_ref("steps_per_call") * c.train.get_ref("batch_size")
  if len(parts) == 2:
    c.game.penalty = common.penalty(
        "roth_js", {"name": "gamma_decay", "gamma_0": 2.0, "decay": 0.01,
                    "total_steps": c.train.get_ref("num_steps")})  # follows overrides
  return c
