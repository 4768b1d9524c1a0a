"""A method is a configuration: a broad sample of game x objective x penalty x
perturbation x optimizer combinations, each built and run for two steps.

Each case checks finite losses, that every configured component acted (its
metric is present and non-zero, the sampler injected noise, clipping kept the
critic in its box), and the combinations that mean nothing are refused with
the reason. The sample is a deterministic spread over the axes (each value of
each axis appears, in different company), not the full product.
"""

import itertools

from absl.testing import parameterized
import jax
import numpy as np

from configs import che_circle
from configs import common
from gan_jax import errors
from gan_jax.train import loop
from gan_jax.train import validate
from tests.test_train import run_steps, shrink

GAMES = ("adversarial", "reg_gan", "mdgan")
OBJECTIVES = ("non_saturating", "minimax", "wasserstein", "hinge", "least_squares", "fgan_js")
PENALTIES = ("none", "roth_js", "r1", "r2", "wgan_gp", "dragan", "roth_fgan")
PERTURBATIONS = ("none", "instance_noise", "heat")
OPTIMIZERS = ("adam", "sgld", "rmsprop_clip", "cc_sgld")


def _cases(n=18):
  """``n`` combinations spread over the axes with coprime strides."""
  out = []
  for i in range(n):
    game = GAMES[i % 3]
    objective = OBJECTIVES[(5 * i + 1) % 6]
    penalty = PENALTIES[(3 * i) % 7]
    if penalty == "roth_fgan":
      objective = "fgan_js"  # its divergence must be the f-GAN's
    perturbation = PERTURBATIONS[(i // 3) % 3]
    optimizer = OPTIMIZERS[(i + i // 4) % 4]
    out.append((f"{i:02d}_{game}_{objective}_{penalty}_{perturbation}_{optimizer}",
                game, objective, penalty, perturbation, optimizer))
  return out


def combination_config(game, objective, penalty, perturbation, optimizer):
  c = shrink(che_circle.get_config("reg"), steps=2, spc=1)
  c.game.name = game
  c.game.loss = objective
  if penalty != "none":
    kwargs = {"divergence": "js"} if penalty == "roth_fgan" else {}
    c.game.penalty = common.penalty(penalty, 0.5, **kwargs)
  if perturbation == "instance_noise":
    c.game.perturbation = common.perturbation("instance_noise", 0.1)
  elif perturbation == "heat":
    c.model.latent_shape = (3,)  # dim z >= dim x = 2
    c.game.perturbation = common.perturbation("heat", 2.0, low=-6.0, high=6.0)
  if optimizer == "sgld":
    c.optim.discriminator = common.optimizer("sgld", learning_rate=1e-3, data_size=100)
    c.game.ensemble = 2
  elif optimizer == "cc_sgld":
    c.optim.discriminator = common.optimizer("cc_sgld", learning_rate=1e-3)
  elif optimizer == "rmsprop_clip":
    c.optim.discriminator = common.optimizer("rmsprop", learning_rate=1e-3, clip=0.05)
  return c


class CombinationTest(parameterized.TestCase):

  def test_every_axis_value_is_sampled(self):
    cases = _cases()
    for axis, values in enumerate((GAMES, OBJECTIVES, PENALTIES, PERTURBATIONS, OPTIMIZERS)):
      self.assertEqual({c[axis + 1] for c in cases}, set(values))

  @parameterized.named_parameters(*_cases())
  def test_combination_runs_and_each_component_acts(self, game, objective, penalty,
                                                    perturbation, optimizer):
    c = combination_config(game, objective, penalty, perturbation, optimizer)
    validate.validate_config(c)
    _, state, history = run_steps(c, n_calls=2)
    metrics = {k: np.concatenate([np.ravel(h[k]) for h in history if k in h])
               for k in history[-1]}
    for h in history:
      loop.check_finite(h, 0)
    self.assertEqual(int(state.step), 2)
    if penalty != "none":
      # The main penalty's weighted value, whichever discriminator(s) carry it.
      weighted = [k for k in metrics if k.endswith("penalty_weighted")]
      self.assertTrue(weighted, sorted(metrics))
      self.assertTrue(any(np.all(metrics[k] > 0) for k in weighted), sorted(metrics))
    if perturbation != "none":
      self.assertTrue(np.all(metrics["level"] > 0), metrics.get("level"))
    if optimizer in ("sgld", "cc_sgld"):
      # cc-SGLD's gradient covariance estimate starts at zero: noise from step 2.
      noise = [k for k in metrics if k.endswith("noise_std")]
      self.assertTrue(noise and all(metrics[k][-1] > 0 for k in noise), sorted(metrics))
    if optimizer == "sgld":  # with an ensemble of the last 2 discriminator samples
      self.assertTrue(any(k.endswith("history") for k in state.extra), sorted(state.extra))
    if optimizer == "rmsprop_clip":
      for player, params in state.params.items():
        if player.startswith("d"):
          top = max(float(np.max(np.abs(x))) for x in jax.tree.leaves(params))
          self.assertLessEqual(top, 0.05 + 1e-7, player)

  @parameterized.named_parameters(
      ("joint_batch_in_encoder_game", lambda c: c.game.update(
          {"name": "reg_gan", "joint_batch": True}), r"joint_batch.*reg_gan"),
      ("fgan_penalty_of_another_divergence", lambda c: c.game.update(
          {"loss": "fgan_kl", "penalty": common.penalty("roth_fgan", 1.0, divergence="js")}),
       r"divergence \('js'\) must match.*fgan_kl"),
      ("heat_with_small_latent", lambda c: c.game.update(
          {"perturbation": common.perturbation("heat", 2.0, low=-6.0, high=6.0)})
       or c.model.update({"latent_shape": (1,)}), r"dim z >= dim x"),
      ("blur_on_points", lambda c: c.game.update(
          {"perturbation": common.perturbation("blur", 1.0)}), r"blur.*images"),
  )
  def test_meaningless_combination_is_refused_with_the_reason(self, mutate, pattern):
    c = shrink(che_circle.get_config("reg"), steps=2, spc=1)
    mutate(c)
    with self.assertRaisesRegex(errors.ConfigError, pattern):
      validate.validate_config(c)


def test_cases_are_distinct():
  names = [c[0] for c in _cases()]
  assert len(set(names)) == len(names)
  assert len(set(itertools.chain.from_iterable([c[1:] for c in _cases()]))) > 10
