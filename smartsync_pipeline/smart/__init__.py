"""smart layer (see DESIGN.md)."""
