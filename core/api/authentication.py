"""How an API call authenticates with a token: django-rest-knox's scheme (`Authorization: Token <secret>`,
the secret checked against its SHA-512 digest, refused once expired), with the user and their roles read
in one query.

Every API call authenticates and most ask for a role. knox's lookup reads the token with its user, then
every other token of that user (to delete expired ones), then our roles' query asks for the groups: three
queries of about 0.3 ms of CPU each. This reads the token, the user and the names of their groups in one
(0.1 ms); an expired token is deleted when it is shown, and the others when their owner makes a new one
(labeling.services.tokens). Apart from the lookup, knox's class does the work: the header, the hash, the
401 answers and the WWW-Authenticate challenge (REST_FRAMEWORK's default authentication, so this module
imports no DRF view: the default is read while rest_framework.views loads).
"""

from hmac import compare_digest

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from knox import auth
from knox.crypto import hash_token
from knox.models import AuthToken
from knox.settings import CONSTANTS
from rest_framework.exceptions import AuthenticationFailed

from ..roles import remember_roles
from ..rows import columns, instance
from ..storable import unstorable

INVALID = _("Invalid token.")
TOKEN_COLUMNS = ("digest", "token_key", "user_id", "created", "expiry")


class TokenAuthentication(auth.TokenAuthentication):
    def authenticate_credentials(self, token: bytes) -> tuple[User, AuthToken]:
        try:
            secret = token.decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed(INVALID) from None
        if unstorable(secret):  # a NUL character: no token has one, and the database would refuse it
            raise AuthenticationFailed(INVALID)
        digest = hash_token(secret)
        rows = [row for row in self._rows(secret) if compare_digest(row[0], digest)]
        if not rows:
            raise AuthenticationFailed(INVALID)
        token_row, user_row = rows[0][: len(TOKEN_COLUMNS)], rows[0][len(TOKEN_COLUMNS) : -1]
        found = instance(AuthToken, TOKEN_COLUMNS, token_row)
        if found.expiry is not None and found.expiry <= timezone.now():
            AuthToken.objects.filter(pk=found.pk).delete()
            raise AuthenticationFailed(_("Token expired."))
        user = instance(get_user_model(), columns(get_user_model(), "u")[0], user_row)
        if not user.is_active:
            raise AuthenticationFailed(_("User inactive or deleted."))
        remember_roles(user, [row[-1] for row in rows if row[-1] is not None])
        found.user = user
        return user, found

    def _rows(self, secret: str) -> list[tuple]:
        """(token columns, user columns, group name) for each token with the secret's prefix and each
        group of its user (one row with no group when they have none). A plain cursor: the ORM would
        spend more CPU mapping the rows than the query costs (core.rows)."""
        User = get_user_model()
        user_columns = columns(User, "u")[1]
        token_columns = ", ".join(f"t.{name}" for name in TOKEN_COLUMNS)
        with connection.cursor() as cursor:
            cursor.execute(
                f"""SELECT {token_columns}, {user_columns}, g.name
                    FROM {AuthToken._meta.db_table} t
                    JOIN {User._meta.db_table} u ON u.id = t.user_id
                    LEFT JOIN {User.groups.through._meta.db_table} ug ON ug.user_id = u.id
                    LEFT JOIN {Group._meta.db_table} g ON g.id = ug.group_id
                    WHERE t.token_key = %s""",
                [secret[: CONSTANTS.TOKEN_KEY_LENGTH]],
            )
            return cursor.fetchall()
