"""One error type for bad input, so every entry point can print a one-line message."""


class FlowcutError(ValueError):
    """Bad input: the message names the field and, where known, the allowed values."""

    def __init__(self, field: str, problem: str, allowed: object | None = None) -> None:
        self.field = field
        msg = f"{field}: {problem}"
        if allowed is not None:
            msg += f" (allowed: {allowed})"
        super().__init__(msg)
