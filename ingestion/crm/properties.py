"""Which properties each CRM object is read with, and how they fit in a request.

An object is read with its built-in set (settings.py), every property the business mapping
names for it, and the extra properties its `properties` setting asks for: a list of names, or
"all" (every property HubSpot's properties API lists, custom ones included). The mapping is
checked against the properties API at the start of the run: a property it names that the
account does not have stops the run, naming the setting, the property and the object.

A HubSpot URL has a practical length limit (about 8 KB; dlt's and Airbyte's HubSpot
connectors both met 414 answers past it), and an account lists a few hundred properties per
object. The list endpoint takes its properties in the query string, so a list page asks for
as many as fit under `max_url_length` (the built-in and mapped ones first) and the rest of
that page's properties come from one batch read of its ids, whose properties travel in the
POST body. A second list request for the same page would not do: a record archived between
the two shifts the page, while the batch read asks for exactly the ids the page holds.
Searches carry their properties in the body already.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from ingestion.crm.settings import OBJECTS, PROPERTIES_PATH, CrmObject
from ingestion.http import ApiClient, ApiError
from ingestion.mapping import MAPPING_DEFAULTS, PROPERTY_OBJECTS, BusinessMapping, MappingError

log = logging.getLogger(__name__)

ALL = "all"
# The scope a private app needs to read an object's property definitions.
SCHEMA_SCOPES = {
    "contacts": "crm.schemas.contacts.read",
    "companies": "crm.schemas.companies.read",
    "deals": "crm.schemas.deals.read",
}


class MissingPropertyError(MappingError):
    """The mapping names properties the account does not have (one line per setting)."""


@dataclass(frozen=True)
class PropertyPlan:
    """What the run reads of one object: `obj.properties` are declared raw columns and go in
    every request first; `extra` are read too but only become columns once a record has them."""

    obj: CrmObject
    extra: tuple[str, ...] = ()

    @property
    def every(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.obj.properties, *self.extra)))


def requested(setting: Mapping[str, Any] | None) -> dict[str, str | list[str]]:
    """The `properties` source setting per object type: "all" or a list of extra names."""
    chosen: dict[str, str | list[str]] = {}
    known = [obj.name for obj in OBJECTS]
    for name, value in (setting or {}).items():
        if name not in known:
            raise MappingError([f"sources.crm.properties.{name}: not a CRM object ({', '.join(known)})"])
        if isinstance(value, str) and value.strip().lower() == ALL:
            chosen[name] = ALL
        elif isinstance(value, str):
            chosen[name] = [v.strip() for v in value.split(",") if v.strip()]
        elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            chosen[name] = [v.strip() for v in value if v.strip()]
        else:
            problem = f'sources.crm.properties.{name}: expected "all" or a list of property names'
            raise MappingError([f"{problem}, got {value!r}"])
    return chosen


def plan_properties(
    client: ApiClient, mapping: BusinessMapping, setting: Mapping[str, Any] | None
) -> dict[str, PropertyPlan]:
    """The properties of every CRM object for this run; MissingPropertyError when the mapping
    (or the `properties` setting) names one the account does not have."""
    asked = requested(setting)
    plans: dict[str, PropertyPlan] = {}
    problems: list[str] = []
    for obj in OBJECTS:
        mapped = mapping.crm_properties(obj.name)
        wanted = asked.get(obj.name)
        listed = list(wanted) if isinstance(wanted, list) else []
        declared = tuple(dict.fromkeys((*obj.properties, *mapped, *listed)))
        to_check = {name: origin for name, origin in mapped.items() if name not in _stock(obj.name)}
        to_check.update({name: f"sources.crm.properties.{obj.name}" for name in listed})
        existing: list[str] | None = None
        if to_check or wanted == ALL:
            existing = account_properties(client, obj.name)
            problems.extend(_missing(obj.name, to_check, existing))
        extra = tuple(n for n in existing or () if n not in declared) if wanted == ALL else ()
        plans[obj.name] = PropertyPlan(replace(obj, properties=declared), extra)
    if problems:
        raise MissingPropertyError(problems)
    return plans


def _stock(object_type: str) -> set[str]:
    """Properties the default mapping names: HubSpot defines them in every account."""
    names: set[str] = set()
    for part, obj in PROPERTY_OBJECTS.items():
        if obj == object_type:
            for value in MAPPING_DEFAULTS[part].values():
                names.update(value if isinstance(value, list) else [value] if value else [])
    return names


def account_properties(client: ApiClient, object_type: str) -> list[str]:
    """The names the properties API lists for one object (HubSpot's and custom ones)."""
    path = PROPERTIES_PATH.format(object_type=object_type)
    try:
        data = client.get(path, {"archived": "false"})
    except ApiError as exc:
        if exc.status == 403:
            scope = SCHEMA_SCOPES.get(object_type)
            grant = f"the `{scope}` scope" if scope else f"a scope that reads {object_type} properties"
            reason = f"reading the {object_type} properties (to check the mapping) was refused"
            raise MappingError([f"{reason}: grant the private app {grant}"]) from exc
        raise
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        raise ApiError(client.system, "GET", path, 200, "answer without a `results` list")
    return [str(r["name"]) for r in results if isinstance(r, dict) and r.get("name")]


def _missing(object_type: str, wanted: Mapping[str, str], existing: list[str]) -> list[str]:
    have = set(existing)
    problems = []
    for name, origin in wanted.items():
        if name in have:
            continue
        close = difflib.get_close_matches(name, existing, n=3)
        hint = f"; close: {', '.join(close)}" if close else ""
        problems.append(
            f"{origin} names the property {name!r}, which {object_type} do not have in this HubSpot "
            f"account ({len(existing)} properties{hint})"
        )
    return problems


def split_for_url(names: tuple[str, ...], budget: int) -> tuple[list[str], list[str]]:
    """(the names that fit in a `properties=` query parameter of `budget` characters, the rest)."""
    fitted: list[str] = []
    used = len("&properties=")
    for position, name in enumerate(names):
        cost = len(quote(name, safe="")) + (3 if fitted else 0)  # "%2C" between names
        if used + cost > budget:
            return fitted, list(names[position:])
        fitted.append(name)
        used += cost
    return fitted, []
