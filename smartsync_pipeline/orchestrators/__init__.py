"""orchestrators layer (see DESIGN.md)."""
