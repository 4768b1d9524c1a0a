r"""DCGAN on MNIST (28x28): the baseline of the image experiments.

  python -m experiments.main --config=configs/dcgan_mnist.py --workdir=runs/dcgan_mnist \
      --config.data.npz_path=/path/to/mnist.npz   # offline: a local copy
Variant ':fashion_mnist' trains on Fashion-MNIST instead.
"""

from configs import images


def get_config(data: str = "mnist"):
  if data not in ("mnist", "fashion_mnist"):
    raise ValueError(f"variant must be 'mnist' or 'fashion_mnist', got {data!r}")
  return images.image_config(data)
