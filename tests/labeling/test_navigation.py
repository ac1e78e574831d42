"""Every page a role may open without naming an object is reachable through the navigation, and no
navigation link refuses the role that is shown it.

The pages come from the URL walker's table (tests/security/test_url_walker.py: ACCESS says who may GET
each route), so a new page is checked here as soon as it is listed there. The crawler starts at / and
follows only links inside <nav> elements (the main navigation and the section navigations)."""

from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Group
from django.urls import resolve, reverse

from core.roles import ROLE_BATCH_ADMIN, ROLE_LABELER, ROLE_RESEARCHER
from tests.factories import UserFactory
from tests.security.test_url_walker import ACCESS, A, L, R, all_routes

pytestmark = pytest.mark.django_db

ROLES = {L: ROLE_LABELER, A: ROLE_BATCH_ADMIN, R: ROLE_RESEARCHER}
# Id-less pages no navigation needs to show: the login page (for anonymous users) and the page after a
# password change. Routes that answer a redirect (/manage/ goes to the role's first management page) or
# something other than HTML are not pages (pages_of).
NOT_NAVIGATED = {"login", "password_change_done"}


class NavLinks(HTMLParser):
    """The hrefs of the <a> elements inside <nav> elements."""

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "nav":
            self.depth += 1
        elif tag == "a" and self.depth:
            self.links.append(dict(attrs).get("href") or "")

    def handle_endtag(self, tag):
        if tag == "nav":
            self.depth -= 1


def nav_links(html: str) -> list[str]:
    parser = NavLinks()
    parser.feed(html)
    return [href.split("?")[0].split("#")[0] for href in parser.links if href.startswith("/")]


def is_page(client, name: str) -> bool:
    response = client.get(reverse(name))
    return response.status_code == 200 and response["Content-Type"].startswith("text/html")


def pages_of(client, role: str) -> set[str]:
    """Route names of the HTML pages `role` may GET that take no id (the API's routes are not pages)."""
    return {
        route.name
        for route in all_routes()
        if not route.kwargs
        and not route.name.startswith("api:")
        and route.name not in NOT_NAVIGATED
        and role in ACCESS[route.name][0]
        and is_page(client, route.name)
    }


def crawl(client) -> tuple[set[str], list[str]]:
    """(route names reached, problems) following nav links from /."""
    seen, queue, reached, problems = {"/"}, ["/"], set(), []
    while queue:
        url = queue.pop(0)
        response = client.get(url)
        if response.status_code != 200:
            problems.append(f"{url} answered {response.status_code}")
            continue
        reached.add(resolve(url).view_name)
        for link in nav_links(response.content.decode()):
            if link not in seen:
                seen.add(link)
                queue.append(link)
    return reached, problems


@pytest.mark.parametrize("role", [L, A, R])
def test_navigation_reaches_every_page_of_the_role(client, role):
    user = UserFactory(username=f"nav-{role}", roles=[ROLES[role]])
    user.groups.add(Group.objects.create(name="team-nav"))
    client.force_login(user)
    reached, problems = crawl(client)
    assert not problems, problems
    assert pages_of(client, role) - reached == set()


def test_the_quality_area_is_linked_for_every_role(client):
    for role in (L, A, R):
        client.force_login(UserFactory(username=f"q-{role}", roles=[ROLES[role]]))
        assert "/quality/" in nav_links(client.get("/").content.decode())
