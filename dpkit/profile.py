"""Run profiles: ``fast`` for CI and nbval, ``full`` for real results.

The profile comes from the ``DPKIT_PROFILE`` environment variable. The fast
profile shrinks epochs, models and grids so that every notebook runs in a minute
or two; numbers that do not depend on training (accountant values, mechanism
maths) are the same in both profiles.
"""

import os

from dpkit._checks import check_choice

PROFILES = ("full", "fast")


def current():
    """Return the active profile: ``DPKIT_PROFILE`` if set, else ``"full"``."""
    value = os.environ.get("DPKIT_PROFILE", "full").strip().lower() or "full"
    return check_choice("DPKIT_PROFILE", value, PROFILES, 'Set DPKIT_PROFILE to "full" or "fast", or unset it.')


def pick(*, full, fast):
    """Return ``fast`` under the fast profile and ``full`` otherwise.

    Examples
    --------
    >>> epochs = pick(full=30, fast=3)
    """
    return fast if current() == "fast" else full
