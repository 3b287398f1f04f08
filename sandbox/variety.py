"""Switches that make a sandbox world look like a real customer's: the patterns of real accounts
that a generator written beside the rules would never produce on its own.

Every switch keeps the ground truth exact: who is who, which anomalies exist and which
differences are only cosmetic (`sandbox/WORLD.md`, "Variety"). A switch at 0 (or False)
changes nothing, so the default world stays as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

SWITCHES: tuple[str, ...] = (
    "b2b_billing",
    "free_text_questions",
    "namesakes",
    "international",
    "equivalent_names",
    "one_sided_values",
    "near_misses",
)


@dataclass(frozen=True)
class Variety:
    """Shares of records (0..1) that follow a real-account pattern, or on/off switches."""

    # companies whose billing customers are billed under the company's legal name ("Acme
    # Apparel Inc"), not the person's: two colleagues may be billed under one name
    b2b_billing: float = 0.0
    # booking forms ask free-text questions ("What would you like to discuss?"), never the company
    free_text_questions: bool = False
    # companies where two different people share one name (different mailboxes)
    namesakes: float = 0.0
    # people with non-ASCII names (ø, ß, æ, ł, đ, the dotless i, accents) and phones of their own country,
    # written with +, 00 or in the national format
    international: float = 0.0
    # billing names that differ from the CRM's only by a nickname, accents or case (no finding)
    equivalent_names: float = 0.0
    # linked people whose phone is on one side only (a gap to fill: phone_mismatch, missing)
    one_sided_values: float = 0.0
    # differences a rule must not flag: invoices within the amount tolerance, a voided invoice
    # re-issued at the right amount, a deal invoiced in two parts
    near_misses: bool = False

    @classmethod
    def everything(cls) -> Variety:
        """Every switch on, at shares a real account of a mid-size business shows."""
        return cls(
            b2b_billing=0.3,
            free_text_questions=True,
            namesakes=0.05,
            international=0.2,
            equivalent_names=0.25,
            one_sided_values=0.05,
            near_misses=True,
        )

    @classmethod
    def only(cls, switch: str) -> Variety:
        """One switch on (at its `everything` share), every other off."""
        if switch not in SWITCHES:
            raise ValueError(f"unknown variety switch {switch!r}; choose from {', '.join(SWITCHES)}")
        return replace(cls(), **{switch: getattr(cls.everything(), switch)})

    @property
    def active(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self) if getattr(self, f.name))

    @classmethod
    def parse(cls, text: str | None) -> Variety:
        """`all`, `none`, or switches separated by commas, each optionally `=share`."""
        if not text or text == "none":
            return cls()
        if text == "all":
            return cls.everything()
        chosen: dict[str, object] = {}
        full = cls.everything()
        for part in text.split(","):
            name, _, share = part.strip().partition("=")
            if name not in SWITCHES:
                raise ValueError(f"unknown variety switch {name!r}; choose from {', '.join(SWITCHES)}")
            value: object = getattr(full, name)
            if share and isinstance(value, bool):
                value = share.lower() not in ("0", "false", "off")
            elif share:
                value = float(share)
            chosen[name] = value
        return replace(cls(), **chosen)  # type: ignore[arg-type]
