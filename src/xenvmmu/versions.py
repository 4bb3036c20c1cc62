"""Xen versions and the per-release behaviour table (Profile).

``XenVersion`` parses what ``xl info`` and operators write (``4.4.1``, ``4.5-unstable``,
``4.17.3-pre``, ``4.2.5-33.el6``) and orders it. ``profile_for`` answers, for one version,
which XSA-97-related behaviours that release has. The answers come from ONE table,
``_BRANCHES`` below (one row per x.y branch, a source per fact); nothing else in xenvmmu
should branch on version numbers.

Some answers cannot be known from a version string: a ``-pre``/``-rcN``/``-unstable``
build sits between releases. Its ``xen_changeset`` date then decides where it can; where
it cannot, the answer is ``Unknown`` with a reason ("could not assess" is a value, not an
exception). Facts the research could not pin down are named fields of ``Assumptions``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import ClassVar, Generic, Literal, TypeVar

from ._branches import (
    BRANCHES,
    Branch,
    Fix,
    Timeline,
)

__all__ = []  # filled at the end of the module
