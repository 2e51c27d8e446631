"""Helpers shared by several test modules, one module per concern; test modules never import each other."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository's root."""
