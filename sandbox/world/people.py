"""People and companies: names, emails and phones with realistic variation."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from sandbox import names
from sandbox.world.common import MIN, slugify
from sandbox.world.state import EngineState
from sandbox.world.truth import Person


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
        return Person(f"person-{i + 1:07d}", first, last, email, phone, self.co_name[ci], ci)
