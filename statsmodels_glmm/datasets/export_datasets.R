# Writes the bundled datasets (CSV + factor levels as JSON) from the R packages
# that publish them. Run from the repository root:
#   Rscript statsmodels_glmm/datasets/export_datasets.R
suppressPackageStartupMessages({
  library(lme4)
  library(mlmRev)
  library(jsonlite)
})
out <- "statsmodels_glmm/datasets/data"
dir.create(out, showWarnings = FALSE, recursive = TRUE)

export <- function(df, name, source) {
  df <- as.data.frame(df)
  is_factor <- vapply(df, is.factor, logical(1))
  levels <- lapply(df[is_factor], levels)
  for (nm in names(df)[is_factor]) df[[nm]] <- as.character(df[[nm]])
  write.csv(df, file.path(out, paste0(name, ".csv")), row.names = FALSE)
  meta <- list(name = name, source = source, factors = levels,
               r_version = R.version.string)
  writeLines(toJSON(meta, auto_unbox = TRUE, pretty = TRUE),
             file.path(out, paste0(name, ".json")))
}

export(cbpp, "cbpp", paste("lme4", packageVersion("lme4")))
export(grouseticks, "grouseticks", paste("lme4", packageVersion("lme4")))
export(VerbAgg, "VerbAgg", paste("lme4", packageVersion("lme4")))
export(Contraception, "Contraception", paste("mlmRev", packageVersion("mlmRev")))
# The toy data of the seed question ("matching glmer with nAGQ").
toy <- data.frame(x1 = rep(1:5, 3), subject = factor(sort(rep(1:3, 5))),
                  y = c(1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 1, 0, 1, 1))
export(toy, "toy", "seed question: matching glmer output with nAGQ")
