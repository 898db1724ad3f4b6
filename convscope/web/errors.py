"""The one error the explorer answers with: an HTTP status and a sentence for the page."""


class WebError(Exception):
    """A bad request (4xx) or a missing resource, said in one sentence: what was received
    and what was expected. The app answers ``{"error": message}`` with ``status``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status
