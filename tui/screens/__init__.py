"""Screens of the TUI: dashboard, event detail, batches, GPUs, errors, export."""
