package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/nemoclave/nemoclave/policy"
)

// The API carries two documents as JSON objects (google.protobuf.Struct)
// rather than re-modelling them in protobuf: a policy, whose canonical form
// is the JSON of policy.Policy (what `policy get -o json` prints and
// `policy set --file` reads back), and a driver's own detail of a sandbox.

// PolicyStruct encodes p for the API; nil stays nil.
func PolicyStruct(p *policy.Policy) (*structpb.Struct, error) {
	if p == nil {
		return nil, nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode policy %s: %w", p.Name, err)
	}
	return JSONStruct(b)
}

// PolicyFromStruct decodes a policy the API carries; nil stays nil. A
// field policy.Policy does not have is an error, not dropped: the two
// ends disagree about the policy's shape.
func PolicyFromStruct(s *structpb.Struct) (*policy.Policy, error) {
	if s == nil {
		return nil, nil
	}
	b, err := protojson.Marshal(s)
	if err != nil {
		return nil, err
	}
	var p policy.Policy
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("the daemon sent a policy this CLI cannot read (%w); are the daemon and the CLI the same version? (nemoclave daemon status)", err)
	}
	return &p, nil
}

// JSONStruct turns a JSON object into a Struct; empty input is nil.
func JSONStruct(b []byte) (*structpb.Struct, error) {
	if len(bytes.TrimSpace(b)) == 0 || string(bytes.TrimSpace(b)) == "null" {
		return nil, nil
	}
	s := &structpb.Struct{}
	if err := protojson.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	return s, nil
}
