"""The one exception type the CLIs turn into a single line and a non-zero exit."""


class BlurgenError(Exception):
    """Bad input or state the user can fix; the message names the file and what to do."""


def first_line(error: BaseException, limit: int = 160) -> str:
    """The first line of a library's error message (or its type's name), for one-line reports."""
    text = str(error).strip()
    return text.splitlines()[0][:limit].rstrip(":. ") if text else type(error).__name__
