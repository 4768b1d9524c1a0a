r"""The vanilla-GAN baseline of beta-GAN's 3-D experiments (Mehrjou et al. 2017).

Same models, batch and number of gradient evaluations as
configs/betagan_mixture_3d.py, trained on the data from the start. Variants
':5', ':10' (mixture components) and ':cubes' (nested cubic frames). The paper's
vanilla GAN uses the non-saturating loss (it needs it to train at all).
"""

from configs import betagan_mixture_3d
from configs import common


def get_config(variant: str = "5"):
  c = betagan_mixture_3d.get_config("10" if variant == "10" else "5")
  if variant == "cubes":
    c.data.name = "cube_frames"
  elif variant not in ("5", "10"):
    raise ValueError(f"variant must be '5', '10' or 'cubes', got {variant!r}")
  c.game.loss = "non_saturating"
  c.game.perturbation = common.perturbation()
  return c
