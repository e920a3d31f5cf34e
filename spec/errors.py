"""Errors with the location they refer to, shared by every package."""

from __future__ import annotations

import errno as _errno

# Kernel-internal errno values that user space has no name for.
KERNEL_ERRNOS = {524: "ENOTSUPP"}


def errno_text(err: int) -> str:
    """Render a negative errno the way btfspec reports it: ``-EINVAL (22)``."""
    pos = abs(err)
    name = KERNEL_ERRNOS.get(pos) or _errno.errorcode.get(pos, "E?")
    return f"-{name} ({pos})"


def one_line(text: object) -> str:
    """``text`` as one line: any run of white space (newlines included) becomes one space."""
    return " ".join(str(text).split())


class BtfError(Exception):
    """Malformed or unusable BTF; carries where (byte offset, type id) and the errno libbpf would use."""

    def __init__(self, message: str, *, offset: int | None = None, type_id: int | None = None,
                 errno: int = -_errno.EINVAL, rule: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.type_id = type_id
        self.errno = errno
        self.rule = rule

    def __str__(self) -> str:
        where = []
        if self.type_id is not None:
            where.append(f"type [{self.type_id}]")
        if self.offset is not None:
            where.append(f"byte offset {self.offset:#x}")
        loc = (" at " + ", ".join(where)) if where else ""
        return f"{self.message}{loc}"


class InputError(Exception):
    """An input file that cannot be read or recognised (CLI exit status 2)."""
