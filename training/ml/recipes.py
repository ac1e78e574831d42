"""Named recipes: the paper's settings for each stage, as YAML files in training/ml/configs/.

A recipe holds hyperparameters only (never a path, a model or a dataset), so the command line, a run and a
round can all take one by name: `python -m training.ml ppo --recipe instructgpt-ppo-ptx --model ... --dataset ...`
or a round's `stage_config: {"ppo": {"recipe": "instructgpt-ppo-ptx"}}`. Values given beside a recipe win
over it. A file holds `stage`, `description` and `settings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from training.ml.errors import ConfigError

FOLDER = Path(__file__).parent / "configs"


@dataclass(frozen=True)
class Recipe:
    name: str
    stage: str
    description: str
    settings: dict[str, Any]


@cache
def recipes() -> dict[str, Recipe]:
    """Every shipped recipe by name (the file name without .yaml)."""
    found = {}
    for path in sorted(FOLDER.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        found[path.stem] = Recipe(
            path.stem, data["stage"], " ".join(data["description"].split()), data["settings"]
        )
    return found


def recipe(name: str, stage: str) -> Recipe:
    """The recipe called `name`, which must be one for `stage`; a ConfigError names the ones there are."""
    known = recipes()
    for_stage = sorted(n for n, r in known.items() if r.stage == stage)
    if name not in known:
        choices = ", ".join(for_stage) or "none"
        raise ConfigError(f"unknown recipe {name!r}; the {stage} recipes are: {choices}")
    if known[name].stage != stage:
        raise ConfigError(f"recipe {name!r} is for the {known[name].stage} stage, not {stage}")
    return known[name]


def describe_recipes() -> str:
    """One paragraph per recipe, for `python -m training.ml recipes`."""
    return "\n\n".join(
        f"{r.name} ({r.stage}): {r.description}\n  " + ", ".join(f"{k}={v}" for k, v in r.settings.items())
        for r in recipes().values()
    )
