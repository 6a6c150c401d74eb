"""The PySide6 desktop window, shoplist-desktop."""
