r"""Compositional MNIST with 1000 modes (Che et al. 2017, Sec. 4.1.2, Table 2).

Three digits side by side in a 64x64 image, digits drawn with unequal
probabilities (four sets); DCGAN-64 baseline vs Reg-DCGAN.
Variants '<model>[,<set>]': model in dcgan, reg (default reg), set in 1..4.
"""

from configs import images


def get_config(variant: str = "reg"):
  model, _, digit_set = variant.partition(",")
  digit_set = int(digit_set or 1)
  if model not in ("dcgan", "reg") or digit_set not in (1, 2, 3, 4):
    raise ValueError(f"variant must be '<dcgan|reg>[,<1-4>]', got {variant!r}")
  c = images.image_config("compositional_mnist")
  c.data.digit_set = digit_set
  c.game.name = "reg_gan" if model == "reg" else "adversarial"
  c.game.lambda1 = 0.2
  c.game.lambda2 = 0.4
  return c
