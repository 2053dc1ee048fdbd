package inference

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/nemoclave/nemoclave/internal/wire/openai"
	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// embeddingsTimeout bounds one embeddings call.
const embeddingsTimeout = 60 * time.Second

func (r *Router) serveEmbeddings(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	d := openaiDialect{}
	fail := func(code int, msg, errCode string) {
		r.setOverhead(w, time.Since(start), "openai_embeddings")
		d.writeError(w, code, r.redact(msg), errCode)
		r.metrics.request(r.sandbox, "openai_embeddings", code)
	}
	body, err := r.readBody(w, req)
	if err != nil {
		fail(http.StatusRequestEntityTooLarge, "request body too large or unreadable: "+err.Error(), "")
		return
	}
	var er openai.EmbeddingsRequest
	if err := json.Unmarshal(body, &er); err != nil {
		fail(http.StatusBadRequest, "request body is not a valid embeddings request: "+err.Error(), "invalid_request")
		return
	}
	inputs, err := embeddingInputs(er.Input)
	if err != nil {
		fail(http.StatusBadRequest, err.Error(), "invalid_request")
		return
	}
	if er.EncodingFormat != "" && er.EncodingFormat != "float" && er.EncodingFormat != "base64" {
		fail(http.StatusBadRequest, `encoding_format must be "float" or "base64"`, "invalid_request")
		return
	}
	st := r.state.Load()
	alias, rt, ok := st.routes.embeddingsRoute(er.Model)
	if !ok {
		fail(http.StatusNotFound, fmt.Sprintf("embeddings model %q is not available in this sandbox; use one of: %s", er.Model, strings.Join(keys(st.routes.Embeddings), ", ")), "model_not_found")
		return
	}
	emb := st.embedders[rt.Embedder]
	if emb == nil {
		fail(http.StatusServiceUnavailable, fmt.Sprintf("embedder %q for model %q is not loaded", rt.Embedder, alias), "")
		return
	}
	var want reservation
	for _, in := range inputs {
		want.tokens += int64(len(in)/4 + 1)
	}
	want.cost = r.prices.Cost(rt.Model, want.tokens, 0, 0)
	if ref := r.meter.admit(r.now(), want); ref != nil {
		w.Header().Set("Retry-After", fmt.Sprint(int(ref.retryAfter.Seconds())+1))
		r.metrics.refusal(r.sandbox, ref.reason)
		r.auditRefusal("embeddings", er.Model, ref)
		code := "rate_limit_exceeded"
		if ref.reason == "budget" {
			code = "budget_exceeded"
		}
		fail(http.StatusTooManyRequests, ref.message, code)
		return
	}
	defer r.meter.settle(want)
	ctx, span := startSpan(req.Context(), r.tracer, "embeddings", er.Model, r.sandbox, false)
	span.SetAttributes(attrProvider.String(rt.Embedder), attrResponseModel.String(rt.Model))
	labels := callLabels{r.sandbox, "embeddings", er.Model, rt.Model, rt.Embedder}
	callCtx, cancel := context.WithTimeout(ctx, embeddingsTimeout)
	t0 := time.Now()
	resp, err := emb.Embed(callCtx, &embeddings.EmbedRequest{Model: rt.Model, Inputs: inputs, Dimensions: er.Dimensions})
	providerTime := time.Since(t0)
	cancel()
	if err != nil {
		code := status.CodeOf(err)
		r.metrics.observeCall(labels, time.Since(start), code.String(), 0, 0)
		endSpanError(span, code.String(), r.redact(err.Error()))
		r.setOverhead(w, time.Since(start)-providerTime, "openai_embeddings")
		d.writeError(w, httpStatusOf(code), r.redact(err.Error()), "")
		r.metrics.request(r.sandbox, "openai_embeddings", httpStatusOf(code))
		return
	}
	if len(resp.Vectors) != len(inputs) {
		fail(http.StatusBadGateway, fmt.Sprintf("embedder %q returned %d vectors for %d inputs", rt.Embedder, len(resp.Vectors), len(inputs)), "")
		return
	}
	tokens, estimated := resp.InputTokens, false
	if tokens == 0 {
		for _, in := range inputs {
			tokens += int64(len(in)/4 + 1)
		}
		estimated = true
	}
	r.record(UsageRecord{Time: r.now(), Alias: alias, Provider: rt.Embedder, Model: rt.Model, Operation: "embeddings", InputTokens: tokens, Estimated: estimated})
	out := openai.EmbeddingsResponse{Object: "list", Model: er.Model, Usage: openai.EmbedUsage{PromptTokens: tokens, TotalTokens: tokens}}
	for i, v := range resp.Vectors {
		var e any = v
		if er.EncodingFormat == "base64" {
			e = float32Base64(v)
		}
		out.Data = append(out.Data, openai.Embedding{Object: "embedding", Index: i, Embedding: e})
	}
	r.setOverhead(w, time.Since(start)-providerTime, "openai_embeddings")
	writeJSON(w, http.StatusOK, out)
	r.metrics.request(r.sandbox, "openai_embeddings", http.StatusOK)
	r.metrics.observeCall(labels, time.Since(start), "", tokens, 0)
	span.SetAttributes(attrInputTokens.Int64(tokens))
	span.End()
}

func embeddingInputs(raw json.RawMessage) ([]string, error) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil || len(many) == 0 {
		return nil, fmt.Errorf("input must be a string or a non-empty array of strings (token arrays are not supported)")
	}
	return many, nil
}

func float32Base64(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return base64.StdEncoding.EncodeToString(b)
}

// embeddingsRoute resolves an embeddings model like chat aliases do.
func (r Routes) embeddingsRoute(model string) (string, EmbeddingsRoute, bool) {
	if rt, ok := r.Embeddings[model]; ok {
		return model, rt, true
	}
	for _, a := range keys(r.Embeddings) {
		if r.Embeddings[a].Model == model && model != "" {
			return a, r.Embeddings[a], true
		}
	}
	if (model == "" || !r.Strict) && r.DefaultEmbeddings != "" {
		return r.DefaultEmbeddings, r.Embeddings[r.DefaultEmbeddings], true
	}
	return "", EmbeddingsRoute{}, false
}
