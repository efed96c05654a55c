"""Dropp: file hosting, sync and sharing for desktop clients."""

__version__ = "0.1.0"
