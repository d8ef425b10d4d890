import sys

from rsa_toolkit.cli.main import main

sys.exit(main())
