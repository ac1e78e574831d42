"""Human evaluation of models, in one place: evaluation batches (batches.py: two or more models answer the
same held-out prompts, labelers rate and rank them), their results (winrate.py: win rate against a
baseline, Likert means, flag rates), the win rate per round (charts.py), and the pages under
/training/evaluations/ (views.py, forms.py). The API is training/api.py (/api/v1/evaluations/). The
automatic evaluation of a new policy by the reward model is training/ml/evaluation.py, run by
training/services/auto_evaluation.py.
"""
