"""One object per task: model factory, loss, targets, encoder/decoder split.

:class:`~med_unlearning.tasks.base.Task` is the protocol shared by every task; the
reconstruction task is :class:`~med_unlearning.tasks.recon.ReconTask`. Strategies and the
training loop only talk to models through a task.
"""

from med_unlearning.tasks.base import Batch, Features, ModelParts, Task

__all__ = ["Batch", "Features", "ModelParts", "Task"]
