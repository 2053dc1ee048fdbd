package blueprints

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestBuiltinSchemasAreValid(t *testing.T) {
	t.Parallel()
	src := BuiltinSchemaSource()
	for name, s := range src.Schemas {
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if _, err := specSchema(s).Spec(); err != nil {
			t.Errorf("%s: relaxed spec: %v", name, err)
		}
		kind := strings.SplitN(strings.TrimPrefix(name, "builtin/"), "-", 2)[0]
		found := false
		for _, k := range PluginKinds {
			found = found || k == kind
		}
		if !found {
			t.Errorf("%s: name does not start with a plugin kind", name)
		}
	}
	if err := mcpSchema.Validate(); err != nil {
		t.Errorf("mcp schema: %v", err)
	}
}

func TestStaticSchemaSourceErrors(t *testing.T) {
	t.Parallel()
	src := BuiltinSchemaSource()
	ctx := context.Background()
	_, err := src.ConfigSchema(ctx, "llm", "builtin/llm-opneai")
	if err == nil || errors.Is(err, ErrSchemaUnavailable) || !strings.Contains(err.Error(), `did you mean "builtin/llm-openai"`) {
		t.Errorf("builtin typo: %v", err)
	}
	if _, err := src.ConfigSchema(ctx, "tools", "example.com/acme/x"); !errors.Is(err, ErrSchemaUnavailable) {
		t.Errorf("third-party plugin without a host must wrap ErrSchemaUnavailable, got %v", err)
	}
	// The fallback judges by the schema alone: a plugin's own rules are
	// the plugin's, checked when the plugin host can ask it.
	diags, err := src.ValidateConfig(ctx, "llm", "builtin/llm-replay", json.RawMessage(`{"cassette":"c","mode":"record"}`))
	if err != nil || len(diags) != 0 {
		t.Errorf("fallback ValidateConfig: %v %+v", err, diags)
	}
}
