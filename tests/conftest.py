"""Test set-up: eight fake CPU devices so data-parallel tests run in process."""
import os
import sys

# Must be set before jax initialises its backends. Ordinary jitted code still runs
# on one device; only explicitly sharded computations use all eight.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")

# The configs/ and experiments/ folders are imported from the repository root.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

# absl's test helpers (e.g. parameterized.TestCase.create_tempdir) read flags.
from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position

if not flags.FLAGS.is_parsed():
  flags.FLAGS.mark_as_parsed()
