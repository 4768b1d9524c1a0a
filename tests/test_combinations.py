"""A method is a configuration: a broad sample of game x objective x penalty x
perturbation x optimizer combinations, each built and run for two steps.

Each case checks finite losses, that every configured component acted (each
penalty's value and weighted total are present and non-zero, the
perturbation level is, the sampler injected noise, clipping kept the critic
in its box), and the combinations that mean nothing are refused with the
reason. The sample is a deterministic spread over the axes (each value of
each axis appears, in different company), not the full product.

Two sets: toy cases (Che et al.'s circle, MLP players) and image cases (a
generated 28 x 28 npz set, the smallest size the DCGAN players take, with 4
base channels), the latter with blur, CT-GAN's consistency term (as
``penalty_2`` beside WGAN-GP, dropout in the critic) and class-conditional
players among their axes.
"""

import itertools
import os

from absl.testing import parameterized
import jax
import numpy as np

from configs import che_circle
from configs import common
from configs import reg_gan_mnist
from gan_jax import errors
from gan_jax.train import loop
from gan_jax.train import validate
from tests.test_image_games import shrink_images, write_npz
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


# Image cases: CT-GAN ('ct') is WGAN-GP plus the consistency term on a critic
# with dropout; 'conditional' gives G and D the data's 10 classes.
IMAGE_PENALTIES = ("wgan_gp", "ct", "roth_js", "r1")
IMAGE_PERTURBATIONS = ("instance_noise", "blur", "heat")
IMAGE_OPTIMIZERS = ("adam", "sgld", "rmsprop_clip")
IMAGE_CLASSES = 10


# Each image case compiles convolutional players through double backprop
# (tens of seconds on a CPU until the tests' compilation cache holds it), so
# the set is the fewest cases that hold every value of the image axes; MDGAN,
# the costliest game, gets a single penalty.
_IMAGE_TABLE = (
    ("adversarial", "wasserstein", "ct", "blur", "sgld", True),
    ("reg_gan", "non_saturating", "roth_js", "heat", "rmsprop_clip", True),
    ("mdgan", "hinge", "r1", "instance_noise", "adam", False),
    ("reg_gan", "least_squares", "wgan_gp", "instance_noise", "sgld", False),
)


def _image_cases():
  """(name, game, objective, penalty, perturbation, optimizer, conditional)."""
  return [(f"{i:02d}_{'_'.join(c[:5])}{'_conditional' if c[5] else ''}", *c)
          for i, c in enumerate(_IMAGE_TABLE)]


def add_components(c, objective, penalty, perturbation, optimizer, *, heat_latent,
                   heat_box=(-1.0, 1.0)):
  """``c`` with the objective, penalty, perturbation and discriminator optimizer;
  heat needs ``dim z >= dim x`` (``heat_latent``) and a box holding the data."""
  c.game.loss = objective
  if penalty == "ct":  # CT-GAN: WGAN-GP plus the consistency term, dropout in the critic
    c.game.penalty = common.penalty("wgan_gp", 0.5)
    c.game.penalty_2 = common.penalty("ct", 2.0, margin=0.0)
    c.model.discriminator.dropout_rate = 0.2
  elif penalty != "none":
    kwargs = {"divergence": "js"} if penalty == "roth_fgan" else {}
    c.game.penalty = common.penalty(penalty, 0.5, **kwargs)
  if perturbation == "instance_noise":
    c.game.perturbation = common.perturbation("instance_noise", 0.1)
  elif perturbation == "blur":
    c.game.perturbation = common.perturbation("blur", 0.8, radius=2)
  elif perturbation == "heat":
    c.model.latent_shape = heat_latent
    c.game.perturbation = common.perturbation("heat", 2.0, low=heat_box[0], high=heat_box[1])
  if optimizer == "sgld":
    c.optim.discriminator = common.optimizer("sgld", learning_rate=1e-3, data_size=100)
    c.game.ensemble = 2
  elif optimizer == "cc_sgld":
    c.optim.discriminator = common.optimizer("cc_sgld", learning_rate=1e-3)
  elif optimizer == "rmsprop_clip":
    c.optim.discriminator = common.optimizer("rmsprop", learning_rate=1e-3, clip=0.05)
  return c


def combination_config(game, objective, penalty, perturbation, optimizer):
  c = shrink(che_circle.get_config("reg"), steps=2, spc=1)
  c.game.name = game
  # dim z >= dim x = 2; the box holds the circle of radius 5.
  return add_components(c, objective, penalty, perturbation, optimizer, heat_latent=(3,),
                        heat_box=(-6.0, 6.0))


def image_combination_config(npz_path, game, objective, penalty, perturbation, optimizer,
                             conditional):
  """DCGAN-28 players with 4 base channels on the npz set at ``npz_path``."""
  c = shrink_images(reg_gan_mnist.get_config("reg"), npz_path, steps=2)
  for player in ("generator", "discriminator", "encoder"):
    c.model[player].base_features = 4
  if penalty in ("wgan_gp", "ct"):
    c.model.discriminator.batch_norm = False  # a WGAN-GP critic has no batch norm
  for k in ("log_every", "eval_every", "checkpoint_every", "plot_every"):
    c.train[k] = 2
  c.train.unroll = 1
  c.train.progress = False
  c.train.figures = False
  c.game.name = game
  if conditional:
    c.model.generator.num_classes = IMAGE_CLASSES
    c.model.discriminator.num_classes = IMAGE_CLASSES
  # Heat starts from the uniform box [-1, 1]^784: dim z >= 28 * 28.
  return add_components(c, objective, penalty, perturbation, optimizer, heat_latent=(784,))


def penalty_names(penalty):
  return ("wgan_gp", "ct") if penalty == "ct" else () if penalty == "none" else (penalty,)


class CombinationTest(parameterized.TestCase):

  def test_every_axis_value_is_sampled(self):
    cases = _cases()
    for axis, values in enumerate((GAMES, OBJECTIVES, PENALTIES, PERTURBATIONS, OPTIMIZERS)):
      self.assertEqual({c[axis + 1] for c in cases}, set(values))

  def test_every_image_axis_value_is_sampled(self):
    cases = _image_cases()
    # Positions in a case: 1 game, 3 penalty, 4 perturbation, 5 optimizer, 6 conditional.
    for index, values in ((1, GAMES), (3, IMAGE_PENALTIES), (4, IMAGE_PERTURBATIONS),
                          (5, IMAGE_OPTIMIZERS), (6, (False, True))):
      self.assertEqual({c[index] for c in cases}, set(values))
    # Conditional in an encoder game too; the objectives are all valid names.
    self.assertIn(("reg_gan", True), {(c[1], c[6]) for c in cases})
    self.assertLessEqual({c[2] for c in cases}, set(OBJECTIVES))

  @parameterized.named_parameters(*_cases())
  def test_combination_runs_and_each_component_acts(self, game, objective, penalty,
                                                    perturbation, optimizer):
    c = combination_config(game, objective, penalty, perturbation, optimizer)
    self.check_combination(c, penalty, perturbation, optimizer)

  @parameterized.named_parameters(*_image_cases())
  def test_image_combination_runs_and_each_component_acts(self, game, objective, penalty,
                                                          perturbation, optimizer, conditional):
    path = write_npz(os.path.join(self.create_tempdir().full_path, "data.npz"), (28, 28),
                     num_classes=IMAGE_CLASSES)
    c = image_combination_config(path, game, objective, penalty, perturbation, optimizer,
                                 conditional)
    game_, state = self.check_combination(c, penalty, perturbation, optimizer)
    self.assertEqual(game_.conditional, conditional)
    if conditional:
      # The class projection of every discriminator took its gradient steps.
      for player, params in state.params.items():
        if player.startswith("d"):
          self.assertIn("label_embed", params, player)

  def check_combination(self, c, penalty, perturbation, optimizer):
    """Two steps of config ``c``; each configured component acted. Returns (game, state)."""
    validate.validate_config(c)
    game, state, history = run_steps(c, n_calls=2)
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
      # Each configured penalty's own value (CT-GAN's consistency term > 0 needs
      # the critic's dropout: two passes that differ).
      for name in penalty_names(penalty):
        values = [k for k in metrics if k == name or k.endswith(f"_{name}")]
        self.assertTrue(values, (name, sorted(metrics)))
        self.assertTrue(all(np.all(metrics[k] > 0) for k in values), (name, sorted(metrics)))
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
    return game, state

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
  for cases in (_cases(), _image_cases()):
    names = [c[0] for c in cases]
    assert len(set(names)) == len(names)
    assert len(set(itertools.chain.from_iterable([c[1:] for c in cases]))) > 10
