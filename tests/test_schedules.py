"""Tests for gan_jax.schedules: documented values at documented steps, jit, errors."""

import math

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from gan_jax import schedules


def _on_traced_steps(schedule, steps):
  """Evaluates a schedule under jit on a traced int32 step vector (one compile)."""
  return np.asarray(jax.jit(jax.vmap(schedule))(jnp.asarray(steps, jnp.int32)))


class BetaLevelsTest(parameterized.TestCase):

  def test_paper_defaults(self):
    levels = schedules.beta_levels(beta_1=0.1, beta_K=10.0, K=20)
    alpha = 100.0**(1 / 20)
    np.testing.assert_allclose(levels, 0.1 * alpha**np.arange(20), rtol=1e-12)
    self.assertEqual(levels[0], 0.1)
    # As Algorithm 1 writes it the ladder stops one factor alpha short of beta_K.
    np.testing.assert_allclose(levels[-1], 10.0 / alpha, rtol=1e-12)
    np.testing.assert_allclose(levels[1:] / levels[:-1], alpha, rtol=1e-12)

  def test_single_level_and_equal_ends(self):
    np.testing.assert_array_equal(schedules.beta_levels(beta_1=0.5, beta_K=8.0, K=1), [0.5])
    np.testing.assert_allclose(
        schedules.beta_levels(beta_1=2.0, beta_K=2.0, K=4), [2.0] * 4, rtol=1e-15)

  @parameterized.named_parameters(
      ("beta1_above_betaK", dict(beta_1=12.0, beta_K=10.0, K=3),
       r"beta_1 \(12.0\) must not exceed beta_K \(10.0\)"),
      ("zero_beta1", dict(beta_1=0.0, beta_K=10.0, K=3), r"beta_1 must be a finite number > 0"),
      ("inf_betaK", dict(beta_1=1.0, beta_K=math.inf, K=3), r"beta_K must be a finite number > 0"),
      ("zero_K", dict(beta_1=0.1, beta_K=10.0, K=0), r"K must be an integer >= 1; got 0"),
      ("float_K", dict(beta_1=0.1, beta_K=10.0, K=2.5), r"K must be an integer >= 1"),
  )
  def test_validation(self, kwargs, message):
    with self.assertRaisesRegex(ValueError, message):
      schedules.beta_levels(**kwargs)


class BetaScheduleTest(parameterized.TestCase):

  def test_stages_at_boundaries(self):
    uniform, n, k = 7, 5, 4
    sched = schedules.beta_schedule(beta_1=0.1, beta_K=10.0, K=k, steps_per_level=n,
                                    uniform_steps=uniform)
    levels = schedules.beta_levels(beta_1=0.1, beta_K=10.0, K=k).astype(np.float32)
    end = schedules.beta_schedule_length(K=k, steps_per_level=n, uniform_steps=uniform)
    self.assertEqual(end, uniform + k * n)
    self.assertEqual(sched.data_start, end)
    expected = {0: 0.0, uniform - 1: 0.0, end: np.inf, end + 1: np.inf, 10**6: np.inf}
    for j in range(k):
      expected[uniform + j * n] = levels[j]           # first step of level j
      expected[uniform + (j + 1) * n - 1] = levels[j]  # last step of level j
    steps = sorted(expected)
    want = np.array([expected[s] for s in steps], np.float32)
    for s, w in zip(steps, want):
      value = sched(s)
      self.assertEqual(value.dtype, jnp.float32)
      self.assertEqual(float(value), float(w), msg=f"step {s}")
    np.testing.assert_array_equal(_on_traced_steps(sched, steps), want)

  def test_every_step_against_reference(self):
    uniform, n, k = 3, 2, 5
    sched = schedules.beta_schedule(beta_1=0.5, beta_K=4.0, K=k, steps_per_level=n,
                                    uniform_steps=uniform)
    levels = schedules.beta_levels(beta_1=0.5, beta_K=4.0, K=k).astype(np.float32)
    ref = [0.0] * uniform + [lv for lv in levels for _ in range(n)] + [np.inf] * 4
    np.testing.assert_array_equal(_on_traced_steps(sched, np.arange(len(ref))),
                                  np.array(ref, np.float32))

  def test_no_uniform_stage_and_defaults(self):
    sched = schedules.beta_schedule(steps_per_level=10, uniform_steps=0)
    np.testing.assert_allclose(float(sched(0)), 0.1, rtol=1e-6)
    self.assertEqual(sched.data_start, 200)  # paper default K = 20
    self.assertTrue(np.isinf(sched(200)))
    np.testing.assert_allclose(float(sched(199)), 10.0 / 100.0**(1 / 20), rtol=1e-6)

  @parameterized.named_parameters(
      ("zero_steps_per_level", dict(steps_per_level=0, uniform_steps=5),
       r"steps_per_level must be an integer >= 1"),
      ("negative_uniform", dict(steps_per_level=3, uniform_steps=-1),
       r"uniform_steps must be an integer >= 0"),
      ("bad_levels", dict(beta_1=5.0, beta_K=1.0, steps_per_level=3, uniform_steps=1),
       r"beta_1 \(5.0\) must not exceed beta_K \(1.0\)"),
  )
  def test_validation(self, kwargs, message):
    with self.assertRaisesRegex(ValueError, message):
      schedules.beta_schedule(**kwargs)


class GammaDecayTest(absltest.TestCase):

  def test_values_and_clamp(self):
    sched = schedules.gamma_decay(gamma_0=2.0, total_steps=1000, decay=0.01)
    steps = [0, 250, 500, 1000, 1001, 5000]
    want = [2.0, 2.0 * 0.01**0.25, 2.0 * 0.1, 2.0 * 0.01, 0.02, 0.02]
    np.testing.assert_allclose([float(sched(s)) for s in steps], want, rtol=1e-5)
    np.testing.assert_allclose(_on_traced_steps(sched, steps), want, rtol=1e-5)

  def test_continuous_not_staircase(self):
    sched = schedules.gamma_decay(gamma_0=1.0, total_steps=100)
    values = _on_traced_steps(sched, np.arange(101))
    self.assertTrue(np.all(np.diff(values) < 0))
    np.testing.assert_allclose(values[1:] / values[:-1], 0.01**(1 / 100), rtol=1e-5)

  def test_validation(self):
    with self.assertRaisesRegex(ValueError, r"decay must be a number in \(0, 1\]; got 1.5"):
      schedules.gamma_decay(gamma_0=1.0, total_steps=10, decay=1.5)
    with self.assertRaisesRegex(ValueError, r"total_steps must be an integer >= 1; got 0"):
      schedules.gamma_decay(gamma_0=1.0, total_steps=0)
    with self.assertRaisesRegex(ValueError, r"gamma_0 must be >= 0; got -1.0"):
      schedules.gamma_decay(gamma_0=-1.0, total_steps=10)


class AnnealTest(parameterized.TestCase):

  def test_linear(self):
    sched = schedules.linear_anneal(init_value=1.0, end_value=0.2, transition_steps=8,
                                    begin_step=4)
    steps = [0, 4, 6, 8, 12, 100]
    want = [1.0, 1.0, 0.8, 0.6, 0.2, 0.2]
    np.testing.assert_allclose([float(sched(s)) for s in steps], want, rtol=1e-6)
    np.testing.assert_allclose(_on_traced_steps(sched, steps), want, rtol=1e-6)

  @parameterized.named_parameters(
      ("linear", schedules.linear_anneal, 2.0, 0.0),
      ("cosine", schedules.cosine_anneal, 2.0, 0.0),
      ("exponential", schedules.exponential_anneal, 2.0, 0.3),
  )
  def test_end_value_exact_under_jit(self, factory, init_value, end_value):
    # Compiled count / T may become count * (1/T); the end must still be exact
    # (a sigma annealed to 0 must not come out as -3e-8).
    sched = factory(init_value=init_value, end_value=end_value, transition_steps=10,
                    begin_step=3)
    np.testing.assert_array_equal(_on_traced_steps(sched, [13, 14, 500]),
                                  np.float32(end_value))
    np.testing.assert_allclose(_on_traced_steps(sched, [0, 3]), init_value, rtol=1e-6)

  def test_exponential_geometric_interpolation(self):
    sched = schedules.exponential_anneal(init_value=1.0, end_value=1e-4, transition_steps=20,
                                         begin_step=10)
    steps = [0, 10, 15, 20, 30, 31, 1000]
    want = [1.0, 1.0, 1e-1, 1e-2, 1e-4, 1e-4, 1e-4]
    np.testing.assert_allclose(_on_traced_steps(sched, steps), want, rtol=1e-5)

  def test_exponential_decay_rate_mode(self):
    sched = schedules.exponential_anneal(init_value=3.0, end_value=0.0, transition_steps=10,
                                         decay_rate=0.5)
    steps = [0, 5, 10, 20, 200]
    want = [3.0, 3.0 * 0.5**0.5, 1.5, 0.75, 3.0 * 0.5**20]
    np.testing.assert_allclose(_on_traced_steps(sched, steps), want, rtol=1e-5)
    floored = schedules.exponential_anneal(init_value=3.0, end_value=1.0, transition_steps=10,
                                           decay_rate=0.5)
    np.testing.assert_allclose(_on_traced_steps(floored, [10, 20, 100]), [1.5, 1.0, 1.0],
                               rtol=1e-6)

  def test_cosine(self):
    sched = schedules.cosine_anneal(init_value=2.0, end_value=0.5, transition_steps=12,
                                    begin_step=3)
    steps = [0, 3, 6, 9, 15, 16, 99]
    want = [2.0, 2.0, 0.5 + 1.5 * (1 + math.cos(math.pi / 4)) / 2, 1.25, 0.5, 0.5, 0.5]
    np.testing.assert_allclose([float(sched(s)) for s in steps], want, rtol=1e-6)
    np.testing.assert_allclose(_on_traced_steps(sched, steps), want, rtol=1e-6)

  def test_cosine_from_zero_upwards(self):
    # optax's cosine_decay_schedule alone cannot start at 0; the wrapper can.
    sched = schedules.cosine_anneal(init_value=0.0, end_value=1.0, transition_steps=4)
    np.testing.assert_allclose(_on_traced_steps(sched, [0, 2, 4, 8]), [0.0, 0.5, 1.0, 1.0],
                               atol=1e-7)

  def test_constant(self):
    sched = schedules.constant(0.3)
    np.testing.assert_allclose(_on_traced_steps(sched, [0, 7, 10**6]), 0.3, rtol=1e-7)

  @parameterized.named_parameters(
      ("exp_end_zero", schedules.exponential_anneal,
       dict(init_value=1.0, transition_steps=10),
       r"needs init_value > 0 and end_value > 0; got init_value=1.0, end_value=0.0\. "
       r"Pass decay_rate"),
      ("exp_bad_rate", schedules.exponential_anneal,
       dict(init_value=1.0, transition_steps=10, decay_rate=0.0),
       r"decay_rate must be a finite number > 0 or None; got 0.0"),
      ("linear_zero_steps", schedules.linear_anneal,
       dict(init_value=1.0, transition_steps=0), r"transition_steps must be an integer >= 1"),
      ("cosine_negative_begin", schedules.cosine_anneal,
       dict(init_value=1.0, transition_steps=5, begin_step=-2),
       r"begin_step must be an integer >= 0; got -2"),
      ("linear_nan", schedules.linear_anneal,
       dict(init_value=float("nan"), transition_steps=5), r"init_value must be a finite number"),
  )
  def test_validation(self, factory, kwargs, message):
    with self.assertRaisesRegex(ValueError, message):
      factory(**kwargs)


class PolynomialDecayTest(parameterized.TestCase):
  """SGLD's step size a (b + t)^-gamma (Welling & Teh), picked from a config."""

  def test_closed_form(self):
    steps = np.arange(0, 10_000, 37)
    default = schedules.polynomial_decay(a=0.3, b=2.0)
    np.testing.assert_allclose(_on_traced_steps(default, steps),
                               0.3 * (2.0 + steps) ** -0.55, rtol=1e-6)
    harmonic = schedules.polynomial_decay(a=1.0, b=1.0, gamma=1.0)
    np.testing.assert_allclose(_on_traced_steps(harmonic, steps), 1.0 / (1.0 + steps),
                               rtol=1e-6)
    np.testing.assert_allclose(_on_traced_steps(
        schedules.polynomial_decay(a=0.5, b=3.0, gamma=0.0), steps), 0.5)

  def test_config_mapping_builds_it(self):
    config = ml_collections.ConfigDict({"name": "polynomial", "a": 1e-2, "b": 10.0,
                                        "gamma": 0.6})
    steps = np.arange(50)
    np.testing.assert_allclose(_on_traced_steps(schedules.get_schedule(config), steps),
                               1e-2 * (10.0 + steps) ** -0.6, rtol=1e-6)

  def test_sgld_learning_rate_from_a_config(self):
    # The form a config's optim.discriminator takes; at temperature 0 SGLD's
    # update is -eps_t g, so the steps it took are read off the updates.
    from gan_jax import optim  # pylint: disable=g-import-not-at-top
    opt = optim.make_optimizer({"name": "sgld", "temperature": 0.0,
                                "learning_rate": {"name": "polynomial", "a": 0.3, "b": 2.0}})
    params = jnp.zeros(2)
    state = opt.init(params)
    for t in range(3):
      updates, state = opt.update(jnp.ones(2), state, params)
      np.testing.assert_allclose(updates, -0.3 * (2.0 + t) ** -0.55, rtol=1e-6)

  @parameterized.named_parameters(
      ("a_zero", dict(a=0.0, b=1.0), r"a must be > 0; got 0.0"),
      ("b_negative", dict(a=1.0, b=-1.0), r"b must be > 0; got -1.0"),
      ("gamma_negative", dict(a=1.0, b=1.0, gamma=-0.5), r"gamma must be >= 0"),
      ("a_inf", dict(a=math.inf, b=1.0), r"a must be a finite number"),
  )
  def test_validation(self, kwargs, message):
    with self.assertRaisesRegex(ValueError, message):
      schedules.polynomial_decay(**kwargs)
    with self.assertRaisesRegex(ValueError, message):
      schedules.get_schedule(dict(name="polynomial", **kwargs))

  def test_missing_argument_lists_parameters(self):
    with self.assertRaisesRegex(ValueError, r"schedule 'polynomial'.*a, b, gamma"):
      schedules.make_schedule("polynomial", a=1.0)


class CompositionTest(absltest.TestCase):

  def test_join_warmup_then_cosine(self):
    sched = optax.join_schedules(
        [schedules.linear_anneal(init_value=0.0, end_value=1.0, transition_steps=10),
         schedules.cosine_anneal(init_value=1.0, end_value=0.0, transition_steps=20)],
        boundaries=[10])
    steps = [0, 5, 9, 10, 20, 30, 40]
    want = [0.0, 0.5, 0.9, 1.0, 0.5, 0.0, 0.0]
    np.testing.assert_allclose(_on_traced_steps(sched, steps), want, atol=1e-6)

  def test_join_decay_then_exact_zero(self):
    # The recipe of exponential_anneal's docstring: decay, then switch to exactly 0.
    sched = optax.join_schedules(
        [schedules.exponential_anneal(init_value=1.0, transition_steps=10, decay_rate=0.1),
         schedules.constant(0.0)],
        boundaries=[30])
    np.testing.assert_allclose(_on_traced_steps(sched, [0, 10, 29]), [1.0, 0.1, 10**-2.9],
                               rtol=1e-5)
    np.testing.assert_array_equal(_on_traced_steps(sched, [30, 31, 500]), 0.0)

  def test_join_beta_schedule_after_pretraining(self):
    beta = schedules.beta_schedule(beta_1=1.0, beta_K=4.0, K=2, steps_per_level=3,
                                   uniform_steps=2)
    sched = optax.join_schedules([schedules.constant(np.float32(np.inf)), beta],
                                 boundaries=[5])
    want = [np.inf] * 5 + [0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, np.inf]
    np.testing.assert_allclose(_on_traced_steps(sched, np.arange(len(want))), want, rtol=1e-6)


# A spec of each schedule with sweepable numbers, and a second value of each.
_SWEEP_SPECS = {
    "constant": {"value": 0.3},
    "linear": {"init_value": 1.0, "end_value": 0.2, "transition_steps": 8},
    "cosine": {"init_value": 1.0, "end_value": 0.2, "transition_steps": 8},
    "gamma_decay": {"gamma_0": 0.1, "total_steps": 8, "decay": 0.01},
    "polynomial": {"a": 0.5, "b": 2.0, "gamma": 0.55},
}


class ReplicaScheduleTest(parameterized.TestCase):

  def test_every_schedule_with_sweepable_numbers_has_a_case(self):
    self.assertEqual(set(_SWEEP_SPECS), set(schedules.SWEEPABLE_PARAMETERS))

  @parameterized.parameters(*[(name, p) for name, params in
                              schedules.SWEEPABLE_PARAMETERS.items() for p in params])
  def test_a_traced_number_gives_each_replica_its_own_schedule(self, name, parameter):
    # Mapped over replicas (the number a tracer) and compiled, each replica's
    # values equal the schedule built with its number as a Python float.
    spec = {"name": name, **_SWEEP_SPECS[name]}
    numbers_ = jnp.asarray([spec[parameter], 1.7 * spec[parameter] + 0.05], jnp.float32)
    swept = schedules.replica_schedule(spec, parameter, "x")

    def values(number):
      with schedules.replica_values({"x": number}):
        return jnp.stack([swept(t) for t in (0, 3, 8, 20)])

    got = jax.jit(jax.vmap(values))(numbers_)
    for row, number in zip(np.asarray(got), np.asarray(numbers_)):
      one = schedules.get_schedule({**spec, parameter: float(number)})
      np.testing.assert_allclose(row, [float(one(t)) for t in (0, 3, 8, 20)], rtol=1e-5)
    self.assertFalse(np.allclose(got[0], got[1]))  # the number matters
    fixed = schedules.replica_schedule(spec, parameter, "x", value=float(numbers_[1]))
    np.testing.assert_allclose(float(fixed(3)), got[1][1], rtol=1e-5)

  def test_a_step_count_is_refused_by_name(self):
    with self.assertRaisesRegex(ValueError, r"'total_steps' cannot take a value per replica; "
                                r"valid: gamma_0"):
      schedules.replica_schedule({"name": "gamma_decay", **_SWEEP_SPECS["gamma_decay"]},
                                 "total_steps", "x")


class RegistryTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ("constant", "constant", dict(value=0.7)),
      ("linear", "linear", dict(init_value=1.0, transition_steps=10)),
      ("exponential", "exponential",
       dict(init_value=1.0, end_value=0.1, transition_steps=10)),
      ("cosine", "cosine", dict(init_value=1.0, transition_steps=10, begin_step=2)),
      ("beta", "beta", dict(K=3, steps_per_level=2, uniform_steps=2)),
      ("gamma_decay", "gamma_decay", dict(gamma_0=2.0, total_steps=10)),
      ("polynomial", "polynomial", dict(a=0.3, b=2.0)),
  )
  def test_names_build_the_factories(self, name, kwargs):
    steps = np.arange(16)
    want = _on_traced_steps(schedules.SCHEDULES[name](**kwargs), steps)
    np.testing.assert_array_equal(_on_traced_steps(schedules.make_schedule(name, **kwargs),
                                                   steps), want)
    from_config = schedules.get_schedule(ml_collections.ConfigDict(dict(name=name, **kwargs)))
    np.testing.assert_array_equal(_on_traced_steps(from_config, steps), want)
    np.testing.assert_array_equal(
        _on_traced_steps(schedules.get_schedule(dict(name=name, **kwargs)), steps), want)

  def test_get_schedule_forms(self):
    np.testing.assert_allclose(float(schedules.get_schedule(0.25)(99)), 0.25)
    fn = schedules.linear_anneal(init_value=1.0, transition_steps=4)
    self.assertIs(schedules.get_schedule(fn), fn)
    sched = schedules.get_schedule({"name": "linear", "init_value": 1.0},
                                   transition_steps=4)
    np.testing.assert_allclose(float(sched(2)), 0.5)
    sched = schedules.get_schedule(name="constant", value=3.0)
    np.testing.assert_allclose(float(sched(2)), 3.0)

  def test_unknown_name_lists_valid(self):
    with self.assertRaisesRegex(
        ValueError,
        r"unknown schedule 'step'; valid: beta, constant, cosine, exponential, "
        r"gamma_decay, linear, polynomial"):
      schedules.make_schedule("step", value=1.0)

  def test_bad_arguments_list_parameters(self):
    with self.assertRaisesRegex(ValueError,
                                r"schedule 'linear'.*init_value, end_value, "
                                r"transition_steps, begin_step"):
      schedules.make_schedule("linear", init_value=1.0, transition_steps=3, end=0.0)
    with self.assertRaisesRegex(ValueError, r"schedule 'gamma_decay'.*gamma_0"):
      schedules.make_schedule("gamma_decay", total_steps=3)

  def test_missing_name(self):
    with self.assertRaisesRegex(ValueError, r"needs a 'name'; valid: beta, constant"):
      schedules.get_schedule({"value": 1.0})


if __name__ == "__main__":
  absltest.main()
