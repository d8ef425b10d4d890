"""``python -m amalgamate`` runs the ``amalgamate`` command."""

import sys

from amalgamate.cli import main

sys.exit(main())
