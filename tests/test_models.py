"""Generators, discriminators, encoders, latent priors and the model registry."""
import functools
import math

from absl.testing import absltest
from absl.testing import parameterized
import flax
import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from gan_jax import models
from gan_jax.models import dcgan
from gan_jax.models import dropout
from gan_jax.models import mlp

KEY = jax.random.key(0)


def _init(module, x, key=KEY, **kwargs):
  """Jitted init: one compilation instead of one per primitive."""
  return jax.jit(functools.partial(module.init, **kwargs))(key, x)


def _variables(module, x, seed=0, **kwargs):
  """Random variables of the right structure without compiling initializers.

  Kernels ~ N(0, 1/fan_in), other parameters ~ N(0, 0.3^2); variances and
  spectral-norm estimates positive. Tests of the initializers use ``_init``.
  """
  shapes = jax.eval_shape(functools.partial(module.init, **kwargs), KEY, x)
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    name = str(path[-1].key)
    a = rng.standard_normal(leaf.shape)
    if name == "kernel":
      a /= math.sqrt(math.prod(leaf.shape[:-1]))
    elif name == "var" or name.endswith("sigma"):
      a = 1.0 + 0.3 * np.abs(a)
    else:
      a *= 0.3
    return a.astype(leaf.dtype)

  return jax.tree_util.tree_map_with_path(fill, shapes)


def _apply(module, **kwargs):
  return jax.jit(functools.partial(module.apply, **kwargs))


def _normal(shape, seed=0):
  return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


class LatentTest(parameterized.TestCase):

  @parameterized.parameters((3, (3,)), ((4, 4, 3), (4, 4, 3)))
  def test_shape(self, shape, expected):
    z = models.sample_latent(KEY, 5, shape)
    self.assertEqual(z.shape, (5,) + expected)

  def test_uniform_moments_and_support(self):
    n = 200_000
    z = np.asarray(models.sample_latent(KEY, n, 1, low=0.0, high=2.0))
    self.assertTrue(np.all((z >= 0.0) & (z < 2.0)))
    # U[0, 2]: mean 1, variance 1/3; 5 standard errors of the sample mean.
    self.assertAlmostEqual(z.mean(), 1.0, delta=5 * math.sqrt(1 / 3 / n))
    # Var of (z - 1)^2 for U[-1, 1] is 1/5 - 1/9 = 4/45.
    self.assertAlmostEqual(z.var(), 1 / 3, delta=5 * math.sqrt(4 / 45 / n))

  def test_normal_moments(self):
    n = 200_000
    z = np.asarray(models.sample_latent(KEY, n, 1, prior="normal"))
    self.assertAlmostEqual(z.mean(), 0.0, delta=5 / math.sqrt(n))
    # Var of z^2 for N(0, 1) is 2.
    self.assertAlmostEqual(z.var(), 1.0, delta=5 * math.sqrt(2 / n))

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, "'cauchy'.*uniform, normal"):
      models.sample_latent(KEY, 2, 3, prior="cauchy")
    with self.assertRaisesRegex(ValueError, "low < high"):
      models.sample_latent(KEY, 2, 3, low=1.0, high=1.0)


class MLPTest(parameterized.TestCase):

  def test_generator_matches_hand_computation(self):
    gen = models.MLPGenerator(widths=(6, 5), out_shape=(2, 3),
                              activation=("tanh", "relu"))
    z = _normal((4, 3))
    v = _variables(gen, z)
    p = v["params"]
    h = np.tanh(z @ p["trunk"]["dense_0"]["kernel"] + p["trunk"]["dense_0"]["bias"])
    h = np.maximum(h @ p["trunk"]["dense_1"]["kernel"] + p["trunk"]["dense_1"]["bias"], 0)
    expected = (h @ p["out"]["kernel"] + p["out"]["bias"]).reshape(4, 2, 3)
    np.testing.assert_allclose(_apply(gen)(v, z), expected, rtol=1e-5, atol=1e-6)

  def test_latent_flattened(self):
    gen = models.MLPGenerator(widths=(8,), out_shape=(5,))
    z = _normal((3, 2, 2))
    v = _variables(gen, z)
    np.testing.assert_allclose(_apply(gen)(v, z), _apply(gen)(v, z.reshape(3, 4)))
    self.assertEqual(v["params"]["trunk"]["dense_0"]["kernel"].shape, (4, 8))

  def test_output_tanh_bounded(self):
    kwargs = dict(widths=(16,), out_shape=(4,), kernel_init="xavier_uniform")
    z = 100.0 * _normal((64, 3))
    linear = models.MLPGenerator(**kwargs)
    v = _variables(linear, z)  # output activations add no parameters
    bounded = _apply(models.MLPGenerator(output_activation="tanh", **kwargs))(v, z)
    unbounded = _apply(linear)(v, z)
    self.assertGreater(float(jnp.abs(unbounded).max()), 1.0)
    self.assertLessEqual(float(jnp.abs(bounded).max()), 1.0)
    np.testing.assert_allclose(bounded, jnp.tanh(unbounded), rtol=1e-6, atol=1e-6)

  def test_batch_norm_collection_iff_enabled(self):
    z = _normal((8, 3))
    for bn in (False, True):
      for module in (models.MLPGenerator(widths=(4,), out_shape=(2,), batch_norm=bn),
                     models.MLPDiscriminator(widths=(4,), batch_norm=bn),
                     models.MLPEncoder(widths=(4,), latent_shape=(2,), batch_norm=bn)):
        self.assertEqual("batch_stats" in _variables(module, z), bn, msg=repr(module))

  def test_batch_norm_running_average_momentum(self):
    gen = models.MLPGenerator(widths=(5,), out_shape=(2,), batch_norm=True)
    z = _normal((16, 3))
    v = _variables(gen, z)
    _, updates = _apply(gen, mutable=["batch_stats"])(v, z)
    pre = z @ np.asarray(v["params"]["trunk"]["dense_0"]["kernel"])  # no dense bias
    old = v["batch_stats"]["trunk"]["bn_0"]
    new = updates["batch_stats"]["trunk"]["bn_0"]
    # Running statistics move 1 - 0.9 of the way to the batch's (biased) ones.
    np.testing.assert_allclose(new["mean"], 0.9 * old["mean"] + 0.1 * pre.mean(0),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(new["var"], 0.9 * old["var"] + 0.1 * pre.var(0), rtol=1e-4)

  def test_batch_norm_eval_is_per_example(self):
    gen = models.MLPGenerator(widths=(5,), out_shape=(2,), batch_norm=True)
    z = _normal((6, 3))
    v = _variables(gen, z)
    ev = _apply(gen, train=False)
    np.testing.assert_allclose(ev(v, z)[:1], ev(v, z[:1]), rtol=1e-5, atol=1e-6)
    tr = _apply(gen, mutable=["batch_stats"])
    self.assertFalse(np.allclose(tr(v, z)[0][:2], tr(v, z[:2])[0]))

  def test_activation_list_length_checked(self):
    with self.assertRaisesRegex(ValueError, "2 entries but there are 3"):
      models.MLPGenerator(widths=(4, 4, 4), out_shape=(2,), activation=("relu", "tanh"))
    with self.assertRaisesRegex(ValueError, "'swoosh'.*leaky_relu"):
      models.MLPDiscriminator(widths=(4,), activation="swoosh")
    with self.assertRaisesRegex(ValueError, "output_activation 'relu'.*linear, tanh, sigmoid"):
      models.MLPEncoder(widths=(4,), latent_shape=(2,), output_activation="relu")
    with self.assertRaisesRegex(ValueError, "exclusive"):
      models.MLPDiscriminator(widths=(4,), batch_norm=True, layer_norm=True)
    with self.assertRaisesRegex(ValueError, r"dropout_rate must be in \[0, 1\)"):
      models.MLPDiscriminator(widths=(4,), dropout_rate=1.0)
    with self.assertRaisesRegex(ValueError, "kernel_init 'he'.*truncated_normal"):
      models.MLPDiscriminator(widths=(4,), kernel_init="he")

  @parameterized.parameters("relu", "leaky_relu", "tanh", "elu", "softplus",
                            "sigmoid", "swish", "gelu")
  def test_every_activation_builds(self, name):
    d = models.MLPDiscriminator(widths=(3,), activation=name)
    x = _normal((2, 4))
    v = _variables(d, x)
    dense = v["params"]["trunk"]["dense_0"]
    h = x @ np.asarray(dense["kernel"]) + np.asarray(dense["bias"])
    _, feats = _apply(d, return_features=True)(v, x)
    np.testing.assert_allclose(feats, mlp.ACTIVATIONS[name](h), rtol=1e-5, atol=1e-6)

  def test_maxout_discriminator_matches_hand_computation(self):
    # Two maxout layers of widths 3 and 2 with 4 pieces each: dense layers of
    # 12 and 8 units, unit j the max of dense units 4j .. 4j+3.
    pieces = 4
    d = models.MLPDiscriminator(widths=(3, 2), activation="maxout", pieces=pieces)
    x = _normal((5, 6))
    v = _variables(d, x)
    p = jax.tree.map(np.asarray, v["params"])
    self.assertEqual(p["trunk"]["dense_0"]["kernel"].shape, (6, 3 * pieces))
    self.assertEqual(p["trunk"]["dense_1"]["kernel"].shape, (3, 2 * pieces))

    def maxout_by_hand(a):
      return np.stack([max(row[j * pieces:(j + 1) * pieces]) for row in a
                       for j in range(a.shape[1] // pieces)]).reshape(len(a), -1)

    h = maxout_by_hand(x @ p["trunk"]["dense_0"]["kernel"] + p["trunk"]["dense_0"]["bias"])
    h = maxout_by_hand(h @ p["trunk"]["dense_1"]["kernel"] + p["trunk"]["dense_1"]["bias"])
    logits, feats = _apply(d, return_features=True)(v, x)
    np.testing.assert_allclose(feats, h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logits, h @ p["out"]["kernel"][:, 0] + p["out"]["bias"][0],
                               rtol=1e-5, atol=1e-6)
    # Mixed with elementwise activations per layer; pieces checked.
    mixed = models.MLPGenerator(widths=(4, 3), out_shape=(2,), activation=("maxout", "relu"),
                                pieces=3)
    self.assertEqual(_variables(mixed, x)["params"]["trunk"]["dense_1"]["kernel"].shape, (4, 3))
    with self.assertRaisesRegex(ValueError, "pieces .* int >= 1; got 0"):
      models.MLPDiscriminator(widths=(4,), activation="maxout", pieces=0)

  def test_leaky_relu_slope(self):
    np.testing.assert_allclose(mlp.ACTIVATIONS["leaky_relu"](jnp.array([-1.0, 2.0])),
                               [-0.2, 2.0])

  def test_discriminator_shapes_and_features(self):
    d = models.MLPDiscriminator(widths=(8, 6))
    x = _normal((5, 2, 3))
    v = _variables(d, x)
    logits, feats = _apply(d, return_features=True)(v, x)
    self.assertEqual(logits.shape, (5,))
    self.assertEqual(feats.shape, (5, 6))
    # The logit is the last dense layer applied to the returned features.
    out = v["params"]["out"]
    np.testing.assert_allclose(logits, feats @ out["kernel"][:, 0] + out["bias"][0],
                               rtol=1e-5, atol=1e-6)

  def test_layer_norm_is_per_example_in_training(self):
    x = _normal((6, 4))
    ln = models.MLPDiscriminator(widths=(8,), layer_norm=True)
    v = _variables(ln, x)
    self.assertNotIn("batch_stats", v)
    np.testing.assert_allclose(_apply(ln)(v, x)[:2], _apply(ln)(v, x[:2]),
                               rtol=1e-5, atol=1e-6)

  def test_dropout_train_only_and_needs_rng(self):
    rate, batch, width = 0.5, 8, 256
    d = models.MLPDiscriminator(widths=(width,), activation="tanh", dropout_rate=rate)
    x = _normal((batch, 3))
    v = _variables(d, x, train=False)
    with self.assertRaises(flax.errors.InvalidRngError):
      jax.eval_shape(d.apply, v, x)
    _, eval_feats = _apply(d, train=False, return_features=True)(v, x)
    train = _apply(d, return_features=True)
    _, feats = train(v, x, rngs={"dropout": jax.random.key(1)})
    feats, eval_feats = np.asarray(feats), np.asarray(eval_feats)
    kept = feats != 0
    # Inverted dropout: kept units scaled by 1 / (1 - rate), tanh units are never 0.
    np.testing.assert_allclose(feats[kept], eval_feats[kept] / (1 - rate), rtol=1e-5)
    # Dropped fraction ~ Binomial(n, rate) / n; 5 standard errors.
    n = batch * width
    self.assertAlmostEqual(1 - kept.mean(), rate, delta=5 * math.sqrt(rate * (1 - rate) / n))
    other, _ = train(v, x, rngs={"dropout": jax.random.key(2)})
    again, _ = train(v, x, rngs={"dropout": jax.random.key(1)})
    self.assertFalse(np.allclose(other, again))
    np.testing.assert_array_equal(again, train(v, x, rngs={"dropout": jax.random.key(1)})[0])

  def test_encoder_shape_and_sigmoid_range(self):
    enc = models.MLPEncoder(widths=(8,), latent_shape=(3,), output_activation="sigmoid")
    x = 10.0 * _normal((7, 5))
    v = _variables(enc, x)
    z = np.asarray(_apply(enc)(v, x))
    self.assertEqual(z.shape, (7, 3))
    self.assertTrue(np.all((z >= 0) & (z <= 1)))

  def test_deterministic_init(self):
    gen = models.MLPGenerator(widths=(8,), out_shape=(3,))
    z = _normal((2, 4))
    init = jax.jit(gen.init)
    a, b, c = (init(jax.random.key(k), z) for k in (5, 5, 6))
    jax.tree.map(np.testing.assert_array_equal, a, b)
    self.assertFalse(np.allclose(a["params"]["out"]["kernel"], c["params"]["out"]["kernel"]))

  def test_truncated_normal_init_as_roth(self):
    # Roth et al.'s toy nets: N(0, 0.1^2) truncated at +-2 std, zero biases.
    std = 0.1
    gen = models.MLPGenerator(widths=(128, 128), out_shape=(3,), activation="tanh",
                              kernel_init="truncated_normal", init_std=std)
    v = _init(gen, _normal((2, 2)))
    w = np.asarray(v["params"]["trunk"]["dense_1"]["kernel"]).ravel()
    n = w.size
    dist = stats.truncnorm(-2, 2, scale=std)
    self.assertLessEqual(np.abs(w).max(), 2 * std)
    self.assertAlmostEqual(w.mean(), 0.0, delta=5 * dist.std() / math.sqrt(n))
    # Standard error of the sample variance: sqrt((E w^4 - var^2) / n).
    var = dist.var()
    se_var = math.sqrt((dist.moment(4) - var**2) / n)
    self.assertAlmostEqual(w.var(), var, delta=5 * se_var)
    # The truncation shrinks the std to 0.88 * 0.1, well outside that tolerance.
    self.assertGreater(abs(std**2 - var), 20 * se_var)
    for leaf_path, leaf in jax.tree_util.tree_leaves_with_path(v["params"]):
      if leaf_path[-1].key == "bias":
        np.testing.assert_array_equal(leaf, 0.0)

  def test_xavier_uniform_bound(self):
    d = models.MLPDiscriminator(widths=(200,), kernel_init="xavier_uniform")
    v = _init(d, _normal((2, 100)))
    w = np.asarray(v["params"]["trunk"]["dense_0"]["kernel"])
    bound = math.sqrt(6 / (100 + 200))
    self.assertLessEqual(np.abs(w).max(), bound)
    # U[-b, b] has std b / sqrt(3); 20k samples, 5 standard errors (~0.5%).
    self.assertAlmostEqual(w.std(), bound / math.sqrt(3), delta=0.03 * bound / math.sqrt(3))


def _start_features(size, base):
  return {28: 2 * base, 32: 4 * base, 64: 8 * base}[size]


class DCGANTest(parameterized.TestCase):

  @parameterized.parameters((28, 1), (32, 3), (64, 3))
  def test_shapes(self, size, channels):
    base = 4
    gen = models.DCGANGenerator(image_shape=(size, size, channels), base_features=base)
    z = _normal((2, 8))
    gv = _variables(gen, z)
    start = 7 if size == 28 else 4
    self.assertEqual(gv["params"]["project"]["kernel"].shape,
                     (8, start * start * _start_features(size, base)))
    x, _ = _apply(gen, mutable=["batch_stats"])(gv, z)
    self.assertEqual(x.shape, (2, size, size, channels))
    self.assertLessEqual(float(jnp.abs(x).max()), 1.0)  # tanh output

    disc = models.DCGANDiscriminator(base_features=base)
    dv = _variables(disc, x)
    (logits, feats), _ = _apply(disc, return_features=True, mutable=["batch_stats"])(dv, x)
    self.assertEqual(logits.shape, (2,))
    self.assertEqual(feats.shape, (2, start * start * _start_features(size, base)))

    enc = models.DCGANEncoder(latent_shape=(8,), base_features=base)
    ev = _variables(enc, x)
    self.assertEqual(_apply(enc, train=False)(ev, x).shape, (2, 8))

  def test_data_shaped_latent(self):
    # beta-GAN's CelebA generator takes a 64x64x3 latent and has a linear output.
    gen = models.DCGANGenerator(image_shape=(64, 64, 3), base_features=2,
                                output_activation="linear")
    z = _normal((2, 64, 64, 3))
    v = _variables(gen, z)
    self.assertEqual(v["params"]["project"]["kernel"].shape[0], 64 * 64 * 3)
    self.assertEqual(_apply(gen, train=False)(v, z).shape, (2, 64, 64, 3))

  @parameterized.parameters((28, 5), (32, 3), (28, 4))
  def test_subpixel_equals_transpose(self, size, kernel_size):
    kwargs = dict(image_shape=(size, size, 2), base_features=3, kernel_size=kernel_size)
    sub = models.DCGANGenerator(upsample="subpixel", **kwargs)
    ref = models.DCGANGenerator(upsample="transpose", **kwargs)
    z = _normal((3, 5))
    v = _variables(sub, z)
    self.assertEqual(jax.tree.map(jnp.shape, v),
                     jax.tree.map(jnp.shape, jax.eval_shape(ref.init, KEY, z)))

    def loss(module, params, z):
      x, _ = module.apply({**v, "params": params}, z, mutable=["batch_stats"])
      return jnp.sum(x * jnp.arange(x.size).reshape(x.shape) / x.size), x

    @jax.jit
    def both(params, z):
      return (jax.grad(functools.partial(loss, sub), has_aux=True)(params, z),
              jax.grad(functools.partial(loss, ref), has_aux=True)(params, z))

    (g_sub, x_sub), (g_ref, x_ref) = both(v["params"], z)
    np.testing.assert_allclose(x_sub, x_ref, rtol=1e-5, atol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
                 g_sub, g_ref)

  def test_upsamplers_initialise_identically(self):
    kwargs = dict(image_shape=(28, 28, 1), base_features=1, kernel_init="xavier_uniform")
    z = _normal((1, 2))
    sub = _init(models.DCGANGenerator(upsample="subpixel", **kwargs), z)
    ref = _init(models.DCGANGenerator(upsample="transpose", **kwargs), z)
    jax.tree.map(np.testing.assert_array_equal, sub, ref)

  def test_batch_norm_collection_iff_enabled(self):
    x = _normal((2, 28, 28, 1))
    z = _normal((2, 4))
    for bn in (False, True):
      gv = _variables(models.DCGANGenerator(image_shape=(28, 28, 1), base_features=2,
                                       batch_norm=bn), z)
      dv = _variables(models.DCGANDiscriminator(base_features=2, batch_norm=bn), x)
      ev = _variables(models.DCGANEncoder(latent_shape=(3,), base_features=2, batch_norm=bn), x)
      for v in (gv, dv, ev):
        self.assertEqual("batch_stats" in v, bn)
    # Not on the first discriminator layer (Radford et al.).
    dv = _variables(models.DCGANDiscriminator(base_features=2), x)
    self.assertEqual(sorted(dv["batch_stats"]["trunk"]), ["bn_1"])
    self.assertIn("bias", dv["params"]["trunk"]["conv_0"])

  def test_layer_norm_critic_is_per_example(self):
    # WGAN-GP's penalty needs a critic whose output for one input ignores the batch.
    critic = models.DCGANDiscriminator(base_features=2, batch_norm=False, layer_norm=True)
    x = _normal((4, 32, 32, 3))
    v = _variables(critic, x)
    self.assertNotIn("batch_stats", v)
    self.assertEqual(v["params"]["trunk"]["ln_1"]["scale"].shape, (4,))
    f = _apply(critic)
    np.testing.assert_allclose(f(v, x)[:1], f(v, x[:1]), rtol=1e-5, atol=1e-6)

  def test_spectral_norm_estimates_top_singular_value(self):
    disc = models.DCGANDiscriminator(base_features=2, batch_norm=False, spectral_norm=True)
    x = _normal((2, 28, 28, 1))
    v = _variables(disc, x)
    self.assertIn("batch_stats", v)
    with self.assertRaises(flax.errors.ModifyScopeVariableError):
      jax.eval_shape(disc.apply, v, x)  # power iteration updates need a mutable collection
    step = _apply(disc, mutable=["batch_stats"])
    for _ in range(30):
      _, updates = step(v, x)
      v = {**v, **updates}
    kernel = v["params"]["trunk"]["conv_1"]["kernel"]
    top = np.linalg.svd(np.asarray(kernel).reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
    sigma = v["batch_stats"]["trunk"]["sn_conv_1"]["conv_1/kernel/sigma"]
    self.assertAlmostEqual(float(sigma), float(top), delta=1e-3 * top)
    # Evaluation reuses the stored power-iteration vector and needs no mutable collection.
    self.assertEqual(_apply(disc, train=False)(v, x).shape, (2,))

  def test_dropout_train_only(self):
    disc = models.DCGANDiscriminator(base_features=2, batch_norm=False, dropout_rate=0.3)
    x = _normal((2, 28, 28, 1))
    v = _variables(disc, x, train=False)
    with self.assertRaises(flax.errors.InvalidRngError):
      jax.eval_shape(disc.apply, v, x)
    ev = _apply(disc, train=False)
    np.testing.assert_array_equal(ev(v, x), ev(v, x))
    tr = _apply(disc)
    a = tr(v, x, rngs={"dropout": jax.random.key(1)})
    b = tr(v, x, rngs={"dropout": jax.random.key(2)})
    self.assertFalse(np.allclose(a, b))

  def test_jit_matches_eager(self):
    gen = models.MLPGenerator(widths=(4,), out_shape=(3,), batch_norm=True)
    z = _normal((2, 4))
    v = _variables(gen, z)
    np.testing.assert_allclose(_apply(gen, train=False)(v, z),
                               gen.apply(v, z, train=False), rtol=1e-5, atol=1e-6)

  def test_validation(self):
    with self.assertRaisesRegex(ValueError, "size 48; valid: 28, 32, 64"):
      models.DCGANGenerator(image_shape=(48, 48, 3))
    with self.assertRaisesRegex(ValueError, "square"):
      models.DCGANGenerator(image_shape=(32, 28, 3))
    with self.assertRaisesRegex(ValueError, r"\(H, W, C\)"):
      models.DCGANGenerator(image_shape=(32, 32))
    with self.assertRaisesRegex(ValueError, "upsample 'nearest'; valid: subpixel, transpose"):
      models.DCGANGenerator(image_shape=(32, 32, 3), upsample="nearest")
    with self.assertRaisesRegex(ValueError, "output_activation 'sigmoid'; valid: tanh, linear"):
      models.DCGANGenerator(image_shape=(32, 32, 3), output_activation="sigmoid")
    with self.assertRaisesRegex(ValueError, "kernel_size 7; valid: 3, 4, 5"):
      models.DCGANDiscriminator(kernel_size=7)
    disc = models.DCGANDiscriminator(base_features=2)
    with self.assertRaisesRegex(ValueError, "size 16; valid: 28, 32, 64"):
      jax.eval_shape(disc.init, KEY, jnp.zeros((1, 16, 16, 3)))


class DropoutTest(parameterized.TestCase):
  """The hashed dropout mask: Bernoulli statistics, independence, determinism."""

  @parameterized.parameters(0.1, 0.2, 0.5, 0.8)
  def test_keep_rate_is_binomial(self, keep):
    n = 200_000
    mask = np.asarray(jax.jit(dropout.keep_mask, static_argnums=(1, 2))(KEY, keep, (n,)))
    # Kept count ~ Binomial(n, keep): 5 standard errors.
    self.assertAlmostEqual(mask.mean(), keep, delta=5 * math.sqrt(keep * (1 - keep) / n))

  def test_bits_are_uniform_and_uncorrelated(self):
    n = 100_000
    bits = np.asarray(dropout.hash_bits(KEY, (n,))).astype(np.float64) / 2.0**32
    # Uniform on [0, 1): mean 1/2, variance 1/12, each to 5 standard errors.
    self.assertAlmostEqual(bits.mean(), 0.5, delta=5 * math.sqrt(1 / 12 / n))
    self.assertAlmostEqual(bits.var(), 1 / 12, delta=5 * math.sqrt(1 / 180 / n))
    # Every bit position is a fair coin (chi-square over the 32 positions is loose:
    # each position separately to 5 standard errors).
    words = np.asarray(dropout.hash_bits(KEY, (n,)))
    for b in range(32):
      self.assertAlmostEqual(((words >> b) & 1).mean(), 0.5, delta=5 * math.sqrt(0.25 / n))
    # Neighbouring units (along the flat index and along rows of a 2-D mask), and
    # two keys' masks, are uncorrelated: |r| < 5 / sqrt(n).
    grid = np.asarray(dropout.hash_bits(KEY, (400, 250))).astype(np.float64)
    other = np.asarray(dropout.hash_bits(jax.random.key(1), (n,))).astype(np.float64)
    for a, b in ((bits[:-1], bits[1:]), (grid[:-1].ravel(), grid[1:].ravel()),
                 (bits, other)):
      self.assertLess(abs(np.corrcoef(a, b)[0, 1]), 5 / math.sqrt(a.size))

  def test_mask_depends_on_key_and_index_only(self):
    a = dropout.keep_mask(KEY, 0.7, (64, 32))
    np.testing.assert_array_equal(a, dropout.keep_mask(KEY, 0.7, (64, 32)))
    # A unit's bit is a function of its flat index: the same in any shape.
    np.testing.assert_array_equal(np.ravel(a), dropout.keep_mask(KEY, 0.7, (64 * 32,)))
    self.assertFalse(np.array_equal(a, dropout.keep_mask(jax.random.key(1), 0.7, (64, 32))))
    # Sharded over 8 devices, the compiled mask is the unsharded one.
    mesh = jax.make_mesh((len(jax.devices()),), ("data",))
    sharded = jax.jit(lambda k: dropout.keep_mask(k, 0.7, (64, 32)),
                      out_shardings=jax.NamedSharding(mesh, jax.P("data")))(KEY)
    np.testing.assert_array_equal(sharded, a)

  def test_module_scales_kept_units_and_is_identity_when_deterministic(self):
    x = jnp.asarray(_normal((16, 64)))
    y = dropout.Dropout(0.25).apply({}, x, rngs={"dropout": KEY})
    mask = np.asarray(y) != 0
    np.testing.assert_allclose(np.asarray(y)[mask], np.asarray(x)[mask] / 0.75, rtol=1e-6)
    self.assertAlmostEqual(mask.mean(), 0.75, delta=5 * math.sqrt(0.75 * 0.25 / x.size))
    np.testing.assert_array_equal(dropout.Dropout(0.25, deterministic=True).apply({}, x), x)
    np.testing.assert_array_equal(dropout.Dropout(0.0).apply({}, x), x)
    with self.assertRaisesRegex(ValueError, "keep_prob must be in"):
      dropout.keep_mask(KEY, 1.5, (3,))


class RegistryTest(parameterized.TestCase):

  def test_registries(self):
    self.assertIs(models.GENERATORS["dcgan"], dcgan.DCGANGenerator)
    self.assertIs(models.DISCRIMINATORS["mlp"], mlp.MLPDiscriminator)
    self.assertIs(models.ENCODERS["dcgan"], dcgan.DCGANEncoder)
    gen = models.make_generator("mlp", widths=(4,), out_shape=(2,), activation="tanh")
    self.assertEqual(gen, models.MLPGenerator(widths=(4,), out_shape=(2,), activation="tanh"))
    self.assertIsInstance(models.make_discriminator("dcgan", base_features=8),
                          models.DCGANDiscriminator)
    self.assertIsInstance(models.make_encoder("mlp", widths=(4,), latent_shape=(2,)),
                          models.MLPEncoder)

  @parameterized.parameters(
      (models.make_generator, "generator"),
      (models.make_discriminator, "discriminator"),
      (models.make_encoder, "encoder"))
  def test_unknown_name(self, make, kind):
    with self.assertRaisesRegex(ValueError, f"unknown {kind} 'vae'; valid: dcgan, mlp"):
      make("vae")

  def test_unknown_field(self):
    with self.assertRaisesRegex(
        ValueError, "unknown field 'depth' for generator 'dcgan'.*valid fields: "
        "image_shape, base_features, batch_norm"):
      models.make_generator("dcgan", image_shape=(32, 32, 3), depth=3)
    with self.assertRaisesRegex(ValueError, "'name'.*valid fields: widths"):
      models.make_discriminator("mlp", widths=(4,), name="d")

  def test_lists_from_configs_become_tuples(self):
    gen = models.make_generator("mlp", widths=[4, 4], out_shape=[2], activation=["tanh", "relu"])
    same = models.MLPGenerator(widths=(4, 4), out_shape=(2,), activation=("tanh", "relu"))
    self.assertEqual(gen, same)
    self.assertEqual(hash(gen), hash(same))
    enc = models.make_encoder("dcgan", latent_shape=[3])
    self.assertEqual(enc.latent_shape, (3,))

  def test_missing_field(self):
    with self.assertRaisesRegex(ValueError, "needs field.*out_shape"):
      models.make_generator("mlp", widths=(4,))

  def test_field_value_errors_pass_through(self):
    with self.assertRaisesRegex(ValueError, "valid: 28, 32, 64"):
      models.make_generator("dcgan", image_shape=(100, 100, 3))


if __name__ == "__main__":
  absltest.main()
