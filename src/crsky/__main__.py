"""``python -m crsky`` is the ``crsky`` command."""

import sys

from crsky.cli import main

sys.exit(main())
