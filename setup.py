"""Packaging for gan_jax."""
import setuptools

setuptools.setup(
    name="gan_jax",
    version="0.1.0",
    description="A JAX/Flax research framework for stable GAN training.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    # configs/ is installed too, so that a notebook or script outside a checkout
    # loads any experiment by name (gan_jax.config_registry.get_config).
    packages=setuptools.find_packages(include=["gan_jax", "gan_jax.*", "configs"]),
    python_requires=">=3.10",
    # Lower bounds are the versions this project was tested with; no upper pins,
    # the project must keep working on the newest releases.
    install_requires=[
        "jax>=0.10.2",
        "flax>=0.12.8",
        "optax>=0.2.8",
        "chex>=0.1.92",
        "tensorflow-datasets>=4.9.10",
        "ml-collections>=1.1.0",
        "orbax-checkpoint>=0.12.8",
        "absl-py>=2.5.1",
        "matplotlib>=3.11.2",
        "numpy>=2.0",
        # tensorflow-datasets' download path imports it without declaring it.
        "importlib_resources>=7.1",
    ],
    extras_require={
        # prdc: the authors' reference for precision/recall/density/coverage
        # (tests/test_fidelity.py); it pulls scikit-learn.
        # nbclient, nbformat, ipykernel: tests/test_colabs.py executes the notebooks
        # in a Jupyter kernel. tensorboardX: tests/test_train.py reads a run's
        # TensorBoard events back.
        "test": ["pytest>=9.0", "pytest-xdist>=3.8", "scipy>=1.17", "prdc>=0.2",
                 "nbclient>=0.11.0", "nbformat>=5.11.1", "ipykernel>=7.4.0",
                 "tensorboardX>=2.6"],
        # tfds.load streams through TensorFlow; array-backed tfds.data_source does not need it.
        "tensorflow": ["tensorflow>=2.20"],
        # TensorBoard scalars of a run (gan_jax/train/board.py), no TensorFlow needed.
        "tensorboard": ["tensorboardX>=2.6"],
        # experiments/benchmark.py --suite=stream: the streaming reader against grain.
        "bench": ["grain>=0.2.18"],
    },
)
