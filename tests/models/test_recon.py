"""Reconstruction networks: MONAI's VarNet (with encoder/decoder split) and the image U-Net."""

from __future__ import annotations

import pytest
import torch
from monai.apps.reconstruction.networks.nets.varnet import VariationalNetworkModel

from med_unlearning.models import available_architectures, build_model
from med_unlearning.models.recon import ImageUNet, ReconVarNet, center_crop

TINY_VARNET = {"num_cascades": 2, "chans": 2, "sens_chans": 2}


def _kspace_and_mask(batch: int = 2, coils: int = 3, size: int = 32, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    kspace = torch.randn(batch, coils, size, size, 2, generator=generator) * 1e-4
    mask = torch.zeros(batch, 1, 1, size, 1, dtype=torch.bool)
    mask[..., size // 2 - 2 : size // 2 + 2, :] = True
    for item in range(batch):
        mask[item, ..., item + 1 :: 6, :] = True  # per-item equispaced lines
    return kspace * mask, mask


def test_architectures_are_registered() -> None:
    assert {"varnet", "unet2d"} <= set(available_architectures())
    assert isinstance(build_model("varnet", TINY_VARNET), ReconVarNet)
    assert isinstance(build_model("unet2d", {"chans": 2}), ImageUNet)


def test_study_sizes_give_about_thirty_million_parameters() -> None:
    model = build_model("varnet", {"num_cascades": 12, "chans": 18, "sens_chans": 8})
    count = sum(parameter.numel() for parameter in model.parameters())
    assert 29.0e6 < count < 31.0e6  # the study reports 29.9M


@pytest.mark.parametrize("name", ["varnet", "unet2d"])
def test_only_four_pools_are_accepted(name: str) -> None:
    with pytest.raises(ValueError, match="4 pooling levels"):
        build_model(name, {"pools": 3})


def test_varnet_matches_monai_forward_and_returns_rss_images() -> None:
    torch.manual_seed(0)
    model = build_model("varnet", TINY_VARNET)
    kspace, mask = _kspace_and_mask()
    shared_mask = mask[:1]
    output = model(kspace * shared_mask, shared_mask)
    reference = VariationalNetworkModel.forward(model, kspace * shared_mask, shared_mask)
    assert output.shape == (2, 32, 32)
    torch.testing.assert_close(output, reference, rtol=0, atol=0)
    assert (output >= 0).all()


def test_varnet_accepts_one_mask_per_item_and_is_scale_equivariant() -> None:
    torch.manual_seed(0)
    model = build_model("varnet", TINY_VARNET).eval()
    kspace, mask = _kspace_and_mask()
    with torch.no_grad():
        output = model(kspace, mask)
        scaled = model(kspace * 1e4, mask)
        single = model(kspace[1:], mask[1:])
    torch.testing.assert_close(output[1:], single, rtol=1e-4, atol=1e-9)
    torch.testing.assert_close(scaled, output * 1e4, rtol=1e-3, atol=1e-6)


def test_varnet_encoder_decoder_split_reproduces_forward() -> None:
    torch.manual_seed(0)
    model = build_model("varnet", {"num_cascades": 3, "chans": 2, "sens_chans": 2})
    kspace, mask = _kspace_and_mask()
    for count in (0, 1, 3):
        features = model.encode(kspace, mask, count)
        torch.testing.assert_close(model.decode(features, kspace, mask, count), model(kspace, mask))
        encoder = {id(p) for m in model.encoder_modules(count) for p in m.parameters()}
        decoder = {id(p) for m in model.decoder_modules(count) for p in m.parameters()}
        assert not encoder & decoder
        assert encoder | decoder == {id(p) for p in model.parameters()}


def test_varnet_rejects_bad_inputs() -> None:
    model = build_model("varnet", TINY_VARNET)
    kspace, mask = _kspace_and_mask()
    with pytest.raises(ValueError, match=r"\[B, coils, H, W, 2\]"):
        model(kspace[..., 0], mask)
    with pytest.raises(ValueError, match="mask of shape"):
        model(kspace, mask[..., :16, :])
    no_centre = torch.zeros_like(mask)
    no_centre[..., ::4, :] = True
    no_centre[..., 16, :] = False
    with pytest.raises(ValueError, match="centre column"):
        model(kspace, no_centre)


def test_image_unet_keeps_size_scale_and_split() -> None:
    torch.manual_seed(0)
    model = build_model("unet2d", {"chans": 2}).eval()
    images = torch.rand(3, 40, 36) * 1e-4
    with torch.no_grad():
        output = model(images)
        scaled = model(images * 1e4)
        split = model.decode(model.encode(images), images)
    assert output.shape == (3, 40, 36)
    torch.testing.assert_close(scaled, output * 1e4, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(split, output)
    encoder = {id(p) for m in model.encoder_modules() for p in m.parameters()}
    decoder = {id(p) for m in model.decoder_modules() for p in m.parameters()}
    assert not encoder & decoder and encoder | decoder == {id(p) for p in model.parameters()}


def test_center_crop_follows_fastmri_convention() -> None:
    images = torch.arange(6 * 8, dtype=torch.float32).reshape(1, 6, 8)
    cropped = center_crop(images, (4, 4))
    torch.testing.assert_close(cropped, images[:, 1:5, 2:6])
    assert center_crop(images, (10, 10)).shape == (1, 6, 8)


def test_stable_complex_unet_matches_monai_and_survives_real_inputs() -> None:
    from monai.apps.reconstruction.networks.nets.complex_unet import ComplexUnet

    from med_unlearning.models.recon import StableComplexUnet, unet_features

    torch.manual_seed(0)
    stable = StableComplexUnet(spatial_dims=2, features=unet_features(2)).eval()
    reference = ComplexUnet(spatial_dims=2, features=unet_features(2)).eval()
    reference.load_state_dict(stable.state_dict())
    images = torch.randn(2, 1, 32, 32, 2) * 1e-4
    with torch.no_grad():
        torch.testing.assert_close(stable(images), reference(images))
        real_only = images.clone()
        real_only[..., 1] = 0
        assert torch.isnan(reference(real_only)).any()  # MONAI divides by a zero std
        assert torch.isfinite(stable(real_only)).all()


def test_identity_init_starts_from_the_zero_filled_image() -> None:
    from monai.apps.reconstruction.complex_utils import complex_abs_t
    from monai.apps.reconstruction.mri_utils import root_sum_of_squares_t
    from monai.networks.blocks.fft_utils_t import ifftn_centered_t

    torch.manual_seed(0)
    model = build_model("varnet", {**TINY_VARNET, "identity_init": True})
    kspace, mask = _kspace_and_mask()
    zero_filled = root_sum_of_squares_t(complex_abs_t(ifftn_centered_t(kspace, spatial_dims=2)), 1)
    output = model(kspace, mask)
    torch.testing.assert_close(output, zero_filled)
    output.sum().backward()  # the zero last layers still learn
    last = model.cascades[0].model.unet.final_conv.weight
    assert last.grad is not None and last.grad.abs().sum() > 0
    plain = build_model("varnet", TINY_VARNET)
    assert not torch.allclose(plain(kspace, mask), zero_filled)
