"""mirror layer (see ARCHITECTURE.md)."""
