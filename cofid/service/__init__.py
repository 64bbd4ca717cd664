"""The application layer: transport-neutral use cases over one engine (DESIGN.md)."""
