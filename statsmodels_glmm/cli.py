"""Command line: fit a GLMM on a CSV file or a bundled dataset and print it.

    python -m statsmodels_glmm fit "cbind(incidence, size - incidence) ~ period + (1 | herd)" \\
        --data cbpp --family binomial
    python -m statsmodels_glmm datasets
"""

import argparse
import json
import sys
import warnings

import numpy as np
import pandas as pd

from . import datasets
from .lme4_api import glmer
from .validation import R_LINKS, check_family

__all__ = ["main", "build_parser"]

_FAMILIES = ("binomial", "poisson", "gamma", "gaussian", "inverse_gaussian", "tweedie")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m statsmodels_glmm",
        description="Generalized linear mixed models by maximum likelihood (lme4's glmer).")
    sub = parser.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit", help="fit a model and print its summary")
    fit.add_argument("formula", help='lme4-style formula, e.g. "y ~ x + (1 | g)"')
    fit.add_argument("--data", required=True,
                     help="a CSV file or the name of a bundled dataset "
                          f"({', '.join(datasets.available())})")
    fit.add_argument("--family", default="binomial", choices=sorted(_FAMILIES))
    fit.add_argument("--link", choices=sorted(R_LINKS), help="default: the family's")
    fit.add_argument("--nAGQ", type=int, default=1, help="0, 1 (Laplace) or quadrature points")
    fit.add_argument("--weights", help="column of prior weights")
    fit.add_argument("--offset", help="column of offsets")
    fit.add_argument("--reml", action="store_true", help="REML (Gaussian, identity link)")
    fit.add_argument("--json", action="store_true", help="print the results as JSON")
    sub.add_parser("datasets", help="list the bundled datasets")
    return parser


def _load(source):
    if source.lower().endswith(".csv"):
        try:
            return pd.read_csv(source)
        except FileNotFoundError:
            raise SystemExit(f"error: data file {source!r} not found") from None
    try:
        return datasets.load(source)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None


def _family(name, link):
    """The family as R writes it, e.g. ``binomial(link = "probit")``."""
    return check_family(f'{name}(link = "{link}")' if link else name)


def results_to_dict(res):
    """The main results as plain JSON-serialisable Python objects."""
    vc = res.varcorr().astype(object).where(res.varcorr().notna(), None)
    return {
        "formula": res.model.formula_full,
        "nobs": int(res.nobs),
        "nAGQ": res.nAGQ,
        "converged": res.converged,
        "llf": res.llf,
        "neg2llf": res.neg2llf,
        "aic": res.aic,
        "bic": res.bic,
        "deviance": res.deviance,
        "df_resid": res.df_resid,
        "params": res.params.to_dict(),
        "bse": res.bse.to_dict(),
        "pvalues": res.pvalues.to_dict(),
        "theta": res.theta.to_dict(),
        "varcorr": vc.to_dict(orient="records"),
        "dispersion": res.dispersion,
    }


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "datasets":
        for name in datasets.available():
            print(name)
        return 0
    data = _load(args.data)
    try:
        family = _family(args.family, args.link)
    except (TypeError, ValueError) as exc:
        raise SystemExit(
            f"error: link {args.link!r} is not valid for {args.family}: {exc}") from None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit_kwargs = {"reml": True} if args.reml else {}
            res = glmer(args.formula, data, family=family, nAGQ=args.nAGQ,
                        weights=args.weights, offset=args.offset, **fit_kwargs)
    except (ValueError, TypeError, KeyError) as exc:
        raise SystemExit(f"error: {exc}") from None
    except Exception as exc:  # patsy errors, PIRLS failures: report, don't trace back
        raise SystemExit(f"error: {type(exc).__name__}: {exc}") from None
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    if args.json:
        print(json.dumps(results_to_dict(res), indent=2, default=_jsonable))
    else:
        print(res.summary())
    return 0


def _jsonable(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(type(value).__name__)


if __name__ == "__main__":
    sys.exit(main())
