# Generates the lme4 / glmmTMB reference values that tests/test_*.py compare against.
#
#   Rscript tests/results/make_reference.R      (from the repository root)
#
# (without the DHARMa package installed, set DHARMA_SRC to the R/ directory of DHARMa's
# sources, git tag v0.5.0: see the issue 16 section)
#
# Writes tests/results/reference.json and the simulated data sets in
# tests/results/data/. Never edit the JSON by hand: rerun this script.
#
# For every lme4 fit we also re-evaluate lme4's own deviance function at its
# optimum with tolPwrss = 1e-14 ("neg2ll_refined"), because the logLik lme4
# reports carries PIRLS error. For nAGQ > 1 lme4 drops the binomial normalizing
# constant (lme4 issue #161): we add it back ("neg2ll_with_constant") and also
# integrate the marginal likelihood numerically at lme4's optimum
# ("neg2ll_integrate") so the exact value is known.
suppressPackageStartupMessages({
  library(lme4)
  library(glmmTMB)
  library(mlmRev)
  library(jsonlite)
})

out_dir <- "tests/results"
data_dir <- file.path(out_dir, "data")
dir.create(data_dir, showWarnings = FALSE, recursive = TRUE)

## ---- simulated data (fixed seeds), saved for the Python tests --------------
set.seed(20261122)
ng <- 30; per <- 10
pois <- data.frame(g = factor(rep(sprintf("g%02d", 1:ng), each = per)),
                   x = round(rnorm(ng * per), 4),
                   t = round(runif(ng * per, 0.5, 3), 4))
b0 <- rnorm(ng, 0, 0.5); b1 <- rnorm(ng, 0, 0.3)
gi <- as.integer(pois$g)
pois$y <- rpois(nrow(pois), pois$t * exp(0.3 + 0.4 * pois$x + b0[gi] + b1[gi] * pois$x))
write.csv(pois, file.path(data_dir, "poisson_offset.csv"), row.names = FALSE)

set.seed(101)
ngam <- 40; pergam <- 8
gam <- data.frame(block = factor(rep(sprintf("b%02d", 1:ngam), each = pergam)),
                  x = round(runif(ngam * pergam), 4))
bg <- rnorm(ngam, 0, 0.4)
mu_g <- exp(1 + 0.8 * gam$x + bg[as.integer(gam$block)])
gam$y <- round(rgamma(nrow(gam), shape = 2, scale = mu_g / 2), 6)
gam$y[gam$y <= 0] <- 1e-6
write.csv(gam, file.path(data_dir, "gamma_log.csv"), row.names = FALSE)

set.seed(202)
nnb <- 30; pernb <- 12
nbd <- data.frame(g = factor(rep(sprintf("g%02d", 1:nnb), each = pernb)),
                  x = round(rnorm(nnb * pernb), 4))
bnb <- rnorm(nnb, 0, 0.5)
nbd$y <- rnbinom(nrow(nbd), size = 2.5, mu = exp(1 + 0.5 * nbd$x + bnb[as.integer(nbd$g)]))
write.csv(nbd, file.path(data_dir, "negbin.csv"), row.names = FALSE)

## ---- helpers -------------------------------------------------------------------
fam_of <- function(family, link) {
  switch(family,
         binomial = binomial(link = link),
         poisson = poisson(link = link),
         Gamma = Gamma(link = link),
         stop("family"))
}

tmb_family <- fam_of

# -2 log p(y | mu = y): the binomial constant that lme4's nAGQ > 1 value omits
binomial_saturated <- function(fit) {
  y <- fit@resp$y; w <- fit@resp$weights; n <- fit@resp$n
  m <- if (any(n > 1)) n else w
  -2 * sum(ifelse(m > 0, w / m, 0) * dbinom(round(m * y), round(m), y, log = TRUE))
}

# exact marginal -2 log-likelihood of a single scalar random intercept model,
# by adaptive numerical integration (stats::integrate) per level
integrate_neg2ll <- function(fit) {
  stopifnot(length(fit@cnms) == 1, length(fit@cnms[[1]]) == 1)
  sd_b <- getME(fit, "theta") * 1
  fam <- family(fit)
  X <- getME(fit, "X"); beta <- fixef(fit)
  eta_fixed <- drop(X %*% beta) + getME(fit, "offset")
  f <- getME(fit, "flist")[[1]]
  y <- fit@resp$y; w <- fit@resp$weights; n <- fit@resp$n
  m <- if (any(n > 1)) n else w
  z <- getME(fit, "Z")
  total <- 0
  for (lev in levels(f)) {
    idx <- which(f == lev)
    zz <- as.numeric(z[idx, which(colnames(z) == lev)[1]])
    integrand <- function(b) vapply(b, function(bb) {
      mu <- fam$linkinv(eta_fixed[idx] + zz * bb)
      exp(sum(ifelse(m[idx] > 0, w[idx] / m[idx], 0) *
              dbinom(round(m[idx] * y[idx]), round(m[idx]), mu, log = TRUE))) *
        dnorm(bb, 0, sd_b)
    }, 0)
    val <- integrate(integrand, -Inf, Inf, rel.tol = 1e-12, abs.tol = 0,
                     subdivisions = 1000L)$value
    total <- total - 2 * log(val)
  }
  total
}

lme4_summary <- function(fit, nAGQ) {
  par <- if (nAGQ == 0) getME(fit, "theta") else c(getME(fit, "theta"), fixef(fit))
  devfun <- update(fit, devFunOnly = TRUE,
                   control = glmerControl(tolPwrss = 1e-14))
  refined <- tryCatch(devfun(par), error = function(e) NA_real_)
  vc <- as.data.frame(VarCorr(fit))
  list(
    neg2ll = -2 * as.numeric(logLik(fit)),
    neg2ll_refined = refined,
    fixef = as.list(fixef(fit)),
    se = I(as.numeric(sqrt(diag(vcov(fit))))),
    se_conditional = I(as.numeric(sqrt(diag(vcov(fit, use.hessian = FALSE))))),
    theta = I(as.numeric(getME(fit, "theta"))),
    theta_names = I(names(getME(fit, "theta"))),
    varcorr = list(grp = I(vc$grp), var1 = I(vc$var1), var2 = I(vc$var2),
                   vcov = I(vc$vcov), sdcor = I(vc$sdcor)),
    deviance = deviance(fit),
    aic = AIC(fit), bic = BIC(fit), df_resid = df.residual(fit),
    nobs = nobs(fit)
  )
}

tmb_summary <- function(fit) {
  vc <- VarCorr(fit)$cond
  sds <- unlist(lapply(vc, function(m) attr(m, "stddev")))
  list(
    neg2ll = -2 * as.numeric(logLik(fit)),
    fixef = as.list(fixef(fit)$cond),
    se = I(as.numeric(sqrt(diag(vcov(fit)$cond)))),
    sd = I(as.numeric(sds)),
    sigma = sigma(fit)
  )
}

cases <- list()
add_case <- function(name, formula, data, family, link, nAGQ, python, data_name,
                     weights = NULL, tmb = TRUE, integrate = FALSE, prepare = NULL) {
  message("fitting ", name)
  fam <- fam_of(family, link)
  env <- environment()
  args <- list(formula = as.formula(formula), data = data, family = fam, nAGQ = nAGQ)
  if (!is.null(weights)) args$weights <- data[[weights]]
  fit <- do.call(glmer, args)
  entry <- list(name = name, formula_r = formula, formula = python, data = data_name,
                family = family, link = link, nAGQ = nAGQ, weights = weights,
                prepare = prepare, lme4 = lme4_summary(fit, nAGQ))
  if (nAGQ > 1 && family == "binomial") {
    const <- binomial_saturated(fit)
    entry$lme4$binomial_constant <- const
    entry$lme4$neg2ll_with_constant <- entry$lme4$neg2ll_refined + const
  }
  if (integrate) entry$lme4$neg2ll_integrate <- integrate_neg2ll(fit)
  if (tmb && nAGQ == 1) {
    targs <- list(formula = as.formula(formula), data = data, family = tmb_family(family, link))
    if (!is.null(weights)) targs$weights <- data[[weights]]
    tfit <- do.call(glmmTMB, targs)
    entry$glmmTMB <- tmb_summary(tfit)
  }
  cases[[name]] <<- entry
}

## ---- cbpp -----------------------------------------------------------------------
data(cbpp)
cbpp$prop <- cbpp$incidence / cbpp$size
cbind_f <- "cbind(incidence, size - incidence) ~ period + (1 | herd)"
cbind_py <- "cbind(incidence, size - incidence) ~ period + (1 | herd)"
for (k in c(0, 1, 9, 25)) {
  add_case(sprintf("cbpp_logit_nAGQ%d", k), cbind_f, cbpp, "binomial", "logit", k,
           cbind_py, "cbpp", integrate = (k == 25))
}
add_case("cbpp_probit", cbind_f, cbpp, "binomial", "probit", 1, cbind_py, "cbpp")
add_case("cbpp_cloglog", cbind_f, cbpp, "binomial", "cloglog", 1, cbind_py, "cbpp")
add_case("cbpp_prop_weights", "prop ~ period + (1 | herd)", cbpp, "binomial", "logit", 1,
         "prop ~ period + (1 | herd)", "cbpp", weights = "size",
         prepare = "prop = incidence / size")

## ---- toy data of the seed question -------------------------------------------------
toy <- data.frame(x1 = rep(1:5, 3), subject = factor(sort(rep(1:3, 5))),
                  y = c(1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 1, 0, 1, 1))
for (k in c(0, 1, 25)) {
  add_case(sprintf("toy_nAGQ%d", k), "y ~ x1 + (1 | subject)", toy, "binomial", "logit", k,
           "y ~ x1 + (1 | subject)", "toy", integrate = (k == 25))
}

## ---- Contraception -------------------------------------------------------------------
data(Contraception, package = "mlmRev")
Contraception$ch <- factor(Contraception$livch != 0, labels = c("N", "Y"))
add_case("contraception", "use ~ age * ch + I(age^2) + urban + (urban | district)",
         Contraception, "binomial", "logit", 1,
         "use ~ age * ch + I(age**2) + urban + (urban | district)", "Contraception",
         prepare = "ch = livch != '0'")

## ---- Poisson: crossed and nested terms (grouseticks) ------------------------------
data(grouseticks)
add_case("grouseticks_crossed",
         "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)",
         grouseticks, "poisson", "log", 1,
         "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)",
         "grouseticks")
add_case("grouseticks_nested", "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION/BROOD)",
         grouseticks, "poisson", "log", 1,
         "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION/BROOD)", "grouseticks")

## ---- Poisson with an offset and independent random intercept and slope --------------
add_case("poisson_offset_double_bar", "y ~ x + (x || g) + offset(log(t))", pois, "poisson",
         "log", 1, "y ~ x + (x || g) + offset(log(t))", "poisson_offset")

## ---- Gamma(log): lme4's likelihood uses a plug-in dispersion, glmmTMB is the reference
add_case("gamma_log", "y ~ x + (1 | block)", gam, "Gamma", "log", 1,
         "y ~ x + (1 | block)", "gamma_log")

## ---- linear mixed model (sleepstudy) against lmer --------------------------------------
data(sleepstudy)
lmm <- list()
for (reml in c(FALSE, TRUE)) {
  fit <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = reml)
  vc <- as.data.frame(VarCorr(fit))
  lmm[[if (reml) "reml" else "ml"]] <- list(
    neg2ll = -2 * as.numeric(logLik(fit)), fixef = as.list(fixef(fit)),
    se = I(as.numeric(sqrt(diag(vcov(fit))))), theta = I(as.numeric(getME(fit, "theta"))),
    sdcor = I(vc$sdcor), sigma = sigma(fit))
}
cases$sleepstudy <- list(name = "sleepstudy", formula = "Reaction ~ Days + (Days | Subject)",
                         data = "sleepstudy", lmer = lmm)
write.csv(sleepstudy, file.path(data_dir, "sleepstudy.csv"), row.names = FALSE)

## ---- issue 4: ranef/condVar, residuals, hat values, coef, predict ------------------
gm1 <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial)
gm1p <- glmer(prop ~ period + (1 | herd), cbpp, binomial, weights = size)
rr <- ranef(gm1, condVar = TRUE)
newd <- data.frame(period = factor(c("1", "2", "4", "3"), levels = levels(cbpp$period)),
                   herd = factor(c("1", "7", "99", "3")), size = c(10, 20, 5, 8))
cm <- glmer(use ~ age * ch + I(age^2) + urban + (urban | district), Contraception, binomial)
rc <- ranef(cm, condVar = TRUE)
pv <- attr(rc$district, "postVar")
cases$extras <- list(
  cbpp = list(
    fixef = as.list(fixef(gm1)), theta = I(getME(gm1, "theta")),
    ranef = I(rr$herd[, 1]), postvar = I(as.numeric(attr(rr$herd, "postVar"))),
    coef_intercept = I(coef(gm1)$herd[, 1]),
    resid_range = list(
      deviance = I(range(residuals(gm1p, "deviance"))),
      pearson = I(range(residuals(gm1p, "pearson"))),
      working = I(range(residuals(gm1p, "working"))),
      response = I(range(residuals(gm1p, "response")))),
    predict_new_link = I(as.numeric(predict(gm1, newd, allow.new.levels = TRUE))),
    predict_new_pop = I(as.numeric(predict(gm1, newd, re.form = NA, type = "response"))),
    fitted = I(as.numeric(fitted(gm1)))),
  contraception = list(
    theta = I(getME(cm, "theta")),
    ranef_first = I(as.numeric(rc$district[1, ])),
    postvar_first = I(as.numeric(pv[, , 1])),
    postvar_sd = I(sqrt(c(pv[1, 1, ], pv[2, 2, ]))))
)

## ---- issue 8: negative binomial (glmmTMB nbinom2 is the reference) ---------------------
tnb <- glmmTMB(y ~ x + (1 | g), nbd, family = nbinom2)
lnb <- glmer.nb(y ~ x + (1 | g), nbd)
cases$negbin <- list(
  glmmTMB = list(neg2ll = -2 * as.numeric(logLik(tnb)), fixef = as.list(fixef(tnb)$cond),
                 se = I(as.numeric(sqrt(diag(vcov(tnb)$cond)))),
                 sd = I(attr(VarCorr(tnb)$cond$g, "stddev")), theta = sigma(tnb),
                 log_theta_se = sqrt(vcov(tnb, full = TRUE)["d~(Intercept)",
                                                            "d~(Intercept)"])),
  lme4 = list(neg2ll = -2 * as.numeric(logLik(lnb)), fixef = as.list(fixef(lnb)),
              theta = getME(lnb, "glmer.nb.theta")))

## ---- issue 3: anova (the paper's cm1..cm6), drop1, profile confint ------------------
Contraception$ch <- factor(Contraception$livch != 0, labels = c("N", "Y"))
cms <- list(
  cm1 = use ~ age + I(age^2) + urban + livch + (1 | district),
  cm2 = use ~ age + I(age^2) + urban + ch + (1 | district),
  cm3 = use ~ age * ch + I(age^2) + urban + (1 | district),
  cm4 = use ~ age * ch + I(age^2) + urban + (urban | district),
  cm5 = use ~ age * ch + I(age^2) + urban + (1 | urban:district) + (1 | district),
  cm6 = use ~ age * ch + I(age^2) + urban + (1 | urban:district))
cmfits <- lapply(cms, function(f) glmer(f, Contraception, binomial))
av <- do.call(anova, unname(cmfits))
av_models <- sapply(seq_along(cms), function(i) names(cms)[i])
d1 <- drop1(cmfits$cm3, test = "Chisq")
t0 <- proc.time()[["elapsed"]]
ci <- confint(gm1, method = "profile")
profile_seconds <- proc.time()[["elapsed"]] - t0
cases$inference <- list(
  anova = list(order = I(rownames(av)), npar = I(av$npar), AIC = I(av$AIC), BIC = I(av$BIC),
               logLik = I(av$logLik), neg2ll = I(av$deviance), Chisq = I(av$Chisq),
               Df = I(av$Df), p = I(av[["Pr(>Chisq)"]])),
  anova_formulas = lapply(cms, function(f) paste(deparse(f), collapse = "")),
  drop1 = list(terms = I(rownames(d1)), npar = I(d1$npar), AIC = I(d1$AIC),
               LRT = I(d1$LRT), p = I(d1[["Pr(Chi)"]])),
  confint_profile = list(names = I(rownames(ci)), lower = I(ci[, 1]), upper = I(ci[, 2]),
                         seconds = profile_seconds),
  confint_wald = list(lower = I(confint(gm1, method = "Wald")[-1, 1]),
                      upper = I(confint(gm1, method = "Wald")[-1, 2]))
)

## ---- issue 11: degenerate data (lme4's own test cases and inputs shaped like real data)
## Each entry: the data (written to tests/results/data), the call, lme4's and glmmTMB's
## fits where they fit, and what lme4 said. The Python tests compare -2logLik with the
## better of the two and check the warnings (tests/test_degenerate_reference.py).
degenerate_entry <- function(formula, data, family, data_name, weights = NULL,
                             tmb_family = family, tmb_args = list()) {
  message("fitting degenerate ", data_name)
  f <- as.formula(formula)
  args <- list(formula = f, data = data, family = family)
  if (!is.null(weights)) args$weights <- data[[weights]]
  msgs <- character(0)
  fit <- tryCatch(
    withCallingHandlers(do.call(glmer, args),
                        warning = function(w) { msgs <<- c(msgs, conditionMessage(w))
                                                invokeRestart("muffleWarning") },
                        message = function(m) { msgs <<- c(msgs, conditionMessage(m))
                                                invokeRestart("muffleMessage") }),
    error = function(e) e)
  entry <- list(formula = formula, data = data_name, family = family$family,
                link = family$link, weights = weights,
                # R's level order (and orderedness) of the factors, for the Python side
                factor_levels = lapply(Filter(is.factor, data), function(f) I(levels(f))),
                ordered = I(names(Filter(is.ordered, data))))
  if (inherits(fit, "error")) {  # lme4 could not fit it: say so
    entry$lme4 <- list(error = conditionMessage(fit), messages = I(msgs))
  } else {
    entry$lme4 <- list(neg2ll = -2 * as.numeric(logLik(fit)), fixef = as.list(fixef(fit)),
                       se = I(as.numeric(sqrt(diag(as.matrix(vcov(fit)))))),
                       theta = I(as.numeric(getME(fit, "theta"))),
                       singular = isSingular(fit), messages = I(msgs))
  }
  targs <- c(list(formula = f, data = data, family = tmb_family), tmb_args)
  if (!is.null(weights)) targs$weights <- data[[weights]]
  tfit <- tryCatch(suppressWarnings(do.call(glmmTMB, targs)), error = function(e) NULL)
  if (!is.null(tfit) && is.finite(logLik(tfit))) {
    entry$glmmTMB <- list(neg2ll = -2 * as.numeric(logLik(tfit)),
                          fixef = as.list(fixef(tfit)$cond),
                          se = I(as.numeric(sqrt(diag(vcov(tfit)$cond)))))
  }
  write.csv(data, file.path(data_dir, paste0(data_name, ".csv")), row.names = FALSE)
  entry
}

degenerate <- list()
# lme4 tests/testcolonizer.R: a saturated Poisson design with three all-zero cells
colonizer <- data.frame(
  Plot = rep(1:6, each = 4),
  homespecies = rep(c("T", "X"), each = 4, times = 3),
  Treatment = rep(rep(c("Control", "Removal"), each = 2), 6),
  respspecies = rep(c("C", "H"), 12),
  colonizers = c(6, 0, 8, 0, 4, 0, 4, 2, 6, 0, 6, 0, 5, 0, 2, 5, 4, 0, 7, 0, 1, 0, 4, 10))
colonizer$Plot <- factor(colonizer$Plot)
degenerate$colonizer <- degenerate_entry(
  "colonizers ~ Treatment * homespecies * respspecies + (1 | Plot)", colonizer, poisson(),
  "colonizer")

# lme4 tests/glmmExt.R: Gamma, Gaussian with log and inverse links, cloglog
source(system.file("testdata/lme-tst-funs.R", package = "lme4", mustWork = TRUE))
set.seed(101)
gd <- gSim()
ext <- list(
  gm3B = list(gd, Gamma()),
  ggl2 = list(gSim(dInitial = gd, family = Gamma(link = log)), Gamma(link = "log")),
  gG2 = list(gSim(dInitial = gd, family = gaussian(link = log), sd = 2),
             gaussian(link = "log")),
  gGi2 = list(gSim(dInitial = gd, family = gaussian(link = inverse), sd = 0.01),
              gaussian(link = "inverse")))
dBc <- gd
dBc$eta <- gd$eta - 5
ext$gBc2 <- list(gSim(dInitial = dBc, nbinom = 1, family = binomial(link = "cloglog")),
                 binomial(link = "cloglog"))
for (nm in names(ext)) {
  dat <- ext[[nm]][[1]][, c("block", "x", "y")]
  degenerate[[nm]] <- degenerate_entry("y ~ x + (1 | block)", dat, ext[[nm]][[2]],
                                       paste0("glmmExt_", nm))
}

# huge counts: Poisson means ~1e6, binomial with ~1e9 trials
set.seed(2024)
g30 <- rep(sprintf("g%02d", 1:30), each = 10)
hp <- data.frame(g = g30, x = round(rnorm(300), 4))
hp$y <- rpois(300, exp(13.8 + 0.3 * hp$x + rnorm(30, 0, 0.5)[as.integer(factor(hp$g))]))
degenerate$huge_poisson <- degenerate_entry("y ~ x + (1 | g)", hp, poisson(), "huge_poisson")
set.seed(2025)
g40 <- rep(sprintf("g%02d", 1:40), each = 8)
hb <- data.frame(g = g40, x = round(rnorm(320), 4),
                 n = round(runif(320, 5e8, 2e9)))
hb$k <- rbinom(320, hb$n, plogis(-0.5 + 0.2 * hb$x + rnorm(40, 0, 0.4)[
  as.integer(factor(hb$g))]))
degenerate$huge_binomial <- degenerate_entry("cbind(k, n - k) ~ x + (1 | g)", hb, binomial(),
                                             "huge_binomial")

# a random slope on a covariate in the units of 1e6 (lme4 asks to rescale)
set.seed(303)
sl <- data.frame(g = rep(sprintf("g%02d", 1:20), each = 12), x = round(rnorm(240), 4))
bs <- cbind(rnorm(20, 0, 0.5), rnorm(20, 0, 0.25))
gi <- as.integer(factor(sl$g))
sl$y <- rpois(240, exp(1 + 0.3 * sl$x + bs[gi, 1] + bs[gi, 2] * sl$x))
sl$xbig <- sl$x * 1e6
degenerate$slope_unscaled <- degenerate_entry("y ~ x + (1 + x | g)", sl, poisson(),
                                              "slope_scale")
degenerate$slope_1e6 <- degenerate_entry("y ~ xbig + (1 + xbig | g)", sl, poisson(),
                                         "slope_scale")

# every group all-0 or all-1: the variance diverges (lme4 reports convergence)
set.seed(7)
dv <- data.frame(g = rep(sprintf("g%02d", 1:20), each = 10), x = round(rnorm(200), 4))
gy <- c(0, 1, rbinom(18, 1, 0.5))
dv$y <- gy[as.integer(factor(dv$g))]
degenerate$diverging <- degenerate_entry("y ~ x + (1 | g)", dv, binomial(), "diverging")

# counts without overdispersion: the NB shape goes to infinity (glmmTMB nbinom2, lme4
# Poisson as the limit)
set.seed(11)
eq <- data.frame(g = rep(sprintf("g%02d", 1:40), each = 10), x = round(rnorm(400), 4))
eq$y <- rpois(400, exp(0.5 + 0.3 * eq$x + rnorm(40, 0, 0.4)[as.integer(factor(eq$g))]))
degenerate$equidispersed <- degenerate_entry("y ~ x + (1 | g)", eq, poisson(),
                                             "equidispersed", tmb_family = nbinom2())

# a negative binomial with its shape fixed (alpha = 0.5): SEs against glmmTMB with the
# dispersion mapped out
degenerate$nb_fixed_alpha <- degenerate_entry(
  "y ~ x + (1 | g)", nbd, MASS::negative.binomial(theta = 2), "negbin_fixed",
  tmb_family = nbinom2(), tmb_args = list(start = list(betad = log(2)),
                                          map = list(betad = factor(NA))))

# a singular fit: no between-group variation (the first seed where lme4 says so)
for (seed in 1:100) {
  set.seed(seed)
  sg <- data.frame(g = rep(sprintf("g%02d", 1:10), each = 30), x = round(rnorm(300), 4))
  sg$y <- rpois(300, exp(1 + 0.3 * sg$x))
  if (isSingular(glmer(y ~ x + (1 | g), sg, poisson))) break
}
degenerate$singular <- degenerate_entry("y ~ x + (1 | g)", sg, poisson(), "singular")
# lme4's test data (inst/testdata): a Poisson with many factor levels (tests/polytomous.R)
# and ordered factors, coded by R with orthogonal polynomials (tests/testthat/test-glmer.R)
testdata <- function(file) {
  env <- new.env()
  load(system.file("testdata", file, package = "lme4", mustWork = TRUE), envir = env)
  env
}
poly_env <- testdata("polytomous_test.RData")
degenerate$polytomous <- degenerate_entry(poly_env$formula.poisson, poly_env$data.poisson,
                                          poisson(), "polytomous")
mast <- testdata("mastitis.rda")$mastitis
degenerate$mastitis <- degenerate_entry("NCM ~ birth + calvingYear + (1 | sire) + (1 | herd)",
                                        mast, poisson(), "mastitis")
cases$degenerate <- degenerate

## ---- issue 12: formulas as lme4 users write them --------------------------------------
## Each formula is given to our glmer() verbatim; the tests compare -2logLik, the
## population-level linear predictor (predict(re.form = NA): the same model and
## coefficients whatever the column names), the number of fixed effects and the
## random-effect SDs.
formula_entry <- function(formula, data, family, data_name, weights = NULL) {
  message("fitting formula ", formula)
  args <- list(formula = as.formula(formula), data = data, family = family)
  if (!is.null(weights)) args$weights <- data[[weights]]
  fit <- suppressMessages(suppressWarnings(do.call(glmer, args)))
  vc <- as.data.frame(VarCorr(fit))
  list(formula = formula, data = data_name, family = family$family, link = family$link,
       weights = weights, neg2ll = -2 * as.numeric(logLik(fit)),
       n_fixef = length(fixef(fit)), fixef_names = I(names(fixef(fit))),
       linpred = I(as.numeric(predict(fit, re.form = NA))),
       sdcor = I(vc$sdcor[is.na(vc$var2)]))
}

set.seed(1212)
nf <- 240
fd <- data.frame(
  g = rep(sprintf("s%02d", 1:24), each = 10),
  x = round(rnorm(nf), 3),
  z = round(runif(nf, 1, 5), 3),
  year = rep(2001:2004, length.out = nf),
  geno = sample(c("WT", "mutant", "Het"), nf, replace = TRUE),
  treat = sample(c("a", "b", "c"), nf, replace = TRUE),
  flag = sample(c(TRUE, FALSE), nf, replace = TRUE),
  n = sample(5:15, nf, replace = TRUE),
  check.names = FALSE)
fd$site.index <- round(rnorm(nf), 3)
fd$`silly period` <- sample(c("early", "late"), nf, replace = TRUE)
fd$I <- round(rnorm(nf), 3)  # a column named like a formula function
gi <- as.integer(factor(fd$g))
eta <- -0.3 + 0.5 * fd$x + 0.3 * (fd$geno == "mutant") + rnorm(24, 0, 0.6)[gi]
fd$count <- rpois(nf, exp(0.5 + 0.2 * fd$x + 0.1 * (fd$year - 2000) + rnorm(24, 0, 0.4)[gi]))
fd$k <- rbinom(nf, fd$n, plogis(eta))
fd$prop <- fd$k / fd$n
fd$y <- rbinom(nf, 1, plogis(eta))
fd$ord <- factor(fd$treat, levels = c("c", "a", "b"), ordered = TRUE)  # contr.poly
write.csv(fd, file.path(data_dir, "formulas.csv"), row.names = FALSE)

fm <- list(
  prop_weights = list("k/n ~ x + (1 | g)", binomial(), "n"),
  cbind_arith = list("cbind(k, n - k) ~ x + I(x^2) + (1 | g)", binomial(), NULL),
  power_in_I_integer = list("count ~ I((year - 2000)^2) + x + (1 | g)", poisson(), NULL),
  interaction_power = list("y ~ (x + geno + treat)^2 + (1 | g)", binomial(), NULL),
  power_outside_I = list("y ~ x^2 + geno + (1 | g)", binomial(), NULL),
  in_operator = list("y ~ geno + x %in% geno + (1 | g)", binomial(), NULL),
  minus_one = list("y ~ geno - 1 + x + (1 | g)", binomial(), NULL),
  plus_zero = list("y ~ 0 + treat + x + (1 | g)", binomial(), NULL),
  minus_term = list("y ~ x * geno - geno + (1 | g)", binomial(), NULL),
  backtick = list("y ~ `silly period` + x + (1 | g)", binomial(), NULL),
  dotted_name = list("y ~ site.index + x + (1 | g)", binomial(), NULL),
  column_named_I = list("y ~ I + I(x^2) + (1 | g)", binomial(), NULL),
  factor_call = list("count ~ factor(year) + x + (1 | g)", poisson(), NULL),
  as_factor = list("count ~ as.factor(year) + x + (1 | g)", poisson(), NULL),
  relevel = list("y ~ relevel(factor(geno), ref = \"WT\") + x + (1 | g)", binomial(), NULL),
  factor_levels = list("y ~ factor(treat, levels = c(\"c\", \"b\", \"a\")) + (1 | g)",
                       binomial(), NULL),
  scale_default = list("y ~ scale(z) + (1 | g)", binomial(), NULL),
  scale_args = list("y ~ scale(z, center = FALSE) + scale(x, scale = FALSE) + (1 | g)",
                    binomial(), NULL),
  poly_orthogonal = list("y ~ poly(z, 2) + (1 | g)", binomial(), NULL),
  poly_raw = list("y ~ poly(z, 2, raw = TRUE) + (1 | g)", binomial(), NULL),
  math_functions = list("count ~ log(z) + sqrt(z) + exp(x / 5) + log1p(z) + log10(z) + (1 | g)",
                        poisson(), NULL),
  offset_term = list("count ~ x + offset(log(z)) + (1 | g)", poisson(), NULL),
  logical_predictor = list("y ~ flag + x + (1 | g)", binomial(), NULL),
  character_baseline = list("y ~ geno + (1 | g)", binomial(), NULL),
  cut_breaks = list("y ~ cut(z, breaks = c(1, 2, 3.5, 5)) + (1 | g)", binomial(), NULL),
  natural_spline = list("y ~ splines::ns(z, df = 3) + (1 | g)", binomial(), NULL),
  b_spline = list("y ~ splines::bs(z, df = 4) + (1 | g)", binomial(), NULL),
  re_log = list("count ~ x + (log(z) | g)", poisson(), NULL),
  re_poly = list("y ~ x + (poly(x, 2) | g)", binomial(), NULL),
  re_factor_slope = list("y ~ treat + (0 + treat | g)", binomial(), NULL),
  # lme4 1.1-31 cannot evaluate factor() in a grouping term; we can: same model
  re_factor_group = list("y ~ x + (1 | year)", binomial(), NULL,
                         "y ~ x + (1 | factor(year))"),
  re_dummy = list("y ~ treat + (1 | g) + (0 + dummy(treat, \"b\") | g)", binomial(), NULL),
  dot_all = list("count ~ . + (1 | g)", poisson(), NULL),
  # the test makes "ord" an ordered pandas categorical with levels c, a, b
  ordered_factor = list("y ~ ord + x + (1 | g)", binomial(), NULL)
)
formula_cases <- list()
dot_data <- fd[, c("count", "x", "z", "g")]
for (nm in names(fm)) {
  spec <- fm[[nm]]
  dat <- if (nm == "dot_all") dot_data else fd
  formula_cases[[nm]] <- formula_entry(spec[[1]], dat, spec[[2]],
                                       if (nm == "dot_all") "formulas_dot" else "formulas",
                                       weights = spec[[3]])
  if (length(spec) > 3) formula_cases[[nm]]$python <- spec[[4]]
}
write.csv(dot_data, file.path(data_dir, "formulas_dot.csv"), row.names = FALSE)
# update(): . ~ . - x and . ~ . + (1 | h) on the fitted model
base_fit <- glmer(y ~ x + geno + (1 | g), fd, binomial)
formula_cases$update_minus <- list(
  base = "y ~ x + geno + (1 | g)", update = ". ~ . - x", data = "formulas",
  family = "binomial", link = "logit",
  neg2ll = -2 * as.numeric(logLik(update(base_fit, . ~ . - x))))
formula_cases$update_plus_bar <- list(
  base = "y ~ x + geno + (1 | g)", update = ". ~ . + (1 | treat)", data = "formulas",
  family = "binomial", link = "logit",
  neg2ll = -2 * as.numeric(logLik(update(base_fit, . ~ . + (1 | treat)))))
cases$formulas <- formula_cases

## ---- issue 13: Tweedie (glmmTMB tweedie() is the reference) ---------------------------
## glmmTMB's tweedie(link = "log") (glmmTMB.cpp, family 700): TMB's dtweedie(y, mu, phi, p)
## with Var(Y) = phi * mu^p, phi = exp(betad) = sigma(fit) and p = 1 + plogis(psi)
## (family_params(fit), "Tweedie power"; vcov(full = TRUE) labels psi "Tweedie power" but it
## is on the logit scale). Prior weights multiply each observation's log density
## (tmp_loglik *= weights(i)) rather than dividing phi as statsmodels' var_weights: no
## weights here. For every fit we store the optimum and -2 logLik at fixed parameters
## (fit$obj$fn: the Laplace approximation with the random effects integrated out), and
## glmmTMB's log density on a grid of (y, mu, phi, p).
rtweedie_cpg <- function(mu, phi, p) {  # N ~ Poisson(lambda), Y | N ~ Gamma(N alpha, gam)
  lambda <- mu^(2 - p) / (phi * (2 - p))
  alpha <- (2 - p) / (p - 1)
  gam <- phi * (p - 1) * mu^(p - 1)
  n <- rpois(length(mu), lambda)
  y <- numeric(length(mu))
  pos <- n > 0
  y[pos] <- rgamma(sum(pos), shape = n[pos] * alpha, scale = gam[pos])
  signif(y, 12)  # exactly what the CSV holds
}
set.seed(1301)
twa <- data.frame(g = factor(rep(sprintf("g%02d", 1:30), each = 20)),
                  x = round(rnorm(600), 4))
ua <- rnorm(30, 0, 0.6)
twa$y <- rtweedie_cpg(exp(0.1 + 0.5 * twa$x + ua[as.integer(twa$g)]), phi = 2, p = 1.5)
write.csv(twa, file.path(data_dir, "tweedie_a.csv"), row.names = FALSE)

set.seed(1302)
twb <- data.frame(g = factor(rep(sprintf("s%02d", 1:40), each = 20)),
                  x = round(runif(800, -1, 1), 4), t = round(runif(800, 0.5, 4), 3))
ub <- MASS::mvrnorm(40, c(0, 0), matrix(c(0.25, 0.06, 0.06, 0.09), 2))
gib <- as.integer(twb$g)
twb$y <- rtweedie_cpg(twb$t * exp(-0.2 + 0.6 * twb$x + ub[gib, 1] + ub[gib, 2] * twb$x),
                      phi = 1.2, p = 1.3)
write.csv(twb, file.path(data_dir, "tweedie_b.csv"), row.names = FALSE)

# glmmTMB's parameter vector from natural values (one random-effects term of 1 or 2 dims):
# beta, betad = log(phi), theta = (log sd, rho / sqrt(1 - rho^2)), psi = qlogis(p - 1)
tweedie_tmb_par <- function(fit, fixef, sd, cor, phi, p) {
  theta <- log(sd)
  if (length(sd) == 2) theta <- c(theta, cor / sqrt(1 - cor^2))
  par <- c(fixef, log(phi), theta, qlogis(p - 1))
  names(par) <- names(fit$obj$par)
  stopifnot(identical(unname(names(par)), c(rep("beta", length(fixef)), "betad",
                                             rep("theta", length(theta)), "psi")))
  par
}
# lme4's theta (relative Cholesky factor, column-wise lower triangle; no residual scale)
lme4_theta <- function(sd, cor) {
  if (length(sd) == 1) return(sd)
  S <- diag(sd) %*% matrix(c(1, cor, cor, 1), 2) %*% diag(sd)
  L <- t(chol(S))
  L[lower.tri(L, diag = TRUE)]
}
tweedie_point <- function(fit, fixef, sd, cor, phi, p) {
  par <- tweedie_tmb_par(fit, fixef, sd, cor, phi, p)
  v1 <- fit$obj$fn(par)
  v2 <- fit$obj$fn(par)  # inner optimisation restarted at its own mode: must agree
  stopifnot(abs(v1 - v2) < 1e-8)
  list(fixef = I(unname(fixef)), sd = I(sd), cor = cor, phi = phi, p = p,
       theta_lme4 = I(lme4_theta(sd, cor)), tmb_par = I(unname(par)),
       neg2ll = 2 * v2)
}
tweedie_entry <- function(formula, data, data_name, moved) {
  message("fitting tweedie ", formula)
  fit <- glmmTMB(as.formula(formula), data, family = tweedie(link = "log"))
  stopifnot(fit$fit$convergence == 0, fit$sdr$pdHess)
  vc <- VarCorr(fit)$cond[[1]]
  sd <- unname(attr(vc, "stddev"))
  cor <- if (length(sd) == 2) attr(vc, "correlation")[2, 1] else NULL
  phi <- sigma(fit)
  p <- unname(family_params(fit))
  stopifnot(isTRUE(all.equal(p, 1 + plogis(fit$fit$par[["psi"]]), tolerance = 1e-14)),
            isTRUE(all.equal(phi, exp(fit$fit$par[["betad"]]), tolerance = 1e-14)))
  fe <- fixef(fit)$cond
  V <- vcov(fit, full = TRUE)
  psi_se <- sqrt(V[nrow(V), ncol(V)])  # the last row: psi (labelled "Tweedie power")
  opt <- tweedie_point(fit, fe, sd, cor, phi, p)
  stopifnot(abs(opt$neg2ll + 2 * as.numeric(logLik(fit))) < 1e-8)
  # one Newton step from glmmTMB's optimum: how far its -2 logLik is above the minimum
  grad <- fit$obj$gr(fit$fit$par)
  newton <- fit$fit$par - solve(optimHess(fit$fit$par, fit$obj$fn, fit$obj$gr), drop(grad))
  neg2ll_newton <- 2 * fit$obj$fn(newton)
  at_p14 <- tweedie_point(fit, fe, sd, cor, 1.2 * phi, 1.4)
  mv <- tweedie_point(fit, fe + moved$dfixef, sd * moved$sd_factor,
                      if (is.null(cor)) NULL else moved$cor, phi * moved$phi_factor, moved$p)
  list(formula = formula, formula_r = formula, data = data_name, family = "tweedie",
       link = "log", nobs = nobs(fit), zero_share = mean(data$y == 0),
       glmmTMB = list(
         neg2ll = -2 * as.numeric(logLik(fit)), aic = AIC(fit),
         fixef = as.list(fe), se = I(as.numeric(sqrt(diag(vcov(fit)$cond)))),
         sd = I(sd), cor = cor, theta_lme4 = I(lme4_theta(sd, cor)),
         phi = phi, log_phi_se = sqrt(V["d~(Intercept)", "d~(Intercept)"]),
         p = p, psi = fit$fit$par[["psi"]], psi_se = psi_se,
         p_se = psi_se * (p - 1) * (2 - p),
         tmb_par_names = I(names(fit$obj$par)), tmb_par = I(unname(fit$fit$par)),
         max_abs_gradient = max(abs(grad)),
         neg2ll_refined = min(neg2ll_newton, -2 * as.numeric(logLik(fit)))),
       at_fixed = list(p1.4_phi1.2 = at_p14, moved = mv))
}
tw_cases <- list()
tw_cases$a <- tweedie_entry("y ~ x + (1 | g)", twa, "tweedie_a",
                           list(dfixef = c(0.1, -0.05), sd_factor = 1.5, phi_factor = 0.8,
                                p = 1.6))
tw_cases$b <- tweedie_entry("y ~ x + (1 + x | g) + offset(log(t))", twb, "tweedie_b",
                           list(dfixef = c(0.1, -0.05), sd_factor = 1.5, cor = 0.3,
                                phi_factor = 0.8, p = 1.2))

# glmmTMB's log density (TMB's dtweedie) at y x mu x phi x p, through one-row models y ~ 1
# at fixed (beta = log mu, betad = log phi, psi = qlogis(p - 1))
tw_grid <- expand.grid(mu = c(1e-3, 0.1, 1, 10, 1e3), phi = c(0.01, 0.5, 1, 10, 100),
                       p = c(1.01, 1.1, 1.5, 1.9, 1.99),
                       y = c(0, 1e-6, 0.01, 0.5, 1, 5, 50, 1e3))
tw_grid$logf <- NA_real_
for (yv in unique(tw_grid$y)) {
  st <- glmmTMB(y ~ 1, data.frame(y = yv), family = tweedie(link = "log"), doFit = FALSE)
  obj <- with(st, TMB::MakeADFun(data.tmb, parameters, map = mapArg, random = randomArg,
                                 DLL = "glmmTMB", silent = TRUE))
  stopifnot(identical(names(obj$par), c("beta", "betad", "psi")))
  idx <- which(tw_grid$y == yv)
  tw_grid$logf[idx] <- vapply(idx, function(i)
    -obj$fn(c(log(tw_grid$mu[i]), log(tw_grid$phi[i]), qlogis(tw_grid$p[i] - 1))), 0)
}
tw_cases$density_grid <- list(
  order = "expand.grid(mu, phi, p, y): mu varies fastest, y slowest",
  y = I(tw_grid$y), mu = I(tw_grid$mu), phi = I(tw_grid$phi), p = I(tw_grid$p),
  logf = I(tw_grid$logf))
cases$tweedie <- tw_cases

## ---- issue 16: clubSandwich ----------------------------------------------------------
## Cluster-robust covariances of the fixed effects of linear mixed models: clubSandwich's
## vcovCR (CR0, CR1 = J/(J-1) CR0, CR1S = J(N-1)/((J-1)(N-p)) CR0, CR2 = Bell-McCaffrey
## with the model's marginal covariance as target), clustered on the outermost grouping
## factor, at lmer's ML and REML fits. vcovCR.lmerMod refuses prior weights, so the
## weighted LMM goes through nlme::lme with varFixed(~ 1/w) (lmer's precision weights; the
## same likelihood, estimates to ~1e-6). clubSandwich has no method for glmerMod (vcovCR
## falls back to its default, which fails on the S4 object): GLMM scores are checked by
## brute-force differentiation in tests/test_robust.py.
suppressPackageStartupMessages({library(clubSandwich); library(nlme)})
set.seed(1601)
ns16 <- 14
sizes16 <- sample(2:5, ns16, replace = TRUE)
school16 <- rep(sprintf("s%02d", 1:ns16), sizes16)
class16 <- paste0(school16, "c", sequence(sizes16))
nper16 <- sample(3:8, length(class16), replace = TRUE)
nest16 <- data.frame(school = factor(rep(school16, nper16)), class = factor(rep(class16, nper16)))
nest16$x <- round(rnorm(nrow(nest16)), 4)
nest16$z <- round(runif(nrow(nest16)), 4)
us16 <- rnorm(ns16, 0, 0.7); uc16 <- rnorm(length(class16), 0, 0.5)
nest16$w <- round(runif(nrow(nest16), 0.5, 2.5), 3)
nest16$y <- round(1 + 0.5 * nest16$x - 0.3 * nest16$z + us16[as.integer(nest16$school)] +
                    uc16[as.integer(nest16$class)] + rnorm(nrow(nest16), 0, 1 / sqrt(nest16$w)), 4)
write.csv(nest16, file.path(data_dir, "nested_weights.csv"), row.names = FALSE)

cr_types16 <- c("CR0", "CR1", "CR1S", "CR2")
tight16 <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10, maxfun = 1e5))
cr_entry16 <- function(fit, formula, data_name, reml, weights = NULL) {
  out <- list(formula = formula, data = data_name, reml = reml, weights = weights,
              cluster = "outermost grouping factor", fixef = I(unname(fixef(fit))),
              vcov = unname(as.matrix(vcov(fit))))
  for (type in cr_types16) out[[type]] <- unname(as.matrix(vcovCR(fit, type = type)))
  out
}
data(sleepstudy)
cs16 <- list()
for (reml in c(FALSE, TRUE)) {
  fit <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = reml, control = tight16)
  cs16[[if (reml) "sleepstudy_slope_reml" else "sleepstudy_slope_ml"]] <- cr_entry16(
    fit, "Reaction ~ Days + (Days | Subject)", "sleepstudy", reml)
}
# balanced sleepstudy has GLS = OLS and CR2 = CR1; drop days 7-9 of every third subject
keep16 <- !(sleepstudy$Days > 6 & as.integer(sleepstudy$Subject) %% 3 == 0)
fit <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy[keep16, ], REML = FALSE,
            control = tight16)
cs16$sleepstudy_unbalanced_ml <- cr_entry16(fit, "Reaction ~ Days + (Days | Subject)",
                                            "sleepstudy", FALSE)
cs16$sleepstudy_unbalanced_ml$rows <- I(which(keep16))
fit <- lmer(y ~ x + z + (1 | school/class), nest16, REML = FALSE, control = tight16)
cs16$nested_ml <- cr_entry16(fit, "y ~ x + z + (1 | school/class)", "nested_weights", FALSE)
nest16$iw <- 1 / nest16$w
fit <- lme(y ~ x + z, random = ~ 1 | school/class, data = nest16, method = "ML",
           weights = varFixed(~ iw),
           control = lmeControl(tolerance = 1e-10, msTol = 1e-10, niterEM = 100))
cs16$nested_weighted_ml <- cr_entry16(fit, "y ~ x + z + (1 | school/class)", "nested_weights",
                                      FALSE, weights = "w")
cs16$nested_weighted_ml$lmer_fixef <- I(unname(fixef(lmer(y ~ x + z + (1 | school/class),
                                                          nest16, REML = FALSE, weights = w,
                                                          control = tight16))))
cases$clubsandwich <- cs16

## ---- issue 16: emmeans ------------------------------------------------------------------
## Estimated marginal means and contrasts (emmeans on lme4 fits: asymptotic z inference,
## random effects at 0). Besides emmeans' tables we store lme4's fixef and vcov (in lme4's
## column order, vcov by columns) so that the tests can run our emmeans at lme4's estimates
## (exact agreement) as well as at our own fit (agreement within the fit's tolerance).
## The section is self-contained (it loads its data): to regenerate only it, evaluate the
## lines from this header to the next "## ----" after library(lme4, mlmRev, jsonlite) and
## cases <- list(), write cases$emmeans with the toJSON options at the end of this script,
## and splice that entry alone into reference.json (a full rerun changes other entries).
suppressPackageStartupMessages(library(emmeans))
emm_table <- function(x, level = 0.95) {
  s <- as.data.frame(summary(x, infer = c(TRUE, FALSE), level = level))
  est <- intersect(c("emmean", "prob", "rate", "response"), names(s))
  grid <- setdiff(names(s), c(est, "SE", "df", "asymp.LCL", "asymp.UCL"))
  out <- list(estimate_name = est, estimate = I(s[[est]]), SE = I(s$SE),
              lower = I(s$asymp.LCL), upper = I(s$asymp.UCL))
  for (g in grid) out$grid[[g]] <- I(as.character(s[[g]]))
  out
}
contrast_table <- function(x, level = 0.95) {
  s <- as.data.frame(summary(x, infer = c(FALSE, TRUE)))
  ci <- as.data.frame(confint(x, level = level))
  est <- intersect(c("estimate", "odds.ratio", "ratio"), names(s))
  lower <- intersect(c("asymp.LCL", "lower.CL"), names(ci))
  upper <- intersect(c("asymp.UCL", "upper.CL"), names(ci))
  out <- list(estimate_name = est, contrast = I(as.character(s$contrast)),
              estimate = I(s[[est]]), SE = I(s$SE), z = I(s$z.ratio), p = I(s$p.value),
              lower = I(ci[[lower]]), upper = I(ci[[upper]]),
              adjust = x@misc$adjust)
  by <- x@misc$by.vars
  for (g in by) out$by[[g]] <- I(as.character(s[[g]]))
  out
}
fit_info <- function(fit) {
  list(fixef = as.list(fixef(fit)), vcov = I(as.numeric(as.matrix(vcov(fit)))))
}
data(cbpp, package = "lme4")
em_cbpp <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial)
e_link <- emmeans(em_cbpp, "period")
e_resp <- emmeans(em_cbpp, "period", type = "response")
data(Contraception, package = "mlmRev")
em_cm1 <- glmer(use ~ age + I(age^2) + urban + livch + (1 | district), Contraception,
                binomial)
u_link <- emmeans(em_cm1, "urban")
l_by <- emmeans(em_cm1, "livch", by = "urban")
data(grouseticks, package = "lme4")
em_gt <- glmer(TICKS ~ YEAR + cHEIGHT + (1 | LOCATION), grouseticks, poisson)
y_resp <- emmeans(em_gt, "YEAR", type = "response")
# an offset: emmeans puts the mean of the fitted offsets on the grid (or offset = 0)
em_po_data <- read.csv(file.path("tests", "results", "data", "poisson_offset.csv"))
em_po_data$f <- factor(rep(c("a", "b", "c"), length.out = nrow(em_po_data)))
em_po <- glmer(y ~ x + f + offset(log(t)) + (1 | g), em_po_data, poisson)
cases$emmeans <- list(
  emmeans_version = as.character(packageVersion("emmeans")),
  cbpp = list(
    formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
    fit = fit_info(em_cbpp),
    link = emm_table(e_link), response = emm_table(e_resp),
    level90 = emm_table(e_link, level = 0.90),
    pairs_tukey = contrast_table(pairs(e_link)),
    revpairs_tukey = contrast_table(contrast(e_link, "revpairwise")),
    pairs_bonferroni = contrast_table(pairs(e_link, adjust = "bonferroni")),
    pairs_holm = contrast_table(pairs(e_link, adjust = "holm")),
    pairs_none = contrast_table(pairs(e_link, adjust = "none")),
    pairs_odds_ratio = contrast_table(pairs(e_resp)),
    trt_vs_ctrl = contrast_table(contrast(e_link, "trt.vs.ctrl")),
    trt_vs_ctrl_sidak = contrast_table(contrast(e_link, "trt.vs.ctrl", adjust = "sidak")),
    custom = contrast_table(contrast(e_link, list(first_vs_rest = c(1, -1/3, -1/3, -1/3),
                                                  late = c(0, 0, 1, -1))))),
  contraception = list(
    formula = "use ~ age + I(age^2) + urban + livch + (1 | district)",
    fit = fit_info(em_cm1),
    urban_link = emm_table(u_link),
    urban_response = emm_table(emmeans(em_cm1, "urban", type = "response")),
    urban_proportional = emm_table(emmeans(em_cm1, "urban", weights = "proportional")),
    urban_outer = emm_table(emmeans(em_cm1, "urban", weights = "outer")),
    urban_cells = emm_table(emmeans(em_cm1, "urban", weights = "cells")),
    urban_at_age = emm_table(emmeans(em_cm1, "urban", at = list(age = c(-5, 10)))),
    livch_urban = emm_table(emmeans(em_cm1, c("livch", "urban"))),
    livch_by_urban = emm_table(l_by),
    livch_by_urban_pairs = contrast_table(pairs(l_by)),
    urban_odds_ratio = contrast_table(pairs(emmeans(em_cm1, "urban", type = "response")))),
  grouseticks = list(
    formula = "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)",
    fit = fit_info(em_gt),
    response = emm_table(y_resp),
    rate_ratio = contrast_table(pairs(y_resp))),
  offset = list(
    formula = "y ~ x + f + offset(log(t)) + (1 | g)", data = "poisson_offset",
    prepare = "f = rep(c('a', 'b', 'c'), length.out = nrow(data))",
    fit = fit_info(em_po),
    link = emm_table(emmeans(em_po, "f")),
    offset0 = emm_table(emmeans(em_po, "f", offset = 0)))
)

## ---- issue 16: influence ------------------------------------------------------------------
## lme4's influence.merMod (lme4 1.1-31): each unit (an observation, or a level of groups=)
## deleted in turn, refitted by update(subset = ...) from the fit's theta (and fixef for
## glmer). Stored: the fixed effects of the deleted fits, dfbeta (deleted - full), dfbetas
## (dfbeta / the deleted fit's SE), cooks.distance of the influence object
## ((n - p) / (n p) * dfbeta' V^-1 dfbeta, V = vcov of the full fit), converged; and
## -2 logLik of the same refits (lme4 does not return it) to compare the optima.
data(cbpp)
data(sleepstudy)
set.seed(1601)
infd <- data.frame(g = factor(rep(sprintf("g%d", 1:8), each = 5)), x = round(rnorm(40), 3))
infd$y <- rpois(40, exp(0.4 + 0.5 * infd$x + rnorm(8, 0, 0.5)[as.integer(infd$g)]))
write.csv(infd, file.path(data_dir, "influence_poisson.csv"), row.names = FALSE)
columns <- function(m) lapply(as.data.frame(m, check.names = FALSE), function(v) I(unname(v)))
influence_entry <- function(fit, data, formula_py, data_name, groups = NULL, family = NULL) {
  message("influence ", data_name, " ", if (is.null(groups)) "case" else groups)
  infl <- if (is.null(groups)) influence(fit) else influence(fit, groups = groups)
  del <- infl[["deleted"]]
  unit <- if (is.null(groups)) seq_len(nrow(data)) else data[[groups]]
  par <- list(theta = getME(fit, "theta"))
  if (inherits(fit, "glmerMod")) par$fixef <- fixef(fit)
  neg2ll <- vapply(seq_along(del), function(i) {
    keep <- if (is.null(groups)) unit != as.integer(del[i]) else unit != del[i]
    refit <- suppressWarnings(update(fit, data = data[keep, ], start = par))
    -2 * as.numeric(logLik(refit))
  }, 0)
  list(formula = formula_py, data = data_name, family = family,
       groups = if (is.null(groups)) "case" else groups, deleted = I(as.character(del)),
       fixef = as.list(fixef(fit)), vcov = columns(as.matrix(vcov(fit))),
       fixef_deleted = columns(infl[[2]]), dfbeta = columns(dfbeta(infl)),
       dfbetas = columns(dfbetas(infl)), cooks = I(unname(cooks.distance(infl))),
       converged = I(unname(infl$converged)), neg2ll = -2 * as.numeric(logLik(fit)),
       neg2ll_deleted = I(neg2ll))
}
infl_cbpp <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial)
infl_ss <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
infl_pois <- glmer(y ~ x + (1 | g), infd, poisson)
cases$influence <- list(
  cbpp_herd = influence_entry(infl_cbpp, cbpp,
                              "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                              "cbpp", "herd", "binomial"),
  sleepstudy_subject = influence_entry(infl_ss, sleepstudy, "Reaction ~ Days + (Days | Subject)",
                                       "sleepstudy", "Subject", "gaussian_reml"),
  poisson_case = influence_entry(infl_pois, infd, "y ~ x + (1 | g)", "influence_poisson",
                                 NULL, "poisson"))

## ---- issue 16: DHARMa scaled residuals ------------------------------------------------------
## DHARMa's simulateResiduals (PIT residuals; its default since 0.5.0 simulates conditional
## on the fitted random effects, re.form = NULL for lme4) and its tests, run on lme4 fits.
## DHARMa is not packaged for Debian: when it is not installed, set DHARMA_SRC to the R/
## directory of its sources (git tag v0.5.0) and its functions are sourced from there.
## Stored per case: the observed response and the n x nsim simulations as DHARMa sees them
## (binomial: counts of successes), the population-level fitted values it tests dispersion
## against, its (randomized) scaled residuals, and testUniformity, testDispersion (DHARMa and
## PearsonChisq) and testZeroInflation on them, so that the Python tests replay them on
## the same simulations.
if (requireNamespace("DHARMa", quietly = TRUE)) {
  dh <- asNamespace("DHARMa")
  dharma_version <- as.character(packageVersion("DHARMa"))
} else {
  dh <- new.env()
  for (f in c("DHARMa.R", "compatibility.R", "helper.R", "random.R", "simulateResiduals.R",
              "tests.R")) sys.source(file.path(Sys.getenv("DHARMA_SRC"), f), envir = dh)
  dharma_version <- paste(read.dcf(file.path(Sys.getenv("DHARMA_SRC"), "..", "DESCRIPTION"),
                                   fields = "Version"), "(sources)")
}
htest <- function(t) list(statistic = unname(t$statistic), p_value = t$p.value)
dharma_entry <- function(fit, formula_py, data_name, family, nsim = 50) {
  message("DHARMa ", data_name)
  so <- dh$simulateResiduals(fit, n = nsim, seed = 1602)
  list(formula = formula_py, data = data_name, family = family, dharma = dharma_version,
       simulate_res = so$simulateREs, integer_response = so$integerResponse, nsim = nsim,
       observed = I(unname(so$observedResponse)),
       fitted = I(unname(so$fittedPredictedResponse)),
       simulated = I(unname(so$simulatedResponse)),  # row-major: one row per observation
       scaled_residuals = I(unname(so$scaledResiduals)),
       uniformity = htest(dh$testUniformity(so, plot = FALSE)),
       uniformity_less = htest(dh$testUniformity(so, alternative = "less", plot = FALSE)),
       dispersion = htest(dh$testDispersion(so, plot = FALSE)),
       dispersion_greater = htest(dh$testDispersion(so, alternative = "greater", plot = FALSE)),
       pearson_chisq = htest(suppressMessages(dh$testDispersion(
         so, alternative = "greater", type = "PearsonChisq", plot = FALSE))),
       df_resid = df.residual(fit),
       zero_inflation = htest(dh$testZeroInflation(so, plot = FALSE)))
}
cases$dharma <- list(
  cbpp = dharma_entry(infl_cbpp, "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                      "cbpp", "binomial"),
  poisson = dharma_entry(infl_pois, "y ~ x + (1 | g)", "influence_poisson", "poisson"))

## ---- issue 16: after the fit (allFit; conditional standard errors of predictions) --
## lme4 1.1-31 has allFit() but not predict(..., se.fit = TRUE) (lme4 >= 1.1-35). Its
## se.fit is evaluated here on 1.1-31's fits with lme4's own code: vcov_full() from
## R/lmer.R and quad.tdiag() from R/utilities.R of lme4 2.x (copied verbatim below, names
## suffixed), i.e. Cov(b, beta) = crossprod(Minv), Minv = s * [L^-1 Lambda', 0;
## -RX'^-1 RZX' L^-1 Lambda', RX'^-1], and se.fit = sqrt(diag(ZX Cmat ZX')) with
## ZX = cbind(Z, X) (new levels: zero rows of Z, as lme4's pad_Cmat). The Python tests
## evaluate the same quantity at lme4's theta and beta. The section runs on its own:
##   sed -n '/^## ---- issue 16/,/^meta <- list(/p' tests/results/make_reference.R | head -n -1 > s.R
##   Rscript -e 'cases <- list(); source("s.R"); cat(jsonlite::toJSON(cases$toolbox,
##     auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null", null = "null"))'
## and its output is the "toolbox" entry of reference.json.
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
vcov_full_lme4 <- function(object, s = sigma(object)) {
    L <- getME(object, "L")
    RX <- getME(object, "RX")
    RZX <- getME(object, "RZX")
    Lambdat <- getME(object, "Lambdat")
    RXtinv <- solve(t(RX))
    LinvLambdat <- solve(L, Lambdat, system = "L")
    Minv <- s * rbind(
                    cbind(LinvLambdat,
                          Matrix(0, nrow = nrow(L), ncol = ncol(RX))),
                    cbind(-RXtinv %*% t(RZX) %*% LinvLambdat, RXtinv)
                )
    crossprod(Minv)
}
quad.tdiag_lme4 <- function(M, x) rowSums(tcrossprod(as.matrix(x), as.matrix(M)) * as.matrix(x))
se_fit_lme4 <- function(fit, Z, X) sqrt(quad.tdiag_lme4(vcov_full_lme4(fit), cbind(Z, X)))
toolbox_se <- function(fit, rows, newZ = NULL, newX = NULL) {
  Z <- getME(fit, "Z")[rows, , drop = FALSE]; X <- getME(fit, "X")[rows, , drop = FALSE]
  out <- list(theta = I(unname(getME(fit, "theta"))), beta = I(unname(fixef(fit))),
              beta_names = I(names(fixef(fit))),
              rows = I(rows),
              se_conditional = I(se_fit_lme4(fit, Z, X)),
              se_population = I(se_fit_lme4(fit, 0 * Z, X)),
              se_random_only = I(se_fit_lme4(fit, Z, 0 * X)),
              fit_link = I(unname(predict(fit)[rows])))
  if (!is.null(newZ)) out$se_newdata <- I(se_fit_lme4(fit, newZ, newX))
  out
}
tb_gm1 <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial)
tb_new <- data.frame(period = factor(c("1", "2", "4", "3"), levels = levels(cbpp$period)),
                     herd = c("1", "7", "99", "3"))
tb_newX <- model.matrix(~ period, tb_new)
tb_newZ <- matrix(0, nrow(tb_new), nlevels(cbpp$herd))
for (i in seq_len(nrow(tb_new))) {
  j <- match(tb_new$herd[i], levels(cbpp$herd))
  if (!is.na(j)) tb_newZ[i, j] <- 1  # a new level ("99"): a zero row, as pad_Cmat
}
tb_cm <- glmer(use ~ age * ch + I(age^2) + urban + (urban | district),
               within(mlmRev::Contraception, ch <- factor(livch != 0, labels = c("N", "Y"))),
               binomial)
tb_af <- allFit(tb_gm1, verbose = FALSE)
tb_afs <- summary(tb_af)
cases$toolbox <- list(
  lme4 = as.character(packageVersion("lme4")),
  cbpp = c(toolbox_se(tb_gm1, seq_len(nrow(cbpp)), tb_newZ, tb_newX),
           list(newdata_herd = I(tb_new$herd), newdata_period = I(as.character(tb_new$period)))),
  contraception = toolbox_se(tb_cm, c(1:10, 500:510, 1934)),
  allfit_cbpp = list(optimizers = I(names(tb_afs$llik)),
                     neg2ll = I(unname(-2 * tb_afs$llik)),
                     ok = I(unname(tb_afs$which.OK)),
                     theta = I(unname(tb_afs$theta[, 1])),
                     fixef = lapply(seq_len(nrow(tb_afs$fixef)),
                                    function(i) I(unname(tb_afs$fixef[i, ]))))
)

meta <- list(
  generated_by = "tests/results/make_reference.R",
  r_version = R.version.string,
  lme4 = as.character(packageVersion("lme4")),
  glmmTMB = as.character(packageVersion("glmmTMB")),
  Matrix = as.character(packageVersion("Matrix")),
  mlmRev = as.character(packageVersion("mlmRev"))
)
writeLines(toJSON(list(meta = meta, cases = cases), auto_unbox = TRUE, digits = NA,
                  pretty = TRUE, na = "null", null = "null"),
           file.path(out_dir, "reference.json"))
message("wrote ", file.path(out_dir, "reference.json"))
