"""Frozen entry point of `shoplist`, the command line (the bundle's counterpart of the console script)."""

import sys

from sync_service.cli import main

sys.exit(main())
