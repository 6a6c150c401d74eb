"""Frozen entry point of `shoplist-server`: nodes, proxies and a local cluster."""

import sys

from server.cli import main

sys.exit(main())
