"""The one error a malformed episode store raises."""

# the fix for damage no checker can undo: every store error about lost or broken data ends so
REPAIR = "restore the store from a backup or re-collect it"


class InvalidStoreError(ValueError):
    """A path that is not a valid episode store, or a store whose contents disagree.

    The message names the path, the array or episode at fault, and how to fix it. It subclasses
    ``ValueError`` so callers that only know "bad input" still catch it.
    """
