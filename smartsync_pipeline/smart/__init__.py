"""smart layer (see ARCHITECTURE.md)."""
