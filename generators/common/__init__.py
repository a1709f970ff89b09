"""Machinery that generator plug-ins share: part geometry and the part warp (``parts``, ``warping``).

Plug-ins (``generators/<name>/``) import ``generators.base`` and this package, never each other
(an import-linter contract in pyproject.toml).
"""
