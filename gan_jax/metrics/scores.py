"""Classifier-based sample scores: Inception-style, MODE, Frechet, 1000-mode coverage.

No Inception weights can be downloaded here, so ``p(y|x)`` and the features
come from the project's own classifier (:mod:`gan_jax.metrics.classifier`);
every function below takes its outputs (class probabilities, features, or a
``classify`` function), so any classifier can be plugged in. All compute in
float64 NumPy and run standalone, e.g. on a checkpoint's samples.

With ``p(y|x)`` the classifier's prediction for a generated ``x``,
``q(y) = E_x p(y|x)`` its marginal over the samples and ``p_data(y)`` the label
distribution of the training data:

* Inception-style score: ``exp(E_x KL(p(y|x) || q(y)))``, between 1 (every
  sample classified alike, or no sample confidently) and the number of
  classes (confident predictions spread evenly over the classes);
* MODE score (Che et al. 2017): ``exp(E_x KL(p(y|x) || p_data(y)) -
  KL(q(y) || p_data(y)))``: it also penalises a marginal unlike the data's;
* Frechet distance between Gaussians fitted to two feature sets;
* for stacked / compositional MNIST, each of the three digits is classified
  separately, giving a mode ``100 d_0 + 10 d_1 + d_2`` per sample; report the
  modes covered and ``KL(generated mode histogram || true mode weights)``.

References:
  Salimans et al. Improved Techniques for Training GANs. NeurIPS 2016.
  Che, Li, Jacob, Bengio, Li. Mode Regularized Generative Adversarial
  Networks. ICLR 2017.
  Heusel et al. GANs Trained by a Two Time-Scale Update Rule Converge to a
  Local Nash Equilibrium. NeurIPS 2017.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

__all__ = [
    "frechet_distance",
    "image_scores",
    "inception_score",
    "mode_coverage",
    "mode_score",
    "thousand_mode_metrics",
]

# Stands in for a zero probability under a positive one: a large finite KL.
_EPS = 1e-12


def _probs(p: Any, name: str = "probs") -> np.ndarray:
  a = np.asarray(p, np.float64)
  if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 2:
    raise ValueError(f"{name} must be [n, classes] with n >= 1 and classes >= 2; got shape "
                     f"{a.shape}")
  if np.any(a < 0) or not np.allclose(a.sum(axis=1), 1.0, atol=1e-4):
    raise ValueError(f"{name}: every row must be a probability vector (>= 0, summing to 1); "
                     "apply a softmax to logits first")
  return a


def _kl_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
  """``KL(p_i || q)`` for each row ``p_i`` (terms with ``p = 0`` are 0)."""
  q = np.broadcast_to(q, p.shape)
  with np.errstate(divide="ignore", invalid="ignore"):
    # Exact where q > 0; a zero q under a positive p counts as _EPS.
    terms = np.where(p > 0, p * (np.log(np.where(p > 0, p, 1.0))
                                 - np.log(np.where(q > 0, q, _EPS))), 0.0)
  return terms.sum(axis=-1)


def inception_score(probs: Any) -> float:
  """``exp(E_x KL(p(y|x) || q(y)))`` with ``q`` the mean of ``probs`` ``[n, K]``."""
  p = _probs(probs)
  return float(np.exp(np.mean(_kl_rows(p, p.mean(axis=0)))))


def mode_score(probs: Any, data_label_probs: Any) -> float:
  """Che et al.'s MODE score of predictions ``probs`` ``[n, K]``.

  Args:
    probs: the classifier's ``p(y|x)`` on generated samples.
    data_label_probs: ``[K]`` label distribution of the training data.

  Returns:
    ``exp(E_x KL(p(y|x) || p_data) - KL(q || p_data))``, ``q`` the mean of
    ``probs``.
  """
  p = _probs(probs)
  d = np.asarray(data_label_probs, np.float64)
  if d.shape != (p.shape[1],) or np.any(d < 0) or not np.isclose(d.sum(), 1.0, atol=1e-6):
    raise ValueError(f"data_label_probs must be a probability vector of length {p.shape[1]}; "
                     f"got shape {d.shape}")
  q = p.mean(axis=0)
  return float(np.exp(np.mean(_kl_rows(p, d)) - _kl_rows(q[None], d)[0]))


def frechet_distance(features_a: Any, features_b: Any) -> float:
  """Frechet distance of Gaussians fitted to two feature sets ``[n, d]``, ``[m, d]``.

  ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)``, the
  usual ``tr(S_a + S_b - 2 (S_a S_b)^1/2)``: ``S_a S_b`` is similar to
  ``S_a^1/2 S_b S_a^1/2``, so their square roots have the same trace (which is
  not ``tr(S_a^1/2 S_b^1/2)`` unless the covariances commute). The matrix
  square roots come from symmetric eigendecompositions, which stay real for the
  positive semi-definite covariances (a general ``sqrtm`` of ``S_a S_b`` can
  return complex noise).
  """
  a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
  if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
    raise ValueError(f"features must be [n, d] and [m, d] with n, m >= 2 and equal d; got "
                     f"shapes {a.shape} and {b.shape}")
  mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
  s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  s_a, s_b = np.atleast_2d(s_a), np.atleast_2d(s_b)

  def sqrt_psd(m):
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T

  root_a = sqrt_psd(s_a)
  cross = np.trace(sqrt_psd(root_a @ s_b @ root_a))
  value = np.sum((mu_a - mu_b) ** 2) + np.trace(s_a) + np.trace(s_b) - 2 * cross
  return float(max(value, 0.0))


def mode_coverage(modes: Any, mode_weights: Any) -> dict[str, float]:
  """Modes covered and the KL of the mode histogram.

  Args:
    modes: ``[n]`` integer mode of each generated sample.
    mode_weights: ``[M]`` true probability of each mode.

  Returns:
    ``modes_covered`` (modes with at least one sample), ``n_modes``,
    ``kl_mode_histogram`` (``KL(histogram || mode_weights)``).
  """
  w = np.asarray(mode_weights, np.float64)
  m = np.asarray(modes)
  if w.ndim != 1 or not np.isclose(w.sum(), 1.0, atol=1e-6):
    raise ValueError(f"mode_weights must be a probability vector; got shape {w.shape}")
  if m.ndim != 1 or len(m) == 0 or not np.issubdtype(m.dtype, np.integer):
    raise ValueError(f"modes must be a non-empty [n] integer array; got {m.dtype} {m.shape}")
  if m.min() < 0 or m.max() >= len(w):
    raise ValueError(f"modes must lie in [0, {len(w) - 1}]; got {m.min()}..{m.max()}")
  counts = np.bincount(m, minlength=len(w)).astype(np.float64)
  hist = counts / counts.sum()
  return {"modes_covered": float(np.count_nonzero(counts)), "n_modes": float(len(w)),
          "kl_mode_histogram": float(_kl_rows(hist[None], w)[0])}


def thousand_mode_metrics(classify: Callable[[np.ndarray], Any], images: Any, name: str,
                          mode_weights: Any, *, batch_size: int = 1000,
                          confidence: float = 0.9) -> dict[str, float]:
  """Mode coverage of stacked or compositional MNIST samples.

  Every sample's mode is the argmax reading of its three digits. A blurry
  sample still gets an argmax, so the coverage is also reported over the
  *confident reads* only: samples whose three digits each get a top class
  probability of at least ``confidence``. Far more modes than confident reads
  means the coverage counts classifier guesses.

  Args:
    classify: maps ``[k, 28, 28, 1]`` digit images in ``[-1, 1]`` to class
      probabilities ``[k, 10]`` (e.g. a trained
      :class:`gan_jax.metrics.classifier.Classifier`'s ``probs``).
    images: generated samples of the set, ``[n, H, W, C]`` in ``[-1, 1]``.
    name: ``'stacked_mnist'`` or ``'compositional_mnist'``.
    mode_weights: ``[1000]`` true mode probabilities (``source.info.mode_weights``).
    batch_size: digits classified per call.
    confidence: the top class probability each digit of a confident read needs,
      in ``(0, 1]``.

  Returns:
    :func:`mode_coverage` of the modes ``100 d_0 + 10 d_1 + d_2``, with
    ``confident_share`` (share of confident reads), ``modes_covered_confident``
    and ``kl_mode_histogram_confident`` (:func:`mode_coverage` of the confident
    reads; NaN if there are none) and ``confidence``.
  """
  confidence = float(confidence)
  if not 0.0 < confidence <= 1.0:
    raise ValueError(f"confidence must be in (0, 1]; got {confidence!r}")
  from gan_jax.data import images as images_lib  # pylint: disable=g-import-not-at-top
  digits = np.asarray(images_lib.digit_crops(name, images))  # [n, 3, 28, 28, 1]
  flat = digits.reshape((-1,) + digits.shape[2:])
  probs = np.concatenate([np.asarray(classify(flat[i:i + batch_size]))
                          for i in range(0, len(flat), batch_size)])
  labels = np.argmax(probs, axis=-1).reshape(len(digits), 3)
  modes = np.asarray(images_lib.digits_to_mode(labels))
  confident = np.min(np.max(probs, axis=-1).reshape(len(digits), 3), axis=1) >= confidence
  out = mode_coverage(modes, mode_weights)
  sure = (mode_coverage(modes[confident], mode_weights) if confident.any()
          else {"modes_covered": float("nan"), "kl_mode_histogram": float("nan")})
  out.update({"confident_share": float(np.mean(confident)),
              "modes_covered_confident": sure["modes_covered"],
              "kl_mode_histogram_confident": sure["kl_mode_histogram"],
              "confidence": confidence})
  return out


def image_scores(classifier, source, samples: Any, real: Any) -> dict[str, float]:
  """The classifier scores that apply to an image source, as a flat dict.

  Args:
    classifier: a :class:`gan_jax.metrics.classifier.Classifier` trained on the
      source's domain (:func:`gan_jax.metrics.classifier.classifier_data`).
    source: the run's ``DataSource``.
    samples: generated images ``[n, H, W, C]`` in ``[-1, 1]``.
    real: real images of the same shape (e.g. ``n`` draws from ``source``).

  Returns:
    For stacked / compositional MNIST: :func:`thousand_mode_metrics`. For a
    labelled set: ``inception_score``, ``mode_score`` (against the label
    frequencies of ``source.arrays['y']``), ``frechet_distance`` (classifier
    features of ``samples`` vs ``real``) and ``real_inception_score`` (the
    same classifier on the real images: the reference a model's score is read
    against).
  """
  if source.name in ("stacked_mnist", "compositional_mnist"):
    return thousand_mode_metrics(classifier.probs, samples, source.name,
                                 source.info.mode_weights)
  if not source.has_labels:
    raise ValueError(f"data set {source.name!r} has no labels: the classifier scores need a "
                     "labelled set")
  labels = np.asarray(source.arrays["y"])
  data_probs = np.bincount(labels, minlength=classifier.num_classes) / len(labels)
  probs = classifier.probs(samples)
  return {"inception_score": inception_score(probs),
          "mode_score": mode_score(probs, data_probs),
          "frechet_distance": frechet_distance(classifier.features(real),
                                               classifier.features(samples)),
          "real_inception_score": inception_score(classifier.probs(real))}
