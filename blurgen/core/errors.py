"""The one exception type the CLIs turn into a single line and a non-zero exit."""


class BlurgenError(Exception):
    """Bad input or state the user can fix; the message names the file and what to do."""


def first_line(error: BaseException, limit: int = 160) -> str:
    """The first line of a library's error message, for one-line reports; with the error's type where the
    message alone says nothing (a KeyError's key, a bare number such as ``101``) or is empty."""
    text = str(error).strip()
    if not text:
        return type(error).__name__
    line = text.splitlines()[0][:limit].rstrip(":. ")
    if isinstance(error, (KeyError, IndexError)) or not any(c.isalpha() for c in line.strip("'\"")) or len(line) < 8:
        return f"{type(error).__name__}: {line}"
    return line
