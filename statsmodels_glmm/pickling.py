"""Pickling of formula models.

statsmodels rebuilds a formula model's design on unpickling by evaluating the
formula in guessed stack frames, where R's functions of the translated formula
(factor, poly, scale ...) are not found; the design is rebuilt here instead, in
:data:`r_formula.R_NAMESPACE`, and with it what :mod:`compact_state` leaves out
of the pickle (statsmodels' design arrays, the model frame, the response).
"""

from patsy import EvalEnvironment, dmatrices

from .compact_state import (
    compact_model_state,
    rebuild_frame,
    restore_data_arrays,
    restore_model,
)
from .r_formula import R_NAMESPACE

__all__ = ["RFormulaPickling"]


class RFormulaPickling:
    """Mixin for a statsmodels model whose formula is written in R's language."""

    def __getstate__(self):
        """The state without the formula engine's design (rebuilt on loading)."""
        state = self.__dict__.copy()
        data = state.get("data")
        specs = ("model_spec", "design_info")  # statsmodels >= 0.15, 0.14
        if data is not None and any(k in vars(data) for k in specs):
            # a shallow copy without statsmodels' own (get/set)state round trip
            fields = {k: v for k, v in vars(data).items() if k not in specs}
            fields["restore_r_model_spec"] = True
            # and without what the formula re-evaluates (see compact_state)
            fields = compact_model_state(self, state, fields)
            data = object.__new__(type(data))
            data.__dict__.update(fields)
            state["data"] = data
        else:
            compact_model_state(self, state, {})
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        data = state.get("data")
        if data is not None and vars(data).pop("restore_r_model_spec", False):
            rebuild_frame(self, data)
            try:
                from statsmodels.formula._manager import FormulaManager
            except ImportError:  # statsmodels 0.14: patsy's design_info
                endog, design = dmatrices(data.formula, data.frame, return_type="dataframe",
                                          eval_env=EvalEnvironment([R_NAMESPACE]))
                data.design_info = design.design_info
            else:
                manager = FormulaManager()
                endog, design = manager.get_matrices(
                    data.formula, data.frame, eval_env=dict(R_NAMESPACE), pandas=True)
                data.model_spec = manager.spec
            if "restore_design" in vars(data):
                data.orig_endog, data.orig_exog = endog, design
                restore_data_arrays(data)
        restore_model(self)
