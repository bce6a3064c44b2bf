"""The .vkz file: a header that says what made the bits, then independent blocks of coded data.

    magic (8 bytes) | format version (u16) | header length (u32) | header (UTF-8 JSON) | SHA-256 of the header
    | block 0 | block 1 | ...

The header names the codec and its settings, the SHA-256 of the model's weights, the shape and count of the
examples, and for each block its example count, byte length, the SHA-256 of its bytes and the SHA-256 of the
examples it decodes to. So a truncated file, flipped bytes and the wrong model are each refused with a message
before any example is returned, and a decoder that computes differently from the encoder (another machine's
arithmetic) is caught by the examples' hash instead of giving wrong pixels. Integers are little-endian.
"""
from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field

import numpy as np
import torch

from ...errors import VaekitError

MAGIC = b"\x89VKZ\r\n\x1a\n"  # PNG-style: a non-ASCII byte, and the line endings text-mode copies mangle
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 1 << 24
_FIXED = struct.Struct("<HI")


@dataclass
class Block:
    count: int
    data: bytes
    examples_sha256: str


@dataclass
class Container:
    codec: str
    weights_sha256: str
    shape: tuple[int, ...]
    settings: dict
    blocks: list[Block] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(b.count for b in self.blocks)


def weights_sha256(module: torch.nn.Module) -> str:
    """A hash of a model's tensors (names, dtypes, shapes and values, in name order): the same weights give
    the same hash wherever they were loaded from."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes())
    return h.hexdigest()


def examples_sha256(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()


def to_bytes(c: Container) -> bytes:
    header = {"codec": c.codec, "weights_sha256": c.weights_sha256, "shape": list(c.shape), "count": c.count,
              "settings": c.settings,
              "blocks": [{"count": b.count, "bytes": len(b.data), "sha256": hashlib.sha256(b.data).hexdigest(),
                          "examples_sha256": b.examples_sha256} for b in c.blocks]}
    raw = json.dumps(header, sort_keys=True).encode()
    return b"".join([MAGIC, _FIXED.pack(FORMAT_VERSION, len(raw)), raw, hashlib.sha256(raw).digest(),
                     *(b.data for b in c.blocks)])


def from_bytes(data: bytes, what: str = "the file") -> Container:
    """Parse and check a .vkz file's structure and hashes (not yet the model: see check_model)."""
    data = bytes(data)
    if not data.startswith(MAGIC):
        raise VaekitError(f"{what} is not a vaekit compressed file (it does not start with the .vkz magic bytes)")
    start = len(MAGIC) + _FIXED.size
    if len(data) < start + 32:
        raise VaekitError(f"{what} is truncated: it ends inside the header")
    version, n = _FIXED.unpack_from(data, len(MAGIC))
    if version != FORMAT_VERSION:
        raise VaekitError(f"{what} has format version {version}; this vaekit reads version {FORMAT_VERSION}: "
                          f"decompress it with the vaekit that wrote it")
    if n > MAX_HEADER_BYTES or len(data) < start + n + 32:
        raise VaekitError(f"{what} is truncated or damaged: its header claims {n} bytes")
    raw, digest = data[start:start + n], data[start + n:start + n + 32]
    if hashlib.sha256(raw).digest() != digest:
        raise VaekitError(f"{what} is damaged: its header does not match its checksum")
    header = _header(raw, what)
    offset, blocks = start + n + 32, []
    for i, b in enumerate(header["blocks"]):
        payload = data[offset:offset + b["bytes"]]
        if len(payload) != b["bytes"]:
            raise VaekitError(f"{what} is truncated: block {i} should hold {b['bytes']} bytes, {len(payload)} remain")
        if hashlib.sha256(payload).hexdigest() != b["sha256"]:
            raise VaekitError(f"{what} is damaged: block {i} does not match its checksum (bytes changed in transit?)")
        blocks.append(Block(b["count"], payload, b["examples_sha256"]))
        offset += b["bytes"]
    if offset != len(data):
        raise VaekitError(f"{what} has {len(data) - offset} bytes after its last block: it is not one whole .vkz file")
    return Container(header["codec"], header["weights_sha256"], tuple(header["shape"]), header["settings"], blocks)


def _header(raw: bytes, what: str) -> dict:
    try:
        h = json.loads(raw.decode())
        ok = (isinstance(h, dict) and isinstance(h.get("codec"), str) and isinstance(h.get("weights_sha256"), str)
              and isinstance(h.get("settings"), dict) and isinstance(h.get("shape"), list)
              and all(isinstance(s, int) and 0 < s < 1 << 20 for s in h["shape"])
              and isinstance(h.get("blocks"), list)
              and all(isinstance(b, dict) and all(isinstance(b.get(k), int) and b[k] >= 0 for k in ("count", "bytes"))
                      and isinstance(b.get("sha256"), str) and isinstance(b.get("examples_sha256"), str)
                      for b in h["blocks"]))
    except (UnicodeDecodeError, json.JSONDecodeError):
        ok = False
    if not ok:
        raise VaekitError(f"{what} has a header that is not a vaekit compressed file's (wrong fields or types)")
    return h


def check_model(c: Container, codec: str, sha: str, shape: tuple[int, ...], what: str = "the file") -> None:
    """Refuse a file made by another codec or another model."""
    if c.codec != codec:
        raise VaekitError(f"{what} was written by the '{c.codec}' codec, not '{codec}'")
    if c.weights_sha256 != sha:
        raise VaekitError(f"{what} was compressed with another model (weights SHA-256 {c.weights_sha256[:12]}..., "
                          f"this model's is {sha[:12]}...): decompress it with the run that compressed it")
    if tuple(c.shape) != tuple(shape):
        raise VaekitError(f"{what} holds examples of shape {tuple(c.shape)}; this model codes {tuple(shape)}")
