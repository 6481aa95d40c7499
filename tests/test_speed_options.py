"""The speed options (precision, channels_last, compile): the networks change how they compute,
nothing else does."""

import torch
from torch.utils.data import default_collate

from depthhints.train.data import build_datasets, device_batch
from depthhints.train.model import build_model
from depthhints.train.step import forward_losses
from tests.helpers import tiny_config


def _batch(config):
    train, _ = build_datasets(config)
    return device_batch(train, default_collate([train[0], train[1]]), torch.device("cpu"))


def test_bf16_runs_the_networks_in_bf16_and_the_rest_in_fp32(tree, tmp_path):
    hints = {"use_depth_hints": True, "depth_hint_path": str(tree["hints"])}
    fp32 = tiny_config(tree, tmp_path, **hints)
    bf16 = fp32.replace(precision="bf16")
    batch = _batch(fp32)
    torch.manual_seed(0)
    reference = build_model(fp32)
    model = build_model(bf16)
    model.load_state_dict(reference.state_dict())
    seen = []
    model.encoder.register_forward_hook(lambda m, i, out: seen.append(out[-1].dtype))
    outputs, losses = forward_losses(model, batch, bf16)
    _, expected = forward_losses(reference, batch, fp32)
    assert seen == [torch.bfloat16]
    tensors = [v for v in outputs.values() if torch.is_tensor(v)]
    assert tensors and all(t.dtype == torch.float32 for t in tensors)
    assert losses.total.dtype == torch.float32
    torch.testing.assert_close(losses.total, expected.total, rtol=0.05, atol=0)
    assert not torch.equal(losses.total, expected.total)


def test_channels_last_and_compile_keep_the_published_checkpoint_keys(tree, tmp_path):
    config = tiny_config(tree, tmp_path)
    plain = build_model(config)
    fast = build_model(config.replace(channels_last=True, compile=True))
    assert list(fast.state_dict()) == list(plain.state_dict())
    assert list(fast.encoder.state_dict()) == list(plain.encoder.state_dict())
    conv = fast.encoder.encoder.conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()


def test_channels_last_gives_the_fp32_losses(tree, tmp_path):
    config = tiny_config(tree, tmp_path)
    batch = _batch(config)
    torch.manual_seed(0)
    plain = build_model(config)
    fast = build_model(config.replace(channels_last=True))
    fast.load_state_dict(plain.state_dict())
    torch.manual_seed(1)
    _, expected = forward_losses(plain, batch, config)
    torch.manual_seed(1)
    _, losses = forward_losses(fast, batch, config.replace(channels_last=True))
    torch.testing.assert_close(losses.total, expected.total, rtol=1e-4, atol=0)
