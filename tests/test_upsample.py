"""ConvTranspose2x computes nn.ConvTranspose(strides=2, padding='SAME') exactly."""
import functools

from absl.testing import absltest
from absl.testing import parameterized
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.models.upsample import ConvTranspose2x
from gan_jax.models.upsample import phase_taps

# float32 sums of at most k*k*C_in products of O(1) terms, added in a different
# order by the two forms: rounding differences stay far below 1e-5.
TOL = dict(rtol=1e-5, atol=1e-5)


def _reference(features, kernel_size, use_bias=True):
  return nn.ConvTranspose(features, kernel_size, strides=(2, 2),
                          padding="SAME", use_bias=use_bias)


def _random_variables(module, x, seed):
  """Random parameters of the shapes ``module`` makes for ``x``.

  Drawn with numpy from the abstract shapes, so no initializer is compiled;
  the bias is random too (init would leave it at zero).
  """
  shapes = jax.eval_shape(module.init, jax.random.key(0), x)
  rng = np.random.default_rng(seed)
  return jax.tree.map(
      lambda s: (0.5 * rng.standard_normal(s.shape)).astype(np.float32), shapes)


def _outputs_and_vjps(variables, x, cotangent, *, ours, ref):
  """Both layers' outputs and gradients of <output, cotangent> (one compile)."""

  def functional(module):
    return lambda v, x: jnp.sum(module.apply(v, x) * cotangent)

  return (ours.apply(variables, x), ref.apply(variables, x),
          jax.grad(functional(ours), argnums=(0, 1))(variables, x),
          jax.grad(functional(ref), argnums=(0, 1))(variables, x))


class ConvTranspose2xTest(parameterized.TestCase):

  @parameterized.named_parameters(
      # name, kernel, (H, W), C_in, C_out, use_bias
      ("k3_odd", (3, 3), (5, 5), 1, 1, True),
      ("k3_mixed", (3, 3), (4, 7), 3, 2, True),
      ("k4_odd", (4, 4), (7, 7), 4, 3, True),
      ("k4_even_nobias", (4, 4), (8, 6), 2, 5, False),
      ("k5_even", (5, 5), (6, 6), 3, 4, True),
      ("k5_mixed", (5, 5), (7, 4), 5, 2, True),
      ("k2", (2, 2), (5, 6), 2, 3, True),
      ("k1", (1, 1), (3, 4), 2, 2, True),
      ("k6", (6, 6), (5, 4), 2, 3, True),
      ("k3x5_rect", (3, 5), (6, 5), 2, 3, True),
      ("k4x1_rect", (4, 1), (5, 3), 3, 2, True),
  )
  def test_values_and_gradients_equal_conv_transpose(
      self, kernel_size, hw, c_in, c_out, use_bias):
    rng = np.random.default_rng(sum(kernel_size) * 100 + hw[0] * 10 + hw[1])
    x = rng.standard_normal((2,) + hw + (c_in,)).astype(np.float32)
    out_shape = (2, 2 * hw[0], 2 * hw[1], c_out)
    # A random linear functional's gradient is the full vector-Jacobian product.
    cotangent = rng.standard_normal(out_shape).astype(np.float32)
    ours = ConvTranspose2x(c_out, kernel_size, use_bias=use_bias)
    ref = _reference(c_out, kernel_size, use_bias)
    variables = _random_variables(ref, x, seed=1)

    y, y_ref, g_ours, g_ref = jax.jit(
        functools.partial(_outputs_and_vjps, ours=ours, ref=ref))(
            variables, x, cotangent)
    self.assertEqual(y.shape, out_shape)
    np.testing.assert_allclose(y, y_ref, **TOL)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOL),
                 g_ours, g_ref)

  def test_same_parameters_at_init(self):
    x = jnp.ones((1, 4, 4, 3))
    key = jax.random.key(7)
    ours = jax.jit(ConvTranspose2x(5, (4, 4)).init)(key, x)
    ref = jax.jit(_reference(5, (4, 4)).init)(key, x)
    self.assertEqual(jax.tree.structure(ours), jax.tree.structure(ref))
    jax.tree.map(np.testing.assert_array_equal, ours, ref)

  def test_int_kernel_size_and_extra_batch_dims(self):
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 5, 2)).astype(np.float32)
    ref = _reference(3, (5, 5))
    variables = _random_variables(ref, x, seed=2)
    ours = jax.jit(ConvTranspose2x(3, 5).apply)
    y = ours(variables, x)
    self.assertEqual(y.shape, (2, 3, 10, 10, 3))
    np.testing.assert_allclose(y, jax.jit(ref.apply)(variables, x), **TOL)
    # An unbatched image is accepted as well.
    y1 = ours(variables, x[0, 0])
    np.testing.assert_allclose(y1, y[0, 0], **TOL)

  def test_jit(self):
    x = np.random.default_rng(3).standard_normal((2, 7, 7, 4)).astype(np.float32)
    module = ConvTranspose2x(2)
    variables = _random_variables(module, x, seed=4)
    np.testing.assert_allclose(jax.jit(module.apply)(variables, x),
                               module.apply(variables, x), **TOL)

  @parameterized.parameters(1, 2, 3, 4, 5, 6, 7)
  def test_every_kernel_tap_used_once_per_phase_pair(self, k):
    # Each kernel index belongs to exactly one output phase: the transposed
    # convolution uses every weight once per input pixel.
    taps, _ = phase_taps(k)
    used = sorted(int(j) for j in taps.ravel() if j < k)
    self.assertEqual(used, list(range(k)))

  def test_bad_kernel_size(self):
    with self.assertRaisesRegex(ValueError, "kernel_size"):
      ConvTranspose2x(2, (3, 3, 3)).init(jax.random.key(0), jnp.ones((1, 4, 4, 1)))


if __name__ == "__main__":
  absltest.main()
