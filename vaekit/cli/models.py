"""vaekit models: the registry, one line per entry, grouped by the kind of data the models take."""
from __future__ import annotations

from ..models import MODELS

HELP = "list the models of the registry, grouped by the data they take"


def add_arguments(p) -> None:
    pass


def run(args) -> int:
    groups: dict[str, list] = {}
    for spec in MODELS.values():
        groups.setdefault(spec.modality, []).append(spec)
    width = max(len(name) for name in MODELS)
    for modality, specs in groups.items():
        print(f"{modality}:")
        for spec in specs:
            print(f"  {spec.name:<{width}}  {spec.summary}")
    return 0
