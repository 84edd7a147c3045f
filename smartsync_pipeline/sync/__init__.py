"""sync layer (see DESIGN.md)."""
