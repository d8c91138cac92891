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


def _viz_preview(catalog: Any, name: str) -> tuple[Any, str | None]:
    """Preview ``name`` exactly as kedro-viz does: a graph data node built from the catalog's
    dataset and its ``metadata: kedro-viz`` block, then ``DataNodeMetadata`` calls ``preview``
    (with ``preview_args``) and names the type from the return annotation."""
    from kedro_viz.models.flowchart.node_metadata import DataNodeMetadata
    from kedro_viz.models.flowchart.nodes import DataNode, GraphNode

    dataset = catalog.get(name)
    node = GraphNode.create_data_node(
        dataset_id=name, dataset_name=name, layer=_layer(dataset), tags=set(),
        dataset=dataset, modular_pipelines=None,
    )
    assert isinstance(node, DataNode), f"{name}: kedro-viz gives it no preview ({type(node)})"
    DataNodeMetadata.set_is_all_previews_enabled(True)  # kedro viz build --include-previews
    metadata = DataNodeMetadata(data_node=node)
    return metadata.preview, metadata.preview_type


def _png(preview: Any) -> Any:
    import base64
    import io

    from matplotlib import image as mpl_image

    assert isinstance(preview, str), preview
    data = base64.b64decode(preview, validate=True)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return mpl_image.imread(io.BytesIO(data), format="png")  # decodes the whole image


@pytest.mark.e2e
def test_raw_folders_preview_their_first_item_through_the_catalog(kedro_session) -> None:
    """``fastmri_raw``/``mrbrains_raw`` (one entry each, no ``@`` twin) preview a middle slice
    of the item kedro-viz asks for: the first volume; the first subject's T1."""

    from med_unlearning.datasets._common import png_preview
    from med_unlearning.io.fastmri import middle_slice_image
    from med_unlearning.io.nifti import middle_axial_slice

    with kedro_session() as session:
        session.run(pipeline_names=["sample_data"])
        catalog = session.load_context().catalog
        for name in ("fastmri_raw", "mrbrains_raw"):
            assert not [other for other in catalog.keys() if other.startswith(f"{name}@")]
        volumes = catalog.load("fastmri_raw")
        images = catalog.load("mrbrains_raw")
        previews = {name: _viz_preview(catalog, name) for name in ("fastmri_raw", "mrbrains_raw")}

    for name, (preview, preview_type) in previews.items():
        assert preview_type == "ImagePreview", name
        assert _png(preview).shape[1] > 8
    first_volume = sorted(volumes)[0]
    assert previews["fastmri_raw"][0] == png_preview(middle_slice_image(volumes[first_volume]()))
    first_t1 = sorted(key for key in images if key.endswith("/pre/T1"))[0]
    expected = png_preview(middle_axial_slice(images[first_t1]()).T[::-1])
    assert previews["mrbrains_raw"][0] == expected
    assert first_t1 != sorted(images)[0]  # the preview_args choose T1, not the first file
    assert _png(expected).std() > 0  # an image, not a blank square


#: The layers in the order the data flows (kedro-viz's layer bar, top to bottom).
LAYER_ORDER = ["raw", "intermediate", "model_input", "models", "model_output", "reporting"]


def _layered_pipelines(kedro_session) -> tuple[dict[str, Any], dict[str, str]]:
    with kedro_session() as session:
        catalog = session.load_context().catalog
        pipelines = register_pipelines()
        names = set().union(*(p.datasets() for p in pipelines.values()))
        layers = {
            name: _layer(catalog.get(name)) for name in names if not name.startswith("params:")
        }
    return pipelines, layers


def test_no_node_writes_to_an_earlier_layer_than_it_reads(kedro_session) -> None:
    """The layer order is never violated by a node's input -> output, so kedro-viz can order
    its layer bar (a node reading `models` and writing the catch-all `intermediate` made a
    cycle and kedro-viz dropped the bar)."""
    pipelines, layers = _layered_pipelines(kedro_session)
    rank = {layer: index for index, layer in enumerate(LAYER_ORDER)}
    backwards = sorted(
        f"{node.name}: {source} ({layers[source]}) -> {target} ({layers[target]})"
        for pipeline in pipelines.values()
        for node in pipeline.nodes
        for source in node.inputs if source in layers
        for target in node.outputs
        if rank[layers[target]] < rank[layers[source]]
    )
    assert not backwards, "\n".join(backwards[:20])


@pytest.mark.parametrize("name", ["__default__", "tuning"])
def test_kedro_viz_sorts_the_layers_of_the_graph(kedro_session, name: str) -> None:
    """kedro-viz's own layer sort over the graph it draws (datasets and nodes) gives every
    layer, not [] (its answer to a cycle); for the whole study, in the project's order
    (a sub-pipeline may hold layers no path links, which kedro-viz sorts by name)."""
    from types import SimpleNamespace

    from kedro_viz.services.layers import sort_layers

    pipelines, layers = _layered_pipelines(kedro_session)
    graph: dict[str, set[str]] = {}
    nodes: dict[str, Any] = {}
    for node in pipelines[name].nodes:
        nodes[f"node:{node.name}"] = SimpleNamespace(layer=None)
        graph[f"node:{node.name}"] = {f"data:{out}" for out in node.outputs}
        for dataset in [*node.inputs, *node.outputs]:
            nodes.setdefault(f"data:{dataset}", SimpleNamespace(layer=layers.get(dataset)))
            graph.setdefault(f"data:{dataset}", set())
        for dataset in node.inputs:
            graph[f"data:{dataset}"].add(f"node:{node.name}")
    used = {layer for layer in layers.values()} & {node.layer for node in nodes.values()}
    expected = [layer for layer in LAYER_ORDER if layer in used]
    assert len(expected) >= 5
    ordered = sort_layers(nodes, graph)
    assert (ordered if name == "__default__" else sorted(ordered)) == (
        expected if name == "__default__" else sorted(expected)
    )


def test_figures_preview_as_an_image_through_the_catalog(kedro_session, tmp_path) -> None:
    """``evaluation.figures`` (a folder of PNGs) previews the figure its preview_args name."""
    import base64

    import matplotlib.pyplot as plt

    def figure(value: float) -> Any:
        fig, axes = plt.subplots(figsize=(2, 2))
        axes.imshow([[0.0, value], [value, 1.0]])
        return fig

    with kedro_session() as session:
        catalog = session.load_context().catalog
        assert _viz_preview(catalog, "evaluation.figures") == (None, "ImagePreview")  # none yet
        catalog.save(
            "evaluation.figures",
            {"recon_examples.png": figure(0.2), "tradeoff.png": figure(0.8)},
        )
        preview, preview_type = _viz_preview(catalog, "evaluation.figures")
        first = catalog.get("evaluation.figures").preview()
    assert preview_type == "ImagePreview"
    written = tmp_path / "08_reporting" / "figures"
    assert preview == base64.b64encode((written / "tradeoff.png").read_bytes()).decode("ascii")
    assert first == base64.b64encode((written / "recon_examples.png").read_bytes()).decode()
    assert _png(preview).shape[1] > 8
