package bedrockplugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/transport/http/protocol/restjson1"

	"github.com/nemoclave/nemoclave/internal/llmhttp"
	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/schema"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// Version of the plugin.
const Version = "0.1.0"

// Plugin is the llm-bedrock plugin.
type Plugin struct {
	plugin.Base
	mu      sync.RWMutex
	cfg     Config
	timeout time.Duration
	client  *bedrockruntime.Client
}

// New returns an unconfigured plugin (Configure before use).
func New() *Plugin { return &Plugin{timeout: 120 * time.Second} }

// Info describes the plugin.
func (*Plugin) Info() plugin.Info {
	return plugin.Info{
		Name:         "llm-bedrock",
		Version:      Version,
		Description:  "Amazon Bedrock (Converse API) with AWS workload identity or a referenced key.",
		Kinds:        []plugin.Kind{plugin.KindLLM},
		Capabilities: []string{"streaming", "tools", "vision"},
	}
}

// ConfigSchema declares the config block.
func (*Plugin) ConfigSchema() *schema.Schema { return configSchema() }

// ValidateConfig checks the config without network.
func (*Plugin) ValidateConfig(_ context.Context, raw json.RawMessage) []plugin.Diagnostic {
	_, _, diags := parseConfig(raw)
	return diags
}

// Configure builds the SDK client. Credentials are not fetched here: the
// SDK fetches them on the first call and refreshes them before expiry.
func (p *Plugin) Configure(ctx context.Context, cfg plugin.Config, _ plugin.Host) error {
	c, timeout, diags := parseConfig(cfg.JSON)
	if err := plugin.ConfigError("llm-bedrock", diags); err != nil {
		return err
	}
	client, err := newClient(ctx, c, timeout)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg, p.timeout, p.client = c, timeout, client
	return nil
}

func newClient(ctx context.Context, c Config, timeout time.Duration) (*bedrockruntime.Client, error) {
	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient(timeout)),
		config.WithRetryMaxAttempts(c.MaxAttempts),
	}
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	if c.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(c.Profile))
	}
	if c.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("llm-bedrock: loading the AWS configuration: %s (check profile and the AWS_* variables)", redact(err.Error(), c))
	}
	if awsCfg.Region == "" {
		return nil, errors.New(`llm-bedrock: no AWS region: set region = "us-east-1" (your Bedrock region) in the plugin config`)
	}
	if c.RoleARN != "" {
		// The cache refreshes the assumed role's credentials before they
		// expire, as the default chain's providers are already cached.
		awsCfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(awsCfg), c.RoleARN,
			func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "nemoclave-llm-bedrock" }))
	}
	return bedrockruntime.NewFromConfig(awsCfg, func(o *bedrockruntime.Options) {
		if c.EndpointURL != "" {
			o.BaseEndpoint = aws.String(c.EndpointURL)
		}
	}), nil
}

// httpClient is the SDK's buildable client (so AWS_CA_BUNDLE can add a
// corporate CA) with the transport bounds llmhttp gives the other LLM
// plugins: a dial and TLS bound, and timeout until the response headers,
// after which a stream runs as long as its context lets it.
func httpClient(timeout time.Duration) *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().WithDialerOptions(func(d *net.Dialer) {
		d.Timeout, d.KeepAlive = 10*time.Second, 30*time.Second
	}).WithTransportOptions(func(tr *http.Transport) {
		tr.Proxy = http.ProxyFromEnvironment
		tr.TLSHandshakeTimeout = 10 * time.Second
		tr.ResponseHeaderTimeout = timeout
		tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 512, 256
	})
}

func (p *Plugin) snapshot() (Config, time.Duration, *bedrockruntime.Client, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.client == nil {
		return p.cfg, p.timeout, nil, status.Errorf(status.Unavailable, "llm-bedrock is not configured")
	}
	return p.cfg, p.timeout, p.client, nil
}

// ListModels reports the configured models and aliases: Bedrock's runtime
// API has no model list, and the control-plane one lists models the
// account may not have access to.
func (p *Plugin) ListModels(context.Context) ([]llm.Model, error) {
	p.mu.RLock()
	c := p.cfg
	p.mu.RUnlock()
	names := slices.Clone(c.Models)
	for k := range c.Aliases {
		if !slices.Contains(names, k) {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	out := make([]llm.Model, len(names))
	for i, m := range names {
		out[i] = llm.Model{ID: m, OwnedBy: "aws-bedrock", Capabilities: []string{"streaming", "tools", "vision"}}
	}
	return out, nil
}

// Chat runs one Converse call.
func (p *Plugin) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	c, timeout, client, err := p.snapshot()
	if err != nil {
		return nil, err
	}
	in, err := toConverse(c, req)
	if err != nil {
		return nil, status.Errorf(status.InvalidArgument, "%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := client.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: in.ModelId, Messages: in.Messages,
		System: in.System, InferenceConfig: in.InferenceConfig, ToolConfig: in.ToolConfig})
	if err != nil {
		return nil, classify(ctx, err, c)
	}
	resp := fromConverse(out)
	resp.ID, _ = awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	resp.Model = req.Model
	return resp, nil
}

// ChatStream runs one ConverseStream call. Bedrock sends messageStop
// (the stop reason) before metadata (the usage), so the finish reason is
// held back and sent with the usage in one last chunk.
func (p *Plugin) ChatStream(ctx context.Context, req *llm.ChatRequest, send func(*llm.ChatChunk) error) error {
	c, _, client, err := p.snapshot()
	if err != nil {
		return err
	}
	in, err := toConverse(c, req)
	if err != nil {
		return status.Errorf(status.InvalidArgument, "%v", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out, err := client.ConverseStream(ctx, in, ownEventStreamCodec)
	if err != nil {
		return classify(ctx, err, c)
	}
	stream := out.GetStream()
	defer stream.Close()
	id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	chunk := func() *llm.ChatChunk { return &llm.ChatChunk{ID: id, Model: req.Model} }
	var dec streamDecoder
	for ev := range stream.Events() {
		ch := chunk()
		if !dec.decode(ev, ch) {
			continue
		}
		if err := send(ch); err != nil {
			return err
		}
	}
	if err := stream.Err(); err != nil {
		return classify(ctx, err, c)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if dec.finish == "" {
		return status.Errorf(status.Unavailable, "Bedrock's stream ended before its messageStop event; retry the request")
	}
	last := chunk()
	last.FinishReason, last.Usage = dec.finish, dec.usage
	return send(last)
}

// classify turns an SDK error into a status class, with a hint for the
// errors a deployment causes (identity, permissions, model access).
func classify(ctx context.Context, err error, c Config) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return status.Errorf(status.DeadlineExceeded, "Bedrock did not answer in time; raise the plugin's timeout if the model is slow")
		}
		return ctxErr
	}
	msg := redact(err.Error(), c)
	var ae smithy.APIError
	if errors.As(err, &ae) {
		text := redact(ae.ErrorCode()+": "+ae.ErrorMessage(), c)
		switch ae.ErrorCode() {
		case "ThrottlingException", "ServiceQuotaExceededException", "TooManyRequestsException":
			return status.Errorf(status.RateLimited, "Bedrock: %s", text)
		case "ServiceUnavailableException", "InternalServerException", "ModelNotReadyException",
			"ModelTimeoutException", "ModelErrorException", "ModelStreamErrorException":
			return status.Errorf(status.Unavailable, "Bedrock: %s", text)
		case "ValidationException":
			return status.Errorf(status.InvalidArgument, "Bedrock: %s", text)
		case "AccessDeniedException":
			return status.Errorf(status.PermissionDenied, "Bedrock: %s (grant the caller's role bedrock:InvokeModel and bedrock:InvokeModelWithResponseStream on this model or inference profile, and enable access to the model in the Bedrock console)", text)
		case "ResourceNotFoundException":
			return status.Errorf(status.NotFound, "Bedrock: %s (check the model id and that the model is offered in region %s; cross-region inference profiles start with us., eu. or apac.)", text, c.Region)
		case "UnrecognizedClientException", "InvalidSignatureException", "IncompleteSignature",
			"ExpiredTokenException", "InvalidClientTokenId", "SignatureDoesNotMatch":
			return status.Errorf(status.Unauthenticated, "Bedrock refused the credentials: %s (check the key pair or the workload identity's role)", text)
		}
	}
	if strings.Contains(msg, "get identity") || strings.Contains(msg, "retrieve credentials") {
		return status.Errorf(status.Unauthenticated, "llm-bedrock has no usable AWS credentials: %s (give the daemon a workload identity: EKS Pod Identity, IRSA or an instance role; or set access_key_id and secret_access_key as credentials)", msg)
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch code := re.HTTPStatusCode(); {
		case code == 429:
			return status.Errorf(status.RateLimited, "Bedrock: %s", msg)
		case code == 401 || code == 403:
			return status.Errorf(status.Unauthenticated, "Bedrock: %s", msg)
		case code >= 500:
			return status.Errorf(status.Unavailable, "Bedrock: %s", msg)
		case code >= 400:
			return status.Errorf(status.InvalidArgument, "Bedrock: %s", msg)
		}
	}
	return status.Errorf(status.Unavailable, "Bedrock is unreachable: %s", msg)
}

// redact removes the static secrets from text; SDK errors should not
// carry them, but a proxy's error page might echo a header.
func redact(text string, c Config) string {
	for _, s := range []string{c.SecretAccessKey, c.SessionToken} {
		text = llmhttp.Redact(text, s)
	}
	return text
}

var _ llm.Provider = (*Plugin)(nil)

// String never prints a credential.
func (p *Plugin) String() string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return fmt.Sprintf("llm-bedrock(%s)", p.cfg.Region)
}

// ownEventStreamCodec gives a stream its own protocol instance. smithy-go
// v1.28.9's restjson1 protocol keeps one event-stream codec, whose payload
// buffer every stream of a client decodes into: concurrent ConverseStream
// calls on one client raced on it (found by the race detector in
// TestBedrockConformance's concurrent streams) and could hand a stream
// another stream's bytes. restjson1.New ignores its schema argument.
func ownEventStreamCodec(o *bedrockruntime.Options) {
	o.Protocol = restjson1.New(nil)
}
