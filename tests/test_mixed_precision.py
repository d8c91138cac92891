"""Losses and metrics are defined in float32: autocast (bf16/fp16) around them changes nothing.

``conf/gpu`` trains with ``precision: bf16``: the loop runs ``loss_fn`` under
``torch.autocast``. The network may run in bf16, but the objective must not: SSIM's window
convolutions in bf16 move a slice's SSIM by ~1e-3–1e-2. CPU bf16 autocast reproduces the
problem without a GPU (autocast's CPU op lists also send ``conv2d`` to bf16).
"""

from __future__ import annotations

import pytest
import torch
from tests.tasks.test_recon import _batch, tiny_volume
from tests.tasks.test_segmentation import _batch as segmentation_batch
from tests.tasks.test_segmentation import make_task

from med_unlearning.device import full_precision, to_float32
from med_unlearning.metrics.image_quality import slice_ssim
from med_unlearning.tasks.recon import ReconTask
from med_unlearning.unlearning.strategies._features import features_mse

TOLERANCE = 1e-4


def bf16_autocast() -> torch.autocast:
    return torch.autocast("cpu", dtype=torch.bfloat16)


@pytest.fixture(scope="module")
def recon_case() -> tuple[ReconTask, torch.nn.Module, dict, torch.Tensor]:
    """A U-Net, a batch of 64×64 raw-scale (~1e-4) slices, and an imperfect output."""
    volumes = {f"v{index}": tiny_volume(index, slices=3, size=64) for index in range(2)}
    batch = _batch(volumes, batch_size=3)
    task = ReconTask("unet2d", {"chans": 2})
    torch.manual_seed(0)
    model = task.build_model()
    target = task.target(batch)
    generator = torch.Generator().manual_seed(1)
    output = target + 0.3 * target.std() * torch.randn(target.shape, generator=generator)
    return task, model, batch, output


def test_recon_criterion_under_bf16_autocast_equals_float32(recon_case) -> None:
    task, _, batch, output = recon_case
    reference = task.criterion(output, task.target(batch), batch, reduction="none")
    with bf16_autocast():
        mixed = task.criterion(output, task.target(batch), batch, reduction="none")
        ssim = slice_ssim(output, task.target(batch), batch.max_value)
    assert mixed.dtype == torch.float32
    assert torch.allclose(mixed, reference, rtol=0, atol=TOLERANCE), (mixed, reference)
    reference_ssim = slice_ssim(output, task.target(batch), batch.max_value)
    assert torch.allclose(ssim, reference_ssim, rtol=0, atol=TOLERANCE)


def test_recon_loss_under_autocast_scores_the_bf16_forward_in_float32(recon_case) -> None:
    """The network runs under autocast; the loss of its output is the float32 loss."""
    task, model, batch, _ = recon_case
    with bf16_autocast():
        loss = task.loss(model, batch)
        output = task.forward(model, batch)
    assert not torch.equal(output, task.forward(model, batch))  # the network ran in bf16
    reference = task.criterion(output.float(), task.target(batch), batch)
    assert loss.dtype == torch.float32
    assert abs(loss.item() - reference.item()) <= TOLERANCE


def test_recon_criterion_accepts_bf16_outputs_and_backpropagates(recon_case) -> None:
    task, _, batch, output = recon_case
    low = output.bfloat16().requires_grad_()
    with bf16_autocast():
        loss = task.criterion(low, task.target(batch), batch)
    reference = task.criterion(low.detach().float(), task.target(batch), batch)
    assert abs(loss.item() - reference.item()) <= 1e-6
    loss.backward()
    assert low.grad is not None and low.grad.dtype == torch.bfloat16
    assert torch.isfinite(low.grad.float()).all()


@pytest.mark.parametrize("loss", ["ce", "dice_ce"])
def test_segmentation_criterion_under_autocast_equals_float32(loss: str) -> None:
    task = make_task(training={"patch_size": [16, 16, 8], "batch_size": 2, "loss": loss})
    torch.manual_seed(0)
    model = task.build_model()
    batch = segmentation_batch()
    logits = task.forward(model, batch).detach()
    reference = task.criterion(logits, task.target(batch), batch, "none")
    soft = torch.softmax(logits * 0.5, dim=1)
    soft_reference = task.criterion(logits, soft, batch, "none")
    with bf16_autocast():
        mixed = task.criterion(logits, task.target(batch), batch, "none")
        from_bf16 = task.criterion(logits.bfloat16(), task.target(batch), batch, "none")
        soft_mixed = task.criterion(logits, soft, batch, "none")
        model_loss = task.loss(model, batch)
        model_logits = task.forward(model, batch)
    assert mixed.dtype == torch.float32
    assert torch.allclose(mixed, reference, rtol=0, atol=TOLERANCE)
    assert torch.allclose(soft_mixed, soft_reference, rtol=0, atol=TOLERANCE)
    exact = task.criterion(logits.bfloat16().float(), task.target(batch), batch, "none")
    assert torch.allclose(from_bf16, exact, rtol=0, atol=1e-6)
    assert model_logits.dtype == torch.bfloat16
    model_reference = task.criterion(model_logits.float(), task.target(batch), batch)
    assert abs(model_loss.item() - model_reference.item()) <= TOLERANCE


def test_features_mse_under_autocast_equals_float32() -> None:
    generator = torch.Generator().manual_seed(0)
    features = tuple(torch.randn(2, 4, 8, 8, generator=generator) * s for s in (1e-4, 1.0))
    targets = tuple(torch.randn(2, 4, 8, 8, generator=generator) * s for s in (1e-4, 1.0))
    scales = (1e-8, 1.0)
    reference = features_mse(features, targets, scales)
    with bf16_autocast():
        mixed = features_mse(tuple(f.bfloat16() for f in features), targets, scales)
    exact = features_mse(tuple(f.bfloat16().float() for f in features), targets, scales)
    assert mixed.dtype == torch.float32
    assert torch.allclose(mixed, exact, rtol=1e-6, atol=0)
    assert torch.allclose(reference, exact, rtol=1e-2, atol=0)


def test_full_precision_turns_autocast_off_and_keeps_float64() -> None:
    seen: dict[str, object] = {}

    @full_precision
    def probe(x: torch.Tensor, pair: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        seen["autocast"] = torch.is_autocast_enabled("cpu")
        seen["dtypes"] = (x.dtype, pair[0].dtype, pair[1].dtype)
        return torch.nn.functional.linear(x, x)

    x = torch.ones(2, 2, dtype=torch.bfloat16)
    with bf16_autocast():
        assert torch.is_autocast_enabled("cpu")
        result = probe(x, (torch.ones(1, dtype=torch.float64), torch.ones(1, dtype=torch.float16)))
        assert torch.is_autocast_enabled("cpu")  # restored after the call
    assert seen == {"autocast": False, "dtypes": (torch.float32, torch.float64, torch.float32)}
    assert result.dtype == torch.float32
    assert probe.__name__ == "probe"
    batch = to_float32(
        {
            "a": torch.ones(1, dtype=torch.bfloat16),
            "ids": ["x"],
            "n": torch.ones(1, dtype=torch.long),
        }
    )
    assert batch["a"].dtype == torch.float32 and batch["ids"] == ["x"]
    assert batch["n"].dtype == torch.long
