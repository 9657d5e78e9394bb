# Reference values for tests/test_r_formula.py (R's formula language).
#
#   Rscript tests/results/make_r_formula_reference.R      (from the repository root)
#
# Writes tests/results/r_formula_reference.json: the data below, R's numbers for
# poly / scale / ns / bs / cut / factor / relevel (fitted and predicted on new
# data), and model.matrix() of a set of formulas. Never edit the JSON by hand.
suppressPackageStartupMessages({
  library(splines)
  library(lme4)
  library(jsonlite)
})

out_file <- "tests/results/r_formula_reference.json"
mat <- function(m) {
  m <- as.matrix(m)
  list(values = unname(lapply(seq_len(nrow(m)), function(i) unname(m[i, ]))),
       colnames = colnames(m))
}

## ---- data (small, fixed) --------------------------------------------------
d <- data.frame(
  y = c(2.1, 3.4, 1.9, 5.2, 4.4, 3.3, 2.8, 6.1, 4.9, 3.7, 5.5, 2.2),
  x = c(0.12, 0.95, 0.33, 0.47, 0.71, 0.05, 0.88, 0.26, 0.64, 0.59, 0.4, 0.81),
  z = c(1.5, 2.25, 3.1, 4.8, 1.2, 2.9, 3.3, 5.7, 2.2, 4.1, 3.6, 1.9),
  a = c("lo", "hi", "mid", "lo", "hi", "mid", "lo", "hi", "mid", "lo", "hi", "mid"),
  f = c("b", "B", "a", "b", "B", "a", "a", "b", "B", "B", "a", "b"),
  geno = c("WT", "mutant", "WT", "mutant", "WT", "mutant", "mutant", "WT", "WT",
           "mutant", "WT", "mutant"),
  yr = c(1995L, 1996L, 1997L, 1998L, 1995L, 1996L, 1997L, 1998L, 1995L, 1996L,
         1997L, 1998L),
  b = c(TRUE, FALSE, FALSE, TRUE, TRUE, FALSE, TRUE, FALSE, TRUE, FALSE, TRUE, FALSE),
  `silly name` = c(3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8),
  site.index = c(10, 20, 30, 40, 15, 25, 35, 45, 12, 22, 32, 42),
  stringsAsFactors = FALSE, check.names = FALSE)
x <- d$x
newx <- c(-0.2, 0, 0.05, 0.3, 0.5, 0.95, 1.1, 1.5)

## ---- transforms -------------------------------------------------------------
transforms <- list()
add <- function(name, fit, pred = NULL) {
  transforms[[name]] <<- list(fit = mat(fit), predict = if (!is.null(pred)) mat(pred))
}
for (deg in 1:3) {
  p <- poly(x, deg)
  add(sprintf("poly(x, %d)", deg), p, predict(p, newx))
  pr <- poly(x, deg, raw = TRUE)
  add(sprintf("poly(x, %d, raw = TRUE)", deg), pr, predict(pr, newx))
}
scale_forms <- list(
  "scale(x)" = function(v, s) if (is.null(s)) scale(v) else
    scale(v, attr(s, "scaled:center"), attr(s, "scaled:scale")),
  "scale(x, center = FALSE)" = function(v, s) if (is.null(s)) scale(v, center = FALSE) else
    scale(v, center = FALSE, scale = attr(s, "scaled:scale")),
  "scale(x, scale = FALSE)" = function(v, s) if (is.null(s)) scale(v, scale = FALSE) else
    scale(v, center = attr(s, "scaled:center"), scale = FALSE),
  "scale(x, center = 0.5, scale = 2)" = function(v, s) scale(v, center = 0.5, scale = 2),
  "scale(x, center = FALSE, scale = FALSE)" = function(v, s)
    scale(v, center = FALSE, scale = FALSE),
  "scale(x, center = 0.25)" = function(v, s) if (is.null(s)) scale(v, center = 0.25) else
    scale(v, center = 0.25, scale = attr(s, "scaled:scale"))
)
for (nm in names(scale_forms)) {
  s <- scale_forms[[nm]](x, NULL)
  add(nm, s, scale_forms[[nm]](newx, s))
}
spline_forms <- list(
  "ns(x, 3)" = ns(x, 3),
  "ns(x, df = 1)" = ns(x, df = 1),
  "ns(x, knots = c(0.3, 0.6))" = ns(x, knots = c(0.3, 0.6)),
  "ns(x, df = 4, intercept = TRUE)" = ns(x, df = 4, intercept = TRUE),
  "ns(x, df = 3, Boundary.knots = c(0.1, 0.9))" = ns(x, df = 3, Boundary.knots = c(0.1, 0.9)),
  "bs(x, df = 5)" = bs(x, df = 5),
  "bs(x, 3)" = bs(x, 3),
  "bs(x, knots = c(0.3, 0.6))" = bs(x, knots = c(0.3, 0.6)),
  "bs(x, df = 4, degree = 2)" = bs(x, df = 4, degree = 2),
  "bs(x, df = 6, intercept = TRUE)" = bs(x, df = 6, intercept = TRUE),
  "bs(x, df = 4, Boundary.knots = c(0.1, 0.9))" =
    suppressWarnings(bs(x, df = 4, Boundary.knots = c(0.1, 0.9)))
)
for (nm in names(spline_forms)) {
  s <- spline_forms[[nm]]
  add(nm, s, suppressWarnings(predict(s, newx)))
}

## ---- cut --------------------------------------------------------------------
cut_forms <- list(
  "cut(x, 3)" = cut(x, 3),
  "cut(x, c(0, 0.25, 0.5, 1))" = cut(x, c(0, 0.25, 0.5, 1)),
  "cut(x, c(0.05, 0.5, 0.95), right = FALSE, include.lowest = TRUE)" =
    cut(x, c(0.05, 0.5, 0.95), right = FALSE, include.lowest = TRUE),
  "cut(x, c(0.05, 0.5, 0.95), include.lowest = TRUE)" =
    cut(x, c(0.05, 0.5, 0.95), include.lowest = TRUE),
  "cut(x * 1000, 4)" = cut(x * 1000, 4),
  "cut(x, 2, labels = c(\"low\", \"high\"))" = cut(x, 2, labels = c("low", "high")),
  "cut(x, 4, dig.lab = 1)" = cut(x, 4, dig.lab = 1),
  "cut(x - 0.5, 3)" = cut(x - 0.5, 3)
)
cuts <- lapply(cut_forms, function(f) list(values = as.character(f), levels = levels(f)))

## ---- factor level orders ------------------------------------------------------
words <- c("b", "B", "a", "A", "WT", "mutant", "wt", "Mutant", "_x", "1a", "a b", "a_b",
           "a-b", "a.b", "a1", "ab", "aB", "Ab", "e", "f", "Z", "10", "9", "x2", "x10")
factors <- list(
  "factor(words)" = levels(factor(words)),
  "factor(c(10, 9, 100, 9.5))" = levels(factor(c(10, 9, 100, 9.5))),
  "factor(c(TRUE, FALSE, TRUE))" = levels(factor(c(TRUE, FALSE, TRUE))),
  "relevel(factor(words), \"WT\")" = levels(relevel(factor(words), "WT")),
  "relevel(factor(d$yr), 3)" = levels(relevel(factor(d$yr), 3)),
  "as.character(c(10, 9, 100))" = levels(factor(as.character(c(10, 9, 100)))),
  "factor(d$geno)" = levels(factor(d$geno)),
  "factor(d$f)" = levels(factor(d$f))
)

## ---- model.matrix -----------------------------------------------------------
formulas <- c(
  "y ~ (a + x + z)^2",
  "y ~ factor(yr) + scale(x)",
  "y ~ poly(x, 2) + log(z)",
  "y ~ x %in% f",
  "y ~ `silly name` + site.index",
  "y ~ relevel(factor(f), \"b\") * x",
  "y ~ ns(x, 3)",
  "y ~ cut(x, 3)",
  "y ~ 0 + f",
  "y ~ f - 1 + x",
  "y ~ x + f",
  "y ~ x * geno",
  "y ~ f:geno",
  "y ~ a/f",
  "y ~ b + I(x^2) + I(x > 0.5)",
  "y ~ bs(x, df = 5) + poly(z, 3, raw = TRUE)",
  "y ~ -1 + x * f",
  "y ~ poly(x, 2):geno",
  "y ~ log(z, 2) + pmin(x, 0.5) + sqrt(z) + exp(x) + log1p(x) + log10(z) + abs(x - 0.5)",
  "y ~ C(factor(f), contr.sum) + x",
  "y ~ as.factor(yr) + as.numeric(geno == \"WT\")",
  "y ~ dummy(f, \"b\") + x",
  "y ~ factor(yr, labels = c(\"A\", \"B\", \"C\", \"D\")) + z",
  "y ~ x + z + x:z + x:geno",
  "y ~ geno * f * x - geno:f:x",
  "y ~ x^2 + z",
  "y ~ (x + z + a)^3 - x:z:a",
  "y ~ site.index + I(site.index^2) + cut(z, c(1, 2, 4, 6))",
  "y ~ relevel(factor(yr), 3) + x:b",
  "y ~ x + I(-x) + I(x %% 0.25) + I(2^x) + I(-x^2)",
  # found by comparing random formulas with R:
  "y ~ f:z + ns(x, 3) + z + f:ns(x, 3)",
  "y ~ 0 + ((`silly name` - scale(z)) * dummy(f, \"b\")) / (f * site.index)",
  "y ~ ((I(x > 0.5) - (a:factor(yr))) %in% ((a %in% a):factor(yr)))",
  "y ~ (a - a) * x + z",
  "y ~ geno * z + x + geno:ns(x, 3)",
  "y ~ x + f:factor(yr):a:geno:b"
)
matrices <- lapply(formulas, function(f) mat(model.matrix(as.formula(f), d)))
names(matrices) <- formulas

## prediction: model.matrix of the fitted terms on new data (R's makepredictcall)
newdata <- data.frame(x = newx, z = c(0.5, 1.2, 2, 3, 4, 5.7, 6.5, 8),
                      geno = c("WT", "mutant", "WT", "WT", "mutant", "mutant", "WT", "WT"),
                      yr = c(1995L, 1996L, 1997L, 1998L, 1998L, 1997L, 1996L, 1995L),
                      stringsAsFactors = FALSE)
predict_formulas <- c(
  "y ~ poly(x, 2) + ns(z, 3) + scale(x) + geno",
  "y ~ bs(x, df = 4) * geno + scale(z, center = FALSE)",
  "y ~ x + factor(yr) + poly(z, 3, raw = TRUE) + ns(x, knots = c(0.3, 0.6))"
)
predictions <- lapply(predict_formulas, function(f) {
  fit <- lm(as.formula(f), d)
  mat(model.matrix(delete.response(terms(fit)), newdata, xlev = fit$xlevels))
})
names(predictions) <- predict_formulas

## column names that are also function names or keywords
d_names <- data.frame(y = d$y, x = d$x, z = d$z, I = d$z * 2, log = d$x + 1,
                      C = d$a, Q = d$site.index, `if` = d$yr - 1990, scale = d$z,
                      stringsAsFactors = FALSE, check.names = FALSE)
names_formulas <- c("y ~ I + log + I(x^2) + log(z)",
                    "y ~ C + Q + `if` + scale(scale) + scale")
names_matrices <- lapply(names_formulas, function(f) mat(model.matrix(as.formula(f), d_names)))
names(names_matrices) <- names_formulas

## `.`: R's terms(data = ) on a few columns
d_dot <- d[, c("y", "x", "z", "geno", "silly name")]
dot_matrices <- list(
  "y ~ ." = mat(model.matrix(y ~ ., d_dot)),
  "y ~ .^2" = mat(model.matrix(y ~ .^2, d_dot)),
  "y ~ . - z" = mat(model.matrix(y ~ . - z, d_dot))
)

## ---- update() ---------------------------------------------------------------
old <- y ~ x + z + (1 | g)
updates <- list(
  ". ~ . - x" = update(old, . ~ . - x),
  ". ~ . + (1 | h)" = update(old, . ~ . + (1 | h)),
  "~ . + x:z" = update(old, ~ . + x:z),
  ". ~ . - (1 | g)" = update(old, . ~ . - (1 | g)),
  "log(.) ~ ." = update(old, log(.) ~ .),
  ". ~ . * w" = update(old, . ~ . * w),
  ". ~ . - 1" = update(old, . ~ . - 1),
  ". ~ . + offset(log(t))" = update(old, . ~ . + offset(log(t))),
  "cbind(s, f) ~ ." = update(old, cbind(s, f) ~ .)
)
updates <- lapply(updates, function(f) paste(deparse(f, width.cutoff = 500L), collapse = ""))

write_json(list(data = d, newx = newx, transforms = transforms, cuts = cuts,
                factors = factors, words = words, matrices = matrices,
                dot_matrices = dot_matrices, updates = updates,
                newdata = newdata, predictions = predictions,
                d_names = d_names, names_matrices = names_matrices,
                R_version = R.version.string,
                collation = icuGetCollate()),
           out_file, digits = NA, auto_unbox = TRUE, null = "null", pretty = FALSE)
cat("wrote", out_file, "\n")
