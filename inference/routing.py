"""`--model auto`: the model that segments a case, chosen by the modality in its file name.

The choice is data, not code: `inference/routing.json` maps modalities to models
and names the fallback for every other modality. `python -m training.routing`
writes it from measurements (per-modality DSC of every shipped model on cases none
was trained on) and records, per modality, what the decision rests on.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from casefiles import modality
from common.atomic import write_atomic
from inference.config import MODEL_CONFIGS

AUTO = "auto"
ROUTING_PATH = Path(__file__).with_name("routing.json")


@dataclass(frozen=True)
class Routing:
    """Modality -> model (matched without regard to case), and the model for every other modality."""

    fallback: str
    by_modality: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted({self.fallback, *self.by_modality.values()} - set(MODEL_CONFIGS))
        if unknown:
            raise ValueError(f"routing names unknown model(s) {', '.join(unknown)}; known: {', '.join(MODEL_CONFIGS)}")

    def model_for(self, case_name: str) -> str:
        """The model for a case file name (CaseError if the name holds no modality)."""
        wanted = modality(case_name).lower()
        for name, model in self.by_modality.items():
            if name.lower() == wanted:
                return model
        return self.fallback

    def models(self) -> list[str]:
        """Every model the routing can choose, the fallback first."""
        return list(dict.fromkeys([self.fallback, *self.by_modality.values()]))


@dataclass(frozen=True)
class Measured:
    """What routing a modality rests on: the model chosen, how many cases, each model's mean DSC and NSD."""

    model: str
    cases: int
    dsc: dict[str, float]
    nsd: dict[str, float]
    case_sets: list[str]


def write_routing(fallback: str, measured: dict[str, Measured], command: str, path: Path = ROUTING_PATH) -> Path:
    """Write the routing table with, per modality, the measurements it rests on and the command that made them."""
    Routing(fallback, {name: m.model for name, m in measured.items()})  # refuses unknown models
    content = {"fallback": fallback, "measured_by": command,
               "modalities": {name: asdict(m) for name, m in measured.items()}}
    return write_atomic(path, json.dumps(content, indent=1) + "\n")


def read_routing(path: Path = ROUTING_PATH) -> Routing:
    """The routing table of a routing file; ValueError naming the file when it is malformed."""
    try:
        raw = json.loads(Path(path).read_text())
        return Routing(raw["fallback"], {name: entry["model"] for name, entry in raw["modalities"].items()})
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a routing table ({type(err).__name__}: {err})") from err
