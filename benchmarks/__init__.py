"""Benchmarks of med_unlearning: pipeline overhead, data path, unlearning cost, memory,
end-to-end time and scaling, each written as JSON and a Markdown table with the machine.

Run ``python -m benchmarks.run [--only NAME] [--quick] [--out DIR]`` from the project root
(see :mod:`benchmarks.run`). Benchmarks are not tests: they never fail on a slow machine;
they report ratios against their targets.
"""

from __future__ import annotations

__all__: list[str] = []
