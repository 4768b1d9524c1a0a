"""Experiment configs by name, for notebooks and scripts outside a checkout.

Every experiment is a module of the ``configs`` package (``configs/<name>.py``
with ``get_config(variant)``), which ``pip install`` installs beside
``gan_jax``. The command line reads a config from its file
(``--config=configs/roth_submanifold.py:reg``); code anywhere else asks for it
by the same name::

  >>> from gan_jax import config_registry
  >>> config = config_registry.get_config("roth_submanifold:unreg")
  >>> config.data.name
  'roth_submanifold'
  >>> "betagan_mixture_3d" in config_registry.config_names()
  True

The ``configs`` package imports ``gan_jax``; this module imports ``configs``
only when asked for a config, so ``gan_jax`` itself never needs it.
"""

from __future__ import annotations

import importlib
import pkgutil

import ml_collections

from gan_jax import errors

__all__ = ["config_names", "get_config", "set_field"]

_PACKAGE = "configs"


def _package():
  """gan_jax's ``configs`` package; a clear ImportError if it is missing or foreign."""
  try:
    package = importlib.import_module(_PACKAGE)
  except ImportError as e:
    raise ImportError(
        "gan_jax's experiment configs (the 'configs' package) are not importable: install "
        "the repository (pip install <checkout or URL>) or run from the checkout's root "
        f"({e})") from None
  if not getattr(package, "GAN_JAX_CONFIGS", False):
    raise ImportError(
        f"the 'configs' package found at {getattr(package, '__file__', '?')} is not "
        "gan_jax's experiment configs (another package of that name comes first on "
        "sys.path)")
  return package


def config_names() -> list[str]:
  """The names :func:`get_config` accepts (modules with a ``get_config``), sorted."""
  package = _package()
  names = []
  for info in pkgutil.iter_modules(package.__path__):
    if info.ispkg or info.name.startswith("_"):
      continue
    module = importlib.import_module(f"{_PACKAGE}.{info.name}")
    if callable(getattr(module, "get_config", None)):
      names.append(info.name)
  return sorted(names)


def _module_name(name: str) -> str:
  """``'roth_submanifold'`` from itself, ``'configs/roth_submanifold.py'`` or
  ``'configs.roth_submanifold'``."""
  name = name.strip()
  if name.endswith(".py"):
    name = name[:-3]
  for prefix in (f"{_PACKAGE}/", f"{_PACKAGE}."):
    if name.startswith(prefix):
      name = name[len(prefix):]
  return name


def get_config(name: str) -> ml_collections.ConfigDict:
  """The config of experiment ``name``, optionally with a variant after ``':'``.

  Args:
    name: ``'<config>'`` or ``'<config>:<variant>'``, e.g.
      ``'betagan_mixture_3d:10,sgld'``; the command line's file form
      ``'configs/<config>.py:<variant>'`` is accepted too. Without a variant
      the config's default is used.

  Returns:
    A fresh (unlocked) ``ml_collections.ConfigDict``; change it freely.

  Raises:
    ConfigError: for an unknown config name (the message lists the valid
      ones); an unknown variant raises the config's own ``ValueError``, which
      lists its variants.
    ImportError: if the ``configs`` package is not installed.
  """
  if not isinstance(name, str) or not name.strip():
    raise errors.ConfigError(f"a config name must be a non-empty string; got {name!r}; "
                             f"valid: {', '.join(config_names())}")
  module_name, has_variant, variant = name.partition(":")
  module_name = _module_name(module_name)
  valid = config_names()
  if module_name not in valid:
    raise errors.ConfigError(
        f"unknown config {module_name!r}{errors.did_you_mean(module_name, valid)}; valid: "
        f"{', '.join(valid)} (each optionally with ':<variant>')")
  module = importlib.import_module(f"{_PACKAGE}.{module_name}")
  return module.get_config(variant) if has_variant else module.get_config()


def set_field(config: ml_collections.ConfigDict, path: str, value) -> None:
  """Sets the dotted ``path`` of ``config`` to ``value``, also across types.

  A ``ConfigDict`` keeps each field's type, so a number cannot become a
  schedule mapping in place (nor a mapping a number): then the field's section
  is rebuilt with the new value. A ``dict`` value becomes a ``ConfigDict``.

  Raises:
    KeyError: a part of ``path`` is not in the config (callers that take paths
      from users check them first and name the valid fields).
  """
  *parents, last = path.split(".")
  node = config
  for part in parents:
    node = node[part]
  value = ml_collections.ConfigDict(value) if isinstance(value, dict) else value
  if last not in node:
    raise KeyError(f"no field {last!r} in {'.'.join(parents) or 'config'}")
  try:
    node[last] = value
  except TypeError:
    if not parents:
      raise
    section = node.to_dict()
    section[last] = value
    parent = config
    for part in parents[:-1]:
      parent = parent[part]
    parent[parents[-1]] = ml_collections.ConfigDict(section)
