"""Domain errors shared by the tiers. They say what went wrong, never an HTTP status: the API layer maps each
class to a status in one table (``api/errors.py``)."""

from __future__ import annotations


class TutorError(Exception):
    """Base of the domain errors. ``message`` is one line a client may read; ``kind`` a stable machine-readable
    name (``code`` a finer one, if any); ``field`` the input at fault; ``retry_after_s`` when to try again."""

    kind = "error"

    def __init__(self, message: str, *, kind: str | None = None, code: str | None = None, field: str | None = None,
                 retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind or type(self).kind
        self.code = code or self.kind
        self.field = field
        self.retry_after_s = retry_after_s


class NotFound(TutorError):
    """The thing asked for does not exist (or is not the caller's to see)."""

    kind = "not_found"


class InvalidInput(TutorError):
    """The input cannot be processed as given; ``field`` names the part at fault."""

    kind = "invalid_request"


class Rejected(TutorError):
    """A model refused the request itself as invalid (too long, bad parameters)."""

    kind = "invalid_request"


class Unavailable(TutorError):
    """A tier or store cannot answer now; retrying after ``retry_after_s`` may succeed."""

    kind = "unavailable"


class Forbidden(TutorError):
    """The caller may not do this (a scope or role it lacks)."""

    kind = "forbidden"


class BudgetExhausted(TutorError):
    """A spending budget has no room left; it resets after ``retry_after_s``."""

    kind = "budget_exceeded"


class WrongRegion(TutorError):
    """The learner's home region is another one: this region's replicas and stores never serve them (the
    gateway refuses or forwards the request, by ``regions.<name>.foreign_learners``)."""

    kind = "wrong_region"

    def __init__(self, subject: str, home: str, field: str = "learner_id") -> None:
        super().__init__(f"{subject} belongs to region {home!r}, whose gateway alone serves them; send the request "
                         "there", field=field)
        self.home = home
