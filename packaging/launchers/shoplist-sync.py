"""Frozen entry point of `shoplist-sync`, the tray sync service."""

import sys

from sync_service.tray_service import main

sys.exit(main())
