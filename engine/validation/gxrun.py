"""Moved to engine.validation.gx_adapter (kept only for store.py's import until it is rewired)."""
from engine.validation.gx_adapter import jsonable  # noqa: F401
