## lmer reference fits on mlmRev data sets (Exam, ScotsSec, Oxboys, egsingle, Chem97), REML and ML.
## Also: Exam with 3-level factors, Oxboys with a quadratic random slope, ScotsSec with a crossed
## random slope (singular), Gcsemv with missing outcomes (na.omit), Early (slope by child).
## Run from the repository root:   Rscript tests/reference/lme4_lmm_mlmrev.R   (~10 s)
## Writes tests/reference/lme4_lmm_mlmrev.json and .Rout.txt, and the data to /tmp/mlmrev_<name>.csv.
##
## The data are not shipped with mlteach. Each data set is first written (needed columns only) to
## /tmp/mlmrev_<name>.csv with write.csv(row.names = FALSE) and read back from there, factors
## as character -> factor() (sorted levels, as common.R; e.g. ScotsSec sex levels F, M, so the
## term is sexM, not mlmRev's sexF). Small data sets (Exam, ScotsSec, Oxboys, Gcsemv, Early) are stored in the
## JSON itself (`data_columns`); for egsingle and Chem97 the JSON holds `nrow` and `checksum`
## (sum of the outcome, NAs left out) and the Python test skips unless the CSV exists (run this script).
## Each case: lmer's default fit (`results`; its ranef/condvar left out when `best` is stored) and
## `best` when a tight BOBYQA restart from the default theta reaches a higher logLik;
## `time_default_s` is the elapsed time of lmer's default fit.
source(file.path("tests", "reference", "common.R"))
suppressPackageStartupMessages({ library(lme4); library(mlmRev) })

sink(file.path(OUT_DIR, "lme4_lmm_mlmrev.Rout.txt"), split = TRUE)
on.exit(sink(), add = TRUE)
banner("lme4_lmm_mlmrev.R  --  ", format(Sys.time()))
print(sessionInfo())
cat("mlmRev", as.character(packageVersion("mlmRev")), "\n")

sets <- list(
  Exam = list(cols = c("normexam", "standLRT", "sex", "schavg", "vr", "intake", "school"),
              factors = c("sex", "vr", "intake", "school"),
              outcome = "normexam", embed = TRUE),
  ScotsSec = list(cols = c("attain", "verbal", "sex", "primary", "second"),
                  factors = c("sex", "primary", "second"), outcome = "attain", embed = TRUE),
  Oxboys = list(cols = c("height", "age", "Subject"), factors = "Subject", outcome = "height", embed = TRUE),
  Gcsemv = list(cols = c("written", "gender", "school"), factors = c("gender", "school"),
                outcome = "written", embed = TRUE),
  Early = list(cols = c("cog", "age", "trt", "id"), factors = c("trt", "id"), outcome = "cog", embed = TRUE),
  egsingle = list(cols = c("math", "year", "schoolid", "childid"), factors = c("schoolid", "childid"),
                  outcome = "math", embed = FALSE),
  Chem97 = list(cols = c("score", "gcsecnt", "school", "lea"), factors = c("school", "lea"),
                outcome = "score", embed = FALSE))
specs <- list(
  exam = list(data = "Exam", formula = "normexam ~ standLRT + sex + schavg + (1 + standLRT | school)"),
  scotssec = list(data = "ScotsSec", formula = "attain ~ verbal + sex + (1 | primary) + (1 | second)"),
  oxboys = list(data = "Oxboys", formula = "height ~ age + I(age^2) + (age | Subject)"),
  exam_factors = list(data = "Exam",
    formula = "normexam ~ standLRT + sex + vr + intake + (standLRT | school)"),
  oxboys_quadratic = list(data = "Oxboys", formula = "height ~ age + I(age^2) + (age + I(age^2) | Subject)"),
  scotssec_slope = list(data = "ScotsSec", formula = "attain ~ verbal + sex + (verbal | primary) + (1 | second)"),
  gcsemv_na = list(data = "Gcsemv", formula = "written ~ gender + (1 | school)"),
  early = list(data = "Early", formula = "cog ~ age + trt + (age | id)"),
  egsingle = list(data = "egsingle", formula = "math ~ year + (1 | schoolid/childid)"),
  chem97 = list(data = "Chem97", formula = "score ~ gcsecnt + (1 | school) + (1 | lea)"))

datasets <- list(); dat <- list()
for (nm in names(sets)) {
  s <- sets[[nm]]
  d0 <- as.data.frame(get(nm, envir = asNamespace("mlmRev"))[, s$cols])
  for (f in s$factors) d0[[f]] <- as.character(d0[[f]])
  path <- file.path("/tmp", paste0("mlmrev_", nm, ".csv"))
  write.csv(d0, path, row.names = FALSE)
  cc <- setNames(rep("character", length(s$factors)), s$factors)
  d <- read.csv(path, colClasses = cc, stringsAsFactors = FALSE)
  for (f in s$factors) d[[f]] <- factor(d[[f]])
  dat[[nm]] <- d
  info <- list(csv = path, columns = I(s$cols), factors = I(s$factors), outcome = s$outcome,
               nrow = nrow(d), checksum = sum(d[[s$outcome]], na.rm = TRUE),
               n_missing = sum(is.na(d[[s$outcome]])),
               command = "Rscript tests/reference/lme4_lmm_mlmrev.R")
  if (s$embed) info$data_columns <- lapply(setNames(s$cols, s$cols), function(cl) {
    v <- d[[cl]]; if (is.factor(v)) I(as.character(v)) else I(as.numeric(v)) })
  datasets[[nm]] <- info
}

## when `best` is stored, the default fit's ranef and condvar are left out (only `best`'s are compared)
trim <- function(x) { x$ranef <- NULL; x$condvar <- NULL; x }
cases <- list()
for (nm in names(specs)) {
  sp <- specs[[nm]]; d <- dat[[sp$data]]
  for (reml in c(TRUE, FALSE)) {
    cname <- paste0(nm, if (reml) "_reml" else "_ml")
    tm <- system.time(fit <- capture_fit(lmer(as.formula(sp$formula), data = d, REML = reml)))[["elapsed"]]
    m <- fit$value
    banner(cname, ":  ", sp$formula, "   REML = ", reml, "   time ", tm, " s")
    if (length(fit$warnings)) cat("WARNINGS:\n", paste(" ", fit$warnings, collapse = "\n"), "\n")
    if (length(fit$messages)) cat("MESSAGES:\n", paste(" ", fit$messages, collapse = "\n"), "\n")
    print(summary(m))
    cat("\ntheta:\n"); print(getME(m, "theta"), digits = 15)
    cat("logLik: "); print(logLik(m), digits = 15)
    tight <- capture_fit(lmer(as.formula(sp$formula), data = d, REML = reml,
                              start = list(theta = getME(m, "theta")),
                              control = lmerControl(optimizer = "bobyqa",
                                                    optCtrl = list(rhoend = 1e-12, maxfun = 1e5))))
    ll_default <- as.numeric(logLik(m)); ll_tight <- as.numeric(logLik(tight$value))
    best_is <- if (ll_tight > ll_default) "tight" else "default"
    cat(sprintf("logLik default %.12f  tight restart %.12f  (best: %s)\n", ll_default, ll_tight, best_is))
    cases[[cname]] <- list(data = sp$data, formula = sp$formula, reml = reml,
                           time_default_s = tm,
                           results = if (ll_tight > ll_default) trim(extract_lmm(m, fit)) else extract_lmm(m, fit),
                           best_is = best_is, loglik_tight = ll_tight,
                           best = if (best_is == "tight") extract_lmm(tight$value, tight) else NULL)
  }
}

out <- list(
  generated_by = "tests/reference/lme4_lmm_mlmrev.R",
  software = c(software_block(), mlmRev = as.character(packageVersion("mlmRev"))),
  notes = I(c(
    "datasets: per mlmRev data set the CSV written to /tmp, columns, factors (sorted levels), outcome, nrow, checksum = sum(outcome); data_columns (the data themselves) for the small ones.",
    "Each case: data, formula (lme4 syntax), reml, time_default_s, results (extract_lmm), best_is/best/loglik_tight as lme4_lmm_more.json.")),
  datasets = datasets,
  cases = cases)
write_json_full(out, file.path(OUT_DIR, "lme4_lmm_mlmrev.json"))
