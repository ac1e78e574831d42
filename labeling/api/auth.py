"""POST /api/auth/token/: a token for scripts, for a username and password.

Throttled like the login page. django-axes counts failures through django.contrib.auth.authenticate,
which DRF's AuthTokenSerializer calls with the request; a locked-out username and address get 429 with
Retry-After, even with the right password. Axes flags the lockout on DRF's request object, which its
middleware (looking at Django's request) never sees, so this view answers it.
"""

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import Throttled, ValidationError

from config.login_throttle import cool_off_seconds

from .parsers import API_PARSERS


class TokenObtainApi(ObtainAuthToken):
    parser_classes = API_PARSERS  # JSON nested too deep is a 400, not a RecursionError

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
