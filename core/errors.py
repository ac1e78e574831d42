"""Errors raised by services; the edges turn them into 400 responses or form errors."""


class ServiceError(Exception):
    """A request the business rules refuse. `field` names the input at fault when there is one."""

    def __init__(self, message: str, *, field: str | None = None, code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code

    def as_dict(self) -> dict[str, str]:
        return {"detail": self.message, "field": self.field or "", "code": self.code}


class InvalidRanking(ServiceError):
    pass


class AssignmentUnavailable(ServiceError):
    """The assignment can no longer be worked (lease expired and the task went to someone else)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message, field=field, code="assignment_unavailable")
