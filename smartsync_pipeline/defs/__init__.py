"""defs layer (see DESIGN.md)."""
