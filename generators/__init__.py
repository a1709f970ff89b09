"""Pose-guided person image generators (PG2 first)."""
