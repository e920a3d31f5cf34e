"""Large universes (up to thousands of types) from a small, shrinkable recipe.

Hypothesis caps the number of choices one example may make, so a universe of 5,000 types cannot be
drawn decision by decision.  A :class:`Recipe` instead draws a handful of numbers -- size, seed and
shape knobs -- and :func:`expand` runs the same generator as :func:`btfspec.btfgen.generate.universes`
with a :class:`~btfspec.btfgen.chooser.RandomChooser` seeded from the recipe.  Expansion is deterministic
(same recipe and btfspec version, same universe), and shrinking a recipe shrinks the size and turns
knobs and quirks off; the seed itself shrinks towards 0 (a different, not a smaller, universe).

:func:`seeded_case` is the ``btfspec gen --seed`` path: recipe, case and perturbation all come from
``random.Random`` instances seeded with the given seed, with no hypothesis involved.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from btfspec.btfgen import coverage
from btfspec.btfgen.chooser import RandomChooser
from btfspec.btfgen.encoder import Case, make_case
from btfspec.btfgen.features import features
from btfspec.btfgen.generate import QUIRK_SHAPES, Knobs, generate
from btfspec.btfgen.perturb import Perturbation, perturb
from btfspec.btfgen.universe import KERNEL_VALID, LIBBPF_VALID, PROFILES, Universe

MAX_SIZE = 5000


@dataclass(frozen=True)
class Recipe:
    """Everything needed to expand one universe deterministically."""

    profile: str = KERNEL_VALID
    size: int = 50
    seed: int = 0
    module_percent: int = 30
    quirks: frozenset[str] = frozenset()
    quirk_percent: int = 4
    member_max: int = 5
    deep_max: int = 200

    def knobs(self) -> Knobs:
        return Knobs(self.module_percent, self.quirks if self.profile == LIBBPF_VALID else frozenset(),
                     self.quirk_percent, self.member_max, self.deep_max)


def expand(recipe: Recipe) -> Universe:
    """The universe a recipe describes (deterministic)."""
    if recipe.profile not in PROFILES:
        raise ValueError(f"unknown profile {recipe.profile!r}")
    return generate(RandomChooser(random.Random(recipe.seed)), recipe.profile, recipe.size, recipe.knobs())


def expand_case(recipe: Recipe) -> Case:
    """Expand and encode a recipe; records the universe's coverage features."""
    u = expand(recipe)
    coverage.record_all(features(u))
    return make_case(u)


@st.composite
def _recipes(draw: Callable[[st.SearchStrategy[Any]], Any], profile: str, min_size: int,
             max_size: int) -> Recipe:
    quirks: frozenset[str] = frozenset()
    if profile == LIBBPF_VALID:
        quirks = draw(st.frozensets(st.sampled_from(QUIRK_SHAPES)))
    size = draw(st.integers(min_size, max_size))
    return Recipe(profile=profile, size=size, seed=draw(st.integers(0, 2**32 - 1)),
                  module_percent=draw(st.integers(10, 60)), quirks=quirks,
                  quirk_percent=draw(st.integers(1, 10)), member_max=draw(st.integers(0, 8)),
                  deep_max=draw(st.integers(32, max(32, size))))


def recipes(profile: str = KERNEL_VALID, min_size: int = 50, max_size: int = MAX_SIZE) -> st.SearchStrategy[Recipe]:
    """Shrinkable recipes for universes of ``min_size``..``max_size`` types."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}")
    if not 1 <= min_size <= max_size:
        raise ValueError("need 1 <= min_size <= max_size")
    return _recipes(profile, min_size, max_size)


def recipe_cases(profile: str = KERNEL_VALID, min_size: int = 50,
                 max_size: int = MAX_SIZE) -> st.SearchStrategy[Case]:
    """Large :class:`~btfspec.btfgen.encoder.Case` objects via recipes."""
    return recipes(profile, min_size, max_size).map(expand_case)


def seeded_recipe(seed: int, size: int = 50, profile: str = KERNEL_VALID) -> Recipe:
    """The recipe ``btfspec gen --seed`` uses: knobs drawn from ``random.Random(seed)``."""
    rng = random.Random(seed)
    quirks = frozenset(q for q in QUIRK_SHAPES if rng.random() < 0.2) if profile == LIBBPF_VALID else frozenset()
    return Recipe(profile=profile, size=size, seed=rng.getrandbits(32), module_percent=rng.randint(15, 45),
                  quirks=quirks, quirk_percent=rng.randint(2, 8), member_max=rng.randint(2, 6),
                  deep_max=max(32, min(size, 400)))


def seeded_case(seed: int, size: int = 50, profile: str = KERNEL_VALID) -> tuple[Case, bytes, Perturbation]:
    """One case and one perturbed base, deterministically from ``seed``."""
    case = expand_case(seeded_recipe(seed, size, profile))
    base2, p = perturb(case, RandomChooser(random.Random(seed ^ 0x5EED_BA5E)))
    return case, base2, p
