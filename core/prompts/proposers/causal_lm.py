"""An instruction-tuned causal LM as the optimiser: a local folder or an id already in the Hugging Face cache.

It reads the OPRO meta-prompt through its chat template and samples `n` replies (seeded), each
parsed for <PROMPT>…</PROMPT>; bf16 on CUDA (or 4-bit NF4 with bitsandbytes), fp32 on CPU.
Nothing is downloaded: a model that is not here gets the same message as an audio LLM's.
"""

from __future__ import annotations

from pathlib import Path

from core.errors import LabError
from core.prompts.candidates import Verdict, parse_reply
from core.prompts.proposers.base import Scored

# torch and transformers are imported inside functions: importing this module stays cheap


def require_causal_lm(model: str) -> None:
    """Refuse, before a job starts, a folder or id that is not a causal language model here."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    from core.detectors.checkpoints import require_available

    if not model.strip():
        raise LabError("give the optimiser model: a local folder or a cached Hugging Face id")
    require_available(model, model_types=())  # any family here: the causal-LM check follows
    try:
        config = AutoConfig.from_pretrained(model, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise LabError(f"{model}: not a model folder transformers can read ({exc})") from exc
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise LabError(
            f"{model}: a {config.model_type!r} model, not a causal language model; for the audio LLM's own "
            "language model choose the 'audio-llm-text' optimiser"
        )


def generate_replies(model, tokenizer, text: str, n: int, seed: int, max_new_tokens: int = 160) -> list[str]:
    """`n` sampled continuations of `text` through the tokenizer's chat template (plain text without one)."""
    import torch

    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )
    device = next(model.parameters()).device
    inputs = tokenizer(text, return_tensors="pt").to(device)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    torch.manual_seed(seed)
    with torch.inference_mode():
        out = model.generate(
            **inputs,
            do_sample=True,
            temperature=1.0,
            top_p=0.95,
            max_new_tokens=max_new_tokens,
            num_return_sequences=n,
            pad_token_id=pad,
        )
    start = inputs["input_ids"].shape[1]
    return [tokenizer.decode(seq[start:], skip_special_tokens=True) for seq in out]


class CausalLMProposer:
    """Samples prompts from a local instruction-tuned causal LM (e.g. Qwen2.5-3B-Instruct)."""

    name = "causal-lm"

    def __init__(self, model: str, load_in_4bit: bool = False, max_new_tokens: int = 160) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        require_causal_lm(model)
        cuda = torch.cuda.is_available()
        kwargs = {"dtype": torch.bfloat16 if cuda else torch.float32}
        if load_in_4bit:
            if not cuda:
                raise LabError("a 4-bit optimiser needs a CUDA GPU and bitsandbytes; leave 4-bit off on CPU")
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4")
        source = str(Path(model).expanduser()) if Path(model).expanduser().is_dir() else model
        self.tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(source, local_files_only=True, **kwargs).eval()
        if cuda and not load_in_4bit:
            self.model = self.model.to("cuda")
        self.max_new_tokens = max_new_tokens

    def propose(self, meta_prompt: str, history: list[Scored], n: int, seed: int) -> list[Verdict]:
        shown = tuple(s.id for s in history)
        replies = generate_replies(self.model, self.tokenizer, meta_prompt, n, seed, self.max_new_tokens)
        return [parse_reply(r, parents=shown) for r in replies]
