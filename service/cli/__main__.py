"""``python -m service.cli`` runs the ``gaitid`` command line."""

import sys

from service.cli import main

sys.exit(main())
