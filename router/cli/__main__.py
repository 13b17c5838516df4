"""``python -m router.cli`` runs the ``supersub`` command line."""

import sys

from ._main import main

sys.exit(main())
