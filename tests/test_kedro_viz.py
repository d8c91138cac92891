"""kedro-viz: every catalog entry and factory has a layer, every node a stage tag, and the
raw data, checkpoints and figures preview through the catalog the way kedro-viz asks."""

from __future__ import annotations

from typing import Any

import pytest

from med_unlearning.pipeline_registry import register_pipelines

#: The layers of the project's data tree (kedro-viz orders the graph by them).
LAYERS = {"raw", "intermediate", "model_input", "models", "model_output", "reporting"}
#: The stage tags a user filters the graph by (``gpu``: nodes that run a network).
STAGE_TAGS = {"sample_data", "training", "tuning", "unlearning", "evaluation", "report"}


def _layer(entry: Any) -> Any:
    if isinstance(entry, dict):
        metadata = entry.get("metadata")
    else:
        metadata = getattr(entry, "metadata", None)
    return ((metadata or {}).get("kedro-viz") or {}).get("layer")


def test_every_catalog_entry_and_factory_has_a_known_layer(kedro_session) -> None:
    with kedro_session() as session:
        catalog = session.load_context().config_loader["catalog"]
    entries = {name: entry for name, entry in catalog.items() if not name.startswith("_")}
    assert len(entries) > 30
    missing = {
        name: _layer(entry) for name, entry in entries.items() if _layer(entry) not in LAYERS
    }
    assert not missing, f"entries without a known kedro-viz layer: {missing}"


def test_every_dataset_of_every_pipeline_resolves_to_a_layer(kedro_session) -> None:
    """What kedro-viz does: resolve each pipeline dataset through the catalog, read its layer."""
    with kedro_session() as session:
        context = session.load_context()
        catalog = context.catalog
        names = set().union(*(p.datasets() for p in register_pipelines().values()))
        unlayered = sorted(
            name for name in names
            if not name.startswith("params:") and _layer(catalog.get(name)) not in LAYERS
        )
    assert not unlayered


PIPELINES = ["sample_data", "recon", "segmentation", "tuning", "unlearning", "evaluation"]


@pytest.mark.parametrize("name", PIPELINES)
def test_every_node_carries_a_stage_tag(project_path, name) -> None:
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project_path)
    nodes = register_pipelines()[name].nodes
    assert nodes
    untagged = [node.name for node in nodes if not node.tags & STAGE_TAGS]
    assert not untagged


def test_report_and_gpu_tags_mark_what_they_say(project_path) -> None:
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project_path)
    pipelines = register_pipelines()
    report = {node.name for node in pipelines["evaluation"].nodes if "report" in node.tags}
    assert {"evaluation.write_report", "evaluation.build_figures"} <= report
    gpu = {node.name for node in pipelines["__default__"].nodes if "gpu" in node.tags}
    assert "unlearning.recon.nl_ft.unlearn" in gpu
    assert "recon.original.train_model" in gpu
    assert not {name for name in gpu if name.startswith("sample_data") or "report" in name}
