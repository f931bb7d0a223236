## Reference values for generalized linear mixed models: lme4::glmer (Laplace
## and adaptive Gauss-Hermite quadrature) and MASS::glmmPQL.
## Run from the repository root:   Rscript tests/reference/lme4_glmm.R
## Writes tests/reference/lme4_glmm.json and tests/reference/lme4_glmm.Rout.txt
source(file.path("tests", "reference", "common.R"))
suppressPackageStartupMessages({ library(lme4); library(MASS); library(nlme) })

sink(file.path(OUT_DIR, "lme4_glmm.Rout.txt"), split = TRUE)
on.exit(sink(), add = TRUE)
banner("lme4_glmm.R  --  ", format(Sys.time()))
print(sessionInfo())

## ------------------------------------------------------------------ data ----
contraception <- load_data("contraception.csv")
contraception$use <- as.integer(contraception$use == "Y")     # 1 = "Y"
cbpp <- load_data("cbpp.csv")
grouseticks <- load_data("grouseticks.csv")

specs <- list(
  contraception = list(data = "contraception.csv", family = "binomial",
    formula = "use ~ age + I(age^2) + urban + livch + (1 | district)",
    note = "use coded 1 for 'Y', 0 for 'N'; livch levels 0,1,2,3+; urban levels N,Y"),
  cbpp = list(data = "cbpp.csv", family = "binomial",
    formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
    note = "binomial counts: incidence out of size"),
  grouseticks = list(data = "grouseticks.csv", family = "poisson",
    formula = "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)",
    note = "cHEIGHT is the centred altitude column of grouseticks.csv (HEIGHT minus its mean); with raw HEIGHT glmer warns (see grouseticks_rawheight)"),
  grouseticks_rawheight = list(data = "grouseticks.csv", family = "poisson",
    formula = "TICKS ~ YEAR + HEIGHT + (1 | LOCATION)",
    note = "raw HEIGHT (metres): glmer's default fit warns about convergence / scaling; kept to document the warnings")
)
data_for <- function(csv) switch(csv, "contraception.csv" = contraception, "cbpp.csv" = cbpp,
                                 "grouseticks.csv" = grouseticks)

## Optimizer settings tried for the "best" fit (the one with the highest
## log-likelihood is kept).  'default' is glmerControl() as shipped.
controls <- list(
  default = glmerControl(),
  bobyqa_maxfun1e5 = glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5)),
  bobyqa_tight = glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5, rhoend = 1e-10)),
  nelder_mead_tight = glmerControl(optimizer = "Nelder_Mead",
    optCtrl = list(maxfun = 1e5, FtolAbs = 1e-12, FtolRel = 1e-15, XtolRel = 1e-10)),
  nlopt_bobyqa_tight = glmerControl(optimizer = "nloptwrap",
    optCtrl = list(algorithm = "NLOPT_LN_BOBYQA", xtol_rel = 1e-12, ftol_rel = 1e-14,
                   ftol_abs = 1e-14, maxeval = 1e5)),
  nlopt_neldermead_tight = glmerControl(optimizer = "nloptwrap",
    optCtrl = list(algorithm = "NLOPT_LN_NELDERMEAD", xtol_rel = 1e-12, ftol_rel = 1e-14,
                   ftol_abs = 1e-14, maxeval = 1e5)),
  nlminbwrap = glmerControl(optimizer = "nlminbwrap")
)
control_desc <- list(
  default = "glmerControl() (lme4 1.1-31: optimizer c('bobyqa','Nelder_Mead'): bobyqa for the nAGQ=0 stage, Nelder_Mead for the final stage)",
  bobyqa_maxfun1e5 = "glmerControl(optimizer='bobyqa', optCtrl=list(maxfun=1e5))",
  bobyqa_tight = "glmerControl(optimizer='bobyqa', optCtrl=list(maxfun=1e5, rhoend=1e-10))",
  nelder_mead_tight = "glmerControl(optimizer='Nelder_Mead', optCtrl=list(maxfun=1e5, FtolAbs=1e-12, FtolRel=1e-15, XtolRel=1e-10))",
  nlopt_bobyqa_tight = "glmerControl(optimizer='nloptwrap', optCtrl=list(algorithm='NLOPT_LN_BOBYQA', xtol_rel=1e-12, ftol_rel=1e-14, ftol_abs=1e-14, maxeval=1e5))",
  nlopt_neldermead_tight = "glmerControl(optimizer='nloptwrap', optCtrl=list(algorithm='NLOPT_LN_NELDERMEAD', xtol_rel=1e-12, ftol_rel=1e-14, ftol_abs=1e-14, maxeval=1e5))",
  nlminbwrap = "glmerControl(optimizer='nlminbwrap')")

## ----------------------------------------------- exact marginal loglik ----
## log-likelihood of a one-random-intercept GLMM at given (beta, sd), by
## one-dimensional numerical integration (stats::integrate, rel.tol 1e-12)
## per group, centred at the mode of the integrand.  Includes all constants
## (log binomial coefficients, log y!).
exact_loglik <- function(m, beta = fixef(m), sd = sqrt(as.numeric(VarCorr(m)[[1]]))) {
  X <- getME(m, "X"); eta0 <- as.numeric(X %*% beta) + getME(m, "offset")
  y <- m@resp$y; w <- m@resp$weights; fam <- family(m)$family
  g <- getME(m, "flist")[[1]]
  cond <- switch(fam,
    binomial = function(eta, i) dbinom(round(y[i] * w[i]), round(w[i]), plogis(eta), log = TRUE),
    poisson = function(eta, i) dpois(y[i], exp(eta), log = TRUE))
  tot <- 0
  for (lv in levels(g)) {
    i <- which(g == lv)
    h <- function(b) {       # vectorised over b; columns of E = values of b
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
## log-likelihood of the saturated model (mu = y), the constant that lme4
## leaves out of logLik() for nAGQ > 1 (see README)
saturated_loglik <- function(m) {
  y <- m@resp$y; w <- m@resp$weights; fam <- family(m)$family
  switch(fam, binomial = sum(dbinom(round(y * w), round(w), y, log = TRUE)),
         poisson = sum(dpois(y, y, log = TRUE)))
}

## ------------------------------------------------------------ extract ----
extract_glmm <- function(m, fit, control_name) {
  V <- as.matrix(vcov(m))
  Vrx <- as.matrix(vcov(m, use.hessian = FALSE))
  re <- ranef(m, condVar = TRUE)
  opt <- m@optinfo
  ll <- logLik(m)
  nagq <- m@devcomp$dims[["nAGQ"]]
  vc <- VarCorr(m)
  sat <- saturated_loglik(m)
  list(
    control = control_name, control_call = control_desc[[control_name]],
    nAGQ = nagq,
    fixef = dict(fixef(m)),
    se = dict(sqrt(diag(V))),
    vcov = vmat(V),
    se_rx = dict(sqrt(diag(Vrx))),
    sd = setNames(lapply(names(vc), function(g) as.numeric(attr(vc[[g]], "stddev"))), names(vc)),
    theta = dict(getME(m, "theta")),
    loglik = as.numeric(ll),
    loglik_exact = exact_loglik(m),
    saturated_loglik = sat,
    loglik_lme4_plus_saturated = if (nagq > 1) as.numeric(ll) + sat else NULL,
    deviance = deviance(m),
    minus2loglik = -2 * as.numeric(ll),
    AIC = AIC(m), BIC = BIC(m), df = attr(ll, "df"),
    nobs = nobs(m), ngrps = as.list(ngrps(m)),
    ranef = ranef_list(re),
    condvar = lapply(re, function(r) { pv <- attr(r, "postVar")
      list(levels = I(rownames(r)), columns = I(colnames(r)),
           diag = setNames(lapply(seq_len(dim(pv)[1]), function(j) I(pv[j, j, ])), colnames(r))) }),
    isSingular = isSingular(m),
    warnings = I(fit$warnings), messages = I(fit$messages),
    optinfo = optinfo_list(opt)
  )
}

fit_glmer <- function(sp, nAGQ, control_name) {
  d <- data_for(sp$data)
  fam <- get(sp$family)
  tryCatch(capture_fit(glmer(as.formula(sp$formula), data = d, family = fam, nAGQ = nAGQ,
                             control = controls[[control_name]])),
           error = function(e) list(error = conditionMessage(e)))
}

## -------------------------------------------------------------- glmer ----
cases <- list()
for (nm in names(specs)) {
  sp <- specs[[nm]]
  for (q in c(1, 25)) {
    cname <- paste0(nm, if (q == 1) "_laplace" else paste0("_agq", q))
    banner(cname, ":  ", sp$formula, "  family=", sp$family, "  nAGQ=", q)
    cand <- list(); fits <- list()
    for (cn in names(controls)) {
      f <- fit_glmer(sp, q, cn)
      fits[[cn]] <- f
      cand[[cn]] <- if (!is.null(f$error)) list(error = f$error) else
        list(loglik = as.numeric(logLik(f$value)), warnings = I(f$warnings),
             fixef = dict(fixef(f$value)),
             sd = as.numeric(attr(VarCorr(f$value)[[1]], "stddev")))
      cat(sprintf("  %-24s %s\n", cn, if (!is.null(f$error)) paste("ERROR:", f$error) else
        sprintf("logLik = %.10f  %s", as.numeric(logLik(f$value)),
                paste(gsub("\n", " ", f$warnings), collapse = " | "))))
    }
    lls <- sapply(cand, function(x) if (is.null(x$loglik)) -Inf else x$loglik)
    best <- names(which.max(lls))
    def <- fits$default
    cat("\n--- default fit:\n"); if (length(def$warnings)) cat("WARNINGS:", def$warnings, sep = "\n  ")
    print(summary(def$value))
    cat("logLik (default): "); print(logLik(def$value), digits = 15)
    cat("\n--- best fit (", best, "):\n", sep = ""); if (length(fits[[best]]$warnings)) cat("WARNINGS:", fits[[best]]$warnings, sep = "\n  ")
    print(summary(fits[[best]]$value))
    cat("logLik (best): "); print(logLik(fits[[best]]$value), digits = 15)
    cases[[cname]] <- list(
      data = sp$data, formula = sp$formula, family = sp$family, link = family(def$value)$link,
      nAGQ = q, note = sp$note,
      default = extract_glmm(def$value, def, "default"),
      best_control = best,
      best = extract_glmm(fits[[best]]$value, fits[[best]], best),
      loglik_best_minus_default = lls[[best]] - lls[["default"]],
      candidates = cand)
  }
}

## --------------------------------------- quadrature nodes, contraception ----
banner("contraception: logLik and sd versus the number of quadrature nodes")
nodes <- c(1, 2, 3, 5, 9, 15, 25)
quad <- list()
for (q in nodes) {
  sp <- specs$contraception
  res <- list()
  for (cn in names(controls)) {
    f <- fit_glmer(sp, q, cn)
    if (!is.null(f$error)) next
    m <- f$value
    res[[cn]] <- list(control = cn, loglik = as.numeric(logLik(m)),
                      sd = as.numeric(attr(VarCorr(m)[[1]], "stddev")),
                      fixef = dict(fixef(m)), warnings = I(f$warnings), m = m)
  }
  bestn <- names(which.max(sapply(res, `[[`, "loglik")))
  strip <- function(r) { m <- r$m; r$m <- NULL; r$loglik_exact <- exact_loglik(m); r }
  quad[[as.character(q)]] <- list(nAGQ = q, default = strip(res$default), best = strip(res[[bestn]]))
  cat(sprintf("nAGQ=%2d  default logLik=%.10f sd=%.8f | best(%s) logLik=%.10f sd=%.8f exact=%.10f\n",
              q, res$default$loglik, res$default$sd, bestn, res[[bestn]]$loglik, res[[bestn]]$sd,
              quad[[as.character(q)]]$best$loglik_exact))
}

## ------------------------------------------------------------ glmmPQL ----
pql_fit <- function(fixed, random, data, weights = NULL, label) {
  banner("glmmPQL: ", label)
  cl <- if (is.null(weights))
    quote(glmmPQL(fixed, random = random, family = binomial, data = data))
  else quote(glmmPQL(fixed, random = random, family = binomial, data = data, weights = size))
  fit <- capture_fit(eval(cl))
  m <- fit$value
  print(summary(m)); print(VarCorr(m))
  tt <- summary(m)$tTable
  vc <- VarCorr(m)
  re <- ranef(m)
  list(call = paste(deparse(m$call), collapse = " "),
       fixef = dict(fixef(m)), se = dict(tt[, "Std.Error"]), df = dict(tt[, "DF"]),
       tvalue = dict(tt[, "t-value"]), vcov = vmat(vcov(m)),
       ## full precision from getVarCov (VarCorr() returns rounded text)
       sd_intercept = sqrt(as.numeric(getVarCov(m)[1, 1])),
       var_intercept = as.numeric(getVarCov(m)[1, 1]),
       residual_scale = m$sigma,
       residual_scale_note = "glmmPQL does not fix the dispersion at 1: this is the lme residual SD of the working model (variance function: fixed weights ~invwt)",
       pql_iterations = sum(grepl("^iteration", fit$messages)),
       ranef = list(levels = I(rownames(re)), columns = I(colnames(re)), values = rows(as.matrix(re))),
       nobs = nrow(data), ngrps = length(unique(getGroups(m))),
       warnings = I(fit$warnings), messages = I(fit$messages))
}
pql <- list(
  contraception = c(list(data = "contraception.csv"),
    pql_fit(use ~ age + I(age^2) + urban + livch, ~ 1 | district, contraception,
            label = "use ~ age + I(age^2) + urban + livch, random = ~1|district")),
  cbpp = c(list(data = "cbpp.csv"),
    pql_fit(incidence / size ~ period, ~ 1 | herd, cbpp, weights = TRUE,
            label = "incidence/size ~ period, random = ~1|herd, weights = size")))

out <- list(
  generated_by = "tests/reference/lme4_glmm.R",
  software = software_block(),
  notes = I(c(
    "Data read from mlteach/data/*.csv; grouping columns are factors with sorted (R default) level order (cbpp herd: '1','10','11',...,'9').",
    "Each glmer case has a 'default' fit (glmerControl() as shipped) and a 'best' fit: the highest logLik over the optimizer settings in 'candidates' (best_control names it).",
    "loglik = logLik(m) from lme4.  For nAGQ > 1 lme4 omits the saturated-model log-likelihood from logLik for non-Bernoulli responses (binomial counts, Poisson): loglik_lme4_plus_saturated = loglik + saturated_loglik is the full log-likelihood.  For nAGQ = 1 (Laplace) and for 0/1 responses logLik is the full (approximate) log-likelihood.",
    "loglik_exact: the marginal log-likelihood at the fit's own (beta, sd), by numerical integration (stats::integrate, rel.tol 1e-12), including all constants; loglik - loglik_exact is the Laplace / quadrature approximation error at those parameters.",
    "se: sqrt(diag(vcov(m))) (lme4 default, finite-difference Hessian of the deviance over (theta, beta)); se_rx: vcov(m, use.hessian = FALSE) (from the PIRLS RX factor at the optimum, i.e. treating theta as known).",
    "grouseticks uses the centred column cHEIGHT; grouseticks_rawheight keeps raw HEIGHT and documents lme4's warnings.",
    "glmmPQL: MASS::glmmPQL with family binomial; pql_iterations counts MASS's 'iteration k' messages; residual_scale is m$sigma as MASS reports it (estimated, not fixed at 1).")),
  cases = cases,
  quadrature_nodes = list(data = "contraception.csv", formula = specs$contraception$formula,
                          nodes = I(nodes), fits = quad),
  glmmPQL = pql)
write_json_full(out, file.path(OUT_DIR, "lme4_glmm.json"))
