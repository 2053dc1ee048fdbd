package structconv

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRoundTripToJSONDataModel(t *testing.T) {
	t.Parallel()
	type point struct{ X, Y int }
	for _, tc := range []struct {
		name string
		in   map[string]any
		want map[string]any
	}{
		{"empty", map[string]any{}, nil},
		{"nil", nil, nil},
		{"plain", map[string]any{"s": "x", "f": 1.5, "b": true, "n": nil}, map[string]any{"s": "x", "f": 1.5, "b": true, "n": nil}},
		{"ints become float64", map[string]any{"i": 3, "i64": int64(4)}, map[string]any{"i": 3.0, "i64": 4.0}},
		{"typed slices and structs go through JSON", map[string]any{"tags": []string{"a"}, "p": point{1, 2}, "num": json.Number("7")},
			map[string]any{"tags": []any{"a"}, "p": map[string]any{"X": 1.0, "Y": 2.0}, "num": 7.0}},
	} {
		s, err := ToStruct(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if d := cmp.Diff(tc.want, FromStruct(s)); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, d)
		}
	}
	if _, err := ToStruct(map[string]any{"c": make(chan int)}); err == nil {
		t.Error("a channel was accepted as metadata")
	}
	v, err := ToValue([]int{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]any{1.0, 2.0}, FromValue(v)); d != "" {
		t.Errorf("ToValue (-want +got):\n%s", d)
	}
	if FromValue(nil) != nil {
		t.Error("FromValue(nil) is not nil")
	}
}
