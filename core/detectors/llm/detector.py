"""One detector for every audio-LLM family: clips scored by the logits of the two answers.

Scoring, several prompts at once (`score_prompts`) and `generate()` parity all go through the
family contract (`family.Family`); nothing here asks which family it holds. Batches are
formed by length (little padding), prepared ahead of the device by worker processes on a GPU,
and read back one batch late, so the device never waits for the host.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from core.detectors.base import check_clip_lengths
from core.detectors.checkpoints import resolve_device_dtype
from core.detectors.llm.family import AudioLLMSpec, Family
from core.detectors.llm.features import length_groups
from core.detectors.llm.packing import score_prompts
from core.detectors.llm.prompt import Prompt, check_prompt_text, tokens
from core.detectors.llm.registry import family_for, load
from core.errors import LabError

# torch is imported inside functions: importing this module stays cheap


class PreparedBatches:
    """Batches of model inputs, for worker processes to prepare ahead of the device.

    Feature extraction and tokenisation take about a third of a batch's time on a GPU host;
    in worker processes they overlap the device's work (a thread would fight the launching
    thread for the GIL). Workers keep torch's one intra-op thread: raising it in a forked
    child deadlocks OpenMP (seen here), so throughput comes from several workers instead.
    """

    def __init__(self, family: Family, parts, clips: Sequence[np.ndarray], groups: list[np.ndarray],
                 prompt: str | None, padded: bool):  # fmt: skip
        self.family, self.parts, self.clips, self.groups = family, parts, clips, groups
        self.prompt, self.padded = prompt, padded

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, i: int) -> dict:
        try:
            clips = [self.clips[j] for j in self.groups[i]]
            if self.prompt is None:  # features only: the prompts are put around them later (packing)
                return self.family.features(self.parts, clips)
            return self.family.prepare(self.parts, clips, self.prompt, padded=self.padded)
        except LabError as exc:  # e.g. a corrupt clip read in a worker: raised as itself, not a worker traceback
            return {"error": exc}


class AudioLLMDetector:
    """Scores clips by the two answer-token logits of an audio LLM of any registered family."""

    # `score` takes any sequence of clips that has their `lengths` and reads each clip only
    # when its batch is prepared (in worker processes on a GPU): core.evaluate streams a split
    # from disk through one call instead of holding its audio in memory chunk by chunk
    reads_lazily = True

    def __init__(self, spec: AudioLLMSpec | None = None, model=None, parts=None, name: str | None = None):
        self.spec = spec or AudioLLMSpec()
        check_prompt_text(Prompt(self.spec.prompt, *self.spec.answers))  # before a model is loaded
        if int(self.spec.batch_size) < 1:
            raise LabError(f"batch size must be at least 1, got {self.spec.batch_size}")
        if self.spec.padding not in ("trimmed", "padded"):
            raise LabError(f"padding must be 'trimmed' or 'padded', got {self.spec.padding!r}")
        if self.spec.mode not in ("logits", "generate"):
            raise LabError(f"mode must be 'logits' or 'generate', got {self.spec.mode!r}")
        self.family = family_for(self.spec)
        if self.spec.mode == "generate" and not self.family.generates:
            raise LabError(f"{self.family.title}: generate mode is not available; score by logits")
        if model is None:
            model, parts = load(self.family, self.spec)
        self.model, self.parts = model, parts
        if self.spec.compile:
            self.family.compile(model)
        self.tokens = tokens(self.family, parts, Prompt(self.spec.prompt, *self.spec.answers))
        # single-token answers: their next-token logits (`ids`); longer ones: sequence log-likelihoods
        self.ids = (self.tokens.answers[0][0], self.tokens.answers[1][0]) if self.tokens.single else None
        if self.ids is None and (
            self.spec.padding == "padded" or self.spec.mode == "generate" or not self.family.shared_audio
        ):
            raise LabError(
                f"answers {tuple(self.spec.answers)} are several tokens long; they are scored by their log-likelihood "
                "on the trimmed path only (padding 'trimmed', mode 'logits', a family with a shared audio path)"
            )
        self.name = name or self.family.default_name(self.spec)
        self.prompt = self.spec.prompt
        self.adapter = self.spec.adapter
        self.device = next(p for p in model.parameters()).device
        self.workers = self.spec.workers if self.spec.workers >= 0 else (4 if self.device.type == "cuda" else 0)
        self.min_seconds, self.max_seconds = self.family.clip_limits(parts)

    @property
    def processor(self):
        """The checkpoint's tokenizer and feature extractor (Qwen2-Audio: its processor)."""
        return self.parts

    def check_lengths(self, lengths: Sequence[int]) -> None:
        """Refuse, before any work, clips longer than the encoder's window or too short to give it
        an audio token (named by position)."""
        if self.min_seconds is None and self.max_seconds is None:
            return
        check_clip_lengths([f"clip {i + 1}" for i in range(len(lengths))], np.asarray(lengths) / 16000,
                           self.max_seconds, f"{Path(self.spec.model).name}'s audio encoder",
                           self.min_seconds)  # fmt: skip

    def batches(self, clips: Sequence[np.ndarray], groups: list[np.ndarray], padded: bool,
                features_only: bool = False, prompt: str | None = None):  # fmt: skip
        """Prepared batches in order: by worker processes when there are several, else here.

        `features_only`: the trimmed audio features alone, for scoring several prompts on them.
        """
        text = None if features_only else (prompt if prompt is not None else self.spec.prompt)
        dataset = PreparedBatches(self.family, self.parts, clips, groups, text, padded)
        if self.workers == 0 or len(groups) < 2:
            return (dataset[i] for i in range(len(groups)))
        import torch

        return torch.utils.data.DataLoader(
            dataset,
            batch_size=None,
            num_workers=min(self.workers, len(groups)),
            prefetch_factor=2,
            pin_memory=self.device.type == "cuda",  # page-locked inputs: truly asynchronous copies
        )

    def _lengths(self, clips: Sequence[np.ndarray], sr: int) -> list[int]:
        if sr != 16000:
            raise ValueError(f"{self.family.title} takes 16 kHz audio, got {sr} Hz")
        lengths = clips.lengths if hasattr(clips, "lengths") else [len(c) for c in clips]
        self.check_lengths(lengths)
        return lengths

    def score(self, clips: Sequence[np.ndarray], sr: int, on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        """(n, 2) answer logits, clips batched by length (less padding).

        Nothing inside a batch waits for the device: a batch's logits are read back only after
        the next batch is queued behind it, and (on a GPU) worker processes prepare the
        following batches meanwhile, so the device goes from one batch to the next without
        waiting for the host (measured on an H100: 12 ms of gaps in a 12 s run).

        `clips` may be lazy (see `reads_lazily`); `on_batch(clips scored so far)` is called as
        results come back, for progress, and may raise to stop.
        """
        if self.ids is None:  # answers of several tokens: their log-likelihoods, on the shared-audio path
            return self.score_prompts(clips, sr, [self.tokens.prompt], on_batch)[0]
        return self._score_one(clips, self._lengths(clips, sr), self.spec.prompt, self.ids, on_batch)

    def _score_one(self, clips, lengths: list[int], prompt: str, ids: tuple[int, int],
                   on_batch: Callable[[int], None] | None) -> np.ndarray:  # fmt: skip
        import torch

        padded = self.spec.padding == "padded"
        generate = self.spec.mode == "generate"
        groups = length_groups(lengths, max(1, self.spec.batch_size), ramp=self.workers > 0 and not generate)
        out = np.empty((len(clips), 2))
        done = 0

        def scored(idx: np.ndarray, logits) -> None:
            nonlocal done
            out[idx] = logits
            done += len(idx)
            if on_batch:
                on_batch(done)

        with torch.inference_mode():
            if generate:
                for idx in groups:
                    scored(idx, self.family.generate_logits(self.model, self.parts, [clips[i] for i in idx], prompt,
                                                            ids))  # fmt: skip
                return out
            pending = None  # the previous batch's logits, still on the device
            # answer ids as a device tensor made once: indexing by a Python list copies it to the
            # device on every batch, and that blocking copy waits for all queued work
            answer_ids = torch.tensor(ids, device=self.device)
            for idx, batch in zip(groups, self.batches(clips, groups, padded, prompt=prompt)):
                if "error" in batch:
                    raise batch["error"]
                logits = self.family.next_token_logits(self.model, batch, padded).index_select(1, answer_ids)
                if pending is not None:
                    scored(pending[0], pending[1].cpu().numpy())
                pending = (idx, logits)
            if pending is not None:
                scored(pending[0], pending[1].cpu().numpy())
        return out

    def audio_embeddings(self, clips: Sequence[np.ndarray], batch_size: int = 32,
                         on_batch: Callable[[int], None] | None = None) -> np.ndarray:  # fmt: skip
        """(clips, dim): each clip's audio embeddings (encoder and projector, the states the decoder
        reads) averaged over its audio tokens; what the map of clips places clips by."""
        import torch

        if not self.family.shared_audio:
            raise LabError(f"{self.family.title}: its audio embeddings cannot be read on their own")
        out = []
        with torch.inference_mode():
            for start in range(0, len(clips), batch_size):
                emb, lengths = self.family.encode(
                    self.model, self.family.features(self.parts, clips[start : start + batch_size])
                )
                emb = emb.float().cpu()
                n = torch.as_tensor(lengths).long().cpu()
                mask = (torch.arange(emb.shape[1])[None, :] < n[:, None]).float()
                out.append(((emb * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)).numpy())
                if on_batch:
                    on_batch(min(len(clips), start + batch_size))
        return np.concatenate(out) if out else np.zeros((0, 1), np.float32)

    def score_prompts(
        self, clips: Sequence[np.ndarray], sr: int, prompts: list[Prompt], on_batch: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """(len(prompts), n, 2) answer scores of several prompts on the same clips.

        Shared-audio families: each batch's audio features and encoder output are computed once
        for all prompts, and the decoder's work up to the question once per distinct text before
        it (`packing`): equal to scoring each prompt alone (tested in fp32). Other families score
        each prompt in turn (single-token answers only). `on_batch(clips done)` as in `score`.
        """
        planned = [tokens(self.family, self.parts, p) for p in prompts]  # every prompt checked before any work
        lengths = self._lengths(clips, sr)
        if not self.family.shared_audio:
            return self._score_each(clips, lengths, planned, on_batch)
        groups = length_groups(lengths, max(1, self.spec.batch_size), ramp=self.workers > 0)
        prepared = self.batches(clips, groups, padded=False, features_only=True)
        return score_prompts(self.family, self.model, prepared, groups, len(clips), planned, on_batch)

    def _score_each(
        self, clips, lengths: list[int], planned: list, on_batch: Callable[[int], None] | None
    ) -> np.ndarray:
        """Several prompts, one full scoring each (families without a shared audio path)."""
        for pt in planned:
            if not pt.single:
                raise LabError(f"{self.family.title}: answers {pt.prompt.answers} are several tokens long; "
                               "choose one-token answers")  # fmt: skip
        n, k = len(clips), len(planned)
        out = np.empty((k, n, 2))
        for i, pt in enumerate(planned):
            step = None if on_batch is None else (lambda done, i=i: on_batch(round((i * n + done) / k)))
            out[i] = self._score_one(clips, lengths, pt.prompt.text, (pt.answers[0][0], pt.answers[1][0]), step)
        return out

    def prompt_tokens(self, prompt: Prompt):
        """`prompt`'s token ids in this model's chat template (`prompt.tokens`); a LabError says what is wrong."""
        return tokens(self.family, self.parts, prompt)

    def prompt_info(self, prompt: Prompt) -> dict[str, Any]:
        """The sidecar facts that belong to one prompt scored by this detector."""
        pt = tokens(self.family, self.parts, prompt)
        return {
            "prompt": prompt.text,
            "answers": list(prompt.answers),
            "answer_token_ids": [list(a) for a in pt.answers],
            "answer_scoring": "next-token logits" if pt.single else "answer log-likelihood",
        }

    def info(self) -> dict[str, Any]:
        device, dtype = resolve_device_dtype(self.spec.device, self.spec.dtype)
        spec = {k: v for k, v in asdict(self.spec).items() if k not in ("extra", "device", "dtype")}
        return {
            **spec,
            "family": self.family.name,
            "model_id": self.spec.model,
            "dtype": str(dtype).replace("torch.", ""),
            "device": device,
            # single-token answers: next-token logits; longer ones: log-likelihood of the whole answer
            **self.prompt_info(self.tokens.prompt),
            "workers": self.workers,  # as resolved for this device
        }
