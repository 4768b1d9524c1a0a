r"""Roth et al. (2017): 7 Gaussians on a tilted circle in 3-D, with and without
the noise-induced JS regularizer, as the authors' code sets it.

z ~ N(0, I_2); G: 2 tanh layers of 128 + linear 3; D: 2 tanh layers of 128 +
linear logit; weights truncated-normal std 0.1, zero biases; Adam(1e-3,
b1=0.5) for both; batch 512; gamma = 0.1; 100k generator steps. Their code's
generator loss is the saturating one ('minimax'); the paper recommends the
non-saturating one: --config.game.loss=non_saturating.

Variants: ':reg' (default), ':unreg', ':reg_5d' (5 D steps per G step),
':reg_lazy' (the regularizer every 4th D step with 4x weight).
"""

from configs import common


def get_config(variant: str = "reg"):
  variants = ("reg", "unreg", "reg_5d", "reg_lazy")
  if variant not in variants:
    raise ValueError(f"variant must be one of {variants}, got {variant!r}")
  c = common.toy_config()
  c.data.name = "roth_submanifold"
  init = {"kernel_init": "truncated_normal", "init_std": 0.1}
  c.model.generator.update({"widths": (128, 128), "activation": "tanh",
                            "output_activation": "linear", **init})
  c.model.discriminator.update({"widths": (128, 128), "activation": "tanh", **init})
  c.model.latent_shape = (2,)
  c.model.latent_prior = "normal"
  c.game.loss = "minimax"
  if variant != "unreg":
    # gamma = 0.1; the loss adds gamma/2 * Omega_JS.
    c.game.penalty = common.penalty("roth_js", 0.1, every=4 if variant == "reg_lazy" else 1)
  if variant == "reg_5d":
    c.game.n_critic = 5
  c.optim.generator.update({"name": "adam", "learning_rate": 1e-3, "b1": 0.5})
  c.optim.discriminator.update({"name": "adam", "learning_rate": 1e-3, "b1": 0.5})
  c.train.batch_size = 512
  c.train.num_steps = 100_000
  c.train.steps_per_call = 500
  c.train.log_every = 1000
  c.train.eval_every = 5000
  c.train.checkpoint_every = 10_000
  c.train.plot_every = 20_000
  return c
