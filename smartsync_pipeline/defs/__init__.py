"""defs layer (see ARCHITECTURE.md)."""
