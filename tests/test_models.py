"""Encoder, depth decoder, pose networks: shapes, ranges, checkpoint keys.

docs/method.md#encoder, docs/method.md#decoder, docs/method.md#pose-networks,
docs/method.md#checkpoints.
"""

from __future__ import annotations

import math
from functools import cache

import pytest
import torch
import torchvision.models as tvm

from depthhints.errors import ConfigError
from depthhints.models import (
    DepthDecoder,
    PoseCNN,
    PoseDecoder,
    ResnetEncoder,
    default_weights_path,
    disp_to_depth,
    encoder_checkpoint,
    filter_state_dict,
    scale_posecnn_translation,
    transformation_from_parameters,
    weights_file_name,
)

H, W = 64, 96
CHANNELS = {18: [64, 64, 128, 256, 512], 50: [64, 256, 512, 1024, 2048]}


@cache
def _models(num_layers: int) -> tuple[ResnetEncoder, DepthDecoder]:
    torch.manual_seed(0)
    enc = ResnetEncoder(num_layers).eval()
    return enc, DepthDecoder(enc.num_ch_enc).eval()


@pytest.fixture
def fake_imagenet(tmp_path):
    """A ResNet18 state dict in torchvision's layout, saved where a user would put it."""
    torch.manual_seed(1)
    state = tvm.resnet18(weights=None).state_dict()
    path = tmp_path / weights_file_name(18)
    torch.save(state, path)
    return path, state


@pytest.mark.parametrize("num_layers", [18, 50])
def test_encoder_decoder_shapes_and_range(num_layers):
    enc, dec = _models(num_layers)
    assert enc.num_ch_enc == CHANNELS[num_layers]
    with torch.no_grad():
        feats = enc(torch.rand(1, 3, H, W))
        out = dec(feats)
    assert len(feats) == 5
    for i, (f, ch) in enumerate(zip(feats, CHANNELS[num_layers], strict=True)):
        assert f.shape == (1, ch, H // 2 ** (i + 1), W // 2 ** (i + 1))
    assert sorted(out) == [("disp", s) for s in range(4)]
    for s in range(4):
        disp = out[("disp", s)]
        assert disp.shape == (1, 1, H // 2**s, W // 2**s)
        assert disp.min() > 0 and disp.max() < 1


def test_encoder_uses_scalar_normalisation():
    enc, _ = _models(18)
    x = torch.rand(1, 3, H, W)
    net = enc.encoder
    with torch.no_grad():
        expected = net.relu(net.bn1(net.conv1((x - 0.45) / 0.225)))
        assert torch.allclose(enc(x)[0], expected)


def test_encoder_rejects_bad_config_and_input():
    with pytest.raises(ConfigError, match="num_layers=20"):
        ResnetEncoder(20)
    enc, _ = _models(18)
    with pytest.raises(ConfigError, match=r"expected \(B, 3, H, W\)"):
        enc(torch.rand(1, 6, H, W))


def test_fc_head_is_frozen_but_kept_for_key_parity():
    enc, _ = _models(18)
    assert "encoder.fc.weight" in enc.state_dict()
    assert not any(p.requires_grad for p in enc.encoder.fc.parameters())


def test_encoder_state_dict_keys():
    sd18 = _models(18)[0].state_dict()
    assert all(k.startswith("encoder.") for k in sd18)
    assert sd18["encoder.conv1.weight"].shape == (64, 3, 7, 7)
    assert "encoder.bn1.running_mean" in sd18
    assert sd18["encoder.layer4.1.conv2.weight"].shape == (512, 512, 3, 3)
    assert sd18["encoder.fc.weight"].shape == (1000, 512)
    sd50 = _models(50)[0].state_dict()
    assert sd50["encoder.layer1.0.downsample.0.weight"].shape == (256, 64, 1, 1)
    assert sd50["encoder.layer4.2.conv3.weight"].shape == (2048, 512, 1, 1)
    # Same keys as a plain torchvision ResNet, under the "encoder." prefix.
    assert {k.removeprefix("encoder.") for k in sd18} == set(tvm.resnet18().state_dict())


def test_decoder_state_dict_keys():
    sd = _models(18)[1].state_dict()
    expected = {
        "decoder.0.conv.conv.weight": (256, 512, 3, 3),  # upconv(4,0)
        "decoder.1.conv.conv.weight": (256, 512, 3, 3),  # upconv(4,1): 256 + skip 256
        "decoder.7.conv.conv.weight": (32, 96, 3, 3),  # upconv(1,1): 32 + skip 64
        "decoder.8.conv.conv.weight": (16, 32, 3, 3),  # upconv(0,0)
        "decoder.9.conv.conv.weight": (16, 16, 3, 3),  # upconv(0,1): no skip
        "decoder.10.conv.weight": (1, 16, 3, 3),  # dispconv(0)
        "decoder.13.conv.weight": (1, 128, 3, 3),  # dispconv(3)
        "decoder.13.conv.bias": (1,),
    }
    for key, shape in expected.items():
        assert sd[key].shape == shape, key
    assert len(sd) == 28  # 10 ConvBlocks + 4 dispconvs, weight and bias each


def test_checkpoint_round_trip(tmp_path):
    enc, dec = _models(18)
    torch.save(encoder_checkpoint(enc, H, W, use_stereo=True), tmp_path / "encoder.pth")
    torch.save(dec.state_dict(), tmp_path / "depth.pth")

    enc_state = torch.load(tmp_path / "encoder.pth", weights_only=True)
    assert (enc_state["height"], enc_state["width"], enc_state["use_stereo"]) == (H, W, True)
    torch.manual_seed(123)
    enc2, dec2 = ResnetEncoder(18).eval(), DepthDecoder(enc.num_ch_enc).eval()
    enc2.load_state_dict(filter_state_dict(enc2, enc_state))
    dec2.load_state_dict(torch.load(tmp_path / "depth.pth", weights_only=True))
    x = torch.rand(1, 3, H, W)
    with torch.no_grad():
        assert torch.equal(dec(enc(x))[("disp", 0)], dec2(enc2(x))[("disp", 0)])


def test_decoder_custom_scales_and_outputs():
    dec = DepthDecoder(CHANNELS[18], scales=[0], num_output_channels=2)
    feats = [
        torch.rand(1, c, H // 2 ** (i + 1), W // 2 ** (i + 1)) for i, c in enumerate(CHANNELS[18])
    ]
    out = dec(feats)
    assert list(out) == [("disp", 0)] and out[("disp", 0)].shape == (1, 2, H, W)
    with pytest.raises(ConfigError, match="scales"):
        DepthDecoder(CHANNELS[18], scales=[5])


def test_disp_to_depth_by_hand():
    scaled, depth = disp_to_depth(torch.tensor([0.0, 0.5, 1.0]), 0.1, 100.0)
    # min_disp = 0.01, max_disp = 10: 0.01 + 9.99 * [0, 0.5, 1]
    assert torch.allclose(scaled, torch.tensor([0.01, 5.005, 10.0]))
    assert torch.allclose(depth, torch.tensor([100.0, 1 / 5.005, 0.1]))
    with pytest.raises(ConfigError, match="min_depth"):
        disp_to_depth(torch.zeros(1), 10.0, 1.0)


def test_pretrained_from_path_and_multi_image_tiling(fake_imagenet):
    path, state = fake_imagenet
    single = ResnetEncoder(18, pretrained=True, weights_path=path).eval()
    assert torch.equal(single.encoder.conv1.weight, state["conv1.weight"])
    assert torch.equal(single.encoder.layer3[0].conv1.weight, state["layer3.0.conv1.weight"])

    pair = ResnetEncoder(18, pretrained=True, num_input_images=2, weights_path=path).eval()
    w = pair.encoder.conv1.weight
    assert w.shape == (64, 6, 7, 7)
    assert torch.allclose(w[:, :3], state["conv1.weight"] / 2)
    assert torch.allclose(w[:, 3:], state["conv1.weight"] / 2)
    # Two identical images give the same response as one image through the original weights.
    x = torch.rand(1, 3, H, W)
    with torch.no_grad():
        assert torch.allclose(pair(torch.cat([x, x], 1))[-1], single(x)[-1], atol=1e-5)


def test_pretrained_from_hub_cache(fake_imagenet, monkeypatch):
    path, state = fake_imagenet
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(path.parent.parent / "hub"))
    cached = default_weights_path(18)
    assert cached.name == "resnet18-f37072fd.pth" and cached.parent.name == "checkpoints"
    cached.parent.mkdir(parents=True)
    path.rename(cached)
    enc = ResnetEncoder(18, pretrained=True)
    assert torch.equal(enc.encoder.conv1.weight, state["conv1.weight"])


def test_separate_resnet_pose():
    torch.manual_seed(0)
    pose_enc = ResnetEncoder(18, num_input_images=2).eval()
    assert pose_enc.state_dict()["encoder.conv1.weight"].shape == (64, 6, 7, 7)
    pose = PoseDecoder(pose_enc.num_ch_enc, num_input_features=1, num_frames_to_predict_for=2)
    sd = pose.state_dict()
    assert sd["net.0.weight"].shape == (256, 512, 1, 1)
    assert sd["net.1.weight"].shape == (256, 256, 3, 3)
    assert sd["net.3.weight"].shape == (12, 256, 1, 1)
    with torch.no_grad():
        axisangle, translation = pose([pose_enc(torch.rand(2, 6, H, W))])
    assert axisangle.shape == translation.shape == (2, 2, 1, 3)


def test_shared_pose_decoder():
    feats = [torch.rand(1, c, 2, 3) for c in CHANNELS[18]]
    pose = PoseDecoder(CHANNELS[18], num_input_features=3)
    assert pose.state_dict()["net.1.weight"].shape == (256, 768, 3, 3)
    axisangle, translation = pose([feats, feats, feats])
    assert axisangle.shape == translation.shape == (1, 2, 1, 3)
    with pytest.raises(ConfigError, match="num_input_features=3"):
        pose([feats])


def test_posecnn():
    net = PoseCNN(3)
    sd = net.state_dict()
    assert sd["net.0.weight"].shape == (16, 9, 7, 7)
    assert sd["net.1.weight"].shape == (32, 16, 5, 5)
    assert sd["net.6.weight"].shape == (256, 256, 3, 3)
    assert sd["pose_conv.weight"].shape == (12, 256, 1, 1)
    axisangle, translation = net(torch.rand(1, 9, H, W))
    assert axisangle.shape == translation.shape == (1, 2, 1, 3)
    depth = torch.full((1, 1, 4, 4), 2.0)
    assert torch.allclose(scale_posecnn_translation(translation, depth), translation * 0.5)


def test_transformation_identity_and_known_motion():
    zero = torch.zeros(1, 1, 3)
    assert torch.allclose(transformation_from_parameters(zero, zero), torch.eye(4)[None])
    assert torch.allclose(transformation_from_parameters(zero, zero, invert=True), torch.eye(4))

    axisangle = torch.tensor([[[0.0, 0.0, math.pi / 2]]])  # 90° about z
    translation = torch.tensor([[[1.0, 2.0, 3.0]]])
    expected = torch.tensor(
        [[0.0, -1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 2.0], [0.0, 0.0, 1.0, 3.0], [0.0, 0.0, 0.0, 1.0]]
    )
    m = transformation_from_parameters(axisangle, translation)
    assert torch.allclose(m[0], expected, atol=1e-6)
    m_inv = transformation_from_parameters(axisangle, translation, invert=True)
    assert torch.allclose(m_inv[0], torch.linalg.inv(expected), atol=1e-6)


def test_rotation_matches_matrix_exponential():
    torch.manual_seed(0)
    v = torch.randn(4, 1, 3, dtype=torch.float64)
    m = transformation_from_parameters(v, torch.zeros_like(v))
    x, y, z = v[:, 0].unbind(-1)
    o = torch.zeros_like(x)
    skew = torch.stack([o, -z, y, z, o, -x, -y, x, o], -1).view(-1, 3, 3)
    assert torch.allclose(m[:, :3, :3], torch.linalg.matrix_exp(skew), atol=1e-6)
