"""Every URL of the project, walked as every role against objects that are not theirs.

The world (tests/security/world.py) has two labelers with private work on two disjoint sides. Each role
GETs every route (lists with and without filters naming the other side), POSTs and DELETEs where a
write would be an escalation, and the test checks that

- routes on objects that are not the role's answer 401/403/404/405 (anonymous: 302 to the login page),
- no response body (any status, HTML, JSON or file) holds a marker of text the role may not see,
- refused writes change nothing,
- the role does reach what it may see (status 2xx and the markers of its own data show up), so the test
  cannot pass because nothing rendered.

A URL kwarg is filled from KWARG_KINDS / PK_KINDS: a route with a kwarg the tables cannot fill fails the
test, and so does a route missing from ACCESS, so a new URL cannot be skipped silently. The Django admin
is not walked (staff only); non-staff users are checked to be sent away from it."""

import json
from dataclasses import dataclass, field

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from core.roles import ROLES as ROLE_NAMES
from tests.factories import UserFactory
from tests.security.world import MARKED, ONLY_THE_LABELER, World, completion_ids, fingerprint

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "labeler_a", "labeler_b", "batch_admin", "researcher")

# Who may do what (core/permissions.py: the pages' checks and the API's ByRole rules; the object checks of
# labeling/views/access.py and manage_access.py), as (who may GET, who may POST or DELETE):
# - anonymous users see the login page only;
# - a labeler ("L") sees their own work (assignments, drafts, rankings, demonstrations, prompts they
#   wrote), the batches they are on and those batches' tasks, and their own quality numbers; never
#   another labeler's work, name or pseudonym, nor a batch they are not on;
# - batch admins ("A") and researchers ("R") read batches, prompts, completions, every labeler's
#   submissions and numbers, datasets, models and runs by design (batch admins run batches and gold
#   tasks, researchers export, download and train); neither reads a labeler's drafts or skip reasons
#   (no page shows them), and only researchers download dataset files (which carry pseudonyms).
L, A, R = "L", "A", "R"
ANYONE = frozenset({"anonymous", L, A, R})
ROLES_ALL = frozenset({L, A, R})
READERS = frozenset({A, R})
NOBODY: frozenset = frozenset()
ACCESS: dict[str, tuple[frozenset, frozenset]] = {
    "login": (ANYONE, NOBODY),
    "favicon": (ANYONE, NOBODY),  # a redirect to the static icon
    "logout": (NOBODY, NOBODY),
    "password_change": (ROLES_ALL, NOBODY),
    "password_change_done": (ROLES_ALL, NOBODY),
    "tokens": (ROLES_ALL, NOBODY),
    "token_revoke": (NOBODY, {L}),  # one's own; a batch admin's team (none here) too
    "team_tokens": ({A}, NOBODY),
    "logout_everywhere": (NOBODY, NOBODY),
    "home": (ROLES_ALL, NOBODY),
    "workspace-start": (NOBODY, {L}),
    "workspace-assignment": ({L}, {L}),
    "workspace-skip": (NOBODY, {L}),
    "workspace-draft": (NOBODY, {L}),
    "workspace-prompt": (ROLES_ALL, NOBODY),
    "workspace-history": ({L}, NOBODY),
    **{
        f"explore:{n}": (READERS, NOBODY) for n in ("rankings", "demonstrations", "prompts", "prompt", "task")
    },
    # Only a labeler's own submitted assignment; the walker's own one is live, so it answers 404.
    "workspace-submission": (NOBODY, NOBODY),
    "workspace-undo": (NOBODY, {L}),
    "api:assignment-undo": (NOBODY, {L}),
    "api:token": (NOBODY, NOBODY),
    "api:token-list": (ROLES_ALL, NOBODY),
    "api:token-revoke": (NOBODY, {L}),
    "api:team-token-list": ({A}, NOBODY),
    "api:logout-everywhere": (NOBODY, NOBODY),
    "api:api-root": (ROLES_ALL, NOBODY),
    "api:schema": (ROLES_ALL, NOBODY),
    "api:docs": (ROLES_ALL, NOBODY),
    "api:prompt-list": (ROLES_ALL, {A}),
    "api:prompt-detail": (ROLES_ALL, NOBODY),
    "api:completion-list": (READERS, NOBODY),
    "api:completion-detail": (READERS, NOBODY),
    "api:demonstration-list": (ROLES_ALL, NOBODY),
    "api:demonstration-detail": (ROLES_ALL, NOBODY),
    "api:batch-list": (ROLES_ALL, {A}),
    "api:batch-detail": (ROLES_ALL, NOBODY),
    "api:batch-close": (NOBODY, {A}),
    "api:batch-pause": (NOBODY, {A}),
    "api:batch-resume": (NOBODY, {A}),
    "api:batch-labelers": (NOBODY, {A}),
    "api:batch-progress": (READERS, NOBODY),
    "api:task-list": (ROLES_ALL, NOBODY),
    "api:task-detail": (ROLES_ALL, NOBODY),
    "api:task-next": (NOBODY, {L}),
    "api:assignment-detail": ({L}, NOBODY),
    "api:assignment-submit": (NOBODY, {L}),
    "api:ranking-list": (ROLES_ALL, NOBODY),
    "api:ranking-detail": (ROLES_ALL, NOBODY),
    "api:dataset-list": (READERS, {R}),
    "api:dataset-detail": (READERS, {R}),
    "api:dataset-download": ({R}, NOBODY),
    "api:model-version-list": (READERS, NOBODY),
    "api:model-version-detail": (READERS, NOBODY),
    "api:training-run-list": (READERS, {R}),
    "api:training-run-detail": (READERS, NOBODY),
    "api:training-run-cancel": (NOBODY, {R}),
    "api:round-list": (NOBODY, {R}),
    "api:round-detail": (READERS, NOBODY),
    "api:import-prompts": (NOBODY, {A}),
    "api:import-completions": (NOBODY, {A}),
    "api:job-list": (READERS, NOBODY),  # each role lists the jobs of its kind
    "api:job-detail": ({R}, NOBODY),  # the world's job is an export: researchers' (imports: batch admins')
    "manage:home": (READERS, NOBODY),
    "manage:batches": (READERS, NOBODY),
    "manage:batch_new": ({A}, {A}),
    "manage:batch": (READERS, NOBODY),
    "manage:batch_action": (NOBODY, {A}),
    "manage:batch_labelers": (NOBODY, {A}),
    "manage:batch_settings": (NOBODY, {A}),
    "manage:imports": ({A}, {A}),
    "manage:datasets": (READERS, {R}),
    "manage:dataset_download": ({R}, NOBODY),
    "manage:dataset_delete": (NOBODY, {R}),
    "manage:job": ({R}, NOBODY),
    "manage:people": ({A}, {A}),  # a batch admin's team (none in this world)
    "manage:people_password": (NOBODY, {A}),
    "manage:people_role": (NOBODY, {A}),
    "training:overview": (READERS, NOBODY),
    "training:run_new": ({R}, {R}),
    "training:run": (READERS, NOBODY),
    "training:run_status": (READERS, NOBODY),
    "training:run_cancel": (NOBODY, {R}),
    "training:run_retry": (NOBODY, {R}),
    "training:model": (READERS, NOBODY),
    "training:round_start": (NOBODY, {R}),
    "training:round": (READERS, NOBODY),
    "training:round_status": (READERS, NOBODY),
    "training:round_retry": (NOBODY, {R}),
    "quality:dashboard": (ROLES_ALL, NOBODY),
    "quality:labeler": (ROLES_ALL, NOBODY),
    "quality:gold": (READERS, NOBODY),
    "quality:gold_batch": (READERS, NOBODY),
    "quality:gold_settings": (NOBODY, {A}),
    "quality:gold_task": (NOBODY, {A}),
    "quality:qualification_decision": (NOBODY, {A}),
    "training:evaluations": (READERS, {A}),
    "training:evaluation": (READERS, NOBODY),
    "api:quality-agreement": (READERS, NOBODY),
    "api:quality-labelers": (READERS, NOBODY),
    "api:quality-labeler": (ROLES_ALL, NOBODY),
    "api:evaluations": (READERS, NOBODY),
    "api:evaluation": (READERS, NOBODY),
}
# Log in, log out, get a token, change one's own password, make a token or log out everywhere: not a write
# on anyone else's objects.
NOT_POSTED = {
    "login",
    "favicon",
    "logout",
    "api:token",
    "password_change",
    "password_change_done",
    "tokens",
    "logout_everywhere",
    "api:logout-everywhere",
}

# How a URL kwarg is filled: by its name, or for `pk` by the route it belongs to.
KWARG_KINDS = {"batch_id": "batch", "task_id": "task", "user_id": "user", "prefix": "token"}
PK_KINDS = {
    "workspace-assignment": "assignment",
    "workspace-skip": "assignment",
    "workspace-draft": "assignment",
    "workspace-prompt": "prompt",
    "workspace-submission": "assignment",
    "explore:prompt": "prompt",
    "workspace-undo": "assignment",
    "api:assignment-undo": "assignment",
    "api:prompt-detail": "prompt",
    "api:completion-detail": "completion",
    "api:demonstration-detail": "demonstration",
    **{f"api:batch-{a}": "batch" for a in ("detail", "close", "pause", "resume", "labelers", "progress")},
    "api:task-detail": "task",
    "api:assignment-detail": "assignment",
    "api:assignment-submit": "assignment",
    "api:ranking-detail": "ranking",
    "api:dataset-detail": "snapshot",
    "api:dataset-download": "snapshot",
    "api:model-version-detail": "model_version",
    "api:training-run-detail": "training_run",
    "api:training-run-cancel": "training_run",
    "api:round-detail": "round",
    **{f"manage:{n}": "batch" for n in ("batch", "batch_action", "batch_labelers", "batch_settings")},
    "manage:dataset_download": "snapshot",
    "manage:dataset_delete": "snapshot",
    "api:job-detail": "job",
    "manage:job": "job",
    **{f"training:{n}": "training_run" for n in ("run", "run_status", "run_cancel", "run_retry")},
    "training:model": "model_version",
    **{f"training:{n}": "round" for n in ("round", "round_status", "round_retry")},
}
FORMAT = "api"  # a DRF format suffix, should the router make them again: the browsable API


@dataclass(frozen=True)
class Route:
    name: str
    kwargs: tuple[str, ...]

    def kinds(self) -> dict[str, str]:
        """kwarg -> kind of object, for the kwargs that name an object."""
        found = {}
        for kwarg in self.kwargs:
            if kwarg == "pk":
                found[kwarg] = PK_KINDS[self.name]
            elif kwarg != "format":
                found[kwarg] = KWARG_KINDS[kwarg]
        return found

    def url(self, objects: dict[str, object]) -> str:
        values = {k: objects[kind].pk for k, kind in self.kinds().items()}
        if "format" in self.kwargs:
            values["format"] = FORMAT
        return reverse(self.name, kwargs=values)

    @property
    def is_api(self) -> bool:
        return self.name.startswith("api:")


def _patterns(patterns, namespace: str = ""):
    for p in patterns:
        if isinstance(p, URLResolver):
            inner = ":".join(x for x in (namespace, p.namespace or "") if x)
            yield from _patterns(p.url_patterns, inner)
        elif isinstance(p, URLPattern):
            yield namespace, p


def all_routes() -> list[Route]:
    routes = set()
    for namespace, pattern in _patterns(get_resolver().url_patterns):
        if namespace == "admin":
            continue
        assert pattern.name, f"unnamed URL pattern {pattern.pattern}: name it so the walker can reverse it"
        name = f"{namespace}:{pattern.name}" if namespace else pattern.name
        routes.add(Route(name, tuple(sorted(pattern.pattern.regex.groupindex))))
    return sorted(routes, key=lambda r: (r.name, r.kwargs))


def test_every_route_is_in_the_tables():
    """A new URL must say who may use it and how its kwargs are filled before the walk covers it."""
    problems = []
    for route in all_routes():
        if route.name not in ACCESS:
            problems.append(f"{route.name}: not in ACCESS")
        for kwarg in route.kwargs:
            known = kwarg == "format" or (kwarg == "pk" and route.name in PK_KINDS) or kwarg in KWARG_KINDS
            if not known:
                problems.append(f"{route.name}: no mapping fills kwarg '{kwarg}'")
    assert not problems, "\n".join(problems)


def test_non_staff_users_are_sent_away_from_the_admin(client):
    for role in (None, *ROLE_NAMES):
        if role:
            client.force_login(UserFactory(username=f"x-{role.replace(' ', '-')}", roles=[role]))
        for url in ("/admin/", "/admin/labeling/ranking/", "/admin/labeling/assignment/"):
            response = client.get(url)
            assert response.status_code == 302 and "/admin/login/" in response["Location"], (role, url)


# --- the walk -------------------------------------------------------------------------------------------


def short(role: str) -> str:
    return {"labeler_a": L, "labeler_b": L, "batch_admin": A, "researcher": R}.get(role, role)


def forbidden_markers(world: World, role: str) -> dict[str, str]:
    """label -> marker of text this role must never be shown."""
    both = (world.a, world.b)
    if role == "anonymous":
        return {k: v for s in both for k, v in s.markers(*MARKED, "pseudonym").items()}
    own, other = world.sides_of(role)
    if own is not None:  # a labeler: nothing of the other side
        return other.markers(*MARKED, "pseudonym")
    private = ONLY_THE_LABELER if role == "researcher" else (*ONLY_THE_LABELER, "pseudonym")
    return {k: v for s in both for k, v in s.markers(*private).items()}


def expected_markers(world: World, role: str) -> dict[str, str]:
    """label -> marker the role's walk must come across at least once (the walk reached the data)."""
    own, other = world.sides_of(role)
    if role == "anonymous":
        return {}
    seen = [w for w in MARKED if w != "skip-reason"]
    if own is not None:
        return own.markers(*seen)
    seen = [w for w in seen if w not in (*ONLY_THE_LABELER, "display-name")]  # no page shows it to them
    return other.markers(*seen, *(["pseudonym"] if role == "researcher" else []))


def body_of(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)  # the test client closes it once consumed
    return response.content


@dataclass
class Walk:
    world: World
    role: str
    client: Client
    forbidden: dict[str, str]
    problems: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    requests: int = 0

    def send(self, method: str, url: str, route: Route, data=None):
        self.requests += 1
        if data is not None and route.is_api:
            response = getattr(self.client, method)(url, json.dumps(data), content_type="application/json")
        elif data is not None and route.name == "workspace-draft":
            response = self.client.post(url, json.dumps(data), content_type="application/json")
        else:
            response = getattr(self.client, method)(url, data or {})
        body = body_of(response)
        asked = url + json.dumps(data or {})
        for label, marker in self.forbidden.items():
            if marker.encode() in body and marker not in asked:  # not the request's own words echoed
                self.problems.append(f"LEAK {method.upper()} {url} ({response.status_code}) shows {label}")
        if 200 <= response.status_code < 300:
            for label, marker in expected_markers(self.world, self.role).items():
                if marker.encode() in body:
                    self.seen.add(label)
        return response

    def get(self, route: Route, url: str, *, allowed: bool | None, what: str = "") -> None:
        """GET the URL (and its browsable API page); allowed=None: only the body is checked."""
        for variant in browsable(route, url):
            response = self.send("get", variant, route)
            if allowed is not None:
                self.expect(response, allowed=allowed, what=f"GET {variant}{what}")

    def denied(self, response) -> bool:
        if self.role == "anonymous" and response.status_code == 302:
            return response["Location"].startswith("/accounts/login/")
        return response.status_code in (401, 403, 404, 405)

    def expect(self, response, *, allowed: bool, what: str) -> None:
        ok = 200 <= response.status_code < 300 or (
            response.status_code in (301, 302) and not response["Location"].startswith("/accounts/login/")
        )
        if allowed and not ok:
            self.problems.append(f"BLOCKED {what}: {response.status_code}, expected to be allowed")
        if not allowed and not self.denied(response):
            self.problems.append(f"ALLOWED {what}: {response.status_code}, expected 401/403/404/405")


def candidates(route: Route, objects: dict[str, list]) -> list[dict[str, object]]:
    """One {kind: object} per object of the route's main kind (the others take their first object)."""
    kinds = list(route.kinds().values())
    if not kinds:
        return [{}]
    first = {kind: objects[kind][0] for kind in kinds}
    return [{**first, kinds[0]: obj} for obj in objects[kinds[0]]]


def filters(other) -> list[str]:
    """Query strings a list is asked with: none, then filters naming the other side's user and objects."""
    o, name = other.objects, other.user.username
    return [
        "",
        f"?labeler={name}&author={name}&origin_user={name}",
        f"?batch={o['batch'][0].pk}&task={o['task'][0].pk}&prompt={o['prompt'][0].pk}",
        f"?batch={o['batch'][1].pk}&prompt={o['prompt'][1].pk}&user={o['user'][0].pk}",
    ]


def browsable(route: Route, url: str) -> list[str]:
    """The URL, and for the API also as DRF's browsable page (it renders filter forms, and more)."""
    if not route.is_api or route.name in ("api:schema", "api:docs"):
        return [url]
    return [url, url + ("&" if "?" in url else "?") + "format=api"]


def walk_reads(walk: Walk, routes: list[Route]) -> None:
    own, other = walk.world.sides_of(walk.role)
    role = short(walk.role)
    for route in routes:
        may_read = role in ACCESS[route.name][0]
        if not route.kinds():
            for i, query in enumerate(filters(other)):
                walk.get(route, route.url({}) + query, allowed=may_read if i == 0 else None)
            continue
        if own is not None:  # a labeler: the other side's objects are refused, their own are not
            for objects in candidates(route, walk.world.objects(other)):
                walk.get(route, route.url(objects), allowed=False, what=" (not theirs)")
            url = route.url({k: v[0] for k, v in walk.world.objects(own).items()})
            walk.get(route, url, allowed=may_read, what=" (their own)")
            walk.get(route, url + filters(other)[2], allowed=None)
        else:
            walk.get(
                route, route.url({k: v[0] for k, v in walk.world.objects(other).items()}), allowed=may_read
            )


def post_body(route: Route, objects: dict[str, object], world: World, role: str) -> dict:
    """A body that would do harm if the write were let through."""
    own, _ = world.sides_of(role)
    me = own.user if own else world.users["batch_admin"]
    task = objects["assignment"].task if "assignment" in objects else None
    common = {k: v[0] for k, v in world.common.items()}
    bodies = {
        "workspace-assignment": lambda: {
            "tiers": json.dumps([completion_ids(task)]),
            "seconds_spent": "3",
            "text": "taken over",
            **{f"likert-{c}": "4" for c in completion_ids(task)},
        },
        "workspace-skip": lambda: {"reason": "not mine to skip"},
        "workspace-draft": lambda: {"draft": {"comment": "overwritten"}},
        "api:assignment-submit": lambda: {
            "tiers": [completion_ids(task)],
            "ratings": {c: {"likert": 4} for c in completion_ids(task)},
            "text": "taken over",
        },
        "api:batch-list": lambda: {"name": "escalated", "kind": "prompt_writing", "task_count": 1},
        "api:batch-labelers": lambda: {"add": [me.username]},
        "api:prompt-list": lambda: {"text": "An escalated prompt", "category": "chat"},
        "api:dataset-list": lambda: {"kind": "rm_pairs"},
        "manage:batch_new": lambda: {
            "name": "escalated",
            "kind": "prompt_writing",
            "status": "active",
            "overlap": 1,
            "lease_minutes": 30,
            "task_count": 1,
        },
        "manage:batch_action": lambda: {"action": "close"},
        "manage:people": lambda: {"username": "escalated", "display_name": "escalated"},
        "manage:people_role": lambda: {"op": "revoke"},
        "manage:batch_labelers": lambda: {"op": "add", "add-users": [me.pk]},
        "manage:batch_settings": lambda: {
            "settings-name": "escalated",
            "settings-overlap": 3,
            "settings-lease_minutes": 5,
        },
        "manage:datasets": lambda: {"kind": "rm_pairs", "rankings": "all"},
        "training:run_new": lambda: {
            "kind": "sft",
            "base_model": common["model_version"].pk,
            "snapshots": [common["snapshot"].pk],
            "config": "{}",
        },
        "api:training-run-list": lambda: {
            "kind": "sft",
            "base_model": common["model_version"].pk,
            "snapshots": [common["snapshot"].pk],
        },
        "training:round_start": lambda: {"method": "ppo", "k": 4, "prompt_limit": 5},
        "api:round-list": lambda: {"method": "ppo"},
        "quality:gold_settings": lambda: {"gold_rate": "0.5", "qualification_threshold": "0.5"},
        "quality:qualification_decision": lambda: {"decision": "approved"},
        "training:evaluations": lambda: {"name": "escalated", "status": "active", "overlap": 1},
    }
    return bodies[route.name]() if route.name in bodies else {}


def walk_writes(walk: Walk, routes: list[Route]) -> None:
    """POST (and DELETE, on the API) wherever the role may not write; nothing may change."""
    _, other = walk.world.sides_of(walk.role)
    role = short(walk.role)
    before = fingerprint()
    for route in routes:
        if route.name in NOT_POSTED:
            continue
        _, may_write = ACCESS[route.name]
        if role in may_write and (role != L or not route.kinds()):
            continue  # allowed: other tests cover the write itself
        methods = ("post", "delete") if route.is_api else ("post",)
        for objects in candidates(route, walk.world.objects(other)):
            url = route.url(objects)
            for method in methods:
                body = post_body(route, objects, walk.world, walk.role) if method == "post" else None
                response = walk.send(method, url, route, body)
                if may_write or route.is_api:  # a page that only reads may answer a POST like a GET
                    walk.expect(response, allowed=False, what=f"{method.upper()} {url}")
                after = fingerprint()
                if after != before:
                    walk.problems.append(
                        f"WRITE {method.upper()} {url} ({response.status_code}) changed data"
                    )
                    before = after


@pytest.mark.parametrize("role", ROLES)
def test_no_role_sees_or_changes_what_is_not_theirs(world, role):
    client = Client()
    if world.users[role] is not None:
        client.force_login(world.users[role])
    walk = Walk(world, role, client, forbidden_markers(world, role))
    routes = all_routes()
    walk_reads(walk, routes)
    missing = set(expected_markers(world, role)) - walk.seen
    walk_writes(walk, routes)
    print(f"{role}: {len(routes)} routes, {walk.requests} requests")
    assert not walk.problems, f"{len(walk.problems)} problems:\n" + "\n".join(walk.problems)
    assert not missing, f"the walk never showed {role} their own data: {sorted(missing)}"
