"""cofi: the call-audit pipeline daemon."""

__version__ = "0.1.0"
