"""mirror layer (see DESIGN.md)."""
