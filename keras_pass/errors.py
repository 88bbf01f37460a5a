"""Failures the command line reports in one line, and their exit statuses.

Bad input (a `ValueError` or `OSError` about an argument or a file) exits 2;
a training run stopped by a non-finite loss exits 3 (its last good
checkpoint is kept); anything else is an internal failure (exit 1, with
its traceback).
"""

EXIT_BAD_INPUT = 2
EXIT_NON_FINITE_LOSS = 3


class NonFiniteLossError(FloatingPointError):
    """Training stopped because the loss became NaN or infinite."""
