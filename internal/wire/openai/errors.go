package openai

import (
	"net/http"

	"github.com/nemoclave/nemoclave/sdk/status"
)

// ErrorFor builds the error body and HTTP status for a classified error.
// code is OpenAI's machine-readable code ("" for none).
func ErrorFor(httpStatus int, message, code string) (int, *ErrorBody) {
	body := &ErrorBody{Error: ErrorDetail{Message: message, Type: errorType(httpStatus)}}
	if code != "" {
		body.Error.Code = &code
	}
	return httpStatus, body
}

func errorType(httpStatus int) string {
	switch httpStatus {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusBadGateway:
		return "server_error"
	}
	return "api_error"
}

// StatusCode maps a provider HTTP status to the SDK error code the
// gateway uses to decide on fallback.
func StatusCode(httpStatus int) status.Code {
	switch {
	case httpStatus == http.StatusBadRequest, httpStatus == http.StatusUnprocessableEntity, httpStatus == http.StatusRequestEntityTooLarge:
		return status.InvalidArgument
	case httpStatus == http.StatusUnauthorized:
		return status.Unauthenticated
	case httpStatus == http.StatusForbidden:
		return status.PermissionDenied
	case httpStatus == http.StatusNotFound:
		return status.NotFound
	case httpStatus == http.StatusTooManyRequests:
		return status.RateLimited
	case httpStatus == http.StatusRequestTimeout, httpStatus == http.StatusGatewayTimeout:
		return status.DeadlineExceeded
	case httpStatus >= 500:
		return status.Unavailable
	}
	return status.Unknown
}

// HTTPStatus maps an SDK error code to the HTTP status an agent sees.
func HTTPStatus(c status.Code) int {
	switch c {
	case status.InvalidArgument:
		return http.StatusBadRequest
	case status.NotFound:
		return http.StatusNotFound
	case status.Unauthenticated, status.PermissionDenied:
		// The agent holds no credential: a provider refusing the
		// gateway's key is the gateway's problem, not the caller's.
		return http.StatusBadGateway
	case status.RateLimited:
		return http.StatusTooManyRequests
	case status.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case status.NotSupported:
		return http.StatusNotImplemented
	case status.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadGateway
}
