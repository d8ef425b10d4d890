"""``python -m amalgamate`` runs the ``amalgamate`` command."""

import sys

from .cli import main

sys.exit(main())
