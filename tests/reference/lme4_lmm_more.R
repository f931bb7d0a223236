## More lmer reference fits: random-effect structures and data situations not in lme4_lmm.R
## (three correlated random terms, a categorical random slope, crossed factors with a fixed
## covariate and a crossed random slope, (1 | g) + (0 + x | g) split, nesting with a covariate,
## a centred ||, missing values, ragged and unbalanced groups, singular crossed fits, a fixed
## part without intercept, a 4-level factor, a large between/within variance ratio, ...).
## Run from the repository root:   Rscript tests/reference/lme4_lmm_more.R   (~10 s)
## Writes tests/reference/lme4_lmm_more.json and tests/reference/lme4_lmm_more.Rout.txt
##
## Every case is fitted by REML (suffix _reml) and ML (_ml) with lmer's defaults and extracted
## with common.R's extract_lmm (with fitted values). `prep` names a data preparation that the
## Python test (tests/test_lmm_more.py) repeats exactly; `row` below is the 0-based row number
## of the CSV:
##   sleep_centred : Days_c = Days - 4.5
##   sleep_na      : Reaction NA where row %% 17 == 3, Days NA where row %% 23 == 5, Subject NA
##                   in row 100 (lmer's na.omit drops these rows)
##   sleep_ragged  : drop rows with Days < (row %/% 10) %% 5 (subject k loses its first k %% 5 days)
##   pen_x         : x = row %% 7 - 3 (a covariate that varies within plates and samples)
##   pen_unbal     : drop rows with row %% 5 == 2
##   contra        : use01 = 1 for use == "Y", 0 otherwise
##   hsb_big       : ybig = meanses * 100 + cses * 0.01 (between-school variance ~1e8 x residual)
##   grouse        : lticks = log(TICKS + 1)
##   cbpp          : prop = incidence / size
## `results` is lmer's default fit; `best` (only when it is higher) the tight BOBYQA restart
## from the default's theta, with `best_is` naming the one with the higher logLik.
## `predict` holds predict(m, newdata, allow.new.levels = TRUE) for sleep_ri_pred (new subjects).
source(file.path("tests", "reference", "common.R"))
suppressPackageStartupMessages(library(lme4))

sink(file.path(OUT_DIR, "lme4_lmm_more.Rout.txt"), split = TRUE)
on.exit(sink(), add = TRUE)
banner("lme4_lmm_more.R  --  ", format(Sys.time()))
print(sessionInfo())

rowno <- function(d) seq_len(nrow(d)) - 1L
preps <- list(
  none = function(d) d,
  sleep_centred = function(d) { d$Days_c <- d$Days - 4.5; d },
  sleep_na = function(d) {
    r <- rowno(d)
    d$Reaction[r %% 17 == 3] <- NA
    d$Days[r %% 23 == 5] <- NA
    d$Subject[r == 100] <- NA
    d
  },
  sleep_ragged = function(d) d[!(d$Days < (rowno(d) %/% 10) %% 5), ],
  pen_x = function(d) { d$x <- rowno(d) %% 7 - 3; d },
  pen_unbal = function(d) d[rowno(d) %% 5 != 2, ],
  contra = function(d) { d$use01 <- as.numeric(d$use == "Y"); d },
  hsb_big = function(d) { d$ybig <- d$meanses * 100 + d$cses * 0.01; d },
  grouse = function(d) { d$lticks <- log(d$TICKS + 1); d },
  cbpp = function(d) { d$prop <- d$incidence / d$size; d }
)

specs <- list(
  hsb_three_corr = list(data = "hsb82.csv", formula = "mAch ~ ses + sx + (1 + ses + sx | school)"),
  hsb_quadratic = list(data = "hsb82.csv",
    formula = "mAch ~ cses + I(cses^2) + meanses + (1 + cses + I(cses^2) | school)"),
  hsb_minrty_slope = list(data = "hsb82.csv", formula = "mAch ~ cses + minrty + (1 + minrty | school)"),
  hsb_split = list(data = "hsb82.csv", formula = "mAch ~ cses + (1 | school) + (0 + cses | school)"),
  hsb_no_intercept = list(data = "hsb82.csv", formula = "mAch ~ 0 + sector + cses + (1 | school)"),
  hsb_big_ratio = list(data = "hsb82.csv", prep = "hsb_big", formula = "ybig ~ 1 + (1 | school)"),
  sleep_split = list(data = "sleepstudy.csv",
    formula = "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)"),
  sleep_centred_uncorr = list(data = "sleepstudy.csv", prep = "sleep_centred",
    formula = "Reaction ~ Days_c + (Days_c || Subject)"),
  sleep_centred_corr = list(data = "sleepstudy.csv", prep = "sleep_centred",
    formula = "Reaction ~ Days_c + (Days_c | Subject)"),
  sleep_na = list(data = "sleepstudy.csv", prep = "sleep_na",
    formula = "Reaction ~ Days + (Days | Subject)"),
  sleep_ragged = list(data = "sleepstudy.csv", prep = "sleep_ragged",
    formula = "Reaction ~ Days + (Days | Subject)"),
  sleep_quadratic = list(data = "sleepstudy.csv",
    formula = "Reaction ~ Days + I(Days^2) + (Days + I(Days^2) | Subject)"),
  sleep_ri_pred = list(data = "sleepstudy.csv", formula = "Reaction ~ Days + (Days | Subject)"),
  penicillin_covariate = list(data = "penicillin.csv", prep = "pen_x",
    formula = "diameter ~ x + (1 | plate) + (1 | sample)"),
  penicillin_crossed_slope = list(data = "penicillin.csv", prep = "pen_x",
    formula = "diameter ~ x + (1 + x | plate) + (1 | sample)"),
  penicillin_unbalanced = list(data = "penicillin.csv", prep = "pen_unbal",
    formula = "diameter ~ 1 + (1 | plate) + (1 | sample)"),
  pastes_nested_covariate = list(data = "pastes.csv",
    formula = "strength ~ cask + (1 | batch) + (1 | batch:cask)"),
  pastes_crossed_singular = list(data = "pastes.csv", formula = "strength ~ 1 + (1 | batch) + (1 | cask)"),
  contraception_age = list(data = "contraception.csv", prep = "contra",
    formula = "age ~ livch + urban + (1 | district)"),
  contraception_lpm_slope = list(data = "contraception.csv", prep = "contra",
    formula = "use01 ~ livch + age + urban + (1 + urban | district)"),
  grunfeld_crossed = list(data = "grunfeld.csv", formula = "inv ~ value + capital + (1 | firm) + (1 | year)"),
  gasoline_slope = list(data = "gasoline.csv",
    formula = "lgaspcar ~ lincomep + lrpmg + lcarpcap + (1 + lrpmg | country)"),
  grouseticks_nested = list(data = "grouseticks.csv", prep = "grouse",
    formula = "lticks ~ YEAR + cHEIGHT + (1 | LOCATION) + (1 | BROOD)"),
  cbpp_proportion = list(data = "cbpp.csv", prep = "cbpp", formula = "prop ~ period + (1 | herd)")
)

cases <- list()
fits <- list()
for (nm in names(specs)) {
  sp <- specs[[nm]]
  prep <- if (is.null(sp$prep)) "none" else sp$prep
  d <- preps[[prep]](load_data(sp$data))
  for (reml in c(TRUE, FALSE)) {
    cname <- paste0(nm, if (reml) "_reml" else "_ml")
    fit <- capture_fit(lmer(as.formula(sp$formula), data = d, REML = reml))
    m <- fit$value
    fits[[cname]] <- m
    banner(cname, ":  ", sp$formula, "   REML = ", reml, "   prep: ", prep)
    if (length(fit$warnings)) cat("WARNINGS:\n", paste(" ", fit$warnings, collapse = "\n"), "\n")
    if (length(fit$messages)) cat("MESSAGES:\n", paste(" ", fit$messages, collapse = "\n"), "\n")
    print(summary(m))
    cat("\ntheta:\n"); print(getME(m, "theta"), digits = 15)
    cat("logLik: "); print(logLik(m), digits = 15)
    cat("isSingular:", isSingular(m), "\n")
    ## lme4 again from its own optimum with a tight BOBYQA: where the default stops short on a
    ## flat likelihood, `best` (the higher of the two) is lme4's own answer at the optimum.
    tight <- capture_fit(lmer(as.formula(sp$formula), data = d, REML = reml,
                              start = list(theta = getME(m, "theta")),
                              control = lmerControl(optimizer = "bobyqa",
                                                    optCtrl = list(rhoend = 1e-12, maxfun = 1e5))))
    ll_default <- as.numeric(logLik(m)); ll_tight <- as.numeric(logLik(tight$value))
    best_is <- if (ll_tight > ll_default) "tight" else "default"
    cat(sprintf("logLik default %.12f  tight restart %.12f  (best: %s)\n", ll_default, ll_tight, best_is))
    cases[[cname]] <- list(data = sp$data, prep = prep, formula = sp$formula, reml = reml,
                           results = extract_lmm(m, fit, with_fitted = TRUE),
                           best_is = best_is, loglik_tight = ll_tight,
                           best = if (best_is == "tight") extract_lmm(tight$value, tight, with_fitted = TRUE)
                                  else NULL)
  }
}

## predictions for new data with seen and unseen subjects (REML fit of sleep_ri_pred)
m <- fits[["sleep_ri_pred_reml"]]
newdata <- data.frame(Days = c(0, 3.5, 9, 12, 2, 7),
                      Subject = c("308", "335", "372", "new1", "new2", "new1"))
pred <- predict(m, newdata = newdata, allow.new.levels = TRUE)
pred_fixed <- predict(m, newdata = newdata, re.form = NA)
banner("predict(sleep_ri_pred_reml, newdata, allow.new.levels = TRUE)")
print(cbind(newdata, pred = pred, pred_fixed = pred_fixed), digits = 15)

out <- list(
  generated_by = "tests/reference/lme4_lmm_more.R",
  software = software_block(),
  notes = I(c(
    "Each case: data, prep (see the script header), formula (lme4 syntax), reml, results (extract_lmm with fitted).",
    "best_is: 'tight' when a BOBYQA restart (rhoend 1e-12) from the default fit's theta reached a higher logLik; best then holds its extraction; loglik_tight its logLik.",
    "predict: predict(m, newdata, allow.new.levels = TRUE) and re.form = NA for sleep_ri_pred_reml.")),
  cases = cases,
  predict = list(case = "sleep_ri_pred_reml", newdata = list(Days = I(newdata$Days),
                 Subject = I(newdata$Subject)), pred = I(unname(pred)),
                 pred_fixed = I(unname(pred_fixed))))
write_json_full(out, file.path(OUT_DIR, "lme4_lmm_more.json"))
