r"""A Langevin-trained discriminator with blur coarse-graining on conditional MNIST
(the Langevin-discriminator paper: SGLD and covariance-controlled noise, images
blurred before D with the blur annealed to 0).
The samplers' posterior uses N = the size of the training set actually loaded.

Conditional DCGAN-28 (label embedding in G, projection in D); D sampled by
cc-SGLD over a posterior with N = the data set size; the generator trains
against the last 5 D samples; blur std annealed from 2 px to 0 over the first
half of training. Variants: cc_sgld (default), sgld, cc_sgld_complement, adam
(the non-Bayesian baseline with the same blur).
"""

from configs import common
from configs import images

VARIANTS = ("cc_sgld", "sgld", "cc_sgld_complement", "adam")


def get_config(variant: str = "cc_sgld"):
  if variant not in VARIANTS:
    raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
  c = images.image_config("mnist")
  c.model.generator.num_classes = 10
  c.model.discriminator.num_classes = 10
  c.train.num_steps = 20_000
  c.game.perturbation = common.perturbation(
      "blur", {"name": "linear", "init_value": 2.0, "end_value": 0.0,
               "transition_steps": c.train.get_ref("num_steps") // 2}, radius=6)
  if variant != "adam":
    c.optim.discriminator = common.optimizer(  # data_size: N = the training set's size
        "cc_sgld" if variant.startswith("cc") else "sgld", learning_rate=2e-4,
        data_size="auto", weight_decay=1e-5)
    if variant == "cc_sgld_complement":
      c.optim.discriminator.mode = "complement"
    c.game.ensemble = 5
  return c
