"""Exceptions shared across concerns."""

from __future__ import annotations


class StatusError(Exception):
    """A failure that maps to an HTTP status (the gateway turns it into the JSON error shape)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
