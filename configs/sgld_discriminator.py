r"""A Langevin-trained (Bayesian) discriminator on the 2-D mixtures.

The discriminator is sampled with SGLD, or covariance-controlled SGLD whose
injected noise follows the running gradient covariance, and the generator is
trained against an ensemble of its last k samples. Combines with any loss or
penalty by override (e.g. --config.game.loss=wasserstein with a wgan_gp penalty).

Variants '<sampler>[,<data>]': sampler in sgld, cc_sgld (default),
cc_sgld_complement, psgld; data in ring_8 (default), grid_25.
"""

from configs import common

SAMPLERS = ("sgld", "cc_sgld", "cc_sgld_complement", "psgld")


def get_config(variant: str = "cc_sgld"):
  sampler, _, data = variant.partition(",")
  data = data or "ring_8"
  if sampler not in SAMPLERS or data not in ("ring_8", "grid_25"):
    raise ValueError(f"variant must be '<sampler>[,<data>]' with sampler in {SAMPLERS} "
                     f"and data in ('ring_8', 'grid_25'), got {variant!r}")
  c = common.toy_config()
  c.data.name = data
  c.model.generator.update({"widths": (128, 128), "activation": "relu"})
  c.model.discriminator.update({"widths": (128, 128), "activation": "relu"})
  c.model.latent_shape = (2,)
  c.model.latent_prior = "normal"
  c.game.loss = "non_saturating"
  # The posterior of D given a data set of N examples: energy N * mean loss,
  # i.e. the samplers' data_size. For sgld, psgld and the complement mode it
  # acts as temperature T / N; a Gaussian prior is the weight decay.
  opt = {"name": "cc_sgld" if sampler.startswith("cc_sgld") else sampler,
         "learning_rate": 1e-3, "data_size": 10_000, "weight_decay": 1e-4}
  if sampler == "cc_sgld_complement":
    opt["mode"] = "complement"
  if sampler == "cc_sgld":
    # Full mode measures its noise from the gradients' covariance I_t, and
    # data_size = N makes the injected variance eps N I_t: N times that of
    # data_size = 1, not 1/N (transforms.cc_sgld). With N = 10^4 the noise
    # was 200-14000 times the drift (d_noise_to_drift) and D diverged within
    # 20-300 steps at any step size 1e-3..1e-5 (the stationary spread
    # N I_t / (2 H), H the curvature, does not depend on the step). The
    # paper's form, data_size = 1
    # (noise N(0, eps I_t) for mean-loss gradients), gives a noise level close
    # to SGLD's here: ratio 9-54 over 3000 steps (sgld: 29-46), injected std
    # 4e-4 rising to 1.1e-3 (sgld: 4.5e-4).
    opt["data_size"] = 1
  c.optim.discriminator = common.optimizer(opt.pop("name"), **opt)
  c.game.ensemble = 5
  c.train.batch_size = 256
  c.train.num_steps = 20_000
  return c
