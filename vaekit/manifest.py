"""The manifest (vaekit.json) of every folder vaekit writes: what kind of folder it is, its format version,
the data it models and the artefacts it holds. Each loader checks it, so that a folder of another kind is
refused with the loader it needs instead of a missing-file error halfway through loading."""
from __future__ import annotations

from pathlib import Path

from .errors import VaekitError
from .io import atomic_write_json, read_json

MANIFEST_FILE = "vaekit.json"
FORMAT = 1  # the newest folder format this vaekit reads and writes

# kind -> (what it is, how to load it); PATH stands for the folder
KINDS = {
    "model": ("a model (a training run or a saved estimator)",
              "vaekit.load(PATH), or the commands sample, reconstruct, interpolate, latent-map, manifold, evaluate"),
    "anomaly-detector": ("an anomaly detector", "vaekit.load_detector(PATH), or "
                         "'vaekit anomaly score PATH' / 'vaekit anomaly evaluate PATH'"),
}
# folders written before manifests existed: the file that marks each kind
_LEGACY_MARKERS = {"model": "config.json", "anomaly-detector": "detector.json"}


def write_manifest(directory, kind: str, modality: str, artefacts: dict) -> None:
    """Record the folder's kind, format, modality and artefacts (name -> relative path, or a list of them)."""
    if kind not in KINDS:
        raise ValueError(f"unknown folder kind {kind!r}")
    atomic_write_json(Path(directory) / MANIFEST_FILE,
                      {"kind": kind, "format": FORMAT, "modality": modality, "artefacts": artefacts})


def check_manifest(directory, kind: str) -> dict:
    """The manifest of a folder that must be of kind; a folder of another kind, or of a newer format, is
    refused with what it is and how to load it. A folder from before manifests passes by its marker file."""
    directory = Path(directory)
    path = directory / MANIFEST_FILE
    if not path.is_file():
        found = next((k for k, marker in _LEGACY_MARKERS.items() if (directory / marker).is_file()), None)
        if found is None:
            what = {"model": "a vaekit model folder", "anomaly-detector": "a saved anomaly detector"}[kind]
            raise VaekitError(f"{directory} is not {what}: it has no {MANIFEST_FILE} (nor {_LEGACY_MARKERS[kind]})")
        doc = {"kind": found, "format": 0}
    else:
        doc = read_json(path, "replace it with a good copy, or write the folder again")
        if not isinstance(doc, dict) or not isinstance(doc.get("kind"), str) or not isinstance(doc.get("format"), int):
            raise VaekitError(f"{path} is not a vaekit manifest (it needs 'kind' and 'format'); replace it with a "
                              f"good copy, or write the folder again")
    if doc["kind"] != kind:
        what, how = KINDS.get(doc["kind"], (f"a folder of kind '{doc['kind']}'", "a newer vaekit"))
        raise VaekitError(f"{directory} holds {what}, not {KINDS[kind][0]}: load it with "
                          f"{how.replace('PATH', str(directory))}")
    if doc["format"] > FORMAT:
        raise VaekitError(f"{directory} was written by a newer vaekit (format {doc['format']}; this one reads up to "
                          f"{FORMAT}): upgrade vaekit to load it")
    return doc
