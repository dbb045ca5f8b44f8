"""Input validation shared by the public API.

Every check raises ``ValueError`` with one message shape: the parameter, the
allowed range, the value received and how to fix it.
"""

import math
import numbers


class DPKitWarning(UserWarning):
    """Caveat about a method or its settings (a weak delta, a changed model)."""


def invalid(name, allowed, value, fix):
    """Build the ``ValueError`` used for every rejected input."""
    return ValueError(f"{name} must be {allowed}, got {value!r}. {fix}")


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_positive(name, value, fix, *, allow_inf=False):
    """Check a real number strictly above 0 (NaN is rejected)."""
    if not _is_real(value) or math.isnan(value) or value <= 0 or (math.isinf(value) and not allow_inf):
        allowed = "a positive number" if allow_inf else "a positive finite number"
        raise invalid(name, allowed, value, fix)
    return float(value)


def check_non_negative(name, value, fix):
    """Check a finite real number at or above 0."""
    if not _is_real(value) or not math.isfinite(value) or value < 0:
        raise invalid(name, "a finite number >= 0", value, fix)
    return float(value)


def check_open_unit(name, value, fix):
    """Check a real number in the open interval (0, 1)."""
    if not _is_real(value) or math.isnan(value) or not 0 < value < 1:
        raise invalid(name, "in the open interval (0, 1)", value, fix)
    return float(value)


def check_unit_interval(name, value, fix, *, low_open=True, high_open=False):
    """Check a real number in (0, 1], or another choice of open and closed ends."""
    ok = _is_real(value) and not math.isnan(value)
    if ok and low_open:
        ok = value > 0
    elif ok:
        ok = value >= 0
    if ok and high_open:
        ok = value < 1
    elif ok:
        ok = value <= 1
    if not ok:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        interval = f"{left}0, 1{right}"
        raise invalid(name, f"in {interval}", value, fix)
    return float(value)


def check_int(name, value, fix, *, minimum=1):
    """Check an integer at or above ``minimum`` (bools and floats are rejected)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise invalid(name, f"an integer >= {minimum}", value, fix)
    return int(value)


def check_choice(name, value, choices, fix=None):
    """Check that ``value`` is one of ``choices``."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise invalid(name, f"one of {listed}", value, fix or f"Use one of {listed}.")
    return value


def check_exactly_one(**options):
    """Check that exactly one of the keyword options is not None."""
    given = [name for name, value in options.items() if value is not None]
    if len(given) != 1:
        names = " or ".join(options)
        raise ValueError(
            f"exactly one of {names} must be given, got {len(given)} "
            f"({', '.join(given) or 'none'}). Pass one and leave the others as None."
        )
    return given[0]
