// Package anthropicplugin implements the llm-anthropic plugin: an
// llm.Provider over the Anthropic Messages API (tools, streaming, prompt
// cache usage). The host resolves the api_key credential and passes the
// value in the config; this package sends it as x-api-key and redacts it
// from every error. It is a package so the gateway's tests can serve it
// in-process through plugin.InProcess.
package anthropicplugin
