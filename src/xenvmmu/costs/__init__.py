"""The cost model: nanoseconds per unit of work (``profile``) and stall estimates."""

from .profile import (
    BOUND_WORDS,
    CostProfile,
    CostProfileError,
    default_profile,
    load_profile,
    resolve_costs,
)

__all__ = [
    "BOUND_WORDS",
    "CostProfile",
    "CostProfileError",
    "default_profile",
    "load_profile",
    "resolve_costs",
]
