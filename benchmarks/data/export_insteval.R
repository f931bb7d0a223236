## Export lme4's InstEval (university lecture evaluations, ETH Zürich) for the crossed-model
## benchmarks (issue 15). Run from the repository root:
##   Rscript benchmarks/data/export_insteval.R
## Writes benchmarks/data/insteval.csv.gz: factor columns as their labels, no row names.
suppressPackageStartupMessages(library(lme4))
d <- get("InstEval", envir = asNamespace("lme4"))
d[] <- lapply(d, function(col) if (is.factor(col)) as.character(col) else col)
out <- gzfile(file.path("benchmarks", "data", "insteval.csv.gz"), "w")
write.csv(d, out, row.names = FALSE)
close(out)
cat(sprintf("InstEval -> insteval.csv.gz: %d rows, columns: %s\n", nrow(d),
            paste(names(d), collapse = ", ")))
cat("lme4", as.character(packageVersion("lme4")), "\n")
