"""One root for every error the engine raises on purpose.

Definition errors (a flow file, the config) are raised at load time; runtime errors are
their own classes.  The web layer alone maps them to HTTP codes.
"""

from __future__ import annotations


class IvrError(Exception):
    """Root of all ivr errors."""


class ConfigError(IvrError):
    """The engine's configuration is missing something or says something impossible."""


class FlowError(IvrError):
    """A flow file is wrong.  ``problems`` holds one entry per problem found."""

    def __init__(self, problems: list[FlowProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class FlowProblem:
    """One problem in a flow file, printed as ``file:line: message``."""

    __slots__ = ("file", "line", "node", "message", "severity")

    def __init__(self, file: str, line: int, message: str, *, node: str | None = None,
                 severity: str = "error") -> None:
        self.file = file
        self.line = line
        self.node = node
        self.message = message
        self.severity = severity  # "error" or "warning"

    def __str__(self) -> str:
        where = f"node '{self.node}': " if self.node else ""
        label = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}: {label}{where}{self.message}"

    def __repr__(self) -> str:
        return f"FlowProblem({str(self)!r})"


class FlowRuntimeError(IvrError):
    """A flow did something impossible while running (e.g. too many steps without waiting)."""


class CallError(IvrError):
    """What the ``Call`` port (``ivr.call``) raises when the switch cannot do what was asked.

    Flows, queues and callbacks catch this (and ``CallEnded``), never an adapter's own classes.
    """


class CallEnded(CallError, LookupError):
    """The call is over, so nothing more can be done on it.  ``reason`` says how it ended:
    ``hangup`` (the person hung up), ``engine`` (the engine hung it up), ``transferred`` (it left
    for the dialplan: nobody hung up), ``lost`` (the switch lost it: Asterisk restarted, the
    channel vanished while the engine was not listening)."""

    def __init__(self, message: str, *, reason: str = "hangup") -> None:
        self.reason = reason
        super().__init__(message)


class DialFailed(CallError):
    """A channel we dialled (an agent's phone, a callback) never answered: no answer, busy,
    unreachable.  ``cause`` is the Q.850 cause the switch gave (19 no answer, 17 busy …)."""

    def __init__(self, message: str, *, cause: int | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.cause = cause
        self.status = status


class AriError(CallError):
    """Asterisk's REST interface answered with an error or could not be reached.

    An adapter detail: at the ``Call`` port it is a ``CallError`` like any other."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class AriUnavailable(AriError, ConnectionError):
    """Asterisk could not be reached at all."""


class AriTimeout(AriError, TimeoutError):
    """Asterisk did not answer in time."""


class ChannelGone(AriError, LookupError):
    """The channel no longer exists (hung up): Asterisk answered 404.  Normal during a call's
    life: log quietly.  The adapter turns it into ``CallEnded`` at the port."""


class StoreError(IvrError):
    """The store could not read or write."""


class RegistryUnavailable(IvrError, ConnectionError):
    """The caller registry could not answer (unreachable, an error status, a malformed answer).

    The call goes on as an unknown caller; the message never contains the caller's number.
    """


class RegistryTimeout(RegistryUnavailable, TimeoutError):
    """The caller registry did not answer in time."""


class CallerFileError(IvrError):
    """A caller registry file (CSV) cannot be read at all: missing, not UTF-8, no usable header."""

    def __init__(self, file: str, message: str, *, line: int | None = None) -> None:
        self.file = file
        self.line = line
        self.message = message
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {message}")
