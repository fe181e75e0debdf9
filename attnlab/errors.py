"""The one exception type the CLI turns into a single clear line on stderr and a non-zero exit."""


class AttnlabError(Exception):
    """A user-facing error: bad input, missing file, wrong config. The message names the culprit.

    `field` is the setting the error is about, as its config or options spell it ("decode.beam", "max_batch");
    the message then reads on from it ("must be at least 1, got 0") and str(error) starts with the field. The
    CLI names the flag instead where the command line gave the value (`attnlab.cli.error_line`).
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field} {message}" if field else message)
        self.message, self.field = message, field
