"""Test set-up: eight fake CPU devices so data-parallel tests run in process."""
import os
import sys
import tempfile

# Must be set before jax initialises its backends. Ordinary jitted code still runs
# on one device; only explicitly sharded computations use all eight (and runs
# of the training loop only when a test asks for them: see below).
# The suite's time is mostly XLA compiling many small programs once each
# (23 of 34 s in a typical engine test): LLVM without its optimization passes
# compiles them about 15% faster. The programs are the same HLO; the machine
# code is less tuned, and its results may differ from the default level's in
# the last bits, as between two CPUs: tests compare runs made at one level
# (subprocesses given this environment inherit it; those that set their own
# XLA_FLAGS, tests/test_multiprocess.py and the notebooks' kernels, set the
# same level and compare only among themselves; tests/test_cli.py drops them,
# and its runs, compared among themselves, compile at XLA's default level).
# The project's own runs keep XLA's default.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8 "
                      "--xla_backend_optimization_level=0")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")
# Many tests compile the same small programs (the tiny run of each engine
# test, the CLI's subprocesses): JAX's persistent compilation cache, shared by
# the test workers and their subprocesses, compiles each once (a tiny run
# drops from ~17 s to ~5 s). It caches XLA executables keyed by the program,
# so what runs is unchanged.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(
    tempfile.gettempdir(), f"gan_jax_test_jit_cache_{os.getuid() if hasattr(os, 'getuid') else 0}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

# The configs/ and experiments/ folders are imported from the repository root.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

# One device per run unless a test asks for more. The eight fake devices are
# for the data-parallel tests, which set train.num_devices (or build their
# mesh) themselves; every other run in this process would otherwise take the
# configs' default of all devices and pay for an 8-way partitioned program on
# two cores (a tiny sweep test: 46 s on 8 devices, 23 s on one). A user's CPU
# run has one device too. Subprocesses are not patched: tests/test_train.py's
# CLI run takes all 8 devices at the real default; tests/test_cli.py's runs
# drop XLA_FLAGS and see the one real CPU device.
from configs import common as _common_configs  # pylint: disable=g-import-not-at-top,wrong-import-position

_toy_config = _common_configs.toy_config


def _one_device_toy_config():
  c = _toy_config()
  c.train.num_devices = 1
  return c


_common_configs.toy_config = _one_device_toy_config

# absl's test helpers (e.g. parameterized.TestCase.create_tempdir) read flags.
from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position

if not flags.FLAGS.is_parsed():
  flags.FLAGS.mark_as_parsed()


# The slow set: long checks (longer statistical runs, the studies at more than
# their smoke-test size) marked ``@pytest.mark.slow``, skipped by the README's
# test command and run before a change lands with ``--slow`` (or GAN_JAX_SLOW=1):
#   python -m pytest -q -n 2 tests --slow -m slow
import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position


def pytest_addoption(parser):
  parser.addoption("--slow", action="store_true", default=False,
                   help="also run the tests marked slow (long checks, minutes each)")


def pytest_configure(config):
  config.addinivalue_line("markers", "slow: a long check, run with --slow")


def pytest_collection_modifyitems(config, items):
  if config.getoption("--slow") or os.environ.get("GAN_JAX_SLOW") == "1":
    return
  skip = pytest.mark.skip(reason="slow: run with --slow (or GAN_JAX_SLOW=1)")
  for item in items:
    if "slow" in item.keywords:
      item.add_marker(skip)


# A folder shared by every test process of one pytest session (the xdist
# workers inherit it from the controller's environment): what several workers
# would each compute, such as a study's --quick run, is made once there under
# a file lock (tests/test_study.py). The process that made it removes it.
_SHARED_ENV = "GAN_JAX_TEST_SHARED"


def _is_xdist_worker(config):
  return hasattr(config, "workerinput")


def pytest_sessionstart(session):
  # Always a fresh folder (never one inherited from an earlier session).
  if not _is_xdist_worker(session.config):
    os.environ[_SHARED_ENV] = tempfile.mkdtemp(prefix="gan_jax_test_shared_")
    session.config._gan_jax_shared = os.environ[_SHARED_ENV]  # pylint: disable=protected-access


def pytest_sessionfinish(session):
  folder = getattr(session.config, "_gan_jax_shared", None)
  if folder:
    import shutil  # pylint: disable=g-import-not-at-top
    shutil.rmtree(folder, ignore_errors=True)
