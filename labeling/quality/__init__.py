"""Label quality and model evaluation: inter-annotator agreement, gold tasks, screening, labeler
statistics, evaluation batches and human win rates. See docs/quality.md."""
