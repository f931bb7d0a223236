## Shared helpers for the reference scripts (sourced by every script here).
## Run the scripts from the repository root.
suppressPackageStartupMessages({
  library(jsonlite)
})

DATA_DIR <- file.path("mlteach", "data")
OUT_DIR  <- file.path("tests", "reference")
stopifnot(dir.exists(DATA_DIR), dir.exists(OUT_DIR))

## ---------------------------------------------------------------- data ----
## All data are read from the project's CSVs (not from R packages), so the
## references are computed on exactly the data the Python code uses.
## Every grouping/categorical column is read as character and turned into a
## factor with R's default (sorted) level order.
read_csv_chr <- function(name, chr = character()) {
  cc <- setNames(rep("character", length(chr)), chr)
  read.csv(file.path(DATA_DIR, name), colClasses = cc, stringsAsFactors = FALSE)
}
as_factors <- function(d, cols) { for (cl in cols) d[[cl]] <- factor(d[[cl]]); d }

## Categorical columns with the level order mlteach.load() gives (numeric ids sorted as numbers,
## other labels by code point, sort(method = "radix")); used by the issue-14 scripts.
load_sorted <- function(file, cats, numeric_ids = character()) {
  d <- read.csv(file.path(DATA_DIR, file), colClasses = setNames(rep("character", length(cats)), cats),
                stringsAsFactors = FALSE)
  for (cl in cats) {
    x <- d[[cl]]
    lev <- if (cl %in% numeric_ids) as.character(sort(unique(as.numeric(x)))) else sort(unique(x), method = "radix")
    d[[cl]] <- factor(x, levels = lev)
    stopifnot(!anyNA(d[[cl]]))
  }
  d
}

load_data <- function(name) {
  switch(name,
    "hsb82.csv" = as_factors(read_csv_chr(name, c("school", "minrty", "sx", "sector")),
                             c("school", "minrty", "sx", "sector")),
    "sleepstudy.csv" = as_factors(read_csv_chr(name, "Subject"), "Subject"),
    "dyestuff.csv" = , "dyestuff2.csv" = as_factors(read_csv_chr(name, "Batch"), "Batch"),
    "pastes.csv" = as_factors(read_csv_chr(name, c("batch", "cask", "sample")),
                              c("batch", "cask", "sample")),
    "penicillin.csv" = as_factors(read_csv_chr(name, c("plate", "sample")), c("plate", "sample")),
    "contraception.csv" = {
      d <- read_csv_chr(name, c("woman", "district", "use", "livch", "urban"))
      d <- as_factors(d, c("woman", "district", "use", "urban"))
      d$livch <- factor(d$livch, levels = c("0", "1", "2", "3+"))
      stopifnot(!anyNA(d$livch), identical(levels(d$use), c("N", "Y")),
                identical(levels(d$urban), c("N", "Y")))
      d
    },
    "cbpp.csv" = as_factors(read_csv_chr(name, c("herd", "period")), c("herd", "period")),
    "grouseticks.csv" = as_factors(read_csv_chr(name, c("INDEX", "BROOD", "YEAR", "LOCATION")),
                                   c("INDEX", "BROOD", "YEAR", "LOCATION")),
    "grunfeld.csv" = read.csv(file.path(DATA_DIR, name)),
    "gasoline.csv" = read.csv(file.path(DATA_DIR, name), stringsAsFactors = FALSE),
    stop("unknown data set ", name))
}

## ------------------------------------------------------------- capture ----
## Evaluate expr, collecting (and muffling) warnings and messages.
capture_fit <- function(expr) {
  warns <- character(); msgs <- character()
  value <- withCallingHandlers(expr,
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(m) { msgs <<- c(msgs, sub("\n$", "", conditionMessage(m))); invokeRestart("muffleMessage") })
  list(value = value, warnings = warns, messages = msgs)
}

## --------------------------------------------------------------- json -----
## jsonlite's digits = NA / I(17) still caps output at 15 significant digits,
## which does not round-trip doubles.  We therefore pre-format every double
## with the shortest of %.15g/%.16g/%.17g that parses back to the identical
## double and hand it to jsonlite verbatim.  Non-finite values: NA/NaN -> null,
## +-Inf -> the strings "Inf"/"-Inf".
num17 <- function(v) {
  out <- sprintf("%.15g", v)
  for (d in 16:17) {
    bad <- is.finite(v) & suppressWarnings(as.numeric(out)) != v
    if (any(bad)) out[bad] <- sprintf(paste0("%.", d, "g"), v[bad])
  }
  out[is.na(v)] <- "null"
  inf <- is.infinite(v)
  out[inf] <- ifelse(v[inf] > 0, "\"Inf\"", "\"-Inf\"")
  out
}
## Recursively prepare an object: lists -> objects/arrays; doubles -> verbatim
## numbers.  Length-1 vectors become scalars unless wrapped in I() (AsIs),
## which forces an array.  Matrices must be converted with rows() first.
prep_json <- function(x) {
  if (is.null(x)) return(NULL)
  if (is.list(x) && !is.data.frame(x)) {
    cls <- class(x)
    y <- lapply(x, prep_json)
    if (inherits(x, "AsIs")) class(y) <- "AsIs"
    return(y)
  }
  if (!is.null(dim(x))) stop("convert matrices with rows() before writing")
  asis <- inherits(x, "AsIs")
  if (is.factor(x)) x <- as.character(x)
  if (is.double(x)) {
    x <- unclass(x); names(x) <- NULL
    s <- num17(x)
    if (length(x) == 1 && !asis) return(structure(s, class = "json"))
    return(structure(paste0("[", paste(s, collapse = ","), "]"), class = "json"))
  }
  x <- unclass(x); names(x) <- NULL
  if (asis || length(x) != 1) return(I(x))
  x
}
write_json_full <- function(obj, path) {
  txt <- toJSON(prep_json(obj), auto_unbox = TRUE, json_verbatim = TRUE,
                pretty = TRUE, null = "null", na = "null")
  writeLines(txt, path)
  ## round-trip check
  invisible(fromJSON(path, simplifyVector = FALSE))
  cat("wrote", path, "\n")
}

## named numeric vector -> JSON object (dict term -> value)
dict <- function(v) { v <- v[]; if (length(v) == 0) return(setNames(list(), character())); as.list(setNames(as.numeric(v), names(v))) }
## matrix -> list of rows (each row always an array)
rows <- function(m) { m <- as.matrix(m); lapply(seq_len(nrow(m)), function(i) I(unname(as.numeric(m[i, ])))) }
## matrix with names -> list(names = ..., matrix = rows)
named_matrix <- function(m) { m <- as.matrix(m); list(names = I(rownames(m)), colnames = I(colnames(m)), matrix = rows(m)) }
## covariance matrix -> list(names = column names, matrix = rows)
vmat <- function(V) list(names = I(colnames(V)), matrix = rows(V))

## ------------------------------------------------- lme4 fits (lmer, glmer) ----
## ranef(m) -> per factor: levels, columns and the conditional modes row by row
ranef_list <- function(re) lapply(re, function(r) list(levels = I(rownames(r)), columns = I(colnames(r)),
                                                       values = rows(as.matrix(r))))
## m@optinfo -> optimizer, convergence codes and messages, evaluations
optinfo_list <- function(opt, optimizer_warnings = TRUE) {
  out <- list(optimizer = opt$optimizer, conv_opt = opt$conv$opt,
              conv_lme4_messages = I(as.character(unlist(opt$conv$lme4$messages))),
              feval = opt$feval, message = opt$message,
              optimizer_warnings = I(as.character(unlist(opt$warnings))))
  if (!optimizer_warnings) out$optimizer_warnings <- NULL
  out
}

## Conditional variances of one factor's random effects (ranef(m, condVar = TRUE)[[g]]):
## the diagonal per term and, for k > 1 terms in one block, the full k x k matrix per level.
condvar_block <- function(re) {
  pv <- attr(re, "postVar")
  lev <- rownames(re); cols <- colnames(re)
  if (is.list(pv)) {
    ## several terms for the same factor in separate blocks (e.g. ||):
    ## one k x k array per term block; lme4 reports no cross-block covariance.
    diag_by_term <- list()
    for (b in names(pv)) { a <- pv[[b]]; diag_by_term[[b]] <- I(a[1, 1, ]) }
    list(levels = I(lev), columns = I(cols), blocked = TRUE,
         block_terms = I(names(pv)),
         diag = diag_by_term)
  } else {
    k <- dim(pv)[1]
    out <- list(levels = I(lev), columns = I(cols), blocked = FALSE,
                diag = setNames(lapply(seq_len(k), function(j) I(pv[j, j, ])), cols))
    if (k > 1) out$full <- lapply(seq_len(dim(pv)[3]), function(i) rows(pv[, , i]))
    out
  }
}

## VarCorr(m) -> per factor: terms, covariance, SDs and correlations; plus the residual SD
varcorr_list <- function(m) {
  vc <- VarCorr(m)
  out <- lapply(names(vc), function(g) {
    v <- vc[[g]]
    list(terms = I(colnames(v)), cov = rows(v), sds = I(unname(attr(v, "stddev"))),
         corr = rows(if (is.null(attr(v, "correlation"))) diag(1) else attr(v, "correlation")))
  })
  names(out) <- names(vc)
  out$Residual <- list(sd = sigma(m), var = sigma(m)^2)
  out
}

## Everything the Python tests compare for one lmer fit `m` (fit: capture_fit's list).
## with_fitted adds fitted(m); diagnostics adds the profiled ML deviance at theta, devcomp$cmp
## and the optimizer's own warnings (lme4_lmm.R keeps them, lme4_lmm_scale.R does not).
extract_lmm <- function(m, fit, with_fitted = FALSE, diagnostics = TRUE) {
  ll <- logLik(m)
  V <- as.matrix(vcov(m))
  re <- ranef(m, condVar = TRUE)
  reml <- isREML(m)
  out <- list(
    fixef = dict(fixef(m)),
    se = dict(sqrt(diag(V))),
    vcov = vmat(V),
    sigma = sigma(m),
    loglik = as.numeric(ll),
    loglik_is_reml = reml,
    deviance = if (!reml) deviance(m) else NULL,
    REMLcrit = if (reml) REMLcrit(m) else NULL,
    ## profiled ML deviance (-2 ML log-likelihood, beta and sigma profiled out)
    ## at this fit's theta; for ML fits this equals deviance.
    ml_deviance_at_theta = deviance(m, REML = FALSE),
    AIC = AIC(m), BIC = BIC(m),
    df = attr(ll, "df"),
    nobs = nobs(m),
    ngrps = as.list(ngrps(m)),
    theta = dict(getME(m, "theta")),
    varcorr = varcorr_list(m),
    ranef = ranef_list(re),
    condvar = lapply(re, condvar_block),
    devcomp_cmp = as.list(getME(m, "devcomp")$cmp),
    fitted = I(unname(fitted(m))),
    isSingular = isSingular(m),
    warnings = I(fit$warnings),
    messages = I(fit$messages),
    optinfo = optinfo_list(m@optinfo, optimizer_warnings = diagnostics))
  if (!with_fitted) out$fitted <- NULL
  if (!diagnostics) { out$ml_deviance_at_theta <- NULL; out$devcomp_cmp <- NULL }
  out
}

software_block <- function() {
  pv <- function(p) tryCatch(as.character(packageVersion(p)), error = function(e) NA_character_)
  list(R = R.version.string, lme4 = pv("lme4"), Matrix = pv("Matrix"), plm = pv("plm"),
       MASS = pv("MASS"), nlme = pv("nlme"), jsonlite = pv("jsonlite"),
       sandwich = pv("sandwich"), platform = R.version$platform,
       blas = tryCatch(sessionInfo()$BLAS, error = function(e) NA_character_),
       lapack = tryCatch(sessionInfo()$LAPACK, error = function(e) NA_character_),
       date = format(Sys.time(), "%Y-%m-%d"))
}

## Print to the .Rout.txt transcript (sink is set up by each script).
banner <- function(...) cat("\n", strrep("=", 78), "\n== ", ..., "\n", strrep("=", 78), "\n", sep = "")
