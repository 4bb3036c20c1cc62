"""The cost model: nanoseconds per unit of work (``profile``) and stall estimates."""

from .profile import CostProfile, CostProfileError, default_profile, load_profile

__all__ = ["CostProfile", "CostProfileError", "default_profile", "load_profile"]
