"""gan_jax: a JAX/Flax research framework for stable GAN training.

The package root imports nothing, so that a single module (for example
``gan_jax.transforms``) can be lifted into another project with its own
dependencies only.
"""

__version__ = "0.1.0"
