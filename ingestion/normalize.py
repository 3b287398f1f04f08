"""Phones as libphonenumber reads them and names as ASCII keys: the normalizations staging
registers as DuckDB functions (`ingestion.duckdb_plugin`), and the checks and tests call.

Phones parse with `phonenumbers` (Google's libphonenumber metadata): `+` and `00`
international prefixes, national formats read in the record's own region when one is known
(a country, or the time zone it books from), else in the default region. Names transliterate
with `anyascii` (ø→o, ß→ss, æ→ae, ł→l, đ→d, the dotless i→i, and every other script), so a key never
loses a letter that accent stripping leaves alone.

`jaro_winkler` and `damerau_levenshtein` reproduce DuckDB's built-in functions of those names
to the last bit, so a warehouse without them (PostgreSQL, as PL/Python functions) scores
names exactly as DuckDB does.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

from anyascii import anyascii

__all__ = ["damerau_levenshtein", "e164", "fold", "jaro_winkler", "name_key", "region_of", "register"]

DEFAULT_REGION = "US"
_FORMATTING = re.compile(r"^[\s0-9+().\-/]+$")
_NOT_LETTER = re.compile(r"[^a-z]")
_SPACES = re.compile(r"\s+")
# a region hint that spells no country: keep the lookup table small and the answer None
_CACHE = 1 << 18


def fold(text: str | None) -> str | None:
    """Lower-cased ASCII with single spaces ("  Jürgen  Østergaard" -> "jurgen ostergaard")."""
    if text is None:
        return None
    folded = _SPACES.sub(" ", anyascii(text)).strip().lower()
    return folded or None


@functools.lru_cache(maxsize=_CACHE)
def name_key(text: str | None) -> str | None:
    """Letters only, transliterated and lower-cased: the key identity compares names by."""
    if text is None:
        return None
    return _NOT_LETTER.sub("", anyascii(text).lower()) or None


def jaro_winkler(left: str | None, right: str | None) -> float | None:
    """DuckDB's `jaro_winkler_similarity`: Jaro similarity with the common prefix (up to four
    characters) weighted 0.1 above 0.7; 0.0 when either text is empty."""
    if left is None or right is None:
        return None
    if not left or not right:
        return 0.0
    common, transpositions = _jaro_matches(left, right)
    if not common:
        return 0.0
    similarity = (common / len(left) + common / len(right) + (common - transpositions) / common) / 3.0
    if similarity > 0.7:
        prefix = 0
        for a, b in zip(left[:4], right[:4], strict=False):
            if a != b:
                break
            prefix += 1
        # one rounding, as the fused multiply-add of DuckDB's compiled code does it
        similarity = float(Fraction(similarity) + Fraction(prefix * 0.1) * Fraction(1.0 - similarity))
    return similarity


def _jaro_matches(left: str, right: str) -> tuple[int, int]:
    """Characters in common within the match window, and half the transpositions among them."""
    window = max(max(len(left), len(right)) // 2 - 1, 0)
    left_matched, right_matched = [False] * len(left), [False] * len(right)
    common = 0
    for i, char in enumerate(left):
        for j in range(max(0, i - window), min(len(right), i + window + 1)):
            if not right_matched[j] and right[j] == char:
                left_matched[i] = right_matched[j] = True
                common += 1
                break
    transpositions, k = 0, 0
    for i, char in enumerate(left):
        if left_matched[i]:
            while not right_matched[k]:
                k += 1
            transpositions += char != right[k]
            k += 1
    return common, transpositions // 2


def damerau_levenshtein(left: str | None, right: str | None) -> int | None:
    """DuckDB's `damerau_levenshtein`: edits (insert, delete, substitute, swap two adjacent
    characters) from one text to the other, unrestricted."""
    if left is None or right is None:
        return None
    most = len(left) + len(right)
    rows = [[most] * (len(right) + 2)] + [[most] + [0] * (len(right) + 1) for _ in range(len(left) + 1)]
    for i in range(len(left) + 1):
        rows[i + 1][1] = i
    for j in range(len(right) + 1):
        rows[1][j + 1] = j
    last_row: dict[str, int] = {}
    for i in range(1, len(left) + 1):
        last_column = 0
        for j in range(1, len(right) + 1):
            i1, j1 = last_row.get(right[j - 1], 0), last_column
            cost = 1
            if left[i - 1] == right[j - 1]:
                cost, last_column = 0, j
            rows[i + 1][j + 1] = min(
                rows[i][j] + cost,
                rows[i + 1][j] + 1,
                rows[i][j + 1] + 1,
                rows[i1][j1] + (i - i1 - 1) + 1 + (j - j1 - 1),
            )
        last_row[left[i - 1]] = i
    return rows[len(left) + 1][len(right) + 1]


@functools.lru_cache(maxsize=4096)
def region_of(hint: str | None) -> str | None:
    """ISO 3166 alpha-2 region of a hint: a two-letter code, a country name, or an IANA zone."""
    if not hint or not hint.strip():
        return None
    text = hint.strip()
    countries = _countries()
    if len(text) == 2 and text.upper() in countries.values():
        return text.upper()
    if "/" in text:
        return _zones().get(text)
    return countries.get(_country_key(text))


def e164(text: str | None, *regions: str | None) -> str | None:
    """The number in `text` in E.164, or None when no single valid number can be read.

    Read in each region hint in turn (a code, a country or an IANA zone; strongest first:
    the record's own country, the business's default region, then a weak hint such as the
    time zone a booking was made from), taking the first reading that is a valid number;
    then, for a number written with a `00` international prefix, the same digits after a
    `+`. A number written with `+` reads the same in every region. An extension ("x12",
    "ext 2") is dropped.
    """
    if text is None or not text.strip():
        return None
    resolved = tuple(dict.fromkeys(r for r in (region_of(hint) for hint in regions) if r))
    return _e164(text.strip(), resolved or (DEFAULT_REGION,))


@functools.lru_cache(maxsize=_CACHE)
def _e164(text: str, regions: tuple[str, ...]) -> str | None:
    if _FORMATTING.match(text) and "(0" not in text:
        # formatting only (no "(0)" trunk prefix): the same digits and plus sign are the
        # same number in every format, so the CRM's and billing's copies parse once
        return _parsed(re.sub(r"[^0-9+]", "", text), regions)
    return _parsed(text, regions)


@functools.lru_cache(maxsize=_CACHE)
def _parsed(text: str, regions: tuple[str, ...]) -> str | None:
    import phonenumbers

    candidates: list[tuple[str, str | None]] = [(text, r) for r in regions]
    stripped = text.lstrip(" (")
    if stripped.startswith("00"):
        candidates.append(("+" + stripped[2:], None))
    for candidate, region in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return None


@functools.cache
def _countries() -> dict[str, str]:
    """Country name keys -> ISO code, from tzdata's iso3166.tab plus common short names."""
    names: dict[str, str] = {}
    for line in _tzdata_table("iso3166.tab"):
        code, name = line.split("\t", 1)
        names[_country_key(name)] = code
        for part in re.split(r"[()]", name):  # "Britain (UK)" also answers to "UK"
            if part.strip():
                names.setdefault(_country_key(part), code)
    names.update({_country_key(k): v for k, v in _COUNTRY_ALIASES.items()})
    return names


@functools.cache
def _zones() -> dict[str, str]:
    """IANA zone -> the ISO code of the (first) country it serves, from tzdata's zone.tab."""
    zones: dict[str, str] = {}
    for line in _tzdata_table("zone.tab"):
        columns = line.split("\t")
        if len(columns) >= 3:
            zones.setdefault(columns[2], columns[0])
    return zones


def _tzdata_table(name: str) -> Iterable[str]:
    import tzdata

    path = Path(tzdata.__file__).parent / "zoneinfo" / name
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            yield line


def _country_key(name: str) -> str:
    return re.sub(r"[^a-z]", "", anyascii(name).lower())


_COUNTRY_ALIASES = {
    "USA": "US",
    "United States of America": "US",
    "America": "US",
    "United Kingdom": "GB",
    "Great Britain": "GB",
    "England": "GB",
    "Scotland": "GB",
    "Wales": "GB",
    "Northern Ireland": "GB",
    "Deutschland": "DE",
    "Österreich": "AT",
    "Schweiz": "CH",
    "Suisse": "CH",
    "España": "ES",
    "Italia": "IT",
    "Nederland": "NL",
    "Holland": "NL",
    "Danmark": "DK",
    "Sverige": "SE",
    "Norge": "NO",
    "Polska": "PL",
    "Türkiye": "TR",
    "Turkey": "TR",
    "South Korea": "KR",
    "Korea": "KR",
    "Czech Republic": "CZ",
    "Czechia": "CZ",
    "Russia": "RU",
    "UAE": "AE",
}


def register(connection: Any) -> None:
    """Register the normalizations on a DuckDB connection as `trueup_e164(text, regions)`
    (`regions`: region hints separated by commas, strongest first), `trueup_name_key(text)`
    and `trueup_fold(text)` (vectorized over Arrow; a null text is null)."""
    import pyarrow as pa

    def strings(values: Iterable[str | None]) -> Any:
        return pa.array(list(values), type=pa.string())

    def phone(texts: Any, hints: Any) -> Any:
        rows = zip(texts.to_pylist(), hints.to_pylist(), strict=True)
        return strings(e164(text, *(hint or "").split(",")) for text, hint in rows)

    def keys(texts: Any) -> Any:
        return strings(name_key(text) for text in texts.to_pylist())

    def folds(texts: Any) -> Any:
        return strings(fold(text) for text in texts.to_pylist())

    functions: list[tuple[str, Callable[..., Any], int]] = [
        ("trueup_e164", phone, 2),
        ("trueup_name_key", keys, 1),
        ("trueup_fold", folds, 1),
    ]
    for name, fn, arity in functions:
        connection.create_function(
            name,
            fn,
            ["VARCHAR"] * arity,
            "VARCHAR",
            type="arrow",
            null_handling="special",
            side_effects=False,
        )
