"""The one base of structrom's errors.

Every error structrom raises for bad input (a file, field or keyword named with the fix) or for a computation
that cannot be done (a solve that fails, data that cannot be calibrated) derives from :class:`StructromError`,
next to the built-in class that says what kind of failure it is (``ValueError`` for bad input,
``RuntimeError`` for a failed computation), so that ``except ValueError`` keeps working. The command line
prints a ``StructromError`` as one line and exits with code 2; the service maps it to an HTTP 4xx/5xx with a
JSON body. Anything else is a bug.
"""


class StructromError(Exception):
    """Base of every structrom error; subclasses per layer and module (``MeshError``, ``LoadingError``...)."""
