## Reference values for panel-data estimators from plm.
## Run from the repository root:   Rscript tests/reference/plm_panel.R
## Writes tests/reference/plm_panel.json and tests/reference/plm_panel.Rout.txt
source(file.path("tests", "reference", "common.R"))
suppressPackageStartupMessages(library(plm))

sink(file.path(OUT_DIR, "plm_panel.Rout.txt"), split = TRUE)
on.exit(sink(), add = TRUE)
banner("plm_panel.R  --  ", format(Sys.time()))
print(sessionInfo())

## ------------------------------------------------------------------ data ----
grunfeld <- load_data("grunfeld.csv")
## Unbalanced version: drop rows with (firm*7 + year) %% 5 == 0.
grunfeld_unbalanced <- grunfeld[(grunfeld$firm * 7 + grunfeld$year) %% 5 != 0, ]
rownames(grunfeld_unbalanced) <- NULL
gasoline <- load_data("gasoline.csv")

datasets <- list(
  grunfeld = list(data = grunfeld, csv = "grunfeld.csv", index = c("firm", "year"),
                  formula = inv ~ value + capital,
                  mundlak = inv ~ value + capital + Between(value) + Between(capital)),
  grunfeld_unbalanced = list(data = grunfeld_unbalanced, csv = "grunfeld.csv",
                  subset_rule = "drop rows where (firm*7 + year) %% 5 == 0",
                  index = c("firm", "year"), formula = inv ~ value + capital,
                  mundlak = inv ~ value + capital + Between(value) + Between(capital)),
  gasoline = list(data = gasoline, csv = "gasoline.csv", index = c("country", "year"),
                  formula = lgaspcar ~ lincomep + lrpmg + lcarpcap,
                  mundlak = lgaspcar ~ lincomep + lrpmg + lcarpcap +
                    Between(lincomep) + Between(lrpmg) + Between(lcarpcap))
)

model_specs <- list(
  pooling        = list(model = "pooling", effect = "individual"),
  within         = list(model = "within",  effect = "individual"),
  within_twoways = list(model = "within",  effect = "twoways"),
  between        = list(model = "between", effect = "individual"),
  fd             = list(model = "fd",      effect = "individual"),
  random_swar    = list(model = "random",  effect = "individual", random.method = "swar")
)

## ------------------------------------------------------------ helpers ----
try_vcov <- function(m, type) {
  r <- tryCatch(capture_fit(vcovHC(m, method = "arellano", type = type)),
                error = function(e) list(error = conditionMessage(e)))
  if (!is.null(r$error)) return(list(available = FALSE, error = r$error))
  V <- as.matrix(r$value)
  list(available = TRUE, method = "arellano", type = type, cluster = "group",
       vcov = vmat(V), se = dict(sqrt(diag(V))), warnings = I(r$warnings))
}
## per-group theta for random effects: plm returns a scalar (balanced) or a
## per-observation vector (unbalanced); reduce to one value per group.
theta_by_group <- function(m, pdata) {
  th <- ercomp(m)$theta
  if (length(th) == 1) return(list(balanced = TRUE, theta = as.numeric(th)))
  idx <- index(m)[[1]]
  stopifnot(length(th) == length(idx))
  g <- tapply(as.numeric(th), idx, function(z) { stopifnot(diff(range(z)) < 1e-12); z[1] })
  list(balanced = FALSE, theta = dict(g))
}

extract_plm <- function(m, fit, spec, pdata) {
  s <- summary(m)
  V <- as.matrix(vcov(m))
  b <- coef(m)
  out <- list(
    model = spec$model, effect = spec$effect,
    random_method = spec$random.method,
    coefficients = dict(b),
    vcov = vmat(V),
    se = dict(sqrt(diag(V))),
    tstat = dict(s$coefficients[, 3]),
    pvalue = dict(s$coefficients[, 4]),
    df_residual = df.residual(m),
    nobs = nobs(m),
    n_groups = pdim(m)$nT$n, n_time = pdim(m)$nT$T,
    balanced = pdim(m)$balanced,
    rsq = unname(s$r.squared["rsq"]),
    adjrsq = unname(s$r.squared["adjrsq"]),
    ssr = sum(residuals(m)^2),
    fstatistic = list(statistic = unname(s$fstatistic$statistic),
                      df = I(unname(as.numeric(s$fstatistic$parameter))),
                      p_value = unname(s$fstatistic$p.value)),
    vcovHC_arellano_HC0 = try_vcov(m, "HC0"),
    vcovHC_arellano_HC1 = try_vcov(m, "HC1"),
    vcovHC_arellano_sss = try_vcov(m, "sss"),
    warnings = I(fit$warnings), messages = I(fit$messages))
  if (spec$model == "random") {
    ec <- ercomp(m)
    out$ercomp <- list(sigma2 = dict(ec$sigma2), theta = theta_by_group(m, pdata))
  }
  if (spec$model == "within") {
    fx <- function(effect, type) {
      f <- fixef(m, effect = effect, type = type)
      sf <- summary(f)
      ## plm 2.6-2 gives no standard errors for two-ways fixed effects
      list(values = dict(f), se = if (ncol(sf) >= 2) dict(sf[, 2]) else NULL)
    }
    effs <- if (spec$effect == "twoways") c("individual", "time", "twoways") else "individual"
    out$fixef <- lapply(setNames(effs, effs), function(e)
      lapply(setNames(c("level", "dmean", "dfirst"), c("level", "dmean", "dfirst")),
             function(t) tryCatch(fx(e, t), error = function(err) list(error = conditionMessage(err)))))
    wi <- tryCatch(within_intercept(m), error = function(e) NULL)
    if (!is.null(wi)) out$within_intercept <- list(value = as.numeric(wi), se = as.numeric(attr(wi, "se")))
  }
  out
}

## -------------------------------------------------------------- fitting ----
res <- list()
for (dn in names(datasets)) {
  ds <- datasets[[dn]]
  pdata <- pdata.frame(ds$data, index = ds$index)
  mods <- list()
  entry <- list(data = ds$csv, subset_rule = ds$subset_rule, index = I(ds$index),
                formula = deparse(ds$formula), nobs = nrow(ds$data),
                n_groups = length(unique(ds$data[[ds$index[1]]])),
                balanced = is.pbalanced(pdata), models = list())
  for (mn in names(model_specs)) {
    sp <- model_specs[[mn]]
    args <- list(formula = ds$formula, data = pdata, model = sp$model, effect = sp$effect)
    if (!is.null(sp$random.method)) args$random.method <- sp$random.method
    fit <- capture_fit(do.call(plm, args))
    m <- fit$value
    m$call$formula <- ds$formula
    mods[[mn]] <- m
    banner(dn, " / ", mn, ":  ", deparse(ds$formula), "  model=", sp$model,
           " effect=", sp$effect, if (!is.null(sp$random.method)) paste0(" random.method=", sp$random.method))
    print(summary(m))
    cat("coef:\n"); print(coef(m), digits = 15)
    if (sp$model == "random") print(ercomp(m))
    for (ty in c("HC0", "HC1", "sss")) {
      cat("vcovHC(method='arellano', type='", ty, "') SEs:\n", sep = "")
      print(tryCatch(sqrt(diag(vcovHC(m, method = "arellano", type = ty))),
                     error = function(e) paste("ERROR:", conditionMessage(e))), digits = 12)
    }
    if (sp$model == "within") { print(summary(fixef(m))); print(tryCatch(within_intercept(m), error = function(e) conditionMessage(e)), digits = 12) }
    entry$models[[mn]] <- extract_plm(m, fit, sp, pdata)
  }

  ## Hausman tests
  banner(dn, " / Hausman tests")
  h1 <- phtest(mods$within, mods$random_swar)
  print(h1)
  h2 <- phtest(ds$formula, data = pdata, method = "aux",
               vcov = function(x) vcovHC(x, method = "arellano", type = "HC0"))
  print(h2)
  h3 <- phtest(ds$formula, data = pdata, method = "aux")
  print(h3)
  ht <- function(h, desc) list(description = desc, statistic = unname(h$statistic),
                               df = unname(as.numeric(h$parameter)), p_value = h$p.value,
                               method = h$method, alternative = h$alternative)
  entry$hausman <- list(
    classic = ht(h1, "phtest(within, random_swar): classic chi-square Hausman test"),
    aux_arellano_HC0 = ht(h2, "phtest(formula, data, method='aux', vcov=function(x) vcovHC(x, method='arellano', type='HC0')): regression-based (auxiliary) Hausman test with cluster-robust HC0 vcov (Wald test on the group-mean terms)"),
    aux_classical = ht(h3, "phtest(formula, data, method='aux'): auxiliary-regression Hausman test with the classical (non-robust) vcov"))

  ## Mundlak regression: random (swar) with group means of the regressors
  banner(dn, " / Mundlak: ", deparse(ds$mundlak))
  xw <- names(coef(mods$within))
  fit <- tryCatch(capture_fit(plm(ds$mundlak, data = pdata, model = "random", random.method = "swar")),
                  error = function(e) list(error = conditionMessage(e)))
  if (is.null(fit$error)) {
    mm <- fit$value
    print(summary(mm))
    Vm <- as.matrix(vcov(mm))
    diffw <- max(abs(coef(mm)[xw] - coef(mods$within)[xw]))
    cat("max |Mundlak within-coefs - within coefs| =", format(diffw, digits = 6), "\n")
    ecm <- ercomp(mm)
    entry$mundlak <- list(
      available = TRUE, formula = deparse(ds$mundlak),
      description = "plm(model='random', random.method='swar') with the group means Between(x) of every regressor added",
      coefficients = dict(coef(mm)), se = dict(sqrt(diag(Vm))), vcov = vmat(Vm),
      ercomp = list(sigma2 = dict(ecm$sigma2), theta = theta_by_group(mm, pdata)),
      vcovHC_arellano_HC0 = try_vcov(mm, "HC0"),
      max_abs_diff_vs_within = diffw,
      warnings = I(fit$warnings))
  } else {
    cat("plm() FAILED:", fit$error, "\n")
    entry$mundlak <- list(available = FALSE, formula = deparse(ds$mundlak), error = fit$error)
  }

  ## Mundlak by hand: GLS on quasi-demeaned data with the variance components
  ## (theta) of the ORIGINAL random_swar model:  y_it - theta_i ybar_i on
  ## (1 - theta_i), x_it - theta_i xbar_i, (1 - theta_i) xbar_i; OLS vcov
  ## (residual variance from the transformed regression, as plm does).
  ## The same transform without the xbar columns reproduces plm's random_swar.
  banner(dn, " / Mundlak by hand (theta of the original random_swar model)")
  d0 <- ds$data; g <- d0[[ds$index[1]]]
  ec0 <- ercomp(mods$random_swar)
  Ti <- as.numeric(table(g)[as.character(g)])
  theta_i <- 1 - sqrt(ec0$sigma2[["idios"]] / (Ti * ec0$sigma2[["id"]] + ec0$sigma2[["idios"]]))
  th_plm <- ec0$theta; if (length(th_plm) > 1) stopifnot(max(abs(theta_i - as.numeric(th_plm))) < 1e-12) else stopifnot(max(abs(theta_i - th_plm)) < 1e-12)
  gm <- function(v) ave(v, g)
  yv <- d0[[all.vars(ds$formula)[1]]]
  X <- cbind("(Intercept)" = 1, as.matrix(d0[, xw, drop = FALSE]))
  Xb <- apply(X[, -1, drop = FALSE], 2, gm); colnames(Xb) <- paste0("Between(", xw, ")")
  ys <- yv - theta_i * gm(yv)
  Xs <- X - theta_i * apply(X, 2, gm)
  chk <- lm.fit(Xs, ys)$coefficients
  cat("check: by-hand RE vs plm random_swar, max abs diff =",
      format(max(abs(chk - coef(mods$random_swar)[colnames(X)])), digits = 6), "\n")
  Xm <- cbind(Xs, (1 - theta_i) * Xb)
  lmm <- lm(ys ~ Xm - 1); bm <- coef(lmm); names(bm) <- colnames(Xm)
  Vh <- vcov(lmm); dimnames(Vh) <- list(colnames(Xm), colnames(Xm))
  print(cbind(estimate = bm, se = sqrt(diag(Vh))), digits = 12)
  diffh <- max(abs(bm[xw] - coef(mods$within)[xw]))
  cat("max |coef(x) - within coef| =", format(diffh, digits = 6), "\n")
  entry$mundlak_fixed_theta <- list(
    description = "GLS by hand: OLS of y - theta_i*ybar_i on (1-theta_i), x - theta_i*xbar_i, (1-theta_i)*xbar_i, with theta_i from the original random_swar model; vcov = OLS vcov of the transformed regression",
    check_max_abs_diff_random_swar = max(abs(chk - coef(mods$random_swar)[colnames(X)])),
    coefficients = dict(bm), se = dict(sqrt(diag(Vh))),
    max_abs_diff_vs_within = diffh)
  res[[dn]] <- entry
}

out <- list(
  generated_by = "tests/reference/plm_panel.R",
  software = software_block(),
  notes = I(c(
    "Data read from mlteach/data/grunfeld.csv and gasoline.csv; index = (firm, year) and (country, year).",
    "grunfeld_unbalanced = grunfeld without the rows where (firm*7 + year) %% 5 == 0 (R's %% is the non-negative modulus; firm 1..10, year 1935..1954).",
    "vcov/se: plm's classical vcov.  vcovHC_arellano_*: vcovHC(m, method='arellano', type=..., cluster='group'), i.e. clustered by the individual index.",
    "fd models include an intercept (plm default), which estimates the mean per-period change (a linear trend in levels).",
    "fd on the unbalanced panel: plm 2.6-2 differences CONSECUTIVE AVAILABLE rows within each firm, ignoring gaps in year (a 2-year gap is differenced like a 1-year step): 150 differences, not the 114 with a one-year gap.",
    "fixef: fixef(m, effect, type) for type level / dmean / dfirst, with SEs from summary(fixef(...)) (one-way only: plm gives no SEs for two-ways fixed effects). For within_twoways, effect 'twoways' gives one value per individual-time cell, named 'firm-year'.",
    "within_intercept: plm::within_intercept(m) (overall intercept of the within model, with its SE).",
    "vcovHC is not available for between models in plm (recorded with available = false and plm's error message).",
    "random_swar ercomp$theta: a scalar for balanced panels, a value per group for unbalanced panels.",
    "hausman.aux_arellano_HC0 is the robust regression-based test (HC0 chosen).",
    "mundlak: plm's own fit; plm 2.6-2 cannot fit it on the unbalanced panel (the unbalanced Swamy-Arora ercomp inverts a singular between cross-product), so mundlak.available = FALSE there.  mundlak_fixed_theta: the same regression by hand with theta from the original random_swar model (identical to plm's fit on balanced panels, where the Mundlak model's swar components equal the original model's)."
  )),
  datasets = res)
write_json_full(out, file.path(OUT_DIR, "plm_panel.json"))
