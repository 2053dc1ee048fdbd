package inference

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/nemoclave/nemoclave/sdk/llm"
)

// answerScan is what the router reads from a forwarded answer body or one
// stream event, in a single pass over its top-level keys: the usage it
// reports, whether it is a usage-only chunk, and where the model names
// are that the agent's name replaces. A forwarded answer used to be
// decoded three times and re-encoded once (usage, the usage-only check,
// the model rewrite), which was most of the router's CPU on streams.
//
// The fields keep encoding/json's semantics for what they replace: the
// usage envelope matches keys as struct fields do (case-insensitively,
// later keys winning, a mistyped value spoiling the whole read), the
// model rewrite matches keys exactly as a map does. Invalid JSON, or
// JSON that is not an object, yields nothing.
type answerScan struct {
	ok bool
	// usage, message and response are the envelope usageOf reads; bad
	// is set when any of them had the wrong type.
	usage             *wireUsage
	message, response *struct{ Usage *wireUsage }
	bad               bool
	choicesBad        bool // choices present and neither an array nor null
	choicesEmpty      bool // choices absent, null or []
	usageRawSet       bool // the last usage key holds something other than null
	models            [][2]int
}

// scanAnswer scans data, a JSON object.
func scanAnswer(data []byte) answerScan {
	var a answerScan
	if !gjson.ValidBytes(data) {
		return a
	}
	root := gjson.ParseBytes(data)
	if !root.IsObject() {
		return a
	}
	// Parse does not count leading whitespace in Index; ForEach adds it
	// to every value's offset.
	root.Index = len(data) - len(root.Raw)
	a.ok, a.choicesEmpty = true, true
	var nested [2]struct {
		models [][2]int
		last   bool
	}
	root.ForEach(func(key, value gjson.Result) bool {
		k := key.String()
		raw := data[value.Index : value.Index+len(value.Raw)]
		switch k {
		case "model":
			a.models = append(a.models, [2]int{value.Index, value.Index + len(value.Raw)})
		case "message", "response":
			// As a map reads it: the last occurrence decides whether the
			// inner model is rewritten (then in every occurrence).
			n := &nested[0]
			if k == "response" {
				n = &nested[1]
			}
			n.last = false
			if value.IsObject() {
				value.ForEach(func(ik, iv gjson.Result) bool {
					if ik.String() == "model" {
						n.models = append(n.models, [2]int{iv.Index, iv.Index + len(iv.Raw)})
						n.last = true
					}
					return true
				})
			}
		}
		// Struct fields: case-insensitive, each occurrence decoded in turn
		// into the same value as encoding/json does.
		switch {
		case strings.EqualFold(k, "usage"):
			a.usageRawSet = value.Type != gjson.Null
			if decodeInto(raw, value, &a.usage) != nil {
				a.bad = true
			}
		case strings.EqualFold(k, "message"):
			if decodeInto(raw, value, &a.message) != nil {
				a.bad = true
			}
		case strings.EqualFold(k, "response"):
			if decodeInto(raw, value, &a.response) != nil {
				a.bad = true
			}
		case strings.EqualFold(k, "choices"):
			switch {
			case value.Type == gjson.Null:
				a.choicesEmpty = true
			case value.IsArray():
				a.choicesEmpty = strings.TrimSpace(value.Raw[1:len(value.Raw)-1]) == ""
			default:
				a.choicesBad = true
			}
		}
		return true
	})
	if nested[0].last || nested[1].last {
		for _, n := range nested {
			if n.last {
				a.models = append(a.models, n.models...)
			}
		}
		slices.SortFunc(a.models, func(x, y [2]int) int { return x[0] - y[0] })
	}
	return a
}

// decodeInto decodes one occurrence of a pointer field as encoding/json
// would: null clears it, anything else decodes into what is there.
func decodeInto[T any](raw []byte, v gjson.Result, dst **T) error {
	if v.Type == gjson.Null {
		*dst = nil
		return nil
	}
	return json.Unmarshal(raw, dst)
}

// usageOnly reports the usage-only chunk of an OpenAI stream (no
// choices, a usage object): the one the gateway asks for itself.
func (a *answerScan) usageOnly() bool {
	return a.ok && !a.choicesBad && a.choicesEmpty && a.usageRawSet
}

// foldUsage folds the usage the answer reports into u. Anthropic
// streams report input in message_start and output in message_delta, so
// fields only overwrite what they carry. Anthropic's input_tokens exclude
// cached tokens; the neutral count includes them.
func (a *answerScan) foldUsage(u llm.Usage, seen bool) (llm.Usage, bool) {
	if !a.ok || a.bad {
		return u, seen
	}
	w := a.usage
	if w == nil && a.message != nil {
		w = a.message.Usage
	}
	if w == nil && a.response != nil {
		w = a.response.Usage
	}
	if w == nil {
		return u, seen
	}
	switch {
	case w.PromptTokens != nil || w.CompletionTokens != nil:
		if w.PromptTokens != nil {
			u.InputTokens = *w.PromptTokens
		}
		if w.CompletionTokens != nil {
			u.OutputTokens = *w.CompletionTokens
		}
		if w.PromptTokensDetails != nil {
			u.CachedInputTokens = w.PromptTokensDetails.CachedTokens
		}
	case w.InputTokensDetails != nil:
		// OpenAI Responses: input includes cached.
		if w.InputTokens != nil {
			u.InputTokens = *w.InputTokens
		}
		if w.OutputTokens != nil {
			u.OutputTokens = *w.OutputTokens
		}
		u.CachedInputTokens = w.InputTokensDetails.CachedTokens
	default:
		if w.InputTokens != nil {
			u.InputTokens = *w.InputTokens + w.CacheRead + w.CacheCreation
			u.CachedInputTokens = w.CacheRead
		}
		if w.OutputTokens != nil {
			u.OutputTokens = *w.OutputTokens
		}
	}
	return u, true
}

// withModel returns data with every model name the scan found (top
// level, Anthropic's message_start "message", Responses' "response")
// replaced by name, a JSON string; the rest of data is kept byte for
// byte. It returns data itself when nothing changes.
func (a *answerScan) withModel(data, name []byte) []byte {
	if !a.ok || len(name) == 0 {
		return data
	}
	changed := false
	for _, m := range a.models {
		if !bytes.Equal(data[m[0]:m[1]], name) {
			changed = true
			break
		}
	}
	if !changed {
		return data
	}
	out := make([]byte, 0, len(data)+len(a.models)*len(name))
	last := 0
	for _, m := range a.models {
		out = append(append(out, data[last:m[0]]...), name...)
		last = m[1]
	}
	return append(out, data[last:]...)
}

// modelName is model as a JSON string, or nil for no model.
func modelName(model string) []byte {
	if model == "" {
		return nil
	}
	b, _ := json.Marshal(model)
	return b
}
