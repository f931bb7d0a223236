## Reference values for linear mixed models from lme4::lmer.
## Run from the repository root:   Rscript tests/reference/lme4_lmm.R
## Writes tests/reference/lme4_lmm.json and tests/reference/lme4_lmm.Rout.txt
source(file.path("tests", "reference", "common.R"))
suppressPackageStartupMessages(library(lme4))

sink(file.path(OUT_DIR, "lme4_lmm.Rout.txt"), split = TRUE)
on.exit(sink(), add = TRUE)
banner("lme4_lmm.R  --  ", format(Sys.time()))
print(sessionInfo())

## ---------------------------------------------------------------- cases ----
sleep_sub_5_8 <- function(d) subset(d, Days >= 5 & Days <= 8)
specs <- list(
  sleep_ri      = list(data = "sleepstudy.csv", formula = "Reaction ~ Days + (1 | Subject)"),
  sleep_rs      = list(data = "sleepstudy.csv", formula = "Reaction ~ Days + (Days | Subject)"),
  sleep_uncorr  = list(data = "sleepstudy.csv", formula = "Reaction ~ Days + (Days || Subject)"),
  sleep_noint   = list(data = "sleepstudy.csv", formula = "Reaction ~ Days + (0 + Days | Subject)"),
  hsb_ri        = list(data = "hsb82.csv", formula = "mAch ~ cses + meanses + (1 | school)"),
  hsb_rs        = list(data = "hsb82.csv", formula = "mAch ~ cses * sector + meanses + (cses | school)"),
  dyestuff      = list(data = "dyestuff.csv", formula = "Yield ~ 1 + (1 | Batch)"),
  dyestuff2_singular = list(data = "dyestuff2.csv", formula = "Yield ~ 1 + (1 | Batch)"),
  pastes_nested = list(data = "pastes.csv", formula = "strength ~ 1 + (1 | batch/cask)"),
  pastes_nested_explicit = list(data = "pastes.csv",
                                formula = "strength ~ 1 + (1 | batch) + (1 | batch:cask)"),
  penicillin_crossed = list(data = "penicillin.csv",
                            formula = "diameter ~ 1 + (1 | plate) + (1 | sample)"),
  hsb_sx        = list(data = "hsb82.csv", formula = "mAch ~ ses + sx + (1 | school)"),
  sleep_singular_rs = list(data = "sleepstudy.csv", formula = "Reaction ~ Days + (Days | Subject)",
                           subset = "Days >= 5 & Days <= 8", subset_fun = sleep_sub_5_8)
)

## The extractor (extract_lmm) is in common.R, shared with lme4_lmm_scale.R.

## --------------------------------------------------------------- fitting ---
cases <- list()
fits <- list()
for (nm in names(specs)) {
  sp <- specs[[nm]]
  d <- load_data(sp$data)
  if (!is.null(sp$subset_fun)) d <- sp$subset_fun(d)
  for (reml in c(TRUE, FALSE)) {
    cname <- paste0(nm, if (reml) "_reml" else "_ml")
    fit <- capture_fit(lmer(as.formula(sp$formula), data = d, REML = reml))
    m <- fit$value
    fits[[cname]] <- m
    banner(cname, ":  ", sp$formula, "   REML = ", reml,
           if (!is.null(sp$subset)) paste0("   subset: ", sp$subset) else "")
    if (length(fit$warnings)) cat("WARNINGS:\n", paste(" ", fit$warnings, collapse = "\n"), "\n")
    if (length(fit$messages)) cat("MESSAGES:\n", paste(" ", fit$messages, collapse = "\n"), "\n")
    print(summary(m, correlation = TRUE))
    cat("\ntheta:\n"); print(getME(m, "theta"), digits = 15)
    cat("logLik: "); print(logLik(m), digits = 15)
    cat("fixef:\n"); print(fixef(m), digits = 15)
    cat("isSingular:", isSingular(m), "\n")
    cat("ranef (first rows):\n"); print(lapply(ranef(m), head))
    cases[[cname]] <- list(data = sp$data, formula = sp$formula, reml = reml,
                           subset = sp$subset, results = extract_lmm(m, fit))
  }
}

## Sanity check on the singular random-slope case.
stopifnot(isSingular(fits$sleep_singular_rs_reml), isSingular(fits$sleep_singular_rs_ml),
          isSingular(fits$dyestuff2_singular_reml), isSingular(fits$dyestuff2_singular_ml))

## Nested vs explicit nesting: identical fits
banner("pastes: (1|batch/cask) vs (1|batch) + (1|batch:cask)")
pastes_equiv <- lapply(c("reml", "ml"), function(s) {
  a <- fits[[paste0("pastes_nested_", s)]]; b <- fits[[paste0("pastes_nested_explicit_", s)]]
  r <- list(loglik_abs_diff = abs(as.numeric(logLik(a)) - as.numeric(logLik(b))),
            fixef_max_abs_diff = max(abs(fixef(a) - fixef(b))),
            sd_max_abs_diff = max(abs(sort(as.data.frame(VarCorr(a))$sdcor) -
                                      sort(as.data.frame(VarCorr(b))$sdcor))),
            group_names_nested = I(names(ngrps(a))), group_names_explicit = I(names(ngrps(b))))
  print(r); r
})
names(pastes_equiv) <- c("reml", "ml")

## ------------------------------------------------------------------ LRT ----
banner("LRT: sleep_ri vs sleep_rs")
lrt_tab <- function(a, models) {
  a <- as.data.frame(a)
  list(models = I(models), npar = I(a$npar), AIC = I(a$AIC), BIC = I(a$BIC),
       logLik = I(a$logLik), deviance = I(a$deviance),
       Chisq = a$Chisq[2], Df = a$Df[2], p_value = a[["Pr(>Chisq)"]][2])
}
a_ml <- anova(fits$sleep_ri_ml, fits$sleep_rs_ml); print(a_ml, digits = 12)
## default anova() on REML fits refits them by ML first -> same as a_ml
a_reml_refit <- suppressMessages(anova(fits$sleep_ri_reml, fits$sleep_rs_reml)); print(a_reml_refit, digits = 12)
a_reml <- anova(fits$sleep_ri_reml, fits$sleep_rs_reml, refit = FALSE); print(a_reml, digits = 12)
lrt <- list(
  description = "sleep_ri vs sleep_rs: Reaction ~ Days + (1|Subject) vs Reaction ~ Days + (Days|Subject)",
  ml = lrt_tab(a_ml, c("sleep_ri_ml", "sleep_rs_ml")),
  reml_refit_ml = lrt_tab(a_reml_refit, c("sleep_ri_reml (refit by ML)", "sleep_rs_reml (refit by ML)")),
  reml_no_refit = lrt_tab(a_reml, c("sleep_ri_reml", "sleep_rs_reml")))
## anova reports a deviance column; for the refit=FALSE table this is the
## REML criterion (-2 * REML log-likelihood).

## ------------------------------------------------- balanced one-way ANOVA ----
banner("Balanced one-way ANOVA (method of moments) variance components")
anova_mm <- function(file) {
  d <- load_data(file)
  a <- anova(lm(Yield ~ Batch, d))
  n <- unique(table(d$Batch)); stopifnot(length(n) == 1)
  msa <- a["Batch", "Mean Sq"]; mse <- a["Residuals", "Mean Sq"]
  s2b <- (msa - mse) / n
  print(a, digits = 12)
  r <- list(data = file, n_per_group = n, n_groups = nlevels(d$Batch),
            MS_between = msa, MS_within = mse, df_between = a["Batch", "Df"],
            df_within = a["Residuals", "Df"],
            sigma2_between = s2b, sigma2_between_truncated = max(s2b, 0),
            sigma2_within = mse,
            F = a["Batch", "F value"], p_value = a["Batch", "Pr(>F)"],
            grand_mean = mean(d$Yield))
  str(r); r
}
balanced_anova <- list(dyestuff = anova_mm("dyestuff.csv"), dyestuff2 = anova_mm("dyestuff2.csv"))
## For balanced data the REML estimates equal the ANOVA estimates when the
## latter are non-negative:
balanced_anova$dyestuff$reml_sigma2_between <- as.numeric(VarCorr(fits$dyestuff_reml)$Batch)
balanced_anova$dyestuff$reml_sigma2_within <- sigma(fits$dyestuff_reml)^2
balanced_anova$dyestuff2$reml_sigma2_between <- as.numeric(VarCorr(fits$dyestuff2_singular_reml)$Batch)
balanced_anova$dyestuff2$reml_sigma2_within <- sigma(fits$dyestuff2_singular_reml)^2

out <- list(
  generated_by = "tests/reference/lme4_lmm.R",
  software = software_block(),
  notes = I(c(
    "Data read from mlteach/data/*.csv; grouping columns are factors with sorted (R default) level order.",
    "loglik is logLik(m): the REML log-likelihood for REML fits, the ML log-likelihood for ML fits.",
    "sleep_singular_rs uses the subset Days >= 5 & Days <= 8 of sleepstudy (72 rows).",
    "condvar.diag: diagonal of the conditional (posterior) covariance of the random effects per level; condvar.full: the full k x k matrix per level (k > 1 only). For || models lme4 reports separate blocks and no cross-block covariance.")),
  cases = cases,
  pastes_equivalence = pastes_equiv,
  lrt = lrt,
  balanced_anova = balanced_anova)
write_json_full(out, file.path(OUT_DIR, "lme4_lmm.json"))
