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


def shown(value: object, limit: int = 80, plain: bool = False) -> str:
    """`repr(value)` (`str` if `plain`) for an error message, cut to `limit` characters: user input never
    floods a message.

    A value nested too deeply to `repr`, or an integer too long to print, is shown by its type.
    """
    try:
        text = str(value) if plain else repr(value)
    except RecursionError:
        return f"<deeply nested {type(value).__name__}>"
    except ValueError:  # an int past Python's digit limit for str()
        return f"<{type(value).__name__} too large to show>"
    if len(text) <= limit:
        return text
    return f"{text[: max(limit - 20, 10)]}... ({len(text)} chars)"
