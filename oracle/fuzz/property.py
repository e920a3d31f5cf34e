"""The property protocol shared by pytest and the campaign runner.

A :class:`Property` draws a case from a hypothesis strategy and checks it against the selected
implementations; a violation raises :class:`PropertyFailure` carrying a :class:`Finding` — what a
person needs to reproduce and understand it (the inputs as files, the outcomes, the first
difference, a quirk id where one is known). The campaign runner shrinks failures with hypothesis,
deduplicates findings by :attr:`Finding.signature` and writes each as a corpus entry.

Properties are named ``P1`` .. ``P8`` (the names findings, corpus entries and reports use); the
constants below say what each tests, and :data:`ALIASES` lets a person call them by meaning
(``--property relocation``).  The properties themselves are in :mod:`btfspec.oracle.fuzz.registry`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from btfspec.oracle.impls.adapter import Implementation, make_impl
from btfspec.oracle.impls.outcome import DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from btfspec.btfgen.reduce import CaseReduction

RELOCATION = "P1"  # the relocated split matches the direct encoding against a perturbed base
ROUNDTRIP = "P2"  # relocation onto the base the split was distilled from gives it back
DIFFERENTIAL = "P3"  # every implementation agrees with libbpf
ACCEPTANCE = "P4"  # successful outputs are accepted by libbpf's parser and the kernel
ROBUSTNESS = "P5"  # mutated blobs never crash or hang; validator, libbpf and kernel agree
SORTED_SPLITS = "P6"  # a distilled split name-sorted as resolve_btfids does relocates like the unsorted one
GUEST_LOADER = "P7"  # the kernel's module loader (kernel-vm, opt-in) relocates like libbpf
RELOCATION_INPUTS = "P8"  # mutated relocation inputs relocate as libbpf relocates them
ALIASES: dict[str, str] = {"relocation": RELOCATION, "roundtrip": ROUNDTRIP, "differential": DIFFERENTIAL,
                           "acceptance": ACCEPTANCE, "robustness": ROBUSTNESS, "sorted": SORTED_SPLITS,
                           "loader": GUEST_LOADER,
                           "relocation-inputs": RELOCATION_INPUTS}
REFERENCES: tuple[str, ...] = ("python", "python-strict")  # the in-tree implementations a check may always use


@dataclass(frozen=True)
class Finding:
    """One violation of a property, with everything needed to reproduce it."""

    property: str  # RELOCATION .. RELOCATION_INPUTS ("P1" .. "P8")
    impl: str  # the implementation at fault ("libbpf", "python", "cmd", ...)
    outcome: str  # short label of what happened ("error -EINVAL (22)", "timeout", "bytes differ", ...)
    first_difference: str  # one line a person can follow
    files: Mapping[str, bytes] = field(default_factory=dict)  # role file name -> bytes (base.btf, split.btf, ...)
    steps: Sequence[Mapping[str, Any]] = ()  # corpus-format steps that replay the case
    quirk: str | None = None  # catalogue id when python-strict recognises it
    description: str = ""  # how the case was built (perturbation, mutation, ...)
    operator: str = ""  # the perturbation or mutation operator that built the case, when the property names one
    shared_with: tuple[str, ...] = ()  # on a libbpf finding: the other implementations that do exactly the same

    @property
    def signature(self) -> tuple[str, str, str, str]:
        """Deduplication key: property, implementation, outcome, first difference."""
        return (self.property, self.impl, self.outcome, self.first_difference)


class PropertyFailure(AssertionError):
    """Raised by a property's check; hypothesis shrinks on it."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(f"{finding.property} [{finding.impl}] {finding.outcome}: {finding.first_difference}")
        self.finding = finding


@dataclass
class Context:
    """What a check may use: the selected implementations, by name, and campaign options."""

    impls: Mapping[str, Implementation]
    profile: str = "kernel-valid"
    known: set[tuple[str, str, str, str]] = field(default_factory=set)  # signatures already reported
    timeout: float = DEFAULT_TIMEOUT  # seconds one implementation call may take
    _references: dict[str, Implementation] = field(default_factory=dict, repr=False, compare=False)

    def get(self, name: str) -> Implementation | None:
        """A selected implementation, or None."""
        return self.impls.get(name)

    def reference(self, name: str) -> Implementation:
        """``python`` or ``python-strict`` (:data:`REFERENCES`): the selected one, else one made once for
        this context through the implementation registry (a check may consult the reference even when
        the campaign does not test it)."""
        if name not in REFERENCES:
            raise KeyError(f"{name} is not a reference implementation ({', '.join(REFERENCES)})")
        got = self.impls.get(name)
        if got is not None:
            return got
        if name not in self._references:
            self._references[name] = make_impl(name, timeout=self.timeout)
        return self._references[name]


@dataclass(frozen=True)
class Property:
    """A named property: a strategy of cases and a check that raises :class:`PropertyFailure`."""

    name: str
    title: str
    strategy: Callable[[Context], SearchStrategy[Any]]
    check: Callable[[Any, Context], None]
    needs: frozenset[str] = frozenset()  # capabilities an implementation must have to take part
    unusable: Callable[[Context], str | None] | None = None  # why the selected implementations cannot run it
    reduction: CaseReduction[Any] | None = None  # how a failing case is reduced after shrinking (btfgen.reduce)

    def applies(self, ctx: Context) -> bool:
        """Whether any selected implementation can take part."""
        return any(self.needs <= impl.capabilities for impl in ctx.impls.values())

    def unusable_reason(self, ctx: Context) -> str | None:
        """Why this property cannot run with ``ctx``'s implementations (None when it can)."""
        why = self.unusable(ctx) if self.unusable is not None else None
        if why is None and not self.applies(ctx):
            why = f"no selected implementation has {', '.join(sorted(self.needs))}"
        return why
