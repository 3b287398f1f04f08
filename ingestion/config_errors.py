"""A missing or wrong source setting as a few lines: the setting, its variable, its file.

dlt's own message lists every key it looked up (about 60 lines per field); what a person needs
is the setting's name, the environment variable that sets it and the file it can go in.
"""

from __future__ import annotations

from typing import Any

CONFIG_FILE = ".dlt/config.toml"
SECRETS_FILE = ".dlt/secrets.toml"


class SettingError(ValueError):
    """A source setting is missing or cannot be read; the message says how to set it."""

    expected = True  # the CLI prints the message alone


def setting_lines(system: str, field: str, secret: bool, problem: str = "is missing") -> list[str]:
    section = f"sources.{system}"
    variable = f"SOURCES__{system.upper()}__{field.upper()}"
    where = SECRETS_FILE if secret else CONFIG_FILE
    kind = " (secret)" if secret else ""
    return [f"  {section}.{field}{kind} {problem}: set {variable}, or {field} under [{section}] in {where}"]


def _is_secret(config: Any, field: str) -> bool:
    from dlt.common.configuration.specs.base_configuration import is_secret_hint

    hint = type(config).get_resolvable_fields().get(field) if config is not None else None
    return bool(hint is not None and is_secret_hint(hint))


def describe(system: str, exc: BaseException) -> SettingError | None:
    """The SettingError for a dlt configuration error, or None for any other error."""
    from dlt.common.configuration.exceptions import (
        ConfigFieldMissingException,
        ConfigValueCannotBeCoercedException,
    )

    if isinstance(exc, ConfigFieldMissingException):
        lines = [f"{system}: {len(exc.fields)} setting(s) missing"]
        for field in exc.fields:
            lines += setting_lines(system, field, _is_secret(exc.config, field))
        return SettingError("\n".join(lines))
    if isinstance(exc, ConfigValueCannotBeCoercedException):
        expected = getattr(exc.hint, "__name__", str(exc.hint))
        problem = f"cannot be read as {expected}"  # the value itself may be a secret: not shown
        return SettingError(
            "\n".join(
                [f"{system}: a setting is wrong", *setting_lines(system, exc.field_name, False, problem)]
            )
        )
    return None
