## Extra references for mlteach.glmm (issue #5): the textbook Laplace approximation at the
## exact conditional modes, and what glmer's nAGQ = 1 deviance adds to it.
## Run from the repository root:   Rscript tests/reference/lme4_glmm_extra.R
## Writes tests/reference/lme4_glmm_extra.json and tests/reference/lme4_glmm_extra.Rout.txt
##
## Why: glmer's Laplace deviance (nAGQ = 1) is ldL2 + u'u + aic, where ldL2 comes from the
## Cholesky factor L that lme4's PIRLS stores.  That factor is built from the working weights
## *before* PIRLS's last step, so ldL2 is not log det(I + theta^2 Z'W(u_hat)Z) at the final
## conditional modes u_hat (see 'ldL2_lme4' vs 'ldL2_at_modes' below).  The Laplace
## approximation as written in the book uses the curvature at the mode.  Here that
## approximation is computed independently in R (per-group modes by optimize(), not by
## Newton's method) and maximised with optim(), so mlteach's Laplace fit can be checked
## against the textbook definition as well as against glmer.
source(file.path("tests", "reference", "common.R"))
suppressPackageStartupMessages(library(lme4))

sink(file.path(OUT_DIR, "lme4_glmm_extra.Rout.txt"), split = TRUE)
on.exit(sink(), add = TRUE)
banner("lme4_glmm_extra.R  --  ", format(Sys.time()))
print(sessionInfo())

contraception <- load_data("contraception.csv")
contraception$use <- as.integer(contraception$use == "Y")
cbpp <- load_data("cbpp.csv")
grouseticks <- load_data("grouseticks.csv")

specs <- list(
  contraception = list(data = contraception, family = binomial,
                       formula = use ~ age + I(age^2) + urban + livch + (1 | district)),
  cbpp = list(data = cbpp, family = binomial,
              formula = cbind(incidence, size - incidence) ~ period + (1 | herd)),
  grouseticks = list(data = grouseticks, family = poisson,
                     formula = TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)))

## Laplace approximation of log L(beta, sd) at the exact modes, all constants included:
## sum_j [ sum_i log f(y_i | u_j) - u_j^2 / 2 - log(1 + sd^2 sum_i v_i(u_j)) / 2 ],  b = sd * u.
make_laplace <- function(m) {
  X <- getME(m, "X"); g <- getME(m, "flist")[[1]]
  y <- m@resp$y; w <- m@resp$weights; fam <- family(m)$family
  idx <- split(seq_along(g), g)
  cond <- switch(fam,
    binomial = function(eta, i) dbinom(round(y[i] * w[i]), round(w[i]), plogis(eta), log = TRUE),
    poisson = function(eta, i) dpois(y[i], exp(eta), log = TRUE))
  vfun <- switch(fam,
    binomial = function(eta, i) w[i] * plogis(eta) * (1 - plogis(eta)),
    poisson = function(eta, i) exp(eta))
  function(beta, sd, details = FALSE) {
    eta0 <- as.numeric(X %*% beta)
    parts <- vapply(idx, function(i) {
      pen <- function(u) sum(cond(eta0[i] + sd * u, i)) - u^2 / 2
      u <- optimize(function(u) -pen(u), c(-15, 15), tol = 1e-13)$minimum
      h <- 1 + sd^2 * sum(vfun(eta0[i] + sd * u, i))
      c(pen(u) - log(h) / 2, u, log(h))
    }, numeric(3))
    if (details) return(parts)
    sum(parts[1, ])
  }
}

out_cases <- list()
for (nm in names(specs)) {
  sp <- specs[[nm]]
  banner(nm)
  m <- glmer(sp$formula, data = sp$data, family = sp$family,
             control = glmerControl(optimizer = "nloptwrap",
               optCtrl = list(algorithm = "NLOPT_LN_BOBYQA", xtol_rel = 1e-12, ftol_rel = 1e-14,
                              ftol_abs = 1e-14, maxeval = 1e5)))
  lap <- make_laplace(m)
  b0 <- fixef(m); s0 <- as.numeric(getME(m, "theta"))
  ## what glmer's deviance holds at its own optimum
  dd <- glmer(sp$formula, data = sp$data, family = sp$family, devFunOnly = TRUE)
  dev_lme4 <- dd(c(s0, b0))
  e <- environment(dd)
  g <- getME(m, "flist")[[1]]
  wts <- e$resp$sqrtWrkWt()^2
  ldL2_modes <- sum(log(1 + s0^2 * as.numeric(tapply(wts, g, sum))))
  lap_at_lme4 <- lap(b0, s0)
  cat(sprintf("glmer logLik %.10f | textbook Laplace at glmer's estimates %.10f\n",
              -dev_lme4 / 2, lap_at_lme4))
  cat(sprintf("ldL2 lme4 %.8f | log det at the final modes' weights %.8f\n", e$pp$ldL2(),
              ldL2_modes))
  ## maximise the textbook Laplace approximation (BFGS, numerical gradient, scaled by SEs)
  se <- sqrt(diag(as.matrix(vcov(m))))
  par0 <- c(b0, s0)
  scale <- c(se, 0.05)
  f <- function(p) -lap(p[seq_along(b0)], p[length(p)])
  t0 <- Sys.time()
  opt <- optim(par0, f, method = "BFGS",
               control = list(parscale = scale, reltol = 1e-15, maxit = 1000, ndeps = rep(1e-4, length(par0))))
  opt2 <- optim(opt$par, f, method = "Nelder-Mead",
                control = list(parscale = scale / 100, reltol = 1e-15, maxit = 5000))
  best <- if (opt2$value < opt$value) opt2 else opt
  cat("optim convergence:", opt$convergence, opt2$convergence, " time:",
      format(Sys.time() - t0), "\n")
  beta <- best$par[seq_along(b0)]; names(beta) <- names(b0)
  sd <- abs(best$par[length(best$par)])
  print(rbind(glmer = c(b0, sd = s0), textbook_laplace = c(beta, sd = sd)), digits = 10)
  cat(sprintf("textbook Laplace maximum %.10f (glmer's logLik %.10f)\n", -best$value, -dev_lme4 / 2))
  det <- lap(beta, sd, details = TRUE)
  out_cases[[nm]] <- list(
    formula = paste(deparse(sp$formula), collapse = " "), family = sp$family()$family,
    glmer_fixef = dict(b0), glmer_sd = s0,
    glmer_loglik = -dev_lme4 / 2,
    laplace_at_glmer = lap_at_lme4,
    ldL2_lme4 = e$pp$ldL2(), ldL2_at_modes = ldL2_modes,
    laplace_fixef = dict(beta), laplace_sd = sd, laplace_loglik = -best$value,
    laplace_modes = list(levels = I(levels(g)), b = I(sd * det[2, ])),
    optim = list(bfgs_convergence = opt$convergence, nelder_mead_convergence = opt2$convergence,
                 bfgs_value = opt$value, nelder_mead_value = opt2$value))
}

out <- list(
  generated_by = "tests/reference/lme4_glmm_extra.R",
  software = software_block(),
  notes = I(c(
    "laplace_*: the Laplace approximation at the exact conditional modes (per-group optimize(), tol 1e-13), maximised by optim (BFGS then Nelder-Mead, reltol 1e-15); loglik includes all constants.",
    "glmer_*: glmer nAGQ = 1 with nloptwrap BOBYQA at tight tolerances; glmer_loglik = -devfun/2 at its estimates.",
    "laplace_at_glmer: the textbook Laplace log-likelihood at glmer's estimates; glmer_loglik differs from it because lme4's ldL2 (ldL2_lme4) is from the Cholesky factor PIRLS built before its last step, not at the final modes (ldL2_at_modes).",
    "laplace_modes.b: conditional modes b_j = sd * u_j at the textbook-Laplace optimum, by level.")),
  cases = out_cases)
write_json_full(out, file.path(OUT_DIR, "lme4_glmm_extra.json"))
