"""Campaign configuration: defaults, durations, names and seeds, the example database, the slot spec."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_TIME = 120.0
DEFAULT_TIMEOUT = 5.0  # seconds per libbpf/external call in a campaign (the CLI default of --timeout)
MIXED = "mixed"  # chunks alternate between the generator profiles
PROFILE_CHOICES: tuple[str, ...] = (MIXED, "kernel-valid", "libbpf-valid")
DEFAULT_PROFILE = MIXED
CHUNK_SECONDS = 3.0  # aim of one hypothesis run
FIRST_CHUNK = 10
FIRST_ROUND_SHARE = 0.05  # of the time budget: the first round (every property once, no shrinking)
MAX_CHUNK = 2000
HYPOTHESIS_EVERY = 5  # every 5th chunk of a property the fast path can draw is hypothesis's (its own bias
# towards small and boundary values); the others are seeded (slot.py).  Each mode sizes its chunks to
# CHUNK_SECONDS from its own rate, so hypothesis gets ~1/5 of the time; odd, so that with the mixed
# profile (which alternates per chunk) hypothesis draws both profiles
PROGRESS_EVERY = 1.0
STOP_POLL = 0.25
SHRINK_GRACE_MAX = 4.0  # seconds a slot may keep shrinking after the time budget
WAIT_AFTER_STOP = 30.0  # seconds the parent waits for stopped slots before ending them (no time budget)
BUDGET_OVERRUN = 10.0  # a campaign with a time budget ends at most this long after it, whatever the slots do
ENDING_SECONDS = 3.0  # of the overrun, kept for collecting, ending the slots and writing the report
RESTART_MIN_SECONDS = 3.0  # a local slot that dies is restarted only while this much of the budget is left
MAX_RESTARTS = 8  # restarts of dead local slots, in all
MAX_PROPERTY_ERRORS = 3  # a slot drops a property whose runs keep failing with errors (not findings)
DEFAULT_SHRINK_SHARE = 0.1  # of the time budget, per finding being shrunk
SHRINK_SECONDS_UNTIMED = 30.0  # per finding being shrunk when the campaign has no time budget


class CampaignError(ValueError):
    """A campaign that cannot start (bad option, unreachable scheduler, nothing to run)."""


_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*\Z")
_UNIT = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str | float | int) -> float:
    """``"90s"``, ``"2m"``, ``"1.5h"``, ``"45"`` (seconds) -> seconds; ValueError otherwise."""
    if isinstance(text, int | float):
        value = float(text)
    else:
        m = _DURATION.match(text)
        if not m:
            raise ValueError(f"not a duration: {text!r} (examples: 90s, 2m, 1h)")
        value = float(m.group(1)) * _UNIT[m.group(2)]
    if value <= 0:
        raise ValueError(f"a duration must be positive, got {text!r}")
    return value


def chunk_profile(profile: str, run: int) -> str:
    """The generator profile of a slot's ``run``-th chunk: ``profile`` itself, or for ``mixed`` the two
    profiles in turn."""
    if profile != MIXED:
        return profile
    return PROFILE_CHOICES[1 + run % 2]


def signature_key(sig: Sequence[str]) -> str:
    """Short stable hash of a finding signature."""
    return hashlib.sha256(json.dumps(list(sig)).encode()).hexdigest()[:10]


def entry_name(sig: Sequence[str]) -> str:
    """The corpus entry name of a finding: ``P3-cmd-1a2b3c4d5e``."""
    prop, impl = sig[0], re.sub(r"[^A-Za-z0-9_.+-]", "_", sig[1])
    return f"{prop}-{impl}-{signature_key(sig)}"


def derive_seed(*parts: object) -> int:
    """A 64-bit seed from the campaign seed and the slot/property/chunk it is for."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little")


def database_key(prop: str, profile: str, impls: Iterable[str]) -> bytes:
    """The example-database key of a property run: a failure depends on the implementations compared."""
    return f"btfspec-campaign:{prop}:{profile}:{'+'.join(sorted(impls))}".encode()


def open_database(spec: str | None) -> Any:
    """A hypothesis example database: ``None`` -> none, ``redis://HOST:PORT[/N]`` -> Redis, else a directory."""
    if not spec:
        return None
    if spec.startswith(("redis://", "rediss://", "unix://")):
        import redis
        from hypothesis.extra.redis import RedisExampleDatabase

        return RedisExampleDatabase(redis.Redis.from_url(spec))
    from hypothesis.database import DirectoryBasedExampleDatabase

    return DirectoryBasedExampleDatabase(spec)


def check_database(spec: str | None) -> None:
    """Raise :class:`CampaignError` when a Redis database does not answer."""
    if spec and spec.startswith(("redis://", "rediss://", "unix://")):
        try:
            import redis
        except ImportError:
            raise CampaignError("--db redis://... needs the redis package (pip install -e '.[campaign]')") from None
        try:
            redis.Redis.from_url(spec, socket_connect_timeout=5).ping()
        except (redis.RedisError, OSError, ValueError) as exc:
            raise CampaignError(f"example database {spec}: {exc}") from None


# --------------------------------------------------------------------------------------------------
# configuration shipped to the slots


@dataclass
class SlotSpec:
    """What one worker slot needs (JSON-serializable)."""

    index: int
    seed: int
    campaign: str
    properties: list[str]
    impls: list[str]
    profile: str = DEFAULT_PROFILE
    timeout: float = DEFAULT_TIMEOUT
    distill_cmd: str | None = None
    relocate_cmd: str | None = None
    serve_cmd: str | None = None
    db: str | None = None
    time_budget: float | None = None
    deadline_epoch: float | None = None  # wall-clock end of the campaign (bounds the slot's own budget)
    quota: int | None = None  # examples per property for this slot (None: until the time budget)
    shrink_share: float = DEFAULT_SHRINK_SHARE  # shrinking time per finding, as a share of the time budget
    known: list[list[str]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SlotSpec:
        return cls(**json.loads(text))


def default_database(corpus_dir: Path) -> str:
    """The default example database: ``.hypothesis/campaign`` beside the corpus directory."""
    return str(corpus_dir.resolve().parent / ".hypothesis" / "campaign")


def quotas(max_examples: int | None, slots: int) -> list[int | None]:
    """``max_examples`` spread over ``slots`` (None: no quota)."""
    if max_examples is None:
        return [None] * slots
    base, extra = divmod(max_examples, slots)
    return [base + (1 if i < extra else 0) for i in range(slots)]


def slot_specs(common: Mapping[str, Any], n: int, seed: int, max_examples: int | None) -> list[SlotSpec]:
    """The specs of ``n`` slots sharing ``common``; each gets its own seed and share of ``max_examples``."""
    return [SlotSpec(index=i, seed=derive_seed(seed, i), quota=q, **common)
            for i, q in enumerate(quotas(max_examples, n)) if q is None or q > 0]
