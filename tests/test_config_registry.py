"""Configs by name (gan_jax.config_registry) and their packaging."""

import os
import sys
import types

import ml_collections
import pytest

from gan_jax import config_registry
from gan_jax import errors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_config_file_is_a_name():
  files = {f[:-3] for f in os.listdir(os.path.join(ROOT, "configs"))
           if f.endswith(".py") and not f.startswith("_")}
  names = config_registry.config_names()
  # common.py and images.py hold shared pieces, no get_config.
  assert set(names) == files - {"common", "images"}
  assert names == sorted(names)


@pytest.mark.parametrize("name", config_registry.config_names())
def test_each_config_builds_by_name(name):
  config = config_registry.get_config(name)
  assert isinstance(config, ml_collections.ConfigDict)
  assert "train" in config


def test_variant_and_file_form():
  reg = config_registry.get_config("roth_submanifold:reg")
  unreg = config_registry.get_config("roth_submanifold:unreg")
  assert reg.game.penalty.name == "roth_js" and unreg.game.penalty.name == "none"
  # The command line's file form names the same config.
  same = config_registry.get_config("configs/roth_submanifold.py:unreg")
  assert same.to_dict() == unreg.to_dict()
  assert config_registry.get_config("betagan_mixture_3d:10").data.name == "mixture_3d_10"
  # A fresh config each time: changing one leaves the next untouched.
  reg.train.num_steps = 7
  assert config_registry.get_config("roth_submanifold:reg").train.num_steps != 7


def test_unknown_name_lists_the_valid_ones():
  with pytest.raises(errors.ConfigError) as e:
    config_registry.get_config("roth_submanifld:reg")
  message = str(e.value)
  assert "did you mean 'roth_submanifold'" in message
  for name in config_registry.config_names():
    assert name in message
  with pytest.raises(errors.ConfigError, match="valid: "):
    config_registry.get_config("")
  # A helper module is not a config.
  with pytest.raises(errors.ConfigError, match="unknown config 'common'"):
    config_registry.get_config("common")


def test_unknown_variant_is_the_configs_own_error():
  with pytest.raises(ValueError, match="variant must be one of"):
    config_registry.get_config("roth_submanifold:nope")


def test_a_foreign_configs_package_is_refused(monkeypatch):
  foreign = types.ModuleType("configs")
  foreign.__path__ = []
  monkeypatch.setitem(sys.modules, "configs", foreign)
  with pytest.raises(ImportError, match="not gan_jax's experiment configs"):
    config_registry.config_names()


def test_setup_installs_the_configs_package(monkeypatch):
  """``pip install`` puts configs/ beside gan_jax, so names load outside a checkout."""
  from distutils.core import run_setup  # pylint: disable=g-import-not-at-top,deprecated-module
  monkeypatch.chdir(ROOT)
  dist = run_setup(os.path.join(ROOT, "setup.py"), stop_after="init")
  assert "configs" in dist.packages and "gan_jax" in dist.packages
  test_extra = " ".join(dist.extras_require["test"])
  for requirement in ("nbclient", "nbformat", "ipykernel"):
    assert requirement in test_extra


def test_set_field_across_types():
  c = config_registry.get_config("roth_submanifold:reg")
  config_registry.set_field(c, "train.num_steps", 7)  # same type: in place
  assert c.train.num_steps == 7
  schedule = {"name": "gamma_decay", "gamma_0": 2.0, "total_steps": 7}
  config_registry.set_field(c, "game.penalty.weight", schedule)  # number -> mapping
  assert isinstance(c.game.penalty.weight, ml_collections.ConfigDict)
  assert c.game.penalty.weight.to_dict() == schedule
  assert c.game.penalty.name == "roth_js"  # the rest of the section is kept
  config_registry.set_field(c, "game.penalty.weight", 0.5)  # mapping -> number
  assert c.game.penalty.weight == 0.5
  with pytest.raises(KeyError, match="no field 'weigth' in game.penalty"):
    config_registry.set_field(c, "game.penalty.weigth", 1.0)
