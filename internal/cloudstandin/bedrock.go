package cloudstandin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Bedrock is a local Bedrock runtime that checks what AWS checks
// before it answers: the SigV4 signature (it re-signs its own copy of the
// request with the SDK's signer and compares), the credential scope
// (region, service "bedrock"), the clock skew and the session token. It
// answers Converse in JSON and ConverseStream in real event-stream
// frames, deterministically: tools offered and no tool result yet → a
// tool call; a tool result → "tool said: <result>"; an image →
// "image <format> <bytes>"; otherwise "echo: <last user text>".
type Bedrock struct {
	*httptest.Server
	Region string

	mu       sync.Mutex
	keys     map[string]aws.Credentials // access key id → credentials
	verified map[string]int             // access key id → requests that passed SigV4
	bodies   []ConverseBody
	models   []string
}

// ConverseBody is the part of a Converse request the stand-in reads.
type ConverseBody struct {
	Messages []struct {
		Role    string           `json:"role"`
		Content []map[string]any `json:"content"`
	} `json:"messages"`
	System     []map[string]any `json:"system"`
	ToolConfig *struct {
		Tools []struct {
			ToolSpec struct {
				Name string `json:"name"`
			} `json:"toolSpec"`
		} `json:"tools"`
		ToolChoice map[string]any `json:"toolChoice"`
	} `json:"toolConfig"`
	InferenceConfig map[string]any `json:"inferenceConfig"`
}

// StartBedrock serves a Bedrock runtime for region that accepts creds.
func StartBedrock(t testing.TB, region string, creds ...aws.Credentials) *Bedrock {
	t.Helper()
	s := &Bedrock{Region: region, keys: map[string]aws.Credentials{}, verified: map[string]int{}}
	for _, c := range creds {
		s.keys[c.AccessKeyID] = c
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Allow accepts another key pair.
func (s *Bedrock) Allow(c aws.Credentials) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[c.AccessKeyID] = c
}

// VerifiedBy counts the requests signed with key that passed SigV4.
func (s *Bedrock) VerifiedBy(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.verified[key]
}

// Last returns the last accepted request's body and model id.
func (s *Bedrock) Last() (ConverseBody, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bodies[len(s.bodies)-1], s.models[len(s.models)-1]
}

func awsError(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// verify re-signs a copy of r and compares signatures, as AWS does.
func (s *Bedrock) verify(r *http.Request, body []byte) (string, int, string, string) {
	auth := r.Header.Get("Authorization")
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algo) {
		return "", 403, "MissingAuthenticationTokenException", "Missing Authentication Token"
	}
	fields := map[string]string{}
	for _, f := range strings.Split(strings.TrimPrefix(auth, algo), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return "", 403, "IncompleteSignatureException", "malformed credential scope"
	}
	s.mu.Lock()
	creds, ok := s.keys[scope[0]]
	s.mu.Unlock()
	if !ok {
		return "", 403, "UnrecognizedClientException", "The security token included in the request is invalid."
	}
	if scope[2] != s.Region || scope[3] != "bedrock" {
		return "", 403, "InvalidSignatureException", fmt.Sprintf("Credential should be scoped to a valid region and service bedrock, not %s/%s", scope[2], scope[3])
	}
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || time.Since(when).Abs() > 15*time.Minute {
		return "", 403, "InvalidSignatureException", "Signature expired or X-Amz-Date missing"
	}
	if r.Header.Get("X-Amz-Security-Token") != creds.SessionToken {
		return "", 403, "UnrecognizedClientException", "The security token included in the request is invalid."
	}
	cp, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	cp.Host = r.Host
	for _, h := range strings.Split(fields["SignedHeaders"], ";") {
		if h != "host" {
			cp.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, cp, hex.EncodeToString(sum[:]), "bedrock", s.Region, when); err != nil {
		return "", 500, "InternalServerException", err.Error()
	}
	if cp.Header.Get("Authorization") != auth {
		return "", 403, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided."
	}
	return creds.AccessKeyID, 0, "", ""
}

func (s *Bedrock) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	key, code, typ, msg := s.verify(r, body)
	if code != 0 {
		awsError(w, code, typ, msg)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/model/")
	modelEsc, op, _ := strings.Cut(rest, "/")
	model, err := url.PathUnescape(modelEsc)
	if !ok || err != nil || r.Method != http.MethodPost || (op != "converse" && op != "converse-stream") {
		awsError(w, 404, "UnknownOperationException", "no such operation "+r.URL.Path)
		return
	}
	var req ConverseBody
	if err := json.Unmarshal(body, &req); err != nil || len(req.Messages) == 0 {
		awsError(w, 400, "ValidationException", "malformed request")
		return
	}
	s.mu.Lock()
	s.verified[key]++
	s.bodies = append(s.bodies, req)
	s.models = append(s.models, model)
	s.mu.Unlock()
	switch model {
	case "fail-throttle":
		awsError(w, 429, "ThrottlingException", "Too many requests, please wait before trying again.")
		return
	case "fail-validation":
		awsError(w, 400, "ValidationException", "The provided model identifier is invalid.")
		return
	case "fail-unavailable":
		awsError(w, 503, "ServiceUnavailableException", "Service unavailable.")
		return
	case "fail-denied":
		awsError(w, 403, "AccessDeniedException", "You don't have access to the model with the specified model ID.")
		return
	}
	text, tool := answer(req)
	w.Header().Set("X-Amzn-Requestid", fmt.Sprintf("req-%d", len(body)))
	in := int32(len(strings.Fields(lastUserText(req))) + 1)
	usage := map[string]any{"inputTokens": in, "outputTokens": int32(len(strings.Fields(text)) + 1), "totalTokens": in + 1, "cacheReadInputTokens": 0}
	stop := "end_turn"
	if tool != nil {
		stop = "tool_use"
	}
	if op == "converse" {
		var content []map[string]any
		if tool != nil {
			content = append(content, map[string]any{"toolUse": tool})
		} else {
			content = append(content, map[string]any{"text": text})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"output": map[string]any{"message": map[string]any{"role": "assistant", "content": content}},
			"stopReason": stop, "usage": usage, "metrics": map[string]any{"latencyMs": 1}})
		return
	}
	w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
	w.WriteHeader(200)
	enc := eventstream.NewEncoder()
	event := func(kind string, payload any) {
		b, _ := json.Marshal(payload)
		var h eventstream.Headers
		h.Set(":message-type", eventstream.StringValue("event"))
		h.Set(":event-type", eventstream.StringValue(kind))
		h.Set(":content-type", eventstream.StringValue("application/json"))
		_ = enc.Encode(w, eventstream.Message{Headers: h, Payload: b})
		w.(http.Flusher).Flush()
	}
	event("messageStart", map[string]any{"role": "assistant"})
	if tool != nil {
		event("contentBlockStart", map[string]any{"contentBlockIndex": 0, "start": map[string]any{"toolUse": map[string]any{"toolUseId": tool["toolUseId"], "name": tool["name"]}}})
		args, _ := json.Marshal(tool["input"])
		half := len(args) / 2
		for _, part := range []string{string(args[:half]), string(args[half:])} {
			event("contentBlockDelta", map[string]any{"contentBlockIndex": 0, "delta": map[string]any{"toolUse": map[string]any{"input": part}}})
		}
	} else {
		for i, word := range strings.SplitAfter(text, " ") {
			if model == "fail-midstream" && i == 1 {
				var h eventstream.Headers
				h.Set(":message-type", eventstream.StringValue("exception"))
				h.Set(":exception-type", eventstream.StringValue("modelStreamErrorException"))
				h.Set(":content-type", eventstream.StringValue("application/json"))
				_ = enc.Encode(w, eventstream.Message{Headers: h, Payload: []byte(`{"message":"the model stopped"}`)})
				return
			}
			event("contentBlockDelta", map[string]any{"contentBlockIndex": 0, "delta": map[string]any{"text": word}})
		}
	}
	event("contentBlockStop", map[string]any{"contentBlockIndex": 0})
	event("messageStop", map[string]any{"stopReason": stop})
	event("metadata", map[string]any{"usage": usage, "metrics": map[string]any{"latencyMs": 1}})
}

func lastUserText(req ConverseBody) string {
	m := req.Messages[len(req.Messages)-1]
	var b strings.Builder
	for _, c := range m.Content {
		if t, ok := c["text"].(string); ok {
			b.WriteString(t)
		}
	}
	return b.String()
}

// answer decides the reply; tool is non-nil for a tool call.
func answer(req ConverseBody) (string, map[string]any) {
	last := req.Messages[len(req.Messages)-1]
	for i := len(last.Content) - 1; i >= 0; i-- {
		if tr, ok := last.Content[i]["toolResult"].(map[string]any); ok {
			parts, _ := tr["content"].([]any)
			var text string
			for _, p := range parts {
				if m, ok := p.(map[string]any); ok {
					if t, ok := m["text"].(string); ok {
						text = t
					}
				}
			}
			return "tool said: " + text, nil
		}
	}
	for _, c := range last.Content {
		if img, ok := c["image"].(map[string]any); ok {
			src, _ := img["source"].(map[string]any)
			raw, _ := src["bytes"].(string) // base64 on the wire
			data, err := base64.StdEncoding.DecodeString(raw)
			if err != nil || !bytes.HasPrefix(data, []byte("\x89PNG")) {
				return "the image is not a base64 PNG", nil
			}
			return fmt.Sprintf("image %v %d", img["format"], len(data)), nil
		}
	}
	if req.ToolConfig != nil && len(req.ToolConfig.Tools) > 0 {
		return "", map[string]any{"toolUseId": "tooluse_1", "name": req.ToolConfig.Tools[0].ToolSpec.Name, "input": map[string]any{"q": lastUserText(req)}}
	}
	return "echo: " + lastUserText(req), nil
}

// STS answers AssumeRoleWithWebIdentity (IRSA) for one token,
// issuing short-lived credentials it registers with the Bedrock stand-in.
type STS struct {
	*httptest.Server
	mu     sync.Mutex
	issued int
}

// StartSTS serves STS; each issued key pair lives for lifetime and is
// allowed at bedrock.
func StartSTS(t testing.TB, token, roleARN string, bedrock *Bedrock, lifetime time.Duration) *STS {
	t.Helper()
	s := &STS{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.Form.Get("Action") != "AssumeRoleWithWebIdentity" || r.Form.Get("WebIdentityToken") != token || r.Form.Get("RoleArn") != roleARN {
			w.WriteHeader(403)
			fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>bad token or role</Message></Error></ErrorResponse>`)
			return
		}
		s.mu.Lock()
		s.issued++
		n := s.issued
		s.mu.Unlock()
		c := aws.Credentials{AccessKeyID: fmt.Sprintf("ASIAIRSA%08d", n), SecretAccessKey: fmt.Sprintf("irsa-secret-%d", n), SessionToken: fmt.Sprintf("irsa-session-%d", n)}
		bedrock.Allow(c)
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult>
<Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials>
<AssumedRoleUser><Arn>%s/nemoclave</Arn><AssumedRoleId>AROA:nemoclave</AssumedRoleId></AssumedRoleUser>
</AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>sts-%d</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>`,
			c.AccessKeyID, c.SecretAccessKey, c.SessionToken, time.Now().Add(lifetime).UTC().Format(time.RFC3339), roleARN, n)
	}))
	t.Cleanup(s.Close)
	return s
}

// Count is the number of key pairs issued so far.
func (s *STS) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}
