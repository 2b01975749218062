"""vdlearn.nn: embeddings, blocks, attention and the UNet2D (shapes, behaviour, speed paths on CPU)."""
import math

import pytest
import torch
import torch.nn.functional as F

from vdlearn.nn import (DenoisingMLP, ResBlock, TimestepResBlock, SelfAttention, SpatialSelfAttention, UNet2D, count_parameters, group_norm, prepare_model, timestep_embedding)


def small_unet(**kw):
    opts = dict(in_channels=1, base_channels=16, channel_mults=(1, 2), num_res_blocks=1,
                attention_levels=(1,), num_classes=10)
    opts.update(kw)
    return UNet2D(**opts)


def randomize_(model):
    """Give the zero-initialised layers random weights, so outputs depend on every input."""
    torch.manual_seed(123)
    for p in model.parameters():
        if torch.all(p == 0):
            p.data.normal_(0, 0.05)
    return model


# ---- embeddings, blocks, attention -----------------------------------------------------------
def test_timestep_embedding_follows_the_formula():
    t = torch.tensor([0, 1, 17, 999])
    emb = timestep_embedding(t, 8)
    for i in range(4):
        w = 10000.0 ** (-i / 4)
        assert torch.allclose(emb[:, i], torch.cos(t * w).float(), atol=1e-5)
        assert torch.allclose(emb[:, 4 + i], torch.sin(t * w).float(), atol=1e-5)
    assert timestep_embedding(t, 7).shape == (4, 7)
    with pytest.raises(ValueError, match=r"shape \(B,\)"):
        timestep_embedding(torch.zeros(2, 2), 8)


def test_timestep_resblock_starts_as_identity_and_uses_the_embedding():
    block = TimestepResBlock(8, 8, emb_dim=16)
    x, emb = torch.randn(2, 8, 5, 5), torch.randn(2, 16)
    assert torch.equal(block(x, emb), x)  # zero-initialised last conv
    randomize_(block)
    assert not torch.allclose(block(x, emb), block(x, emb + 1))
    wide = TimestepResBlock(8, 12, emb_dim=16)
    assert wide(x, emb).shape == (2, 12, 5, 5)


def test_plain_resblock_is_a_residual_of_two_convolutions():
    torch.manual_seed(0)
    block, x = ResBlock(8, 8), torch.randn(2, 8, 5, 5)
    assert isinstance(block.skip, torch.nn.Identity)
    torch.testing.assert_close(block(x), x + block.block(x))
    assert [m.num_groups for m in block.modules() if isinstance(m, torch.nn.GroupNorm)] == [2, 2]  # 4 channels each
    wide = ResBlock(8, 12)
    assert wide(x).shape == (2, 12, 5, 5) and isinstance(wide.skip, torch.nn.Conv2d)


def test_group_norm_picks_a_group_count_that_divides():
    assert group_norm(64, min_group_size=4).num_groups == 16 and group_norm(16, min_group_size=4).num_groups == 4
    assert group_norm(3, min_group_size=4).num_groups == 1  # too few channels: one group
    with pytest.raises(ValueError, match="channels"):
        group_norm(0)
    assert group_norm(64).num_groups == 32 and group_norm(24).num_groups == 24
    assert group_norm(48).num_groups == 24 and group_norm(7).num_groups == 7


def test_self_attention_matches_softmax_attention_written_out():
    torch.manual_seed(0)
    attn = randomize_(SelfAttention(8, num_heads=2))
    x = torch.randn(3, 5, 8)
    q, k, v = attn.qkv(x).chunk(3, dim=-1)
    heads = lambda z: z.view(3, 5, 2, 4).transpose(1, 2)
    w = torch.softmax(heads(q) @ heads(k).transpose(-1, -2) / math.sqrt(4), dim=-1)
    want = attn.proj((w @ heads(v)).transpose(1, 2).reshape(3, 5, 8))
    assert torch.allclose(attn(x), want, atol=1e-5)
    with pytest.raises(ValueError, match="divisible"):
        SelfAttention(10, num_heads=4)


def test_spatial_attention_is_residual_and_mixes_all_positions():
    layer = SpatialSelfAttention(8, num_heads=2)
    x = torch.randn(2, 8, 4, 4)
    assert torch.equal(layer(x), x)  # zero-initialised output projection
    randomize_(layer)
    y = x.clone()
    y[:, :, 0, 0] += 1.0  # a change in one corner reaches the opposite corner
    assert not torch.allclose(layer(x)[:, :, 3, 3], layer(y)[:, :, 3, 3])


# ---- UNet2D ------------------------------------------------------------------------------------
@pytest.mark.parametrize("size, mults", [(28, (1, 2, 2)), (32, (1, 2, 2, 2)), (20, (1, 2, 2)), (14, (1, 2, 2))])
def test_unet_keeps_the_input_shape(size, mults):
    net = small_unet(in_channels=3, channel_mults=mults, attention_levels=(1,))
    x = torch.randn(2, 3, size, size)
    assert net(x, torch.tensor([0, 999]), torch.tensor([1, 2])).shape == x.shape


def test_unet_starts_at_zero_and_depends_on_time_and_class():
    net = small_unet()
    x, t, y = torch.randn(2, 1, 16, 16), torch.tensor([10, 500]), torch.tensor([3, 7])
    assert torch.equal(net(x, t, y), torch.zeros_like(x))
    randomize_(net)
    out = net(x, t, y)
    assert not torch.allclose(out, net(x, t + 100, y))
    assert not torch.allclose(out, net(x, t, (y + 1) % 10))
    assert torch.equal(net(x, t), net(x, t, torch.full((2,), net.null_label)))  # y=None is the null label
    assert torch.equal(net(x, torch.tensor(10), y)[0], net(x, torch.tensor([10, 10]), y)[0])


def test_unet_is_seeded_and_learns():
    torch.manual_seed(0)
    a = small_unet(num_classes=None)
    torch.manual_seed(0)
    b = small_unet(num_classes=None)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    x = torch.randn(8, 1, 8, 8)
    t = torch.randint(0, 1000, (8,))
    opt = torch.optim.AdamW(a.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = F.mse_loss(a(x, t), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_unet_errors_are_explained():
    net = small_unet()
    x = torch.randn(2, 1, 8, 8)
    with pytest.raises(ValueError, match=r"expects images \(B, 1, H, W\)"):
        net(torch.randn(2, 3, 8, 8), torch.zeros(2))
    with pytest.raises(ValueError, match=r"t must have shape \(2,\)"):
        net(x, torch.zeros(3))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\]"):
        net(x, torch.zeros(2), torch.tensor([0, 11]))
    with pytest.raises(ValueError, match="unconditional"):
        small_unet(num_classes=None)(x, torch.zeros(2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="attention_levels"):
        small_unet(channel_mults=(1, 2), attention_levels=(2,))


def test_channels_last_gives_the_same_numbers():
    net = randomize_(small_unet())
    x, t, y = torch.randn(2, 1, 16, 16), torch.tensor([3, 300]), torch.tensor([1, 2])
    want = net(x, t, y)
    fast = prepare_model(net, "cpu", channels_last=True)
    assert fast.input_conv.weight.is_contiguous(memory_format=torch.channels_last)
    got = fast(x.contiguous(memory_format=torch.channels_last), t, y)
    assert torch.allclose(got, want, atol=1e-5)
    assert prepare_model(small_unet(), "cpu", compile=True).__class__ is UNet2D  # no compile on CPU


def test_bf16_autocast_runs_and_stays_close_to_float32():
    net = randomize_(small_unet())
    x, t, y = torch.randn(4, 1, 16, 16), torch.tensor([1, 10, 100, 900]), torch.tensor([0, 1, 2, 3])
    want = net(x, t, y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = net(x, t, y)
    assert got.dtype == torch.bfloat16 and torch.isfinite(got).all()
    assert (got.float() - want).norm() / want.norm() < 0.05


def test_unet_compiles_without_graph_breaks():
    net = randomize_(small_unet())
    x, t, y = torch.randn(2, 1, 8, 8), torch.tensor([3, 300]), torch.tensor([1, 2])
    compiled = torch.compile(net, backend="eager", fullgraph=True)  # fullgraph: a break is an error
    assert torch.allclose(compiled(x, t, y), net(x, t, y), atol=1e-6)


def test_unet_parameter_count_grows_with_width():
    assert count_parameters(small_unet(base_channels=32)) > 3 * count_parameters(small_unet())


def test_denoising_mlp():
    net = DenoisingMLP(2)
    assert net(torch.randn(5, 2), torch.randint(0, 100, (5,))).shape == (5, 2)
    with pytest.raises(ValueError, match=r"points \(B, 2\)"):
        net(torch.randn(5, 3), torch.zeros(5))


@pytest.mark.parametrize("kwargs, name", [(dict(base_channels=0), "base_channels"), (dict(in_channels=-1), "in_channels"),
                                          (dict(channel_mults=(1, 0)), "channel_mults"),
                                          (dict(num_res_blocks=0), "num_res_blocks")])
def test_unet2d_sizes_that_make_no_network_are_explained(kwargs, name):
    with pytest.raises(ValueError, match=name):
        UNet2D(**kwargs)

