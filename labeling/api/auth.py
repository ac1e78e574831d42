"""API tokens over the API (django-rest-knox tokens, labeling.services.tokens):

POST   auth/token/               a username and password give a new token: its secret, shown this once
GET    auth/tokens/              my live tokens (prefix, created, expiry; never a secret)
DELETE auth/tokens/{prefix}/     revoke one of mine, or a labeler's of my team (batch admins)
GET    auth/team-tokens/         the live tokens of my team's labelers (batch admins)
POST   auth/logout-everywhere/   revoke all my tokens and end my other browser sessions

The token endpoint is throttled like the login page (core.login_throttle): django-axes counts failures
through django.contrib.auth.authenticate, which gets the request; a refused client gets 429 with
Retry-After, even with the right password. Axes flags the refusal on DRF's request object, which its
middleware (looking at Django's request) never sees, so this view answers it.
"""

from typing import TYPE_CHECKING, cast

from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_logged_in
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from knox.models import AuthToken
from rest_framework import generics, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotFound, Throttled, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.base import ApiMixin
from core.login_throttle import login_refusal
from core.permissions import signed_in
from core.roles import is_batch_admin

from ..services.tokens import (
    log_out_everywhere,
    revocable_token,
    team_tokens,
    token_create,
    token_revoke,
    tokens_of,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class CredentialsSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})


class TokenSerializer(serializers.Serializer):
    prefix = serializers.CharField(
        source="token_key", help_text="The secret's first characters: names the token."
    )
    created = serializers.DateTimeField()
    expiry = serializers.DateTimeField(allow_null=True, help_text="When the token stops working.")


class NewTokenSerializer(TokenSerializer):
    token = serializers.CharField(
        help_text="The secret: send it as 'Authorization: Token <token>'. Shown once."
    )


class TeamTokenSerializer(TokenSerializer):
    owner = serializers.CharField(source="user.username", help_text="The labeler the token belongs to.")


class LoggedOutSerializer(serializers.Serializer):
    tokens = serializers.IntegerField(help_text="API tokens revoked.")
    sessions = serializers.IntegerField(help_text="Other browser sessions ended.")


class TokenPagination(CursorPagination):
    ordering = "-created"
    page_size_query_param = "page_size"
    max_page_size = 500


class TokenObtainApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=CredentialsSerializer,
        responses={
            200: NewTokenSerializer,
            429: OpenApiResponse(
                description="Too many failed logins (core.login_throttle); wait Retry-After seconds."
            ),
        },
    )
    def post(self, request):
        given = CredentialsSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        user = authenticate(request, **given.validated_data)
        if user is None:
            if getattr(request, "axes_locked_out", False):
                refusal = login_refusal(request)
                raise Throttled(wait=refusal.seconds, detail=refusal.message)
            raise ValidationError(
                {"non_field_errors": ["Unable to log in with the username and password given."]},
                code="authorization",
            )
        token, secret = token_create(user=user)
        user_logged_in.send(sender=user.__class__, request=request, user=user)
        data = {
            "token": secret,
            "token_key": token.token_key,
            "created": token.created,
            "expiry": token.expiry,
        }
        return Response(NewTokenSerializer(data).data)


class TokenListApi(ApiMixin, generics.ListAPIView):
    serializer_class = TokenSerializer
    pagination_class = TokenPagination
    roles = {"get": signed_in}

    def get_queryset(self) -> QuerySet[AuthToken]:
        if self.for_schema:
            return AuthToken.objects.none()
        return tokens_of(user=cast("User", self.request.user))  # ByRole: signed_in


class TeamTokenListApi(ApiMixin, generics.ListAPIView):
    serializer_class = TeamTokenSerializer
    pagination_class = TokenPagination
    roles = {"get": is_batch_admin}

    def get_queryset(self) -> QuerySet[AuthToken]:
        if self.for_schema:
            return AuthToken.objects.none()
        return team_tokens(admin=cast("User", self.request.user))  # ByRole: is_batch_admin, so signed in


class TokenRevokeApi(ApiMixin, APIView):
    roles = {"delete": signed_in}

    @extend_schema(responses={204: None})
    def delete(self, request: Request, prefix: str) -> Response:
        token = revocable_token(actor=cast("User", request.user), prefix=prefix)  # ByRole: signed_in
        if token is None:
            raise NotFound("No such token (or not one you may revoke).")
        token_revoke(token=token, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogOutEverywhereApi(ApiMixin, APIView):
    roles = {"post": signed_in}

    @extend_schema(request=None, responses=LoggedOutSerializer)
    def post(self, request):
        by_session = isinstance(request.successful_authenticator, SessionAuthentication)
        done = log_out_everywhere(
            user=request.user, keep_session=request.session.session_key if by_session else None
        )
        return Response(LoggedOutSerializer(done).data)
