"""``python -m reportgen``: the command line.

``python -m`` puts the current directory first on ``sys.path``. Inside a run
directory from elsewhere (``python -m reportgen verify .``) a planted
``jinja2.py`` would then be imported instead of the library, so that entry is
dropped before anything else is imported. The package's ``__init__`` runs
before this file and imports nothing the interpreter has not already loaded.
"""

import os
import sys


def _drop_current_directory() -> None:
    if not sys.flags.safe_path and sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]


def _main() -> int:
    _drop_current_directory()
    from reportgen.cli.main import main

    return main()


if __name__ == "__main__":
    sys.exit(_main())
