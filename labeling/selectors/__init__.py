"""Reads (no writes here): what a new batch gets and how a batch goes (batches), what an export holds
(exports), what the labeler home shows (home). Quality's figures read through labeling.quality.selectors."""
