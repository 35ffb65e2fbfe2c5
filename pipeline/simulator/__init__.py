"""The Runware-compatible simulator."""
