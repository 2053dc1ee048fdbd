// Command nemoclave-plugin-embeddings-openai is a built-in embeddings plugin
// for any server speaking OpenAI's POST /v1/embeddings: OpenAI, NVIDIA's
// hosted endpoints and NIM, Ollama, vLLM, LiteLLM.
//
// Inputs are sent in batches of batch_size, one request after another, so a
// large document set neither exceeds a server's per-request limit nor
// floods it. Vectors are put back in input order by the response's index,
// not by position. Rate limits (429) and transient server errors are
// retried with backoff, honouring Retry-After; other failures become
// classified status errors (Unauthenticated, NotFound, ...) whose text never
// contains the API key.
//
// The key arrives resolved from credential("NAME") in Configure and lives
// only in memory. Requests go through HTTP_PROXY/HTTPS_PROXY from the
// plugin's environment (the egress proxy), read at Configure.
//
// This package owns the HTTP exchange with the provider. It must not log or
// return the key, and must not cache vectors.
package main
