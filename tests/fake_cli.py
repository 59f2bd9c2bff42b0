"""Run the real CLI in a subprocess, accepting the generated MNIST files of the tests.

Only the expected hashes are swapped (from REPORTGEN_TEST_FILES), and SIGINT
gets Python's usual handler even where the runner inherited it ignored;
everything else — parsing, signals, exit codes, publishing — is the
production code.  The hashes are swapped on import, outside the main guard,
so that the worker processes a sweep spawns (which import this file again)
accept the same files.
"""

import json
import os
import signal
import sys

from reportgen.cli.main import main
from reportgen.data import idx

_specs = json.loads(os.environ["REPORTGEN_TEST_FILES"])
idx.MNIST_FILES = {name: idx.FileSpec(size, sha) for name, (size, sha) in _specs.items()}

if __name__ == "__main__":  # training workers import this file again: run only once
    # The tests interrupt runs as Ctrl-C in a terminal would. A shell that starts the
    # test runner in the background makes it ignore SIGINT, and children inherit that.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
