"""Tests of the sample MRBrainS18 generator: layout, labels, affine, contrasts, determinism."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from pydantic import ValidationError

import med_unlearning.data.sample_mrbrains as sample_mrbrains
from med_unlearning.data.sample_mrbrains import (
    MRBRAINS18_LABELS,
    REQUIRED_LABELS,
    SUBJECT_PARTS,
    SampleSubjectPlan,
    generate_mrbrains_subject,
    lazy_mrbrains_sample,
    mrbrains_affine,
    plan_mrbrains_sample,
)
from med_unlearning.params.sample_data import MRBRAINS18_TRAINING_IDS, MRBrainSSampleParams

TINY = {"num_subjects": 3, "shape": (32, 32, 8)}


def tiny_params(**overrides) -> MRBrainSSampleParams:
    return MRBrainSSampleParams.model_validate({**TINY, **overrides})


def arrays(subject: dict[str, nib.Nifti1Image]) -> dict[str, np.ndarray]:
    return {part: np.asarray(image.dataobj) for part, image in subject.items()}


@pytest.fixture(scope="module")
def default_subjects() -> dict[str, dict[str, nib.Nifti1Image]]:
    params = MRBrainSSampleParams()
    return {
        plan.subject_id: generate_mrbrains_subject(plan, params)
        for plan in plan_mrbrains_sample(params, 42)
    }


def test_default_subjects_are_the_real_training_ids(default_subjects) -> None:
    assert list(default_subjects) == list(MRBRAINS18_TRAINING_IDS)


def test_subject_has_the_mrbrains_layout_dtypes_and_shape(default_subjects) -> None:
    for subject in default_subjects.values():
        assert set(subject) == set(SUBJECT_PARTS)
        for part, image in subject.items():
            assert isinstance(image, nib.Nifti1Image)
            assert image.shape == (64, 64, 16)
            expected = np.uint8 if part == "segm" else np.float32
            assert image.get_data_dtype() == expected
        for part in ("pre/T1", "pre/reg_IR", "pre/FLAIR"):
            data = np.asarray(subject[part].dataobj)
            assert np.all(np.isfinite(data)) and data.min() >= 0


def test_affine_has_the_mrbrains_spacing_and_is_centred(default_subjects) -> None:
    for subject in default_subjects.values():
        for image in subject.values():
            np.testing.assert_allclose(np.diag(image.affine)[:3], [0.958, 0.958, 3.0])
            np.testing.assert_allclose(image.header.get_zooms(), [0.958, 0.958, 3.0], rtol=1e-6)
            centre = image.affine @ np.array([31.5, 31.5, 7.5, 1.0])
            np.testing.assert_allclose(centre[:3], 0.0, atol=1e-5)  # header stores float32
            assert nib.aff2axcodes(image.affine) == ("R", "A", "S")
            assert int(image.header["sform_code"]) == 1 and int(image.header["qform_code"]) == 1


def test_mrbrains_affine_uses_the_given_spacing() -> None:
    affine = mrbrains_affine((10, 20, 5), (1.0, 2.0, 3.0))
    np.testing.assert_allclose(np.diag(affine), [1.0, 2.0, 3.0, 1.0])
    np.testing.assert_allclose(affine[:3, 3], [-4.5, -19.0, -6.0])


def test_labels_use_only_the_legend_and_hold_every_required_class(default_subjects) -> None:
    rare = set()
    for subject in default_subjects.values():
        labels = set(np.unique(np.asarray(subject["segm"].dataobj)).tolist())
        assert labels <= set(MRBRAINS18_LABELS)
        assert set(REQUIRED_LABELS) <= labels
        rare |= labels & {9, 10}
    assert rare, "with rare_label_probability 0.3, some of the 7 subjects have label 9 or 10"


@pytest.mark.parametrize("shape", [(32, 32, 8), (16, 16, 4)])
def test_tiny_grids_still_hold_every_required_label(shape) -> None:
    params = tiny_params(shape=shape, num_subjects=4, lesions_per_subject=(1, 1))
    for plan in plan_mrbrains_sample(params, 0):
        labels = np.asarray(generate_mrbrains_subject(plan, params)["segm"].dataobj)
        assert set(REQUIRED_LABELS) <= set(np.unique(labels).tolist())


def test_tissue_intensities_follow_each_sequence(default_subjects) -> None:
    for subject in default_subjects.values():
        data = arrays(subject)
        labels = data["segm"]

        def mean(part: str, label: int) -> float:
            return float(data[part][labels == label].mean())

        gm, wm, csf, lesion = 1, 3, 5, 4
        assert mean("pre/T1", wm) > mean("pre/T1", gm) > mean("pre/T1", csf)
        assert mean("pre/reg_IR", wm) > 1.8 * mean("pre/reg_IR", gm)
        assert mean("pre/reg_IR", gm) > mean("pre/reg_IR", csf)
        assert mean("pre/FLAIR", lesion) > mean("pre/FLAIR", wm) > mean("pre/FLAIR", csf)
        assert mean("pre/FLAIR", gm) > mean("pre/FLAIR", wm)


def test_generation_is_deterministic_and_seeded() -> None:
    params = tiny_params()
    plan = plan_mrbrains_sample(params, 3)[0]
    first = arrays(generate_mrbrains_subject(plan, params))
    again = arrays(generate_mrbrains_subject(plan, params))
    for part in SUBJECT_PARTS:
        np.testing.assert_array_equal(first[part], again[part])
    other = arrays(generate_mrbrains_subject(plan_mrbrains_sample(params, 4)[0], params))
    assert np.mean(first["segm"] != other["segm"]) > 0.02


def test_subjects_differ_and_do_not_depend_on_how_many_there_are() -> None:
    few, many = tiny_params(num_subjects=2), tiny_params(num_subjects=3)
    few_plans, many_plans = plan_mrbrains_sample(few, 0), plan_mrbrains_sample(many, 0)
    first = arrays(generate_mrbrains_subject(few_plans[1], few))
    same = arrays(generate_mrbrains_subject(many_plans[1], many))
    np.testing.assert_array_equal(first["pre/T1"], same["pre/T1"])
    third = arrays(generate_mrbrains_subject(many_plans[2], many))
    assert np.mean(first["segm"] != third["segm"]) > 0.02


def test_bias_field_is_a_smooth_bounded_multiplicative_factor() -> None:
    plan = SampleSubjectPlan("1", seed=0)
    flat = arrays(generate_mrbrains_subject(plan, tiny_params(noise_level=0.0, bias_field=0.0)))
    biased = arrays(generate_mrbrains_subject(plan, tiny_params(noise_level=0.0, bias_field=0.2)))
    head = flat["pre/T1"] > 50
    log_ratio = np.log(biased["pre/T1"][head] / flat["pre/T1"][head])
    assert np.abs(log_ratio).max() <= 0.2 + 1e-4
    assert log_ratio.max() - log_ratio.min() > 0.1
    np.testing.assert_array_equal(flat["segm"], biased["segm"])


def test_noise_is_rician_and_scales_with_the_noise_level() -> None:
    plan = SampleSubjectPlan("1", seed=0)
    quiet = arrays(generate_mrbrains_subject(plan, tiny_params(noise_level=0.0)))
    noisy = arrays(generate_mrbrains_subject(plan, tiny_params(noise_level=0.05)))
    air = quiet["pre/T1"] < 1e-3
    # Rician: the noise floor in air is positive, its mean about sigma * sqrt(pi/2).
    assert air.sum() > 50
    floor = noisy["pre/T1"][air]
    assert floor.min() >= 0
    white = float(quiet["pre/T1"][quiet["segm"] == 3].mean())
    assert 0.02 * white < floor.mean() < 0.12 * white


def test_lazy_sample_generates_each_subject_once_and_only_when_asked(monkeypatch) -> None:
    calls: list[str] = []
    real = sample_mrbrains.generate_mrbrains_subject

    def counting(plan, params):
        calls.append(plan.subject_id)
        return real(plan, params)

    monkeypatch.setattr(sample_mrbrains, "generate_mrbrains_subject", counting)
    partitions = lazy_mrbrains_sample(tiny_params(num_subjects=2), seed=0)
    assert calls == []
    assert sorted(partitions) == sorted(
        f"{subject}/{part}" for subject in ("1", "4") for part in SUBJECT_PARTS
    )
    images = {key: load() for key, load in partitions.items()}
    assert calls == ["1", "4"]
    assert all(isinstance(image, nib.Nifti1Image) for image in images.values())


def test_extra_subjects_get_generated_names() -> None:
    params = MRBrainSSampleParams(num_subjects=9)
    ids = params.resolved_subject_ids()
    assert ids[:7] == list(MRBRAINS18_TRAINING_IDS)
    assert ids[7:] == ["sample_007", "sample_008"]
    fewer = MRBrainSSampleParams(num_subjects=2, subject_ids=["a", "b", "c"])
    assert fewer.resolved_subject_ids() == ["a", "b"]


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"subject_ids": ["1", "../x"]}, "subject_ids"),
        ({"subject_ids": ["1", "1"]}, "subject_ids"),
        ({"shape": [8, 64, 16]}, "shape"),
        ({"spacing_mm": [0.958, 0.0, 3.0]}, "spacing_mm"),
        ({"lesions_per_subject": [4, 2]}, "lesions_per_subject"),
        ({"bias_field": 1.5}, "bias_field"),
    ],
)
def test_invalid_parameters_name_the_field(settings: dict, field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        MRBrainSSampleParams.model_validate(settings)


def test_default_study_holds_out_test_and_validation_subjects_from_every_model() -> None:
    """conf/base generates >= 4 test and >= 2 validation subjects besides the 7 training ones
    and holds them out of every model: the `test` and `val` sets exist."""
    from pathlib import Path

    import pandas as pd
    import yaml

    from med_unlearning.data.splits import FORGET_TEST, FORGET_TRAIN, RETAIN_TEST, RETAIN_VAL
    from med_unlearning.params.segmentation import SegmentationParams
    from med_unlearning.pipelines.segmentation.nodes import (
        make_training_manifests,
        split_subjects,
    )

    conf = Path(__file__).parents[2] / "conf" / "base"
    sample = yaml.safe_load((conf / "parameters_sample_data.yml").read_text())["sample_data"]
    segmentation = yaml.safe_load((conf / "parameters_segmentation.yml").read_text())
    params = SegmentationParams.model_validate(segmentation["segmentation"])
    ids = MRBrainSSampleParams.model_validate(sample["mrbrains"]).resolved_subject_ids()
    test, val = set(params.split.test_subject_ids), set(params.split.val_subject_ids)
    assert len(test) >= 4 and len(val) >= 2 and (test | val) <= set(ids)
    assert set(ids) - test - val == set(MRBRAINS18_TRAINING_IDS)

    cohorts = MRBrainSSampleParams.model_validate(sample["mrbrains"]).cohorts
    metadata = pd.DataFrame({
        "subject_id": ids, "has_segmentation": True,
        "description": [cohorts.cohort_of(i) for i in ids],
    })  # fmt: skip
    roles = split_subjects(metadata, params).set_index("subject_id")["role"]
    # >= 4 typical test subjects, and >= 2 of the request's kind (the attack's non-members).
    assert (roles.loc[sorted(test)] == RETAIN_TEST).sum() >= 4
    assert set(roles[roles == FORGET_TEST].index) == {"11", "12", "13"}
    assert {cohorts.cohort_of(i) for i in ("11", "12", "13")} == {"second_scanner"}
    assert set(roles.loc[sorted(val)]) == {RETAIN_VAL}
    # The default request forgets the two second-scanner subjects (>= 2: subject-level CIs).
    assert set(roles[roles == FORGET_TRAIN].index) == {"070", "148"}
    for manifest in make_training_manifests(split_subjects(metadata, params)):
        assert not (test | val) & set(manifest["subject_ids"]), manifest["model"]
        assert manifest["subject_ids"]


# --- request kinds (issue 17): lesion load, second scanner, anatomical outlier -------------

_KINDS = {
    "lesion_load": {"subject_ids": ["5"]},
    "second_scanner": {"subject_ids": ["070", "148"]},
    "anatomical_outlier": {"subject_ids": ["14"]},
}


def _kind_subjects(cohorts: dict | None) -> dict[str, dict[str, np.ndarray]]:
    params = MRBrainSSampleParams.model_validate({
        "num_subjects": 7, "shape": [48, 48, 12], **({"cohorts": cohorts} if cohorts else {}),
    })  # fmt: skip
    out = {}
    for plan in plan_mrbrains_sample(params, seed=3):
        volumes = generate_mrbrains_subject(plan, params)
        out[plan.subject_id] = {
            "descrip": volumes["pre/T1"].header["descrip"].item().decode(),
            **arrays(volumes),
        }
    return out


@pytest.fixture(scope="module")
def kind_subjects() -> dict[str, dict[str, np.ndarray]]:
    return _kind_subjects(_KINDS)


def test_each_kind_is_named_in_the_header(kind_subjects) -> None:
    kinds = {subject: volumes["descrip"] for subject, volumes in kind_subjects.items()}
    assert kinds == {
        "1": "typical", "4": "typical", "5": "lesion_load", "7": "typical",
        "14": "anatomical_outlier", "070": "second_scanner", "148": "second_scanner",
    }  # fmt: skip


def test_lesion_load_subject_has_far_more_lesion_voxels(kind_subjects) -> None:
    lesions = {s: int((v["segm"] == 4).sum()) for s, v in kind_subjects.items()}
    others = [n for s, n in lesions.items() if s != "5"]
    assert lesions["5"] > 3 * max(others)


def test_anatomical_outlier_has_far_larger_ventricles(kind_subjects) -> None:
    ventricles = {s: int((v["segm"] == 6).sum()) for s, v in kind_subjects.items()}
    assert ventricles["14"] > 3 * max(n for s, n in ventricles.items() if s != "14")


def test_second_scanner_has_another_t1_contrast(kind_subjects) -> None:
    def contrast(volumes) -> tuple[float, float]:
        t1, labels = volumes["pre/T1"], volumes["segm"]
        wm = float(t1[labels == 3].mean())
        return float(t1[labels == 1].mean()) / wm, float(t1[labels == 5].mean()) / wm

    gm_wm = {s: contrast(v) for s, v in kind_subjects.items()}
    for scanner_b in ("070", "148"):
        for typical in ("1", "4", "7"):
            assert gm_wm[scanner_b][0] > gm_wm[typical][0] + 0.1   # less grey/white contrast
            assert gm_wm[scanner_b][1] > gm_wm[typical][1] + 0.1   # brighter CSF


def test_kinds_leave_typical_subjects_unchanged(kind_subjects) -> None:
    plain = _kind_subjects(None)
    for subject in ("1", "4", "7"):
        for part in SUBJECT_PARTS:
            np.testing.assert_array_equal(plain[subject][part], kind_subjects[subject][part])
    assert not np.array_equal(plain["070"]["pre/T1"], kind_subjects["070"]["pre/T1"])
    assert plain["070"]["descrip"] == "typical"


def test_kinds_reach_the_metadata_table_and_a_forget_request() -> None:
    from med_unlearning.data.metadata import build_mrbrains_metadata
    from med_unlearning.data.splits import FORGET_TRAIN
    from med_unlearning.params.segmentation import SegmentationParams
    from med_unlearning.pipelines.segmentation.nodes import split_subjects

    params = MRBrainSSampleParams.model_validate(
        {"num_subjects": 9, "shape": [16, 16, 4], "cohorts": _KINDS,
         "subject_ids": [*MRBRAINS18_TRAINING_IDS, "2", "3"]}
    )  # fmt: skip
    metadata = build_mrbrains_metadata(lazy_mrbrains_sample(params, seed=0), None)
    kinds = dict(zip(metadata["subject_id"], metadata["description"], strict=True))
    assert kinds["070"] == kinds["148"] == "second_scanner" and kinds["2"] == "typical"
    for kind, expected in (("second_scanner", {"070", "148"}), ("lesion_load", {"5"}),
                           ("anatomical_outlier", {"14"})):
        split = SegmentationParams.model_validate({"split": {
            "forget": {"by": "column", "column": "description", "values": [kind]},
            "test_subject_ids": ["2", "3"], "val_subject_ids": [],
        }})  # fmt: skip
        roles = split_subjects(metadata, split).set_index("subject_id")["role"]
        assert set(roles[roles == FORGET_TRAIN].index) == expected, kind


def test_kind_subjects_must_exist_and_be_disjoint() -> None:
    with pytest.raises(ValidationError, match="not generated subjects"):
        MRBrainSSampleParams.model_validate({"cohorts": {"lesion_load": {"subject_ids": ["99"]}}})
    with pytest.raises(ValidationError, match="in both lesion_load and second_scanner"):
        MRBrainSSampleParams.model_validate({"cohorts": {
            "lesion_load": {"subject_ids": ["5"]}, "second_scanner": {"subject_ids": ["5"]},
        }})  # fmt: skip
