"""Bundled example datasets, as pandas DataFrames with R's factor coding.

Each dataset is stored as CSV plus a JSON sidecar recording where it came from
and the levels of every R factor, so that categorical columns keep R's level
order (and therefore R's treatment contrasts and random-effect level order).
The files are written by ``export_datasets.R`` in this folder.
"""

from importlib import resources
import json

import pandas as pd

__all__ = [
    "available",
    "load",
    "load_cbpp",
    "load_contraception",
    "load_grouseticks",
    "load_toy",
    "load_verbagg",
]

_DATA = resources.files(__name__) / "data"


def available():
    """Return the names of the bundled datasets."""
    return sorted(p.name[:-4] for p in _DATA.iterdir() if p.name.endswith(".csv"))


def load(name):
    """Load a bundled dataset by name.

    Parameters
    ----------
    name : str
        One of :func:`available` (case-insensitive).

    Returns
    -------
    pandas.DataFrame
        A fresh copy; factor columns are ordered ``Categorical`` with R's levels.
    """
    lookup = {n.lower(): n for n in available()}
    key = str(name).lower()
    if key not in lookup:
        raise ValueError(
            f"unknown dataset {name!r}; bundled datasets are: {', '.join(available())}"
        )
    stem = lookup[key]
    meta = json.loads((_DATA / f"{stem}.json").read_text())
    factors = meta.get("factors") or {}
    with (_DATA / f"{stem}.csv").open("rb") as fh:
        frame = pd.read_csv(fh, dtype={col: str for col in factors})
    for col, levels in factors.items():
        frame[col] = pd.Categorical(frame[col], categories=levels)
    frame.attrs["source"] = meta.get("source", "")
    return frame


def load_cbpp():
    """Contagious bovine pleuropneumonia (lme4 ``cbpp``): 56 herd-periods."""
    return load("cbpp")


def load_contraception():
    """Bangladesh contraception use (mlmRev ``Contraception``): 1934 women."""
    return load("Contraception")


def load_grouseticks():
    """Ticks on red grouse chicks (lme4 ``grouseticks``): 403 chicks."""
    return load("grouseticks")


def load_verbagg():
    """Verbal aggression item responses (lme4 ``VerbAgg``): 7584 responses."""
    return load("VerbAgg")


def load_toy():
    """The 15-row toy binomial data of the seed question on nAGQ."""
    return load("toy")
