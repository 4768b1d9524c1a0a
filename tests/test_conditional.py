"""Class-conditional generators and discriminators (labels after the input),
and the games that train them: adversarial, Reg-GAN and MDGAN."""
import dataclasses
import functools
import math
import os

from absl.testing import absltest
from absl.testing import parameterized
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from configs import che_circle
from configs import reg_gan_mnist
from gan_jax import games
from gan_jax import models
from gan_jax.data import make_source
from gan_jax.data import toy
from gan_jax.data.source import from_arrays
from gan_jax.train import loop
from gan_jax.train import step as step_lib
from tests.test_image_games import shrink_images
from tests.test_image_games import write_npz
from tests.test_train import shrink

KEY = jax.random.key(0)
K = 3  # classes
TOL = dict(rtol=1e-4, atol=1e-5)

# name -> (class, fields, input shape without the batch)
GENERATORS = {
    "mlp": (models.MLPGenerator, dict(widths=(6,), out_shape=(4,)), (5,)),
    "dcgan": (models.DCGANGenerator, dict(image_shape=(28, 28, 1), base_features=2), (5,)),
    "resnet": (models.ResNetGenerator, dict(image_shape=(32, 32, 1), base_features=2), (5,)),
}
DISCRIMINATORS = {
    "mlp": (models.MLPDiscriminator, dict(widths=(6, 5)), (2, 3)),
    "dcgan": (models.DCGANDiscriminator, dict(base_features=2), (28, 28, 1)),
    "resnet": (models.ResNetDiscriminator, dict(base_features=2), (32, 32, 1)),
}
BATCH = 4
LABELS = np.array([0, 2, 1, 2], np.int32)


def _variables(module, *args, seed=0, **kwargs):
  """Random variables of the right structure without compiling initializers.

  Kernels ~ N(0, 1/fan_in), norm scales ~ N(1, 0.3^2), other parameters
  (biases, embeddings) ~ N(0, 0.3^2); variances and spectral-norm estimates
  positive.
  """
  shapes = jax.eval_shape(functools.partial(module.init, **kwargs), KEY, *args)
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    name = str(path[-1].key)
    a = rng.standard_normal(leaf.shape)
    if name == "kernel":
      a /= math.sqrt(math.prod(leaf.shape[:-1]))
    elif name == "var" or name.endswith("sigma"):
      a = 1.0 + 0.3 * np.abs(a)
    elif name == "scale":
      a = 1.0 + 0.3 * a
    else:
      a *= 0.3
    return a.astype(leaf.dtype)

  return jax.tree_util.tree_map_with_path(fill, shapes)


def _normal(shape, seed=0):
  return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _shapes(tree):
  return jax.tree.map(jnp.shape, tree)


def _without_label_params(v):
  """Variables with the conditional module's label parameters removed."""
  v = jax.tree.map(lambda a: a, v)  # copy
  params = dict(v["params"])
  params.pop("label_embed", None)
  return {**v, "params": params}


def _one_hot(labels):
  return np.eye(K, dtype=np.float32)[labels]


def _label_maps(x, labels):
  """x with K constant one-hot maps (or entries) appended on its last axis."""
  code = _one_hot(labels).reshape((x.shape[0],) + (1,) * (x.ndim - 2) + (K,))
  return np.concatenate([x, np.broadcast_to(code, x.shape[:-1] + (K,))], axis=-1)


def _discriminator_input(name, seed=0):
  return _normal((BATCH,) + DISCRIMINATORS[name][2], seed)


class GeneratorTest(parameterized.TestCase):

  @parameterized.product(name=tuple(GENERATORS), label_features=(0, 4))
  def test_equals_unconditional_on_latent_with_label_code(self, name, label_features):
    cls, kwargs, zshape = GENERATORS[name]
    cond = cls(num_classes=K, label_features=label_features, **kwargs)
    z = _normal((BATCH,) + zshape)
    v = _variables(cond, z, LABELS)
    if label_features:
      table = v["params"]["label_embed"]["embedding"]
      self.assertEqual(table.shape, (K, label_features))
      code = np.asarray(table)[LABELS]
    else:
      self.assertNotIn("label_embed", v["params"])
      code = _one_hot(LABELS)
    wide = np.concatenate([z.reshape(BATCH, -1), code], axis=1)
    uncond = cls(**kwargs)
    rest = _without_label_params(v)
    # The unconditional net on the wider latent has exactly the remaining parameters.
    self.assertEqual(_shapes(rest), _shapes(jax.eval_shape(uncond.init, KEY, wide)))

    @jax.jit
    def both(v, rest, z, labels, wide):
      return (cond.apply(v, z, labels, train=False),
              uncond.apply(rest, wide, train=False))

    got, expected = both(v, rest, z, LABELS, wide)
    np.testing.assert_allclose(got, expected, **TOL)

  @parameterized.parameters(*GENERATORS)
  def test_each_sample_follows_its_own_label(self, name):
    cls, kwargs, zshape = GENERATORS[name]
    gen = cls(num_classes=K, label_features=2, **kwargs)
    z = _normal((BATCH,) + zshape)
    v = _variables(gen, z, LABELS)
    f = jax.jit(functools.partial(gen.apply, train=False))
    changed = LABELS.copy()
    changed[0] = (changed[0] + 1) % K
    a, b, c = f(v, z, LABELS), f(v, z, LABELS), f(v, z, changed)
    np.testing.assert_array_equal(a, b)
    self.assertGreater(float(jnp.abs(a[0] - c[0]).max()), 1e-4)
    np.testing.assert_array_equal(a[1:], c[1:])

  def test_batch_norm_training_with_labels(self):
    gen = models.ResNetGenerator(image_shape=(32, 32, 1), base_features=2, num_classes=K)
    z = _normal((BATCH, 5))
    v = _variables(gen, z, LABELS)
    x, updates = jax.jit(functools.partial(gen.apply, mutable=["batch_stats"]))(
        v, z, labels=LABELS)
    self.assertEqual(x.shape, (BATCH, 32, 32, 1))
    self.assertEqual(_shapes(updates["batch_stats"]), _shapes(v["batch_stats"]))


class DiscriminatorTest(parameterized.TestCase):

  @parameterized.parameters(("mlp", False), ("dcgan", False), ("resnet", False),
                            ("dcgan", True), ("resnet", True))
  def test_projection_adds_embedding_dot_features(self, name, spectral_norm):
    cls, kwargs, _ = DISCRIMINATORS[name]
    if spectral_norm:
      kwargs = dict(kwargs, spectral_norm=True, batch_norm=False)
    cond = cls(num_classes=K, **kwargs)
    self.assertEqual(cond.conditioning, "projection")
    x = _discriminator_input(name)
    v = _variables(cond, x, LABELS)
    rest = _without_label_params(v)
    if spectral_norm:
      rest["batch_stats"] = dict(rest["batch_stats"])
      u = np.asarray(rest["batch_stats"].pop("sn_label_embed")["label_embed/embedding/u"])
    uncond = cls(**kwargs)
    self.assertEqual(_shapes(rest), _shapes(jax.eval_shape(uncond.init, KEY, x)))

    @jax.jit
    def both(v, rest, x, labels):
      return (cond.apply(v, x, labels, train=False, return_features=True),
              uncond.apply(rest, x, train=False))

    (logits, h), plain = both(v, rest, x, LABELS)
    table = np.asarray(v["params"]["label_embed"]["embedding"])
    self.assertEqual(table.shape, (K, h.shape[1]))
    if spectral_norm:
      # flax divides by sigma = v W u'^T after one power-iteration step from
      # the stored u (not updated in evaluation).
      v0 = u @ table.T
      v0 /= np.linalg.norm(v0)
      u1 = v0 @ table
      u1 /= np.linalg.norm(u1)
      table = table / (v0 @ table @ u1.T)[0, 0]
    term = np.sum(table[LABELS] * np.asarray(h), axis=1)
    self.assertGreater(np.abs(term).min(), 1e-3)
    np.testing.assert_allclose(logits - plain, term, rtol=1e-4, atol=1e-5)

  @parameterized.parameters(*DISCRIMINATORS)
  def test_concat_equals_unconditional_on_label_channels(self, name):
    cls, kwargs, _ = DISCRIMINATORS[name]
    cond = cls(num_classes=K, conditioning="concat", **kwargs)
    x = _discriminator_input(name)
    v = _variables(cond, x, LABELS)
    self.assertNotIn("label_embed", v["params"])
    wide = _label_maps(x.reshape(BATCH, -1) if name == "mlp" else x, LABELS)
    uncond = cls(**kwargs)
    self.assertEqual(_shapes(v), _shapes(jax.eval_shape(uncond.init, KEY, wide)))
    first = (v["params"]["trunk"]["dense_0"] if name == "mlp"
             else v["params"]["trunk"]["conv_0"] if name == "dcgan"
             else v["params"]["trunk"]["block_0"]["conv_0"])
    self.assertEqual(first["kernel"].shape[-2], wide.shape[-1])

    @jax.jit
    def both(v, x, labels, wide):
      return (cond.apply(v, x, labels, train=False, return_features=True),
              uncond.apply(v, wide, train=False, return_features=True))

    (logits, h), (ref_logits, ref_h) = both(v, x, LABELS, wide)
    np.testing.assert_allclose(logits, ref_logits, **TOL)
    np.testing.assert_allclose(h, ref_h, **TOL)

  @parameterized.product(name=tuple(DISCRIMINATORS), conditioning=("projection", "concat"))
  def test_each_score_follows_its_own_label(self, name, conditioning):
    cls, kwargs, _ = DISCRIMINATORS[name]
    disc = cls(num_classes=K, conditioning=conditioning, **kwargs)
    x = _discriminator_input(name)
    v = _variables(disc, x, LABELS)
    f = jax.jit(functools.partial(disc.apply, train=False))
    changed = LABELS.copy()
    changed[0] = (changed[0] + 1) % K
    a, b, c = f(v, x, LABELS), f(v, x, LABELS), f(v, x, changed)
    np.testing.assert_array_equal(a, b)
    self.assertGreater(abs(float(a[0] - c[0])), 1e-4)
    np.testing.assert_allclose(a[1:], c[1:], rtol=1e-6, atol=1e-6)

  @parameterized.parameters(("lecun_normal", 1.0), ("normal", 0.05))
  def test_projection_embedding_init_has_output_layer_scale(self, kernel_init, init_std):
    # The embedding [K, F] is initialised like a dense kernel [F, K]: fan-in F.
    width, classes = 400, 10
    disc = models.MLPDiscriminator(widths=(width,), num_classes=classes,
                                   kernel_init=kernel_init, init_std=init_std)
    v = jax.jit(disc.init)(KEY, jnp.zeros((2, 3)), jnp.zeros((2,), jnp.int32))
    e = np.asarray(v["params"]["label_embed"]["embedding"])
    self.assertEqual(e.shape, (classes, width))
    # lecun_normal: std 1/sqrt(fan_in) = 0.05 for fan-in 400 (1/sqrt(10) = 0.32
    # if the class axis were taken as fan-in); normal: std init_std = 0.05.
    std = 0.05
    n = e.size
    # Standard error of a normal sample's std is std/sqrt(2n); 5 of them.
    self.assertAlmostEqual(e.std(), std, delta=5 * std / math.sqrt(2 * n))
    self.assertAlmostEqual(e.mean(), 0.0, delta=5 * std / math.sqrt(n))

  def test_spectral_norm_of_the_embedding(self):
    disc = models.DCGANDiscriminator(base_features=2, batch_norm=False,
                                     spectral_norm=True, num_classes=K)
    x = _discriminator_input("dcgan")
    v = _variables(disc, x, LABELS)
    # Orthogonal rows of norms 3, 1, 0.5: singular values 3, 1, 0.5, so power
    # iteration converges like (1/3)^(2 * steps).
    q, _ = np.linalg.qr(_normal((196, K), seed=5))
    table = (q.T * np.array([[3.0], [1.0], [0.5]])).astype(np.float32)
    v["params"] = {**v["params"], "label_embed": {"embedding": table}}
    step = jax.jit(functools.partial(disc.apply, mutable=["batch_stats"]))
    for _ in range(30):
      _, updates = step(v, x, LABELS)
      v = {**v, **updates}
    sigma = v["batch_stats"]["sn_label_embed"]["label_embed/embedding/sigma"]
    self.assertAlmostEqual(float(sigma), 3.0, delta=1e-4)


class CompatibilityAndErrorsTest(parameterized.TestCase):

  @parameterized.parameters(*DISCRIMINATORS)
  def test_unconditional_has_no_label_parameters_and_ignores_conditioning(self, name):
    cls, kwargs, _ = DISCRIMINATORS[name]
    x = _discriminator_input(name)
    default = cls(**kwargs)
    self.assertEqual(default.num_classes, 0)
    v = _variables(default, x)
    self.assertNotIn("label_embed", v["params"])
    concat = cls(conditioning="concat", **kwargs)
    self.assertEqual(_shapes(v), _shapes(jax.eval_shape(concat.init, KEY, x)))
    f = lambda m: jax.jit(functools.partial(m.apply, train=False))(v, x)
    np.testing.assert_array_equal(f(default), f(concat))
    np.testing.assert_array_equal(
        f(default), jax.jit(functools.partial(default.apply, train=False))(v, x, None))

  @parameterized.parameters(*GENERATORS)
  def test_unconditional_generator_unchanged(self, name):
    cls, kwargs, zshape = GENERATORS[name]
    z = _normal((BATCH,) + zshape)
    shapes = jax.eval_shape(cls(**kwargs).init, KEY, z)
    self.assertEqual(_shapes(shapes),
                     _shapes(jax.eval_shape(cls(label_features=7, **kwargs).init, KEY, z)))
    self.assertNotIn("label_embed", shapes["params"])

  @parameterized.parameters(
      *[(GENERATORS[n][0], GENERATORS[n][1], GENERATORS[n][2]) for n in GENERATORS],
      *[(DISCRIMINATORS[n][0], DISCRIMINATORS[n][1], DISCRIMINATORS[n][2])
        for n in DISCRIMINATORS])
  def test_label_errors(self, cls, kwargs, shape):
    x = jnp.zeros((BATCH,) + shape)
    init = lambda m, *args: jax.eval_shape(m.init, KEY, x, *args)
    with self.assertRaisesRegex(ValueError, r"num_classes=3\) and needs labels.*\[0, 3\)"):
      init(cls(num_classes=K, **kwargs))
    with self.assertRaisesRegex(ValueError, "labels given to an unconditional model"):
      init(cls(**kwargs), LABELS)
    with self.assertRaisesRegex(ValueError, r"shape \[B\] = \(4,\).*\(4, 1\)"):
      init(cls(num_classes=K, **kwargs), LABELS[:, None])
    with self.assertRaisesRegex(ValueError, "int class ids.*float32"):
      init(cls(num_classes=K, **kwargs), LABELS.astype(np.float32))
    with self.assertRaisesRegex(ValueError, "num_classes must be a non-negative int"):
      cls(num_classes=-1, **kwargs)
    with self.assertRaisesRegex(ValueError, "num_classes must be a non-negative int"):
      cls(num_classes=True, **kwargs)
    # Traced labels pass the checks.
    self.assertIsNotNone(jax.eval_shape(
        lambda labels: cls(num_classes=K, **kwargs).init(KEY, x, labels), LABELS))

  @parameterized.parameters(*DISCRIMINATORS)
  def test_bad_conditioning(self, name):
    cls, kwargs, _ = DISCRIMINATORS[name]
    with self.assertRaisesRegex(ValueError,
                                "unknown conditioning 'film'; valid: projection, concat"):
      cls(num_classes=K, conditioning="film", **kwargs)
    with self.assertRaisesRegex(ValueError, "unknown conditioning 'film'"):
      cls(conditioning="film", **kwargs)

  @parameterized.parameters(*GENERATORS)
  def test_bad_label_features(self, name):
    cls, kwargs, _ = GENERATORS[name]
    with self.assertRaisesRegex(ValueError, "label_features must be a non-negative int"):
      cls(num_classes=K, label_features=-2, **kwargs)

  def test_registry_fields(self):
    d = models.make_discriminator("resnet", num_classes=10, conditioning="concat")
    self.assertEqual((d.num_classes, d.conditioning), (10, "concat"))
    g = models.make_generator("dcgan", image_shape=[28, 28, 1], num_classes=10,
                              label_features=16)
    self.assertEqual((g.num_classes, g.label_features), (10, 16))
    with self.assertRaisesRegex(ValueError, "valid: projection, concat"):
      models.make_discriminator("mlp", widths=(4,), conditioning="acgan")


# ---------------------------------------------------------------- the games
CIRCLE_CLASSES = 6  # che_circle's modes: a point's label is its mode


def _labelled_circle(n=256):
  """Che et al.'s 6 Gaussians with each point's mode as its class."""
  x, y = toy.make_toy("che_circle").sample_with_labels(jax.random.key(4), n)
  return from_arrays("che_circle", x, y, num_classes=CIRCLE_CLASSES)


def _conditional(c, k):
  c.model.generator.num_classes = k
  c.model.discriminator.num_classes = k
  return c


def _train(c, source, steps=2):
  """``steps`` compiled iterations; (game, initial state, state, metrics per step)."""
  game = games.make_game(c, source)
  mesh = step_lib.make_mesh(1)
  state = step_lib.init_state(game, c.seed, mesh)
  init = jax.tree.map(np.asarray, state)
  run = step_lib.compile_steps(game.step, mesh, steps_per_call=1)
  arrays = step_lib.put_replicated(source.arrays, mesh)
  history = []
  for i in range(steps):
    state, metrics = run(state, arrays)
    history.append(jax.device_get(metrics))
    loop.check_finite(history[-1], i)
  return game, init, state, history


def _max_change(a, b):
  return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


class ConditionalGamesTest(parameterized.TestCase):
  """Conditional Reg-GAN and MDGAN train on labelled points and images; what
  each label reaches is checked in closed form in tests/test_game_wiring.py."""

  def check_trained(self, game, init, state, history, source, k):
    self.assertTrue(game.conditional)
    for metrics in history:
      for name in ("g_loss", "d_loss", "reconstruction"):
        self.assertTrue(np.all(np.isfinite(metrics[name])), name)
    for player, params in state.params.items():
      self.assertGreater(_max_change(params, init.params[player]), 0.0, player)
      if player not in ("generator", "encoder"):
        # The projection of every discriminator got gradients: labels reached its loss.
        self.assertGreater(_max_change(params["label_embed"],
                                       init.params[player]["label_embed"]), 0.0, player)
    key = jax.random.PRNGKey(1)
    labels = jnp.arange(8) % k
    sample = jax.jit(lambda s, key, y: game.sample(s, key, 8, labels=y))
    a, b = sample(state, key, labels), sample(state, key, (labels + 1) % k)
    self.assertEqual(a.shape, (8, *source.shape))
    # Same latents, other classes: every sample changes.
    self.assertGreater(float(np.min(np.max(np.abs(a - b).reshape(8, -1), axis=1))), 0.0)
    uniform = jax.jit(lambda s, key: game.sample(s, key, 8))(state, key)
    self.assertTrue(np.all(np.isfinite(uniform)))
    x, y = source.draw(jax.random.PRNGKey(2), source.arrays, 4)
    self.assertEqual(game.reconstruct(state, x, y).shape, x.shape)
    self.assertEqual(game.discriminate(state, x, y).shape, (4,))

  @parameterized.parameters("reg", "mdgan")
  def test_encoder_game_on_labelled_points(self, variant):
    c = _conditional(shrink(che_circle.get_config(variant), steps=2, spc=1), CIRCLE_CLASSES)
    source = _labelled_circle()
    self.check_trained(*_train(c, source), source, CIRCLE_CLASSES)

  @parameterized.parameters("reg", "mdgan")
  def test_encoder_game_on_labelled_images(self, variant):
    path = write_npz(os.path.join(self.create_tempdir().full_path, "data.npz"), (28, 28))
    c = _conditional(shrink_images(reg_gan_mnist.get_config(variant), path, steps=2), 10)
    for player in ("generator", "discriminator", "encoder"):
      c.model[player].base_features = 4
    source = make_source(c.data)
    self.check_trained(*_train(c, source), source, 10)


class PlainGenerator(nn.Module):
  """A generator without a ``num_classes`` field: it cannot take labels."""

  @nn.compact
  def __call__(self, z, *, train=True):
    return nn.Dense(2)(z)


class ConditionalGameErrorsTest(parameterized.TestCase):
  """Impossible conditioning is refused when the game is built, with the choices."""

  def config(self, game, k_g, k_d):
    c = shrink(che_circle.get_config("reg"), steps=2, spc=1)
    c.game.name = game
    c.model.generator.num_classes = k_g
    c.model.discriminator.num_classes = k_d
    return c

  @parameterized.parameters("adversarial", "reg_gan", "mdgan")
  def test_unlabelled_data(self, game):
    c = self.config(game, 6, 6)
    with self.assertRaisesRegex(ValueError, r"data 'che_circle' has no labels; set num_classes "
                                r"to 0, or use a labelled data set"):
      games.make_game(c, make_source(c.data))

  @parameterized.parameters("adversarial", "reg_gan", "mdgan")
  def test_player_mismatches(self, game):
    source = _labelled_circle(64)
    for k_g, k_d, pattern in (
        (6, 0, r"discriminator.num_classes equal to model.generator.num_classes \(6\); got 0"),
        (6, 3, r"discriminator.num_classes equal to.*\(6\); got 3"),
        (0, 6, r"generator.num_classes=0: the generator decides.*generator.num_classes=6 "
               r"\(conditional\) or model.discriminator.num_classes=0"),
        (5, 5, r"generator.num_classes=5 but data 'che_circle' has 6 classes; valid: 6 "
               r"\(conditional\) or 0")):
      with self.assertRaisesRegex(ValueError, pattern):
        games.make_game(self.config(game, k_g, k_d), source)

  @parameterized.parameters("reg_gan", "mdgan")
  def test_encoder_takes_no_labels(self, game):
    c = self.config(game, 6, 6)
    c.model.encoder.num_classes = 6
    with self.assertRaisesRegex(ValueError, r"model.encoder.num_classes: encoder 'mlp' takes no "
                                r"labels.*G\(E\(x\), y\) gets x's labels.*take labels: none"):
      games.make_game(c, _labelled_circle(64))

  @parameterized.parameters("adversarial", "reg_gan")
  def test_generator_without_num_classes(self, game):
    built = games.make_game(self.config(game, 0, 0), _labelled_circle(64))
    with self.assertRaisesRegex(ValueError, r"model.discriminator.num_classes=6 but "
                                r"model.generator.num_classes=0"):
      dataclasses.replace(built, discriminator=dataclasses.replace(built.discriminator,
                                                                   num_classes=6))
    with self.assertRaisesRegex(ValueError, r"model.generator \(PlainGenerator\) takes no class "
                                r"labels.*valid: a generator that takes labels \(mlp, dcgan, "
                                r"resnet\), or num_classes=0"):
      dataclasses.replace(built, generator=PlainGenerator(),
                          discriminator=dataclasses.replace(built.discriminator, num_classes=6))


if __name__ == "__main__":
  absltest.main()
