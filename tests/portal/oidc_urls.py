"""The site's URLs with an OIDC sign-in start, as mozilla-django-oidc names it, for the portal's sign-in page."""

from django.http import HttpResponse
from django.urls import path

from helpdesk.urls import urlpatterns as site

urlpatterns = [*site, path("oidc/authenticate/", lambda request: HttpResponse(), name="oidc_authentication_init")]
