"""Frozen entry point of `shoplist-desktop`, the window (`desktop.app:main`, as the console script)."""

import sys

from desktop.app import main

sys.exit(main())
