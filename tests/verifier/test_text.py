"""``verifier.text.iso_time``: the one wording of a moment as people read it, which every layer shares."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from verifier.text import iso_time

ROOT = Path(__file__).resolve().parents[2]
FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def test_a_moment_is_worded_in_one_place() -> None:
    """The audit report's ``generated_at``, the deployment record's ``deployed_at`` and a manifest's
    ``created_at`` each spelled the current time with a format code of their own, which a change of the
    wording in ``iso_time`` would have left behind."""
    spelled = sorted(
        path.relative_to(ROOT).as_posix()
        for package in ("verifier", "node", "api", "dxl")
        for path in (ROOT / package).rglob("*.py")
        if FORMAT in path.read_text(encoding="utf-8")
    )
    assert spelled == ["verifier/text.py"]


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59), timezones=st.just(UTC)
    )
)
def test_a_moment_reads_as_its_own_format_code_spelled_it(moment: datetime) -> None:
    """What the report, the deployment record and a manifest hold is what they held: read back (``dxl audit
    verify``, ``load_deployment``, ``parse_manifest``) as before."""
    assert iso_time(int(moment.timestamp())) == moment.strftime(FORMAT)
