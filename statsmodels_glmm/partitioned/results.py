"""Results of a partitioned fit: the in-memory results API without the rows.

Everything computed from the parameters, the covariance and the gathered modes
(``params``, ``bse``, ``summary()``, ``varcorr()``, ``ranef()``, Wald tests,
``llf``, AIC/BIC) is the in-memory results' own code. Per-observation arrays
(fitted values, residuals) stay in the partitions; the summary's residual
quantiles and the deviance are computed there at the end of the fit.
"""

from ..results import GLMMResults, GLMMResultsWrapper

__all__ = ["PartitionedResults"]

_ROW_ARRAYS = ("fittedvalues_array", "resid_pearson", "resid_response", "resid_deviance",
               "resid_working", "linear_predictor")


class PartitionedResults(GLMMResults):
    """:class:`results.GLMMResults` of a :class:`PartitionedModel`.

    Attributes
    ----------
    rounds : int
        Rounds over the partitions during the fit.
    """

    def __init__(self, model, fit, statistics):
        super().__init__(model, fit)
        self.__dict__["_kept_statistics"] = dict(statistics)
        self.rounds = model.rounds
        self.mle_retvals["rounds"] = model.rounds

    def __getattribute__(self, name):
        if name in _ROW_ARRAYS:
            raise AttributeError(
                f"{name} is per observation, and a partitioned fit keeps its rows in the "
                "partitions; refit in memory (glmer on a pandas DataFrame) for row-level "
                "output")
        return super().__getattribute__(name)


def wrap(results):
    return GLMMResultsWrapper(results)
