"""bfloat16 computation: module dtypes, gradient penalties under bf16, a training step.

Tolerance of the bf16-against-float32 comparisons: bfloat16 keeps 8 significant bits,
a unit roundoff of u = 2^-9 ~ 2e-3. A forward and a backward pass through a few layers
round every activation and every input-gradient entry a few times per layer, and a
squared norm doubles relative errors, so a penalty computed by a bf16 discriminator is
good to about 1e-2; a two-sided penalty ``(n - 1)^2`` further amplifies the norm's
relative error by ``2 n / |1 - n|``. RTOL = 3e-2 (about 15 u) is that budget with a
margin: the largest error measured on these fixed seeds is 1.2e-2 (R1 on the toy
critic), WGAN-GP's on the DCGAN critic 1.0e-2 (n ~ 0.83, amplification ~10), the
typical one 5e-3. Errors of the kind the
precision rules exist for (a squared norm or Roth's weights reduced in bfloat16, a
bfloat16 input to differentiate) are smaller than that budget, so they are tested
exactly on discriminators whose gradients are known (``PrecisionTest``).
"""

import os
import re

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from configs import dcgan_mnist
from configs import wgan_2d
from gan_jax import games
from gan_jax import models
from gan_jax import penalties
from gan_jax.data import make_source

RTOL = 3e-2
BF16 = "bfloat16"


def _float_leaves(tree):
  return [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]


def _compute_dtypes(fn, *args):
  """Result dtypes (``'bf16'``, ``'f32'``) of the matrix products and convolutions
  ``fn`` runs, nested calls included."""
  text = str(jax.make_jaxpr(fn)(*args))
  return set(re.findall(r":(\w+)\[[^\]]*\] = (?:dot_general|conv_general_dilated)\[", text))


# --------------------------------------------------------------------------- modules

# (kind, name, fields, input shape) of a small module of each architecture.
MODULES = (
    ("generator", "mlp", {"widths": (8, 8), "out_shape": (3,), "batch_norm": True}, (2, 4)),
    ("discriminator", "mlp", {"widths": (8, 8), "layer_norm": True}, (2, 3)),
    ("encoder", "mlp", {"widths": (8,), "latent_shape": (2,), "batch_norm": True}, (2, 3)),
    ("generator", "dcgan", {"image_shape": (28, 28, 1), "base_features": 4}, (2, 6)),
    ("discriminator", "dcgan", {"base_features": 4}, (2, 28, 28, 1)),
    ("encoder", "dcgan", {"base_features": 4, "latent_shape": (3,)}, (2, 28, 28, 1)),
    ("generator", "resnet", {"image_shape": (32, 32, 3), "base_features": 4}, (2, 6)),
    ("discriminator", "resnet", {"base_features": 4, "layer_norm": True}, (2, 32, 32, 3)),
    ("encoder", "resnet", {"base_features": 4, "latent_shape": (3,)}, (2, 32, 32, 3)),
)
_FACTORIES = {"generator": models.make_generator, "discriminator": models.make_discriminator,
              "encoder": models.make_encoder}


class ModuleDtypeTest(parameterized.TestCase):

  @parameterized.named_parameters(*[(f"{kind}_{name}", kind, name, fields, shape)
                                    for kind, name, fields, shape in MODULES])
  def test_bf16_module_computes_in_bf16_on_float32_state(self, kind, name, fields, shape):
    module = _FACTORIES[kind](name, dtype=BF16, **fields)
    reference = _FACTORIES[kind](name, **fields)
    x = jnp.ones(shape, jnp.float32)
    variables = jax.eval_shape(module.init, jax.random.key(0), x)
    # The same state as the float32 module's, all float32: checkpoints are shared.
    self.assertEqual(jax.tree.map(lambda s: (s.shape, s.dtype), variables),
                     jax.tree.map(lambda s: (s.shape, s.dtype),
                                  jax.eval_shape(reference.init, jax.random.key(0), x)))
    self.assertEqual({str(s.dtype) for s in jax.tree.leaves(variables)}, {"float32"})

    def apply(v, x):
      kwargs = {"return_features": True} if kind == "discriminator" else {}
      return module.apply(v, x, mutable=["batch_stats"], **kwargs)

    outputs, new_state = jax.eval_shape(apply, variables, x)
    self.assertEqual({str(s.dtype) for s in jax.tree.leaves(outputs)}, {"float32"})
    self.assertEqual({str(s.dtype) for s in jax.tree.leaves(new_state)} - {"float32"}, set())
    dtypes = _compute_dtypes(apply, variables, x)
    self.assertIn("bf16", dtypes)
    if kind == "discriminator":
      self.assertIn("f32", dtypes)  # the logit head

  def test_float32_is_the_default_and_computes_in_float32(self):
    d = models.make_discriminator("dcgan", base_features=4)
    self.assertEqual(d.dtype, "float32")
    x = jnp.ones((2, 28, 28, 1))
    v = jax.eval_shape(d.init, jax.random.key(0), x)
    dtypes = _compute_dtypes(lambda v, x: d.apply(v, x, mutable=["batch_stats"]), v, x)
    self.assertEqual(dtypes, {"f32"})

  def test_dtype_objects_are_stored_by_name(self):
    self.assertEqual(models.make_generator("mlp", widths=(4,), out_shape=(2,),
                                           dtype=jnp.bfloat16).dtype, BF16)

  @parameterized.parameters("float16", "bf16", "float64", "int8")
  def test_unknown_dtype_names_the_valid_ones(self, dtype):
    for factory, fields in ((models.make_generator, {"widths": (4,), "out_shape": (2,)}),
                            (models.make_discriminator, {"widths": (4,)}),
                            (models.make_encoder, {"widths": (4,), "latent_shape": (2,)})):
      with self.assertRaisesRegex(ValueError, rf"unknown dtype '{dtype}'.*valid: "
                                  r"float32, bfloat16"):
        factory("mlp", dtype=dtype, **fields)
    self.assertEqual(models.COMPUTE_DTYPES, ("float32", "bfloat16"))


# ----------------------------------------------------------- exact precision rules

def _bf16_hostile(n, seed=0):
  """float32 values that bfloat16 cannot hold: 1 + k 2^-12, k = 1..7."""
  k = np.random.default_rng(seed).integers(1, 8, n)
  return (1.0 + k * 2.0 ** -12).astype(np.float32)


class PrecisionTest(parameterized.TestCase):
  """Linear discriminators, whose input gradient is their weight vector exactly."""

  def setUp(self):
    super().setUp()
    self.w = jnp.asarray(_bf16_hostile(64))
    self.assertFalse(np.all(np.asarray(self.w.astype(jnp.bfloat16), np.float32)
                            == np.asarray(self.w)))
    self.sq = float(np.sum(np.asarray(self.w, np.float64) ** 2))

  def test_squared_norms_are_reduced_in_float32(self):
    d_fn = lambda x: x @ self.w
    x = jnp.ones((3, 64))
    r1, diag = penalties.r1_penalty(d_fn, x)
    np.testing.assert_allclose(float(r1), self.sq, rtol=1e-6)
    np.testing.assert_allclose(float(diag["grad_norm_real"]), np.sqrt(self.sq), rtol=1e-6)
    gp, diag = penalties.wgan_gp_penalty(d_fn, x, 2 * x, jax.random.key(0), target_norm=0.0)
    np.testing.assert_allclose(float(gp), self.sq, rtol=1e-6)
    np.testing.assert_allclose(float(diag["grad_norm"]), np.sqrt(self.sq), rtol=1e-6)

  def test_inputs_are_promoted_to_float32_before_differentiation(self):
    seen = []

    def d_fn(x):
      seen.append(x.dtype)
      return x.astype(jnp.float32) @ self.w

    key = jax.random.key(1)
    real = jax.random.normal(key, (4, 64)).astype(jnp.bfloat16)
    fake = (2 * jax.random.normal(jax.random.key(2), (4, 64))).astype(jnp.bfloat16)
    # Every penalty differentiates through one helper; R1 stands for the others, and
    # WGAN-GP and DRAGAN form new inputs from the batches first.
    for fn in (lambda: penalties.r1_penalty(d_fn, real),
               lambda: penalties.wgan_gp_penalty(d_fn, real, fake, key),
               lambda: penalties.dragan_penalty(d_fn, real, key)):
      seen.clear()
      value, _ = fn()
      self.assertEqual(set(seen), {jnp.dtype(jnp.float32)})
      self.assertEqual(value.dtype, jnp.float32)
    # The interpolates are formed in float32 from the float32 weights e.
    _, diag = penalties.wgan_gp_penalty(lambda x: (x @ self.w, x), real, fake, key,
                                        has_aux=True)
    e = jax.random.uniform(key, (4, 1), jnp.float32)
    want = e * real.astype(jnp.float32) + (1 - e) * fake.astype(jnp.float32)
    np.testing.assert_allclose(np.asarray(diag["d_aux"]), np.asarray(want), rtol=1e-7)

  @parameterized.parameters("roth_js", "kl", "gan")
  def test_roth_weights_come_from_float32_logits(self, divergence):
    # Logits rounded to bfloat16 by the discriminator; the weights of those logits must
    # then be computed in float32 (reference in float64).
    d_fn = lambda x: (x @ self.w).astype(jnp.bfloat16)
    real = jnp.asarray(np.linspace(-0.05, 0.04, 64 * 6).reshape(6, 64), jnp.float32)
    fake = jnp.asarray(np.linspace(-0.03, 0.06, 64 * 6).reshape(6, 64), jnp.float32)
    v_real = np.asarray(d_fn(real).astype(jnp.float32), np.float64)
    v_fake = np.asarray(d_fn(fake).astype(jnp.float32), np.float64)
    sig = lambda v: 1 / (1 + np.exp(-v))
    if divergence == "roth_js":
      value, diag = penalties.roth_js_penalty(d_fn, real, fake)
      want = (np.mean(sig(-v_real) ** 2) + np.mean(sig(v_fake) ** 2)) * self.sq
      self.assertEqual(diag["logits_real"].dtype, jnp.float32)
    else:
      value, diag = penalties.roth_fgan_penalty(d_fn, fake, divergence=divergence)
      weight = {"kl": lambda v: np.exp(v - 1), "gan": sig}[divergence]
      want = np.mean(weight(v_fake)) * self.sq
    self.assertEqual(diag["logits_fake"].dtype, jnp.float32)
    np.testing.assert_allclose(float(value), want, rtol=1e-5)

  def test_ct_gaps_are_taken_in_float32(self):
    real = jnp.ones((2, 64))
    # Two passes of bf16 features differing by 1 and 3 bf16 ulps (2^-7 at 1): the
    # distance sqrt(10) 2^-7 is not a bf16 number.
    ones = jnp.ones((2, 64), jnp.bfloat16)
    feats = {0: ones, 1: ones.at[:, 0].set(1 + 2 ** -7).at[:, 1].set(1 + 3 * 2 ** -7)}
    calls = []

    def d_fn_features(x, key):
      i = len(calls)
      calls.append(key)
      return jnp.full((2,), 100 + 0.5 * i, jnp.bfloat16), feats[i]

    ct, diag = penalties.ct_penalty(d_fn_features, real, jax.random.key(0))
    self.assertEqual(diag["logits_real"].dtype, jnp.float32)
    gap = np.sqrt(10) * 2 ** -7
    np.testing.assert_allclose(float(diag["feature_gap"]), gap, rtol=1e-6)
    np.testing.assert_allclose(float(ct), 0.5 + 0.1 * gap, rtol=1e-6)


# ------------------------------------------------------ bf16 against float32 penalties

def _toy_critic(dtype, dropout_rate=0.0):
  return models.make_discriminator("mlp", widths=(128, 128), activation="relu",
                                   dropout_rate=dropout_rate, dtype=dtype)


def _dcgan_critic(dtype, dropout_rate=0.0):
  return models.make_discriminator("dcgan", base_features=8, batch_norm=False,
                                   layer_norm=True, dropout_rate=dropout_rate, dtype=dtype)


def _toy_batches():
  k1, k2 = jax.random.split(jax.random.key(10))
  return jax.random.normal(k1, (64, 2)), 0.5 * jax.random.normal(k2, (64, 2)) + 1.0


def _image_batches():
  k1, k2 = jax.random.split(jax.random.key(11))
  return (jnp.tanh(jax.random.normal(k1, (4, 28, 28, 1))),
          jnp.tanh(jax.random.normal(k2, (4, 28, 28, 1))))


def _all_penalties(critic, variables, real, fake, key):
  """Every penalty of a critic with dropout: off (train=False) except for CT."""
  d_fn = lambda x: critic.apply(variables, x, train=False)
  ct_fn = lambda x, k: critic.apply(variables, x, return_features=True, rngs={"dropout": k})
  out = {
      "wgan_gp": penalties.wgan_gp_penalty(d_fn, real, fake, key),
      "dragan": penalties.dragan_penalty(d_fn, real, key),
      "ct": penalties.ct_penalty(ct_fn, real, key),
      "roth_js": penalties.roth_js_penalty(d_fn, real, fake),
      "roth_fgan_kl": penalties.roth_fgan_penalty(d_fn, fake, divergence="kl"),
      "roth_fgan_js": penalties.roth_fgan_penalty(d_fn, fake, divergence="js"),
      "r1": penalties.r1_penalty(d_fn, real),
      "r2": penalties.r2_penalty(d_fn, fake),
  }
  return {name: (value, {k: v for k, v in diag.items()
                         if k.startswith(("grad_norm", "feature_gap", "logit_gap"))})
          for name, (value, diag) in out.items()}


class AgreementTest(parameterized.TestCase):

  @parameterized.named_parameters(("toy_mlp", _toy_critic, _toy_batches),
                                  ("dcgan", _dcgan_critic, _image_batches))
  def test_bf16_penalties_agree_with_float32(self, make_critic, make_batches):
    real, fake = make_batches()
    # An rbg key: XLA:CPU compiles its dropout masks several times faster than
    # threefry's (7 s against 2 s of CPU for the DCGAN critic's CT passes).
    key = jax.random.key(3, impl="rbg")
    critic_32, critic_16 = make_critic("float32", 0.2), make_critic(BF16, 0.2)
    variables = critic_32.init(jax.random.key(4), real, train=False)
    # One program for both (it compiles in about 60% of the time of two).
    got = jax.jit(lambda v: {dtype: _all_penalties(critic, v, real, fake, key) for dtype, critic
                             in (("float32", critic_32), (BF16, critic_16))})(variables)
    for name, (value_32, diag_32) in got["float32"].items():
      value_16, diag_16 = got[BF16][name]
      self.assertEqual(value_16.dtype, jnp.float32, name)
      self.assertGreater(float(value_32), 1e-3, name)  # a relative test needs a scale
      np.testing.assert_allclose(float(value_16), float(value_32), rtol=RTOL, err_msg=name)
      for k in diag_32:
        np.testing.assert_allclose(float(diag_16[k]), float(diag_32[k]), rtol=RTOL,
                                   err_msg=f"{name} {k}")


# ------------------------------------------------- exact zeros: finite gradients

def _relu_critic_params(dtype):
  """One hidden ReLU layer of 4 units on 2-D inputs, all weights 1, biases 0: an input
  with x1 + x2 < 0 has every unit inactive and an input gradient of exactly 0; one with
  x1 + x2 > 0 has the gradient (4, 4)."""
  critic = models.make_discriminator("mlp", widths=(4,), activation="relu", dtype=dtype)
  variables = critic.init(jax.random.key(0), jnp.zeros((1, 2)))
  variables = jax.tree.map(lambda p: jnp.ones_like(p) if p.ndim == 2 else jnp.zeros_like(p),
                           variables)
  return critic, variables


class ExactZeroTest(absltest.TestCase):

  def test_penalty_gradients_are_finite_where_input_gradients_vanish(self):
    critic, variables = _relu_critic_params(BF16)
    # Interpolates (and DRAGAN's perturbed points, which move each entry by at most
    # 0.5 std of the batch) on both sides: examples 0-1 dead, 2-3 live.
    real = jnp.array([[-9.0, -9.0], [-8.0, -9.5], [8.0, 9.0], [9.0, 9.5]])
    fake = real + 0.25

    def total(v, key):
      d_fn = lambda x: critic.apply(v, x)
      ct_fn = lambda x, k: critic.apply(v, x, return_features=True)  # identical passes
      gp, gp_diag = penalties.wgan_gp_penalty(d_fn, real, fake, key)
      dragan, _ = penalties.dragan_penalty(d_fn, real, key)
      ct, ct_diag = penalties.ct_penalty(ct_fn, real, key)
      return gp + dragan + ct, (gp, dragan, ct, gp_diag["grad_norm"], ct_diag["feature_gap"])

    def dead_gp(v):
      # Every example inactive: the penalty is exactly 1 and its gradient exactly 0.
      dead = -9.0 * jnp.ones((3, 2))
      return penalties.wgan_gp_penalty(lambda x: critic.apply(v, x), dead, dead - 1.0,
                                       jax.random.key(0))[0]

    def both(v, key):
      return jax.grad(total, has_aux=True)(v, key), jax.value_and_grad(dead_gp)(v)

    (grads, (gp, dragan, ct, grad_norm, feature_gap)), (dead_value, dead_grads) = jax.jit(
        both)(variables, jax.random.key(5))
    live = 4 * np.sqrt(2)
    want = ((live - 1) ** 2 + 1) / 2  # two live examples, two with norm exactly 0
    np.testing.assert_allclose(float(gp), want, rtol=1e-6)
    np.testing.assert_allclose(float(dragan), want, rtol=1e-6)
    np.testing.assert_allclose(float(grad_norm), live / 2, rtol=1e-6)
    self.assertEqual(float(ct), 0.0)
    self.assertEqual(float(feature_gap), 0.0)
    for path, g in jax.tree_util.tree_leaves_with_path(grads):
      self.assertTrue(np.all(np.isfinite(np.asarray(g))), jax.tree_util.keystr(path))
    # The live examples still pull the weights: the gradient is not simply zeroed.
    self.assertGreater(float(jnp.abs(grads["params"]["trunk"]["dense_0"]["kernel"]).sum()),
                       0.0)
    self.assertEqual(float(dead_value), 1.0)
    for g in jax.tree.leaves(dead_grads):
      np.testing.assert_array_equal(np.asarray(g), 0.0)


# ------------------------------------------------------------- training state dtypes

def _bf16_wgan_gp_toy_config():
  c = wgan_2d.get_config("gp")
  c.model.generator.update({"widths": (16, 16), "batch_norm": True, "dtype": BF16})
  c.model.discriminator.update({"widths": (16, 16), "dtype": BF16})
  c.game.n_critic = 1
  c.train.batch_size = 16
  return c


class TrainStateTest(absltest.TestCase):

  def test_bf16_training_step_keeps_float32_state(self):
    c = _bf16_wgan_gp_toy_config()
    source = make_source(c.data)
    game = games.make_game(c, source)
    state = game.init(jax.random.PRNGKey(0))
    self.assertNotEmpty(jax.tree.leaves(state.model_state["generator"]))  # batch stats
    new_state, metrics = jax.jit(game.step)(state, source.arrays)
    for part in ("params", "opt_state", "model_state"):
      tree = getattr(new_state, part)
      leaves = _float_leaves(tree)
      self.assertNotEmpty(leaves, part)
      self.assertEqual({str(x.dtype) for x in leaves}, {"float32"}, part)
      self.assertEqual(jax.tree.structure(tree), jax.tree.structure(getattr(state, part)))
    for name, value in metrics.items():
      self.assertTrue(np.all(np.isfinite(np.asarray(value))), name)
    moved = [float(jnp.max(jnp.abs(a - b))) for a, b in zip(
        jax.tree.leaves(new_state.params), jax.tree.leaves(state.params))]
    self.assertGreater(max(moved), 0.0)
    samples = game.sample(new_state, jax.random.PRNGKey(1), 8)
    self.assertEqual(samples.dtype, jnp.float32)

  def test_dcgan_wgan_gp_bf16_variant_keeps_float32_state(self):
    path = os.path.join(self.create_tempdir().full_path, "d.npz")
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(0, 256, (32, 28, 28), dtype=np.uint8),
             y_train=rng.integers(0, 10, 32).astype(np.uint8),
             x_test=rng.integers(0, 256, (8, 28, 28), dtype=np.uint8),
             y_test=rng.integers(0, 10, 8).astype(np.uint8))
    c = dcgan_mnist.get_config("mnist,wgan_gp,bf16")
    self.assertEqual((c.game.penalty.name, c.game.loss, c.game.n_critic),
                     ("wgan_gp", "wasserstein", 5))
    for player in ("generator", "discriminator"):
      c.model[player].base_features = 4
    c.data.npz_path = path
    c.train.batch_size = 4
    source = make_source(c.data)
    game = games.make_game(c, source)
    self.assertEqual((game.generator.dtype, game.discriminator.dtype), (BF16, BF16))
    state = jax.eval_shape(game.init, jax.random.PRNGKey(0))
    arrays = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), source.arrays)
    new_state, metrics = jax.eval_shape(game.step, state, arrays)
    for part in ("params", "opt_state", "model_state"):
      self.assertEqual({str(x.dtype) for x in _float_leaves(getattr(new_state, part))},
                       {"float32"}, part)
    self.assertEqual({str(m.dtype) for m in jax.tree.leaves(metrics)} - {"float32"}, set())


if __name__ == "__main__":
  absltest.main()
