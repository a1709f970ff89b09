"""Pose-guided person image generators behind one interface (``generators.base``); PG2 first."""
