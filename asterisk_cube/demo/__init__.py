"""The demo: traffic simulator, generated history, test call, mail sink (issue #16)."""
