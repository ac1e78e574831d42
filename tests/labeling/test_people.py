"""Batch admins onboard their team's labelers: create, reset a password, grant or take the labeler role;
each audited, each limited to their team and to labelers."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse
from knox.models import AuthToken

from audit.models import Action, AuditEvent
from core.errors import ServiceError
from core.roles import ROLE_BATCH_ADMIN, ROLE_LABELER, ROLE_RESEARCHER, is_labeler
from labeling.services import people
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def north():
    return Group.objects.create(name="team-north")


@pytest.fixture
def boss(north):
    admin = UserFactory(username="boss", roles=[ROLE_BATCH_ADMIN])
    admin.groups.add(north)
    return admin


def member(name, team, roles=(ROLE_LABELER,), **fields):
    user = UserFactory(username=name, roles=list(roles), **fields)
    user.groups.add(team)
    return user


def events(action):
    return list(AuditEvent.objects.filter(action=action).values_list("actor_name", "object_repr"))


def test_a_batch_admin_creates_a_labeler_in_their_team_who_can_log_in(boss, north, client):
    user, password = people.labeler_create(
        admin=boss, username="ada", display_name="Ada L.", email="ada@example.org", team=north
    )
    assert is_labeler(user) and user.groups.filter(pk=north.pk).exists()
    assert client.login(username="ada", password=password)
    assert events(Action.LABELER_CREATED) == [("boss", "ada")]
    assert events(Action.ROLE_GRANTED) == [("boss", "ada")]


def test_creating_refuses_a_taken_username_and_a_team_not_theirs(boss, north):
    member("ada", north)
    with pytest.raises(ServiceError) as taken:
        people.labeler_create(admin=boss, username="ADA", team=north)
    assert taken.value.field == "username"
    with pytest.raises(ServiceError) as team:
        people.labeler_create(admin=boss, username="bob", team=Group.objects.create(name="team-south"))
    assert team.value.field == "team"
    assert not get_user_model().objects.filter(username="bob").exists()


def test_a_reset_password_works_and_revokes_the_labelers_tokens(boss, north, client):
    ada = member("ada", north)
    AuthToken.objects.create(user=ada)
    _, password = people.password_reset(admin=boss, user_id=ada.pk)
    assert client.login(username="ada", password=password)
    assert not AuthToken.objects.filter(user=ada).exists()
    assert events(Action.PASSWORD_RESET) == [("boss", "ada")]


def test_the_labeler_role_is_granted_and_taken_for_team_members_only(boss, north):
    newcomer = member("newcomer", north, roles=())
    people.labeler_role_set(admin=boss, user_id=newcomer.pk, granted=True)
    assert is_labeler(get_user_model().objects.get(pk=newcomer.pk))
    people.labeler_role_set(admin=boss, user_id=newcomer.pk, granted=False)
    assert not is_labeler(get_user_model().objects.get(pk=newcomer.pk))
    assert events(Action.ROLE_REVOKED) == [("boss", "newcomer")]


@pytest.mark.parametrize(
    "target",
    [
        lambda north: member("other-team", Group.objects.create(name="team-south")),
        lambda north: member("sci", north, roles=(ROLE_RESEARCHER,)),
        lambda north: member("peer", north, roles=(ROLE_BATCH_ADMIN,)),
        lambda north: member("staffer", north, is_staff=True),
        lambda north: member("root", north, is_superuser=True),
    ],
)
def test_no_one_outside_the_team_or_with_more_power_is_touched(boss, north, target):
    user = target(north)
    before = get_user_model().objects.get(pk=user.pk).password
    for act in (
        lambda: people.password_reset(admin=boss, user_id=user.pk),
        lambda: people.labeler_role_set(admin=boss, user_id=user.pk, granted=False),
    ):
        with pytest.raises(people.NotInTeam):
            act()
    assert get_user_model().objects.get(pk=user.pk).password == before
    assert not AuditEvent.objects.exists()


def test_only_batch_admins_manage_people(north):
    sci = member("sci", north, roles=(ROLE_RESEARCHER,))
    ada = member("ada", north)
    with pytest.raises(ServiceError):
        people.labeler_create(admin=sci, username="bob", team=north)
    with pytest.raises(ServiceError):
        people.password_reset(admin=sci, user_id=ada.pk)


# --- the pages -----------------------------------------------------------------------------------------


def test_the_people_page_lists_the_team_and_shows_a_new_password_once(boss, north, client):
    member("ada", north, first_name="Ada L.")
    member("elsewhere", Group.objects.create(name="team-south"))
    client.force_login(boss)
    page = client.get(reverse("manage:people")).content.decode()
    assert "Ada L." in page and "elsewhere" not in page
    response = client.post(reverse("manage:people"), {"username": "bob", "team": north.pk})
    assert response.status_code == 200 and response["Cache-Control"].startswith("max-age=0")
    password = response.context["password"]
    assert password in response.content.decode()
    assert password not in client.get(reverse("manage:people")).content.decode()
    assert client.login(username="bob", password=password)


def test_a_bad_username_is_named_on_the_form(boss, north, client):
    client.force_login(boss)
    response = client.post(reverse("manage:people"), {"username": "no spaces!", "team": north.pk})
    assert response.status_code == 400
    assert response.context["form"].errors["username"]


def test_another_teams_labeler_is_a_404_and_a_researcher_cannot_be_made(boss, north, client):
    south = member("south", Group.objects.create(name="team-south"))
    sci = member("sci", north, roles=(ROLE_RESEARCHER,))
    client.force_login(boss)
    for user in (south, sci):
        for name, data in (("manage:people_password", {}), ("manage:people_role", {"op": "grant"})):
            assert client.post(reverse(name, args=[user.pk]), data).status_code == 404
    # the form has no role to choose: an extra 'role' field is ignored, the new user is a labeler only
    client.post(reverse("manage:people"), {"username": "bob", "team": north.pk, "role": ROLE_RESEARCHER})
    bob = get_user_model().objects.get(username="bob")
    assert set(bob.groups.values_list("name", flat=True)) == {ROLE_LABELER, "team-north"}


def test_a_labeler_or_researcher_gets_403(north, client):
    for role in (ROLE_LABELER, ROLE_RESEARCHER):
        client.force_login(member(f"x-{role}", north, roles=(role,)))
        assert client.get(reverse("manage:people")).status_code == 403


def test_the_role_and_reset_buttons_act_and_are_audited(boss, north, client):
    ada = member("ada", north)
    client.force_login(boss)
    response = client.post(reverse("manage:people_password", args=[ada.pk]))
    assert response.status_code == 200 and response.context["password"]
    refused = client.post(reverse("manage:people_role", args=[ada.pk]), {"op": ROLE_RESEARCHER})
    assert refused.status_code == 400
    client.post(reverse("manage:people_role", args=[ada.pk]), {"op": "revoke"})
    assert not get_user_model().objects.get(pk=ada.pk).groups.filter(name=ROLE_LABELER).exists()
    assert events(Action.PASSWORD_RESET) == [("boss", "ada")]
    assert events(Action.ROLE_REVOKED) == [("boss", "ada")]
