"""The one error base of storyreel.

Every error a user can cause or meet is a `StoryreelError`: it carries a message, an optional
source location, an optional hint and an exit code. The CLI catches it once, prints `render()`
and exits with `exit_code`. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # a run ended incomplete, or an operational error (network, API refusal)
    USAGE = 2  # anything wrong in the user's files or arguments
    INTERRUPTED = 130


@dataclass(frozen=True, order=True)
class Location:
    """A place in a source file: 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a storyboard, at a place, with an optional hint."""

    message: str
    location: Location | None = None
    hint: str | None = None
    source_line: str | None = None
    warning: bool = False

    def sort_key(self) -> tuple[str, int, int, str]:
        loc = self.location
        return (loc.file, loc.line, loc.col, self.message) if loc else ("", 0, 0, self.message)

    def render(self) -> str:
        head = f"{self.location}: " if self.location else ""
        kind = "warning: " if self.warning else ""
        lines = [f"{head}{kind}{self.message}"]
        if self.source_line is not None and self.location is not None:
            lines.append("    " + printable(self.source_line.rstrip("\n"), self.location.col))
            lines.append("    " + " " * (self.location.col - 1) + "^")
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)


# Showing the user's text: a file may hold anything, a terminal must not receive it as it is.

_CONTROL = {**{c: 0x2400 + c for c in range(32) if c != 9}, 0x7F: 0x2421,
            **{c: 0xFFFD for c in [*range(0x80, 0xA0), *range(0x202A, 0x202F),
                                   *range(0x2066, 0x206A)]}}
_LONG_LINE = 240


def printable(line: str, col: int = 1) -> str:
    """A line of a user's file as it may be shown on a terminal: control characters as their
    visible symbols (one column each, so a caret below still lines up), direction overrides
    as U+FFFD, and cut some way past `col` when very long."""
    shown = line.translate(_CONTROL)
    limit = max(_LONG_LINE, col + 40)
    return shown if len(shown) <= limit else shown[:limit] + " ..."


def text_position(text: str, index: int) -> tuple[int, int]:
    """The 1-based line and column of character `index` of `text`."""
    before = text[:index]
    return before.count("\n") + 1, index - before.rfind("\n")


def undecodable(data: bytes, error: UnicodeDecodeError) -> tuple[int, int, str | None]:
    """Where the first byte of `data` that is not UTF-8 stands: line, column, and that line
    (its undecodable bytes shown as U+FFFD)."""
    before = data[:error.start].decode("utf-8")
    line, col = text_position(before, len(before))
    shown = data.decode("utf-8", errors="replace").splitlines()
    return line, col, shown[line - 1] if line <= len(shown) else None


class StoryreelError(Exception):
    """Base of every error storyreel reports to a user."""

    exit_code: int = ExitCode.FAILED

    def __init__(
        self,
        message: str,
        *,
        location: Location | None = None,
        hint: str | None = None,
        exit_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def render(self) -> str:
        return Problem(self.message, self.location, self.hint).render()


class StoryboardError(StoryreelError):
    """One or more problems in the user's storyboard files: exit 2, all listed, by line."""

    exit_code = ExitCode.USAGE

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=Problem.sort_key)
        first = self.problems[0] if self.problems else Problem("invalid storyboard")
        super().__init__(first.message, location=first.location, hint=first.hint)

    def render(self) -> str:
        return "\n".join(p.render() for p in self.problems)


class UsageError(StoryreelError):
    """Bad command-line arguments or a missing file."""

    exit_code = ExitCode.USAGE


class ApiError(StoryreelError):
    """The API refused or failed a request; carries what the server said."""

    exit_code = ExitCode.FAILED

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        parameter: str | None = None,
        task_uuid: str | None = None,
        status: int | None = None,
        transient: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.parameter = parameter
        self.task_uuid = task_uuid
        self.status = status
        self.transient = transient
        self.retry_after = retry_after

    def render(self) -> str:
        parts = [f"API error {self.code or 'unknown'}"]
        if self.status:
            parts.append(f"(HTTP {self.status})")
        text = " ".join(parts) + f": {self.message}"
        if self.parameter:
            text += f" [parameter: {self.parameter}]"
        if self.task_uuid:
            text += f" [task {self.task_uuid}]"
        return text

    def __repr__(self) -> str:
        return (
            f"ApiError(code={self.code!r}, status={self.status!r}, message={self.message!r}, "
            f"parameter={self.parameter!r}, task_uuid={self.task_uuid!r})"
        )


class MediaError(StoryreelError):
    """A video could not be read, decoded or written."""

    exit_code = ExitCode.FAILED


class RunIncomplete(StoryreelError):
    """A run ended with failed or skipped shots."""

    exit_code = ExitCode.FAILED


# Errors of the machine, not of the user's files: a full disk, a quota, a file-size limit.
_RUN_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})
_REASONS = {
    errno.EEXIST: "a file is in the way where a folder should be",
    errno.ENOTDIR: "a file is in the way where a folder should be",
    errno.EISDIR: "it is a folder, not a file",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for this system's file-size limit",
}


def os_reason(exc: OSError) -> str:
    """Why a file operation failed, in the words every file error uses."""
    return _REASONS.get(exc.errno or 0) or (exc.strerror or str(exc)).lower()


class FileError(StoryreelError):
    """A file or folder that cannot be read or written: exit 2 when the user's files are in
    the way (a read-only folder, a file where a folder should be), 1 when the machine is (a
    full disk)."""

    @classmethod
    def from_os(cls, exc: OSError, doing: str, hint: str | None = None) -> FileError:
        """`doing` says what failed, e.g. "write the lock file story.lock"."""
        reason = os_reason(exc)
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) not in doing else ""
        code = ExitCode.FAILED if exc.errno in _RUN_ERRNOS else ExitCode.USAGE
        return cls(f"cannot {doing}{where}: {reason}", hint=hint, exit_code=code)
