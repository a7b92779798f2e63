"""Turning raw model output into structured results (tool calls)."""
