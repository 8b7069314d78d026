"""Every error Magpie raises on purpose derives from `MagpieError`.

The families below say what a caller can do about an error; each concrete class lives beside
the code that raises it and derives from one family (and, where callers already relied on it,
from the built-in exception it used to be, so `except ValueError` keeps working).

The command line turns a `MagpieError` into one line on stderr and its family's `exit_code`
(`magpie --help` lists them); the Chalice apps turn the input family into 4xx answers.
"""

from __future__ import annotations


class MagpieError(Exception):
    """Base of every error Magpie raises on purpose. `exit_code` is what the CLI exits with."""

    exit_code = 1


class InputError(MagpieError, ValueError):
    """The input is wrong (a payload, a file, an argument): fix the input, do not retry."""

    exit_code = 2


class ConfigurationError(MagpieError):
    """A setting is missing or malformed; the message names it."""

    exit_code = 3


class UnavailableError(MagpieError):
    """A service Magpie depends on could not be reached or refused for now: retry later."""

    exit_code = 4


class NotFoundError(MagpieError, LookupError):
    """The thing asked for does not exist (a file, a person in the gallery, a report)."""

    exit_code = 5


class RefusedError(MagpieError):
    """A service answered, and refused for good (credentials, permissions, policy)."""

    exit_code = 6


EXIT_CODES: dict[int, str] = {
    0: "success",
    MagpieError.exit_code: "failed (see the message)",
    InputError.exit_code: "bad input or arguments",
    ConfigurationError.exit_code: "configuration missing or malformed",
    UnavailableError.exit_code: "a service could not be reached; try again",
    NotFoundError.exit_code: "not found",
    RefusedError.exit_code: "refused by a service (credentials, permissions, policy)",
}
