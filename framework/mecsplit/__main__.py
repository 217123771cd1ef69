"""``python -m mecsplit`` = the ``mecsplit`` command."""

import sys

from .cli import main

sys.exit(main())
