"""What one iteration of each game computes, against formulas written here.

Every game is built from a config (``configs.common.toy_config``) and stepped
as training steps it; the reference beside it recomputes the same iteration
from METHODS.md with nothing of the game's: the players are written out by
hand (the generator and encoder are linear maps, ``mlp`` with ``widths=()``;
the discriminator one tanh hidden layer), the objectives, penalties and
perturbations are the sheet's formulas, gradients are ``jax.grad`` of those
losses, and every optimizer is plain SGD (``params - lr * grad``; SGLD where
the ensemble needs samples). Parameters, the generator EMA, the ensemble's
discriminator history and the reported losses must agree to float32
round-off, so changing any sign, factor or input of a game fails a test.

Randomness is lined up by drawing what the game draws with the same public
functions (``DataSource.draw``, ``sample_latent``, ``jax.random``) and the same
keys. The key derivation the references reproduce (``TrainState.step_key``:
``fold_in(state.rng, state.step)``, then tags):

* adversarial: ``split(step_key, (n_critic + n_gen, 5))``; discriminator
  update ``i`` takes row ``i`` as (data, latent, perturbation, penalty,
  dropout) keys, penalty ``j`` of the loss ``fold_in(penalty key, j)``;
  generator update ``j`` takes row ``n_critic + j`` as (latent, perturbation,
  dropout, labels, joint-batch perturbation). Instance noise splits the
  perturbation key into (real, fake) halves and the generator update uses the
  fake half; heat splits it into (normal, uniform). Dropout: the loss passes
  on real and fake use ``fold_in(dropout key, 0 / 1)``, the penalties' critic
  ``fold_in(dropout key, 2)``, CT's two passes ``split(penalty key)``.
* reg_gan: discriminator update ``i`` ``split(fold_in(step_key, 1, i), 3)`` =
  (data, latent, d) with ``split(d)`` = (perturbation, dropout); the G/E
  update ``split(fold_in(step_key, 2), 4)`` = (data, latent, perturbation,
  dropout), ``G(z)`` perturbed with ``fold_in(perturbation, 0)``, ``G(E(x))``
  with ``fold_in(perturbation, 1)``.
* mdgan: manifold step ``split(fold_in(step_key, 1), 4)`` = (data, d,
  perturbation, dropout); diffusion step ``split(fold_in(step_key, 2), 5)`` =
  (data, latent, d, perturbation, dropout); ``d`` as in reg_gan.
* SGLD discriminators are seeded by the game builder with
  ``key_data(fold_in(PRNGKey(config.seed), 102))`` (102 the discriminator's
  player tag), which the reference passes to its own ``transforms.sgld``.
"""

import functools
import math

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from configs import common
from gan_jax import games
from gan_jax import transforms
from gan_jax.data.source import from_arrays
from gan_jax.models.latent import sample_latent


BATCH = 4
LATENT = (2,)
LR = {"generator": 0.3, "discriminator": 0.4, "encoder": 0.2}
SEED = 0
D_PLAYER_TAG = 102  # gan_jax.games: the discriminator's sampler seed tag
# Six fixed 2-D points inside the heat box [-1, 1]^2, and five 6x6 images.
POINTS = np.array([[0.5, -0.2], [-0.6, 0.3], [0.1, 0.7], [-0.3, -0.7], [0.8, 0.05],
                   [-0.1, 0.2]], np.float32)
IMAGES = np.random.default_rng(0).uniform(-1, 1, (5, 6, 6, 1)).astype(np.float32)


# ----------------------------------------------------------- the players
def dense(p, h):
  return h @ p["kernel"] + p["bias"]


def linear_map(p, x, out_shape):
  """A linear generator or encoder (``mlp`` with no hidden layer)."""
  n = x.shape[0]
  return dense(p["out"], x.reshape(n, -1)).reshape((n, *out_shape))


def tanh_critic(p, x):
  """The discriminator logit: one tanh hidden layer."""
  h = jnp.tanh(dense(p["trunk"]["dense_0"], x.reshape(x.shape[0], -1)))
  return dense(p["out"], h)[:, 0]


def sub(p, q, lr):
  return jax.tree.map(lambda a, b: a - lr * b, p, q)


def mean(x):
  return jnp.mean(x)


# --------------------------------------------------- METHODS §1 objectives
softplus, sigmoid = jax.nn.softplus, jax.nn.sigmoid
OBJECTIVES = {  # name: (discriminator loss of (real, fake) logits, generator loss)
    "non_saturating": (lambda r, f: mean(softplus(-r)) + mean(softplus(f)),
                       lambda f: mean(softplus(-f))),
    "minimax": (lambda r, f: mean(softplus(-r)) + mean(softplus(f)),
                lambda f: -mean(softplus(f))),
    "wasserstein": (lambda r, f: mean(f) - mean(r), lambda f: -mean(f)),
    # KL f-GAN: T = v, f*(t) = exp(t - 1); non-saturating generator -E_Q[T].
    "fgan_kl": (lambda r, f: -(mean(r) - mean(jnp.exp(f - 1.0))), lambda f: -mean(f)),
}


# ----------------------------------------------------- METHODS §2 penalties
def input_grad(critic, x):
  return jax.grad(lambda x: jnp.sum(critic(x)))(x)


def sq_norms(g):
  return jnp.sum(jnp.square(g.reshape(g.shape[0], -1)), axis=1)


def roth_js(critic, critic_features, real, fake, key, **kw):
  return (mean(jnp.square(1.0 - sigmoid(critic(real))) * sq_norms(input_grad(critic, real)))
          + mean(jnp.square(sigmoid(critic(fake))) * sq_norms(input_grad(critic, fake))))


def roth_fgan_kl(critic, critic_features, real, fake, key, **kw):
  # f*''(T) = exp(T - 1) for KL, T = v.
  return mean(jnp.exp(critic(fake) - 1.0) * sq_norms(input_grad(critic, fake)))


def gradient_norm_gap(critic, x):
  return mean(jnp.square(jnp.sqrt(sq_norms(input_grad(critic, x))) - 1.0))


def wgan_gp(critic, critic_features, real, fake, key, **kw):
  e = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1))
  return gradient_norm_gap(critic, e * real + (1.0 - e) * fake)


def dragan(critic, critic_features, real, fake, key, c=0.5, **kw):
  u = jax.random.uniform(key, real.shape)
  return gradient_norm_gap(critic, real + c * jnp.std(real) * u)


def ct(critic, critic_features, real, fake, key, **kw):
  k1, k2 = jax.random.split(key)
  (l1, h1), (l2, h2) = critic_features(real, k1), critic_features(real, k2)
  return mean(jax.nn.relu(jnp.abs(l1 - l2) + 0.1 * jnp.sqrt(sq_norms(h1 - h2))))


def r1(critic, critic_features, real, fake, key, **kw):
  return mean(sq_norms(input_grad(critic, real)))


def r2(critic, critic_features, real, fake, key, **kw):
  return mean(sq_norms(input_grad(critic, fake)))


# name: (Omega, the factor of the configured weight: gamma / 2 or lambda).
PENALTIES = {"roth_js": (roth_js, 0.5), "roth_fgan": (roth_fgan_kl, 0.5), "r1": (r1, 0.5),
             "r2": (r2, 0.5), "wgan_gp": (wgan_gp, 1.0), "dragan": (dragan, 1.0),
             "ct": (ct, 1.0)}


# ------------------------------------------------- METHODS §3 perturbations
def reflect(y, low=-1.0, high=1.0):
  w = high - low
  u = jnp.mod(y - low, 2 * w)
  return low + jnp.where(u > w, 2 * w - u, u)


@functools.partial(jax.jit, static_argnums=(2,))  # eager, its many slices cost seconds
def blur(x, sigma, radius):
  t = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
  w = jnp.exp(-0.5 * jnp.square(t / sigma))
  w = w / jnp.sum(w)
  h, wd = x.shape[1:3]
  p = jnp.pad(x, ((0, 0), (radius, radius), (radius, radius), (0, 0)), mode="symmetric")
  p = sum(w[i] * p[:, i:i + h] for i in range(2 * radius + 1))
  return sum(w[j] * p[:, :, j:j + wd] for j in range(2 * radius + 1))


def perturb_pair(name, key, real, fake, level, kwargs):
  """What the discriminator update sees: heat on data only, noise and blur on both."""
  if name == "instance_noise":
    kr, kf = jax.random.split(key)
    return (real + level * jax.random.normal(kr, real.shape),
            fake + level * jax.random.normal(kf, fake.shape))
  if name == "heat":
    kn = jax.random.split(key)[0]
    return reflect(real + jax.random.normal(kn, real.shape) / math.sqrt(level)), fake
  if name == "blur":
    return blur(real, level, kwargs["radius"]), blur(fake, level, kwargs["radius"])
  return real, fake


def perturb_fake(name, key, fake, level, kwargs):
  """What generated samples see in a generator update (heat: nothing)."""
  if name == "instance_noise":
    return fake + level * jax.random.normal(jax.random.split(key)[1], fake.shape)
  if name == "blur":
    return blur(fake, level, kwargs["radius"])
  return fake


# ------------------------------------------------------------- the configs
def base_config(data):
  c = common.toy_config()
  c.seed = SEED
  c.model.generator = ml_collections.ConfigDict({"name": "mlp", "widths": ()})
  c.model.discriminator = ml_collections.ConfigDict(
      {"name": "mlp", "widths": (5,), "activation": "tanh"})
  c.model.latent_shape = LATENT
  c.model.latent_prior = "normal"
  for player in ("generator", "discriminator"):
    c.optim[player] = ml_collections.ConfigDict(
        {"name": "sgd", "learning_rate": LR[player]})
  c.train.batch_size = BATCH
  c.train.num_steps = 10
  source = from_arrays("images" if data == "images" else "points",
                       jnp.asarray(IMAGES if data == "images" else POINTS))
  return c, source


def run_game(c, source, iters):
  game = games.make_game(c, source)
  state0 = game.init(jax.random.PRNGKey(SEED))
  # Stepped eagerly: the wiring is the same as compiled, and the op-by-op
  # programs are cached across the cases, where each compiled step would cost seconds.
  state, history = state0, []
  for _ in range(iters):
    state, metrics = game.step(state, source.arrays)
    history.append(jax.device_get(metrics))
  return game, state0, state, history


def assert_trees_close(test, actual, expected, reference, what):
  """Updates (actual - reference vs expected - reference) agree leaf by leaf."""
  flat_a = jax.tree_util.tree_leaves_with_path(actual)
  flat_e = jax.tree.leaves(expected)
  flat_r = jax.tree.leaves(reference)
  test.assertLen(flat_e, len(flat_a), what)
  for (path, a), e, r in zip(flat_a, flat_e, flat_r):
    np.testing.assert_allclose(
        np.asarray(a) - np.asarray(r), np.asarray(e) - np.asarray(r), rtol=2e-4, atol=2e-6,
        err_msg=f"{what} {jax.tree_util.keystr(path)}")


def assert_metrics_close(test, metrics, expected):
  for name, value in expected.items():
    np.testing.assert_allclose(metrics[name], value, rtol=2e-5, atol=1e-6, err_msg=name)


# ------------------------------------------------------------ adversarial
# Each case: game fields of the config, and how many iterations to compare.
# Penalties: (name, weight, every, kwargs, weight at iteration t for the
# reference); perturbation: (name, level, kwargs, level at iteration t).
ADVERSARIAL_CASES = {
    "plain": {},
    "minimax": {"loss": "minimax"},
    "roth_js": {"penalties": [("roth_js", 1.5, 1, {}, lambda t: 1.5)]},
    "roth_fgan_kl": {"loss": "fgan_kl",
                     "penalties": [("roth_fgan", 1.5, 1, {"divergence": "kl"},
                                    lambda t: 1.5)]},
    "r1": {"penalties": [("r1", 1.5, 1, {}, lambda t: 1.5)]},
    "r2": {"penalties": [("r2", 1.5, 1, {}, lambda t: 1.5)]},
    "wgan_gp": {"loss": "wasserstein",
                "penalties": [("wgan_gp", 3.0, 1, {}, lambda t: 3.0)]},
    "dragan": {"penalties": [("dragan", 3.0, 1, {"c": 0.7}, lambda t: 3.0)]},
    # CT-GAN: WGAN-GP plus the consistency term (second penalty: its own key),
    # a critic with dropout (flax's masks, so this reference applies the module).
    "wgan_gp_ct": {"loss": "wasserstein", "dropout": 0.3,
                   "penalties": [("wgan_gp", 3.0, 1, {}, lambda t: 3.0),
                                 ("ct", 2.0, 1, {}, lambda t: 2.0)]},
    # Lazy: applied on discriminator steps 0, 2 with weight * 2, off on 1, 3.
    "lazy_r1": {"n_critic": 2, "iters": 2,
                "penalties": [("r1", 1.5, 2, {}, lambda t: 1.5)]},
    # Roth's annealed gamma, evaluated at the iteration (not the D step).
    "gamma_decay": {"n_critic": 2, "iters": 2, "penalties": [
        ("roth_js", {"name": "gamma_decay", "gamma_0": 2.0, "total_steps": 4, "decay": 0.1},
         1, {}, lambda t: 2.0 * 0.1 ** (t / 4))]},
    "instance_noise": {"perturbation": ("instance_noise", 0.3, {}, lambda t: 0.3)},
    "instance_noise_annealed": {"iters": 2, "perturbation": (
        "instance_noise",
        {"name": "linear", "init_value": 0.5, "end_value": 0.1, "transition_steps": 2}, {},
        lambda t: 0.5 - 0.2 * t)},
    # Penalties see the perturbed inputs.
    "instance_noise_r1": {"perturbation": ("instance_noise", 0.3, {}, lambda t: 0.3),
                          "penalties": [("r1", 1.5, 1, {}, lambda t: 1.5)]},
    "heat": {"perturbation": ("heat", 4.0, {}, lambda t: 4.0)},
    "blur": {"data": "images", "perturbation": ("blur", 0.8, {"radius": 2}, lambda t: 0.8)},
    "n_critic_3_n_gen_2": {"n_critic": 3, "n_gen": 2},
    "ema": {"n_gen": 2, "iters": 2, "ema_decay": 0.7},
    # Generator against the last 3 samples of an SGLD discriminator.
    "sgld_ensemble": {"n_critic": 2, "iters": 2, "ensemble": 3,
                      "sgld": {"learning_rate": 0.05, "temperature": 0.02}},
}


def adversarial_config(case):
  c, source = base_config(case.get("data", "points"))
  g = c.game
  g.loss = case.get("loss", "non_saturating")
  g.n_critic, g.n_gen = case.get("n_critic", 1), case.get("n_gen", 1)
  g.ema_decay = case.get("ema_decay", 0.0)
  g.ensemble = case.get("ensemble", 0)
  for field, spec in zip(("penalty", "penalty_2"), case.get("penalties", [])):
    name, weight, every, kwargs, _ = spec
    g[field] = common.penalty(name, weight, every, **kwargs)
  if "perturbation" in case:
    name, level, kwargs, _ = case["perturbation"]
    g.perturbation = common.perturbation(name, level, **kwargs)
  if case.get("dropout"):
    c.model.discriminator.dropout_rate = case["dropout"]
  if "sgld" in case:
    c.optim.discriminator = ml_collections.ConfigDict({"name": "sgld", **case["sgld"]})
  return c, source


def adversarial_reference(case, game, state, source, iters):
  """The adversarial game's iterations from METHODS, on the same draws."""
  n_critic, n_gen = case.get("n_critic", 1), case.get("n_gen", 1)
  d_objective, g_objective = OBJECTIVES[case.get("loss", "non_saturating")]
  p_name, _, p_kwargs, level_at = case.get("perturbation", ("none", 0.0, {}, lambda t: 0.0))
  out_shape = tuple(source.shape)
  decay, k = case.get("ema_decay", 0.0), case.get("ensemble", 0)
  if case.get("dropout"):
    module = game.discriminator  # flax's dropout masks: apply the module itself

    def critic(p, x, key, features=False):
      return module.apply({"params": p}, x, train=True, rngs={"dropout": key},
                          return_features=features)
  else:
    def critic(p, x, key, features=False):
      assert not features
      return tanh_critic(p, x)

  g, d = state.params["generator"], state.params["discriminator"]
  ema, history = g, [d] * k
  if "sgld" in case:
    seed = jax.random.key_data(jax.random.fold_in(jax.random.PRNGKey(SEED), D_PLAYER_TAG))
    d_tx = transforms.sgld(case["sgld"]["learning_rate"],
                           temperature=case["sgld"]["temperature"], key=seed)
    d_opt = d_tx.init(d)
  metrics = []
  for t in range(iters):
    level = level_at(t)
    keys = jax.random.split(jax.random.fold_in(state.rng, t), (n_critic + n_gen, 5))
    d_losses, g_losses = [], []
    for i in range(n_critic):
      real_key, z_key, p_key, pen_key, drop_key = keys[i]
      real = source.draw(real_key, source.arrays, BATCH)
      fake = linear_map(g, sample_latent(z_key, BATCH, LATENT, prior="normal"), out_shape)
      real_in, fake_in = perturb_pair(p_name, p_key, real, fake, level, p_kwargs)
      d_step = t * n_critic + i

      def d_loss(p):
        loss = d_objective(critic(p, real_in, jax.random.fold_in(drop_key, 0)),
                           critic(p, fake_in, jax.random.fold_in(drop_key, 1)))
        total, raw = loss, 0.0
        for j, (name, _, every, kwargs, weight_at) in enumerate(case.get("penalties", [])):
          if d_step % every:
            continue
          omega, factor = PENALTIES[name]
          value = omega(lambda x: critic(p, x, jax.random.fold_in(drop_key, 2)),
                        lambda x, key: critic(p, x, key, features=True),
                        real_in, fake_in, jax.random.fold_in(pen_key, j), **kwargs)
          total, raw = total + factor * weight_at(t) * every * value, raw + value
        return total, (loss, total - loss, raw)

      grads, (loss, weighted, raw) = jax.grad(d_loss, has_aux=True)(d)
      if "sgld" in case:
        updates, d_opt = d_tx.update(grads, d_opt, d)
        d = jax.tree.map(jnp.add, d, updates)
      else:
        d = sub(d, grads, LR["discriminator"])
      history = [d] + history[:-1]
      d_losses.append(loss)
    for j in range(n_gen):
      z_key, p_key, drop_key = keys[n_critic + j][:3]
      z = sample_latent(z_key, BATCH, LATENT, prior="normal")
      members = history if k > 1 else [d]

      def g_loss(p):
        fake = perturb_fake(p_name, p_key, linear_map(p, z, out_shape), level, p_kwargs)
        return mean(jnp.stack([g_objective(critic(m, fake, drop_key)) for m in members]))

      loss, grads = jax.value_and_grad(g_loss)(g)
      g = sub(g, grads, LR["generator"])
      ema = jax.tree.map(lambda e, n: decay * e + (1.0 - decay) * n, ema, g)
      g_losses.append(loss)
    m = {"d_loss": mean(jnp.stack(d_losses)), "g_loss": mean(jnp.stack(g_losses))}
    if case.get("penalties"):
      # Of the last discriminator update; the reported weight is the configured
      # gamma / lambda itself (the 1/2 of Roth, R1, R2 is inside the loss).
      m.update(penalty=raw, penalty_weighted=weighted,
               penalty_weight=case["penalties"][0][4](t))
    metrics.append(m)
  return {"generator": g, "discriminator": d, "ema": ema, "history": history,
          "metrics": metrics}


class AdversarialWiringTest(parameterized.TestCase):

  @parameterized.named_parameters(*ADVERSARIAL_CASES.items())
  def test_iteration_matches_reference(self, case):
    c, source = adversarial_config(case)
    iters = case.get("iters", 1)
    game, state0, state, history = run_game(c, source, iters)
    ref = adversarial_reference(case, game, state0, source, iters)
    for player in ("generator", "discriminator"):
      assert_trees_close(self, state.params[player], ref[player], state0.params[player],
                         player)
    if case.get("ema_decay"):
      assert_trees_close(self, state.extra["ema_generator"], ref["ema"],
                         state0.params["generator"], "ema")
    if case.get("ensemble", 0) > 1:
      expected = jax.tree.map(lambda *m: jnp.stack(m), *ref["history"])
      init = jax.tree.map(lambda p: jnp.broadcast_to(p, (case["ensemble"], *p.shape)),
                          state0.params["discriminator"])
      assert_trees_close(self, state.extra["d_history"], expected, init, "d_history")
    for metrics, expected in zip(history, ref["metrics"]):
      assert_metrics_close(self, metrics, expected)


# ------------------------------------------------------- encoder games
def encoder_config(name, case):
  c, source = base_config("points")
  c.game.name = name
  c.model.latent_prior = "uniform"
  c.model.latent_kwargs = ml_collections.ConfigDict({"low": 0.0})
  c.model.encoder = ml_collections.ConfigDict({"name": "mlp", "widths": ()})
  c.optim.encoder = ml_collections.ConfigDict({"name": "sgd", "learning_rate": LR["encoder"]})
  for field, value in case.items():
    if field == "perturbation":
      c.game.perturbation = common.perturbation(value[0], value[1])
    elif field != "iters":
      c.game[field] = value
  return c, source


def recon_error(x, rec):
  """``||x - G(E(x))||^2``: summed over the dimensions, averaged over the batch."""
  return mean(jnp.sum(jnp.square(x - rec).reshape(x.shape[0], -1), axis=1))


def latent01(key):
  return sample_latent(key, BATCH, LATENT, prior="uniform", low=0.0)


def d_step(d, objective, key, real, fake, p_name, level):
  """One SGD discriminator update on (real, fake); keys as the encoder games split them."""
  p_key = jax.random.split(key)[0]
  real_in, fake_in = perturb_pair(p_name, p_key, real, fake, level, {})
  loss, grads = jax.value_and_grad(
      lambda p: objective(tanh_critic(p, real_in), tanh_critic(p, fake_in)))(d)
  return sub(d, grads, LR["discriminator"]), loss


REG_GAN_CASES = {
    "plain": {"lambda1": 0.3, "lambda2": 0.7},
    # The GAN term follows the configured objective; the mode term stays -log D.
    "minimax": {"lambda1": 0.3, "lambda2": 0.7, "loss": "minimax"},
    "n_critic_2": {"lambda1": 0.3, "lambda2": 0.7, "n_critic": 2, "iters": 2},
    "instance_noise": {"lambda1": 0.3, "lambda2": 0.7,
                       "perturbation": ("instance_noise", 0.3)},
}

MDGAN_CASES = {
    "plain": {"lambda_manifold": 0.6},
    "two_iterations": {"lambda_manifold": 0.6, "iters": 2},
    "instance_noise": {"lambda_manifold": 0.6, "perturbation": ("instance_noise", 0.3)},
}


class EncoderGamesWiringTest(parameterized.TestCase):

  @parameterized.named_parameters(*REG_GAN_CASES.items())
  def test_reg_gan_iteration(self, case):
    c, source = encoder_config("reg_gan", case)
    iters = case.get("iters", 1)
    _, state0, state, history = run_game(c, source, iters)
    l1, l2, n_critic = case["lambda1"], case["lambda2"], case.get("n_critic", 1)
    d_objective, g_objective = OBJECTIVES[case.get("loss", "non_saturating")]
    p_name, level = case.get("perturbation", ("none", 0.0))
    g, e, d = (state0.params[k] for k in ("generator", "encoder", "discriminator"))
    for t, metrics in enumerate(history):
      base = jax.random.fold_in(state0.rng, t)
      for i in range(n_critic):
        x_key, z_key, key = jax.random.split(
            jax.random.fold_in(jax.random.fold_in(base, 1), i), 3)
        real = source.draw(x_key, source.arrays, BATCH)
        fake = linear_map(g, latent01(z_key), (2,))
        d, d_loss = d_step(d, d_objective, key, real, fake, p_name, level)
      x_key, z_key, p_key, _ = jax.random.split(jax.random.fold_in(base, 2), 4)
      x = source.draw(x_key, source.arrays, BATCH)
      z = latent01(z_key)

      def mode_terms(g, e):
        """lambda1 ||x - G(E(x))||^2 - lambda2 log D(G(E(x))), averaged over x."""
        rec = linear_map(g, linear_map(e, x, LATENT), (2,))
        rec_in = perturb_fake(p_name, jax.random.fold_in(p_key, 1), rec, level, {})
        geometric = recon_error(x, rec)
        mode = -mean(jax.nn.log_sigmoid(tanh_critic(d, rec_in)))
        return l1 * geometric + l2 * mode, (geometric, mode)

      def t_g(g):
        fake = perturb_fake(p_name, jax.random.fold_in(p_key, 0), linear_map(g, z, (2,)),
                            level, {})
        gan = g_objective(tanh_critic(d, fake))
        terms, aux = mode_terms(g, e)
        return gan + terms, (gan, *aux)

      def t_e(e):
        return mode_terms(g, e)[0]

      (total, (gan, geometric, mode)), g_grads = jax.value_and_grad(t_g, has_aux=True)(g)
      e_grads = jax.grad(t_e)(e)
      g, e = sub(g, g_grads, LR["generator"]), sub(e, e_grads, LR["encoder"])
      assert_metrics_close(self, metrics, {
          "g_loss": total, "g_gan_loss": gan, "reconstruction": geometric,
          "mode_regularizer": mode, "d_loss": d_loss})
    for player, ref in (("generator", g), ("encoder", e), ("discriminator", d)):
      assert_trees_close(self, state.params[player], ref, state0.params[player], player)

  @parameterized.named_parameters(*MDGAN_CASES.items())
  def test_mdgan_iteration(self, case):
    c, source = encoder_config("mdgan", case)
    iters = case.get("iters", 1)
    _, state0, state, history = run_game(c, source, iters)
    lam = case["lambda_manifold"]
    d_objective = OBJECTIVES["non_saturating"][0]
    p_name, level = case.get("perturbation", ("none", 0.0))
    g, e, d1, d2 = (state0.params[k] for k in ("generator", "encoder", "d_manifold",
                                                "d_diffusion"))

    def reconstruct(g, e, x):
      return linear_map(g, linear_map(e, x, LATENT), (2,))

    for t, metrics in enumerate(history):
      base = jax.random.fold_in(state0.rng, t)
      # Manifold step: D1 tells x from G(E(x)); G, E minimize
      # -lambda log D1(G(E(x))) + ||x - G(E(x))||^2.
      x_key, key, p_key, _ = jax.random.split(jax.random.fold_in(base, 1), 4)
      x = source.draw(x_key, source.arrays, BATCH)
      d1, d1_loss = d_step(d1, d_objective, key, x, reconstruct(g, e, x), p_name, level)

      def manifold(ge):
        rec = reconstruct(*ge, x)
        rec_in = perturb_fake(p_name, p_key, rec, level, {})
        geometric = recon_error(x, rec)
        return -lam * mean(jax.nn.log_sigmoid(tanh_critic(d1, rec_in))) + geometric, geometric

      (m_loss, geometric), (g_grads, e_grads) = jax.value_and_grad(
          manifold, has_aux=True)((g, e))
      g, e = sub(g, g_grads, LR["generator"]), sub(e, e_grads, LR["encoder"])
      # Diffusion step: D2 tells G(E(x)) (as real) from G(z); G minimizes -log D2(G(z)).
      x_key, z_key, key, p_key, _ = jax.random.split(jax.random.fold_in(base, 2), 5)
      x = source.draw(x_key, source.arrays, BATCH)
      z = latent01(z_key)
      d2, d2_loss = d_step(d2, d_objective, key, reconstruct(g, e, x),
                           linear_map(g, z, (2,)), p_name, level)

      def diffusion(g):
        fake = perturb_fake(p_name, p_key, linear_map(g, z, (2,)), level, {})
        return -mean(jax.nn.log_sigmoid(tanh_critic(d2, fake)))

      g_loss, g_grads = jax.value_and_grad(diffusion)(g)
      g = sub(g, g_grads, LR["generator"])
      assert_metrics_close(self, metrics, {
          "manifold_loss": m_loss, "reconstruction": geometric, "g_loss": g_loss,
          "d_manifold_loss": d1_loss, "d_diffusion_loss": d2_loss})
    for player, ref in (("generator", g), ("encoder", e), ("d_manifold", d1),
                        ("d_diffusion", d2)):
      assert_trees_close(self, state.params[player], ref, state0.params[player], player)


if __name__ == "__main__":
  absltest.main()
