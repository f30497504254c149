"""Training: a thin Lightning shell around ``vla.model.VLA`` (the model imports no Lightning)."""

from vla.training.checkpoints import PretrainedCheckpoints
from vla.training.module import VLATrainingModule

__all__ = ["PretrainedCheckpoints", "VLATrainingModule"]
