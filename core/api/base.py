"""What every API view shares: token-then-session authentication (so anonymous calls get 401), access by
role per action, cursor pagination by id, django-filter, and JSON errors naming the field."""

from collections.abc import Sequence
from datetime import UTC
from typing import TYPE_CHECKING, Any

import django_filters
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.filters import BaseFilterBackend
from rest_framework.pagination import BasePagination, CursorPagination
from rest_framework.permissions import BasePermission, OperandHolder, SingleOperandHolder

from ..permissions import ByRole, Rule
from ..storable import unstorable
from .authentication import TokenAuthentication
from .exceptions import exception_handler

if TYPE_CHECKING:
    from rest_framework.generics import BaseFilterProtocol  # in drf-stubs only


class IdCursorPagination(CursorPagination):
    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 500


class ApiMixin:
    # Typed exactly as APIView and GenericAPIView declare them: mypy wants a mixin's attribute to match.
    authentication_classes: Sequence[type[BaseAuthentication]] = [TokenAuthentication, SessionAuthentication]
    permission_classes: Sequence[type[BasePermission] | OperandHolder | SingleOperandHolder] = [ByRole]
    pagination_class: type[BasePagination] | None = IdCursorPagination
    filter_backends: Sequence["type[BaseFilterBackend | BaseFilterProtocol[Any]]"] = [DjangoFilterBackend]
    roles: dict[str, Rule] = {}

    def get_exception_handler(self):
        return exception_handler

    @property
    def for_schema(self) -> bool:
        return getattr(self, "swagger_fake_view", False)


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 moment, in UTC: Postgres refuses offsets past 15:59 that Python reads (-21:39)."""

    def to_python(self, value):
        moment = super().to_python(value)
        try:
            return moment.astimezone(UTC) if moment is not None else None
        except OverflowError:
            raise ValidationError("This date is out of range.", code="invalid") from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


def storable_json(value: object) -> None:
    """Validator of JSON the database will store (a DictField's): no NUL character, valid Unicode."""
    if problem := unstorable(value):
        raise serializers.ValidationError(problem)


class SlugLookupField(serializers.SlugRelatedField):
    """A slug looked up in the database; text the database refuses (a NUL character) matches nothing."""

    def to_internal_value(self, data):
        if isinstance(data, str) and unstorable(data):
            self.fail("does_not_exist", slug_name=self.slug_field, value=data)
        return super().to_internal_value(data)


class BatchSettingsFields(serializers.Serializer):
    """The settings every way of making a batch takes: labels per task, lease, who works on it."""

    overlap = serializers.IntegerField(default=1)
    lease_minutes = serializers.IntegerField(default=30)
    instructions = serializers.CharField(required=False, default="", allow_blank=True)
    deadline = serializers.DateTimeField(required=False, allow_null=True, default=None)
    labelers = SlugLookupField(
        slug_field="username",
        many=True,
        required=False,
        default=list,
        queryset=get_user_model().objects.all(),
    )
    groups = SlugLookupField(
        slug_field="name", many=True, required=False, default=list, queryset=Group.objects.all()
    )
