"""Sequence and video-GAN building blocks against hand computation, and their learning on a fixed batch."""

from __future__ import annotations

import csv
import math

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from vidgen.families.sequence import FramePredictionModule
from vidgen.families.video_gan import VideoGANModule
from vidgen.losses.frame import FrameBCELoss, FrameL1Loss, FrameMSELoss
from vidgen.losses.gan import NonSaturatingGANLoss
from vidgen.nets.convlstm import ConvLSTMCell, ConvLSTMEncoderForecaster
from vidgen.nets.elman_rnn import ElmanFramePredictor
from vidgen.nets.lstm_autoencoder import LSTMAutoencoder
from vidgen.nets.mocogan import MoCoGANDiscriminator, MoCoGANGenerator
from vidgen.nets.vgan import VGANDiscriminator, VGANGenerator


def _sig(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def test_convlstm_cell_matches_shi_eq3_by_hand() -> None:
    # 1 input channel, 1 hidden channel, 1x1 kernel: every gate is a scalar affine map of (x, h).
    cell = ConvLSTMCell(1, 1, kernel_size=1)
    w = torch.tensor([[0.5, -0.3], [0.2, 0.4], [-0.7, 0.1], [0.3, 0.6]])  # rows: i, f, g, o; cols: x, h
    b = torch.tensor([0.1, 1.0, -0.2, 0.0])
    with torch.no_grad():
        cell.gates.weight.copy_(w.view(4, 2, 1, 1))
        cell.gates.bias.copy_(b)
    x, h, c = 0.8, -0.5, 0.3
    pre = [w[k, 0].item() * x + w[k, 1].item() * h + b[k].item() for k in range(4)]
    c_new = _sig(pre[1]) * c + _sig(pre[0]) * math.tanh(pre[2])
    h_new = _sig(pre[3]) * math.tanh(c_new)
    full = lambda v: torch.full((1, 1, 3, 3), v)  # noqa: E731
    h_out, c_out = cell(full(x), (full(h), full(c)))
    assert h_out.shape == c_out.shape == (1, 1, 3, 3)
    assert torch.allclose(c_out, full(c_new), atol=1e-6) and torch.allclose(h_out, full(h_new), atol=1e-6)


def test_elman_predictor_matches_elman_1990_recurrence_by_hand() -> None:
    """``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`` from ``h = 0`` over the context frames, then
    free-running: the read-out ``W_o h + b_o`` of each step is the predicted frame's logits and its
    sigmoid the next input, written here with numpy from the net's weights."""
    torch.manual_seed(0)
    net = ElmanFramePredictor(channels=1, image_size=3, hidden_size=4).double()
    context = torch.rand(2, 3, 1, 3, 3, dtype=torch.float64)
    w_ih, w_hh = net.cell.weight_ih.detach().numpy(), net.cell.weight_hh.detach().numpy()
    b = (net.cell.bias_ih + net.cell.bias_hh).detach().numpy()
    w_o, b_o = net.readout.weight.detach().numpy(), net.readout.bias.detach().numpy()
    frames = context.flatten(2).numpy()  # (B, T, 9)
    h = np.zeros((2, 4))
    for t in range(3):  # every context frame, the last one giving the first prediction
        h = np.tanh(frames[:, t] @ w_ih.T + h @ w_hh.T + b)
    expected = []
    for _ in range(2):
        logits = h @ w_o.T + b_o
        expected.append(logits)
        h = np.tanh(1 / (1 + np.exp(-logits)) @ w_ih.T + h @ w_hh.T + b)
    out = net(context, 2)["future"]
    assert out.shape == (2, 2, 1, 3, 3)
    np.testing.assert_allclose(out.detach().flatten(2).numpy(), np.stack(expected, 1), rtol=1e-10, atol=1e-12)


def test_convlstm_cell_shapes_and_state_carry() -> None:
    cell = ConvLSTMCell(3, 8, kernel_size=5)
    x = torch.randn(2, 3, 16, 16)
    state = cell.init_state(x)
    assert all(s.shape == (2, 8, 16, 16) and not s.any() for s in state)
    h1, c1 = cell(x, state)
    h2, _ = cell(x, (h1, c1))
    assert h1.shape == (2, 8, 16, 16) and not torch.allclose(h1, h2)  # same input, carried state differs


@pytest.mark.parametrize(
    "net",
    [
        ConvLSTMEncoderForecaster(channels=1, image_size=16, hidden_channels=(4, 4), patch_size=4),
        ElmanFramePredictor(channels=1, image_size=16, hidden_size=16),
        LSTMAutoencoder(channels=1, image_size=16, hidden_size=16, conditional=True),  # fed its outputs
    ],
    ids=["convlstm", "rnn", "lstm_ae"],
)
def test_predictors_carry_context_and_honour_teacher_forcing(net: torch.nn.Module) -> None:
    torch.manual_seed(0)
    context, targets = torch.rand(2, 5, 1, 16, 16), torch.rand(2, 3, 1, 16, 16)
    out = net(context, 3)["future"]
    assert out.shape == (2, 3, 1, 16, 16)
    changed = context.clone()
    changed[:, 0] = 1 - changed[:, 0]
    assert not torch.allclose(net(changed, 3)["future"], out)  # the first frame reaches the prediction
    other = torch.rand_like(targets)
    free = [net(context, 3, targets=t, teacher_forcing=0.0)["future"] for t in (targets, other)]
    forced = [net(context, 3, targets=t, teacher_forcing=1.0)["future"] for t in (targets, other)]
    assert torch.equal(free[0], free[1])  # free-running rollout never looks at the targets
    assert torch.equal(forced[0][:, 0], forced[1][:, 0]) and not torch.allclose(
        forced[0][:, 1:], forced[1][:, 1:]
    )


def test_lstm_autoencoder_reconstructs_in_reverse_order() -> None:
    out = LSTMAutoencoder(channels=1, image_size=8, hidden_size=8)(torch.rand(3, 4, 1, 8, 8), 2)
    assert out["reconstruction"].shape == (3, 4, 1, 8, 8) and out["future"].shape == (3, 2, 1, 8, 8)


def test_frame_losses_by_hand() -> None:
    logits = torch.tensor([0.0, math.log(3.0)]).view(1, 2, 1, 1, 1)  # sigmoid -> 0.5, 0.75
    target = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1, 1)
    assert math.isclose(FrameMSELoss()(logits, target).item(), (0.25 + 0.5625) / 2, rel_tol=1e-6)
    assert math.isclose(FrameL1Loss()(logits, target).item(), (0.5 + 0.75) / 2, rel_tol=1e-6)
    assert math.isclose(
        FrameBCELoss()(logits, target).item(), (-math.log(0.5) - math.log(0.25)) / 2, rel_tol=1e-6
    )


@pytest.mark.parametrize("frames,size", [(16, 32), (20, 64), (10, 16)])
def test_video_generators_and_discriminators_shapes(frames: int, size: int) -> None:
    for g, d in [
        (VGANGenerator(num_frames=frames, image_size=size, base_width=4),
         VGANDiscriminator(num_frames=frames, image_size=size, base_width=4)),
        (MoCoGANGenerator(num_frames=frames, image_size=size, base_width=4),
         MoCoGANDiscriminator(num_frames=frames, image_size=size, base_width=4, frames_per_video=2)),
    ]:  # fmt: skip
        video = g(torch.randn(3, g.latent_dim))
        assert video.shape == (3, frames, 1, size, size)
        assert video.min() >= -1 and video.max() <= 1
        logits = d(video)
        assert logits.shape == ((3,) if isinstance(d, VGANDiscriminator) else (3 + 3 * 2,))


def test_vgan_video_is_mask_blend_of_streams() -> None:
    g = VGANGenerator(num_frames=8, image_size=16, base_width=4).eval()
    z = torch.randn(2, 100)
    fg, mask, bg = g.streams(z)
    expected = (mask * fg + (1 - mask) * bg.unsqueeze(2)).transpose(1, 2)
    assert torch.allclose(g(z), expected) and fg.shape[2] == mask.shape[2] == 8


def test_mocogan_motion_code_length_is_num_frames() -> None:
    g = MoCoGANGenerator(
        num_frames=12, image_size=16, content_dim=50, motion_dim=10, noise_dim=10, base_width=4
    )
    assert g.latent_dim == 50 + 12 * 10
    z = torch.randn(2, g.latent_dim)
    codes = g.motion_codes(z)
    assert codes.shape == (2, 12, 10)
    assert not torch.allclose(codes[:, 0], codes[:, 1])  # a trajectory, not one repeated code
    z2 = z.clone()
    z2[:, :50] = torch.randn(2, 50)  # new content, same motion noise -> same motion codes
    assert torch.equal(g.motion_codes(z2), codes)


QUIET = dict(
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
    limit_val_batches=0,
    accelerator="cpu",
)


def _bouncing_square(n: int = 8, t: int = 8, size: int = 16) -> torch.Tensor:
    """Deterministic clips of a 4x4 square moving one pixel per frame, in [-1, 1]."""
    video = -torch.ones(n, t, 1, size, size)
    for i in range(n):
        for s in range(t):
            r, c = (i + s) % (size - 4), (2 * i + s) % (size - 4)
            video[i, s, 0, r : r + 4, c : c + 4] = 1.0
    return video


def _fit(module: L.LightningModule, video: torch.Tensor, steps: int, tmp_path) -> list[float]:
    loader = DataLoader(
        TensorDataset(video, torch.zeros(len(video), dtype=torch.long)), batch_size=len(video)
    )
    logger = L.pytorch.loggers.CSVLogger(tmp_path, name="fit")
    L.seed_everything(0, verbose=False)
    trainer = L.Trainer(max_steps=steps, max_epochs=-1, logger=logger, log_every_n_steps=1, **QUIET)
    trainer.fit(module, loader)
    with next(tmp_path.glob("fit/*/metrics.csv")).open() as f:
        rows = list(csv.DictReader(f))
    return [float(r["train/loss_step"]) for r in rows if r.get("train/loss_step")]


def test_convlstm_overfits_a_fixed_batch(tmp_path) -> None:
    net = ConvLSTMEncoderForecaster(
        channels=1, image_size=16, hidden_channels=(16,), kernel_size=3, patch_size=2
    )
    module = FramePredictionModule(net, FrameMSELoss(), lambda p: torch.optim.Adam(p, lr=3e-3), 4, 4)
    losses = _fit(module, _bouncing_square(), steps=80, tmp_path=tmp_path)
    assert len(losses) == 80
    assert losses[-1] < losses[0] / 4, (losses[0], losses[-1])  # stated factor: 4x within 80 steps


def test_video_gan_discriminator_learns_a_fixed_batch(tmp_path) -> None:
    # G frozen (lr 0): D alone must learn to separate the fixed real batch from G's samples.
    torch.manual_seed(0)
    module = VideoGANModule(
        VGANGenerator(num_frames=8, image_size=16, base_width=4),
        VGANDiscriminator(num_frames=8, image_size=16, base_width=4),
        NonSaturatingGANLoss(),
        optimizer_g=lambda p: torch.optim.SGD(p, lr=0.0),
        optimizer_d=lambda p: torch.optim.Adam(p, lr=2e-3, betas=(0.5, 0.999)),
    )
    video = _bouncing_square()
    loader = DataLoader(
        TensorDataset(video, torch.zeros(len(video), dtype=torch.long)), batch_size=len(video)
    )
    trainer = L.Trainer(max_steps=2 * 60, logger=False, **QUIET)  # 2 optimizer steps (D, G) per batch

    def d_loss() -> float:
        module.eval()
        with torch.no_grad():
            fake = module.generator(torch.randn(len(video), 100, generator=torch.Generator().manual_seed(1)))
            return module.loss.discriminator_loss(
                module.discriminator(video), module.discriminator(fake)
            ).item()

    before = d_loss()
    module.train()
    trainer.fit(module, loader)
    after = d_loss()
    assert after < before / 3, (before, after)  # stated factor: 3x within 60 D steps
    assert module.sample(2).shape == (2, 8, 1, 16, 16)
