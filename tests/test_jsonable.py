"""``med_unlearning.jsonable``: the one JSON-cleaning helper of the records."""

from __future__ import annotations

import json
import math

import numpy as np
import torch

from med_unlearning.jsonable import jsonable


def test_scalars_become_plain_json_values() -> None:
    value = {
        "a": np.float32(1.5), "b": np.int64(3), "c": np.bool_(True), "nan": float("nan"),
        "inf": np.float64(math.inf), "t": torch.tensor(2.0), "n": None, "s": "x",
        "nested": ({"k": (np.int8(1), {2})},), 4: frozenset(),
    }  # fmt: skip
    out = jsonable(value)
    assert out == {"a": 1.5, "b": 3, "c": True, "nan": None, "inf": None, "t": 2.0, "n": None,
                   "s": "x", "nested": [{"k": [1, [2]]}], "4": []}  # fmt: skip
    assert type(out["b"]) is int and type(out["c"]) is bool
    json.dumps(out, allow_nan=False)


def test_unknown_objects_become_their_text() -> None:
    assert jsonable(np.datetime64("2024-01-02")) == "2024-01-02"
    assert jsonable(torch.zeros(2)) == str(torch.zeros(2))


def test_the_records_use_this_helper() -> None:
    """One JSON-cleaning helper: the unlearning result's records call this very function."""
    from med_unlearning.unlearning import result

    assert result.jsonable is jsonable
