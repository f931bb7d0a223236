## Export the extra lme4 example data sets to CSV in mlteach/data/.
## Run from the repository root:  Rscript tests/reference/export_lme4_data.R
## Factor columns are written as their labels; no row names.
suppressPackageStartupMessages(library(lme4))
out <- file.path("mlteach", "data")
stopifnot(dir.exists(out))
sets <- c(Dyestuff2 = "dyestuff2.csv", Pastes = "pastes.csv",
          Penicillin = "penicillin.csv", cbpp = "cbpp.csv",
          grouseticks = "grouseticks.csv")
for (nm in names(sets)) {
  d <- get(nm, envir = asNamespace("lme4"))
  d[] <- lapply(d, function(col) if (is.factor(col)) as.character(col) else col)
  write.csv(d, file.path(out, sets[[nm]]), row.names = FALSE)
  cat(sprintf("%-12s -> %-16s %4d rows, columns: %s\n", nm, sets[[nm]], nrow(d),
              paste(names(d), collapse = ", ")))
}
cat("lme4", as.character(packageVersion("lme4")), "\n")
