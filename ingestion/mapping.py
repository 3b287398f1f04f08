"""The business mapping and the rules' settings, read from dlt-style config at run time.

The `[mapping]` part says where each concept lives in this business's accounts (which CRM
property holds the UTM campaign, which Stripe metadata key names the CRM contact, which
invoice statuses count as billed, ...); the `[rules]` part holds the tolerances, windows and
thresholds of the reconciliation rules and the clock of a back-dated world. Both come from
`.dlt/config.toml` (or `secrets.toml`) and `MAPPING__...` / `RULES__...` environment
variables, over defaults that fit a stock HubSpot, Stripe and Calendly account (the same as
the `vars:` of dbt_project.yml). Ingestion reads the CRM properties to load from it, and
every dbt command trueup runs gets it as `--vars` (`dbt_vars`).

Nothing is read at import: `load_mapping()` reads the files and the environment when called.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

SECTIONS = ("mapping", "rules")

# Which CRM property carries each concept, per object, in a stock HubSpot account.
CONTACT_PROPERTIES: dict[str, str | None] = {
    "email": "email",
    "first_name": "firstname",
    "last_name": "lastname",
    "phone": "phone",
    "company": "company",
    "job_title": "jobtitle",
    "lifecycle_stage": "lifecyclestage",
    "owner": "hubspot_owner_id",
    "lead_source": "hs_analytics_source",
    "utm_source": "hs_analytics_source_data_1",
    "utm_campaign": "hs_analytics_source_data_2",
    "google_click_id": "hs_google_click_id",
    "facebook_click_id": "hs_facebook_click_id",
    "country": "country",
    "next_appointment": None,
}
FREE_TEXT_DATES = "free_text_dates"  # a list of contact properties, not one concept
DEAL_PROPERTIES: dict[str, str | None] = {
    "name": "dealname",
    "amount": "amount",
    "currency": "deal_currency_code",
    "stage": "dealstage",
    "pipeline": "pipeline",
    "close_date": "closedate",
    "owner": "hubspot_owner_id",
    "invoice_reference": None,
}
# The CRM object whose properties each mapping part names.
PROPERTY_OBJECTS = {"crm_contact_properties": "contacts", "crm_deal_properties": "deals"}

INVOICE_STATUSES = ("draft", "open", "paid", "uncollectible", "void")  # Stripe's invoice statuses
AD_ATTRIBUTIONS = ("campaign_id", "campaign_name")

# A HubSpot internal property name that dlt keeps as it is in the raw column name
# (`properties__<name>`): lower-case words of letters and digits joined by single underscores.
_PROPERTY_NAME = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
# Stripe metadata keys: up to 40 characters, no square brackets (they nest form parameters).
_METADATA_KEY = re.compile(r"^[^\[\]]{1,40}$")


@dataclass(frozen=True)
class Rule:
    """One setting of the `[rules]` part: its dbt var, kind and default."""

    var: str
    kind: str  # "days", "number", "fraction", "count" or "timestamp"
    default: Any
    meaning: str


RULES: dict[str, Rule] = {
    "settle_window_days": Rule(
        "settle_window_days", "days", 7, "days after a deal is won before a missing invoice is reported"
    ),
    "amount_tolerance_pct": Rule(
        "amount_tolerance_pct", "number", 1.0, "percent a deal amount and its invoice may differ"
    ),
    "invoice_match_days": Rule(
        "invoice_match_days", "days", 45, "days after a won deal within which an unlinked invoice meets it"
    ),
    "appointment_tolerance_minutes": Rule(
        "appointment_tolerance_minutes", "count", 0, "minutes a CRM appointment may differ from its event"
    ),
    "ad_conversion_tolerance_abs": Rule(
        "ad_conversion_tolerance_abs", "count", 2, "conversions a platform day may differ from CRM leads"
    ),
    "ad_conversion_tolerance_pct": Rule(
        "ad_conversion_tolerance_pct", "number", 25.0, "... and the percent (a day differs past both)"
    ),
    "identity_confidence_threshold": Rule(
        "identity_confidence_threshold",
        "fraction",
        0.9,
        "identity links below this confidence go to review and never drive a write-back",
    ),
    "now": Rule("run_started_at", "timestamp", None, "the rules' clock (ISO 8601), for a back-dated world"),
}

MAPPING_DEFAULTS: dict[str, Any] = {
    "crm_contact_properties": {**CONTACT_PROPERTIES, FREE_TEXT_DATES: []},
    "crm_deal_properties": dict(DEAL_PROPERTIES),
    "billing_contact_metadata_key": "hubspot_contact_id",
    "billing_deal_metadata_key": "hubspot_deal_id",
    "invoice_billed_statuses": ["open", "paid"],
    "invoice_collected_statuses": ["paid"],
    "scheduling_company_question": None,
    "scheduling_phone_question": None,
    "ad_attribution": "campaign_id",
    "default_phone_region": "US",
}


class MappingError(ValueError):
    """The mapping or rules configuration is unusable; the message names every problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        listed = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"the mapping configuration has {len(problems)} problem(s):\n{listed}")


@dataclass(frozen=True)
class BusinessMapping:
    """The effective mapping and rules, with where each value came from."""

    mapping: dict[str, Any]
    rules: dict[str, Any]
    origins: dict[str, str] = field(default_factory=dict)  # "mapping.x.y" -> "default", a file, a variable

    def crm_properties(self, object_type: str) -> dict[str, str]:
        """Property name -> the setting that maps it, for one CRM object (mapped ones only)."""
        found: dict[str, str] = {}
        for part, obj in PROPERTY_OBJECTS.items():
            if obj != object_type:
                continue
            for concept, value in self.mapping[part].items():
                for name in value if isinstance(value, list) else [value]:
                    if name:
                        found.setdefault(name, f"mapping.{part}.{concept}")
        return found

    def dbt_vars(self) -> dict[str, Any]:
        """The dbt vars this configuration sets (dbt_project.yml's `vars:` contract)."""
        values: dict[str, Any] = {key: _plain(value) for key, value in self.mapping.items()}
        for key, rule in RULES.items():
            value = self.rules[key]
            if value is not None:
                values[rule.var] = value
        return values

    def sections(self) -> dict[str, dict[str, Any]]:
        """The configuration as TOML tables (null written as an empty string)."""
        return {"mapping": _tomlable(self.mapping), "rules": _tomlable(self.rules)}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return list(value)
    return value


def _tomlable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _tomlable(v) for k, v in value.items()}
    return "" if value is None else value


# -- reading -----------------------------------------------------------------------------------


def project_dir() -> Path:
    """Where dlt looks for its config: `DLT_PROJECT_DIR`, else `.dlt` in the working directory."""
    return Path(os.environ.get("DLT_PROJECT_DIR") or ".") / ".dlt"


def config_files() -> list[Path]:
    """The TOML files read, most important first (dlt's order: secrets.toml, then config.toml)."""
    return [project_dir() / "secrets.toml", project_dir() / "config.toml"]


@dataclass
class _Raw:
    """A value as configured, and where: `MAPPING__X` or `.dlt/config.toml`."""

    value: Any
    origin: str
    from_env: bool = False


def load_mapping(
    environ: Mapping[str, str] | None = None, files: Iterable[Path] | None = None
) -> BusinessMapping:
    """Read and validate the `[mapping]` and `[rules]` configuration now; MappingError when unusable."""
    environ = os.environ if environ is None else environ
    problems: list[str] = []
    layers = [_env_layer(environ, problems)]
    layers += [_file_layer(path, problems) for path in (config_files() if files is None else files)]
    origins: dict[str, str] = {}
    mapping = _resolve_mapping(layers, origins, problems)
    rules = _resolve_rules(layers, origins, problems)
    _cross_checks(mapping, problems)
    if problems:
        raise MappingError(problems)
    return BusinessMapping(mapping, rules, origins)


def _env_layer(environ: Mapping[str, str], problems: list[str]) -> dict[str, dict[str, Any]]:
    """`MAPPING__A[__B]` / `RULES__A` variables as nested tables of _Raw values."""
    layer: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    for variable, text in environ.items():
        head, _, rest = variable.partition("__")
        section = head.lower()
        if section not in SECTIONS or not rest:
            continue
        path = [part.lower() for part in rest.split("__")]
        if len(path) > 2 or not all(path):
            problems.append(f"{variable}: expected {head}__<SETTING> or {head}__<SETTING>__<KEY>")
            continue
        table = layer[section]
        if len(path) == 2:
            inner = table.setdefault(path[0], {})
            if not isinstance(inner, dict):
                problems.append(f"{variable}: {section}.{path[0]} is also set as a whole")
                continue
            inner[path[1]] = _Raw(text, variable, from_env=True)
        else:
            table[path[0]] = _Raw(text, variable, from_env=True)
    return layer


def _file_layer(path: Path, problems: list[str]) -> dict[str, dict[str, Any]]:
    layer: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    if not path.is_file():
        return layer
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        problems.append(f"{path}: cannot be read ({exc})")
        return layer
    for section in SECTIONS:
        table = document.get(section)
        if table is None:
            continue
        if not isinstance(table, dict):
            problems.append(f"{path}: [{section}] must be a table")
            continue
        origin = f"{path.name} [{section}]"
        layer[section] = {key: _wrap(value, origin) for key, value in table.items()}
    return layer


def _wrap(value: Any, origin: str) -> Any:
    if isinstance(value, dict):
        return {key: _Raw(inner, origin) for key, inner in value.items()}
    return _Raw(value, origin)


def _lookup(layers: list[dict[str, dict[str, Any]]], section: str, key: str) -> Any:
    """The first layer's value of a setting (a _Raw, or a dict of _Raw for a table), or None."""
    for layer in layers:
        if key in layer[section]:
            return layer[section][key]
    return None


def _unknown_keys(
    layers: list[dict[str, dict[str, Any]]], section: str, known: Iterable[str], problems: list[str]
) -> None:
    known = list(known)
    for layer in layers:
        for key, raw in layer[section].items():
            if key in known:
                continue
            origin = raw.origin if isinstance(raw, _Raw) else next(iter(raw.values())).origin
            hint = difflib.get_close_matches(key, known, n=1)
            suggestion = f" (did you mean {hint[0]}?)" if hint else f" (known: {', '.join(known)})"
            problems.append(f"{section}.{key} ({origin}): unknown setting{suggestion}")


def _resolve_mapping(
    layers: list[dict[str, dict[str, Any]]], origins: dict[str, str], problems: list[str]
) -> dict[str, Any]:
    _unknown_keys(layers, "mapping", MAPPING_DEFAULTS, problems)
    mapping: dict[str, Any] = {}
    for key, default in MAPPING_DEFAULTS.items():
        name = f"mapping.{key}"
        if key in PROPERTY_OBJECTS:
            mapping[key] = _resolve_properties(layers, key, default, origins, problems)
            continue
        raw = _lookup(layers, "mapping", key)
        origins[name] = "default" if raw is None else _origin(raw)
        if raw is None:
            mapping[key] = _plain(default)
        elif isinstance(raw, dict):
            problems.append(f"{name} ({origins[name]}): expected a value, not a table")
            mapping[key] = _plain(default)
        elif key.endswith("_statuses"):
            mapping[key] = _statuses(name, raw, problems)
        elif key == "ad_attribution":
            mapping[key] = _choice(name, raw, AD_ATTRIBUTIONS, problems)
        elif key == "default_phone_region":
            mapping[key] = _region(name, raw, problems)
        elif key.endswith("_metadata_key"):
            mapping[key] = _optional_text(name, raw, problems, _METADATA_KEY, "a Stripe metadata key")
        else:
            mapping[key] = _optional_text(name, raw, problems, None, "a booking question's text")
    return mapping


def _region(name: str, raw: _Raw, problems: list[str]) -> str:
    """A phone numbering region (ISO 3166 alpha-2, as phonenumbers knows it), upper-cased."""
    import phonenumbers

    value = str(raw.value or "").strip().upper()
    if value not in phonenumbers.SUPPORTED_REGIONS:
        problems.append(
            f"{name} ({raw.origin}): {_shown(raw.value)} is not a country code phone numbers are "
            "read in (ISO 3166 alpha-2, e.g. US, GB, DE)"
        )
        return str(MAPPING_DEFAULTS["default_phone_region"])
    return value


def _origin(raw: Any) -> str:
    if isinstance(raw, _Raw):
        return raw.origin
    origins = sorted({inner.origin for inner in raw.values()})
    return ", ".join(origins)


def _resolve_properties(
    layers: list[dict[str, dict[str, Any]]],
    key: str,
    default: dict[str, Any],
    origins: dict[str, str],
    problems: list[str],
) -> dict[str, Any]:
    """A concept -> property table: each concept from the first layer that sets it, else the default.

    A whole table given in one environment variable (JSON or TOML inline table) counts as that
    layer setting each of its concepts."""
    resolved = _plain(default)
    for concept in default:
        origins[f"mapping.{key}.{concept}"] = "default"
    for layer in reversed(layers):  # least important first, so the most important writes last
        table = layer["mapping"].get(key)
        if table is None:
            continue
        if isinstance(table, _Raw):
            table = _table_from_text(f"mapping.{key}", table, problems)
        for concept, raw in table.items():
            name = f"mapping.{key}.{concept}"
            if concept not in default:
                hint = difflib.get_close_matches(concept, list(default), n=1)
                suggestion = f" (did you mean {hint[0]}?)" if hint else f" (known: {', '.join(default)})"
                problems.append(f"{name} ({raw.origin}): unknown concept{suggestion}")
                continue
            origins[name] = raw.origin
            if concept == FREE_TEXT_DATES:
                resolved[concept] = _property_list(name, raw, problems)
            else:
                resolved[concept] = _optional_text(name, raw, problems, _PROPERTY_NAME, "a property name")
    return resolved


def _table_from_text(name: str, raw: _Raw, problems: list[str]) -> dict[str, _Raw]:
    value = raw.value
    if isinstance(value, str):
        value = _parse_text(value)
    if not isinstance(value, dict):
        problems.append(f"{name} ({raw.origin}): expected a table (JSON object), got {_shown(raw.value)}")
        return {}
    return {concept: _Raw(inner, raw.origin) for concept, inner in value.items()}


def _parse_text(text: str) -> Any:
    """An environment value as JSON or a TOML value, else the text itself."""
    stripped = text.strip()
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    try:
        return tomllib.loads(f"value = {stripped}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _optional_text(
    name: str, raw: _Raw, problems: list[str], pattern: re.Pattern[str] | None, what: str
) -> str | None:
    """A name, or None for "none" (an empty string: TOML has no null)."""
    value = raw.value
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        return None
    if not isinstance(value, str):
        problems.append(f"{name} ({raw.origin}): expected {what} or an empty string, got {_shown(value)}")
        return None
    value = value.strip()
    if pattern is not None and not pattern.match(value):
        rule = (
            "lower-case letters and digits in words joined by single underscores"
            if pattern is _PROPERTY_NAME
            else "1 to 40 characters without square brackets"
        )
        problems.append(f"{name} ({raw.origin}): {value!r} is not {what} ({rule})")
        return None
    return value


def _text_list(raw: _Raw) -> list[Any] | None:
    value = raw.value
    if raw.from_env and isinstance(value, str):
        parsed = _parse_text(value)
        value = parsed if isinstance(parsed, list) else value.split(",")
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return None
    return [v.strip() if isinstance(v, str) else v for v in value if v != "" and not str(v).isspace()]


def _property_list(name: str, raw: _Raw, problems: list[str]) -> list[str]:
    values = _text_list(raw)
    if values is None:
        problems.append(f"{name} ({raw.origin}): expected a list of property names, got {_shown(raw.value)}")
        return []
    names = []
    for value in values:
        checked = _optional_text(name, _Raw(value, raw.origin), problems, _PROPERTY_NAME, "a property name")
        if checked:
            names.append(checked)
    return list(dict.fromkeys(names))


def _statuses(name: str, raw: _Raw, problems: list[str]) -> list[str]:
    values = _text_list(raw)
    if values is None:
        problems.append(f"{name} ({raw.origin}): expected a list of statuses, got {_shown(raw.value)}")
        return []
    statuses = []
    for value in values:
        status = str(value).strip().lower()
        if status not in INVOICE_STATUSES:
            problems.append(
                f"{name} ({raw.origin}): {value!r} is not a Stripe invoice status "
                f"({', '.join(INVOICE_STATUSES)})"
            )
        else:
            statuses.append(status)
    return list(dict.fromkeys(statuses))


def _choice(name: str, raw: _Raw, allowed: tuple[str, ...], problems: list[str]) -> str:
    value = str(raw.value).strip().lower() if raw.value is not None else ""
    if value not in allowed:
        problems.append(f"{name} ({raw.origin}): {raw.value!r} is not one of {', '.join(allowed)}")
        return allowed[0]
    return value


def _cross_checks(mapping: dict[str, Any], problems: list[str]) -> None:
    billed, collected = mapping["invoice_billed_statuses"], mapping["invoice_collected_statuses"]
    if not billed:
        problems.append("mapping.invoice_billed_statuses: name at least one status")
    stray = [s for s in collected if s not in billed]
    if stray:
        problems.append(
            f"mapping.invoice_collected_statuses: {', '.join(stray)} must also count as billed "
            "(mapping.invoice_billed_statuses): an invoice is collected only once it is billed"
        )
    contacts = mapping["crm_contact_properties"]
    if contacts.get("email") is None:
        problems.append("mapping.crm_contact_properties.email: identity needs the contact's email property")


def _resolve_rules(
    layers: list[dict[str, dict[str, Any]]], origins: dict[str, str], problems: list[str]
) -> dict[str, Any]:
    _unknown_keys(layers, "rules", RULES, problems)
    rules: dict[str, Any] = {}
    for key, rule in RULES.items():
        raw = _lookup(layers, "rules", key)
        name = f"rules.{key}"
        origins[name] = "default" if raw is None else _origin(raw)
        if raw is None:
            rules[key] = rule.default
        elif isinstance(raw, dict):
            problems.append(f"{name} ({origins[name]}): expected a value, not a table")
            rules[key] = rule.default
        else:
            rules[key] = _rule_value(name, raw, rule, problems)
    return rules


def _rule_value(name: str, raw: _Raw, rule: Rule, problems: list[str]) -> Any:
    value = raw.value
    if rule.kind == "timestamp":
        return _timestamp(name, raw, problems)
    if isinstance(value, str):
        value = _parse_text(value)
    integral = rule.kind in ("days", "count")
    ok_type = isinstance(value, int) if integral else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type:
        wanted = "a whole number" if integral else "a number"
        problems.append(f"{name} ({raw.origin}): expected {wanted}, got {_shown(raw.value)}")
        return rule.default
    if value < 0 or (rule.kind == "fraction" and value > 1):
        bounds = "between 0 and 1" if rule.kind == "fraction" else "0 or more"
        problems.append(f"{name} ({raw.origin}): must be {bounds}, got {value}")
        return rule.default
    return value if integral else float(value)


def _timestamp(name: str, raw: _Raw, problems: list[str]) -> str | None:
    value = raw.value
    if isinstance(value, datetime):  # a TOML datetime
        moment = value
    elif isinstance(value, str) and value.strip() == "":
        return None
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            problems.append(f"{name} ({raw.origin}): {_shown(value)} is not an ISO 8601 timestamp")
            return None
    if moment.tzinfo is None:
        problems.append(f"{name} ({raw.origin}): {moment.isoformat()} needs a UTC offset (e.g. Z)")
        return None
    return moment.isoformat()
