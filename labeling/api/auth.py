"""API tokens: how a call authenticates with one, and POST /api/auth/token/ that gives one for a username
and password.

Authentication reads the token's user and the names of their groups (roles) in one query: every API call
authenticates and most ask for a role, so DRF's token lookup plus the roles' query became one.

The token endpoint is throttled like the login page. django-axes counts failures through
django.contrib.auth.authenticate, which DRF's AuthTokenSerializer calls with the request; a locked-out
username and address get 429 with Retry-After, even with the right password. Axes flags the lockout on
DRF's request object, which its middleware (looking at Django's request) never sees, so this view answers
it.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import authentication
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import AuthenticationFailed, Throttled, ValidationError
from rest_framework.settings import api_settings

from config.login_throttle import cool_off_seconds

from ..roles import remember_roles
from ..rows import columns, instance
from ..storable import unstorable


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token authentication (same header, same errors), with the user's roles in the same query."""

    def authenticate_credentials(self, key):
        if unstorable(key):  # a NUL character: no token has one, and the database would refuse it
            raise AuthenticationFailed(_("Invalid token."))
        User = get_user_model()
        # One row per group of the user (one row with no role when they have none). Raw SQL through a
        # cursor: DRF's select_related query and the roles' query cost 0.8 ms of CPU per call, this one
        # 0.1 ms (a RawQuerySet, which maps columns to fields on every call, 0.3 ms).
        attnames, user_columns = columns(User, "u")
        with connection.cursor() as cursor:
            cursor.execute(
                f"""SELECT {user_columns}, g.name
                    FROM {Token._meta.db_table} t
                    JOIN {User._meta.db_table} u ON u.id = t.user_id
                    LEFT JOIN {User.groups.through._meta.db_table} ug ON ug.user_id = u.id
                    LEFT JOIN {Group._meta.db_table} g ON g.id = ug.group_id
                    WHERE t.key = %s""",
                [key],
            )
            rows = cursor.fetchall()
        if not rows:
            raise AuthenticationFailed(_("Invalid token."))
        user = instance(User, attnames, rows[0][:-1])
        if not user.is_active:
            raise AuthenticationFailed(_("User inactive or deleted."))
        remember_roles(user, [row[-1] for row in rows if row[-1] is not None])
        token = Token.from_db(connection.alias, ["key", "user_id"], [key, user.pk])
        token.user = user
        return user, token


class TokenObtainApi(ObtainAuthToken):
    # DRF's ObtainAuthToken names its own parsers; ours make JSON nested too deep a 400, not a RecursionError.
    parser_classes = api_settings.DEFAULT_PARSER_CLASSES

    @extend_schema(
        responses={
            200: AuthTokenSerializer,
            429: OpenApiResponse(
                description="Too many failed attempts for this username from this address; wait Retry-After seconds."
            ),
        }
    )
    def post(self, request, *args, **kwargs):
        try:
            return super().post(request, *args, **kwargs)
        except ValidationError:
            if getattr(request, "axes_locked_out", False):
                raise Throttled(
                    wait=cool_off_seconds(request) or None,
                    detail=f"Too many failed logins ({settings.AXES_FAILURE_LIMIT}) for this username from "
                    "this address; try again later.",
                ) from None
            raise
