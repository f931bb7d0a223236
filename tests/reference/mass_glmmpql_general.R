## MASS::glmmPQL references for PQL with general random effects (issue 14): a correlated random
## slope (binomial), nested random intercepts (Poisson; and binomial, children in mothers in
## communities). mlteach fits these by iterating its own weighted LMM.
## Run from the repository root:   Rscript tests/reference/mass_glmmpql_general.R
## Writes tests/reference/mass_glmmpql_general.json and tests/reference/mass_glmmpql_general.Rout.txt
##
## glmmPQL (MASS 7.3) fits lme(z ~ X, random, weights = varFixed(~invwt), method = "ML") to the
## working response z = eta + (y - mu)/mu.eta with invwt = 1/(prior weight * mu.eta^2/variance),
## from the glm start, until sum((eta - eta_old)^2) < 1e-6 * sum(eta^2) (at most 10 rounds).
## summary(lme) of an ML fit rescales sigma by sqrt(N/(N - p)) in the standard errors
## (adjustSigma = TRUE). Random-effect SDs are absolute (the lme scale, with sigma estimated).
## Level order: as mlteach.load() (load_sorted in common.R).
source(file.path("tests", "reference", "common.R"))
suppressPackageStartupMessages({ library(MASS); library(nlme) })

sink(file.path(OUT_DIR, "mass_glmmpql_general.Rout.txt"), split = TRUE)
on.exit(sink(), add = TRUE)
banner("mass_glmmpql_general.R  --  ", format(Sys.time()))
print(sessionInfo())

contraception <- load_sorted("contraception.csv", c("woman", "district", "use", "livch", "urban"),
                             c("woman", "district"))
contraception$use <- as.integer(contraception$use == "Y")
guimmun <- load_sorted("guimmun.csv", c("kid", "mom", "comm", "immun", "kid2p", "mom25p", "ord", "ethn",
                                        "momEd", "husEd", "momWork", "rural"), c("kid", "mom", "comm"))
guimmun$immun <- as.integer(guimmun$immun == "Y")
grouseticks <- load_sorted("grouseticks.csv", c("INDEX", "BROOD", "YEAR", "LOCATION"),
                           c("INDEX", "BROOD", "YEAR", "LOCATION"))

pql_case <- function(label, data_file, formula, fixed, random, family, data, weights = NULL) {
  banner("glmmPQL: ", label)
  ## weights: a column name (glmmPQL evaluates `weights` in the data, as lme does)
  cl <- if (is.null(weights)) quote(glmmPQL(fixed, random = random, family = family, data = data))
        else bquote(glmmPQL(fixed, random = random, family = family, data = data,
                            weights = .(as.name(weights))))
  fit <- capture_fit(eval(cl))
  m <- fit$value
  print(summary(m))
  tt <- summary(m)$tTable
  vc <- lapply(seq_along(m$modelStruct$reStruct), function(i) {
    ## reStruct is stored innermost first; pdMatrix * sigma^2 is the covariance of that level
    lev <- names(m$modelStruct$reStruct)[i]
    V <- as.matrix(pdMatrix(m$modelStruct$reStruct[[i]])) * m$sigma^2
    list(level = lev, names = I(colnames(V)), cov = rows(V))
  })
  list(data = data_file, formula = formula, call = paste(deparse(m$call), collapse = " "),
       family = family$family, link = family$link,
       fixef = dict(fixef(m)), se = dict(tt[, "Std.Error"]), vcov = vmat(vcov(m)),
       random_cov = vc, residual_scale = m$sigma,
       pql_iterations = sum(grepl("^iteration", fit$messages)),
       nobs = nrow(data), warnings = I(fit$warnings), messages = I(fit$messages))
}

cases <- list(
  contraception_slope = pql_case(
    "use ~ age + I(age^2) + urban + livch, random = ~ 1 + urban | district", "contraception.csv",
    "use ~ age + I(age**2) + urban + livch + (1 + urban | district)",
    use ~ age + I(age^2) + urban + livch, ~ 1 + urban | district, binomial(), contraception),
  grouse_nested = pql_case(
    "TICKS ~ YEAR + cHEIGHT, random = ~ 1 | LOCATION/BROOD (Poisson)", "grouseticks.csv",
    "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION/BROOD)",
    TICKS ~ YEAR + cHEIGHT, ~ 1 | LOCATION/BROOD, poisson(), grouseticks),
  guimmun_nested = pql_case(
    "immun ~ kid2p + mom25p + ord + ethn + momEd + husEd + momWork + rural + pcInd81, random = ~ 1 | comm/mom",
    "guimmun.csv",
    "immun ~ kid2p + mom25p + ord + ethn + momEd + husEd + momWork + rural + pcInd81 + (1 | comm/mom)",
    immun ~ kid2p + mom25p + ord + ethn + momEd + husEd + momWork + rural + pcInd81,
    ~ 1 | comm/mom, binomial(), guimmun))

out <- list(
  generated_by = "tests/reference/mass_glmmpql_general.R",
  software = software_block(),
  notes = I(c(
    "MASS::glmmPQL, default control; random_cov[[k]] is the covariance of the random effects of one grouping level (pdMatrix * sigma^2), innermost level first as nlme stores them.",
    "se = summary(m)$tTable[, 'Std.Error'] (sigma rescaled by sqrt(N/(N-p)), adjustSigma = TRUE); residual_scale = m$sigma (unadjusted).",
    "cbpp with a random slope (1 + pnum | herd) was tried and dropped: lme stops with 'iteration limit reached without convergence' in glmmPQL's first round.")),
  cases = cases)
write_json_full(out, file.path(OUT_DIR, "mass_glmmpql_general.json"))
