"""Domain errors. They carry a user-facing message and know nothing of HTTP; api/errors.py maps them to statuses.

CrongraphError
  + NotFound        the thing named does not exist (404)
  + Conflict        it exists already, or the thread is busy and the strategy says reject (409)
  + InvalidInput    well-formed but not acceptable: bad schedule, time zone, id (422)
  + BadRequest      a combination the contract refuses (400)
  + Denied          the project's auth handlers refused it (403, or the 4xx status a handler chose)
  + Unavailable     the server's configuration keeps it from doing this now, e.g. embeddings that could not be
                    built (503); the detail says what the operator must fix
"""


class CrongraphError(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(CrongraphError):
    pass


class Conflict(CrongraphError):
    pass


class InvalidInput(CrongraphError):
    pass


class BadRequest(CrongraphError):
    pass


class Denied(CrongraphError):
    def __init__(self, detail: str, status: int = 403, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.headers = headers or {}


class Unavailable(CrongraphError):
    pass
