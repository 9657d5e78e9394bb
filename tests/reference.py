"""Loading of the lme4/glmmTMB reference values and the data they were fitted to."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm

from statsmodels_glmm import datasets

RESULTS = Path(__file__).parent / "results"
REFERENCE = json.loads((RESULTS / "reference.json").read_text())
CASES = REFERENCE["cases"]

_LINKS = {
    "logit": sm.families.links.Logit, "probit": sm.families.links.Probit,
    "cloglog": sm.families.links.CLogLog, "log": sm.families.links.Log,
    "identity": sm.families.links.Identity, "inverse": sm.families.links.InversePower,
}
_FAMILIES = {"binomial": sm.families.Binomial, "poisson": sm.families.Poisson,
             "Gamma": sm.families.Gamma}


def family(case):
    return _FAMILIES[case["family"]](link=_LINKS[case["link"]]())


def load_data(name):
    """The data set a reference case was fitted to, with R's factor coding."""
    if name in datasets.available():
        frame = datasets.load(name)
    else:
        frame = pd.read_csv(RESULTS / "data" / f"{name}.csv")
        for col in frame.columns:
            if frame[col].dtype == object or pd.api.types.is_string_dtype(frame[col]):
                frame[col] = pd.Categorical(frame[col], categories=sorted(frame[col].unique()))
    if name == "cbpp":
        frame["prop"] = frame["incidence"] / frame["size"]
    if name == "Contraception":
        frame["ch"] = pd.Categorical(np.where(frame["livch"] != "0", "Y", "N"),
                                     categories=["N", "Y"])
    return frame


def best_neg2ll(case):
    """The better (lower) of lme4's refined value and glmmTMB's."""
    values = [case["lme4"]["neg2ll_refined"]]
    if "glmmTMB" in case:
        values.append(case["glmmTMB"]["neg2ll"])
    return min(v for v in values if v is not None)
