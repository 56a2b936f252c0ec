"""Helpers shared by tests: real servers and data locations (no mocks)."""
