r"""Stacked MNIST with 1000 modes (Srivastava et al. 2017's VEEGAN setting; PacGAN).

Three independently, uniformly drawn MNIST digits in the R, G, B channels of a
28 x 28 image: 1000 equally likely modes. Scored by the project's own digit
classifier (experiments/score.py): modes covered by 26,000 samples and the KL
of their mode histogram to the uniform.
Variants: ':dcgan' (default; the DCGAN-28 of configs/images.py) and ':reg'
(Reg-DCGAN: the same players plus an encoder, Che et al.'s MNIST weights
lambda1 = 0.2, lambda2 = 0.4).

  python -m experiments.main --config=configs/stacked_mnist.py:reg --workdir=runs/stacked \
      --config.data.npz_path=/path/to/mnist.npz   # offline: a local MNIST copy
"""

from configs import images


def get_config(variant: str = "dcgan"):
  if variant not in ("dcgan", "reg"):
    raise ValueError(f"variant must be 'dcgan' or 'reg', got {variant!r}")
  c = images.image_config("stacked_mnist")
  c.game.name = "reg_gan" if variant == "reg" else "adversarial"
  c.game.lambda1 = 0.2  # geometric regularizer ||x - G(E(x))||^2
  c.game.lambda2 = 0.4  # mode regularizer -log D(G(E(x)))
  return c
