"""The one exception type the CLI turns into a single clear line on stderr and a non-zero exit."""


class AttnlabError(Exception):
    """A user-facing error: bad input, missing file, wrong config. The message names the culprit."""
