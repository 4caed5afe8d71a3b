"""Timestamps as they travel: RFC 3339 in UTC, written and read in one place.

Written, a timestamp is always UTC with a ``Z``, the way the Kubernetes API writes them:
``2026-01-02T03:04:05Z`` (``rfc3339(at)``, a ``metav1.Time``: conditions'
``lastTransitionTime``, ``creationTimestamp``) or with a fraction of a second
(``rfc3339(at, digits=6)``, a ``metav1.MicroTime``) where the moment is read back for
arithmetic — ``lastFailure.time`` times the back-off, and a stamp cut to the second would
shorten a one-second back-off by up to all of it.

Read, ``parse`` takes what the runners and the API report: ``Z`` or a numeric offset, any
number of fraction digits (Docker writes nanoseconds; what a float cannot hold is dropped).
A stamp without an offset is refused rather than guessed to be local time.
"""

from __future__ import annotations

import datetime
import re
import time

_RFC3339 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})"
    r"(?:\.(?P<fraction>\d+))?(?P<offset>[Zz]|[+-]\d{2}:\d{2})"
)


def rfc3339(at: float, *, digits: int = 0) -> str:
    """``at`` (seconds since the epoch) in UTC with ``digits`` (0..6) digits of the second.

    The fraction is cut, not rounded, so a stamp never lies in the future of ``at``.
    """
    if not 0 <= digits <= 6:
        raise ValueError(f"digits must be between 0 and 6, not {digits}")
    # YYYY-MM-DDTHH:MM:SS.ffffff (isoformat pads years before 1000; strftime does not)
    written = datetime.datetime.fromtimestamp(at, datetime.UTC).replace(tzinfo=None)
    text = written.isoformat(timespec="microseconds")
    return text[: 19 + (1 + digits if digits else 0)] + "Z"


def parse(stamp: str) -> float:
    """Seconds since the epoch of an RFC 3339 timestamp; ``ValueError`` naming it if it is not.

    Any fraction is read (Docker's nanoseconds included) to the microsecond.
    """
    matched = _RFC3339.fullmatch(stamp) if isinstance(stamp, str) else None
    if matched is None:
        raise ValueError(
            f"{stamp!r} is not an RFC 3339 timestamp (want e.g. 2026-01-02T03:04:05Z: "
            "a date, a time and Z or an offset such as +02:00)"
        )
    offset = matched["offset"].upper()
    fraction = (matched["fraction"] or "")[:6].ljust(6, "0")
    text = f"{matched['date']}T{matched['time']}.{fraction}{'+00:00' if offset == 'Z' else offset}"
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError as error:  # e.g. month 13, hour 25, a leap second
        raise ValueError(f"{stamp!r} is not a valid timestamp: {error}") from None


def now() -> str:
    """The current time, to the second, as Kubernetes writes it."""
    return rfc3339(time.time())
