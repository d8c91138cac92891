"""Applying selected settings and naming what selected them."""

from __future__ import annotations

from med_unlearning.tuning.selection import NOT_TUNED, apply_selection, settings_source

SELECTION = {
    "objective": "oracle",
    "seed": 42,
    "tasks": {"recon": {"nl_ft": {"params": {"epochs": 7, "noise_scale": 0.3},
                                  "n_trials": 8, "selected_on": "ssim@retain_val"}}},
}  # fmt: skip


def test_selected_values_replace_only_the_tuned_keys():
    unlearning = {"recon": {"strategies": {"nl_ft": {"epochs": 6, "lr": 3e-3}}}}
    applied = apply_selection(unlearning, SELECTION)
    assert applied["recon"]["strategies"]["nl_ft"] == {"epochs": 7, "lr": 3e-3, "noise_scale": 0.3}
    assert unlearning["recon"]["strategies"]["nl_ft"] == {"epochs": 6, "lr": 3e-3}
    assert apply_selection(unlearning, {}) == unlearning


def test_settings_source_names_the_selection_that_matches_the_run():
    used = {"epochs": 7, "noise_scale": 0.3, "lr": 3e-3}
    source = settings_source("recon", "nl_ft", used, SELECTION, None)
    assert source.startswith("tuning run") and "8 Optuna TPE trials" in source
    recorded = settings_source("recon", "nl_ft", used, {}, SELECTION)
    assert recorded.startswith("recorded tuning run")
    hand_set = settings_source("recon", "nl_ft", {**used, "epochs": 6}, SELECTION, SELECTION)
    assert hand_set == NOT_TUNED
    assert settings_source("recon", "ssd", {}, SELECTION, SELECTION) == NOT_TUNED
