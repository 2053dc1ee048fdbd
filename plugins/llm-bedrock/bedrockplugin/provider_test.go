package bedrockplugin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/nemoclave/nemoclave/internal/cloudstandin"
	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/sdktest"
	"github.com/nemoclave/nemoclave/sdk/status"
)

var testCreds = aws.Credentials{AccessKeyID: "AKIANEMOCLAVETEST01", SecretAccessKey: "bedrock-secret-0123456789abcdefSECRET", SessionToken: "bedrock-session-token-XYZ"}

func bedrockConfig(s *cloudstandin.Bedrock, extra map[string]any) string {
	m := map[string]any{"region": s.Region, "endpoint_url": s.URL, "models": []string{"anthropic.claude-test", "fail-throttle", "fail-validation", "fail-unavailable", "fail-denied", "fail-midstream"},
		"access_key_id": testCreds.AccessKeyID, "secret_access_key": testCreds.SecretAccessKey, "session_token": testCreds.SessionToken, "max_attempts": 1, "timeout": "60s"}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func bedrockProvider(t *testing.T, cfg string) llm.Provider {
	t.Helper()
	c := plugin.InProcess(t, New())
	if diags, err := c.Configure(context.Background(), plugin.ConfigureOptions{Config: json.RawMessage(cfg)}); err != nil || len(diags) > 0 {
		t.Fatalf("configure: %v %v", err, diags)
	}
	return c.LLM()
}

func userMsg(parts ...llm.ContentPart) llm.Message {
	return llm.Message{Role: llm.RoleUser, Content: parts}
}

// TestBedrockConformance runs the SDK's LLM suite against the SigV4- and
// event-stream-checking stand-in.
func TestBedrockConformance(t *testing.T) {
	t.Parallel()
	s := cloudstandin.StartBedrock(t, "us-east-1", testCreds)
	sdktest.LLM(t, New(), sdktest.WithConfig(bedrockConfig(s, nil)), sdktest.WithModel("anthropic.claude-test"), sdktest.WithDeterministic())
	if s.VerifiedBy(testCreds.AccessKeyID) < 4 {
		t.Fatalf("the stand-in verified %d signed calls, want the suite's 4 or more", s.VerifiedBy(testCreds.AccessKeyID))
	}
}

func TestBedrockToolUseImagesAndInferenceProfiles(t *testing.T) {
	t.Parallel()
	s := cloudstandin.StartBedrock(t, "eu-west-1", testCreds)
	profile := "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-test-v1:0"
	p := bedrockProvider(t, bedrockConfig(s, map[string]any{"region": "eu-west-1", "models": []string{}, "aliases": map[string]string{"claude": profile}}))
	ctx := context.Background()

	if ms, err := p.ListModels(ctx); err != nil || len(ms) != 1 || ms[0].ID != "claude" {
		t.Fatalf("models: %v %+v", err, ms)
	}
	req := &llm.ChatRequest{Model: "claude", System: "be brief", MaxTokens: aws.Int64(100),
		Tools:    []llm.Tool{{Name: "lookup", Description: "find", Parameters: json.RawMessage(`{"type":"object","properties":{"q":{"type":"string"}}}`)}},
		Messages: []llm.Message{userMsg(llm.Text("find x"))}}
	resp, err := p.Chat(ctx, req)
	if err != nil || len(resp.Message.ToolCalls) != 1 || resp.FinishReason != llm.FinishToolCalls || resp.Message.ToolCalls[0].Arguments != `{"q":"find x"}` || resp.Model != "claude" {
		t.Fatalf("%v %+v", err, resp)
	}
	body, model := s.Last()
	if model != profile || body.System[0]["text"] != "be brief" || body.InferenceConfig["maxTokens"] != float64(100) || body.ToolConfig.Tools[0].ToolSpec.Name != "lookup" {
		t.Fatalf("the stand-in saw model %q body %+v", model, body)
	}

	// Two tool results in a row become one user turn of toolResult blocks.
	req.Messages = append(req.Messages, llm.Message{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{resp.Message.ToolCalls[0], {ID: "c2", Name: "lookup", Arguments: "not json"}}},
		llm.Message{Role: llm.RoleTool, ToolCallID: resp.Message.ToolCalls[0].ID, Content: []llm.ContentPart{llm.Text("r1")}},
		llm.Message{Role: llm.RoleTool, ToolCallID: "c2", Content: []llm.ContentPart{llm.Text("r2")}})
	var chunks []*llm.ChatChunk
	if err := p.ChatStream(ctx, req, func(c *llm.ChatChunk) error { chunks = append(chunks, c); return nil }); err != nil {
		t.Fatal(err)
	}
	final := llm.Accumulate(chunks)
	if final.Message.Text() != "tool said: r2" || final.FinishReason != llm.FinishStop || final.Usage.OutputTokens == 0 {
		t.Fatalf("%+v", final)
	}
	body, _ = s.Last()
	if len(body.Messages) != 3 || body.Messages[2].Role != "user" || len(body.Messages[2].Content) != 2 {
		t.Fatalf("tool results were not merged into one user turn: %+v", body.Messages)
	}
	if tu := body.Messages[1].Content[1]["toolUse"].(map[string]any); tu["input"].(map[string]any)["_raw_arguments"] != "not json" {
		t.Fatalf("invalid arguments were not kept: %+v", tu)
	}

	// Streaming a tool call: the deltas accumulate to the arguments.
	chunks = nil
	if err := p.ChatStream(ctx, &llm.ChatRequest{Model: "claude", Tools: req.Tools, ToolChoice: "required", Messages: []llm.Message{userMsg(llm.Text("find y"))}},
		func(c *llm.ChatChunk) error { chunks = append(chunks, c); return nil }); err != nil {
		t.Fatal(err)
	}
	final = llm.Accumulate(chunks)
	if len(final.Message.ToolCalls) != 1 || final.Message.ToolCalls[0].Arguments != `{"q":"find y"}` || final.Message.ToolCalls[0].ID != "tooluse_1" || final.FinishReason != llm.FinishToolCalls {
		t.Fatalf("streamed tool call: %+v", final)
	}
	if body, _ = s.Last(); body.ToolConfig.ToolChoice["any"] == nil {
		t.Fatalf("tool_choice required was not sent as any: %+v", body.ToolConfig.ToolChoice)
	}

	// Images travel as bytes; data: URLs are decoded; http URLs are refused.
	png := []byte("\x89PNG\r\n\x1a\nfake-png-bytes")
	for _, im := range []*llm.Image{{MIMEType: "image/png", Data: png}, {URL: "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)}} {
		resp, err = p.Chat(ctx, &llm.ChatRequest{Model: "claude", Messages: []llm.Message{userMsg(llm.Text("what is this"), llm.ContentPart{Image: im})}})
		if err != nil || resp.Message.Text() != "image png 22" {
			t.Fatalf("image: %v %+v", err, resp)
		}
	}
	_, err = p.Chat(ctx, &llm.ChatRequest{Model: "claude", Messages: []llm.Message{userMsg(llm.ContentPart{Image: &llm.Image{URL: "https://example.com/a.png"}})}})
	if status.CodeOf(err) != status.InvalidArgument || !strings.Contains(err.Error(), "s3://") {
		t.Fatalf("http image: %v", err)
	}
}

func TestBedrockErrorsAreClassifiedAndRedacted(t *testing.T) {
	t.Parallel()
	s := cloudstandin.StartBedrock(t, "us-east-1", testCreds)
	p := bedrockProvider(t, bedrockConfig(s, nil))
	ctx := context.Background()
	msgs := []llm.Message{userMsg(llm.Text("x"))}
	for model, want := range map[string]status.Code{"fail-throttle": status.RateLimited, "fail-unavailable": status.Unavailable,
		"fail-validation": status.InvalidArgument, "fail-denied": status.PermissionDenied} {
		_, err := p.Chat(ctx, &llm.ChatRequest{Model: model, Messages: msgs})
		if status.CodeOf(err) != want || strings.Contains(err.Error(), testCreds.SecretAccessKey) {
			t.Errorf("%s: %v, want %v", model, err, want)
		}
	}
	err := p.ChatStream(ctx, &llm.ChatRequest{Model: "fail-midstream", Messages: msgs}, func(*llm.ChatChunk) error { return nil })
	if status.CodeOf(err) != status.Unavailable || !strings.Contains(err.Error(), "ModelStreamErrorException") {
		t.Errorf("mid-stream exception: %v", err)
	}

	// A wrong secret signs differently: the stand-in's own signature
	// differs, and the plugin reports the credentials, not an outage.
	bad := bedrockProvider(t, bedrockConfig(s, map[string]any{"secret_access_key": "wrong-secret-0000000000000000000000"}))
	_, err = bad.Chat(ctx, &llm.ChatRequest{Model: "anthropic.claude-test", Messages: msgs})
	if status.CodeOf(err) != status.Unauthenticated || !strings.Contains(err.Error(), "signature") || strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("wrong secret: %v", err)
	}
	// A signature for another region is refused too.
	other := bedrockProvider(t, bedrockConfig(s, map[string]any{"region": "us-west-2"}))
	if _, err = other.Chat(ctx, &llm.ChatRequest{Model: "anthropic.claude-test", Messages: msgs}); status.CodeOf(err) != status.Unauthenticated {
		t.Fatalf("wrong region: %v", err)
	}
}

// TestBedrockWebIdentityCredentialsRefresh runs the SDK's default chain
// as on EKS with IRSA: a projected token file and a role ARN in the
// environment, exchanged at an STS stand-in for short-lived keys that the
// Bedrock stand-in verifies; when they expire, the chain fetches new ones.
func TestBedrockWebIdentityCredentialsRefresh(t *testing.T) {
	dir := t.TempDir()
	token, role := "eyJhbGciOiJSUzI1NiJ9.irsa-test-token.sig", "arn:aws:iam::123456789012:role/nemoclave-bedrock"
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	s := cloudstandin.StartBedrock(t, "us-east-1")
	sts := cloudstandin.StartSTS(t, token, role, s, 3*time.Second)
	for k, v := range map[string]string{"AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile, "AWS_ROLE_ARN": role, "AWS_ENDPOINT_URL_STS": sts.URL,
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "none"),
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": ""} {
		t.Setenv(k, v)
	}
	cfg := map[string]any{"region": "us-east-1", "endpoint_url": s.URL, "models": []string{"anthropic.claude-test"}, "max_attempts": 1}
	raw, _ := json.Marshal(cfg)
	p := bedrockProvider(t, string(raw))
	ctx := context.Background()
	req := &llm.ChatRequest{Model: "anthropic.claude-test", Messages: []llm.Message{userMsg(llm.Text("hello"))}}
	if resp, err := p.Chat(ctx, req); err != nil || resp.Message.Text() != "echo: hello" {
		t.Fatalf("first call: %v %+v", err, resp)
	}
	// On a loaded machine the first keys may expire before they are used
	// and be fetched twice; what matters is that every call is signed with
	// keys STS issued, and that new keys come when the old ones expire.
	first := sts.Count()
	if first == 0 || s.VerifiedBy(issuedKey(first)) == 0 {
		t.Fatalf("STS issued %d key pairs; the last one was never verified", first)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for sts.Count() == first {
		if time.Now().After(deadline) {
			t.Fatal("the SDK kept using the first keys two minutes after they expired")
		}
		time.Sleep(500 * time.Millisecond)
		if _, err := p.Chat(ctx, req); err != nil {
			t.Fatalf("call after expiry: %v", err)
		}
	}
	if s.VerifiedBy(issuedKey(sts.Count())) == 0 {
		t.Fatal("the refreshed keys were not used")
	}
}

func issuedKey(n int) string { return fmt.Sprintf("ASIAIRSA%08d", n) }

func TestBedrockConfigValidation(t *testing.T) {
	t.Parallel()
	for raw, path := range map[string]string{
		`{"models":["m"],"region":"Mars"}`:                        "region",
		`{}`:                                                      "models",
		`{"models":["m"],"endpoint_url":"vpce"}`:                  "endpoint_url",
		`{"models":["m"],"access_key_id":"AKIA"}`:                 "access_key_id",
		`{"models":["m"],"role_arn":"bedrock"}`:                   "role_arn",
		`{"models":["m"],"timeout":"soon"}`:                       "timeout",
		`{"models":["m"],"max_attempts":50}`:                      "max_attempts",
		`{"aliases":{"c":"us.anthropic.x"},"region":"us-east-1"}`: "",
	} {
		diags := New().ValidateConfig(context.Background(), json.RawMessage(raw))
		if path == "" && len(diags) > 0 || path != "" && (len(diags) != 1 || diags[0].Path[0] != path) {
			t.Errorf("%s: %+v, want one at %q", raw, diags, path)
		}
	}
}
