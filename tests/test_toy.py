"""Tests for gan_jax.data.toy: geometry, sampling statistics, registry."""

import copy
import dataclasses
import functools
import itertools
import math
import pickle

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

import gan_jax.data as data
from gan_jax.data import toy

N = 20_000  # samples per statistical check
KEY = jax.random.key(0)

# Every registered name plus variants with unequal weights, thickness, etc.
VARIANTS = {name: (name, {}) for name in toy.TOY_DATASETS}
VARIANTS.update({
    "ring_8_unequal": ("ring_8", {"weights": np.arange(1, 9)}),
    "mixture_3d_5_unequal": ("mixture_3d_5", {"weights": [0.4, 0.3, 0.1, 0.1, 0.1]}),
    "mixture_2d_circle": ("mixture_2d", {"radius": 2.0, "n_components": 4}),
    "cube_frames_equal_thick": ("cube_frames", {"weights": (0.5, 0.5), "frame_std": 0.01}),
})
CASES = [(case, case) for case in VARIANTS]
MIXTURE_CASES = [(case, case) for case in VARIANTS if "cube" not in case]


# Sampling compiles one program per (distribution, n): share the distributions
# and one large draw of each across tests to keep the file fast.
@functools.lru_cache(maxsize=None)
def _dist(case):
  name, overrides = VARIANTS[case]
  return data.make_toy(name, **overrides)


@functools.lru_cache(maxsize=None)
def _draw(case):
  x, labels = _dist(case).sample_with_labels(KEY, N)
  return np.asarray(x, np.float64), np.asarray(labels)


class RegistryTest(parameterized.TestCase):

  def test_names(self):
    self.assertEqual(
        set(data.TOY_DATASETS),
        {"mixture_3d_5", "mixture_3d_10", "cube_frames", "roth_submanifold",
         "che_circle", "ring_8", "grid_25", "mixture_1d", "mixture_2d",
         "mixture_3d"})

  def test_unknown_name_lists_valid(self):
    with self.assertRaisesRegex(ValueError, "unknown toy.*'foo'.*valid:.*grid_25.*ring_8"):
      data.make_toy("foo")

  def test_unknown_parameter_lists_valid(self):
    with self.assertRaisesRegex(ValueError, "unknown parameter.*sigma.*valid:.*std"):
      data.make_toy("ring_8", sigma=0.1)

  @parameterized.named_parameters(
      ("zero_std", "ring_8", {"std": 0.0}, "std must be"),
      ("negative_std", "grid_25", {"std": -1.0}, "std must be"),
      ("nan_std", "che_circle", {"std": float("nan")}, "std must be"),
      ("string_std", "che_circle", {"std": "big"}, "std must be a number"),
      ("weights_length", "ring_8", {"weights": [1, 2]}, r"shape \(8,\)"),
      ("weights_negative", "mixture_3d_5", {"weights": [1, -1, 1, 1, 1]}, ">= 0"),
      ("weights_zero", "mixture_3d_5", {"weights": [0] * 5}, "not all 0"),
      ("components", "che_circle", {"n_components": 0}, "integer >= 1"),
      ("components_float", "ring_8", {"n_components": 2.5}, "integer >= 1"),
      ("radius", "ring_8", {"radius": -1.0}, "radius must be"),
      ("frame_std", "cube_frames", {"frame_std": -0.1}, "frame_std must be"),
      ("half_sides", "cube_frames", {"half_sides": (0.4, -0.8)}, "half_sides"),
      ("box", "mixture_3d_10", {"box": (1.0, -1.0)}, "low < high"),
      ("box_shape", "mixture_3d_10", {"box": 1.0}, "pair"),
      ("axis", "roth_submanifold", {"axis": (0, 0, 0)}, "non-zero 3-vector"),
      ("crowded", "mixture_1d", {"n_components": 6}, "could not place 6"),
  )
  def test_bad_parameters(self, name, overrides, message):
    with self.assertRaisesRegex(ValueError, message):
      data.make_toy(name, **overrides)

  def test_params_recorded(self):
    dist = data.make_toy("ring_8", std=0.02)
    self.assertEqual(dist.params["std"], 0.02)
    self.assertEqual(dist.params["n_components"], 8)

  def test_frozen(self):
    dist = data.make_toy("ring_8")
    with self.assertRaises(dataclasses.FrozenInstanceError):
      dist.std = 1.0  # type: ignore[misc]
    with self.assertRaises(ValueError):
      dist.centers[0, 0] = 3.0
    hash(dist)  # usable as a static argument

  def test_pickle_and_copy_after_use(self):
    dist = _dist("ring_8")
    x = dist.sample(KEY, N)
    for other in (pickle.loads(pickle.dumps(dist)), copy.deepcopy(dist)):
      np.testing.assert_array_equal(other.centers, dist.centers)
      self.assertFalse(other.centers.flags.writeable)
      np.testing.assert_array_equal(other.sample(KEY, N), x)

  def test_direct_construction_checked(self):
    base = dict(name="t", dim=2, std=0.1, weights=np.ones(1), box=(-1, 1))
    with self.assertRaisesRegex(ValueError, "exactly one of centers"):
      toy.ToyDistribution(centers=None, **base)
    with self.assertRaisesRegex(ValueError, r"centers must have shape \(1, 2\)"):
      toy.ToyDistribution(centers=np.zeros((1, 3)), **base)
    with self.assertRaisesRegex(ValueError, "orthonormal"):
      toy.ToyDistribution(centers=np.zeros((1, 2)), noise_basis=[[1.0, 1.0]], **base)
    with self.assertRaisesRegex(ValueError, "positive length"):
      toy.ToyDistribution(centers=None, segments=np.zeros((1, 2, 2)),
                          segment_component=[0], **base)
    with self.assertRaisesRegex(ValueError, "summing to 1"):
      toy.ToyDistribution(centers=np.zeros((2, 2)), **{**base, "weights": [0.5, 0.6]})

  def test_bad_sample_size(self):
    dist = data.make_toy("ring_8")
    for n in (0, 2.0):
      with self.assertRaisesRegex(ValueError, "n .*integer >= 1"):
        dist.sample(KEY, n)


class SamplingTest(parameterized.TestCase):

  @parameterized.named_parameters(*CASES)
  def test_shape_and_dtype(self, case):
    dist = _dist(case)
    x, labels = dist.sample_with_labels(KEY, N)
    self.assertEqual(x.shape, (N, dist.dim))
    self.assertEqual(x.dtype, jnp.float32)
    self.assertEqual(labels.shape, (N,))
    self.assertEqual(labels.dtype, jnp.int32)
    # A different key gives different points.
    self.assertFalse(np.allclose(dist.sample(jax.random.key(1), N), x))

  # All samplers share two code paths (mixture with or without a noise basis,
  # segments); compiling each costs ~1 s, so jit and vmap are checked on one
  # distribution per path.
  @parameterized.parameters("mixture_3d_5", "roth_submanifold", "cube_frames")
  def test_jit_and_vmap(self, case):
    dist = _dist(case)
    x = dist.sample(KEY, N)
    jitted = jax.jit(dist.sample, static_argnums=1)(KEY, N)
    np.testing.assert_allclose(jitted, x, rtol=1e-6, atol=1e-6)
    keys = jax.random.split(KEY, 2)
    batched = jax.vmap(lambda k: dist.sample(k, N))(keys)
    self.assertEqual(batched.shape, (2, N, dist.dim))
    np.testing.assert_allclose(batched[1], dist.sample(keys[1], N), rtol=1e-6, atol=1e-6)

  @parameterized.named_parameters(*CASES)
  def test_component_frequencies(self, case):
    dist = _dist(case)
    _, labels = _draw(case)
    freq = np.bincount(labels, minlength=dist.n_components) / N
    w = dist.weights
    np.testing.assert_allclose(w.sum(), 1.0)
    # Multinomial: each frequency has sd sqrt(w (1 - w) / N); allow 5 sd.
    tol = 5 * np.sqrt(w * (1 - w) / N) + 1e-12
    np.testing.assert_array_less(np.abs(freq - w), tol)

  @parameterized.named_parameters(*MIXTURE_CASES)
  def test_component_mean_and_covariance(self, case):
    dist = _dist(case)
    x, labels = _draw(case)
    basis = np.eye(dist.dim) if dist.noise_basis is None else dist.noise_basis
    expected_cov = dist.std ** 2 * basis.T @ basis  # projection onto the noise span
    for m in range(dist.n_components):
      r = x[labels == m] - dist.centers[m]
      nm = r.shape[0]
      # Mean of nm draws: sd std / sqrt(nm). Sample covariance entries: sd at
      # most std^2 sqrt(2 / nm). Allow 5 sd (plus float32 rounding of x).
      mean_tol = 5 * dist.std / math.sqrt(nm) + 1e-5
      np.testing.assert_array_less(np.abs(r.mean(0)), mean_tol)
      cov = np.cov(r, rowvar=False).reshape(dist.dim, dist.dim)
      cov_tol = 5 * dist.std ** 2 * math.sqrt(2 / nm) + 1e-9
      np.testing.assert_array_less(np.abs(cov - expected_cov), cov_tol)

  @parameterized.named_parameters(*MIXTURE_CASES)
  def test_geometry_of_centres(self, case):
    dist = _dist(case)
    np.testing.assert_array_equal(dist.nearest_mode(dist.centers),
                                  np.arange(dist.n_components))
    np.testing.assert_allclose(dist.distance_to_support(dist.centers), 0.0, atol=1e-6)
    x, labels = _draw(case)
    # Centres are >= 12 std apart in every case: a point is nearer another
    # centre only if its noise exceeds 6 std towards it (p ~ 1e-9 per point).
    np.testing.assert_array_equal(dist.nearest_mode(x), labels)
    brute = np.min(np.linalg.norm(x[:, None] - dist.centers[None], axis=-1), 1)
    np.testing.assert_allclose(dist.distance_to_support(x), brute, rtol=1e-5, atol=1e-6)

  @parameterized.named_parameters(*CASES)
  def test_box_frames_the_samples(self, case):
    x, _ = _draw(case)
    low, high = _dist(case).box
    self.assertTrue(np.all((x > low) & (x < high)))


class MixtureCentresTest(parameterized.TestCase):

  @parameterized.parameters("mixture_3d_5", "mixture_3d_10")
  def test_beta_gan_separation(self, name):
    dist = data.make_toy(name)
    self.assertEqual(dist.centers.shape, (int(name.split("_")[-1]), 3))
    self.assertEqual(dist.std, 0.05)
    np.testing.assert_allclose(dist.weights, 1 / dist.n_components)
    self.assertTrue(np.all(np.abs(dist.centers) <= 0.8))
    gaps = [np.linalg.norm(a - b) for a, b in itertools.combinations(dist.centers, 2)]
    # 12 std apart: the 3-std balls are 6 std from touching.
    self.assertGreaterEqual(min(gaps), 12 * dist.std)
    self.assertEqual(dist.box, (-1.0, 1.0))

  def test_literal_centres_match_their_recipe(self):
    ten = data.make_toy("mixture_3d_10").centers
    np.testing.assert_array_equal(data.make_toy("mixture_3d_5").centers, ten[:5])
    np.testing.assert_allclose(
        toy.random_centers(10, dim=3, low=-0.8, high=0.8, min_distance=0.6, seed=0),
        ten, rtol=0, atol=1e-15)
    np.testing.assert_allclose(data.make_toy("mixture_3d", n_components=10).centers, ten)

  @parameterized.parameters((1, 3), (2, 5), (3, 8))
  def test_generic_random_centres(self, dim, n):
    dist = data.make_toy(f"mixture_{dim}d", n_components=n, seed=3)
    self.assertEqual(dist.centers.shape, (n, dim))
    self.assertTrue(np.all(np.abs(dist.centers) <= 0.8))
    gaps = [np.linalg.norm(a - b) for a, b in itertools.combinations(dist.centers, 2)]
    self.assertGreaterEqual(min(gaps), 12 * 0.05)
    self.assertEqual(dist.box, (-1.0, 1.0))
    other = data.make_toy(f"mixture_{dim}d", n_components=n, seed=4)
    self.assertFalse(np.allclose(other.centers, dist.centers))

  def test_generic_circle_layouts(self):
    c2 = data.make_toy("mixture_2d", radius=2.0, n_components=4).centers
    np.testing.assert_allclose(c2, [[2, 0], [0, 2], [-2, 0], [0, -2]], atol=1e-12)
    c1 = data.make_toy("mixture_1d", radius=1.0, n_components=3).centers
    np.testing.assert_allclose(c1[:, 0], [-1, 0, 1])
    c3 = data.make_toy("mixture_3d", radius=1.0, n_components=3).centers
    np.testing.assert_allclose(c3[:, 2], 0.0)
    np.testing.assert_allclose(np.linalg.norm(c3, axis=1), 1.0)

  def test_ring_centres_exact(self):
    dist = data.make_toy("ring_8")
    angles = 2 * np.pi * np.arange(8) / 8
    np.testing.assert_allclose(dist.centers, np.c_[np.cos(angles), np.sin(angles)],
                               atol=1e-15)
    self.assertEqual(dist.std, 0.01)
    wide = data.make_toy("ring_8", radius=2.0, std=0.05)
    np.testing.assert_allclose(wide.centers, 2 * dist.centers, atol=1e-15)
    self.assertEqual(wide.std, 0.05)

  def test_grid_centres_exact(self):
    dist = data.make_toy("grid_25")
    got = {tuple(c) for c in dist.centers.tolist()}
    want = set(itertools.product([-4.0, -2.0, 0.0, 2.0, 4.0], repeat=2))
    self.assertEqual(got, want)
    self.assertEqual(dist.std, 0.05)

  def test_che_circle(self):
    dist = data.make_toy("che_circle")
    self.assertEqual(dist.n_components, 6)
    self.assertEqual(dist.std, 0.1)
    np.testing.assert_allclose(np.linalg.norm(dist.centers, axis=1), 5.0)
    gaps = np.linalg.norm(dist.centers - np.roll(dist.centers, 1, 0), axis=1)
    np.testing.assert_allclose(gaps, 5.0)  # hexagon: side = radius
    x, _ = _draw("che_circle")
    # |x| = 5 + radial noise (sd 0.1) + O(std^2 / r) curvature bias (0.001).
    radii = np.linalg.norm(x, axis=1)
    self.assertLess(abs(radii.mean() - 5.0), 5 * 0.1 / math.sqrt(N) + 0.002)
    self.assertLess(abs(radii.std() - 0.1), 0.005)


class RothSubmanifoldTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.dist = _dist("roth_submanifold")
    self.offset = np.ones(3) / math.sqrt(3)
    # Rodrigues by hand, axis k = (1, -1, 0)/sqrt(2), angle pi/4:
    # R e_z = e_z cos + (k x e_z) sin = (-1/2, -1/2, 1/sqrt(2)), the normal;
    # R e_x = e_x cos + (k x e_x) sin + k (k.e_x)(1 - cos).
    self.normal = np.array([-0.5, -0.5, 1 / math.sqrt(2)])
    c = s = 1 / math.sqrt(2)
    self.rex = np.array([c + (1 - c) / 2, -(1 - c) / 2, s / math.sqrt(2)])

  def test_parameters(self):
    self.assertEqual(self.dist.n_components, 7)
    self.assertEqual(self.dist.std, 0.01)
    self.assertEqual(self.dist.noise_dim, 2)

  def test_rotation_matrix(self):
    rot = toy.rotation_matrix((1, -1, 0), math.pi / 4)
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    self.assertAlmostEqual(np.linalg.det(rot), 1.0)
    np.testing.assert_allclose(rot[:, 2], self.normal, atol=1e-12)
    np.testing.assert_allclose(rot[:, 0], self.rex, atol=1e-12)
    np.testing.assert_allclose(rot @ np.array([1, -1, 0]), [1, -1, 0], atol=1e-12)

  def test_centres(self):
    rel = self.dist.centers - self.offset
    np.testing.assert_allclose(rel @ self.normal, 0.0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(rel, axis=1), 1.0)
    np.testing.assert_allclose(rel[0], self.rex, atol=1e-12)
    # Equally spaced: neighbouring centres are 2 sin(pi/7) apart.
    gaps = np.linalg.norm(rel - np.roll(rel, 1, 0), axis=1)
    np.testing.assert_allclose(gaps, 2 * math.sin(math.pi / 7))

  def test_samples_lie_on_the_tilted_plane(self):
    x, _ = _draw("roth_submanifold")
    rel = x - self.offset
    # Exactly on the plane through the offset, up to float32 rounding.
    np.testing.assert_allclose(rel @ self.normal, 0.0, atol=1e-5)
    # Distance from the circle is at most |noise|; |noise|/std is chi with 2
    # dof, P(> 6) = exp(-18) ~ 2e-8 per point.
    radius = np.linalg.norm(rel, axis=1)
    self.assertLess(np.max(np.abs(radius - 1.0)), 6 * self.dist.std)


class CubeFramesTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.dist = _dist("cube_frames")

  def test_edges(self):
    seg = self.dist.segments
    self.assertEqual(seg.shape, (24, 2, 3))
    for cube, h in enumerate((0.4, 0.8)):
      edges = seg[self.dist.segment_component == cube]
      self.assertLen(edges, 12)
      np.testing.assert_allclose(np.abs(edges), h)  # endpoints are vertices
      diff = edges[:, 1] - edges[:, 0]
      # Each edge runs along one axis with length 2h; 4 edges per axis.
      np.testing.assert_allclose(np.sort(np.abs(diff), axis=1), [[0, 0, 2 * h]] * 12)
      np.testing.assert_array_equal(np.sum(np.abs(diff) > 0, axis=0), [4, 4, 4])
      self.assertLen({tuple(e) for e in np.round(edges.reshape(12, 6), 9)}, 12)
    # Default weights: proportional to total edge length 24h.
    np.testing.assert_allclose(self.dist.weights, [1 / 3, 2 / 3])
    np.testing.assert_allclose(self.dist.segment_weights.sum(), 1.0)

  def test_samples_on_edges_and_all_edges_hit(self):
    x, labels = _draw("cube_frames")
    np.testing.assert_allclose(self.dist.distance_to_support(x), 0.0, atol=2e-6)
    idx, t, dist = (np.asarray(a) for a in self.dist.nearest_segment(x))
    np.testing.assert_array_equal(np.unique(idx), np.arange(24))
    # Uniform along the edges: t ~ U[0, 1], mean sd sqrt(1/12/N); 5 sd.
    self.assertLess(abs(t.mean() - 0.5), 5 * math.sqrt(1 / 12 / N))
    # Every point of the inner cube has |x|_inf = 0.4, of the outer 0.8.
    np.testing.assert_allclose(np.max(np.abs(x), 1), np.where(labels == 0, 0.4, 0.8),
                               atol=1e-6)
    with self.assertRaisesRegex(ValueError, "no mode centres"):
      self.dist.nearest_mode(x)

  def test_thickness(self):
    sigma = 0.01
    dist = _dist("cube_frames_equal_thick")
    x, _ = _draw("cube_frames_equal_thick")
    _, t, d = (np.asarray(a) for a in dist.nearest_segment(x))
    # Away from the corners the distance to the edge is the norm of a 2-D
    # Gaussian: Rayleigh, median sigma sqrt(2 ln 2). The sample median of
    # ~16k points has sd ~0.007 sigma; allow 5%.
    inner = (t > 0.1) & (t < 0.9)
    self.assertAlmostEqual(np.median(d[inner]) / sigma, math.sqrt(2 * math.log(2)),
                           delta=0.05 * math.sqrt(2 * math.log(2)))

  def test_other_cubes(self):
    dist = data.make_toy("cube_frames", half_sides=(0.5,))
    self.assertEqual(dist.segments.shape, (12, 2, 3))
    x = np.asarray(dist.sample(KEY, 1000))
    np.testing.assert_allclose(np.max(np.abs(x), 1), 0.5, atol=1e-6)

  def test_mixture_has_no_segments(self):
    with self.assertRaisesRegex(ValueError, "segment distribution"):
      data.make_toy("ring_8").nearest_segment(np.zeros((1, 2)))

  def test_point_shape_checked(self):
    with self.assertRaisesRegex(ValueError, r"shape \[n, 3\]"):
      self.dist.distance_to_support(np.zeros((4, 2)))


class InsideCompiledStepTest(absltest.TestCase):

  def test_draw_in_scan(self):
    dist = data.make_toy("grid_25")

    @jax.jit
    def run(key):
      def body(carry, k):
        return carry + jnp.mean(dist.sample(k, 128), axis=0), None
      total, _ = jax.lax.scan(body, jnp.zeros(2), jax.random.split(key, 50))
      return total / 50

    mean = run(KEY)
    # 6400 draws of a distribution with per-coordinate sd ~2.83: mean sd 0.035.
    np.testing.assert_array_less(np.abs(mean), 5 * 2.83 / math.sqrt(6400))


if __name__ == "__main__":
  absltest.main()
