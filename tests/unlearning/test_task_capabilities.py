"""Strategies talk to tasks through the declared :class:`~med_unlearning.tasks.base.Task`
protocol only: optional capabilities are methods that may answer ``None``, never attributes
probed with ``getattr``/``callable`` (issue 15)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
import torch
from tiny_task import TinyTask

import med_unlearning.unlearning as unlearning
from med_unlearning.data.samples import SegmentationSample
from med_unlearning.tasks.base import Task
from med_unlearning.tasks.recon.task import ReconTask
from med_unlearning.tasks.segmentation.task import SegmentationTask

STRATEGY_CODE = sorted(Path(unlearning.__file__).parent.rglob("*.py"))


def _probes_of_task(path: Path) -> list[str]:
    """``getattr(task…)`` / ``hasattr(task…)`` calls in a module (``task``, ``run.task``…)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"getattr", "hasattr"}
            and node.args
            and "task" in ast.unparse(node.args[0])
        ):
            found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("path", STRATEGY_CODE, ids=lambda path: path.name)
def test_strategies_do_not_probe_the_task(path: Path) -> None:
    assert _probes_of_task(path) == []


def test_protocol_declares_data_range_and_output_as_target() -> None:
    for name in ("data_range", "output_as_target"):
        assert callable(getattr(Task, name))
    hint = inspect.signature(Task.data_range).return_annotation
    assert "None" in str(hint)


@pytest.mark.parametrize("task_class", [ReconTask, SegmentationTask, TinyTask])
def test_every_task_implements_both(task_class: type) -> None:
    for name in ("data_range", "output_as_target"):
        assert name in vars(task_class), f"{task_class.__name__} lacks {name}"


def test_segmentation_has_no_data_range() -> None:
    batch = SegmentationSample(torch.zeros(1, 1, 2, 2, 2), torch.zeros(1, 2, 2, 2), ("a",))
    assert SegmentationTask.data_range(object.__new__(SegmentationTask), batch) is None
