"""Audio-visual consistency of (clip, sound) pairs: does the digit seen match the digit heard?

Two classifiers vidgen trains on the data (``vidgen.metrics.feature_spaces``): LeNet-5 on the clips'
frames (``TalkingDigitsDataModule.frames_datamodule``) and the spoken-digit CNN on the sounds
(``audio_datamodule``). A clip's digit is the majority vote of its frames' digits (ties: the larger mean
softmax probability); a sound's digit is the audio classifier's.

- ``av_agreement_<frames>_<audio>``: the share of generated pairs whose two digits agree. No paper defines
  it (issue 18); it is the simplest check that the two modalities are generated together. Its ceiling is
  the same rate on real test pairs (``..._real``, about the product of the two classifiers' accuracies
  when their errors are independent, plus the chance that both err alike), its floor the rate on real
  frames paired with the sound of another, seeded-shuffled pair (``..._shuffled``, about chance, 1/10 for
  balanced digits).
- per modality, ``SampleQuality`` in each space: ``fid_<frames>`` (the Fréchet distance of all frames,
  Heusel et al. 2017, in the LeNet space), ``fid_<audio>`` (the FAD-style Fréchet distance of the sounds in
  the spoken-digit CNN's space; not the VGGish FAD of Kilgour et al. 2019), the classifiers' accuracies on
  the real samples (``feature_extractor_accuracy_<space>``) and, for pairs generated for requested
  digits, the conditional accuracies (``conditional_accuracy_<space>``: the requested digit seen, heard).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torchmetrics import Metric

from vidgen.audio_visual import AudioVisual
from vidgen.metrics.feature_spaces import FeatureSpace
from vidgen.metrics.sample_quality import SampleQuality, features_and_logits_of


@torch.no_grad()
def clip_digits(space: FeatureSpace, video: torch.Tensor) -> torch.Tensor:
    """The class of each clip ``(B, T, C, H, W)``: the majority of its frames' classes in ``space``, ties
    broken by the mean softmax probability over the frames."""
    b, t = video.shape[:2]
    logits = features_and_logits_of(space, video.flatten(0, 1))[1].view(b, t, -1)
    votes = F.one_hot(logits.argmax(-1), logits.shape[-1]).sum(1).double()
    return (votes + 1e-3 * logits.softmax(-1).mean(1)).argmax(-1)


@torch.no_grad()
def sound_digits(space: FeatureSpace, audio: torch.Tensor) -> torch.Tensor:
    """The class of each sound ``(B, 1, L)`` in ``space``."""
    return features_and_logits_of(space, audio)[1].argmax(-1)


def av_agreement(frame_space: FeatureSpace, audio_space: FeatureSpace, pairs: AudioVisual) -> float:
    """The share of ``pairs`` whose clip and sound are classified as the same digit."""
    seen, heard = clip_digits(frame_space, pairs.video), sound_digits(audio_space, pairs.audio)
    return float((seen == heard).double().mean())


class AudioVisualQuality(Metric):
    """Real and generated pairs; ``compute()`` -> ``{key: value}`` without a split prefix (module docstring).

    ``update(pairs, real, labels)``: an ``AudioVisual`` batch in the data's ranges; real pairs with their
    digits measure the classifiers, generated ones with the digits they were asked for give the
    conditional accuracies.

    Args:
        frame_space, audio_space: the two classifiers' spaces.
        metrics: ``SampleQuality`` metrics of each modality (validation: ``fid``).
        shuffle_seed: seed of the permutation that pairs real frames with other sounds (the floor).
    """

    full_state_update = False

    def __init__(self, frame_space: FeatureSpace, audio_space: FeatureSpace,
                 metrics: Sequence[str] = ("fid",), shuffle_seed: int = 0):  # fmt: skip
        super().__init__()
        self.frame_space, self.audio_space, self.shuffle_seed = frame_space, audio_space, shuffle_seed
        self.frames = SampleQuality(frame_space, metrics)
        self.sounds = SampleQuality(audio_space, metrics)
        for state in ("real_seen", "real_heard", "fake_seen", "fake_heard"):
            self.add_state(state, default=[], dist_reduce_fx="cat")

    @torch.no_grad()
    def update(self, pairs: AudioVisual, real: bool, labels: torch.Tensor | None = None) -> None:
        video, audio = pairs
        t = video.shape[1]
        side = "real" if real else "fake"
        getattr(self, f"{side}_seen").append(clip_digits(self.frame_space, video) if len(video) else
                                             torch.zeros(0, dtype=torch.long))  # fmt: skip
        getattr(self, f"{side}_heard").append(sound_digits(self.audio_space, audio) if len(audio) else
                                              torch.zeros(0, dtype=torch.long))  # fmt: skip
        # every frame is an image of the clip's digit
        self.frames.update(video.flatten(0, 1), real=real,
                           labels=None if labels is None else labels.repeat_interleave(t))  # fmt: skip
        self.sounds.update(audio, real=real, labels=labels)

    def reset(self) -> None:
        super().reset()
        self.frames.reset()
        self.sounds.reset()

    def reset_fakes(self) -> None:
        """Forgets the generated pairs and keeps the real ones (to score the untrained baseline)."""
        self.fake_seen, self.fake_heard = [], []
        self._computed = None
        self.frames.reset_fakes()
        self.sounds.reset_fakes()

    def compute(self) -> dict[str, float]:
        out = {**self.frames.compute(), **self.sounds.compute()}
        key = f"av_agreement_{self.frame_space.name}_{self.audio_space.name}"
        real_seen, real_heard = _cat(self.real_seen), _cat(self.real_heard)
        fake_seen, fake_heard = _cat(self.fake_seen), _cat(self.fake_heard)
        if len(fake_seen):
            out[key] = float((fake_seen == fake_heard).double().mean())
            out[f"n_av_{self.frame_space.name}_{self.audio_space.name}"] = float(len(fake_seen))
        if len(real_seen):
            out[f"{key}_real"] = float((real_seen == real_heard).double().mean())
            order = torch.randperm(
                len(real_heard), generator=torch.Generator().manual_seed(self.shuffle_seed)
            )
            out[f"{key}_shuffled"] = float(
                (real_seen == real_heard[order.to(real_heard.device)]).double().mean()
            )
        return out


def _cat(state: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    if isinstance(state, list):
        return torch.cat(state) if state else torch.zeros(0, dtype=torch.long)
    return state
