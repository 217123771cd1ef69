"""One error type for bad input: it names the file, the field and what is allowed.

The CLI prints ``str(err)`` as one line and exits with code 2 (see ``mecsplit.cli``)."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input (variant file, instance, result, suite, option).

    ``where`` is the file (or "<option>"), ``field`` a dotted path inside it, ``allowed`` says what
    would be accepted (the fix)."""

    def __init__(self, where: str, field: str, problem: str, allowed: str = ""):
        self.where, self.field, self.problem, self.allowed = str(where), field, problem, allowed
        msg = f"{self.where}: field '{field}': {problem}"
        if allowed:
            msg += f" (allowed: {allowed})"
        super().__init__(msg.translate(ONE_LINE))


# control characters (a newline in a user's key, say) are printed escaped: the message stays one line
ONE_LINE = {c: repr(chr(c))[1:-1] for c in [*range(32), 127, 0x85, 0x2028, 0x2029]}


class SolverUnavailable(RuntimeError):
    """A solver's dependencies are missing or its availability probe failed."""
