"""Checkpoints that survive a killed process and know when they were damaged.

:func:`save_checkpoint` writes atomically (:func:`vdlearn.files.atomic_write`: a temporary file,
fsync, rename), so a process killed while saving leaves either the old checkpoint or the new one,
never a broken file; temporary files left by a process killed with SIGKILL are removed on the next
save. The file holds the state and its SHA-256 over every tensor's bytes and every value
(:func:`state_digest`); :func:`load_checkpoint` loads with ``weights_only=True`` (no code in the file
can run) and refuses a file whose digest does not match: a flipped byte in a weight is an error, not
a silently different model. :func:`rng_state` / :func:`set_rng_state` carry the random generators
across a resume, so a resumed run draws the same noise an uninterrupted one would.
"""
from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import torch

from ..files import atomic_write

__all__ = ["save_checkpoint", "load_checkpoint", "state_digest", "rng_state", "set_rng_state"]

_FORMAT = "vdlearn-checkpoint-1"


def _update(digest: "hashlib._Hash", value: Any) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        digest.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}".encode())
        for key in sorted(value, key=repr):
            digest.update(repr(key).encode())
            _update(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"L{type(value).__name__}{len(value)}".encode())
        for item in value:
            _update(digest, item)
    else:
        digest.update(f"V{type(value).__name__}{value!r}".encode())


def state_digest(state: Any) -> str:
    """SHA-256 of a checkpoint's content: every tensor's dtype, shape and bytes, every other value's repr."""
    digest = hashlib.sha256()
    _update(digest, state)
    return digest.hexdigest()


def _remove_leftovers(path: Path) -> None:
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        tmp.unlink(missing_ok=True)


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` and its digest with ``torch.save``, atomically; a full disk is a clear error."""
    path = Path(path)
    if path.parent.exists():
        _remove_leftovers(path)
    buffer = io.BytesIO()
    torch.save({"format": _FORMAT, "sha256": state_digest(state), "state": state}, buffer)
    return atomic_write(path, lambda f: f.write(buffer.getbuffer()))


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` and check its digest (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at '{path}'")
    advice = "delete it to start training afresh (or restore it from a copy)"
    try:
        saved = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - unpickling errors come in many types
        raise ValueError(f"could not load checkpoint '{path}': {err}. The file is damaged or is not a "
                         f"vdlearn checkpoint; {advice}.") from err
    if not (isinstance(saved, dict) and saved.get("format") == _FORMAT and "state" in saved):
        raise ValueError(f"'{path}' is not a vdlearn checkpoint of this version (it has no checksum); {advice}.")
    if state_digest(saved["state"]) != saved.get("sha256"):
        raise ValueError(f"checkpoint '{path}' fails its checksum: its content changed after it was written "
                         f"(a damaged disk or an edited file); {advice}.")
    return saved["state"]


def rng_state() -> dict[str, Any]:
    """The state of torch's CPU (and CUDA) random generators."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
