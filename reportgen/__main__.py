"""``python -m reportgen``: the command line."""

import sys

from reportgen.cli.main import main

sys.exit(main())
