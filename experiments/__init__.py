"""The project's programs: ``python -m experiments.<main|study|score|probe|benchmark>``.

Run as a program, the package first checks that this Python can import
gan_jax's dependencies. A Python without them (a new shell where the virtual
environment is not activated) would otherwise end every command, a mistyped
setting included, in an import traceback; instead it gets one paragraph saying
what is missing and how to fix it, and exit status 2 (a user error). Only the
standard library is used here, and only module specs are looked up (nothing is
imported), so the check costs nothing when all is well.
"""

import importlib.util
import os
import sys
import textwrap

# The third-party packages every program imports (setup.py install_requires).
_REQUIRED = ("absl", "jax", "flax", "optax", "chex", "ml_collections", "orbax", "numpy",
             "matplotlib", "tensorflow_datasets")


def _require_dependencies() -> None:
  missing = [m for m in _REQUIRED if importlib.util.find_spec(m) is None]
  if not missing:
    return
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  venv = os.path.join(repo, ".venv")
  activate = (f"activate the environment gan_jax was installed in (`. {venv}/bin/activate`)"
              if os.path.isdir(venv) else "activate the environment gan_jax was installed in")
  message = (f"this Python ({sys.executable}) cannot import gan_jax's dependencies (missing: "
             f"{', '.join(missing)}), so the command was not run and its settings were not "
             f"checked. {activate[0].upper()}{activate[1:]}, or install gan_jax into this one: "
             f"`pip install -e '.[test]'` in {repo}.")
  print(textwrap.fill(message, width=100, initial_indent="error: ", subsequent_indent="  "),
        file=sys.stderr, flush=True)
  sys.exit(2)


# While ``python -m experiments.X`` locates X, sys.argv[0] is '-m'; an import
# from a notebook or the tests is not checked.
if sys.argv[:1] == ["-m"]:
  _require_dependencies()
