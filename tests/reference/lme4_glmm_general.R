## glmer references for the general GLMMs of issue 14: crossed, correlated and uncorrelated random
## slopes, a random-slope Poisson model with an offset, nested (two- and three-level) binomial and
## Poisson models, probit / cloglog links and the cbind(successes, failures) form.
## Run from the repository root:   Rscript tests/reference/lme4_glmm_general.R
## Writes tests/reference/lme4_glmm_general.json and tests/reference/lme4_glmm_general.Rout.txt
##
## For every case: glmer's DEFAULT fit (glmerControl() as shipped, timed: median elapsed of 3 fits)
## and a TIGHT fit (bobyqa, tolPwrss 1e-10, maxfun 1e5, rhoend 1e-10; from glmer's own start and
## restarted from the default estimates; the one with the higher logLik is kept as `tight`).
##
## Independent Laplace check (`laplace_check` in each fit): at the fit's own (theta, beta), with
## Z, Lambda, X, offset, prior weights and y from getME / m@resp, the conditional modes u are found
## by our own Fisher-scoring Newton iteration (from u = 0, with step halving) until max|step| < 1e-12,
## and   l_Laplace = sum log p(y | eta(u)) - u'u/2 - log det(Lambda'Z'W Z Lambda + I)/2
## with W = prior weights * mu.eta^2 / variance at those modes (Matrix::determinant of the sparse
## symmetric matrix).  glmer's own value (logLik = -(aic + ldL2 + u'u)/2) uses ldL2 from the
## Cholesky factor PIRLS built before its last step (see lme4_glmm_extra.R); with the default
## tolPwrss = 1e-7 that can leave glmer's value off the exact Laplace value at the same parameters.
## `laplace_check$indep_minus_glmer` is that difference.  For the probit and cloglog links (not
## canonical) `laplace_observed_info` gives the Laplace value with the observed instead of the
## expected (Fisher) information in the log determinant, for information only: glmer uses Fisher.
##
## Level order: every categorical column is a factor with the levels mlteach.load() gives (numeric
## ids sorted as numbers, other labels sorted by code point, sort(method = "radix")), NOT R's package
## order: VerbAgg's item/mode are not alphabetical in lme4 (mode want, do -> here do, want;
## item "S4wantCurse" sorts last), and cbpp herd / grouseticks ids are numeric here (1, 2, ..., 15),
## unlike the string order ("1", "10", ...) that common.R's load_data() gives for the older scripts.
## Only level order (ranef order, treatment-contrast reference level) depends on this.
source(file.path("tests", "reference", "common.R"))
suppressPackageStartupMessages({ library(lme4); library(Matrix) })

sink(file.path(OUT_DIR, "lme4_glmm_general.Rout.txt"), split = TRUE)
on.exit(sink(), add = TRUE)
banner("lme4_glmm_general.R  --  ", format(Sys.time()))
print(sessionInfo())

## ------------------------------------------------------------------ data ----
## categorical columns and numeric-id columns as in mlteach/data/__init__.py
## load_sorted(): common.R (categorical columns with mlteach.load()'s level order)
verbagg <- load_sorted("verbagg.csv", c("Gender", "item", "resp", "id", "btype", "situ", "mode", "r2"), "id")
verbagg$r2 <- as.integer(verbagg$r2 == "Y")
contraception <- load_sorted("contraception.csv", c("woman", "district", "use", "livch", "urban"),
                             c("woman", "district"))
contraception$use <- as.integer(contraception$use == "Y")
contraception$urbanY <- as.numeric(contraception$urban == "Y")
stopifnot(identical(levels(contraception$livch), c("0", "1", "2", "3+")))
cbpp <- load_sorted("cbpp.csv", c("herd", "period"), c("herd", "period"))
cbpp$pnum <- as.numeric(cbpp$period)
guimmun <- load_sorted("guimmun.csv", c("kid", "mom", "comm", "immun", "kid2p", "mom25p", "ord", "ethn",
                                        "momEd", "husEd", "momWork", "rural"), c("kid", "mom", "comm"))
guimmun$immun <- as.integer(guimmun$immun == "Y")
grouseticks <- load_sorted("grouseticks.csv", c("INDEX", "BROOD", "YEAR", "LOCATION"),
                           c("INDEX", "BROOD", "YEAR", "LOCATION"))
cat("VerbAgg item levels:", levels(verbagg$item), "\nmode levels:", levels(verbagg$mode), "\n")

PYCOLS <- list(
  verbagg = list(r2 = "1 if r2 == 'Y' else 0 (integer)"),
  contraception = list(use = "1 if use == 'Y' else 0 (integer)",
                       urbanY = "1.0 if urban == 'Y' else 0.0 (float; the numeric column used for ||)"),
  cbpp = list(pnum = "period code + 1, i.e. float(period) (1.0 .. 4.0)"),
  guimmun = list(immun = "1 if immun == 'Y' else 0 (integer)"),
  grouseticks = setNames(list(), character()))

specs <- list(
  verbagg_crossed = list(data = "verbagg", family = binomial(),
    formula = r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)),
  contraception_slope = list(data = "contraception", family = binomial(),
    formula = use ~ age + I(age^2) + urban + livch + (1 + urban | district)),
  contraception_uncorr = list(data = "contraception", family = binomial(),
    formula = use ~ age + urbanY + livch + (1 + urbanY || district),
    note = "(1 + urban || district) with the factor urban would need (1 | district) + (0 + dummy(urban, \"Y\") | district) in lme4; a numeric 0/1 column urbanY (fixed and random part) is used instead; its fixed-effect name urbanY equals the factor's term name."),
  cbpp_slope_offset = list(data = "cbpp", family = poisson(),
    formula = incidence ~ period + offset(log(size)) + (1 + pnum | herd)),
  guimmun_nested = list(data = "guimmun", family = binomial(),
    formula = immun ~ kid2p + mom25p + ord + ethn + momEd + husEd + momWork + rural + pcInd81 + (1 | comm/mom)),
  grouse_nested = list(data = "grouseticks", family = poisson(),
    formula = TICKS ~ YEAR + cHEIGHT + (1 | LOCATION/BROOD)),
  grouse_three = list(data = "grouseticks", family = poisson(),
    formula = TICKS ~ YEAR + cHEIGHT + (1 | LOCATION) + (1 | BROOD) + (1 | INDEX)),
  cbpp_probit = list(data = "cbpp", family = binomial(link = "probit"),
    formula = cbind(incidence, size - incidence) ~ period + (1 | herd)),
  cbpp_cloglog = list(data = "cbpp", family = binomial(link = "cloglog"),
    formula = cbind(incidence, size - incidence) ~ period + (1 | herd)),
  cbpp_cbind_logit = list(data = "cbpp", family = binomial(),
    formula = cbind(incidence, size - incidence) ~ period + (1 | herd)))

## debugging only: CASES=name1,name2 runs a subset (the committed JSON has all cases)
if (nzchar(Sys.getenv("CASES"))) specs <- specs[strsplit(Sys.getenv("CASES"), ",")[[1]]]

DATA <- list(verbagg = verbagg, contraception = contraception, cbpp = cbpp, guimmun = guimmun,
             grouseticks = grouseticks)
CSV <- c(verbagg = "verbagg.csv", contraception = "contraception.csv", cbpp = "cbpp.csv",
         guimmun = "guimmun.csv", grouseticks = "grouseticks.csv")

TIGHT_PWRSS <- c(1e-10, 1e-9, 1e-8)   # first that runs without error is used
tight_control <- function(tol) glmerControl(optimizer = "bobyqa", tolPwrss = tol,
                                            optCtrl = list(maxfun = 1e5, rhoend = 1e-10))

## ------------------------------------------------- independent Laplace ----
cond_loglik <- function(fam, y, pw, mu) {
  switch(fam$family,
    binomial = sum(dbinom(round(y * pw), round(pw), mu, log = TRUE)),
    poisson = { stopifnot(all(pw == 1)); sum(dpois(y, mu, log = TRUE)) },
    stop("family"))
}
## make_laplace(m): a function of (theta, beta) giving the Laplace log-likelihood at the exact modes.
## Lambda'(theta) is rebuilt from getME(m, "Lambdat") and getME(m, "Lind").
make_laplace <- function(m) {
  Z <- getME(m, "Z"); X <- getME(m, "X"); Lt <- getME(m, "Lambdat"); Lind <- getME(m, "Lind")
  y <- m@resp$y; pw <- m@resp$weights; off <- m@resp$offset
  fam <- family(m)
  q <- ncol(Z); Iq <- Diagonal(q)
  u_warm <- numeric(q)
  function(theta, beta, warm = FALSE, details = FALSE) {
    Lt@x <- theta[Lind]
    ZL <- as(Z %*% t(Lt), "CsparseMatrix")
    eta0 <- as.numeric(X %*% beta) + off
    pen <- function(u) { mu <- fam$linkinv(eta0 + as.numeric(ZL %*% u)); cond_loglik(fam, y, pw, mu) - sum(u^2) / 2 }
    u <- if (warm) u_warm else numeric(q)
    it <- 0; maxstep <- Inf; halvings <- 0
    repeat {
      eta <- eta0 + as.numeric(ZL %*% u)
      mu <- fam$linkinv(eta); me <- fam$mu.eta(eta); v <- fam$variance(mu)
      W <- pw * me^2 / v
      grad <- as.numeric(crossprod(ZL, pw * (y - mu) * me / v)) - u
      H <- forceSymmetric(crossprod(ZL, Diagonal(x = W) %*% ZL) + Iq)
      step <- as.numeric(solve(H, grad))
      f0 <- pen(u); s <- 1
      while (pen(u + s * step) < f0 - 1e-12 * abs(f0) && s > 1e-8) { s <- s / 2; halvings <- halvings + 1 }
      u <- u + s * step; it <- it + 1
      maxstep <- max(abs(s * step))
      if (maxstep < 1e-12 || it >= 200) break
    }
    if (all(is.finite(u))) u_warm <<- u
    eta <- eta0 + as.numeric(ZL %*% u)
    mu <- fam$linkinv(eta); me <- fam$mu.eta(eta); v <- fam$variance(mu)
    W <- pw * me^2 / v
    H <- forceSymmetric(crossprod(ZL, Diagonal(x = W) %*% ZL) + Iq)
    logdet <- as.numeric(determinant(H, logarithm = TRUE)$modulus)
    cll <- cond_loglik(fam, y, pw, mu)
    value <- cll - sum(u^2) / 2 - logdet / 2
    if (!details) return(value)
    grad <- as.numeric(crossprod(ZL, pw * (y - mu) * me / v)) - u
    out <- list(value = value, u = u, ZL = ZL, eta0 = eta0, cll = cll, logdet = logdet,
                it = it, halvings = halvings, maxstep = maxstep, maxgrad = max(abs(grad)))
    if (!(fam$link %in% c("logit", "log"))) {
      ## observed information: -d/deta of the score pw (y - mu) mu.eta / variance
      sfun <- function(e) { mu <- fam$linkinv(e); pw * (y - mu) * fam$mu.eta(e) / fam$variance(mu) }
      h <- 1e-5
      Wobs <- -(sfun(eta + h) - sfun(eta - h)) / (2 * h)
      Hobs <- forceSymmetric(crossprod(ZL, Diagonal(x = Wobs) %*% ZL) + Iq)
      out$laplace_observed_info <- cll - sum(u^2) / 2 - as.numeric(determinant(Hobs, logarithm = TRUE)$modulus) / 2
    }
    out
  }
}
laplace_check <- function(m) {
  fam <- family(m); y <- m@resp$y; pw <- m@resp$weights
  r <- make_laplace(m)(getME(m, "theta"), fixef(m), details = TRUE)
  ## glmer's own pieces: its stored u, its ldL2
  u_g <- getME(m, "u")
  mu_g <- fam$linkinv(r$eta0 + as.numeric(r$ZL %*% u_g))
  ldL2 <- as.numeric(getME(m, "devcomp")$cmp["ldL2"])
  glmer_recomputed <- cond_loglik(fam, y, pw, mu_g) - sum(u_g^2) / 2 - ldL2 / 2
  out <- list(
    laplace_indep = r$value, glmer_loglik = as.numeric(logLik(m)),
    indep_minus_glmer = r$value - as.numeric(logLik(m)),
    glmer_recomputed_from_u_ldL2 = glmer_recomputed,
    cond_loglik_at_modes = r$cll, ussq_at_modes = sum(r$u^2), logdet_at_modes = r$logdet,
    ldL2_glmer = ldL2, ussq_glmer = sum(u_g^2), cond_loglik_at_glmer_u = cond_loglik(fam, y, pw, mu_g),
    max_abs_u_diff = max(abs(r$u - u_g)), newton_iterations = r$it, newton_halvings = r$halvings,
    newton_last_max_step = r$maxstep, max_abs_grad_at_modes = r$maxgrad)
  if (!is.null(r$laplace_observed_info)) out$laplace_observed_info <- r$laplace_observed_info
  out
}

## Maximise the independent Laplace approximation over (theta, beta), from the tight fit's
## estimates (L-BFGS-B with glmer's bounds on theta, numerical gradients, warm-started modes).
laplace_max <- function(m) {
  lap <- make_laplace(m)
  th0 <- getME(m, "theta"); b0 <- fixef(m); nt <- length(th0)
  lower <- c(getME(m, "lower"), rep(-Inf, length(b0)))
  V <- as.matrix(suppressWarnings(vcov(m, use.hessian = FALSE)))
  scale <- c(pmax(abs(th0), 0.05) * 0.1, sqrt(diag(V)))
  f <- function(p) -lap(p[seq_len(nt)], p[-seq_len(nt)], warm = TRUE)
  v0 <- f(c(th0, b0))
  t0 <- Sys.time()
  opt <- optim(c(th0, b0), f, method = "L-BFGS-B", lower = lower,
               control = list(parscale = scale, factr = 10, pgtol = 0, maxit = 500,
                              ndeps = rep(1e-4, length(scale))))
  el <- as.numeric(difftime(Sys.time(), t0, units = "secs"))
  if (opt$value > v0) opt$par <- c(th0, b0)   # never worse than the start
  th <- setNames(opt$par[seq_len(nt)], names(th0)); b <- setNames(opt$par[-seq_len(nt)], names(b0))
  val <- lap(th, b)
  list(loglik = val, gain_over_start = val - (-v0), theta = dict(th), fixef = dict(b),
       max_abs_fixef_change = max(abs(b - b0)), max_abs_theta_change = max(abs(th - th0)),
       convergence = opt$convergence, message = if (is.null(opt$message)) NA_character_ else opt$message,
       counts = as.list(opt$counts), elapsed = el)
}

## ------------------------------------------------------------ extract ----
first_levels <- function(re, k = 3) lapply(re, function(r) {
  r <- as.matrix(r)[seq_len(min(k, nrow(r))), , drop = FALSE]
  list(levels = I(rownames(r)), columns = I(colnames(r)), values = rows(r))
})
varcorr_df <- function(m) {
  d <- as.data.frame(VarCorr(m))
  list(grp = I(d$grp), var1 = I(ifelse(is.na(d$var1), NA_character_, d$var1)),
       var2 = I(ifelse(is.na(d$var2), NA_character_, d$var2)), vcov = I(d$vcov), sdcor = I(d$sdcor))
}
extract_glmm <- function(m, fit, control_call) {
  ll <- logLik(m)
  V <- as.matrix(vcov(m))
  Vrx <- as.matrix(suppressWarnings(vcov(m, use.hessian = FALSE)))
  list(
    control_call = control_call,
    fixef = dict(fixef(m)), se = dict(sqrt(diag(V))), vcov = vmat(V),
    se_rx = dict(sqrt(diag(Vrx))), vcov_rx = vmat(Vrx),
    theta = dict(getME(m, "theta")),
    varcorr = varcorr_df(m),
    loglik = as.numeric(ll), minus2loglik = -2 * as.numeric(ll),
    deviance = deviance(m), df = attr(ll, "df"), nobs = nobs(m),
    AIC = AIC(m), BIC = BIC(m),
    ngroups = as.list(ngrps(m)),
    ranef_first3 = first_levels(ranef(m)),
    devcomp_cmp = as.list(getME(m, "devcomp")$cmp),
    isSingular = isSingular(m),
    warnings = I(fit$warnings), messages = I(fit$messages),
    optinfo = optinfo_list(m@optinfo),
    laplace_check = laplace_check(m))
}

## --------------------------------------------------------------- fits ----
out_cases <- list()
t_script <- Sys.time()
for (nm in names(specs)) {
  sp <- specs[[nm]]; d <- DATA[[sp$data]]
  banner(nm, ": ", paste(deparse(sp$formula), collapse = " "), "  [", sp$family$family, "/", sp$family$link, "]")
  fitfun <- function(control, start = NULL)
    capture_fit(glmer(sp$formula, data = d, family = sp$family, control = control, start = start))
  ## default: three timed fits, the first kept
  times <- numeric(3); fit_def <- NULL
  for (k in 1:3) {
    tt <- system.time(f <- fitfun(glmerControl()))[["elapsed"]]
    times[k] <- tt; if (k == 1) fit_def <- f
  }
  m_def <- fit_def$value
  print(summary(m_def))
  cat("default fit elapsed (s):", times, " median", median(times), "\n")
  if (length(fit_def$warnings)) cat("default warnings:", fit_def$warnings, sep = "\n  ")
  ## tight: from glmer's start and restarted at the default's estimates
  tight <- list(); tight_err <- character()
  for (tol in TIGHT_PWRSS) {
    ok <- TRUE
    for (how in c("scratch", "restart")) {
      st <- if (how == "restart") list(theta = getME(m_def, "theta"), fixef = fixef(m_def)) else NULL
      t0 <- Sys.time()
      f <- tryCatch(fitfun(tight_control(tol), st), error = function(e) e)
      el <- as.numeric(difftime(Sys.time(), t0, units = "secs"))
      if (inherits(f, "error")) { ok <- FALSE; tight_err <- c(tight_err, sprintf("tolPwrss %g %s: %s", tol, how, conditionMessage(f))); break }
      f$elapsed <- el; f$how <- how; f$tol <- tol
      tight[[how]] <- f
    }
    if (ok) break
    tight <- list()
  }
  if (length(tight_err)) cat("tight-fit errors:", tight_err, sep = "\n  ")
  case <- list(data = CSV[[sp$data]], formula = paste(deparse(sp$formula), collapse = " "),
               family = sp$family$family, link = sp$family$link,
               python_columns = PYCOLS[[sp$data]],
               note = if (is.null(sp$note)) NULL else sp$note)
  case$default <- extract_glmm(m_def, fit_def, "glmerControl()")
  case$default$elapsed_median = median(times); case$default$elapsed_all = I(times)
  if (length(tight)) {
    lls <- vapply(tight, function(f) as.numeric(logLik(f$value)), 0)
    bestk <- names(which.max(lls))
    fb <- tight[[bestk]]
    cc <- sprintf("glmerControl(optimizer = \"bobyqa\", tolPwrss = %g, optCtrl = list(maxfun = 1e5, rhoend = 1e-10))%s",
                  fb$tol, if (bestk == "restart") ", start = list(theta = <default theta>, fixef = <default fixef>)" else "")
    case$tight <- extract_glmm(fb$value, fb, cc)
    case$tight$tolPwrss <- fb$tol; case$tight$start <- bestk; case$tight$elapsed <- fb$elapsed
    case$tight_candidates <- lapply(tight, function(f) list(loglik = as.numeric(logLik(f$value)),
      elapsed = f$elapsed, warnings = I(f$warnings), fixef = dict(fixef(f$value)),
      theta = dict(getME(f$value, "theta"))))
    cat("\n-- tight fit (", bestk, ", tolPwrss ", fb$tol, "):\n", sep = "")
    print(summary(fb$value))
    print(sapply(tight, function(f) c(loglik = as.numeric(logLik(f$value)), elapsed = f$elapsed)), digits = 12)
  } else {
    case$tight <- list(available = FALSE, errors = I(tight_err))
  }
  case$tight_errors <- if (length(tight_err)) I(tight_err) else NULL
  lc_d <- case$default$laplace_check; lc_t <- if (length(tight)) case$tight$laplace_check else NULL
  notes <- character()
  for (w in c("default", "tight")) {
    lc <- if (w == "default") lc_d else lc_t
    if (is.null(lc)) next
    cat(sprintf("%-7s glmer logLik %.10f | independent Laplace %.10f | indep - glmer %.3e | Newton its %d, last step %.1e\n",
                w, lc$glmer_loglik, lc$laplace_indep, lc$indep_minus_glmer, lc$newton_iterations, lc$newton_last_max_step))
    if (lc$indep_minus_glmer > 1e-6)
      notes <- c(notes, sprintf("%s fit: glmer's Laplace logLik is %.3g short of the independent Laplace value at the same (theta, beta)", w, lc$indep_minus_glmer))
  }
  if (!is.null(lc_t)) {
    case$loglik_tight_minus_default <- case$tight$loglik - case$default$loglik
    case$laplace_max <- laplace_max(tight[[case$tight$start]]$value)
    cat(sprintf("independent Laplace maximised from the tight fit: %.10f (gain %.3e over its value at the tight estimates; max |d fixef| %.2e, max |d theta| %.2e; %.1f s)\n",
                case$laplace_max$loglik, case$laplace_max$gain_over_start, case$laplace_max$max_abs_fixef_change,
                case$laplace_max$max_abs_theta_change, case$laplace_max$elapsed))
  }
  case$laplace_notes <- I(notes)
  if (length(notes)) cat("NOTE:", notes, sep = "\n  ")
  out_cases[[nm]] <- case
}
cat("\nscript elapsed:", format(Sys.time() - t_script), "\n")

out <- list(
  generated_by = "tests/reference/lme4_glmm_general.R",
  software = software_block(),
  notes = I(c(
    "Data are read from mlteach/data/*.csv with factor levels as mlteach.load() orders them (numeric ids numerically, other labels by code point); derived columns in each case's python_columns.",
    "default: glmer with glmerControl() as shipped (bobyqa then Nelder_Mead, tolPwrss 1e-7); elapsed_median is the median elapsed seconds of 3 identical fits (benchmark reference).",
    "tight: bobyqa, tolPwrss 1e-10 (or the first of 1e-9, 1e-8 that runs), maxfun 1e5, rhoend 1e-10; fitted from glmer's start and restarted at the default estimates, the higher logLik kept (tight$start says which; tight_candidates has both).",
    "vcov/se: lme4's default for GLMMs (finite-difference Hessian over theta and beta); vcov_rx/se_rx: vcov(m, use.hessian = FALSE).",
    "varcorr: as.data.frame(VarCorr(m)): one row per variance (var2 null, sdcor = SD) or covariance (sdcor = correlation).",
    "deviance: lme4's deviance() for a GLMM = sum of squared deviance residuals at the modes (devcomp drsum), NOT -2 logLik; minus2loglik is -2 logLik.",
    "laplace_check: independent Laplace log-likelihood at this fit's (theta, beta) (Newton modes to max|step| < 1e-12, Fisher weights, Matrix::determinant) vs glmer's logLik; indep_minus_glmer > 0 means glmer's value is short of the exact Laplace value.",
    "laplace_max: the independent Laplace log-likelihood maximised over (theta, beta) from the tight fit (L-BFGS-B, numerical gradients); loglik is the exact-Laplace optimum an exact implementation should reach (gain_over_start = how much it exceeds the value at glmer's tight estimates).",
    "ranef_first3: conditional modes (ranef) of the first 3 levels of each grouping factor, by label.")),
  cases = out_cases)
write_json_full(out, file.path(OUT_DIR, "lme4_glmm_general.json"))
