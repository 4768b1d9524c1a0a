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
  ``fold_in(dropout key, 2)``; CT's first pass is the loss's pass on real
  (applied every step; a lazy CT makes its own with ``split(penalty key)[0]``),
  its second pass uses ``split(penalty key)[1]``.
* reg_gan: discriminator update ``i`` ``split(fold_in(step_key, 1, i), 3)`` =
  (data, latent, d) with ``split(d, 3)`` = (perturbation, dropout, penalty),
  penalty ``j`` ``fold_in(penalty key, j)``; the G/E update
  ``split(fold_in(step_key, 2), 4)`` = (data, latent, perturbation, dropout),
  ``G(z)`` perturbed with ``fold_in(perturbation, 0)``, ``G(E(x))`` with
  ``fold_in(perturbation, 1)``.
* mdgan: manifold step ``split(fold_in(step_key, 1), 4)`` = (data, d,
  perturbation, dropout); diffusion step ``split(fold_in(step_key, 2), 5)`` =
  (data, latent, d, perturbation, dropout); ``d`` as in reg_gan.
* encoder games, ``n_critic`` / ``n_gen > 1``: a repeated update ``j > 0``
  of a step uses ``fold_in(k, 16 + j)`` in place of the step's key ``k``
  (Reg-GAN's generator updates; both players of MDGAN, whose first
  discriminator and generator updates of a step share one batch).
* SGLD discriminators are seeded by the game builder with
  ``key_data(fold_in(PRNGKey(config.seed), tag))`` (the player's tag: 102 the
  discriminator, 104 / 105 MDGAN's D1 / D2), which the reference passes to its
  own ``transforms.sgld``.
* an EMA generator with batch norm samples with the batch statistics of
  ``4 * batch_size`` latents drawn with ``split(fold_in(step_key, 2**20))[0]``.

Class-conditional cases (``"conditional"``: labelled points, ``num_classes =
K`` in G and D) write the conditional players out too: the generator is
linear in ``[z, one_hot(y)]``, the discriminator adds the projection
``<embed(y), h>`` to its logit; the registered encoders take no labels, and a
test-only encoder linear in ``[x, one_hot(y)]`` stands for one that does.
Where labels go (METHODS: labels travel with their examples):

* a discriminator update scores ``(x, y_x)`` against ``(G(z, y_x), y_x)``
  (MDGAN's D1: ``(G(E(x), y_x), y_x)``; D2: ``(G(E(x), y_x), y_x)`` as real
  against ``(G(z, y_x), y_x)``);
* a generator term ``G(z, y)`` generates the labels ``y`` of a real batch of
  its own: the adversarial game's labels key (slot 3 of its row), Reg-GAN's
  slot 4 of ``split(k, 5)``, MDGAN's diffusion data key;
* reconstructions are ``G(E(x), y_x)`` and are scored with ``y_x``;
* ``sample`` draws ``z`` with ``split(key)[0]`` and, unless given, classes
  uniformly with ``split(key)[1]``.
"""

import dataclasses
import functools
import math

from absl.testing import absltest
from absl.testing import parameterized
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from configs import common
from gan_jax import games
from gan_jax import transforms
from gan_jax.data.source import from_arrays
from gan_jax.train import evaluate
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
K = 3  # classes of the conditional cases
POINT_LABELS = np.array([0, 2, 1, 2, 0, 1], np.int32)


# ----------------------------------------------------------- the players
def dense(p, h):
  return h @ p["kernel"] + p["bias"]


def linear_map(p, x, out_shape):
  """A linear generator or encoder (``mlp`` with no hidden layer)."""
  n = x.shape[0]
  return dense(p["out"], x.reshape(n, -1)).reshape((n, *out_shape))


def with_one_hot(x, labels):
  """Flat ``x``, and ``one_hot(y)`` appended for a conditional player."""
  h = x.reshape(x.shape[0], -1)
  return h if labels is None else jnp.concatenate([h, jax.nn.one_hot(labels, K)], axis=1)


def generate(p, z, labels, out_shape):
  """The linear generator: ``G(z)``, or ``G(z, y)`` linear in ``[z, one_hot(y)]``."""
  return linear_map(p, with_one_hot(z, labels), out_shape)


def tanh_critic(p, x, labels=None):
  """The discriminator logit: one tanh hidden layer; a conditional one adds
  the projection ``<embed(y), h>`` of its hidden features."""
  h = jnp.tanh(dense(p["trunk"]["dense_0"], x.reshape(x.shape[0], -1)))
  logit = dense(p["out"], h)[:, 0]
  if labels is None:
    return logit
  return logit + jnp.sum(p["label_embed"]["embedding"][labels] * h, axis=1)


def draw(source, key):
  """A real batch and its labels (None for unlabelled data)."""
  out = source.draw(key, source.arrays, BATCH)
  return out if source.has_labels else (out, None)


class LabelledLinearEncoder(nn.Module):
  """A test-only encoder that takes labels: linear in ``[x, one_hot(y)]``."""
  latent_shape: tuple[int, ...]
  num_classes: int

  @nn.compact
  def __call__(self, x, labels, *, train=True):
    h = jnp.concatenate([x.reshape(x.shape[0], -1), jax.nn.one_hot(labels, self.num_classes)],
                        axis=1)
    return nn.Dense(math.prod(self.latent_shape), name="out")(h).reshape(
        (x.shape[0], *self.latent_shape))


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


def ct(critic, critic_features, real, fake, key, first=None, **kw):
  k1, k2 = jax.random.split(key)
  l1, h1 = critic_features(real, k1) if first is None else first
  l2, h2 = critic_features(real, k2)
  sq = sq_norms(h1 - h2)
  # Where a small critic's two masks give equal features the norm is 0; its
  # derivative there is taken as 0 (the double-where form of a guarded sqrt).
  norm = jnp.where(sq > 0, jnp.sqrt(jnp.where(sq > 0, sq, 1.0)), 0.0)
  return mean(jax.nn.relu(jnp.abs(l1 - l2) + 0.1 * norm))


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
def base_config(data, conditional=False):
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
  if conditional:
    assert data == "points"
    c.model.generator.num_classes = K
    c.model.discriminator.num_classes = K
    source = from_arrays("points", jnp.asarray(POINTS), jnp.asarray(POINT_LABELS),
                         num_classes=K)
  else:
    source = from_arrays("images" if data == "images" else "points",
                         jnp.asarray(IMAGES if data == "images" else POINTS))
  return c, source


def run_game(c, source, iters, **fields):
  """Builds the game of ``c`` (``fields`` replace some of its players) and steps it."""
  game = games.make_game(c, source)
  if fields:
    game = dataclasses.replace(game, **fields)
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
    # a critic with dropout (the module's own masks, so this reference applies the module).
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
    # Class-conditional: labels with the data, G(z, y), D(x, y) (projection).
    "conditional": {"conditional": True, "iters": 2},
    # WGAN-GP's interpolates are scored with the batch's one set of labels.
    "conditional_wgan_gp": {"conditional": True, "loss": "wasserstein",
                            "penalties": [("wgan_gp", 3.0, 1, {}, lambda t: 3.0)]},
    "conditional_ct_dropout": {"conditional": True, "loss": "wasserstein", "dropout": 0.3,
                               "penalties": [("wgan_gp", 3.0, 1, {}, lambda t: 3.0),
                                             ("ct", 2.0, 1, {}, lambda t: 2.0)]},
}


def adversarial_config(case):
  c, source = base_config(case.get("data", "points"), case.get("conditional", False))
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
    module = game.discriminator  # the module's dropout masks: apply it itself

    def critic(p, x, key, features=False, labels=None):
      return module.apply({"params": p}, x, labels, train=True, rngs={"dropout": key},
                          return_features=features)
  else:
    def critic(p, x, key, features=False, labels=None):
      assert not features
      return tanh_critic(p, x, labels)

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
      # Conditional: the real batch's classes generated, one batch of labels on both sides.
      real, y = draw(source, real_key)
      fake = generate(g, sample_latent(z_key, BATCH, LATENT, prior="normal"), y, out_shape)
      real_in, fake_in = perturb_pair(p_name, p_key, real, fake, level, p_kwargs)
      d_step = t * n_critic + i

      def d_loss(p):
        loss = d_objective(critic(p, real_in, jax.random.fold_in(drop_key, 0), labels=y),
                           critic(p, fake_in, jax.random.fold_in(drop_key, 1), labels=y))
        total, raw = loss, 0.0
        for j, (name, _, every, kwargs, weight_at) in enumerate(case.get("penalties", [])):
          if d_step % every:
            continue
          omega, factor = PENALTIES[name]
          if name == "ct" and every == 1:  # the loss's own real pass is CT's first
            kwargs = {**kwargs, "first": critic(p, real_in, jax.random.fold_in(drop_key, 0),
                                                features=True, labels=y)}
          value = omega(lambda x: critic(p, x, jax.random.fold_in(drop_key, 2), labels=y),
                        lambda x, key: critic(p, x, key, features=True, labels=y),
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
      z_key, p_key, drop_key, label_key = keys[n_critic + j][:4]
      z = sample_latent(z_key, BATCH, LATENT, prior="normal")
      y = draw(source, label_key)[1]  # classes of a real batch of its own
      members = history if k > 1 else [d]

      def g_loss(p):
        fake = perturb_fake(p_name, p_key, generate(p, z, y, out_shape), level, p_kwargs)
        return mean(jnp.stack([g_objective(critic(m, fake, drop_key, labels=y))
                               for m in members]))

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


def check_step(test, case, state0, state, history, ref, players):
  """A game's iterations against their reference: each player's update, the
  EMA, the discriminator histories (``ref['history']``: name -> members) and
  the reported metrics."""
  for player in players:
    assert_trees_close(test, state.params[player], ref[player], state0.params[player], player)
  if case.get("ema_decay"):
    assert_trees_close(test, state.extra["ema_generator"], ref["ema"],
                       state0.params["generator"], "ema")
  if case.get("ensemble", 0) > 1:
    for name, members in ref["history"].items():
      player = "discriminator" if name == "d_history" else name[:-len("_history")]
      assert_trees_close(test, state.extra[name],
                         jax.tree.map(lambda *m: jnp.stack(m), *members),
                         jax.tree.map(lambda p: jnp.broadcast_to(p, (case["ensemble"], *p.shape)),
                                      state0.params[player]), name)
  for metrics, expected in zip(history, ref["metrics"]):
    assert_metrics_close(test, metrics, expected)


class AdversarialWiringTest(parameterized.TestCase):

  @parameterized.named_parameters(*ADVERSARIAL_CASES.items())
  def test_iteration_matches_reference(self, case):
    c, source = adversarial_config(case)
    iters = case.get("iters", 1)
    game, state0, state, history = run_game(c, source, iters)
    ref = adversarial_reference(case, game, state0, source, iters)
    if case.get("ensemble", 0) > 1:
      ref = {**ref, "history": {"d_history": ref["history"]}}
    check_step(self, case, state0, state, history, ref, ("generator", "discriminator"))


# ------------------------------------------------------- encoder games
# Each case: game fields of the config (lambda1/lambda2 or lambda_manifold and
# the shared ones), penalties as in ADVERSARIAL_CASES (applied to every
# discriminator), perturbation (name, constant level, kwargs), "data",
# "sgld" (the discriminators' sampler) and "iters".
ENCODER_GAME_FIELDS = ("lambda1", "lambda2", "lambda_manifold", "loss", "n_critic", "n_gen",
                       "ema_decay", "ensemble")
# The sampler seed tags of the encoder games' discriminators (gan_jax.games).
ENCODER_D_TAGS = {"discriminator": 102, "d_manifold": 104, "d_diffusion": 105}
REPEAT_TAG = 16  # a repeated generator update j > 0 uses fold_in(step's key, 16 + j)
# The mode terms use the non-saturating form of the objective's generator loss.
MODE_LOSS = {"non_saturating": OBJECTIVES["non_saturating"][1],
             "minimax": OBJECTIVES["non_saturating"][1],
             "wasserstein": lambda f: -mean(f), "fgan_kl": lambda f: -mean(f)}


def encoder_config(name, case):
  c, source = base_config(case.get("data", "points"), case.get("conditional", False))
  c.game.name = name
  c.model.latent_prior = "uniform"
  c.model.latent_kwargs = ml_collections.ConfigDict({"low": 0.0})
  c.model.encoder = ml_collections.ConfigDict({"name": "mlp", "widths": ()})
  c.optim.encoder = ml_collections.ConfigDict({"name": "sgd", "learning_rate": LR["encoder"]})
  for field in ENCODER_GAME_FIELDS:
    if field in case:
      c.game[field] = case[field]
  for field, spec in zip(("penalty", "penalty_2"), case.get("penalties", [])):
    p_name, weight, every, kwargs, _ = spec
    c.game[field] = common.penalty(p_name, weight, every, **kwargs)
  if "perturbation" in case:
    p_name, level, kwargs = case["perturbation"]
    c.game.perturbation = common.perturbation(p_name, level, **kwargs)
  if "sgld" in case:
    c.optim.discriminator = ml_collections.ConfigDict({"name": "sgld", **case["sgld"]})
  return c, source


def recon_error(x, rec):
  """``||x - G(E(x))||^2``: summed over the dimensions, averaged over the batch."""
  return mean(jnp.sum(jnp.square(x - rec).reshape(x.shape[0], -1), axis=1))


def latent01(key):
  return sample_latent(key, BATCH, LATENT, prior="uniform", low=0.0)


def encode(e, x, labels, case):
  """``E(x)``; ``E(x, y)`` with the test-only encoder that takes labels."""
  return linear_map(e, with_one_hot(x, labels if case.get("labelled_encoder") else None),
                    LATENT)


def encoder_game_fields(case):
  """Players that replace the config's: the test-only labelled encoder."""
  if case.get("labelled_encoder"):
    return {"encoder": LabelledLinearEncoder(LATENT, K)}
  return {}


def repeat_key(key, j):
  return key if j == 0 else jax.random.fold_in(key, REPEAT_TAG + j)


class RefDiscriminator:
  """A discriminator of the reference: parameters, SGD or SGLD, recent samples."""

  def __init__(self, params, case, name):
    self.params, self.k = params, case.get("ensemble", 0)
    self.history = [params] * self.k
    self.tx = None
    if "sgld" in case:
      seed = jax.random.key_data(jax.random.fold_in(jax.random.PRNGKey(SEED),
                                                    ENCODER_D_TAGS[name]))
      self.tx = transforms.sgld(case["sgld"]["learning_rate"],
                                temperature=case["sgld"]["temperature"], key=seed)
      self.opt = self.tx.init(params)

  def step(self, case, key, real, fake, t, d_index, *, real_is_data=True, labels=None):
    """One update on (real, fake), both scored with ``labels``: the objective,
    the penalties on the perturbed pair; heat only when the real side is data.
    Returns (loss, weighted, raw)."""
    p_key, _, pen_key = jax.random.split(key, 3)
    p_name, level, p_kwargs = case.get("perturbation", ("none", 0.0, {}))
    if p_name == "heat" and not real_is_data:
      p_name = "none"
    real_in, fake_in = perturb_pair(p_name, p_key, real, fake, level, p_kwargs)
    objective = OBJECTIVES[case.get("loss", "non_saturating")][0]

    def loss_fn(p):
      critic = lambda x: tanh_critic(p, x, labels)
      loss = objective(critic(real_in), critic(fake_in))
      total, raw = loss, 0.0
      for j, (name, _, every, kwargs, weight_at) in enumerate(case.get("penalties", [])):
        if d_index % every:
          continue
        omega, factor = PENALTIES[name]
        value = omega(critic, None, real_in, fake_in, jax.random.fold_in(pen_key, j), **kwargs)
        total, raw = total + factor * weight_at(t) * every * value, raw + value
      return total, (loss, total - loss, raw)

    grads, out = jax.grad(loss_fn, has_aux=True)(self.params)
    if self.tx is not None:
      updates, self.opt = self.tx.update(grads, self.opt, self.params)
      self.params = jax.tree.map(jnp.add, self.params, updates)
    else:
      self.params = sub(self.params, grads, LR["discriminator"])
    self.history = [self.params] + self.history[:-1]
    return out

  def generator_loss(self, loss, x, labels=None):
    """An adversarial term of the generator: the mean over the ensemble if kept."""
    members = self.history if self.k > 1 else [self.params]
    return mean(jnp.stack([loss(tanh_critic(m, x, labels)) for m in members]))


def ema_step(ema, g, case):
  decay = case.get("ema_decay", 0.0)
  return jax.tree.map(lambda e, n: decay * e + (1.0 - decay) * n, ema, g)


def penalty_metrics(case, t, raw_weighted, prefix=""):
  if not case.get("penalties"):
    return {}
  loss, weighted, raw = raw_weighted
  return {f"{prefix}penalty": raw, f"{prefix}penalty_weighted": weighted,
          "penalty_weight": case["penalties"][0][4](t)}


def reg_gan_reference(case, state, source, iters):
  """Reg-GAN's iterations from METHODS §5 on the game's draws."""
  l1, l2 = case["lambda1"], case["lambda2"]
  n_critic, n_gen = case.get("n_critic", 1), case.get("n_gen", 1)
  loss_name = case.get("loss", "non_saturating")
  g_objective, mode_loss = OBJECTIVES[loss_name][1], MODE_LOSS[loss_name]
  p_name, level, p_kwargs = case.get("perturbation", ("none", 0.0, {}))
  shape = tuple(source.shape)
  g, e = state.params["generator"], state.params["encoder"]
  d = RefDiscriminator(state.params["discriminator"], case, "discriminator")
  ema, metrics = g, []
  for t in range(iters):
    base = jax.random.fold_in(state.rng, t)
    for i in range(n_critic):
      x_key, z_key, key = jax.random.split(
          jax.random.fold_in(jax.random.fold_in(base, 1), i), 3)
      # D: (x, y_x) against (G(z, y_x), y_x).
      real, y = draw(source, x_key)
      fake = generate(g, latent01(z_key), y, shape)
      d_out = d.step(case, key, real, fake, t, t * n_critic + i, labels=y)
    for j in range(n_gen):
      x_key, z_key, p_key, _, label_key = jax.random.split(
          repeat_key(jax.random.fold_in(base, 2), j), 5)
      x, y_x = draw(source, x_key)
      z = latent01(z_key)
      y_z = draw(source, label_key)[1]  # G(z)'s classes: a real batch of their own

      def mode_terms(g, e):
        """lambda1 ||x - G(E(x), y_x)||^2 - lambda2 log D(G(E(x), y_x), y_x), averaged over x."""
        rec = generate(g, encode(e, x, y_x, case), y_x, shape)
        rec_in = perturb_fake(p_name, jax.random.fold_in(p_key, 1), rec, level, p_kwargs)
        geometric = recon_error(x, rec)
        mode = d.generator_loss(mode_loss, rec_in, y_x)
        return l1 * geometric + l2 * mode, (geometric, mode)

      def t_g(g):
        fake = perturb_fake(p_name, jax.random.fold_in(p_key, 0), generate(g, z, y_z, shape),
                            level, p_kwargs)
        gan = d.generator_loss(g_objective, fake, y_z)
        terms, aux = mode_terms(g, e)
        return gan + terms, (gan, *aux)

      (total, (gan, geometric, mode)), g_grads = jax.value_and_grad(t_g, has_aux=True)(g)
      e_grads = jax.grad(lambda e: mode_terms(g, e)[0])(e)
      g, e = sub(g, g_grads, LR["generator"]), sub(e, e_grads, LR["encoder"])
      ema = ema_step(ema, g, case)
    metrics.append({"g_loss": total, "g_gan_loss": gan, "reconstruction": geometric,
                    "mode_regularizer": mode, "d_loss": d_out[0],
                    **penalty_metrics(case, t, d_out)})
  return {"generator": g, "encoder": e, "discriminator": d.params, "ema": ema,
          "history": {"d_history": d.history}, "metrics": metrics}


def mdgan_reference(case, state, source, iters):
  """MDGAN's iterations from METHODS §5 on the game's draws."""
  lam, n_critic, n_gen = case["lambda_manifold"], case.get("n_critic", 1), case.get("n_gen", 1)
  loss_name = case.get("loss", "non_saturating")
  g_objective, mode_loss = OBJECTIVES[loss_name][1], MODE_LOSS[loss_name]
  p_name, level, p_kwargs = case.get("perturbation", ("none", 0.0, {}))
  shape = tuple(source.shape)
  g, e = state.params["generator"], state.params["encoder"]
  d1 = RefDiscriminator(state.params["d_manifold"], case, "d_manifold")
  d2 = RefDiscriminator(state.params["d_diffusion"], case, "d_diffusion")
  ema, metrics = g, []

  def reconstruct(g, e, x, y):
    return generate(g, encode(e, x, y, case), y, shape)

  for t in range(iters):
    base = jax.random.fold_in(state.rng, t)
    # Manifold step: D1 tells x (data: heated) from G(E(x)); G, E minimize
    # -lambda log D1(G(E(x))) + ||x - G(E(x))||^2.
    step_key = jax.random.fold_in(base, 1)
    for i in range(n_critic):
      x_key, key = jax.random.split(repeat_key(step_key, i), 4)[:2]
      x, y = draw(source, x_key)
      d1_out = d1.step(case, key, x, reconstruct(g, e, x, y), t, t * n_critic + i, labels=y)
    for j in range(n_gen):
      x_key, _, p_key, _ = jax.random.split(repeat_key(step_key, j), 4)
      x, y = draw(source, x_key)

      def manifold(ge):
        rec = reconstruct(*ge, x, y)
        rec_in = perturb_fake(p_name, p_key, rec, level, p_kwargs)
        geometric = recon_error(x, rec)
        return lam * d1.generator_loss(mode_loss, rec_in, y) + geometric, geometric

      (m_loss, geometric), (g_grads, e_grads) = jax.value_and_grad(
          manifold, has_aux=True)((g, e))
      g, e = sub(g, g_grads, LR["generator"]), sub(e, e_grads, LR["encoder"])
      ema = ema_step(ema, g, case)
    # Diffusion step: D2 tells G(E(x)) (as real, not data: never heated) from
    # G(z); G minimizes the objective's generator loss, -log D2(G(z)) by default.
    step_key = jax.random.fold_in(base, 2)
    for i in range(n_critic):
      x_key, z_key, key = jax.random.split(repeat_key(step_key, i), 5)[:3]
      x, y = draw(source, x_key)
      # D2: (G(E(x), y_x), y_x) as real against (G(z, y_x), y_x).
      d2_out = d2.step(case, key, reconstruct(g, e, x, y),
                       generate(g, latent01(z_key), y, shape), t, t * n_critic + i,
                       real_is_data=False, labels=y)
    for j in range(n_gen):
      x_key, z_key, _, p_key, _ = jax.random.split(repeat_key(step_key, j), 5)
      z = latent01(z_key)
      y = draw(source, x_key)[1]  # the classes of the step's real batch

      def diffusion(g):
        fake = perturb_fake(p_name, p_key, generate(g, z, y, shape), level, p_kwargs)
        return d2.generator_loss(g_objective, fake, y)

      g_loss, g_grads = jax.value_and_grad(diffusion)(g)
      g = sub(g, g_grads, LR["generator"])
      ema = ema_step(ema, g, case)
    metrics.append({"manifold_loss": m_loss, "reconstruction": geometric, "g_loss": g_loss,
                    "d_manifold_loss": d1_out[0], "d_diffusion_loss": d2_out[0],
                    **penalty_metrics(case, t, d1_out, "d_manifold_"),
                    **penalty_metrics(case, t, d2_out, "d_diffusion_")})
  return {"generator": g, "encoder": e, "d_manifold": d1.params, "d_diffusion": d2.params,
          "ema": ema, "history": {"d_manifold_history": d1.history,
                                  "d_diffusion_history": d2.history},
          "metrics": metrics}


SGLD = {"learning_rate": 0.05, "temperature": 0.02}
REG = {"lambda1": 0.3, "lambda2": 0.7}
REG_GAN_CASES = {
    "plain": {**REG},
    # The GAN term follows the configured objective; the mode term stays -log D.
    "minimax": {**REG, "loss": "minimax"},
    # A critic: the mode term is the objective's non-saturating -f; WGAN-GP's key.
    "wasserstein_gp": {**REG, "loss": "wasserstein",
                       "penalties": [("wgan_gp", 3.0, 1, {}, lambda t: 3.0)]},
    "n_critic_2": {**REG, "n_critic": 2, "iters": 2},
    "instance_noise": {**REG, "perturbation": ("instance_noise", 0.3, {})},
    # Roth's regularizer on data vs G(z), the weight gamma / 2.
    "roth_js": {**REG, "penalties": [("roth_js", 1.5, 1, {}, lambda t: 1.5)]},
    # Two penalties; both see the instance-noised inputs.
    "instance_noise_r1_r2": {**REG, "perturbation": ("instance_noise", 0.3, {}),
                             "penalties": [("r1", 1.5, 1, {}, lambda t: 1.5),
                                           ("r2", 0.8, 1, {}, lambda t: 0.8)]},
    # Lazy every 2 discriminator steps (on 0 and 2 of 0..3), gamma decayed per iteration.
    "lazy_roth_js_decay": {**REG, "n_critic": 2, "iters": 2, "penalties": [
        ("roth_js", {"name": "gamma_decay", "gamma_0": 2.0, "total_steps": 4, "decay": 0.1},
         2, {}, lambda t: 2.0 * 0.1 ** (t / 4))]},
    # beta-GAN heat on the data only.
    "heat": {**REG, "perturbation": ("heat", 4.0, {})},
    "blur": {**REG, "data": "images", "perturbation": ("blur", 0.8, {"radius": 2})},
    # Both of G's adversarial terms against the last 3 samples of an SGLD D.
    "sgld_ensemble": {**REG, "n_critic": 2, "iters": 2, "ensemble": 3, "sgld": SGLD},
    "ema_n_gen_2": {**REG, "n_gen": 2, "iters": 2, "ema_decay": 0.7},
    # Class-conditional: see the module docstring for where labels go.
    "conditional": {**REG, "conditional": True},
    # Repeated updates draw fresh batches and fresh labels.
    "conditional_n_critic_2_n_gen_2": {**REG, "conditional": True, "n_critic": 2, "n_gen": 2,
                                       "iters": 2},
    # WGAN-GP's interpolates between x and G(z, y_x), scored with y_x.
    "conditional_wasserstein_gp": {**REG, "conditional": True, "loss": "wasserstein",
                                   "penalties": [("wgan_gp", 3.0, 1, {}, lambda t: 3.0)]},
    # Both adversarial terms against the last 3 samples of a conditional SGLD D.
    "conditional_sgld_ensemble": {**REG, "conditional": True, "n_critic": 2, "iters": 2,
                                  "ensemble": 3, "sgld": SGLD},
    # An encoder that takes labels gets x's: E(x, y_x).
    "conditional_labelled_encoder": {**REG, "conditional": True, "labelled_encoder": True},
}

MD = {"lambda_manifold": 0.6}
MDGAN_CASES = {
    "plain": {**MD},
    "two_iterations": {**MD, "iters": 2},
    # Saturating diffusion term, the manifold term stays -log D1.
    "minimax": {**MD, "loss": "minimax"},
    "instance_noise": {**MD, "perturbation": ("instance_noise", 0.3, {})},
    # R1 on each discriminator's real side: x for D1, G(E(x)) for D2.
    "r1": {**MD, "penalties": [("r1", 1.5, 1, {}, lambda t: 1.5)]},
    "roth_js": {**MD, "penalties": [("roth_js", 1.5, 1, {}, lambda t: 1.5)]},
    # One update of each discriminator per iteration: on at t = 0, 2, off at 1.
    "lazy_r2": {**MD, "iters": 3, "penalties": [("r2", 1.5, 2, {}, lambda t: 1.5)]},
    # Heat on D1's data only, never on D2's real side G(E(x)).
    "heat": {**MD, "perturbation": ("heat", 4.0, {})},
    "heat_r1": {**MD, "perturbation": ("heat", 4.0, {}),
                "penalties": [("r1", 1.5, 1, {}, lambda t: 1.5)]},
    "blur": {**MD, "data": "images", "perturbation": ("blur", 0.8, {"radius": 2})},
    "sgld_ensemble": {**MD, "iters": 2, "ensemble": 3, "sgld": SGLD},
    "ema_n_gen_2": {**MD, "n_gen": 2, "iters": 2, "ema_decay": 0.7},
    # Two updates of each discriminator per step, lazy R1 on their steps 0, 2.
    "n_critic_2_lazy_r1": {**MD, "n_critic": 2, "iters": 2,
                           "penalties": [("r1", 1.5, 2, {}, lambda t: 1.5)]},
    # Class-conditional: see the module docstring for where labels go.
    "conditional": {**MD, "conditional": True, "iters": 2},
    "conditional_n_critic_2_n_gen_2": {**MD, "conditional": True, "n_critic": 2, "n_gen": 2,
                                       "iters": 2},
    # R1 on each discriminator's real side with that side's labels, noised inputs.
    "conditional_instance_noise_r1": {**MD, "conditional": True,
                                      "perturbation": ("instance_noise", 0.3, {}),
                                      "penalties": [("r1", 1.5, 1, {}, lambda t: 1.5)]},
    "conditional_labelled_encoder": {**MD, "conditional": True, "labelled_encoder": True},
}


class EncoderGamesWiringTest(parameterized.TestCase):

  def check(self, case, state0, state, history, ref, players):
    check_step(self, case, state0, state, history, ref, players)

  @parameterized.named_parameters(*REG_GAN_CASES.items())
  def test_reg_gan_iteration(self, case):
    c, source = encoder_config("reg_gan", case)
    iters = case.get("iters", 1)
    _, state0, state, history = run_game(c, source, iters, **encoder_game_fields(case))
    ref = reg_gan_reference(case, state0, source, iters)
    self.check(case, state0, state, history, ref, ("generator", "encoder", "discriminator"))

  @parameterized.named_parameters(*MDGAN_CASES.items())
  def test_mdgan_iteration(self, case):
    c, source = encoder_config("mdgan", case)
    iters = case.get("iters", 1)
    _, state0, state, history = run_game(c, source, iters, **encoder_game_fields(case))
    ref = mdgan_reference(case, state0, source, iters)
    self.check(case, state0, state, history, ref,
               ("generator", "encoder", "d_manifold", "d_diffusion"))


# ------------------------------------------- conditional games, evaluation
class ConditionalEvaluationTest(parameterized.TestCase):
  """``sample``, ``reconstruct`` and ``discriminate`` of conditional games, by hand."""

  @parameterized.parameters("adversarial", "reg_gan", "mdgan")
  def test_labels_reach_the_players(self, name):
    if name == "adversarial":
      c, source = adversarial_config({"conditional": True})
      latent = lambda key, n: sample_latent(key, n, LATENT, prior="normal")
    else:
      c, source = encoder_config(name, {**REG, **MD, "conditional": True})
      latent = lambda key, n: sample_latent(key, n, LATENT, prior="uniform", low=0.0)
    game, _, state, _ = run_game(c, source, 1)
    g, shape, n = state.params["generator"], tuple(source.shape), 8
    key = jax.random.PRNGKey(7)
    z_key, label_key = jax.random.split(key)
    z = latent(z_key, n)
    uniform = jax.random.randint(label_key, (n,), 0, K)
    samples = game.sample(state, key, n)
    np.testing.assert_allclose(samples, generate(g, z, uniform, shape), rtol=1e-5, atol=1e-6)
    given = (uniform + 1) % K
    relabelled = game.sample(state, key, n, labels=given)
    np.testing.assert_allclose(relabelled, generate(g, z, given, shape), rtol=1e-5, atol=1e-6)
    self.assertGreater(float(jnp.min(jnp.max(jnp.abs(samples - relabelled), axis=1))), 1e-4)
    x, y = jnp.asarray(POINTS[:5]), jnp.asarray(POINT_LABELS[:5])
    d_name = {"adversarial": "discriminator", "reg_gan": "discriminator",
              "mdgan": "d_diffusion"}[name]
    np.testing.assert_allclose(game.discriminate(state, x, y),
                               tanh_critic(state.params[d_name], x, y), rtol=1e-5, atol=1e-6)
    if name != "adversarial":
      np.testing.assert_allclose(
          game.reconstruct(state, x, y),
          generate(g, linear_map(state.params["encoder"], x, LATENT), y, shape),
          rtol=1e-5, atol=1e-6)
      with self.assertRaisesRegex(ValueError, r"needs the labels of x.*\[0, 3\)"):
        game.reconstruct(state, x)


# ------------------------------------------------- EMA with batch norm in G
EMA_STATS_TAG, EMA_STATS_BATCHES, BN_EPSILON = 1 << 20, 4, 1e-5


def bn_generator(p, z, mu, var):
  """``mlp`` with one batch-normed ReLU layer, normalised with (mu, var)."""
  h = z.reshape(z.shape[0], -1) @ p["trunk"]["dense_0"]["kernel"]
  bn = p["trunk"]["bn_0"]
  h = (h - mu) / jnp.sqrt(var + BN_EPSILON) * bn["scale"] + bn["bias"]
  return dense(p["out"], jax.nn.relu(h))


class EMAStatisticsTest(parameterized.TestCase):
  """An EMA generator samples with batch statistics of its own weights."""

  @parameterized.parameters("adversarial", "reg_gan")
  def test_ema_samples_use_statistics_of_the_ema_weights(self, name):
    # Every game samples z with split(key)[0] (base.generator_samples).
    sample_key = lambda key: jax.random.split(key)[0]
    if name == "adversarial":
      c, source = base_config("points")
      latent = lambda key, n: sample_latent(key, n, LATENT, prior="normal")
    else:
      c, source = encoder_config(name, REG)
      latent = lambda key, n: sample_latent(key, n, LATENT, prior="uniform", low=0.0)
    c.model.generator = ml_collections.ConfigDict(
        {"name": "mlp", "widths": (3,), "batch_norm": True})
    c.game.ema_decay = 0.5
    game, _, state, _ = run_game(c, source, 2)
    ema, live = state.extra["ema_generator"], state.params["generator"]
    key = jax.random.PRNGKey(5)
    z = latent(sample_key(key), 8)
    # The statistics the EMA weights produce on their own inputs.
    stats_key = jax.random.split(jax.random.fold_in(
        jax.random.fold_in(state.rng, state.step), EMA_STATS_TAG))[0]
    h = latent(stats_key, EMA_STATS_BATCHES * BATCH) @ ema["trunk"]["dense_0"]["kernel"]
    expected = bn_generator(ema, z, jnp.mean(h, 0), jnp.var(h, 0))
    samples = game.sample(state, key, 8)
    np.testing.assert_allclose(samples, expected, rtol=1e-4, atol=1e-5)
    # Not the live generator's running statistics (which belong to the live weights).
    running = state.model_state["generator"]["batch_stats"]["trunk"]["bn_0"]
    with_live_stats = bn_generator(ema, z, running["mean"], running["var"])
    self.assertGreater(float(jnp.max(jnp.abs(samples - with_live_stats))), 1e-3)
    # The live generator keeps its own weights and statistics.
    np.testing.assert_allclose(
        game.sample(state, key, 8, ema=False),
        bn_generator(live, z, running["mean"], running["var"]), rtol=1e-4, atol=1e-5)

  def test_evaluation_says_it_samples_the_ema_generator(self):
    c, source = base_config("points")
    c.train.eval_samples = 8
    for decay, expected in ((0.5, 1.0), (0.0, 0.0)):
      c.game.ema_decay = decay
      game = games.make_game(c, source)
      ev = evaluate.Evaluator(game, source, c, self.create_tempdir().full_path)
      self.assertEqual(ev.evaluate(game.init(jax.random.PRNGKey(SEED)), 0)["sampled_with_ema"],
                       expected)


class CriticLoopProgramTest(parameterized.TestCase):
  """Every game runs its ``n_critic`` discriminator updates as one rolled loop:
  the compiled program holds one copy of the update, whatever ``n_critic``."""

  @parameterized.parameters("gan", "reg", "mdgan")
  def test_program_size_does_not_grow_with_n_critic(self, variant):
    from configs import che_circle  # pylint: disable=g-import-not-at-top
    from gan_jax.data import make_source  # pylint: disable=g-import-not-at-top

    def program(n_critic):
      c = che_circle.get_config(variant)
      c.game.n_critic = n_critic
      source = make_source(c.data)
      game = games.make_game(c, source)
      state = jax.eval_shape(game.init, jax.random.PRNGKey(0))
      text = jax.jit(lambda s: game.step(s, source.arrays)).lower(state).as_text()
      return len(text.splitlines()), text.count("dot_general")

    two, five = program(2), program(5)
    self.assertEqual(two, five)
    self.assertGreater(two[1], 0)


if __name__ == "__main__":
  absltest.main()
