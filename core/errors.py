"""Exception types shared by the lab; each message names the file, row or column at fault."""


class LabError(Exception):
    """Base class: an error the user can act on (shown as-is in the CLI and the UI)."""


class AudioError(LabError):
    """An audio file cannot be used: unreadable, empty, silent or containing NaN."""


class ManifestError(LabError):
    """A manifest is malformed: missing columns, duplicate ids, bad labels, bad rows."""


class SplitError(LabError):
    """A split is invalid, missing, or leaky where a clean one is required."""
