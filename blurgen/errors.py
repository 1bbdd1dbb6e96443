"""The one exception type the CLIs turn into a single line and a non-zero exit."""


class BlurgenError(Exception):
    """Bad input or state the user can fix; the message names the file and what to do."""
