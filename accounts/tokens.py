"""The API's tokens: issued to agents and admins only, for API_TOKEN_TTL, then refused until a fresh one is asked for.

A token is asked for with a password (``POST /api/auth/token/``), which django-axes watches like the login page's.
A user with a second factor must send the current code from their authenticator app as ``otp`` as well: the token
stands in for a whole sign-in, so it is never issued on the password alone.
"""

from django.contrib.auth import authenticate
from django_otp import user_has_device
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from tickets.roles import is_agent

from .authentication import expires_at, is_expired
from .lockout import LOCKED_OUT, lockout_message
from .two_factor import verify_code


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)
    otp = serializers.CharField(required=False, help_text="The current code, for users with a second factor.")


class ObtainTokenView(APIView):
    """Exchange a username and password (and a second-factor code, where the user has one) for a token."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=TokenRequestSerializer,
        responses={
            200: inline_serializer("Token", {"token": serializers.CharField(), "expires": serializers.DateTimeField()})
        },
    )
    def post(self, request):
        form = TokenRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        # The plain HttpRequest: axes records the attempt, and flags a lockout, on it.
        http_request = request._request
        user = authenticate(
            http_request, username=form.validated_data["username"], password=form.validated_data["password"]
        )
        if getattr(http_request, "axes_locked_out", False):
            return Response({"detail": lockout_message()}, status=LOCKED_OUT)
        if user is None:
            return Response({"detail": "Wrong username or password."}, status=status.HTTP_400_BAD_REQUEST)
        if not is_agent(user):
            return Response({"detail": "API tokens are for agents and admins only."}, status=status.HTTP_403_FORBIDDEN)
        if user_has_device(user, confirmed=True) and not verify_code(user, form.validated_data.get("otp", "")):
            detail = "This account has a second factor: send the current code from your authenticator app as “otp”."
            return Response({"detail": detail}, status=status.HTTP_403_FORBIDDEN)
        token, _ = Token.objects.get_or_create(user=user)
        if is_expired(token):
            token.delete()
            token = Token.objects.create(user=user)
        return Response({"token": token.key, "expires": expires_at(token)})
