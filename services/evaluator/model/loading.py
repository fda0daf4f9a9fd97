"""Load official mPLUG-Owl checkpoints by their exact state-dict key names.

Layouts: sharded ``pytorch_model-*.bin`` + ``pytorch_model.bin.index.json`` (VideoPhy-2 AutoEval), a single
``pytorch_model.bin`` (VideoCon-Physics), or ``model.safetensors`` (+ index). ``*.rotary_emb.inv_freq``
buffers
saved by transformers 4.28.1 are ignored on purpose (4.28.1 ignored them too; RoPE is rebuilt in float32).
The model is built on the meta device and the checkpoint tensors are assigned after a cast, so a 7B model
loads
without a random init. A Hub repo id is fetched with ``huggingface_hub.snapshot_download``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import torch

from videophy_bench.common import hub
from videophy_bench.evaluator.catalog import is_hub_repo_id
from videophy_bench.evaluator.errors import CheckpointError
from videophy_bench.evaluator.model.configuration import MplugOwlConfig
from videophy_bench.evaluator.model.language import LEGACY_ATTENTION
from videophy_bench.evaluator.model.modeling import MplugOwlForConditionalGeneration

log = logging.getLogger(__name__)

IGNORED_KEYS = re.compile(r".*\.rotary_emb\.inv_freq$")
CHECKPOINT_FILES = (
    "config.json",
    "tokenizer.model",
    "tokenizer_config.json",
    "preprocessor_config.json",
    "generation_config.json",
    "*.bin",
    "*.bin.index.json",
    "*.safetensors",
    "*.safetensors.index.json",
)
LORA_TARGETS = r".*language_model.*\.(q_proj|v_proj|k_proj|o_proj|gate_proj|down_proj|up_proj)"


def resolve_checkpoint(name_or_path: str | Path, revision: str | None = None) -> Path:
    """A local checkpoint directory, downloading ``owner/name`` from the Hugging Face Hub when not local."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    text = str(name_or_path)
    if is_hub_repo_id(text):
        from huggingface_hub import snapshot_download

        try:
            return Path(hub.fetch(text, snapshot_download, repo_id=text, revision=revision,
                                  allow_patterns=list(CHECKPOINT_FILES)))
        except hub.HubUnavailable as exc:
            raise CheckpointError(f"{exc}; give a local checkpoint directory instead (run --judge-model DIR, "
                                  f"serve evaluator --model DIR, judge --checkpoint DIR), "
                                  f"{hub.WARM_CACHE_HINT}") from None
    raise CheckpointError(f"checkpoint not found: {name_or_path}")


def checkpoint_shards(directory: Path) -> list[Path]:
    for index_name, single in (
        ("pytorch_model.bin.index.json", "pytorch_model.bin"),
        ("model.safetensors.index.json", "model.safetensors"),
    ):
        index = directory / index_name
        if index.is_file():
            weight_map = json.loads(index.read_text())["weight_map"]
            return [directory / name for name in sorted(set(weight_map.values()))]
        if (directory / single).is_file():
            return [directory / single]
    raise CheckpointError(f"no weights (pytorch_model*.bin or model*.safetensors) in {directory}")


def iter_checkpoint_tensors(directory: Path) -> Iterator[tuple[str, torch.Tensor]]:
    for shard in checkpoint_shards(directory):
        if not shard.is_file():
            raise CheckpointError(f"missing shard {shard}")
        if shard.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(shard))
        else:
            state = torch.load(shard, map_location="cpu", weights_only=True, mmap=True)
        yield from state.items()
        del state


def load_model(
    directory: str | Path,
    dtype: torch.dtype = torch.bfloat16,
    device: str | torch.device = "cpu",
    attention: str = LEGACY_ATTENTION,
    lora_checkpoint: str | Path | None = None,
) -> MplugOwlForConditionalGeneration:
    directory = Path(directory)
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"missing config.json in {directory}")
    config = MplugOwlConfig.from_json_file(config_path)
    with torch.device("meta"):
        model = MplugOwlForConditionalGeneration(config, attention=attention)
    expected = model.state_dict()
    loaded: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    for name, tensor in iter_checkpoint_tensors(directory):
        if IGNORED_KEYS.match(name):
            continue
        if name not in expected:
            unexpected.append(name)
            continue
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise CheckpointError(
                f"{name}: checkpoint shape {tuple(tensor.shape)} != model {tuple(expected[name].shape)}"
            )
        loaded[name] = tensor.to(device=device, dtype=dtype)
    missing = sorted(set(expected) - set(loaded))
    if missing:
        raise CheckpointError(f"checkpoint {directory} lacks {len(missing)} tensors, e.g. {missing[:5]}")
    if unexpected:
        log.warning("ignoring %d unexpected checkpoint tensors, e.g. %s", len(unexpected), unexpected[:5])
    model.load_state_dict(loaded, strict=True, assign=True)
    if lora_checkpoint is not None:
        model = apply_lora_checkpoint(model, Path(lora_checkpoint), dtype=dtype, device=device)
    return model.eval()


def apply_lora_checkpoint(
    model: MplugOwlForConditionalGeneration, path: Path, dtype: torch.dtype, device: str | torch.device
) -> MplugOwlForConditionalGeneration:
    """``inference.py --lora_checkpoint``: inject LoRA r=32/alpha=32 into the LLM linears and load the file.

    The official script wraps the model with peft and calls a strict ``load_state_dict`` with the whole
    file, so
    any base weights in it replace the checkpoint's. Keys may be in the old peft layout (``q_proj.weight``)
    or the
    new one (``q_proj.base_layer.weight``); both are accepted. Adapters stay unmerged, as in the official run.
    """
    from peft import LoraConfig, inject_adapter_in_model

    if not path.is_file():
        raise CheckpointError(f"LoRA checkpoint not found: {path}")
    lora_config = LoraConfig(
        target_modules=LORA_TARGETS, r=32, lora_alpha=32, lora_dropout=0.05, inference_mode=True
    )
    model = inject_adapter_in_model(lora_config, model)
    target = re.compile(LORA_TARGETS + r"\.weight$")
    state = torch.load(path, map_location="cpu", weights_only=True)
    expected = model.state_dict()
    fixed: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        key = key.removeprefix("base_model.model.")
        if IGNORED_KEYS.match(key):
            continue
        if key not in expected and target.match(key):
            key = key[: -len(".weight")] + ".base_layer.weight"
        if key not in expected:
            alt = re.sub(r"\.(lora_[AB])\.weight$", r".\1.default.weight", key)
            key = alt if alt in expected else key
        fixed[key] = value.to(device=device, dtype=dtype)
    bad = sorted(set(fixed) - set(expected))
    if bad:
        raise CheckpointError(f"LoRA checkpoint {path} has unknown keys, e.g. {bad[:5]}")
    model.load_state_dict(fixed, strict=False)
    for module in model.modules():  # adapter weights were created on meta/CPU in float32
        for name, param in list(module.named_parameters(recurse=False)):
            if param.device != torch.device(device) or param.dtype != dtype:
                setattr(
                    module,
                    name,
                    torch.nn.Parameter(param.detach().to(device=device, dtype=dtype), requires_grad=False),
                )
    return model
