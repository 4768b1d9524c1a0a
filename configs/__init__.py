"""gan_jax's experiment configs: one module per paper experiment, each with
``get_config(variant)``. Installed with gan_jax; load one by name with
``gan_jax.config_registry.get_config('roth_submanifold:reg')``."""

# Marks this package as gan_jax's, for gan_jax.config_registry.
GAN_JAX_CONFIGS = True
