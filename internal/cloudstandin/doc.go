// Package cloudstandin holds local stand-ins for the cloud model services
// the llm-bedrock and llm-azure-openai plugins call, checking what the
// real services check: Bedrock re-computes each request's SigV4 signature
// with the SDK's signer and streams real event-stream frames; STS serves
// AssumeRoleWithWebIdentity (IRSA); Entra issues RS256 JWTs over TLS for
// the client-credentials grant (client secret or federated assertion);
// the Azure OpenAI resource verifies those tokens (or an api-key), the
// api-version and the deployment.
//
// It is a package, not _test.go files, so both plugins' tests and the
// end-to-end tests (a real daemon calling them) share one copy. Like
// internal/testupstream it must never be imported by production code.
package cloudstandin
