r"""Roth et al. (2017): an f-GAN with the noise-induced f-regularizer.

Omega_f = E_Q[f*''(T) ||grad_x T||^2], gamma annealed from 2.0 with decay 0.01
over the run. Variant: the divergence (kl default, reverse_kl, pearson,
squared_hellinger, js, gan).
"""

from configs import common


def get_config(divergence: str = "kl"):
  c = common.toy_config()
  c.data.name = "ring_8"
  c.model.latent_shape = (2,)
  c.model.latent_prior = "normal"
  c.game.loss = f"fgan_{divergence}"
  c.train.num_steps = 20_000
  c.game.penalty = common.penalty(
      "roth_fgan", {"name": "gamma_decay", "gamma_0": 2.0, "decay": 0.01,
                    "total_steps": c.train.get_ref("num_steps")},  # follows overrides
      divergence=divergence)
  return c
