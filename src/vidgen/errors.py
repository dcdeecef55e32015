"""The exceptions vidgen raises for problems a user can fix.

They derive from Hydra's ``CompactHydraException`` so that, under ``@hydra.main``, Hydra prints only the
message (one readable paragraph) and exits non-zero instead of a long traceback; the entrypoint writes
the full traceback to the run's log file. Each message names the bad value, what was expected, and
the fix.
"""

from hydra.errors import CompactHydraException


class VidgenError(CompactHydraException):
    """Base class: a problem with the user's configuration, data or files, not a bug in vidgen."""


class ConfigError(VidgenError):
    """A config value, override or combination that cannot work."""


class DataError(VidgenError):
    """A dataset that is missing, incomplete or corrupt."""


class CheckpointError(VidgenError):
    """A checkpoint that is missing, unreadable or from a different model."""


class TrainingDiverged(VidgenError):
    """A training loss became NaN or infinite; the message names the last good checkpoint."""


class FeatureExtractorError(VidgenError):
    """A feature network that does not read the run's own real samples (trained on other data, another
    split or another value range): the sample-quality metrics in its space would mean nothing."""
