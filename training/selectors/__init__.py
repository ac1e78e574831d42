"""The training side's reads for its pages: a round's progress step by step, a run's live status and its
config as a table. No writes here (those are training/services)."""
