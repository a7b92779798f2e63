"""``python -m llamaport.compat.cli`` runs the CLI."""

import sys

from llamaport.compat.cli.main import main

sys.exit(main())
