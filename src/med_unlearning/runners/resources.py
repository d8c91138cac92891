"""Which nodes need a GPU, and the Dask resources they claim.

Nodes that train, unlearn or score a network (run a model over data) carry the Kedro tag
:data:`GPU_TAG`. :class:`~med_unlearning.runners.DaskRunner` gives such a node the Dask
resource :data:`GPU_RESOURCE` (one unit) when the cluster's workers declare GPUs, so at most
one GPU node runs on each GPU at a time; CPU nodes (metadata, splits, tables, figures) run
anywhere. On a cluster without GPU resources nothing is claimed and nothing changes.

The tag is added centrally (:func:`tag_gpu_nodes`, called by the pipeline registry) from the
nodes' names, so the pipelines themselves do not need to know about devices.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline
from kedro.pipeline.node import Node

__all__ = ["GPU_NODE_NAMES", "GPU_RESOURCE", "GPU_TAG", "gpu_resources", "tag_gpu_nodes"]

#: The Kedro tag of nodes that run a network.
GPU_TAG = "gpu"

#: The Dask resource name a GPU worker declares (``dask worker --resources GPU=1``).
GPU_RESOURCE = "GPU"

#: Node names (the last part, after the namespaces) of the nodes that run a network:
#: training, reconstruction/prediction, unlearning and scoring.
GPU_NODE_NAMES = frozenset(
    {"train_model", "train", "reconstruct_volumes", "predict", "unlearn", "score"}
)


def _short_name(node: Node) -> str:
    return node.name.rsplit(".", 1)[-1]


def tag_gpu_nodes(pipeline: Pipeline) -> Pipeline:
    """``pipeline`` with :data:`GPU_TAG` added to every node of :data:`GPU_NODE_NAMES`."""
    return Pipeline(
        [
            node.tag(GPU_TAG) if _short_name(node) in GPU_NODE_NAMES else node
            for node in pipeline.nodes
        ]
    )


def gpu_resources(node: Node, cluster_has_gpus: bool) -> dict[str, float] | None:
    """The Dask resources ``node`` claims: one GPU for a GPU node on a GPU cluster."""
    if cluster_has_gpus and GPU_TAG in node.tags:
        return {GPU_RESOURCE: 1}
    return None
