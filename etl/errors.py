"""Errors and exit codes.

Every expected failure is an ``EtlError``; the CLI turns it into ``Error: …`` on
stderr and the exit code of its class. Library code never calls ``sys.exit``.

    EtlError                     exit 1
    ├── ConfigError              exit 2   bad settings or flags
    ├── ConnectionFailed         exit 4   Neo4j unreachable
    │   └── AuthFailed           exit 4   wrong user or password
    ├── LocalServerError         exit 1   `etl db` could not install/start/stop the local server
    ├── StageError               exit 1   export/transform/load could not complete
    │   └── LockHeld             exit 1   another load holds the lock
    └── ValidationFailed         exit 3   a stage failed verification, or invariants failed
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit codes of every `etl` command (README: "Exit codes")."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    VALIDATION = 3
    UNREACHABLE = 4
    INTERRUPTED = 130


class EtlError(Exception):
    """Root of every error the tool expects and explains."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class ConfigError(EtlError):
    exit_code = ExitCode.USAGE


class ConnectionFailed(EtlError):
    exit_code = ExitCode.UNREACHABLE


class AuthFailed(ConnectionFailed):
    pass


class LocalServerError(EtlError):
    pass


class StageError(EtlError):
    pass


class LockHeld(StageError):
    pass


class ValidationFailed(EtlError):
    exit_code = ExitCode.VALIDATION

    def __init__(
        self, message: str, *, problems: list[str] | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.problems = problems or []

    def __str__(self) -> str:
        lines = [self.message, *(f"  - {p}" for p in self.problems)]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)
