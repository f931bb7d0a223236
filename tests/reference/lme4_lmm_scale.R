## Reference values for linear mixed models whose random-slope covariate is badly scaled
## (mlteach.lmm's optimiser must not depend on the units of a random slope).
## Run from the repository root:   Rscript tests/reference/lme4_lmm_scale.R
## Writes tests/reference/lme4_lmm_scale.json and tests/reference/lme4_lmm_scale.Rout.txt
##
## Each case derives one column from a project CSV (`derived`: new = from * by, computed the
## same way in Python, so the doubles are identical) and is fitted by REML and ML with
##   * `default`:  lmer() as shipped (lmerControl(): nloptwrap / BOBYQA from theta = lme4's start);
##   * candidates: the same model with other optimizers (bobyqa, Nelder_Mead, nlminbwrap), and
##     refitted on the *well-scaled* column (`from` itself, whose theta maps back exactly:
##     the slope's row of T is multiplied by `by`; the REML log-likelihood shifts by
##     p_scaled * log(by), the ML one not at all -- see `loglik_shift` below);
##   * `start_well_scaled`(`_bobyqa`): lme4 on the badly scaled data again, started at the
##     well-scaled refit's theta mapped back (lme4's own answer at the true optimum: on these
##     data its optimizers from its default start stop short, by up to 3 log-likelihood units);
##   * `best`:     the full extraction of the candidate with the highest logLik *on the
##     badly scaled data* (the rescaled refit itself is checked against it, not chosen).
## The extractor is common.R's extract_lmm (as in lme4_lmm.R), with fitted values and without
## lme4_lmm.R's deviance, devcomp and optimizer-warning diagnostics.
source(file.path("tests", "reference", "common.R"))
suppressPackageStartupMessages(library(lme4))

sink(file.path(OUT_DIR, "lme4_lmm_scale.Rout.txt"), split = TRUE)
on.exit(sink(), add = TRUE)
banner("lme4_lmm_scale.R  --  ", format(Sys.time()))
print(sessionInfo())

## ---------------------------------------------------------------- cases ----
specs <- list(
  grunfeld_value = list(data = "grunfeld.csv", group = "firm",
    formula = "inv ~ value_m + capital + (1 + value_m | firm)",
    derived = list(new = "value_m", from = "value", by = 1),
    well_scaled = list(new = "value_m", from = "value", by = 1 / 1000)),
  sleep_minutes = list(data = "sleepstudy.csv", group = "Subject",
    formula = "Reaction ~ Minutes + (Minutes | Subject)",
    derived = list(new = "Minutes", from = "Days", by = 1440),
    well_scaled = list(new = "Minutes", from = "Days", by = 1)),
  hsb_ses1000 = list(data = "hsb82.csv", group = "school",
    formula = "mAch ~ ses1000 + (ses1000 | school)",
    derived = list(new = "ses1000", from = "ses", by = 1000),
    well_scaled = list(new = "ses1000", from = "ses", by = 1))
)
controls <- list(
  bobyqa = lmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5)),
  Nelder_Mead = lmerControl(optimizer = "Nelder_Mead", optCtrl = list(maxfun = 1e5)),
  nlminbwrap = lmerControl(optimizer = "nlminbwrap"))

derive <- function(d, dv) { d[[dv$new]] <- d[[dv$from]] * dv$by; d }
fit_one <- function(formula, d, reml, control = lmerControl())
  capture_fit(lmer(as.formula(formula), data = d, REML = reml, control = control))

cases <- list()
for (nm in names(specs)) {
  sp <- specs[[nm]]
  raw <- load_data(sp$data)
  d <- derive(raw, sp$derived)
  d_well <- derive(raw, sp$well_scaled)
  ## the well-scaled column is the badly scaled one times `ratio`
  ratio <- sp$well_scaled$by / sp$derived$by
  for (reml in c(TRUE, FALSE)) {
    cname <- paste0(nm, if (reml) "_reml" else "_ml")
    banner(cname, ":  ", sp$formula, "   REML = ", reml, "   ", sp$derived$new, " = ",
           sp$derived$from, " * ", sp$derived$by)
    default <- fit_one(sp$formula, d, reml)
    fits <- c(list(default = default), lapply(controls, function(ct) fit_one(sp$formula, d, reml, ct)))
    well <- fit_one(sp$formula, d_well, reml)
    ## lme4 again on the badly scaled data, started at the well-scaled optimum mapped back:
    ## Z_bad = Z_well diag(1, 1/ratio), so T_bad = diag(1, ratio) T_well (the slope's row of T).
    th_well <- getME(well$value, "theta")
    th_start <- th_well * ifelse(grepl(sp$derived$new, names(th_well), fixed = TRUE), ratio, 1)
    fits$start_well_scaled <- capture_fit(lmer(as.formula(sp$formula), data = d, REML = reml,
                                               start = list(theta = unname(th_start))))
    fits$start_well_scaled_bobyqa <- capture_fit(lmer(as.formula(sp$formula), data = d, REML = reml,
                                                      start = list(theta = unname(th_start)),
                                                      control = controls$bobyqa))
    lls <- sapply(fits, function(f) as.numeric(logLik(f$value)))
    best_name <- names(which.max(lls))
    p <- length(fixef(well$value))
    ## REML: the restricted log-likelihood carries -log|R_X| = -log|X'X|/2, which changes by
    ## -log|ratio| per rescaled fixed-effect column; ML is unchanged.  shift = well - badly scaled.
    n_scaled_fixed <- sum(grepl(sp$derived$new, names(fixef(well$value)), fixed = TRUE))
    shift <- if (reml) -n_scaled_fixed * log(abs(ratio)) else 0
    well_ll_mapped <- as.numeric(logLik(well$value)) - shift
    for (f in names(fits)) {
      cat("\n--", f, "--\n")
      if (length(fits[[f]]$warnings)) cat("WARNINGS:\n", paste(" ", fits[[f]]$warnings, collapse = "\n"), "\n")
      if (length(fits[[f]]$messages)) cat("MESSAGES:\n", paste(" ", fits[[f]]$messages, collapse = "\n"), "\n")
      cat("logLik: "); print(logLik(fits[[f]]$value), digits = 15)
      cat("theta: "); print(getME(fits[[f]]$value, "theta"), digits = 15)
    }
    cat("\n-- best:", best_name, "--\n")
    print(summary(fits[[best_name]]$value, correlation = TRUE))
    cat("\n-- refit on the well-scaled column (", sp$well_scaled$from, " * ", sp$well_scaled$by, ") --\n")
    print(summary(well$value))
    cat("logLik mapped back to the badly scaled data: "); print(well_ll_mapped, digits = 15)
    cases[[cname]] <- list(
      data = sp$data, formula = sp$formula, reml = reml, derived = sp$derived,
      default = extract_lmm(default$value, default, with_fitted = TRUE, diagnostics = FALSE),
      best = extract_lmm(fits[[best_name]]$value, fits[[best_name]], with_fitted = TRUE,
                         diagnostics = FALSE),
      best_optimizer = best_name,
      candidates = lapply(fits, function(f) list(
        loglik = as.numeric(logLik(f$value)), theta = dict(getME(f$value, "theta")),
        isSingular = isSingular(f$value), warnings = I(f$warnings), messages = I(f$messages))),
      well_scaled = list(derived = sp$well_scaled, loglik = as.numeric(logLik(well$value)),
                         loglik_shift = shift, loglik_mapped = well_ll_mapped,
                         theta = dict(getME(well$value, "theta")),
                         fixef = dict(fixef(well$value)), isSingular = isSingular(well$value),
                         warnings = I(well$warnings), messages = I(well$messages)))
  }
}

out <- list(
  generated_by = "tests/reference/lme4_lmm_scale.R",
  software = software_block(),
  notes = I(c(
    "Data read from mlteach/data/*.csv; grouping columns are factors with sorted (R default) level order (grunfeld firm is numeric, lmer makes it a factor in numeric order).",
    "derived: the column `new` = `from` * `by`, added before fitting.",
    "default: lmer() with lmerControl() as shipped; best: the optimizer with the highest logLik on the same data (see best_optimizer and candidates).",
    "well_scaled: the same model refitted on the well-scaled column; loglik_mapped = its logLik minus loglik_shift, comparable with best$loglik.",
    "loglik is logLik(m): the REML log-likelihood for REML fits, the ML log-likelihood for ML fits.",
    "condvar.full: the full k x k conditional covariance of the random effects per level.",
    "fitted: fitted(m), in row order of the data.")),
  cases = cases)
write_json_full(out, file.path(OUT_DIR, "lme4_lmm_scale.json"))
