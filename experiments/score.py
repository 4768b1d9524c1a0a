r"""Scores a trained run: images with the project's own classifier, toy sets directly.

  python -m experiments.score --workdir=runs/dcgan_mnist \
      --classifier=runs/classifiers/mnist
  python -m experiments.score --workdir=runs/compositional --best \
      --classifier=runs/classifiers/compositional --num_samples=26000
  python -m experiments.score --workdir=runs/wgan_gp_grid

Loads the run's checkpoint (the latest, ``--step`` or ``--best``), draws
``--num_samples`` generator samples and as many real images, and computes the
scores of ``gan_jax.metrics.scores.image_scores``: Inception-style, MODE and
Frechet scores for labelled sets (MNIST, Fashion-MNIST, CIFAR-10), modes
covered and the KL of the mode histogram for stacked / compositional MNIST.
For labelled sets also, on the same classifier features as the Frechet
distance, KID (mean and std over subsets) and precision / recall (k = 3) and
density / coverage (k = 5) of ``gan_jax.metrics.fidelity``.

A toy run needs no classifier: it gets ``gan_jax.metrics.modes.toy_metrics``
against ``--num_samples`` fresh draws of the data, KID, precision, recall,
density and coverage on raw coordinates, and for mixtures the published PacGAN
protocol on the first 2,500 samples (``pacgan_*``).

The classifier is read from ``--classifier``; if that folder does not exist it
is trained on the run's data (``--classifier_steps`` Adam steps), saved there,
and its held-out accuracy printed. A saved classifier is never overwritten.
Results are printed and appended to ``<workdir>/scores.jsonl``.
"""

import json
import os
import time

from absl import app
from absl import flags
from absl import logging
import jax
import ml_collections
import numpy as np

from gan_jax.metrics import classifier as classifier_lib
from gan_jax.metrics import fidelity
from gan_jax.metrics import modes
from gan_jax.metrics import scores
from gan_jax.train import loop
from gan_jax.train import seeds as seeds_lib
from gan_jax.train import workdir as workdir_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "The run to score.")
flags.DEFINE_string("classifier", None,
                    "Folder of the classifier (trained there if missing); images only.")
flags.DEFINE_integer("num_samples", 10_000, "Generated (and real) samples scored.")
flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
flags.DEFINE_bool("best", False, "Score the best checkpoint instead.")
flags.DEFINE_integer("classifier_steps", 3000, "Adam steps when training the classifier.")
flags.DEFINE_integer("classifier_examples", 50_000, "Examples drawn to train the classifier.")
flags.DEFINE_integer("seed", 0, "Sampling seed.")
flags.DEFINE_integer("replica", 0, "A run of several seeds or a sweep: which replica to score "
                     "(0 .. num_seeds x values - 1; replica r has run seed seed + r).")
flags.mark_flags_as_required(["workdir"])

# Neighbour ranks of the papers: precision / recall (Kynkaanniemi et al.) and
# density / coverage (Naeem et al.).
_K_PRECISION_RECALL, _K_DENSITY_COVERAGE = 3, 5


def _draw(fn, n, batch=1000):
  return np.concatenate([np.asarray(fn(i, min(batch, n - i))) for i in range(0, n, batch)])


def _fidelity_scores(real, fake):
  """KID, precision, recall, density and coverage of ``fake`` against ``real``."""
  return {**fidelity.kid(real, fake),
          **fidelity.prdc(real, fake, k_precision_recall=_K_PRECISION_RECALL,
                          k_density_coverage=_K_DENSITY_COVERAGE)}


def _toy_scores(game, state, source, sample_key, real_key):
  dist = source.info
  sample = jax.jit(game.sample, static_argnums=2)
  # At least the published protocol's 2,500 samples; the other scores use
  # the first num_samples.
  n = max(FLAGS.num_samples, modes.PUBLISHED_PROTOCOL_SAMPLES)
  drawn = _draw(lambda i, m: sample(state, jax.random.fold_in(sample_key, i), m), n)
  samples = drawn[:FLAGS.num_samples]
  real = _draw(lambda i, m: dist.sample(jax.random.fold_in(real_key, i), m), FLAGS.num_samples)
  result = modes.toy_metrics(samples, dist, reference=real)
  if np.all(np.isfinite(samples)):
    result.update(_fidelity_scores(real, samples))
  else:  # a diverged generator: undefined, and said so in the record
    result.update(dict.fromkeys(("kid", "kid_std", "precision", "recall", "density",
                                 "coverage"), float("nan")))
  if dist.centers is not None:
    stats = modes.published_mode_statistics(drawn[:modes.PUBLISHED_PROTOCOL_SAMPLES],
                                            dist.centers, dist.std, dist.weights)
    result.update(pacgan_modes=float(stats["modes_captured"]),
                  pacgan_high_quality=stats["high_quality_share"],
                  pacgan_kl=stats["kl_mode_histogram"])
  return result


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  config = ml_collections.ConfigDict(workdir_lib.read_config(FLAGS.workdir) or {})
  if "train" not in config:
    raise app.UsageError(f"--workdir={FLAGS.workdir!r} holds no gan_jax run (no config.json)")
  try:  # (load_checkpoint checks the index before it restores anything)
    game, state, source = loop.load_checkpoint(FLAGS.workdir, config, step=FLAGS.step,
                                               best=FLAGS.best, seed_index=FLAGS.replica)
  except IndexError:
    count = len(seeds_lib.seed_list(config))
    raise app.UsageError(f"--replica={FLAGS.replica}: the run has {count} replica(s) "
                         f"(train.num_seeds x sweep values); valid: 0..{count - 1}") from None
  replica = seeds_lib.replica_info(config, FLAGS.replica)
  sample_key, real_key = jax.random.split(jax.random.key(FLAGS.seed))
  if len(source.shape) == 1 and hasattr(source.info, "sample"):
    _record(state, _toy_scores(game, state, source, sample_key, real_key), classifier=None,
            replica=replica)
    return
  if len(source.shape) != 3:
    raise app.UsageError(f"{source.name} is neither a toy nor an image set")
  if FLAGS.classifier is None:
    raise app.UsageError("image runs need --classifier (a folder; trained there if missing)")
  if os.path.isdir(FLAGS.classifier):
    clf = classifier_lib.Classifier.load(FLAGS.classifier)
  else:
    x, y = classifier_lib.classifier_data(source, FLAGS.classifier_examples, seed=1)
    held = len(x) // 10
    t0 = time.time()
    classes = 10 if source.num_classes == 1000 else source.num_classes  # digits of the modes
    clf = classifier_lib.train_classifier(x[held:], y[held:], num_classes=classes,
                                          steps=FLAGS.classifier_steps)
    # Draws are with replacement: held-out draws may repeat training images.
    print(f"classifier: {FLAGS.classifier_steps} steps in {time.time() - t0:.0f} s, accuracy "
          f"on held-out draws {clf.accuracy(x[:held], y[:held]):.4f}")
    clf.save(FLAGS.classifier)
  sample = jax.jit(game.sample, static_argnums=2)
  samples = _draw(lambda i, m: sample(state, jax.random.fold_in(sample_key, i), m),
                  FLAGS.num_samples)
  draw = jax.jit(source.draw, static_argnums=2)
  real = _draw(lambda i, m: draw(jax.random.fold_in(real_key, i), source.arrays, m)[0],
               FLAGS.num_samples)
  result = scores.image_scores(clf, source, samples, real)
  if "frechet_distance" in result:
    # The same features as the Frechet distance (the classifier's penultimate
    # layer); the 1000-mode sets are classified per digit and have none.
    result.update(_fidelity_scores(clf.features(real), clf.features(samples)))
  _record(state, result, classifier=os.path.abspath(FLAGS.classifier), replica=replica)


def _record(state, result, *, classifier, replica):
  step = int(jax.device_get(state.step))
  record = {"step": step, "best": FLAGS.best, "num_samples": FLAGS.num_samples,
            "classifier": classifier, **replica, **result}
  with open(os.path.join(FLAGS.workdir, "scores.jsonl"), "a", encoding="utf-8") as f:
    f.write(json.dumps(record) + "\n")
  print(f"step {step}: " + ", ".join(f"{k}={v:.4g}" for k, v in result.items()))


if __name__ == "__main__":
  app.run(main)
