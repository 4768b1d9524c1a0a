r"""Mode-regularized GANs on MNIST (Che et al. 2017, Sec. 4.1).

DCGAN-28 generator and discriminator plus an encoder mirroring the generator.
Variants: ':reg' (default; Reg-GAN, lambda1 = 0.2, lambda2 = 0.4), ':mdgan'
(manifold-diffusion training), ':gan' (the same models without the encoder).
"""

from configs import images


def get_config(variant: str = "reg"):
  if variant not in ("reg", "mdgan", "gan"):
    raise ValueError(f"variant must be 'reg', 'mdgan' or 'gan', got {variant!r}")
  c = images.image_config("mnist")
  c.game.name = {"reg": "reg_gan", "mdgan": "mdgan", "gan": "adversarial"}[variant]
  c.game.lambda1 = 0.2  # geometric regularizer ||x - G(E(x))||^2
  c.game.lambda2 = 0.4  # mode regularizer -log D(G(E(x)))
  c.game.lambda_manifold = 1.0
  return c
