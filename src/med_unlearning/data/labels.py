"""The MRBrainS18 label legend and the label mappings a segmentation study trains on.

MRBrainS18 ``segm.nii.gz`` files hold integer labels 0–10 (docs/studies.md §2)::

    0 background        4 WM lesions         8 brainstem
    1 cortical GM       5 extracerebral CSF  9 infarction
    2 basal ganglia     6 ventricles        10 other
    3 white matter      7 cerebellum

A :class:`LabelMapping` turns those raw labels into the classes a model is trained on, with
:data:`IGNORE_INDEX` for voxels that count neither in the loss nor in the metrics:

- ``evaluation_8`` — the challenge's evaluation classes 1–8 (+ background); infarction (9) and
  other (10) are ignored, as in the challenge, which masks them out of its scores.
- ``tissues_3`` — the three tissues of the MRBrainS13-style evaluation: GM = 1+2, WM = 3+4,
  CSF = 5+6. Cerebellum (7) and brainstem (8) mix grey and white matter and are not part of
  that evaluation, so they are ignored (as are 9 and 10) rather than called background: a
  model is then neither rewarded nor punished for what it predicts there.
- ``binary`` — brain (labels 1–8) vs background; 9 and 10 ignored for the same reason as in
  ``evaluation_8``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "IGNORE_INDEX",
    "LABEL_MAPPINGS",
    "MRBRAINS_LEGEND",
    "LabelMapping",
    "LabelValueError",
    "check_label_values",
    "get_label_mapping",
]

#: Class index of voxels excluded from the loss and the metrics (fits a uint8 label file).
IGNORE_INDEX = 255

#: Raw MRBrainS18 labels and their names.
MRBRAINS_LEGEND: dict[int, str] = {
    0: "background",
    1: "cortical_gm",
    2: "basal_ganglia",
    3: "white_matter",
    4: "wm_lesions",
    5: "csf",
    6: "ventricles",
    7: "cerebellum",
    8: "brainstem",
    9: "infarction",
    10: "other",
}


class LabelValueError(ValueError):
    """A label file holds values outside the legend; the message names subject and file."""


@dataclass(frozen=True)
class LabelMapping:
    """A mapping from raw MRBrainS18 labels to training classes.

    Attributes:
        name: the mapping's name in parameters (e.g. ``evaluation_8``).
        class_names: the name of each training class; index 0 is the background.
        raw_to_class: raw label -> class index, or :data:`IGNORE_INDEX`. Every raw label of
            :data:`MRBRAINS_LEGEND` must be present.
    """

    name: str
    class_names: tuple[str, ...]
    raw_to_class: Mapping[int, int] = field(repr=False)

    def __post_init__(self) -> None:
        missing = sorted(set(MRBRAINS_LEGEND) - set(self.raw_to_class))
        if missing:
            raise ValueError(f"Label mapping {self.name!r} does not map raw labels {missing}")
        bad = {
            raw: cls
            for raw, cls in self.raw_to_class.items()
            if cls != IGNORE_INDEX and not 0 <= cls < len(self.class_names)
        }
        if bad:
            raise ValueError(
                f"Label mapping {self.name!r} maps to classes outside 0..{self.num_classes - 1}: "
                f"{bad}"
            )

    @property
    def num_classes(self) -> int:
        """Number of output channels of a model trained with this mapping (background included)."""
        return len(self.class_names)

    @property
    def ignored_raw_labels(self) -> tuple[int, ...]:
        """Raw labels that become :data:`IGNORE_INDEX`."""
        return tuple(sorted(raw for raw, cls in self.raw_to_class.items() if cls == IGNORE_INDEX))

    def lookup_table(self) -> np.ndarray:
        """``table[raw] = class`` for every raw label of the legend (uint8)."""
        table = np.full(max(MRBRAINS_LEGEND) + 1, IGNORE_INDEX, dtype=np.uint8)
        for raw, cls in self.raw_to_class.items():
            table[raw] = cls
        return table

    def apply(self, raw: np.ndarray, *, subject: str = "?", file: str = "?") -> np.ndarray:
        """Map a raw label volume to class indices (uint8, :data:`IGNORE_INDEX` where ignored).

        Args:
            raw: integer-valued label volume (any integer or float dtype holding integers).
            subject: subject id, for the error message.
            file: label file name, for the error message.

        Raises:
            LabelValueError: when ``raw`` holds a value that is not a label of the legend
                (negative, non-integer, or above 10), naming subject, file and the values.
        """
        check_label_values(raw, subject=subject, file=file)
        return self.lookup_table()[np.asarray(raw).astype(np.int64)]

    def __repr__(self) -> str:
        mapped = {
            name: [raw for raw, c in sorted(self.raw_to_class.items()) if c == cls]
            for cls, name in enumerate(self.class_names)
        }
        ignored = list(self.ignored_raw_labels)
        return f"LabelMapping({self.name!r}, classes={mapped}, ignored={ignored})"


def check_label_values(raw: np.ndarray, *, subject: str = "?", file: str = "?") -> None:
    """Raise :class:`LabelValueError` unless every value of ``raw`` is a legend label."""
    values = np.unique(np.asarray(raw))
    legend = np.array(sorted(MRBRAINS_LEGEND))
    unknown = values[~np.isin(values, legend)]
    if unknown.size:
        shown = ", ".join(f"{value:g}" for value in unknown[:10])
        more = f" (and {unknown.size - 10} more)" if unknown.size > 10 else ""
        raise LabelValueError(
            f"Subject {subject!r}: label file {file!r} holds values [{shown}]{more} outside the "
            f"MRBrainS18 legend 0..{max(MRBRAINS_LEGEND)} "
            f"({', '.join(f'{k}={v}' for k, v in MRBRAINS_LEGEND.items())})."
        )


def _mapping(
    name: str, class_names: tuple[str, ...], groups: dict[int, tuple[int, ...]]
) -> LabelMapping:
    raw_to_class = dict.fromkeys(MRBRAINS_LEGEND, IGNORE_INDEX)
    raw_to_class[0] = 0
    for cls, raws in groups.items():
        for raw in raws:
            raw_to_class[raw] = cls
    return LabelMapping(name=name, class_names=class_names, raw_to_class=raw_to_class)


#: The label mappings selectable in parameters (``segmentation.data.label_mapping``).
LABEL_MAPPINGS: dict[str, LabelMapping] = {
    "evaluation_8": _mapping(
        "evaluation_8",
        tuple(MRBRAINS_LEGEND[raw] for raw in range(9)),
        {raw: (raw,) for raw in range(1, 9)},
    ),
    "tissues_3": _mapping(
        "tissues_3",
        ("background", "gm", "wm", "csf"),
        {1: (1, 2), 2: (3, 4), 3: (5, 6)},
    ),
    "binary": _mapping("binary", ("background", "brain"), {1: tuple(range(1, 9))}),
}


def get_label_mapping(name: str) -> LabelMapping:
    """The label mapping called ``name``.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    if name not in LABEL_MAPPINGS:
        raise ValueError(f"Unknown label mapping {name!r}; available: {sorted(LABEL_MAPPINGS)}")
    return LABEL_MAPPINGS[name]
