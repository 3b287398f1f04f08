"""People and companies: names, emails and phones with realistic variation."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from sandbox import names
from sandbox.world.common import MIN, format_international, format_phone, slugify
from sandbox.world.state import EngineState
from sandbox.world.truth import Person

_PHONE_STYLES_ABROAD = 5  # format_international's styles; the last (national) needs the region


class PeopleGen(EngineState):
    """The real people behind the records and the companies they work for."""

    def company_names(self) -> None:
        rng = self.r_people
        seen: set[str] = set()
        domains: set[str] = set()
        attempts = 0
        while len(self.co_stem) < self.n_companies:
            attempts += 1
            c = rng.choice(names.COMPANY_C)
            stem = f"{rng.choice(names.COMPANY_A)} {rng.choice(names.COMPANY_B)}" + (f" {c}" if c else "")
            if attempts > 4 * self.n_companies:
                stem = f"{stem} {attempts}"
            if stem in seen:
                continue
            seen.add(stem)
            tld = rng.choice(names.DOMAIN_TLDS)
            domain = f"{slugify(stem)}.{tld}"
            while domain in domains:
                domain = f"{slugify(stem)}{rng.randint(2, 999)}.{tld}"
            domains.add(domain)
            suffix = rng.choice(names.LEGAL_SUFFIXES)
            self.co_stem.append(stem)
            self.co_suffix.append(suffix)
            self.co_name.append(f"{stem} {suffix}" if suffix else stem)
            self.co_domain.append(domain)

    def people(self) -> None:
        rng = self.r_people
        rnd, choice = rng.random, rng.choice
        span = self.now - self.start - MIN
        draws = sorted([rnd() for _ in range(self.n_primary)])
        # contact creation grows over the two years (density doubles from start to now)
        self.created = [self.start + int(span * (math.sqrt(1.0 + 3.0 * u) - 1.0)) for u in draws]
        self.created += [self.start + int(span * rnd()) for _ in range(self.n_orphans)]
        for i in range(self.n_primary + self.n_orphans):
            self.persons.append(self._new_person(rng, i, rnd, choice))
        self._plant_namesakes()

    def _new_person(
        self, rng: random.Random, i: int, rnd: Callable[[], float], choice: Callable[[Any], Any]
    ) -> Person:
        ncomp = self.n_companies
        first, last = choice(names.FIRST_NAMES), choice(names.LAST_NAMES)
        ci = min(ncomp - 1, int(ncomp * rnd() ** 1.3))
        key = f"{first} {last}|{ci}"
        while key in self.name_keys:
            last = choice(names.LAST_NAMES)
            key = f"{first} {last}|{ci}"
        self.name_keys.add(key)
        email = self._new_email(rng, first, last, self.co_domain[ci] if rnd() < 0.72 else None)
        phone = self._new_phone(rng) if rnd() < 0.88 else None
        person = Person(f"person-{i + 1:07d}", first, last, email, phone, self.co_name[ci], ci)
        if self.variety.international and self.r_variety.random() < self.variety.international:
            self._move_abroad(person)
        return person

    def _move_abroad(self, p: Person) -> None:
        """Make `p` someone of another country: a name of theirs (unique at the company), a
        mailbox spelling it in ASCII on the same domain, a phone of their country."""
        rng = self.r_variety
        country = rng.choice(sorted(names.INTERNATIONAL))
        firsts, lasts = names.INTERNATIONAL_NAMES[country]
        first, last = rng.choice(firsts), rng.choice(lasts)
        while f"{first} {last}|{p.company_index}" in self.name_keys:
            first, last = rng.choice(firsts), rng.choice(lasts)
        self.name_keys.add(f"{first} {last}|{p.company_index}")
        domain = p.email.rpartition("@")[2]
        corporate = domain == self.co_domain[p.company_index]
        p.first_name, p.last_name = first, last
        p.email = self._new_email(rng, first, last, domain if corporate else None)
        p.country, p.time_zone = country, names.INTERNATIONAL[country][1]
        if p.phone_e164 is not None:
            p.phone_e164 = self._phone_abroad(rng, country)

    def _phone_abroad(self, rng: random.Random, country: str) -> str:
        _, _, dial, _, prefixes, digits, _ = names.INTERNATIONAL[country]
        while True:
            national = rng.choice(prefixes) + "".join(str(rng.randint(0, 9)) for _ in range(digits))
            number = int(dial + national)
            if number not in self.phones:
                self.phones.add(number)
                return f"+{dial}{national}"

    def _plant_namesakes(self) -> None:
        """At a share of companies, a second person takes a colleague's name: two people of
        one name, each with a mailbox of their own on the company's domain."""
        share = self.variety.namesakes
        if not share:
            return
        rng = self.r_variety
        corporate: dict[int, list[int]] = {}
        for i in range(self.n_primary):
            p = self.persons[i]
            if p.email.endswith("@" + self.co_domain[p.company_index]):
                corporate.setdefault(p.company_index, []).append(i)
        for ci in sorted(corporate):
            if len(corporate[ci]) < 2 or rng.random() >= share:
                continue
            a, b = rng.sample(corporate[ci], 2)
            first, second = self.persons[a], self.persons[b]
            second.first_name, second.last_name = first.first_name, first.last_name
            second.email = self._new_email(rng, first.first_name, first.last_name, self.co_domain[ci])
            second.country, second.time_zone = first.country, first.time_zone
            if second.phone_e164 is not None:
                country = second.country
                second.phone_e164 = self._phone_abroad(rng, country) if country else self._new_phone(rng)
            self.namesakes.append((a, b))

    def _phone_text(self, p: Person, national_ok: bool, e164: str | None = None) -> str | None:
        """The person's phone (or `e164`, a number of theirs) as one system holds it: any of
        the ways people write it; a national format only where that system knows the
        person's country (`national_ok`)."""
        number = e164 or p.phone_e164
        if number is None:
            return None
        style = self.noise.phone_style()
        if p.country is None:
            return format_phone(number, style)
        style %= _PHONE_STYLES_ABROAD
        if style == _PHONE_STYLES_ABROAD - 1 and not national_ok:
            style = 0
        return format_international(number, p.country, style)

    def _new_number_of(self, rng: random.Random, p: Person) -> str:
        """Another number of the person's country."""
        return self._phone_abroad(rng, p.country) if p.country else self._new_phone(rng)
