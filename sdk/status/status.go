package status

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
)

// Code classifies a plugin error.
type Code int

const (
	Unknown Code = iota
	// NotSupported: the plugin does not implement this operation.
	NotSupported
	// InvalidArgument: the request is wrong; retrying elsewhere won't help.
	InvalidArgument
	NotFound
	// Unauthenticated: the provider refused the credential.
	Unauthenticated
	PermissionDenied
	// RateLimited: the provider said 429; fallback may try another.
	RateLimited
	// Unavailable: transient provider failure (5xx, connection refused).
	Unavailable
	DeadlineExceeded
	Canceled
	Internal
)

var grpcCodes = map[Code]codes.Code{
	Unknown:          codes.Unknown,
	NotSupported:     codes.Unimplemented,
	InvalidArgument:  codes.InvalidArgument,
	NotFound:         codes.NotFound,
	Unauthenticated:  codes.Unauthenticated,
	PermissionDenied: codes.PermissionDenied,
	RateLimited:      codes.ResourceExhausted,
	Unavailable:      codes.Unavailable,
	DeadlineExceeded: codes.DeadlineExceeded,
	Canceled:         codes.Canceled,
	Internal:         codes.Internal,
}

func (c Code) String() string {
	return [...]string{"unknown", "not supported", "invalid argument", "not found", "unauthenticated",
		"permission denied", "rate limited", "unavailable", "deadline exceeded", "canceled", "internal"}[c]
}

// Error is a classified plugin error.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return e.Code.String() + ": " + e.Message }

// Errorf builds a classified error.
func Errorf(code Code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrNotSupported is returned by the …NotSupported stubs.
var ErrNotSupported = &Error{Code: NotSupported, Message: "this plugin does not implement the operation"}

// CodeOf returns the code of err (Unknown for unclassified errors).
func CodeOf(err error) Code {
	var e *Error
	switch {
	case err == nil:
		return Unknown
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, context.DeadlineExceeded):
		return DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return Canceled
	}
	if s, ok := grpcstatus.FromError(err); ok {
		for c, gc := range grpcCodes {
			if gc == s.Code() {
				return c
			}
		}
	}
	return Unknown
}

// ToGRPC converts an error returned by plugin code into a gRPC status error.
func ToGRPC(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := grpcstatus.FromError(err); ok {
		return err
	}
	return grpcstatus.Error(grpcCodes[CodeOf(err)], err.Error())
}

// FromGRPC converts a gRPC error received by a client back into an *Error.
// A broken connection (the plugin crashed) becomes Unavailable too.
func FromGRPC(err error) error {
	if err == nil {
		return nil
	}
	s, ok := grpcstatus.FromError(err)
	if !ok {
		return err
	}
	code := Unknown
	for c, gc := range grpcCodes {
		if gc == s.Code() {
			code = c
		}
	}
	// A crashed plugin also surfaces as Unavailable; the host's supervisor
	// says so itself, so the message here stays the plugin's own.
	return &Error{Code: code, Message: s.Message()}
}
