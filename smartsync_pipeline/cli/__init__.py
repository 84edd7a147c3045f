"""The one command line: ``smartsync``."""
