"""Formula interface (statsmodels style)."""
