"""2fauth-monitor: a synthetic end-to-end monitor for 2FAuth instances."""

__version__ = "0.1.0"
