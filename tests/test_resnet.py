"""ResNet generator, discriminator and encoder (Gulrajani et al., 2017)."""
import functools
import math

from absl.testing import absltest
from absl.testing import parameterized
import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

from gan_jax import models
from gan_jax.models import resnet

KEY = jax.random.key(0)
# float32 convolutions of O(1) terms summed in different orders.
TOL = dict(rtol=1e-4, atol=1e-5)


def _variables(module, *args, seed=0, **kwargs):
  """Random variables of the right structure without compiling initializers.

  Kernels ~ N(0, 1/fan_in), other parameters ~ N(0, 0.3^2) (so biases and
  norm shifts are non-zero); variances and spectral-norm estimates positive.
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


def _apply(module, **kwargs):
  return jax.jit(functools.partial(module.apply, **kwargs))


def _normal(shape, seed=0):
  return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _shapes(tree):
  return jax.tree.map(jnp.shape, tree)


# --- A by-hand reference of the architecture, from the parameters -----------

def _conv(h, p):
  y = lax.conv_general_dilated(h, p["kernel"], (1, 1), "SAME",
                               dimension_numbers=("NHWC", "HWIO", "NHWC"),
                               precision=lax.Precision.HIGHEST)
  return y + p["bias"] if "bias" in p else y


def _up(h):
  return jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)


def _pool(h):
  b, hh, ww, c = h.shape
  return h.reshape(b, hh // 2, 2, ww // 2, 2, c).mean(axis=(2, 4))


def _bn_eval(h, p, s):
  return (h - s["mean"]) / jnp.sqrt(s["var"] + 1e-5) * p["scale"] + p["bias"]


def _ln(h, p):
  mu = h.mean(axis=(1, 2, 3), keepdims=True)
  var = ((h - mu) ** 2).mean(axis=(1, 2, 3), keepdims=True)
  return (h - mu) / jnp.sqrt(var + 1e-6) * p["scale"] + p["bias"]


def _generator_by_hand(v, z):
  """Paper order: BN-ReLU-Up-Conv3x3-BN-ReLU-Conv3x3 + Up-Conv1x1 shortcut."""
  p, s = v["params"], v["batch_stats"]
  h = z @ p["project"]["kernel"] + p["project"]["bias"]
  h = h.reshape(z.shape[0], 4, 4, -1)
  for i in range(3):
    bp, bs = p[f"block_{i}"], s[f"block_{i}"]
    shortcut = _conv(_up(h), bp["shortcut"])
    r = nn.relu(_bn_eval(h, bp["norm_0"], bs["norm_0"]))
    r = _conv(_up(r), bp["conv_0"])
    r = nn.relu(_bn_eval(r, bp["norm_1"], bs["norm_1"]))
    h = shortcut + _conv(r, bp["conv_1"])
  h = nn.relu(_bn_eval(h, p["norm_out"], s["norm_out"]))
  return jnp.tanh(_conv(h, p["out"]))


def _critic_by_hand(v, x):
  """32 px layer-norm critic: optimized block, down block, two plain blocks."""
  p = v["params"]["trunk"]
  b0 = p["block_0"]
  h = (_pool(_conv(nn.relu(_conv(x, b0["conv_0"])), b0["conv_1"]))
       # Paper order for the optimized shortcut: mean pool, then 1x1 conv.
       + _conv(_pool(x), b0["shortcut"]))
  for i in (1, 2, 3):
    bp = p[f"block_{i}"]
    r = _conv(nn.relu(_ln(h, bp["norm_0"])), bp["conv_0"])
    r = _conv(nn.relu(_ln(r, bp["norm_1"])), bp["conv_1"])
    if i == 1:  # down-sampling: ConvMeanPool on both paths
      h = _pool(_conv(h, bp["shortcut"])) + _pool(r)
    else:
      h = h + r
  features = nn.relu(h).sum(axis=(1, 2))
  out = v["params"]["out"]
  return features @ out["kernel"][:, 0] + out["bias"][0], features


class ShapesTest(parameterized.TestCase):

  @parameterized.parameters((32, 3, (1, 1, 1, 1), 8), (64, 3, (8, 8, 4, 2, 1), 64))
  def test_shapes(self, size, channels, g_widths, features):
    base = 8
    gen = models.ResNetGenerator(image_shape=(size, size, channels), base_features=base)
    z = _normal((2, 6))
    gv = _variables(gen, z)
    self.assertEqual(gv["params"]["project"]["kernel"].shape,
                     (6, 16 * base * g_widths[0]))
    for i, m in enumerate(g_widths[1:]):
      self.assertEqual(gv["params"][f"block_{i}"]["conv_1"]["kernel"].shape,
                       (3, 3, base * m, base * m))
    self.assertNotIn(f"block_{len(g_widths) - 1}", gv["params"])
    x, _ = _apply(gen, mutable=["batch_stats"])(gv, z)
    self.assertEqual(x.shape, (2, size, size, channels))
    self.assertLessEqual(float(jnp.abs(x).max()), 1.0)  # tanh

    disc = models.ResNetDiscriminator(base_features=base)
    dv = _variables(disc, x)
    logits, feats = _apply(disc, return_features=True)(dv, x)
    self.assertEqual(logits.shape, (2,))
    self.assertEqual(feats.shape, (2, features))
    out = dv["params"]["out"]
    np.testing.assert_allclose(logits, feats @ out["kernel"][:, 0] + out["bias"][0],
                               **TOL)
    if size == 64:
      # Gulrajani et al.: a down block keeps the width in its first conv.
      blk = dv["params"]["trunk"]["block_1"]
      self.assertEqual(blk["conv_0"]["kernel"].shape, (3, 3, base, base))
      self.assertEqual(blk["conv_1"]["kernel"].shape, (3, 3, base, 2 * base))
      self.assertEqual(blk["shortcut"]["kernel"].shape, (1, 1, base, 2 * base))

    enc = models.ResNetEncoder(latent_shape=(3, 2), base_features=base,
                               output_activation="tanh")
    ev = _variables(enc, x)
    code = _apply(enc)(ev, x)
    self.assertEqual(code.shape, (2, 3, 2))
    self.assertLessEqual(float(jnp.abs(code).max()), 1.0)

  @parameterized.parameters((32, 128, 128), (64, 512, 512))
  def test_paper_widths_by_default(self, size, start, features):
    gen = models.ResNetGenerator(image_shape=(size, size, 3))
    z = jax.ShapeDtypeStruct((1, 128), jnp.float32)
    gv = jax.eval_shape(gen.init, KEY, z)
    self.assertEqual(gv["params"]["project"]["kernel"].shape, (128, 16 * start))
    x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
    dv = jax.eval_shape(models.ResNetDiscriminator().init, KEY, x)
    self.assertEqual(dv["params"]["out"]["kernel"].shape, (features, 1))

  def test_identity_shortcuts_have_no_parameters(self):
    x = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
    p = jax.eval_shape(models.ResNetDiscriminator(base_features=4).init, KEY, x)
    trunk = p["params"]["trunk"]
    self.assertIn("shortcut", trunk["block_0"])
    self.assertIn("shortcut", trunk["block_1"])
    self.assertNotIn("shortcut", trunk["block_2"])
    self.assertNotIn("shortcut", trunk["block_3"])


class ArchitectureTest(parameterized.TestCase):

  @parameterized.parameters("nearest", "subpixel")
  def test_generator_matches_hand_computation(self, upsample):
    gen = models.ResNetGenerator(image_shape=(32, 32, 2), base_features=4,
                                 upsample=upsample)
    z = _normal((3, 5))
    v = _variables(gen, z)
    np.testing.assert_allclose(_apply(gen, train=False)(v, z),
                               _generator_by_hand(v, z), **TOL)

  def test_layer_norm_critic_matches_hand_computation(self):
    critic = models.ResNetDiscriminator(base_features=4, layer_norm=True)
    x = _normal((3, 32, 32, 2))
    v = _variables(critic, x)
    self.assertNotIn("batch_stats", v)
    # No bias before a normalisation: its shift would be cancelled.
    self.assertNotIn("bias", v["params"]["trunk"]["block_1"]["conv_0"])
    logits, feats = _apply(critic, return_features=True)(v, x)
    ref_logits, ref_feats = _critic_by_hand(v, x)
    np.testing.assert_allclose(feats, ref_feats, **TOL)
    np.testing.assert_allclose(logits, ref_logits, **TOL)
    # Per example: one input's score ignores the rest of the batch (WGAN-GP).
    np.testing.assert_allclose(_apply(critic)(v, x[:1]), logits[:1], **TOL)

  @parameterized.parameters(1, 3, 5)
  def test_upsample_conv_forms_equal_reference(self, k):
    x = _normal((2, 5, 4, 3), seed=k)
    cotangent = _normal((2, 10, 8, 4), seed=10 + k)
    ref = nn.Conv(4, (k, k), padding="SAME")
    v = _variables(resnet.UpsampleConv(4, k), x)
    self.assertEqual(_shapes(v), _shapes(jax.eval_shape(ref.init, KEY, _up(x))))

    def value_and_vjp(f):
      y, pullback = jax.vjp(f, v, x)
      return y, pullback(cotangent)

    @jax.jit
    def all_forms(v, x):
      return [value_and_vjp(lambda v, x, m=m: m.apply(v, x)) for m in (
          resnet.UpsampleConv(4, k), resnet.UpsampleConv(4, k, subpixel=True))] + [
              value_and_vjp(lambda v, x: ref.apply(v, _up(x)))]

    (y_near, g_near), (y_sub, g_sub), (y_ref, g_ref) = all_forms(v, x)
    for y, g in ((y_near, g_near), (y_sub, g_sub)):
      np.testing.assert_allclose(y, y_ref, **TOL)
      jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOL), g, g_ref)

  def test_pooling_and_upsampling(self):
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(resnet.mean_pool(x)[0, :, :, 0],
                                  [[2.5, 4.5], [10.5, 12.5]])
    u = resnet.upsample_nearest(x)
    np.testing.assert_array_equal(u[0, :2, :2, 0], [[0, 0], [0, 0]])
    np.testing.assert_array_equal(u[0, 6:, 4:6, 0], [[14, 14], [14, 14]])
    np.testing.assert_array_equal(resnet.mean_pool(u), x)

  def test_subpixel_is_default_and_same_parameters(self):
    self.assertEqual(models.ResNetGenerator(image_shape=(32, 32, 1)).upsample, "subpixel")
    x = jnp.ones((1, 3, 3, 2))
    init = lambda subpixel: resnet.UpsampleConv(3, subpixel=subpixel).init(KEY, x)
    jax.tree.map(np.testing.assert_array_equal, init(False), init(True))


class OptionsTest(parameterized.TestCase):

  def test_batch_norm(self):
    z = _normal((4, 3))
    for bn in (False, True):
      gen = models.ResNetGenerator(image_shape=(32, 32, 1), base_features=2, batch_norm=bn)
      v = _variables(gen, z)
      self.assertEqual("batch_stats" in v, bn)
      self.assertEqual("bias" in v["params"]["block_0"]["conv_0"], not bn)
    gen = models.ResNetGenerator(image_shape=(32, 32, 1), base_features=2)
    v = _variables(gen, z)
    # Train mode normalises with batch statistics: examples interact.
    out, updates = _apply(gen, mutable=["batch_stats"])(v, z)
    self.assertFalse(np.allclose(out[:1], _apply(gen, mutable=["batch_stats"])(v, z[:1])[0],
                                 atol=1e-4))
    self.assertFalse(np.allclose(updates["batch_stats"]["norm_out"]["mean"],
                                 v["batch_stats"]["norm_out"]["mean"]))

    disc = models.ResNetDiscriminator(base_features=2, batch_norm=True)
    x = _normal((2, 32, 32, 1))
    dv = _variables(disc, x)
    # Not in the optimized first block, which sees the raw image.
    self.assertEqual(sorted(dv["batch_stats"]["trunk"]), ["block_1", "block_2", "block_3"])
    self.assertEqual(_apply(disc, train=False)(dv, x).shape, (2,))

  def test_spectral_norm_estimates_top_singular_values(self):
    disc = models.ResNetDiscriminator(base_features=4, spectral_norm=True)
    x = _normal((2, 32, 32, 2))
    v = _variables(disc, x)
    with self.assertRaises(flax.errors.ModifyScopeVariableError):
      jax.eval_shape(disc.apply, v, x)  # power iteration needs a mutable collection
    step = _apply(disc, mutable=["batch_stats"])
    for _ in range(40):
      _, updates = step(v, x)
      v = {**v, **updates}
    trunk, stats = v["params"]["trunk"], v["batch_stats"]["trunk"]
    for block, conv in (("block_0", "conv_0"), ("block_2", "conv_1"),
                        ("block_1", "shortcut")):
      kernel = np.asarray(trunk[block][conv]["kernel"])
      top = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
      sigma = stats[block][f"sn_{conv}"][f"{conv}/kernel/sigma"]
      self.assertAlmostEqual(float(sigma), float(top), delta=2e-3 * top)
    out = np.asarray(v["params"]["out"]["kernel"])
    self.assertAlmostEqual(float(v["batch_stats"]["sn_out"]["out/kernel/sigma"]),
                           float(np.linalg.norm(out)), delta=1e-3 * np.linalg.norm(out))
    # Evaluation divides by the stored estimates and needs no mutable collection.
    self.assertEqual(_apply(disc, train=False)(v, x).shape, (2,))

  def test_dropout_train_only(self):
    disc = models.ResNetDiscriminator(base_features=2, dropout_rate=0.5)
    x = _normal((2, 32, 32, 1))
    v = _variables(disc, x, train=False)
    with self.assertRaises(flax.errors.InvalidRngError):
      jax.eval_shape(disc.apply, v, x)
    ev = _apply(disc, train=False)
    np.testing.assert_array_equal(ev(v, x), ev(v, x))
    tr = _apply(disc)
    a = tr(v, x, rngs={"dropout": jax.random.key(1)})
    b = tr(v, x, rngs={"dropout": jax.random.key(2)})
    self.assertFalse(np.allclose(a, b))
    np.testing.assert_array_equal(a, tr(v, x, rngs={"dropout": jax.random.key(1)}))

  def test_jit_matches_eager(self):
    disc = models.ResNetDiscriminator(base_features=2, layer_norm=True)
    x = _normal((2, 32, 32, 1))
    v = _variables(disc, x)
    np.testing.assert_allclose(_apply(disc)(v, x), disc.apply(v, x), **TOL)

  @parameterized.named_parameters(
      ("layer_norm", dict(layer_norm=True)),
      ("spectral_norm", dict(spectral_norm=True)))
  def test_double_backprop(self, kwargs):
    # d/dtheta of E ||grad_x D(x)||^2 (Roth et al., WGAN-GP) is reverse over
    # reverse mode; its contraction with a direction must equal forward mode.
    disc = models.ResNetDiscriminator(base_features=2, **kwargs)
    x = _normal((2, 32, 32, 1))
    v = _variables(disc, x)
    params, rest = v["params"], {k: a for k, a in v.items() if k != "params"}

    def penalty(params):
      score = lambda x: jnp.sum(disc.apply({"params": params, **rest}, x, train=False))
      return jnp.mean(jnp.sum(jax.grad(score)(x) ** 2, axis=(1, 2, 3)))

    rng = np.random.default_rng(3)
    direction = jax.tree.map(lambda a: rng.standard_normal(a.shape).astype(a.dtype), params)

    @jax.jit
    def both(params):
      value, grads = jax.value_and_grad(penalty)(params)
      _, forward = jax.jvp(penalty, (params,), (direction,))
      return value, grads, forward

    value, grads, forward = both(params)
    self.assertGreater(float(value), 0.0)
    leaves = jax.tree.leaves(grads)
    self.assertTrue(all(np.all(np.isfinite(g)) for g in leaves))
    reverse = sum(jnp.vdot(g, d) for g, d in zip(leaves, jax.tree.leaves(direction)))
    self.assertGreater(abs(float(forward)), 0.0)
    self.assertAlmostEqual(float(reverse), float(forward), delta=1e-4 * abs(float(forward)))
    # A conv kernel shapes grad_x; the output bias cannot.
    self.assertGreater(float(jnp.abs(grads["trunk"]["block_0"]["conv_0"]["kernel"]).max()), 0)
    self.assertEqual(float(jnp.abs(grads["out"]["bias"]).max()), 0.0)


class ValidationTest(parameterized.TestCase):

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, "size 28; valid: 32, 64"):
      models.ResNetGenerator(image_shape=(28, 28, 1))
    with self.assertRaisesRegex(ValueError, "square"):
      models.ResNetGenerator(image_shape=(32, 64, 3))
    with self.assertRaisesRegex(ValueError, r"\(H, W, C\)"):
      models.ResNetGenerator(image_shape=(32, 32))
    with self.assertRaisesRegex(ValueError, "upsample 'transpose'; valid: nearest, subpixel"):
      models.ResNetGenerator(image_shape=(32, 32, 3), upsample="transpose")
    with self.assertRaisesRegex(ValueError, "output_activation 'sigmoid'; valid: tanh, linear"):
      models.ResNetGenerator(image_shape=(32, 32, 3), output_activation="sigmoid")
    with self.assertRaisesRegex(ValueError, "base_features must be a positive int"):
      models.ResNetDiscriminator(base_features=0)
    with self.assertRaisesRegex(ValueError, "exclusive"):
      models.ResNetDiscriminator(batch_norm=True, layer_norm=True)
    with self.assertRaisesRegex(ValueError, r"dropout_rate must be in \[0, 1\)"):
      models.ResNetDiscriminator(dropout_rate=-0.1)
    with self.assertRaisesRegex(ValueError, "kernel_init 'he'"):
      models.ResNetEncoder(latent_shape=(2,), kernel_init="he")
    with self.assertRaisesRegex(ValueError, "output_activation 'relu'"):
      models.ResNetEncoder(latent_shape=(2,), output_activation="relu")
    with self.assertRaisesRegex(ValueError, "size 16; valid: 32, 64"):
      jax.eval_shape(models.ResNetDiscriminator(base_features=2).init, KEY,
                     jnp.zeros((1, 16, 16, 3)))
    with self.assertRaisesRegex(ValueError, r"\[B, H, W, C\]"):
      jax.eval_shape(models.ResNetDiscriminator(base_features=2).init, KEY,
                     jnp.zeros((1, 32, 32)))
    with self.assertRaisesRegex(ValueError, "positive odd"):
      jax.eval_shape(resnet.UpsampleConv(2, 4).init, KEY, jnp.zeros((1, 4, 4, 1)))

  def test_registry(self):
    self.assertIs(models.GENERATORS["resnet"], resnet.ResNetGenerator)
    self.assertIs(models.DISCRIMINATORS["resnet"], resnet.ResNetDiscriminator)
    self.assertIs(models.ENCODERS["resnet"], resnet.ResNetEncoder)
    gen = models.make_generator("resnet", image_shape=[64, 64, 3], base_features=8)
    self.assertEqual(gen, models.ResNetGenerator(image_shape=(64, 64, 3), base_features=8))
    with self.assertRaisesRegex(ValueError, "valid: dcgan, mlp, resnet"):
      models.make_discriminator("biggan")
    with self.assertRaisesRegex(ValueError, "needs field.*latent_shape"):
      models.make_encoder("resnet")


if __name__ == "__main__":
  absltest.main()
