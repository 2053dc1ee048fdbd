package inference

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// GenAI semantic-convention attribute keys used on spans.
const (
	attrOperation     = attribute.Key("gen_ai.operation.name")
	attrRequestModel  = attribute.Key("gen_ai.request.model")
	attrResponseModel = attribute.Key("gen_ai.response.model")
	attrProvider      = attribute.Key("gen_ai.provider.name")
	attrInputTokens   = attribute.Key("gen_ai.usage.input_tokens")
	attrOutputTokens  = attribute.Key("gen_ai.usage.output_tokens")
	attrFinish        = attribute.Key("gen_ai.response.finish_reasons")
	attrResponseID    = attribute.Key("gen_ai.response.id")
	attrErrorType     = attribute.Key("error.type")
	attrSandbox       = attribute.Key("nemoclave.sandbox")
	attrFallback      = attribute.Key("nemoclave.inference.attempt")
	attrStreaming     = attribute.Key("nemoclave.inference.stream")
)

const tracerName = "github.com/nemoclave/nemoclave/gateway/inference"

func tracerOf(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(tracerName)
}

// startSpan opens the request span: "chat <model>" as the GenAI
// conventions name it, client kind (the gateway is the provider's client).
func startSpan(ctx context.Context, t trace.Tracer, operation, model, sandbox string, stream bool) (context.Context, trace.Span) {
	return t.Start(ctx, operation+" "+model, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attrOperation.String(operation), attrRequestModel.String(model), attrSandbox.String(sandbox), attrStreaming.Bool(stream)))
}

func endSpanError(span trace.Span, errType, msg string) {
	span.SetAttributes(attrErrorType.String(errType))
	span.SetStatus(codes.Error, msg)
	span.End()
}
