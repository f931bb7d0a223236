## More glmer / glmmPQL reference values for mlteach.glmm, on simulated data sets stored in the
## JSON itself (column lists), so that Python fits exactly these rows:
##   pois_offset       Poisson with exposure: y ~ x + offset(log(expo)) + (1 | g)
##   binom_trials      binomial counts with trials and an uncentred continuous covariate
##   bern_factor       0/1 outcome with a four-level factor f (levels a, b, c, d)
##   small_groups_bern / small_groups_pois   groups of 1 to 3 rows
##   boundary_bern / boundary_pois            no group effect: glmer's SD is 0 (singular)
## Each: glmer nAGQ = 1 and 25 (default control and the best of a few optimizers), the exact
## marginal log-likelihood at the fit, glmmPQL for the Poisson cases, and predictions for new
## rows (known and unseen groups) by predict(type = "response", re.form = NA) and
## predict(type = "response", allow.new.levels = TRUE).
## Run from the repository root:   Rscript tests/reference/lme4_glmm_more.R   (~1 minute)
## Writes tests/reference/lme4_glmm_more.json and tests/reference/lme4_glmm_more.Rout.txt
source(file.path("tests", "reference", "common.R"))
suppressPackageStartupMessages({ library(lme4); library(MASS); library(nlme) })

sink(file.path(OUT_DIR, "lme4_glmm_more.Rout.txt"), split = TRUE)
on.exit(sink(), add = TRUE)
banner("lme4_glmm_more.R  --  ", format(Sys.time()))
print(sessionInfo())

controls <- list(
  default = glmerControl(),
  bobyqa_tight = glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5, rhoend = 1e-10)),
  nlopt_bobyqa_tight = glmerControl(optimizer = "nloptwrap",
    optCtrl = list(algorithm = "NLOPT_LN_BOBYQA", xtol_rel = 1e-12, ftol_rel = 1e-14,
                   ftol_abs = 1e-14, maxeval = 1e5)),
  nelder_mead_tight = glmerControl(optimizer = "Nelder_Mead",
    optCtrl = list(maxfun = 1e5, FtolAbs = 1e-12, FtolRel = 1e-15, XtolRel = 1e-10)))

exact_loglik <- function(m, beta = fixef(m), sd = sqrt(as.numeric(VarCorr(m)[[1]]))) {
  X <- getME(m, "X"); eta0 <- as.numeric(X %*% beta) + getME(m, "offset")
  y <- m@resp$y; w <- m@resp$weights; fam <- family(m)$family
  g <- getME(m, "flist")[[1]]
  cond <- switch(fam,
    binomial = function(eta, i) dbinom(round(y[i] * w[i]), round(w[i]), plogis(eta), log = TRUE),
    poisson = function(eta, i) dpois(y[i], exp(eta), log = TRUE))
  ## sd below 1e-6 (the boundary fits): integrate() cannot resolve the spike; the value is
  ## the GLM's to O(sd^2)
  if (sd < 1e-6) return(sum(cond(eta0, seq_along(y))))
  tot <- 0
  for (lv in levels(g)) {
    i <- which(g == lv)
    h <- function(b) {
      E <- outer(eta0[i], b, "+")
      colSums(matrix(cond(E, i), nrow = length(i))) + dnorm(b, 0, sd, log = TRUE)
    }
    o <- optimize(function(b) -h(b), c(-10 * sd - 10, 10 * sd + 10), tol = 1e-10)
    hh <- -o$objective
    I <- integrate(function(b) exp(h(b) - hh), -Inf, Inf, rel.tol = 1e-12, abs.tol = 0,
                   subdivisions = 1000L)$value
    tot <- tot + hh + log(I)
  }
  tot
}
fam_name <- function(m) family(m)$family
## The textbook Laplace approximation at the fit's (beta, sd), at exact conditional modes
## (optimize, tol 1e-12) and the exact curvature there: sum_j h(b_j) + log(2 pi)/2 - log(-h''(b_j))/2.
## glmer's own nAGQ = 1 value differs from it (its log det L comes from the last PIRLS step).
laplace_exact_modes <- function(m, beta = fixef(m), sd = sqrt(as.numeric(VarCorr(m)[[1]]))) {
  X <- getME(m, "X"); eta0 <- as.numeric(X %*% beta) + getME(m, "offset")
  y <- m@resp$y; w <- m@resp$weights; fam <- fam_name(m); g <- getME(m, "flist")[[1]]
  cond <- switch(fam,
    binomial = function(eta, i) dbinom(round(y[i] * w[i]), round(w[i]), plogis(eta), log = TRUE),
    poisson = function(eta, i) dpois(y[i], exp(eta), log = TRUE))
  curv <- switch(fam, binomial = function(eta, i) sum(w[i] * plogis(eta) * (1 - plogis(eta))),
                 poisson = function(eta, i) sum(exp(eta)))
  if (sd == 0) return(sum(cond(eta0, seq_along(y))))
  tot <- 0
  for (lv in levels(g)) {
    i <- which(g == lv)
    h <- function(b) sum(cond(eta0[i] + b, i)) + dnorm(b, 0, sd, log = TRUE)
    o <- optimize(function(b) -h(b), c(-10 * sd - 10, 10 * sd + 10), tol = 1e-12)
    tot <- tot + h(o$minimum) + log(2 * pi) / 2 - log(curv(eta0[i] + o$minimum, i) + 1 / sd^2) / 2
  }
  tot
}
saturated_loglik <- function(m) {
  y <- m@resp$y; w <- m@resp$weights; fam <- family(m)$family
  switch(fam, binomial = sum(dbinom(round(y * w), round(w), y, log = TRUE)),
         poisson = sum(dpois(y, y, log = TRUE)))
}
extract <- function(m, fit, cn) {
  V <- as.matrix(vcov(m)); ll <- logLik(m); nagq <- m@devcomp$dims[["nAGQ"]]
  sat <- saturated_loglik(m); re <- ranef(m, condVar = TRUE)
  bern <- fam_name(m) == "binomial" && all(m@resp$weights == 1)
  list(control = cn, nAGQ = nagq, fixef = dict(fixef(m)), se = dict(sqrt(diag(V))),
       sd = as.numeric(attr(VarCorr(m)[[1]], "stddev")), loglik = as.numeric(ll),
       loglik_full = if (nagq > 1 && !bern) as.numeric(ll) + sat else as.numeric(ll),
       loglik_exact = exact_loglik(m), saturated_loglik = sat,
       laplace_exact_modes = laplace_exact_modes(m),
       ranef = ranef_list(re), isSingular = isSingular(m),
       warnings = I(fit$warnings), messages = I(fit$messages))
}

## ---------------------------------------------------------------- data ----
set.seed(20240501)
sim_groups <- function(G, sizes) { n <- sample(sizes, G, replace = TRUE); factor(rep(sprintf("g%02d", seq_len(G)), n)) }
datasets <- list()
g <- sim_groups(25, 2:8); n <- length(g); b <- rnorm(25, 0, 0.7)[g]
x <- round(rnorm(n), 4); expo <- round(runif(n, 0.5, 5), 3)
datasets$pois_offset <- data.frame(g = g, x = x, expo = expo, logexpo = log(expo),
                                   y = rpois(n, expo * exp(-0.3 + 0.5 * x + b)))
g <- sim_groups(20, 3:7); n <- length(g); b <- rnorm(20, 0, 0.8)[g]
z <- round(rnorm(n, 50, 10), 2); trials <- sample(1:12, n, replace = TRUE)
datasets$binom_trials <- data.frame(g = g, z = z, trials = trials,
                                    y = rbinom(n, trials, plogis(-2 + 0.04 * z + b)))
g <- sim_groups(30, 4:10); n <- length(g); b <- rnorm(30, 0, 1)[g]
f <- factor(sample(c("a", "b", "c", "d"), n, replace = TRUE)); x <- round(rnorm(n), 4)
datasets$bern_factor <- data.frame(g = g, f = f, x = x,
  y = rbinom(n, 1, plogis(-0.5 + c(a = 0, b = 0.6, c = -0.4, d = 1.1)[as.character(f)] + 0.3 * x + b)))
g <- sim_groups(80, 1:3); n <- length(g); b <- rnorm(80, 0, 1.2)[g]; x <- round(rnorm(n), 4)
datasets$small_groups_bern <- data.frame(g = g, x = x, y = rbinom(n, 1, plogis(0.2 + 0.8 * x + b)))
g <- sim_groups(60, 1:3); n <- length(g); b <- rnorm(60, 0, 0.6)[g]; x <- round(rnorm(n), 4)
datasets$small_groups_pois <- data.frame(g = g, x = x, y = rpois(n, exp(0.5 + 0.4 * x + b)))
## boundary: no group effect; the first seed whose default Laplace fit is singular
find_singular <- function(make, fm, fam) {
  for (s in 1:200) { set.seed(s); d <- make()
    m <- suppressMessages(suppressWarnings(glmer(fm, d, family = fam)))
    if (isSingular(m) && as.numeric(VarCorr(m)[[1]]) == 0) return(list(seed = s, data = d)) }
  stop("no singular fit found")
}
bb <- find_singular(function() { g <- sim_groups(15, 6); x <- round(rnorm(length(g)), 4)
  data.frame(g = g, x = x, y = rbinom(length(g), 1, plogis(0.3 + 0.7 * x))) }, y ~ x + (1 | g), binomial)
datasets$boundary_bern <- bb$data
bp <- find_singular(function() { g <- sim_groups(12, 5); x <- round(rnorm(length(g)), 4)
  data.frame(g = g, x = x, y = rpois(length(g), exp(0.8 + 0.3 * x))) }, y ~ x + (1 | g), poisson)
datasets$boundary_pois <- bp$data

specs <- list(
  pois_offset = list(fm = y ~ x + offset(log(expo)) + (1 | g), family = poisson,
                     ours = "y ~ x + (1 | g)  with offset='logexpo'", pql = TRUE),
  binom_trials = list(fm = cbind(y, trials - y) ~ z + (1 | g), family = binomial,
                      ours = "y ~ z + (1 | g)  with trials='trials'"),
  bern_factor = list(fm = y ~ f + x + (1 | g), family = binomial, ours = "y ~ f + x + (1 | g)"),
  small_groups_bern = list(fm = y ~ x + (1 | g), family = binomial, ours = "y ~ x + (1 | g)"),
  small_groups_pois = list(fm = y ~ x + (1 | g), family = poisson, ours = "y ~ x + (1 | g)", pql = TRUE),
  boundary_bern = list(fm = y ~ x + (1 | g), family = binomial, ours = "y ~ x + (1 | g)"),
  boundary_pois = list(fm = y ~ x + (1 | g), family = poisson, ours = "y ~ x + (1 | g)", pql = TRUE))

newdata_for <- function(nm, d) {
  nd <- d[c(1, 2, nrow(d)), ]
  new <- nd[1:2, ]; new$g <- c("unseen1", "unseen2")
  nd <- rbind(nd, new); nd$g <- as.character(nd$g); rownames(nd) <- NULL
  if ("x" %in% names(nd)) nd$x <- c(0.5, -1, 1.5, 0, 2)
  if ("expo" %in% names(nd)) { nd$expo <- c(1, 2.5, 0.7, 3, 1.2); nd$logexpo <- log(nd$expo) }
  if ("f" %in% names(nd)) nd$f <- c("a", "d", "c", "b", "d")
  if ("z" %in% names(nd)) nd$z <- c(40, 55.5, 62, 50, 35)
  nd
}

cases <- list()
for (nm in names(specs)) {
  sp <- specs[[nm]]; d <- datasets[[nm]]
  banner(nm, ": ", deparse(sp$fm)); print(summary(d))
  entry <- list(formula = deparse(sp$fm), family = sp$family()$family, ours = sp$ours,
                data = lapply(as.list(d), function(v) if (is.factor(v)) I(as.character(v)) else I(v)),
                nobs = nrow(d), group_sizes = dict(table(table(d$g))))
  if (nm == "boundary_bern") entry$seed <- bb$seed
  if (nm == "boundary_pois") entry$seed <- bp$seed
  for (q in c(1, 25)) {
    fits <- lapply(names(controls), function(cn)
      capture_fit(glmer(sp$fm, d, family = sp$family, nAGQ = q, control = controls[[cn]])))
    names(fits) <- names(controls)
    lls <- sapply(fits, function(f) as.numeric(logLik(f$value)))
    best <- names(which.max(lls))
    cat("\nnAGQ =", q, " logLik by control:\n"); print(lls, digits = 12)
    print(summary(fits[[best]]$value))
    key <- if (q == 1) "laplace" else "agq25"
    entry[[key]] <- list(default = extract(fits$default$value, fits$default, "default"),
                         best = extract(fits[[best]]$value, fits[[best]], best))
  }
  m <- fits[[best]]$value      # the nAGQ = 25 best fit
  nd <- newdata_for(nm, d)
  entry$predict <- list(newdata = lapply(as.list(nd), I),
    response_re_form_NA = I(unname(predict(m, newdata = nd, type = "response", re.form = NA))),
    response_allow_new_levels = I(unname(predict(m, newdata = nd, type = "response",
                                                 allow.new.levels = TRUE))),
    link_allow_new_levels = I(unname(predict(m, newdata = nd, type = "link",
                                             allow.new.levels = TRUE))))
  print(nd); str(entry$predict[-1])
  if (isTRUE(sp$pql)) {
    fixed <- if (nm == "pois_offset") y ~ x + offset(log(expo)) else y ~ x
    p <- capture_fit(glmmPQL(fixed, random = ~ 1 | g, family = poisson, data = d, verbose = FALSE))
    pm <- p$value; print(summary(pm))
    entry$glmmPQL <- list(fixef = dict(fixef(pm)), se = dict(summary(pm)$tTable[, "Std.Error"]),
                          sd_intercept = as.numeric(sqrt(getVarCov(pm)[1, 1])),
                          residual_scale = pm$sigma,
                          ranef = list(levels = I(rownames(ranef(pm))), values = I(ranef(pm)[, 1])),
                          warnings = I(p$warnings), messages = I(p$messages))
  }
  cases[[nm]] <- entry
}

## grouseticks (cHEIGHT): glmmPQL Poisson
gt <- load_data("grouseticks.csv")
p <- capture_fit(glmmPQL(TICKS ~ YEAR + cHEIGHT, random = ~ 1 | LOCATION, family = poisson,
                         data = gt, verbose = FALSE))
pm <- p$value; banner("glmmPQL grouseticks"); print(summary(pm))
grouse_pql <- list(formula = "TICKS ~ YEAR + cHEIGHT, random = ~1 | LOCATION", fixef = dict(fixef(pm)),
                   se = dict(summary(pm)$tTable[, "Std.Error"]),
                   sd_intercept = as.numeric(sqrt(getVarCov(pm)[1, 1])), residual_scale = pm$sigma,
                   ranef = list(levels = I(rownames(ranef(pm))), values = I(ranef(pm)[, 1])),
                   warnings = I(p$warnings))

out <- list(generated_by = "tests/reference/lme4_glmm_more.R", software = software_block(),
  notes = I(c(
    "data: the simulated rows (set.seed(20240501); boundary sets: the first seed whose default Laplace fit has SD 0).",
    "laplace / agq25: default = glmerControl(); best = highest logLik over the controls in the script.",
    "loglik_full: logLik(m), plus the saturated log-likelihood for nAGQ > 1 with non-Bernoulli responses (lme4 leaves it out there).",
    "loglik_exact: exact marginal log-likelihood at the fit's (beta, sd) by stats::integrate.",
    "predict: from the nAGQ = 25 best fit; newdata rows 1-3 are known groups, rows 4-5 unseen groups.",
    "glmmPQL$se: summary(glmmPQL)$tTable standard errors (nlme's adjustSigma).")),
  cases = cases, grouseticks_glmmPQL = grouse_pql)
write_json_full(out, file.path(OUT_DIR, "lme4_glmm_more.json"))
