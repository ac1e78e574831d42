"""Handing out work: the next task for a labeler in a batch, under a lease, never past the batch's overlap.

- rules.py: what counts against a task's overlap (submitted + live leases), in its ORM form and its SQL
  form side by side, and who may work on a batch. The one place to read "why does a task get no more
  labels than its overlap".
- statements.py: the raw SQL statements of the hot path (pick, count, lock, read back).
- next.py: assignment_next, the picking and lock protocol.
- leases.py: lease expiry, still-mine, given-away, mark submitted.
- work.py: skip and draft.

What the labeler home shows (batches_open_for, labeler_counts) lives in labeling.selectors.home.
"""
