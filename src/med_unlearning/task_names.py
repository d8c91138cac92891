"""The names of the study's tasks, defined once for every layer.

``recon`` (MRI reconstruction) and ``segmentation`` (3D brain segmentation) name checkpoints'
``task`` field, catalog namespaces, parameter sections and strategy applicability; this
module has no imports so the lowest layers (checkpoint I/O, parameter schemas) can use it.
"""

from __future__ import annotations

__all__ = ["ID_COLUMNS", "TASKS"]

#: Every task, in the study's order (reconstruction first).
TASKS: tuple[str, ...] = ("recon", "segmentation")

#: The column naming a task's items in its splits table (a volume, a subject).
ID_COLUMNS: dict[str, str] = {"recon": "volume_id", "segmentation": "subject_id"}
