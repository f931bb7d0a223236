## Extra plm reference values for mlteach.panel (issue #4), complementing plm_panel.R:
##  * a ragged Grunfeld panel whose groups have DIFFERENT numbers of rows and internal gaps
##    (in plm_panel.R's unbalanced subset every firm keeps 16 rows, so theta is constant);
##  * first differences that skip gaps (pooled OLS on plm's diff(), which respects time),
##    next to plm's model = "fd", which differences consecutive rows across gaps.
## Run from the repository root:   Rscript tests/reference/plm_extra.R
## Writes tests/reference/plm_extra.json and tests/reference/plm_extra.Rout.txt
source(file.path("tests", "reference", "common.R"))
suppressPackageStartupMessages(library(plm))

sink(file.path(OUT_DIR, "plm_extra.Rout.txt"), split = TRUE)
on.exit(sink(), add = TRUE)
banner("plm_extra.R  --  ", format(Sys.time()))
print(sessionInfo())

grunfeld <- load_data("grunfeld.csv")
## Ragged panel: firm f keeps the years up to 1954 - (3 f mod 7), without the years where
## (f + year) mod 9 == 0 (gaps inside the series).
keep <- grunfeld$year <= 1954 - (3 * grunfeld$firm) %% 7 & (grunfeld$firm + grunfeld$year) %% 9 != 0
ragged <- grunfeld[keep, ]
rownames(ragged) <- NULL
gu <- grunfeld[(grunfeld$firm * 7 + grunfeld$year) %% 5 != 0, ]
rownames(gu) <- NULL
fm <- inv ~ value + capital

fit_entry <- function(m) {
  V <- as.matrix(vcov(m))
  s <- summary(m)
  list(coefficients = dict(coef(m)), se = dict(sqrt(diag(V))), vcov = vmat(V),
       df_residual = df.residual(m), nobs = nobs(m), rsq = unname(s$r.squared["rsq"]),
       se_arellano_HC0 = dict(sqrt(diag(vcovHC(m, method = "arellano", type = "HC0")))),
       se_arellano_sss = dict(sqrt(diag(vcovHC(m, method = "arellano", type = "sss")))))
}

pr <- pdata.frame(ragged, index = c("firm", "year"))
banner("ragged panel: rows per firm")
print(table(ragged$firm))
res <- list()
w <- plm(fm, pr, model = "within"); print(summary(w))
w2 <- plm(fm, pr, model = "within", effect = "twoways"); print(summary(w2))
b <- plm(fm, pr, model = "between"); print(summary(b))
r <- plm(fm, pr, model = "random", random.method = "swar"); print(summary(r)); print(ercomp(r))
f <- plm(fm, pr, model = "fd"); print(summary(f))
th <- ercomp(r)$theta
idx <- index(r)[[1]]
theta_g <- tapply(as.numeric(th), idx, function(z) z[1])
h1 <- phtest(w, r); print(h1)
h2 <- phtest(fm, data = pr, method = "aux",
             vcov = function(x) vcovHC(x, method = "arellano", type = "HC0")); print(h2)
ht <- function(h) list(statistic = unname(h$statistic), df = unname(as.numeric(h$parameter)),
                       p_value = h$p.value)

## First differences that skip gaps: plm's diff() lags by time (shift = "time"), so a
## difference across a gap is NA and dropped; pooled OLS with an intercept as model = "fd".
fd_gaps <- function(pd) {
  m <- plm(diff(inv) ~ diff(value) + diff(capital), data = pd, model = "pooling")
  print(summary(m))
  V <- as.matrix(vcov(m))
  cf <- coef(m)
  nm <- c("(Intercept)", "value", "capital")
  names(cf) <- nm; dimnames(V) <- list(nm, nm)
  Vh <- vcovHC(m, method = "arellano", type = "HC0"); dimnames(Vh) <- list(nm, nm)
  list(coefficients = dict(cf), se = dict(sqrt(diag(V))), df_residual = df.residual(m),
       nobs = nobs(m), se_arellano_HC0 = dict(sqrt(diag(Vh))))
}
banner("ragged: first differences skipping gaps")
fdr <- fd_gaps(pr)
banner("grunfeld_unbalanced: first differences skipping gaps")
fdu <- fd_gaps(pdata.frame(gu, index = c("firm", "year")))

res$ragged <- list(
  data = "grunfeld.csv",
  subset_rule = "keep rows with year <= 1954 - (3*firm %% 7) and (firm + year) %% 9 != 0",
  nobs = nrow(ragged), rows_per_group = dict(table(ragged$firm)),
  models = list(within = fit_entry(w), within_twoways = fit_entry(w2),
                between = list(coefficients = dict(coef(b)), se = dict(sqrt(diag(vcov(b)))),
                               df_residual = df.residual(b)),
                random_swar = c(fit_entry(r), list(sigma2 = dict(ercomp(r)$sigma2),
                                                   theta = dict(theta_g))),
                fd = fit_entry(f),
                fd_skip_gaps = fdr),
  hausman = list(classic = ht(h1), aux_arellano_HC0 = ht(h2)))
res$grunfeld_unbalanced <- list(
  subset_rule = "drop rows where (firm*7 + year) %% 5 == 0 (as plm_panel.json)",
  fd_skip_gaps = fdu)

out <- list(
  generated_by = "tests/reference/plm_extra.R",
  software = software_block(),
  notes = I(c(
    "ragged: Grunfeld with different numbers of rows per firm and gaps inside the series.",
    "random_swar$theta: one value per firm (plm gives one per row; constant within firm).",
    "fd_skip_gaps: plm(diff(inv) ~ diff(value) + diff(capital), model = 'pooling'); diff() of a pseries lags by time, so differences across gaps are NA and dropped. Coefficients renamed from diff(x) to x.",
    "fd: plm's model = 'fd', which differences consecutive rows of a firm even across a gap.")),
  datasets = res)
write_json_full(out, file.path(OUT_DIR, "plm_extra.json"))
