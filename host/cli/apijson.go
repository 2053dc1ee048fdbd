package cli

import (
	"bytes"
	"encoding/json"
	"reflect"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The daemon answers with messages of its API (host/api/daemon.proto);
// -o json and -o yaml print them with the .proto field names, in field
// order: a scalar or message when it is set, a list always (empty as []),
// int64 as a JSON number, and the well-known types (timestamps as RFC 3339,
// Struct as the JSON object it carries) as protojson writes them.

var protoMessageType = reflect.TypeFor[proto.Message]()

// apiJSON turns an API message, or a slice of them, into a value that
// encoding/json prints as described above; anything else is returned as is.
func apiJSON(v any) any {
	if m, ok := v.(proto.Message); ok {
		if reflect.ValueOf(m).IsNil() {
			return nil
		}
		return messageJSON(m.ProtoReflect())
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice && rv.Type().Elem().Implements(protoMessageType) {
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = apiJSON(rv.Index(i).Interface())
		}
		return out
	}
	return v
}

// jsonObject is a JSON object that keeps its fields' order.
type jsonObject []jsonField

type jsonField struct {
	name  string
	value any
}

func (o jsonObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(f.name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(f.value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func messageJSON(m protoreflect.Message) any {
	switch m.Descriptor().FullName() {
	case "google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue":
		b, err := protojson.Marshal(m.Interface())
		if err != nil {
			return err.Error()
		}
		return json.RawMessage(b)
	}
	fields := m.Descriptor().Fields()
	out := jsonObject{}
	for i := range fields.Len() {
		fd := fields.Get(i)
		switch {
		case fd.IsList():
			l := m.Get(fd).List()
			vals := make([]any, l.Len())
			for j := range vals {
				vals[j] = valueJSON(fd, l.Get(j))
			}
			out = append(out, jsonField{string(fd.Name()), vals})
		case !m.Has(fd):
		case fd.IsMap():
			vals := map[string]any{}
			m.Get(fd).Map().Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
				vals[k.String()] = valueJSON(fd.MapValue(), v)
				return true
			})
			out = append(out, jsonField{string(fd.Name()), vals})
		default:
			out = append(out, jsonField{string(fd.Name()), valueJSON(fd, m.Get(fd))})
		}
	}
	return out
}

// valueJSON is one value of field fd (an element, for lists and maps).
func valueJSON(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return messageJSON(v.Message())
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return int32(v.Enum())
	case protoreflect.BytesKind:
		return v.Bytes()
	}
	return v.Interface() // bool, string, the integers and floats
}
