"""Helpers for testing proxies and plugins against the real kernel."""
