"""Run the real CLI in a subprocess, accepting the generated MNIST files of the tests.

Only the expected hashes are swapped (from REPORTGEN_TEST_FILES); everything
else — parsing, signals, exit codes, publishing — is the production code.
"""

import json
import os
import sys

from reportgen import data
from reportgen.cli import main

specs = json.loads(os.environ["REPORTGEN_TEST_FILES"])
data.MNIST_FILES = {name: data.FileSpec(size, sha) for name, (size, sha) in specs.items()}
sys.exit(main())
