"""The client side: the local store, the sync engine, the tray service and the shoplist CLI."""
