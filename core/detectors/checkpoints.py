"""Loading a detector's checkpoint folder: what every checkpoint family shares.

Nothing is downloaded: a folder here, or an id already in the local Hugging Face cache. Every
refusal names the folder or file and says why (no config.json, a truncated weights file, a
checkpoint of another family, an adapter that is not a peft folder), before any job starts.
torch, transformers, huggingface_hub and peft are imported inside functions: importing this
module stays cheap for the pages and the CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import LabError


class WrongModelType(LabError):
    """A checkpoint folder of another kind than asked for; `model_type` says which it is.

    The detectors' registry (`core.detectors`) catches it to add which detector does load it.
    """

    def __init__(self, message: str, model_type: str) -> None:
        super().__init__(message)
        self.model_type = model_type


def resolve_device_dtype(device: str = "auto", dtype: str = "auto") -> tuple[str, Any]:
    """(device, torch dtype): auto = CUDA when present; bf16 on CUDA, fp32 on CPU."""
    import torch

    device = device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if dtype == "auto":
        return device, torch.bfloat16 if device.startswith("cuda") else torch.float32
    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}  # fmt: skip
    if dtype not in names:
        raise LabError(f"unknown dtype {dtype!r}: use auto, fp32, bf16 or fp16")
    return device, names[dtype]


def not_here(model: str) -> str:
    """What to do about a model id that is not on this machine (no internet here)."""
    return (
        f"model {model!r} is neither a local directory nor in the local Hugging Face cache, and weights "
        "cannot be fetched here (no internet). On a machine with internet run "
        f"`huggingface-cli download {model} --local-dir /path/to/dir`, copy the folder here and pass "
        "the directory as the model (CLI: --model /path/to/dir)."
    )


def read_model_config_file(path: Path) -> dict:
    """A JSON configuration file (a model's or an adapter's), or a LabError naming it."""
    from core.atomic import read_json_object

    return read_json_object(path, "the configuration", LabError)


def read_model_config(folder: Path) -> dict:
    """A model folder's config.json, or a LabError saying why the folder is not a model."""
    cfg = Path(folder) / "config.json"
    if not cfg.is_file():
        raise LabError(f"{folder}: not a model folder (no config.json); give the folder a checkpoint was saved to")
    return read_model_config_file(cfg)


def check_weight_files(folder: Path) -> None:
    """Refuse a folder whose weight files are truncated or not what their names say, naming the file.

    Reads each safetensors file's header and checks that the data it declares is all there (a
    copy cut short keeps a valid header but loses tensors), and opens .bin files' zip directory;
    no tensor is loaded. Why: a broken file otherwise surfaces as a traceback deep in loading,
    after a run or job was registered.
    """
    import json
    import struct
    import zipfile

    for f in sorted(Path(folder).glob("*.safetensors")):
        try:
            with open(f, "rb") as fh:
                size = f.stat().st_size
                head = fh.read(8)
                if len(head) < 8:
                    raise ValueError("shorter than a safetensors header")
                (n,) = struct.unpack("<Q", head)
                if n > size - 8:
                    raise ValueError(f"header of {n} bytes in a file of {size}")
                header = json.loads(fh.read(n))
            ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
            if 8 + n + max(ends, default=0) > size:
                raise ValueError(f"{8 + n + max(ends)} bytes declared, {size} present (truncated?)")
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise LabError(f"{f}: not a readable safetensors file ({exc}); copy it again or re-save the model") from exc
    for f in sorted(Path(folder).glob("*.bin")):
        try:
            with zipfile.ZipFile(f) as z:
                z.namelist()
        except (OSError, zipfile.BadZipFile) as exc:
            raise LabError(f"{f}: not a readable PyTorch weights file ({exc}); copy it again") from exc


def require_available(model: str, model_types: tuple[str, ...] = ("qwen2_audio",), what: str = "") -> None:
    """Refuse early (before a background job starts) a model that is not here or not of these kinds.

    A local folder must hold a config.json whose model_type is one of `model_types` (empty: any)
    and readable weight files; an id must be in the local Hugging Face cache (nothing is
    downloaded).
    """
    if not str(model).strip():
        raise LabError("give the model: a local folder or an id already in the Hugging Face cache")
    local = Path(model).expanduser()
    if local.exists() and not local.is_dir():
        raise LabError(f"{local}: a file; a model is a folder (with config.json and weights)")
    if local.is_dir():
        kind = read_model_config(local).get("model_type")
        if model_types and kind not in model_types:
            wanted = what or " or ".join(repr(k) for k in model_types)
            raise WrongModelType(f"{local}: a {kind!r} model, not {wanted}", str(kind))
        check_weight_files(local)
        return
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(model, "config.json")
    except ValueError:  # not even a valid hub id (HFValidationError)
        cached = None
    if not isinstance(cached, str):
        raise LabError(not_here(model))


def model_folder(model: str, what: str, model_types: tuple[str, ...] = (), architecture: str = "") -> Path:
    """The checkpoint folder `model`, refused with a message naming the problem.

    `model_types`: config.json model_type values this detector loads (empty: any); `architecture`:
    a suffix one of config.json's `architectures` must have (e.g. "ForAudioClassification").
    """
    if not str(model).strip():
        raise LabError(f"{what}: give the checkpoint folder (--model DIR)")
    path = Path(model).expanduser()
    if not path.is_dir():
        raise LabError(
            f"{what}: {model!r} is not a folder here; nothing can be downloaded, so copy the checkpoint folder "
            "to this machine and give its path"
        )
    cfg = read_model_config(path)
    kind = cfg.get("model_type", "?")
    if model_types and kind not in model_types:
        raise WrongModelType(f"{path}: a {kind!r} checkpoint, not {what} ({', '.join(model_types)})", str(kind))
    if architecture and not any(str(a).endswith(architecture) for a in cfg.get("architectures") or []):
        raise LabError(
            f"{path}: its config names no *{architecture} architecture ({cfg.get('architectures')}); not {what}"
        )
    return path


def loaded(what: str, path: Path, load):
    """`load()` with a loading failure turned into a message naming the folder."""
    try:
        return load()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LabError(f"{path}: not a loadable {what} folder ({type(exc).__name__}: {exc})") from exc


def quantization(load_in_4bit: bool, device: str, dtype) -> dict[str, Any]:
    """`from_pretrained` keywords for a 4-bit NF4 base (QLoRA) on this process's GPU; {} otherwise."""
    if not load_in_4bit:
        return {}
    import torch

    if not torch.cuda.is_available():
        raise LabError(
            "4-bit NF4 loading (QLoRA base) needs a CUDA GPU and bitsandbytes; this machine has "
            "no CUDA device. Load in fp32 on CPU instead (leave 4-bit off)."
        )
    from transformers import BitsAndBytesConfig

    index = torch.device(device).index  # "cuda:1" under data parallelism: this process's GPU
    return {
        "quantization_config": BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype, bnb_4bit_use_double_quant=True
        ),
        "device_map": {"": torch.cuda.current_device() if index is None else index},
    }


def require_adapter(adapter: str) -> None:
    """Refuse early a LoRA adapter path that is not a saved peft adapter folder."""
    folder = Path(adapter).expanduser()
    if not folder.exists():
        raise LabError(f"adapter {adapter!r}: folder not found")
    if not folder.is_dir():
        raise LabError(f"adapter {adapter!r}: a file; an adapter is a folder saved by peft (adapter_config.json)")
    if not (folder / "adapter_config.json").is_file():
        raise LabError(
            f"adapter {adapter!r}: no adapter_config.json; give a folder saved by peft, e.g. a run's "
            "results/runs/<id>/adapter"
        )
    read_model_config_file(folder / "adapter_config.json")
    check_weight_files(folder)


def ready(model, device: str, load_in_4bit: bool, adapter: str):
    """A freshly loaded model on `device` (a 4-bit one is already placed by its device map), with the
    LoRA adapter `adapter` on top (none when ""), in eval mode: the last step of every family's load."""
    if not load_in_4bit:
        model = model.to(device)
    model = with_adapter(model, adapter)
    model.eval()
    return model


def with_adapter(model, adapter: str):
    """`model` with the LoRA adapter folder `adapter` on top (unchanged when ""); a mismatch is a LabError."""
    if not adapter:
        return model
    from peft import PeftModel

    require_adapter(adapter)
    try:
        return PeftModel.from_pretrained(model, adapter)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise LabError(f"adapter {adapter!r} does not fit this model ({type(exc).__name__}: {exc})") from exc
