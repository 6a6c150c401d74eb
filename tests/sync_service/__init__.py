"""Tests of the local replica side: store, CLI, sync engine and tray service."""
