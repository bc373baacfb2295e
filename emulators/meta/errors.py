"""Graph API errors: ``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id", ...}}``.

Codes and words follow Meta's references (graph-api error handling, Messenger error codes, WhatsApp Cloud API
error codes). Where no recorded body exists (see /work/shared/fixtures/meta/SOURCES.md, "Not found"), the
message is written in Meta's style and the code is the documented one.
"""

import base64
import secrets

WHATSAPP_ERRORS_HREF = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"


def fbtrace_id() -> str:
    return "A" + base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")[:22]


class GraphError(Exception):
    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        subcode: int | None = None,
        type_: str = "OAuthException",
        details: str | None = None,
        transient: bool | None = None,
        user_title: str | None = None,
        user_message: str | None = None,
        headers: dict | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.subcode = subcode
        self.type = type_
        self.details = details
        self.transient = transient
        self.user_title = user_title
        self.user_message = user_message
        self.headers = headers or {}

    def body(self, product: str | None = None) -> dict:
        error: dict = {"message": self.message, "type": self.type, "code": self.code}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.transient is not None:
            error["is_transient"] = self.transient
        if self.user_title:
            error["error_user_title"] = self.user_title
        if self.user_message:
            error["error_user_msg"] = self.user_message
        if self.details is not None:
            error["error_data"] = {"details": self.details}
            if product == "whatsapp":
                error["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        error["fbtrace_id"] = fbtrace_id()
        return {"error": error}


# -- the common ones -------------------------------------------------------------------------------


def invalid_token(product: str | None = None) -> GraphError:
    # The WhatsApp Cloud API answers 401; the Page/Instagram Graph answers 400 for the same OAuthException.
    status = 401 if product == "whatsapp" else 400
    return GraphError(status, 190, "Invalid OAuth access token - Cannot parse access token")


def revoked_token(product: str | None = None) -> GraphError:
    status = 401 if product == "whatsapp" else 400
    return GraphError(
        status,
        190,
        "Error validating access token: The session has been invalidated because the user changed their "
        "password or Facebook has changed the session for security reasons.",
        subcode=460,
    )


def no_such_object(object_id: str, verb: str = "GET") -> GraphError:
    operation = "get" if verb == "GET" else "post"
    return GraphError(
        400,
        100,
        f"Unsupported {operation} request. Object with ID '{object_id}' does not exist, cannot be loaded due to "
        "missing permissions, or does not support this operation. Please read the Graph API documentation at "
        "https://developers.facebook.com/docs/graph-api",
        subcode=33,
        type_="GraphMethodException",
    )


def unknown_path(path: str) -> GraphError:
    return GraphError(400, 2500, f"Unknown path components: {path}")


def invalid_parameter(message: str, subcode: int | None = None) -> GraphError:
    return GraphError(400, 100, f"(#100) {message}", subcode=subcode)


def too_long(param: str, limit: int) -> GraphError:
    return invalid_parameter(f"Length of param {param} must be less than or equal to {limit}")


def permission(message: str) -> GraphError:
    return GraphError(403, 200, f"(#200) {message}")


def whatsapp_error(code: int, title: str, details: str, status: int = 400) -> GraphError:
    return GraphError(status, code, f"(#{code}) {title}", details=details)


def whatsapp_status_error(code: int, title: str, details: str) -> dict:
    """An item of a ``failed`` status's ``errors[]`` (the shape of whatsapp/status__failed.json)."""
    return {
        "code": code,
        "title": title,
        "message": title,
        "error_data": {"details": details},
        "href": WHATSAPP_ERRORS_HREF,
    }


# -- throttling -------------------------------------------------------------------------------------

THROTTLE_MESSAGES = {
    4: "(#4) Application request limit reached",
    613: "(#613) Calls to this api have exceeded the rate limit.",
    80001: "(#80001) There have been too many calls to this Page account. Wait a bit and try again.",
    80002: "(#80002) There have been too many calls to this Instagram account. Wait a bit and try again.",
    80006: "(#80006) There have been too many messaging requests to this Page account. Wait a bit and try again.",
    80007: "(#80007) Rate limit issues: The WhatsApp Business Account has reached its rate limit.",
}


def throttled(code: int, retry_after: int | None = None) -> GraphError:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return GraphError(400, code, THROTTLE_MESSAGES[code], transient=True, headers=headers)


def server_error(status: int = 500) -> GraphError:
    return GraphError(status, 2, "An unexpected error has occurred. Please retry your request later.", transient=True)
