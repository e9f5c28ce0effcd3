"""Repositories: every query lives here. Each takes the session the service opened."""
