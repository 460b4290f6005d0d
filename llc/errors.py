"""Errors that carry a message meant for the user.

`ConfigError` is bad input (the CLI exits 2); `LLCError` is a run that cannot
succeed for a reason the user can act on (exit 1). Neither prints a traceback.
"""


class LLCError(Exception):
    """A failure with a one-line, actionable message."""

    exit_code = 1


class ConfigError(LLCError):
    """Invalid user input: names the offending key and what is allowed."""

    exit_code = 2
