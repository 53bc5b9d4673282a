"""One-line, actionable errors for users of the pipeline."""


class InvdesignError(Exception):
    """An error caused by user input (config, data files) with a one-line fix.

    The message always names the offending file or config key and how to fix it.
    Workflow scripts print it as a single line instead of a traceback.
    """

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
