"""Pipeline registry: the five study pipelines by name, and the whole study as default."""

from __future__ import annotations

from kedro.framework.startup import bootstrap_project

from med_unlearning.pipeline_registry import STUDY_PIPELINES, register_pipelines


def test_every_study_pipeline_is_registered_and_default_chains_them(project_path) -> None:
    bootstrap_project(project_path)
    pipelines = register_pipelines()
    assert set(STUDY_PIPELINES) <= set(pipelines)
    default_nodes = {node.name for node in pipelines["__default__"].nodes}
    for name in STUDY_PIPELINES:
        assert {node.name for node in pipelines[name].nodes} <= default_nodes
        assert pipelines[name].nodes, f"{name} is empty"


def test_every_node_is_named_explicitly(project_path) -> None:
    bootstrap_project(project_path)
    for node in register_pipelines()["__default__"].nodes:
        assert node._name is not None, node


def test_a_mistyped_pipeline_name_lists_the_valid_names(kedro_session) -> None:
    import pytest

    from med_unlearning.pipeline_registry import UnknownPipelineError

    with kedro_session() as session:
        with pytest.raises(UnknownPipelineError) as caught:
            session.run(pipeline_names=["recno"])
    message = str(caught.value)
    assert "unknown pipeline name(s) ['recno']" in message
    for name in STUDY_PIPELINES:
        assert repr(name) in message
    assert "did you mean 'recon'" in message


def test_valid_names_pass_the_check() -> None:
    from med_unlearning.pipeline_registry import available_pipelines, check_requested

    assert set(STUDY_PIPELINES) <= set(available_pipelines())
    check_requested(["recon", "__default__"])
    check_requested(None)
