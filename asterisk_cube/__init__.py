"""asterisk-cube: a contact center that installs into an existing Asterisk."""

__version__ = "0.1.0"
