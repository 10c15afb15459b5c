# results stage
