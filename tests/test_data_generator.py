"""The bouncing-digits generator: reproducible per (seed, index) anywhere, digits in frame, bouncing."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import torch
from torch.utils.data import DataLoader

from vidgen.data.bouncing import BouncingDigitsDataset, EpochSampler, bouncing_trajectory
from vidgen.data.moving_digits import MovingDigitsDataModule


def _digest(x: torch.Tensor) -> str:
    return hashlib.sha256(x.numpy().tobytes()).hexdigest()


def _module(**kw) -> MovingDigitsDataModule:
    dm = MovingDigitsDataModule(num_train=12, num_val=4, num_test=4, **kw)
    dm.setup()
    return dm


def test_same_seed_same_sequences_in_workers_and_other_processes() -> None:
    dm = _module(split_seed=3)
    direct = torch.stack([dm.splits["train"][i][0] for i in range(12)])
    loader = DataLoader(dm.splits["train"], batch_size=3, num_workers=2, shuffle=False)
    assert torch.equal(torch.cat([x for x, _ in loader]), direct)  # two worker processes, same sequences
    code = (
        "import hashlib, torch; from vidgen.data.moving_digits import MovingDigitsDataModule as M;"
        "dm = M(num_train=12, num_val=4, num_test=4, split_seed=3); dm.setup();"
        "x = torch.stack([dm.splits['train'][i][0] for i in range(12)]);"
        "print(hashlib.sha256(x.numpy().tobytes()).hexdigest())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == _digest(direct)
    # Index order does not matter: sequence 7 alone equals sequence 7 of the batch.
    assert torch.equal(dm.splits["train"][7][0], direct[7])


def test_different_seeds_and_splits_give_different_sequences() -> None:
    a, b = _module(split_seed=0), _module(split_seed=1)
    assert not torch.equal(a.splits["train"][0][0], b.splits["train"][0][0])
    assert not torch.equal(a.splits["train"][0][0], a.splits["val"][0][0])
    assert not torch.equal(a.splits["train"][0][0], a.splits["train"][1][0])


def test_one_digit_stays_whole_inside_the_frame_and_bounces() -> None:
    digit = np.zeros((10, 10), np.uint8)
    digit[2:8, 3:7] = 200
    ds = BouncingDigitsDataset(torch.from_numpy(digit)[None], torch.tensor([4]), length=20, seq_len=100,
                               image_size=32, num_digits=1, step_length=0.1, seed=0, stream=0, channels=1,
                               value_range=(0.0, 1.0))  # fmt: skip
    bounced = 0
    for i in range(20):
        frames, label, positions = ds.sequence(i)
        assert label == 4 and frames.shape == (100, 32, 32)
        # The whole digit is drawn in every frame: nothing is cut off at an edge.
        assert (frames.astype(np.int64).sum(axis=(1, 2)) == int(digit.sum())).all()
        pos = positions[0]
        assert pos.min() >= 0 and pos.max() <= 32 - 10
        steps = np.diff(pos, axis=0)
        # A bounce: the direction of motion along an axis reverses.
        flips = (np.sign(steps[1:]) * np.sign(steps[:-1]) < 0).any(axis=0)
        bounced += int(flips.any())
    assert bounced == 20  # 100 frames at 0.1 of the range per frame must hit a wall


def test_trajectory_reflects_at_the_walls() -> None:
    traj = bouncing_trajectory(np.random.default_rng(0), 200, 0.1)
    assert traj.min() >= 0 and traj.max() <= 1
    assert ((traj == 0) | (traj == 1)).any(axis=0).all()  # both axes touch a wall
    speed = np.linalg.norm(np.diff(traj, axis=0), axis=1)
    assert speed.max() <= 0.1 + 1e-9 and np.median(speed) > 0.099  # constant speed between bounces


def test_batches_are_b_t_c_h_w_with_first_digit_label() -> None:
    dm = _module(channels=3, value_range=[0.0, 1.0])
    x, y = next(iter(dm.val_dataloader()))
    assert x.shape == (4, 20, 3, 32, 32) and y.dtype == torch.long and ((y >= 0) & (y <= 9)).all()
    assert x.min() == 0 and x.max() == 1


def _epochs(loader: DataLoader, epochs: range) -> list[torch.Tensor]:
    """The loader's sequences of each epoch, its sampler's epoch set as Lightning sets it."""
    out = []
    for epoch in epochs:
        loader.sampler.set_epoch(epoch)
        out.append(torch.cat([x for x, _ in loader]))
    return out


def test_fresh_training_sequences_are_new_each_epoch_and_the_same_in_persistent_workers() -> None:
    dm = _module(train_sequences="fresh", num_workers=2, batch_size=4, split_seed=5)
    loader = dm.train_dataloader()
    assert loader.persistent_workers  # the workers' copies of the dataset live through all epochs
    first, second, third = _epochs(loader, range(3))
    assert not torch.equal(first, second) and not torch.equal(second, third)
    # Epoch e is (split_seed, e, i) alone: the same in the main process, one at a time, in any order.
    train = dm.splits["train"]
    for epoch, seen in enumerate((first, second, third)):
        assert torch.equal(seen, torch.stack([train[(epoch, i)][0] for i in range(12)]))
    assert torch.equal(train[(2, 7)][0], third[7])
    # Another module with the same split_seed, without workers, sees the same epochs.
    again = _module(train_sequences="fresh", num_workers=0, batch_size=4, split_seed=5).train_dataloader()
    assert all(
        torch.equal(a, b) for a, b in zip(_epochs(again, range(3)), (first, second, third), strict=True)
    )
    other = _module(train_sequences="fresh", num_workers=0, batch_size=4, split_seed=6).train_dataloader()
    assert not torch.equal(_epochs(other, range(1))[0], first)
    # Epoch 0 is the fixed set: what train[i] (feature networks, previews) and train_sequences=fixed give.
    assert torch.equal(first, torch.stack([train[i][0] for i in range(12)]))
    fixed = _module(train_sequences="fixed", split_seed=5)
    assert torch.equal(first, torch.stack([fixed.splits["train"][i][0] for i in range(12)]))


def test_fixed_training_sequences_are_the_same_set_every_epoch() -> None:
    dm = _module(train_sequences="fixed", batch_size=4)
    torch.manual_seed(0)
    epochs = [torch.cat([x for x, _ in dm.train_dataloader()]) for _ in range(2)]
    digests = [sorted(_digest(x) for x in epoch) for epoch in epochs]
    assert digests[0] == digests[1]  # reshuffled, but the same twelve sequences
    assert not torch.equal(epochs[0], epochs[1])


def test_fresh_sequences_under_ddp_each_rank_gets_its_share_of_the_epoch() -> None:
    from lightning.fabric.utilities.distributed import DistributedSamplerWrapper

    # What Lightning puts in the training loader of each DDP rank; set_epoch is called on the wrapper.
    ranks = [DistributedSamplerWrapper(EpochSampler(12), num_replicas=2, rank=r, shuffle=False)
             for r in (0, 1)]  # fmt: skip
    for sampler in ranks:
        sampler.set_epoch(3)
    shares = [list(sampler) for sampler in ranks]
    assert sorted(shares[0] + shares[1]) == [(3, i) for i in range(12)] and len(shares[0]) == 6
