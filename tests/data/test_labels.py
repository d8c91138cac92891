"""Label legend and mappings: evaluation_8, tissues_3, binary, and bad label values."""

from __future__ import annotations

import numpy as np
import pytest

from med_unlearning.data.labels import (
    IGNORE_INDEX,
    LABEL_MAPPINGS,
    MRBRAINS_LEGEND,
    LabelMapping,
    LabelValueError,
    get_label_mapping,
)

RAW = np.arange(11, dtype=np.uint8)


def test_evaluation_8_keeps_labels_1_to_8_and_ignores_9_and_10() -> None:
    mapping = get_label_mapping("evaluation_8")
    mapped = mapping.apply(RAW)
    assert mapped.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, IGNORE_INDEX, IGNORE_INDEX]
    assert mapping.num_classes == 9
    assert mapping.class_names[1] == "cortical_gm" and mapping.class_names[8] == "brainstem"


def test_tissues_3_merges_gm_wm_csf_and_ignores_the_rest() -> None:
    mapping = get_label_mapping("tissues_3")
    mapped = mapping.apply(RAW)
    assert mapped.tolist() == [0, 1, 1, 2, 2, 3, 3] + [IGNORE_INDEX] * 4
    assert mapping.class_names == ("background", "gm", "wm", "csf")
    assert mapping.ignored_raw_labels == (7, 8, 9, 10)


def test_binary_is_brain_versus_background() -> None:
    mapping = get_label_mapping("binary")
    assert mapping.apply(RAW).tolist() == [0] + [1] * 8 + [IGNORE_INDEX] * 2
    assert mapping.num_classes == 2


def test_apply_keeps_shape_and_accepts_float_labels() -> None:
    raw = np.array([[[0.0, 3.0], [9.0, 5.0]]], dtype=np.float32)
    mapped = get_label_mapping("tissues_3").apply(raw)
    assert mapped.shape == raw.shape and mapped.dtype == np.uint8
    assert mapped.tolist() == [[[0, 2], [IGNORE_INDEX, 3]]]


@pytest.mark.parametrize("bad", [11, -1, 2.5])
def test_values_outside_the_legend_name_subject_and_file(bad: float) -> None:
    raw = np.array([0, 1, bad], dtype=np.float32)
    with pytest.raises(LabelValueError, match=r"'070'.*070/segm\.nii\.gz.*outside"):
        get_label_mapping("evaluation_8").apply(raw, subject="070", file="070/segm.nii.gz")


def test_unknown_mapping_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="binary.*evaluation_8.*tissues_3"):
        get_label_mapping("tissues_4")


def test_a_mapping_must_cover_the_whole_legend() -> None:
    with pytest.raises(ValueError, match="does not map raw labels"):
        LabelMapping("partial", ("background", "x"), {0: 0, 1: 1})
    full = dict.fromkeys(MRBRAINS_LEGEND, 0)
    with pytest.raises(ValueError, match="outside"):
        LabelMapping("wrong", ("background",), {**full, 3: 4})


def test_every_registered_mapping_maps_background_to_zero() -> None:
    for name, mapping in LABEL_MAPPINGS.items():
        assert mapping.name == name
        assert mapping.raw_to_class[0] == 0
        assert name in repr(mapping)
