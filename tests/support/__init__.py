"""Helpers shared by the test tiers (the fixtures themselves live in tests/conftest.py)."""
