"""One consensus ranking from several labelers' rankings of the same task: ranked pairs (Tideman),
the method Open-Assistant used to merge its rankings.

Each ranking is a weak order (tiers, ties allowed), given as {completion id: tier}, tier 0 the best.
For two completions a and b the margin is (rankings placing a above b) - (rankings placing b above a);
a tie counts for neither side.

1. Every pair with a positive margin is a candidate. Candidates are locked in order of decreasing
   margin; equal margins are taken by more rankings for the winner first, then by the completions'
   positions in the task, so the result never depends on dict or database order.
2. A candidate that would close a cycle with pairs already locked is skipped.
3. The consensus tiers peel the locked graph: tier 0 holds every completion that no locked pair
   puts below another remaining completion; remove that tier and repeat.

Ties: completions share a tier when nothing locked separates them, e.g. when every labeler tied them
or their votes cancel out. A single ranking gives itself back.
"""

from collections.abc import Mapping, Sequence
from itertools import combinations


def _margins(
    rankings: Sequence[Mapping[int, int]], order: Sequence[int]
) -> dict[tuple[int, int], tuple[int, int]]:
    """{(winner, loser): (margin, votes for the winner)} for every pair with a positive margin."""
    result = {}
    for a, b in combinations(order, 2):
        a_wins = sum(1 for r in rankings if a in r and b in r and r[a] < r[b])
        b_wins = sum(1 for r in rankings if a in r and b in r and r[b] < r[a])
        if a_wins > b_wins:
            result[(a, b)] = (a_wins - b_wins, a_wins)
        elif b_wins > a_wins:
            result[(b, a)] = (b_wins - a_wins, b_wins)
    return result


def _reaches(locked: dict[int, set[int]], start: int, goal: int) -> bool:
    stack, seen = [start], set()
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            stack.extend(locked[node])
    return False


def ranked_pairs(rankings: Sequence[Mapping[int, int]], order: Sequence[int]) -> list[list[int]]:
    """Consensus tiers (best first) over the completions in `order` (their positions in the task)."""
    if not rankings:
        raise ValueError("ranked_pairs needs at least one ranking.")
    position = {cid: i for i, cid in enumerate(order)}
    candidates = sorted(
        _margins(rankings, order).items(),
        key=lambda item: (-item[1][0], -item[1][1], position[item[0][0]], position[item[0][1]]),
    )
    locked: dict[int, set[int]] = {cid: set() for cid in order}
    for (winner, loser), _ in candidates:
        if not _reaches(locked, loser, winner):
            locked[winner].add(loser)

    tiers: list[list[int]] = []
    remaining = list(order)
    while remaining:
        below = {loser for winner in remaining for loser in locked[winner]}
        tier = [cid for cid in remaining if cid not in below]
        tiers.append(tier)
        remaining = [cid for cid in remaining if cid not in tier]
    return tiers
