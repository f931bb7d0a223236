## Export lme4's VerbAgg and mlmRev's guImmun to CSV in mlteach/data/ (issue 14).
## Run from the repository root:  Rscript tests/reference/export_glmm_data.R
## Factor columns are written as their labels (ordered factors too); no row names; the rows
## are in the packages' order.  The R scripts read them back with common.R-style character
## columns and build factors with sorted levels (see lme4_glmm_general.R), which is the order
## mlteach.load() gives: numeric ids sorted as numbers, other labels sorted as strings by code
## point (C locale, sort(method = "radix"); VerbAgg's item "S4wantCurse" has a lower-case w).
suppressPackageStartupMessages({ library(lme4); library(mlmRev) })
out <- file.path("mlteach", "data")
stopifnot(dir.exists(out))
sets <- list(verbagg = list(name = "VerbAgg", pkg = "lme4"),
             guimmun = list(name = "guImmun", pkg = "mlmRev"))
for (nm in names(sets)) {
  s <- sets[[nm]]
  d <- get(s$name, envir = asNamespace(s$pkg))
  facs <- names(d)[vapply(d, is.factor, TRUE)]
  for (f in facs) cat(sprintf("  %s$%s levels (R order): %s\n", s$name, f,
                              paste(head(levels(d[[f]]), 30), collapse = " ")))
  d[] <- lapply(d, function(col) if (is.factor(col)) as.character(col) else col)
  file <- file.path(out, paste0(nm, ".csv"))
  write.csv(d, file, row.names = FALSE)
  cat(sprintf("%s::%s -> %s  %d rows, columns: %s\n", s$pkg, s$name, file, nrow(d),
              paste(names(d), collapse = ", ")))
}
cat("lme4", as.character(packageVersion("lme4")), " mlmRev", as.character(packageVersion("mlmRev")), "\n")
