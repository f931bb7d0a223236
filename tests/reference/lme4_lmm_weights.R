## lmer references for prior weights and offset() terms in linear mixed models (issue 14 item 3).
## Run from the repository root:   Rscript tests/reference/lme4_lmm_weights.R
## Writes tests/reference/lme4_lmm_weights.json and tests/reference/lme4_lmm_weights.Rout.txt
##
## lmer's prior weights w_i scale the residual variance: Var(e_i) = sigma^2 / w_i.  An offset is
## added to the linear predictor with coefficient 1; fitted() and predict() include it.
## Cases (REML and ML each):
##   cbpp_prop      prop ~ period + (1 | herd), weights = size; prop = incidence / size
##   sleep_weights  Reaction ~ Days + (Days | Subject), weights = w; w = 1 + (Days %% 3), a
##                  deterministic weight (1, 2, 3, 1, 2, 3, ... over days 0..9), not a real design
##   sleep_offset   Reaction ~ Days + offset(2 * Days) + (Days | Subject)
##   cbpp_both      ly ~ period + offset(log(size)) + (1 | herd), weights = size; ly = log(incidence + 0.5):
##                  the empirical log count (0.5 keeps zero counts finite) with the herd size as the
##                  exposure offset (so the coefficients are on the log-rate scale) and the weights
##                  proportional to herd size (a larger herd gives a more precise log rate)
## Level order as mlteach.load(): numeric ids sorted as numbers (cbpp herd 1..15; sleepstudy Subject).
source(file.path("tests", "reference", "common.R"))
suppressPackageStartupMessages(library(lme4))

sink(file.path(OUT_DIR, "lme4_lmm_weights.Rout.txt"), split = TRUE)
on.exit(sink(), add = TRUE)
banner("lme4_lmm_weights.R  --  ", format(Sys.time()))
print(sessionInfo())

num_factor <- function(x) factor(x, levels = as.character(sort(unique(as.numeric(x)))))
cbpp <- read_csv_chr("cbpp.csv", c("herd", "period"))
cbpp$herd <- num_factor(cbpp$herd); cbpp$period <- num_factor(cbpp$period)
cbpp$prop <- cbpp$incidence / cbpp$size
cbpp$ly <- log(cbpp$incidence + 0.5)
sleep <- read_csv_chr("sleepstudy.csv", "Subject")
sleep$Subject <- num_factor(sleep$Subject)
sleep$w <- 1 + (sleep$Days %% 3)

specs <- list(
  cbpp_prop = list(data = "cbpp", formula = prop ~ period + (1 | herd), weights = "size",
                   python_columns = list(prop = "incidence / size")),
  sleep_weights = list(data = "sleepstudy", formula = Reaction ~ Days + (Days | Subject), weights = "w",
                       python_columns = list(w = "1 + Days % 3 (float)")),
  sleep_offset = list(data = "sleepstudy", formula = Reaction ~ Days + offset(2 * Days) + (Days | Subject),
                      weights = NULL, python_columns = list(off = "2 * Days (the offset)")),
  cbpp_both = list(data = "cbpp", formula = ly ~ period + offset(log(size)) + (1 | herd), weights = "size",
                   python_columns = list(ly = "log(incidence + 0.5)", logsize = "log(size) (the offset)")))
DATA <- list(cbpp = cbpp, sleepstudy = sleep)

fit_one <- function(sp, reml) {
  d <- DATA[[sp$data]]
  t0 <- Sys.time()
  fit <- if (is.null(sp$weights)) capture_fit(lmer(sp$formula, data = d, REML = reml))
         else { d$.w <- d[[sp$weights]]; capture_fit(lmer(sp$formula, data = d, REML = reml, weights = .w)) }
  el <- as.numeric(difftime(Sys.time(), t0, units = "secs"))
  m <- fit$value
  print(summary(m))
  r <- extract_lmm(m, fit)
  ll <- logLik(m)
  r$loglik_reml <- if (reml) as.numeric(ll) else NULL
  r$loglik_ml <- if (reml) as.numeric(logLik(m, REML = FALSE)) else as.numeric(ll)
  r$loglik_ml_note <- if (reml) "logLik(m, REML = FALSE): the ML log-likelihood at the REML estimates" else NULL
  r$elapsed <- el
  r$weights_first5 <- I(unname(weights(m)[1:5]))
  r$offset_first5 <- I(unname(getME(m, "offset")[1:5]))
  r$fitted_first5 <- I(unname(fitted(m)[1:5]))
  r$resid_first5 <- I(unname(residuals(m, type = "response")[1:5]))
  r$pearson_resid_first5 <- I(unname(residuals(m, type = "pearson")[1:5]))
  nd <- d[1:3, ]
  if (!is.null(sp$weights)) nd$.w <- nd[[sp$weights]]
  r$predict_first3 <- list(re_form_NA = I(unname(predict(m, newdata = nd, re.form = NA))),
                           with_re = I(unname(predict(m, newdata = nd))),
                           xbeta_no_offset = I(unname(as.numeric(getME(m, "X")[1:3, , drop = FALSE] %*% fixef(m)))))
  first3 <- function(mm) lapply(ranef(mm), function(x) {
    x <- as.matrix(x)[1:3, , drop = FALSE]
    list(levels = I(rownames(x)), columns = I(colnames(x)), values = rows(x))
  })
  r$ranef_first3 <- first3(m)
  ## A tight restart from the default estimates (bobyqa, rhoend 1e-12): the (RE)ML surface is
  ## flat along theta, so the default stopping rule can leave theta off by ~1e-5.
  mt <- update(m, start = getME(m, "theta"),
               control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5)))
  r$tight <- list(loglik = as.numeric(logLik(mt)), theta = as.list(getME(mt, "theta")),
                  fixef = as.list(fixef(mt)), se = as.list(sqrt(diag(as.matrix(vcov(mt))))),
                  sigma = sigma(mt), fitted_first5 = I(unname(fitted(mt)[1:5])),
                  ranef_first3 = first3(mt),
                  loglik_minus_default = as.numeric(logLik(mt)) - as.numeric(ll))
  cat(sprintf("tight restart: logLik %.10f (default %.10f, gain %.3g)\n", r$tight$loglik,
              as.numeric(ll), r$tight$loglik_minus_default))
  r
}

out_cases <- list()
for (nm in names(specs)) {
  sp <- specs[[nm]]
  case <- list(data = paste0(sp$data, ".csv"), formula = paste(deparse(sp$formula), collapse = " "),
               weights = if (is.null(sp$weights)) NULL else sp$weights,
               python_columns = sp$python_columns)
  for (reml in c(TRUE, FALSE)) {
    banner(nm, if (reml) " (REML)" else " (ML)", ": ", case$formula,
           if (!is.null(sp$weights)) paste0(", weights = ", sp$weights) else "")
    case[[if (reml) "reml" else "ml"]] <- fit_one(sp, reml)
  }
  out_cases[[nm]] <- case
}

out <- list(
  generated_by = "tests/reference/lme4_lmm_weights.R",
  software = software_block(),
  notes = I(c(
    "Each case has reml and ml fits with the keys of lme4_lmm.json (extract_lmm in common.R) plus loglik_reml/loglik_ml, weights_first5, offset_first5, fitted_first5, resid_first5 (response residuals y - fitted), pearson_resid_first5, predict_first3 (re_form_NA, with_re, xbeta_no_offset = X beta without the offset) and ranef_first3.",
    "Prior weights: Var(e_i) = sigma^2 / w_i; sigma is the residual SD for weight 1.",
    "fitted() and predict() include the offset (compare predict_first3$re_form_NA with xbeta_no_offset).",
    "Derived columns (python_columns) are computed from the CSV columns; the R formulas use the derived names prop, ly and w and lme4's offset(...) expressions.",
    "Levels: cbpp herd and sleepstudy Subject are numeric ids sorted as numbers (as mlteach.load).",
    "tight: the same model refitted from the default estimates with bobyqa, rhoend 1e-12 (loglik_minus_default says what that gained).")),
  cases = out_cases)
write_json_full(out, file.path(OUT_DIR, "lme4_lmm_weights.json"))
