r"""Compositional MNIST with 1000 modes (Che et al. 2017, Sec. 4.1.2, Table 2).

Three digits side by side in a 64x64 image, digits drawn with unequal
probabilities (four sets); DCGAN-64 baseline vs Reg-DCGAN vs MDGAN.
Variants '<model>[,<set>]': model in dcgan, reg, mdgan (default reg), set in 1..4.
"""

from configs import images


def get_config(variant: str = "reg"):
  model, _, digit_set = variant.partition(",")
  digit_set = int(digit_set or 1)
  if model not in ("dcgan", "reg", "mdgan") or digit_set not in (1, 2, 3, 4):
    raise ValueError(f"variant must be '<dcgan|reg|mdgan>[,<1-4>]', got {variant!r}")
  c = images.image_config("compositional_mnist")
  c.data.digit_set = digit_set
  c.game.name = {"reg": "reg_gan", "mdgan": "mdgan", "dcgan": "adversarial"}[model]
  c.game.lambda1 = 0.2  # geometric regularizer ||x - G(E(x))||^2
  c.game.lambda2 = 0.4  # mode regularizer -log D(G(E(x)))
  c.game.lambda_manifold = 1.0  # MDGAN's manifold step (configs/reg_gan_mnist.py)
  return c
