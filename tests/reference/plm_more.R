## More plm reference values for mlteach.panel, on linearmodels' wage_panel (Vella & Verbeek
## 1998: 545 men, 1980-1987): balanced, unbalanced with gaps and unequal T_i, time-invariant
## regressors (educ, black), year dummies in a one-way within model, cluster-robust vcovHC
## (arellano HC0 / HC1 / sss) and Hausman tests with more regressors.
## The data are not in mlteach/data; export them first, from the repository root:
##   .venv/bin/python -c "from linearmodels.datasets import wage_panel; wage_panel.load().to_csv('/tmp/wage_panel.csv', index=False)"
##   Rscript tests/reference/plm_more.R
## Writes tests/reference/plm_more.json and tests/reference/plm_more.Rout.txt
source(file.path("tests", "reference", "common.R"))
suppressPackageStartupMessages(library(plm))

sink(file.path(OUT_DIR, "plm_more.Rout.txt"), split = TRUE)
on.exit(sink(), add = TRUE)
banner("plm_more.R  --  ", format(Sys.time()))
print(sessionInfo())

wage <- read.csv("/tmp/wage_panel.csv")
stopifnot(nrow(wage) == 4360)
## Unbalanced: man nr keeps the years up to 1987 - (nr %% 3), without the years where
## (nr + 3*year) %% 7 == 0 (gaps inside the series).
keep <- wage$year <= 1987 - wage$nr %% 3 & (wage$nr + 3 * wage$year) %% 7 != 0
wage_unb <- wage[keep, ]; rownames(wage_unb) <- NULL

ht <- function(h) list(statistic = unname(h$statistic), df = unname(as.numeric(h$parameter)),
                       p_value = h$p.value)
vc_entry <- function(m, type) {
  r <- capture_fit(tryCatch(vcovHC(m, method = "arellano", type = type, cluster = "group"),
                            error = function(e) e))
  if (inherits(r$value, "error")) return(list(available = FALSE, error = conditionMessage(r$value)))
  V <- as.matrix(r$value)
  list(available = TRUE, vcov = vmat(V), se = dict(sqrt(diag(V))), warnings = I(r$warnings))
}
fit_entry <- function(m, robust = TRUE) {
  V <- as.matrix(vcov(m))
  s <- summary(m)
  out <- list(coefficients = dict(coef(m)), se = dict(sqrt(diag(V))), vcov = vmat(V),
       tstat = dict(s$coefficients[, 3]),
       df_residual = df.residual(m), nobs = nobs(m),
       rsq = unname(s$r.squared["rsq"]), adjrsq = unname(s$r.squared["adjrsq"]),
       ssr = sum(residuals(m)^2),
       aliased = I(names(m$aliased)[m$aliased]))
  if (robust) for (type in c("HC0", "HC1", "sss")) out[[paste0("vcovHC_arellano_", type)]] <- vc_entry(m, type)
  if (m$args$model == "random") {
    ec <- ercomp(m)
    out$sigma2 <- dict(ec$sigma2)
    th <- ec$theta
    out$theta <- if (is.list(th) || length(th) > 1) dict(tapply(as.numeric(if (is.list(th)) th$id else th), index(m)[[1]], function(z) z[1])) else unname(th)
  }
  out
}
fit_all <- function(fm, pd, models = c("pooling", "within", "within_twoways", "between", "fd", "random_swar")) {
  res <- list()
  for (nm in models) {
    r <- capture_fit(switch(nm,
      pooling = plm(fm, data = pd, model = "pooling"),
      within = plm(fm, data = pd, model = "within"),
      within_twoways = plm(fm, data = pd, model = "within", effect = "twoways"),
      between = plm(fm, data = pd, model = "between"),
      fd = plm(fm, data = pd, model = "fd"),
      random_swar = plm(fm, data = pd, model = "random", random.method = "swar")))
    banner(deparse(fm), " : ", nm); print(summary(r$value))
    e <- fit_entry(r$value, robust = nm != "between")
    e$warnings <- I(r$warnings); e$messages <- I(r$messages)
    res[[nm]] <- e
  }
  res
}
hausman_all <- function(fm, pd, mods) {
  w <- plm(fm, data = pd, model = "within"); r <- plm(fm, data = pd, model = "random", random.method = "swar")
  h1 <- phtest(w, r); print(h1)
  h2 <- phtest(fm, data = pd, method = "aux",
               vcov = function(x) vcovHC(x, method = "arellano", type = "HC0")); print(h2)
  h3 <- phtest(fm, data = pd, method = "aux"); print(h3)
  out <- list(classic = ht(h1), aux_arellano_HC0 = ht(h2), aux_classical = ht(h3))
  ## plm 2.6-2's phtest(method = "aux") takes the tested coefficients by position,
  ## (nvars + 2):(2 nvars + 1) with nvars the number of within-varying regressors; with a
  ## time-invariant regressor in the model the random-effects part has more than nvars + 1
  ## columns and that range picks the wrong coefficients. aux_*_tilde repeats plm's
  ## auxiliary regression and tests the ".tilde" (within-demeaned) coefficients by name.
  re_mod <- plm(fm, data = pd, model = "random", random.method = "swar")
  fe_mod <- plm(fm, data = pd, model = "within")
  reY <- pmodel.response(re_mod)
  reX <- model.matrix(re_mod, cstcovar.rm = "intercept")
  feX <- model.matrix(fe_mod, cstcovar.rm = "all")
  colnames(feX) <- paste(colnames(feX), "tilde", sep = ".")
  out$aux_positional_mismatch <- ncol(reX) != ncol(feX)
  if (out$aux_positional_mismatch) {
    ad <- pdata.frame(cbind(index(pd), reY, reX, feX))
    auxfm <- as.formula(paste("reY ~", paste(colnames(reX), collapse = "+"), "+",
                              paste(colnames(feX), collapse = "+")))
    aux <- plm(auxfm, data = ad, model = "pooling")
    tl <- grep("\\.tilde$", names(coef(aux)), value = TRUE)
    wald <- function(V) { b <- coef(aux)[tl]; s <- as.numeric(crossprod(b, solve(V[tl, tl], b)))
      list(statistic = s, df = length(tl), p_value = pchisq(s, length(tl), lower.tail = FALSE),
           terms = I(tl)) }
    out$aux_arellano_HC0_tilde <- wald(vcovHC(aux, method = "arellano", type = "HC0"))
    out$aux_classical_tilde <- wald(vcov(aux))
    banner("aux test on the .tilde terms"); str(out[c("aux_arellano_HC0_tilde", "aux_classical_tilde")])
  }
  out
}
fd_gaps <- function(pd) {
  m <- plm(diff(lwage) ~ diff(expersq) + diff(married) + diff(union), data = pd, model = "pooling")
  print(summary(m))
  V <- as.matrix(vcov(m)); cf <- coef(m)
  nm <- c("(Intercept)", "expersq", "married", "union")
  names(cf) <- nm; dimnames(V) <- list(nm, nm)
  Vh <- vcovHC(m, method = "arellano", type = "HC0"); dimnames(Vh) <- list(nm, nm)
  list(coefficients = dict(cf), se = dict(sqrt(diag(V))), df_residual = df.residual(m),
       nobs = nobs(m), se_arellano_HC0 = dict(sqrt(diag(Vh))))
}

pw <- pdata.frame(wage, index = c("nr", "year"))
pu <- pdata.frame(wage_unb, index = c("nr", "year"))
f1 <- lwage ~ expersq + married + union
f_ti <- lwage ~ expersq + married + union + educ + black
f_yr <- lwage ~ expersq + married + union + factor(year)
f_more <- lwage ~ exper + expersq + married + union + hours + hisp

res <- list()
res$wage <- list(data = "wage_panel", nobs = nrow(wage), lwage_sum = sum(wage$lwage),
  formula = "lwage ~ expersq + married + union", models = fit_all(f1, pw),
  hausman = hausman_all(f1, pw))
res$wage_unbalanced <- list(data = "wage_panel",
  subset_rule = "keep rows with year <= 1987 - nr %% 3 and (nr + 3*year) %% 7 != 0",
  nobs = nrow(wage_unb), lwage_sum = sum(wage_unb$lwage),
  rows_per_group = dict(table(table(wage_unb$nr))),
  formula = "lwage ~ expersq + married + union", models = fit_all(f1, pu),
  fd_skip_gaps = fd_gaps(pu), hausman = hausman_all(f1, pu))
res$wage_time_invariant <- list(data = "wage_panel", nobs = nrow(wage),
  formula = "lwage ~ expersq + married + union + educ + black",
  models = fit_all(f_ti, pw, c("within", "within_twoways", "between", "random_swar", "fd")),
  hausman = hausman_all(f_ti, pw))
res$wage_unbalanced_time_invariant <- list(data = "wage_panel", nobs = nrow(wage_unb),
  formula = "lwage ~ expersq + married + union + educ + black",
  models = fit_all(f_ti, pu, c("within", "between", "random_swar")),
  hausman = hausman_all(f_ti, pu))
res$wage_year_dummies <- list(data = "wage_panel", nobs = nrow(wage),
  formula = "lwage ~ expersq + married + union + factor(year)",
  models = fit_all(f_yr, pw, c("within", "random_swar", "pooling")))
res$wage_unbalanced_year_dummies <- list(data = "wage_panel", nobs = nrow(wage_unb),
  formula = "lwage ~ expersq + married + union + factor(year)",
  models = fit_all(f_yr, pu, c("within", "random_swar")))
res$wage_more <- list(data = "wage_panel", nobs = nrow(wage),
  formula = "lwage ~ exper + expersq + married + union + hours + hisp",
  models = fit_all(f_more, pw, c("within", "random_swar")),
  hausman = hausman_all(f_more, pw))
res$wage_unbalanced_more <- list(data = "wage_panel", nobs = nrow(wage_unb),
  formula = "lwage ~ exper + expersq + married + union + hours + hisp",
  models = fit_all(f_more, pu, c("within", "within_twoways", "random_swar")),
  hausman = hausman_all(f_more, pu))

out <- list(
  generated_by = "tests/reference/plm_more.R",
  software = software_block(),
  notes = I(c(
    "Data: linearmodels.datasets.wage_panel exported to CSV (see the script header); lwage_sum checks the rows.",
    "theta: one value per man for unbalanced random effects (plm gives one per row).",
    "aliased: coefficients plm dropped as not estimable (time-invariant regressors in within models).",
    "vcovHC_arellano_*: vcovHC(m, method = 'arellano', type = ..., cluster = 'group').",
    "fd_skip_gaps: pooled OLS on plm's diff(), which lags by time, so differences across gaps are dropped.")),
  datasets = res)
write_json_full(out, file.path(OUT_DIR, "plm_more.json"))
