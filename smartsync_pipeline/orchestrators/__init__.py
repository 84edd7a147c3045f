"""orchestrators layer (see ARCHITECTURE.md)."""
