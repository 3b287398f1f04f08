"""Phones as libphonenumber reads them and names as transliterated keys (ingestion.normalize),
in Python and as the DuckDB functions staging calls."""

from __future__ import annotations

import duckdb
import pytest

from ingestion import normalize


@pytest.mark.parametrize(
    ("text", "hints", "expected"),
    [
        ("(415) 555-2671", (), "+14155552671"),
        ("415.555.2671", ("US",), "+14155552671"),
        ("+1 415 555 2671 ext 5", (), "+14155552671"),
        ("call me at 212 555 0101 x12", (), "+12125550101"),
        ("+44 20 7946 0958", (), "+442079460958"),
        ("+44 (0)20 7946 0958", (), "+442079460958"),
        # the 00 international prefix, whatever the region
        ("0044 20 7946 0958", ("US",), "+442079460958"),
        ("0049 30 1234567", (), "+49301234567"),
        # national formats read in the record's country (a name, a code or a zone)
        ("020 7946 0958", ("United Kingdom",), "+442079460958"),
        ("020 7946 0958", ("GB",), "+442079460958"),
        ("030 1234567", ("Germany",), "+49301234567"),
        ("26 12 34 56", ("DK",), "+4526123456"),
        # a weak hint (the booking's time zone) only after the default region
        ("760 880 5108", (None, "US", "Europe/London"), "+17608805108"),
        ("020 7440 6190", (None, "US", "Europe/London"), "+442074406190"),
        # no single valid number
        ("555-0134", (), None),
        ("123-456-7890", (), None),
        ("415 555 0134 or 415 555 0199", (), None),
        ("ask reception", (), None),
        ("030 1234567", (), None),
        ("", (), None),
        (None, (), None),
    ],
)
def test_e164(text: str | None, hints: tuple[str | None, ...], expected: str | None) -> None:
    assert normalize.e164(text, *hints) == expected


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("Østergaard", "ostergaard"),
        ("Weiß", "weiss"),
        ("Æbelø", "aebelo"),
        ("Łukasz", "lukasz"),
        ("Đorđević", "dordevic"),
        ("I\u015f\u0131k", "isik"),  # Turkish, with a dotless i
        ("José", "jose"),
        ("O'Brien", "obrien"),
        ("  Mary-Ann ", "maryann"),
        ("   ", None),
        (None, None),
    ],
)
def test_name_key_keeps_every_letter(text: str | None, key: str | None) -> None:
    assert normalize.name_key(text) == key


def test_fold_is_case_accents_and_spacing_aside() -> None:
    assert normalize.fold("  JÜRGEN   Weiß ") == normalize.fold("jurgen weiss") == "jurgen weiss"
    assert normalize.fold("Kate Miller") != normalize.fold("Katherine Miller")
    assert normalize.fold(" \t ") is None


@pytest.mark.parametrize(
    ("hint", "region"),
    [
        ("DE", "DE"),
        ("de", "DE"),
        ("Germany", "DE"),
        ("Deutschland", "DE"),
        ("United Kingdom", "GB"),
        ("UK", "GB"),
        ("USA", "US"),
        ("Europe/Copenhagen", "DK"),
        ("America/New_York", "US"),
        ("Atlantis", None),
        ("", None),
        (None, None),
    ],
)
def test_region_of(hint: str | None, region: str | None) -> None:
    assert normalize.region_of(hint) == region


def test_duckdb_functions_normalize_a_column() -> None:
    with duckdb.connect() as con:
        normalize.register(con)
        rows = con.execute(
            "select trueup_e164(phone, hints), trueup_name_key(name), trueup_fold(name) from (values "
            "('0045 26 12 34 56', 'US', 'Søren Østergaard'), "
            "('26 12 34 56', 'Denmark,US', ' SØREN  ostergaard'), "
            "(null, null, null)) as t(phone, hints, name)"
        ).fetchall()
    assert rows == [
        ("+4526123456", "sorenostergaard", "soren ostergaard"),
        ("+4526123456", "sorenostergaard", "soren ostergaard"),
        (None, None, None),
    ]
