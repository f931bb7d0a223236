## Reference values for likelihood-ratio tests of nested lmer fits (mlteach.lrt).
## Run from the repository root:   Rscript tests/reference/lme4_lrt.R
## Writes tests/reference/lme4_lrt.json and tests/reference/lme4_lrt.Rout.txt
## anova() gives the naive chi-square test; the boundary-corrected p-value of the
## 50:50 chi-square mixture (Self & Liang 1987; Stram & Lee 1994) is computed here with
## pchisq, independently of the Python code: p = 0.5 P(chi2_{df-1} >= x) + 0.5 P(chi2_df >= x),
## with chi2_0 a point mass at zero.
source(file.path("tests", "reference", "common.R"))
suppressPackageStartupMessages(library(lme4))

sink(file.path(OUT_DIR, "lme4_lrt.Rout.txt"), split = TRUE)
on.exit(sink(), add = TRUE)
banner("lme4_lrt.R  --  ", format(Sys.time()))
print(sessionInfo())

mix_p <- function(x, df) {
  lower <- if (df - 1 == 0) as.numeric(x <= 0) else pchisq(x, df - 1, lower.tail = FALSE)
  0.5 * lower + 0.5 * pchisq(x, df, lower.tail = FALSE)
}

comparisons <- list(
  pastes_nested_variance = list(data = "pastes.csv", reml = TRUE,
    smaller = "strength ~ 1 + (1 | batch)", larger = "strength ~ 1 + (1 | batch/cask)",
    n_added_variances = 1),
  sleep_fixed_days = list(data = "sleepstudy.csv", reml = FALSE,
    smaller = "Reaction ~ 1 + (1 | Subject)", larger = "Reaction ~ Days + (1 | Subject)",
    n_added_variances = 0),
  sleep_uncorr_vs_corr = list(data = "sleepstudy.csv", reml = FALSE,
    smaller = "Reaction ~ Days + (Days || Subject)", larger = "Reaction ~ Days + (Days | Subject)",
    n_added_variances = 0),
  sleep_ri_vs_uncorr = list(data = "sleepstudy.csv", reml = FALSE,
    smaller = "Reaction ~ Days + (1 | Subject)", larger = "Reaction ~ Days + (Days || Subject)",
    n_added_variances = 1))

out_cmp <- list()
for (nm in names(comparisons)) {
  sp <- comparisons[[nm]]
  d <- load_data(sp$data)
  m0 <- lmer(as.formula(sp$smaller), data = d, REML = sp$reml)
  m1 <- lmer(as.formula(sp$larger), data = d, REML = sp$reml)
  a <- as.data.frame(anova(m0, m1, refit = FALSE))
  banner(nm, ":  ", sp$smaller, "  vs  ", sp$larger, "   REML = ", sp$reml)
  print(anova(m0, m1, refit = FALSE), digits = 12)
  x <- a$Chisq[2]; df <- a$Df[2]
  out_cmp[[nm]] <- list(data = sp$data, reml = sp$reml, smaller = sp$smaller, larger = sp$larger,
    npar = I(a$npar), logLik = I(a$logLik), AIC = I(a$AIC), BIC = I(a$BIC),
    deviance = I(a$deviance), Chisq = x, Df = df, p_naive = a[["Pr(>Chisq)"]][2],
    n_added_variances = sp$n_added_variances,
    p_boundary = if (sp$n_added_variances == 1) mix_p(x, df) else NULL)
  str(out_cmp[[nm]])
}

write_json_full(list(generated_by = "tests/reference/lme4_lrt.R", software = software_block(),
                     notes = I(c("anova(m0, m1, refit = FALSE): REML fits compared by their REML log-likelihoods.",
                                 "p_boundary: 50:50 chi-square mixture computed with pchisq (only when one variance is added).")),
                     comparisons = out_cmp),
                file.path(OUT_DIR, "lme4_lrt.json"))
