"""qbo layer (see DESIGN.md)."""
