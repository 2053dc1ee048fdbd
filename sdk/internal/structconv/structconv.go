// Package structconv converts Go metadata (map[string]any) to and from
// protobuf Struct for the memory and retrieval adapters. It owns only that
// conversion, so both kinds agree on what metadata survives the wire.
package structconv

import (
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/types/known/structpb"
)

// ToStruct converts metadata to a Struct. Values structpb cannot take
// directly ([]string, structs, json.Number) go through JSON, so anything
// that marshals as a JSON object value works; numbers come back as
// float64. Empty metadata becomes nil.
func ToStruct(m map[string]any) (*structpb.Struct, error) {
	if len(m) == 0 {
		return nil, nil
	}
	if s, err := structpb.NewStruct(m); err == nil {
		return s, nil
	}
	var generic map[string]any
	if err := jsonRoundTrip(m, &generic); err != nil {
		return nil, fmt.Errorf("metadata must be JSON-compatible: %w", err)
	}
	return structpb.NewStruct(generic)
}

// FromStruct converts a Struct back to metadata; nil becomes nil.
func FromStruct(s *structpb.Struct) map[string]any {
	if s == nil || len(s.Fields) == 0 {
		return nil
	}
	return s.AsMap()
}

// ToValue converts one JSON-compatible value, with the same fallback as
// ToStruct.
func ToValue(v any) (*structpb.Value, error) {
	if pv, err := structpb.NewValue(v); err == nil {
		return pv, nil
	}
	var generic any
	if err := jsonRoundTrip(v, &generic); err != nil {
		return nil, fmt.Errorf("value must be JSON-compatible: %w", err)
	}
	return structpb.NewValue(generic)
}

// FromValue converts a Value back; nil becomes nil.
func FromValue(v *structpb.Value) any {
	if v == nil {
		return nil
	}
	return v.AsInterface()
}

func jsonRoundTrip(in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}
