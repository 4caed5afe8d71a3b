"""RFC 3339 timestamps: written in UTC with Z, read from what Docker and Kubernetes report."""

from __future__ import annotations

import datetime
import json
import logging
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlplatform import logs
from mlplatform.models import timestamps

# 2026-01-02T03:04:05.678901Z, as seconds since the epoch.
MOMENT = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC).timestamp()
# 1900 to 2100, in seconds since the epoch (where a float still holds microseconds).
EPOCHS = st.floats(min_value=-2_208_988_800.0, max_value=4_102_444_800.0)


def test_written_in_utc_with_z_to_the_second_by_default() -> None:
    assert timestamps.rfc3339(MOMENT) == "2026-01-02T03:04:05Z"


@pytest.mark.parametrize(
    ("digits", "written"),
    [(3, "2026-01-02T03:04:05.678Z"), (6, "2026-01-02T03:04:05.678901Z")],
)
def test_the_fraction_is_cut_to_the_digits_asked_never_rounded_up(
    digits: int, written: str
) -> None:
    assert timestamps.rfc3339(MOMENT, digits=digits) == written


def test_the_year_is_written_with_four_digits_from_the_year_1_to_9999() -> None:
    assert timestamps.rfc3339(-62_135_596_800.0) == "0001-01-01T00:00:00Z"
    assert timestamps.rfc3339(253_402_300_799.0, digits=3) == "9999-12-31T23:59:59.000Z"
    assert timestamps.parse("0001-01-01T00:00:00Z") == -62_135_596_800.0


@pytest.mark.parametrize("digits", [-1, 7, 9])
def test_more_digits_than_a_float_holds_are_refused(digits: int) -> None:
    with pytest.raises(ValueError, match="digits must be between 0 and 6"):
        timestamps.rfc3339(MOMENT, digits=digits)


@given(EPOCHS)
def test_a_microsecond_stamp_reads_back_to_its_moment(at: float) -> None:
    assert timestamps.parse(timestamps.rfc3339(at, digits=6)) == pytest.approx(at, abs=2e-6)


@given(EPOCHS)
def test_a_second_stamp_reads_back_to_the_whole_second_not_after_the_moment(at: float) -> None:
    back = timestamps.parse(timestamps.rfc3339(at))
    assert back == float(int(back))
    assert at - 1 < back <= at + 1e-6


@pytest.mark.parametrize(
    "stamp",
    ["2026-01-02T03:04:05Z", "2026-01-02t03:04:05z", "2026-01-02 03:04:05Z"],
)
def test_z_in_either_case_and_a_space_for_t_are_read_as_rfc_3339_allows(stamp: str) -> None:
    assert timestamps.parse(stamp) == int(MOMENT)


def test_dockers_nanoseconds_are_read_to_the_microsecond() -> None:
    assert timestamps.parse("2026-01-02T03:04:05.678901234Z") == pytest.approx(MOMENT, abs=1e-6)
    assert timestamps.parse("2026-01-02T03:04:05.6Z") == pytest.approx(int(MOMENT) + 0.6)


@pytest.mark.parametrize(
    ("stamp", "hours"),
    [
        ("2026-01-02T05:04:05+02:00", 0),
        ("2026-01-01T22:34:05-04:30", 0),
        ("2026-01-02T03:04:05-01:00", 1),
    ],
)
def test_an_offset_names_the_same_moment_in_another_zone(stamp: str, hours: int) -> None:
    assert timestamps.parse(stamp) == int(MOMENT) + hours * 3600


@pytest.mark.parametrize(
    "stamp",
    [
        "",
        "yesterday",
        "2026-01-02",  # no time
        "2026-01-02T03:04:05",  # no offset: local time would be a guess
        "2026-01-02T03:04Z",  # no seconds
        "2026-01-02T03:04:05.Z",  # a dot without digits
        "2026-01-02T03:04:05+0200",  # an offset without its colon
        " 2026-01-02T03:04:05Z",
        "2026-01-02T03:04:05Z trailing",
    ],
)
def test_what_is_not_rfc_3339_is_refused_naming_the_stamp(stamp: str) -> None:
    with pytest.raises(ValueError, match="is not an RFC 3339 timestamp") as refused:
        timestamps.parse(stamp)
    assert repr(stamp) in str(refused.value)


@pytest.mark.parametrize("stamp", ["2026-13-02T03:04:05Z", "2026-01-02T25:04:05Z"])
def test_a_well_formed_stamp_of_no_real_moment_is_refused(stamp: str) -> None:
    with pytest.raises(ValueError, match="is not a valid timestamp"):
        timestamps.parse(stamp)


def test_now_is_the_current_second() -> None:
    before = int(time.time())
    stamp = timestamps.now()
    after = time.time()
    assert stamp.endswith("Z") and "." not in stamp
    assert before <= timestamps.parse(stamp) <= after


def test_a_json_log_line_carries_its_time_in_rfc_3339_to_the_millisecond() -> None:
    record = logging.LogRecord("mlplatform.test", logging.INFO, __file__, 1, "hello", (), None)
    record.created = MOMENT
    entry = json.loads(logs.JsonFormatter().format(record))
    assert entry["time"] == "2026-01-02T03:04:05.678Z"
